"""Monitoring decisions, pure: when a breach asks for a retrain, and what an alert sink should do.

A retrain is requested only on a breached day of the current champion, when breaches persist:

* rule ``breached_windows``: at least N of the champion's last M monitored windows breached
  (drift, prediction drift or realised performance);
* rule ``performance_windows``: realised performance breached in each of the last K windows.

One request at a time: while a request made for this champion is younger than ``pending_days``,
further breaches are suppressed (a retrain takes days, and a new champion is the answer). The
request never promotes anything: the retrained candidate meets the normal gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

AlertAction = Literal["open", "update", "close", "none"]


@dataclass(frozen=True)
class WindowVerdict:
    """One monitored day of one model version: which checks breached."""

    monitor_date: str  # ISO date
    model_version: int | None
    drifted: bool = False
    prediction_drifted: bool = False
    performance_breached: bool = False
    alerts: tuple[str, ...] = ()

    @property
    def breached(self) -> bool:
        """Any check breached (input drift, prediction drift or realised performance)."""
        return self.drifted or self.prediction_drifted or self.performance_breached


@dataclass(frozen=True)
class PendingRetrain:
    """The last retrain request: when, and for which champion."""

    requested_on: str  # ISO date (a timestamp's first 10 characters are read)
    champion_version: int | None


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to request a retrain now; ``suppressed`` says why a due request was held back."""

    request: bool
    reason: str
    suppressed: str | None = None


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def champion_windows(history: Iterable[WindowVerdict], champion: int | None, today: date) -> list[WindowVerdict]:
    """The champion's windows up to ``today``, one per date (the last verdict of a date wins), oldest first."""
    by_date: dict[str, WindowVerdict] = {}
    limit = today.isoformat()
    for v in history:
        if v.model_version != champion or not v.monitor_date or v.monitor_date[:10] > limit:
            continue
        by_date[v.monitor_date[:10]] = v  # a re-run of a day replaces its verdict
    return [by_date[d] for d in sorted(by_date)]


def retrain_decision(
    history: Iterable[WindowVerdict],
    policy: Any,
    pending: PendingRetrain | None,
    champion: int | None,
    today: date,
) -> RetrainDecision:
    """Decide whether today's monitoring asks for a retrain (see the module docstring).

    Args:
        history: verdicts of monitored days, any versions, re-runs included (today's among them).
        policy: ``enabled``, ``breached_windows`` (N), ``of_last`` (M), ``performance_windows`` (K),
            ``pending_days``.
        pending: the last request made, if any.
        champion: the version monitored today; other versions' windows do not count.
        today: the monitored day.
    """
    if not policy.enabled:
        return RetrainDecision(False, "the retrain policy is off (retrain.enabled: false)")
    windows = champion_windows(history, champion, today)
    day = today.isoformat()
    current = windows[-1] if windows and windows[-1].monitor_date[:10] == day else None
    if current is None:
        return RetrainDecision(False, f"no verdict of version {champion} for {day}: nothing to decide")
    if not current.breached:
        return RetrainDecision(False, f"{day} is not breached: no retrain")

    n, m, k = int(policy.breached_windows), int(policy.of_last), int(policy.performance_windows)
    last_m = windows[-m:]
    breached = [w.monitor_date[:10] for w in last_m if w.breached]
    last_k = windows[-k:]
    reasons = []
    if len(breached) >= n:
        reasons.append(
            f"breached_windows: {len(breached)} of the last {len(last_m)} monitored windows of version "
            f"{champion} breached (needs {n} of {m}): {', '.join(breached)}"
        )
    if len(last_k) >= k and all(w.performance_breached for w in last_k):
        reasons.append(
            f"performance_windows: realised performance breached in each of the last {k} windows: "
            f"{', '.join(w.monitor_date[:10] for w in last_k)}"
        )
    if not reasons:
        perf = sum(w.performance_breached for w in last_k)
        return RetrainDecision(
            False,
            f"breach not persistent yet: {len(breached)} of the last {len(last_m)} windows breached "
            f"(needs {n} of {m}); performance breached in {perf} of the last {len(last_k)} (needs {k} in a row)",
        )
    reason = "; ".join(reasons)
    if pending is not None and pending.champion_version == champion:
        since = _parse_day(pending.requested_on)
        if since is not None and (today - since).days < int(policy.pending_days):
            return RetrainDecision(
                False,
                reason,
                suppressed=f"retrain pending since {since.isoformat()} (no new champion yet; "
                f"asks again after {int(policy.pending_days)} days)",
            )
    return RetrainDecision(True, reason)


def alert_action(was_open: bool, alerts: list[str]) -> AlertAction:
    """What the alert sinks do: open on a new alert, update while it lasts, close when it clears."""
    if alerts:
        return "update" if was_open else "open"
    return "close" if was_open else "none"
