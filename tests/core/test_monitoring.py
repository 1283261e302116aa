"""The retrain policy and the alert lifecycle, pure: N of M, K in a row, one pending request, re-runs."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from promoter.config.models import RetrainPolicy
from promoter.core.monitoring import PendingRetrain, WindowVerdict, alert_action, retrain_decision

D0 = date(2024, 5, 1)


def day(i: int) -> str:
    return (D0 + timedelta(days=i)).isoformat()


def w(i: int, version: int | None = 3, **flags: bool) -> WindowVerdict:
    return WindowVerdict(monitor_date=day(i), model_version=version, **flags)


def test_breached_is_any_flag():
    assert not w(0).breached
    assert w(0, drifted=True).breached
    assert w(0, prediction_drifted=True).breached
    assert w(0, performance_breached=True).breached


def test_two_of_the_last_five_breached_windows_ask_for_a_retrain():
    policy = RetrainPolicy()  # N=2 of M=5, K=3
    history = [w(0), w(1, drifted=True), w(2), w(3), w(4, prediction_drifted=True)]
    d = retrain_decision(history, policy, None, 3, D0 + timedelta(days=4))
    assert d.request and d.suppressed is None
    assert "breached_windows" in d.reason and day(1) in d.reason and day(4) in d.reason
    # a single breach is not persistent
    alone = retrain_decision([w(0), w(1), w(2), w(3), w(4, drifted=True)], policy, None, 3, D0 + timedelta(days=4))
    assert not alone.request and "1 of the last 5" in alone.reason


def test_a_breach_older_than_the_last_m_windows_does_not_count():
    policy = RetrainPolicy()
    history = [w(0, drifted=True), *(w(i) for i in range(1, 5)), w(5, drifted=True)]
    d = retrain_decision(history, policy, None, 3, D0 + timedelta(days=5))
    assert not d.request
    assert retrain_decision(history[1:] + [w(3, drifted=True)], policy, None, 3, D0 + timedelta(days=5)).request


def test_performance_breached_in_each_of_the_last_k_windows():
    policy = RetrainPolicy(breached_windows=5, of_last=5, performance_windows=3)  # rule A out of reach
    history = [w(0), w(1, performance_breached=True), w(2, performance_breached=True), w(3, performance_breached=True)]
    d = retrain_decision(history, policy, None, 3, D0 + timedelta(days=3))
    assert d.request
    assert "performance_windows" in d.reason and "breached_windows" not in d.reason
    assert all(day(i) in d.reason for i in (1, 2, 3)) and day(0) not in d.reason
    # a gap in the run, or fewer than K windows, is not enough
    gap = [w(1, performance_breached=True), w(2, drifted=True), w(3, performance_breached=True)]
    assert not retrain_decision(gap, policy, None, 3, D0 + timedelta(days=3)).request
    assert not retrain_decision(history[2:], policy, None, 3, D0 + timedelta(days=3)).request


def test_only_the_current_champions_windows_count():
    policy = RetrainPolicy()
    history = [w(0, version=2, drifted=True), w(1, version=2, drifted=True), w(2, version=3, drifted=True)]
    d = retrain_decision(history, policy, None, 3, D0 + timedelta(days=2))
    assert not d.request and "1 of the last 1" in d.reason


def test_today_must_be_breached():
    policy = RetrainPolicy()
    history = [w(0, drifted=True), w(1, drifted=True), w(2, drifted=True), w(3)]
    d = retrain_decision(history, policy, None, 3, D0 + timedelta(days=3))
    assert not d.request and "not breached" in d.reason
    # and there must be a verdict of today at all
    assert not retrain_decision(history[:3], policy, None, 3, D0 + timedelta(days=3)).request


def test_a_rerun_of_a_day_replaces_its_verdict():
    policy = RetrainPolicy()
    today = D0 + timedelta(days=1)
    # yesterday breached, then its re-run was clean: only today's breach is left
    cleared = [w(0, drifted=True), w(0), w(1, drifted=True)]
    assert not retrain_decision(cleared, policy, None, 3, today).request
    # yesterday clean, re-run breached: two breaches
    assert retrain_decision([w(0), w(0, drifted=True), w(1, drifted=True)], policy, None, 3, today).request
    # today's own re-run was clean: no request
    assert not retrain_decision([w(0, drifted=True), w(1, drifted=True), w(1)], policy, None, 3, today).request


def test_a_pending_request_suppresses_until_a_new_champion_or_pending_days():
    policy = RetrainPolicy()  # pending_days 30
    history = [w(0, drifted=True), w(1, drifted=True)]
    today = D0 + timedelta(days=1)
    pending = PendingRetrain(requested_on=day(-9), champion_version=3)
    d = retrain_decision(history, policy, pending, 3, today)
    assert not d.request
    assert d.suppressed is not None and d.suppressed.startswith(f"retrain pending since {day(-9)}")
    assert "breached_windows" in d.reason  # the request was due: the reason says why
    # the same day re-run after the request (a timestamp works too)
    same_day = PendingRetrain(requested_on=f"{day(1)}T11:02:03+00:00", champion_version=3)
    assert retrain_decision(history, policy, same_day, 3, today).suppressed
    # a new champion clears it
    fresh = [w(0, version=4, drifted=True), w(1, version=4, drifted=True)]
    assert retrain_decision(fresh, policy, pending, 4, today).request
    # pending_days later, the champion still unchanged: ask again
    old = PendingRetrain(requested_on=day(-29), champion_version=3)
    assert retrain_decision(history, policy, old, 3, today).request
    almost = PendingRetrain(requested_on=day(-28), champion_version=3)
    assert not retrain_decision(history, policy, almost, 3, today).request


def test_policy_off_never_requests():
    history = [w(i, drifted=True, performance_breached=True) for i in range(5)]
    d = retrain_decision(history, RetrainPolicy(enabled=False), None, 3, D0 + timedelta(days=4))
    assert not d.request and "off" in d.reason


def _reference(history, n, m, k, champion, today):
    """A naive restatement of the rules: scan the days backwards from today."""
    verdicts = {}
    for v in history:
        if v.model_version == champion:
            verdicts[v.monitor_date] = v
    days = sorted(d for d in verdicts if d <= today.isoformat())
    if not days or days[-1] != today.isoformat() or not verdicts[days[-1]].breached:
        return False
    recent = [verdicts[d] for d in reversed(days)]
    rule_a = sum(1 for v in recent[:m] if v.breached) >= n
    rule_b = len(recent) >= k and all(v.performance_breached for v in recent[:k])
    return rule_a or rule_b


def test_random_histories_agree_with_a_naive_restatement():
    rng = random.Random(7)
    for _ in range(300):
        n_windows = rng.randint(1, 9)
        m = rng.randint(1, 6)
        n = rng.randint(1, m)
        k = rng.randint(1, 4)
        policy = RetrainPolicy(breached_windows=n, of_last=m, performance_windows=k)
        history = []
        for i in range(n_windows):
            for _rerun in range(rng.choice([1, 1, 2])):
                history.append(
                    w(
                        i,
                        version=rng.choice([3, 3, 3, 2]),
                        drifted=rng.random() < 0.3,
                        prediction_drifted=rng.random() < 0.1,
                        performance_breached=rng.random() < 0.4,
                    )
                )
        today = D0 + timedelta(days=rng.randint(0, n_windows))
        got = retrain_decision(history, policy, None, 3, today)
        assert got.request == _reference(history, n, m, k, 3, today), (history, n, m, k, today, got)


@pytest.mark.parametrize(
    ("was_open", "alerts", "expected"),
    [
        (False, ["input drift"], "open"),
        (True, ["input drift"], "update"),
        (True, [], "close"),
        (False, [], "none"),
    ],
)
def test_alert_action(was_open, alerts, expected):
    assert alert_action(was_open, alerts) == expected
