"""The fairness rules on bootstrap intervals (gate._fairness with per-row groups, stats.group_bootstrap).

Data: binormal latent scores with a per-group separation, so each group's true AUC is set by
the case; candidate and champion share most of their noise (``rho``), as two models trained on
the same data do. The per-group AUCs and counts are computed from the rows, as the evaluation
pipeline does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pytest

from promoter.config import FairnessRule, GatePolicy, SignificanceRule
from promoter.core import stats
from promoter.core.gate import ModelEvaluation, Reason, approvals_needed, decide

RESAMPLES = 500
SEED = 20240601
EQUAL = {g: (1.0, 0.78, 0.78) for g in ("east", "north", "south", "west")}
# five groups as unequal as race/ethnicity in the reference project; "other" (5%) is below
# min_group_size on 600 rows
RACE = {
    "white": (0.45, 0.78, 0.78),
    "black": (0.25, 0.78, 0.78),
    "hispanic": (0.15, 0.78, 0.78),
    "asian": (0.10, 0.78, 0.78),
    "other": (0.05, 0.78, 0.78),
}


def _mu(auc: float) -> float:
    return math.sqrt(2.0) * NormalDist().inv_cdf(auc)


def make_rows(n: int, groups: dict[str, tuple[float, float, float]], *, seed: int, prevalence=0.15, rho=0.8):
    """``groups``: name -> (share of rows, candidate AUC, champion AUC) -> (labels, cand, champ, group)."""
    rng = np.random.default_rng(seed)
    names = sorted(groups)
    share = np.array([groups[g][0] for g in names])
    code = rng.choice(len(names), size=n, p=share / share.sum())
    group = np.array(names)[code]
    y = (rng.random(n) < prevalence).astype(int)
    mu_cand = np.array([_mu(groups[g][1]) for g in names])[code]
    mu_champ = np.array([_mu(groups[g][2]) for g in names])[code]
    shared = rng.standard_normal(n)
    own = rng.standard_normal((2, n))
    x_cand = mu_cand * y + math.sqrt(rho) * shared + math.sqrt(1 - rho) * own[0]
    x_champ = mu_champ * y + math.sqrt(rho) * shared + math.sqrt(1 - rho) * own[1]
    return y, 1 / (1 + np.exp(-x_cand)), 1 / (1 + np.exp(-x_champ)), group


def evaluation(version, y, scores, group, *, rows=True, ids=None) -> ModelEvaluation:
    sub = {
        "region": {
            str(g): {"roc_auc": stats.roc_auc(y[group == g], scores[group == g]), "n": int((group == g).sum())}
            for g in np.unique(group)
        }
    }
    return ModelEvaluation(
        version,
        stats.compute_metrics(y, scores),
        sub,
        scores,
        y,
        ids if ids is not None else tuple(f"r{i:06d}" for i in range(len(y))),
        row_groups={"region": group} if rows else None,
    )


def policy(**overrides) -> GatePolicy:
    base = dict(
        mode="enforce",
        primary_metric="roc_auc",
        min_absolute_improvement=0.0,
        significance=SignificanceRule(enabled=True, confidence=0.95, resamples=RESAMPLES, seed=SEED),
        fairness=FairnessRule(
            subgroups=["region"], metric="roc_auc", max_gap=0.15, max_regression=0.03, min_group_size=50
        ),
        phi_check=False,
        marginal="approval",
    )
    base.update(overrides)
    return GatePolicy(**base)


def outcome(reason: Reason) -> str:
    return "PASS" if reason.passed else ("UNDECIDED" if reason.undecided else "FAIL")


def fairness_reasons(verdict) -> dict[str, Reason]:
    return {r.rule.split(".")[1]: r for r in verdict.reasons if r.rule.startswith("fairness.")}


# a true gap of 0.15 (east 0.85 - south 0.70)
AT_LIMIT = {"east": (1, 0.85, 0.85), "north": (1, 0.80, 0.80), "south": (1, 0.70, 0.70), "west": (1, 0.80, 0.80)}

# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    name: str
    rows: int
    groups: dict[str, tuple[float, float, float]]
    seeds: tuple[int, ...]
    gap: set[str]  # allowed outcomes of fairness.gap.region
    regression: set[str] | None  # allowed outcomes of fairness.regression.region (None: first version)
    message_has: dict[str, str] | None = None


CASES = [
    # 600 rows: ~90 positives over four groups; equal groups must never FAIL
    Case("equal_groups_small_n_never_fail", 600, EQUAL, (0, 1, 2, 3), {"PASS", "UNDECIDED"}, {"PASS", "UNDECIDED"}),
    Case("equal_groups_small_n_first_version", 600, EQUAL, (4, 5), {"PASS", "UNDECIDED"}, None),
    Case("unequal_groups_small_n_never_fail", 600, RACE, tuple(range(8)), {"PASS", "UNDECIDED"}, None),
    Case("equal_groups_large_n_pass", 20_000, EQUAL, (0,), {"PASS"}, {"PASS"}, {"gap": "is within 0.15"}),
    Case(
        "truly_large_gap_large_n_fails",
        20_000,
        {"east": (1, 0.85, 0.85), "north": (1, 0.85, 0.85), "south": (1, 0.60, 0.60), "west": (1, 0.85, 0.85)},
        (0,),
        {"FAIL"},
        {"PASS"},
        {"gap": "is over 0.15: even the lower bound exceeds it"},
    ),
    Case(
        # true gap 0.15 on 1,500 rows: the interval is about +-0.08 wide
        "gap_at_the_limit_with_moderate_n_is_undecided",
        1_500,
        AT_LIMIT,
        (1,),
        {"UNDECIDED"},
        None,
        {"gap": "straddles 0.15: a person must decide"},
    ),
    Case(
        # 0.05 AUC worse in a group of 10% of 20,000 rows (~300 positives): the paired interval is
        # about +-0.02, so it is always caught; FAIL only when its lower bound, widened to hold
        # for all the column's groups at once, clears 0.03 (13% of datasets at prevalence 10% in
        # bench/gate_power.py), NEEDS_APPROVAL otherwise; never PASS
        "regression_of_0.05_in_a_10pct_group_is_caught",
        20_000,
        {"a": (0.1, 0.73, 0.78), "b": (0.3, 0.78, 0.78), "c": (0.3, 0.78, 0.78), "d": (0.3, 0.78, 0.78)},
        (0, 1, 2),
        {"PASS"},
        {"FAIL", "UNDECIDED"},
    ),
    Case(
        "large_regression_in_a_large_group_fails",
        20_000,
        {"a": (0.3, 0.68, 0.78), "b": (0.3, 0.78, 0.78), "c": (0.4, 0.78, 0.78)},
        (0,),
        {"PASS"},
        {"FAIL"},
        {"regression": "group a is worse than under the champion by +0.1"},
    ),
    Case(
        "small_regression_in_large_groups_passes",
        20_000,
        {"a": (0.5, 0.775, 0.78), "b": (0.5, 0.78, 0.78)},
        (0,),
        {"PASS"},
        {"PASS"},
        {"regression": "no group is worse than under the champion by more than 0.03"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fairness_intervals(case: Case):
    for seed in case.seeds:
        y, cand, champ, group = make_rows(case.rows, case.groups, seed=seed)
        champion = None if case.regression is None else evaluation(1, y, champ, group)
        verdict = decide(policy(), evaluation(2, y, cand, group), champion, phi_found=[])
        got = fairness_reasons(verdict)
        assert outcome(got["gap"]) in case.gap, (seed, got["gap"].message)
        if case.regression is None:
            assert "regression" not in got
        else:
            assert outcome(got["regression"]) in case.regression, (seed, got["regression"].message)
        for reason in got.values():
            assert reason.interval is not None and "95% interval" in reason.message
            assert "point estimate" not in reason.message
        for key, text in (case.message_has or {}).items():
            assert text in got[key].message, got[key].message


def test_an_undecided_gap_names_the_estimate_and_the_interval_and_asks_a_person():
    y, cand, _, group = make_rows(1_500, AT_LIMIT, seed=1)
    verdict = decide(policy(), evaluation(2, y, cand, group), None, phi_found=[])
    reason = fairness_reasons(verdict)["gap"]
    low, high = reason.interval
    assert low < 0.15 < high and low <= reason.observed <= high
    assert reason.message.startswith(f"region: candidate roc_auc gap {reason.observed:.3f} (95% interval {low:.3f} to ")
    assert verdict.status == "NEEDS_APPROVAL" and verdict.blocking
    assert verdict.summary() == "NEEDS_APPROVAL (enforce): 1 of 2 rules undecided: fairness.gap.region"
    assert approvals_needed(verdict, 0) == 1
    d = reason.to_dict()
    assert d["undecided"] is True and d["interval"] == [low, high] and json.dumps(d)


# --------------------------------------------------------------------------- status


def _undecided_inputs():
    y, cand, _, group = make_rows(1_500, AT_LIMIT, seed=1)
    return y, cand, group


def test_undecided_plus_a_hard_failure_is_fail():
    y, cand, group = _undecided_inputs()
    verdict = decide(policy(floors={"roc_auc": 0.99}), evaluation(2, y, cand, group), None, phi_found=[])
    assert verdict.status == "FAIL"
    assert verdict.summary() == (
        "FAIL (enforce): 1 of 3 rules failed: floor.roc_auc; 1 of 3 rules undecided: fairness.gap.region"
    )


def test_undecided_plus_marginal_significance_under_approval_is_needs_approval():
    y, cand, group = _undecided_inputs()
    # the champion: the same rows with a little independent noise -> improvement > 0 but not significant
    rng = np.random.default_rng(3)
    champ = np.clip(cand + rng.normal(0, 0.05, len(cand)), 0, 1)
    candidate, champion = evaluation(2, y, cand, group), evaluation(1, y, champ, group)
    pol = policy(min_absolute_improvement=0.001, fairness=FairnessRule(subgroups=["region"], max_gap=0.15))
    verdict = decide(pol, candidate, champion, phi_found=[])
    assert verdict.comparison["roc_auc"]["difference"] > 0.001
    by_rule = {r.rule: r for r in verdict.reasons}
    assert not by_rule["significance"].passed and by_rule["fairness.gap.region"].undecided
    assert verdict.status == "NEEDS_APPROVAL", verdict.summary()
    assert decide(pol.model_copy(update={"marginal": "reject"}), candidate, champion, phi_found=[]).status == "FAIL"


def test_dry_run_reports_needs_approval_without_blocking():
    y, cand, group = _undecided_inputs()
    verdict = decide(policy(mode="dry_run"), evaluation(2, y, cand, group), None, phi_found=[])
    assert verdict.status == "NEEDS_APPROVAL" and not verdict.blocking


# --------------------------------------------------------------------------- fallback to point estimates


def test_without_per_row_groups_the_point_estimate_rule_applies_and_says_so():
    """The first-release story: equal groups on 600 rows, a point gap over 0.15 by chance."""
    y, cand, champ, group = make_rows(600, RACE, seed=0, prevalence=0.10)
    point = decide(
        policy(), evaluation(2, y, cand, group, rows=False), evaluation(1, y, champ, group, rows=False), phi_found=[]
    )
    got = fairness_reasons(point)
    gap = got["gap"]
    assert gap.observed > 0.15 and outcome(gap) == "FAIL" and gap.interval is None
    assert gap.message.endswith("> 0.15 (point estimate: per-row groups not available)")
    assert got["regression"].message.endswith("(point estimate: per-row groups not available)")
    # the same rows with their groups: the data cannot tell, a person decides
    judged = decide(policy(), evaluation(2, y, cand, group), evaluation(1, y, champ, group), phi_found=[])
    interval = fairness_reasons(judged)["gap"]
    assert interval.observed == gap.observed and outcome(interval) == "UNDECIDED", interval.message


def test_per_row_groups_that_disagree_with_the_counts_fall_back():
    y, cand, _, group = make_rows(600, EQUAL, seed=0)
    ev = evaluation(2, y, cand, group)
    shuffled = ModelEvaluation(
        2, ev.metrics, ev.subgroup_metrics, ev.scores, ev.labels, ev.ids, row_groups={"region": np.full(600, "east")}
    )
    reason = fairness_reasons(decide(policy(), shuffled, None, phi_found=[]))["gap"]
    assert "point estimate: per-row groups do not match the group counts (" in reason.message
    assert reason.interval is None


def test_a_champion_on_other_rows_keeps_the_gap_interval_but_not_the_paired_regression():
    y, cand, champ, group = make_rows(600, EQUAL, seed=0)
    other_ids = tuple(f"x{i:06d}" for i in range(600))
    verdict = decide(
        policy(), evaluation(2, y, cand, group), evaluation(1, y, champ, group, ids=other_ids), phi_found=[]
    )
    got = fairness_reasons(verdict)
    assert got["gap"].interval is not None
    assert got["regression"].message.endswith("(point estimate: the champion was not scored on the same rows)")


def test_row_groups_must_match_the_rows():
    with pytest.raises(ValueError, match="row groups differ in length"):
        ModelEvaluation(1, {}, {}, scores=np.zeros(3), labels=np.zeros(3, dtype=int), row_groups={"r": ["a", "b"]})


# --------------------------------------------------------------------------- determinism and reference


def test_the_same_seed_gives_the_same_verdict_and_another_seed_another_interval():
    y, cand, champ, group = make_rows(1_500, AT_LIMIT, seed=1)
    args = (evaluation(2, y, cand, group), evaluation(1, y, champ, group))
    first = decide(policy(), *args, phi_found=[])
    again = decide(policy(), *args, phi_found=[])
    assert first.to_dict() == again.to_dict()
    other = decide(
        policy(significance=SignificanceRule(enabled=True, confidence=0.95, resamples=RESAMPLES, seed=SEED + 1)),
        *args,
        phi_found=[],
    )
    a, b = fairness_reasons(first)["gap"], fairness_reasons(other)["gap"]
    assert a.observed == b.observed and a.interval != b.interval


def test_the_intervals_agree_with_a_direct_numpy_bootstrap():
    """Draw row indices per group and class, recompute every AUC from the copied rows (stats.roc_auc)."""
    groups = {"a": (1, 0.70, 0.74), "b": (1, 0.80, 0.80), "c": (1, 0.85, 0.84)}
    y, cand, champ, group = make_rows(3_000, groups, seed=7, prevalence=0.2)
    verdict = decide(policy(), evaluation(2, y, cand, group), evaluation(1, y, champ, group), phi_found=[])
    got = fairness_reasons(verdict)

    rng = np.random.default_rng(12345)
    draws = 1_000
    names = sorted(groups)
    values = {"cand": np.empty((draws, 3)), "champ": np.empty((draws, 3))}
    for j, g in enumerate(names):
        pos = np.flatnonzero((group == g) & (y == 1))
        neg = np.flatnonzero((group == g) & (y == 0))
        for b in range(draws):
            rows = np.concatenate((rng.choice(pos, pos.size), rng.choice(neg, neg.size)))
            values["cand"][b, j] = stats.roc_auc(y[rows], cand[rows])
            values["champ"][b, j] = stats.roc_auc(y[rows], champ[rows])
    full = {
        m: np.array([stats.roc_auc(y[group == g], sc[group == g]) for g in names])
        for m, sc in (("cand", cand), ("champ", champ))
    }
    hi, lo = int(np.argmax(full["cand"])), int(np.argmin(full["cand"]))

    def max_t_lower(draws: np.ndarray, point: np.ndarray) -> np.ndarray:
        se = draws.std(axis=0, ddof=1)
        c = np.quantile(((draws - point) / se).max(axis=1), 0.975)
        return point - c * se

    # gap: the lower end holds for every ordered pair at once; the upper end is the spread's
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    diffs = np.column_stack([values["cand"][:, i] - values["cand"][:, j] for i, j in pairs])
    lows = max_t_lower(diffs, np.array([full["cand"][i] - full["cand"][j] for i, j in pairs]))
    ref_gap = (
        max(0.0, lows[pairs.index((hi, lo))]),
        np.quantile(values["cand"].max(axis=1) - values["cand"].min(axis=1), 0.975),
    )
    assert got["gap"].interval == pytest.approx(ref_gap, abs=0.008)
    # regression: lower bounds for all groups at once, upper bounds per group; the reason names
    # the group with the highest upper bound (PASS or undecided) or lower bound (FAIL)
    worse = values["champ"] - values["cand"]
    low = max_t_lower(worse, full["champ"] - full["cand"])
    ref = {g: (low[j], np.quantile(worse[:, j], 0.975)) for j, g in enumerate(names)}
    reg = got["regression"]
    group_named = reg.message.split("group ")[-1].split(" ")[0]
    assert reg.interval == pytest.approx(ref[group_named], abs=0.008)
    assert group_named == max(ref, key=lambda g: ref[g][1]) == "a"


def test_simultaneous_lower_bounds_widen_with_the_number_of_groups():
    rng = np.random.default_rng(0)
    one = stats.simultaneous_lower_bounds(rng.normal(0, 1, (4000, 1)), np.zeros(1), 0.95)
    assert one[0] == pytest.approx(-1.96, abs=0.1)  # one group: the one-sided 97.5% bound
    many = stats.simultaneous_lower_bounds(rng.normal(0, 1, (4000, 10)), np.zeros(10), 0.95)
    assert np.all(many < -2.5) and np.all(many > -3.1)  # ten independent groups: about Bonferroni's 2.8
    flat = stats.simultaneous_lower_bounds(np.ones((10, 2)), np.array([1.0, 1.0]), 0.95)
    assert flat.tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------- stats.group_bootstrap


def test_group_bootstrap_pairs_models_on_the_same_drawn_rows():
    y, cand, _, group = make_rows(2_000, EQUAL, seed=2)
    boot = stats.group_bootstrap(
        "roc_auc", y, group, {"candidate": cand, "mirror": 1.0 - cand}, resamples=200, seed=1, confidence=0.9
    )
    assert boot.groups == ("east", "north", "south", "west")
    assert boot.values["candidate"].shape == (200, 4)
    # the reversed scores rank every drawn row the other way round: AUC 1 - AUC, resample by resample
    np.testing.assert_allclose(boot.values["mirror"], 1.0 - boot.values["candidate"], atol=1e-12)
    for j, g in enumerate(boot.groups):
        assert boot.point["candidate"][j] == pytest.approx(stats.roc_auc(y[group == g], cand[group == g]), abs=1e-12)
        assert boot.sizes[j] == int((group == g).sum())
    again = stats.group_bootstrap(
        "roc_auc", y, group, {"candidate": cand, "mirror": 1.0 - cand}, resamples=200, seed=1, confidence=0.9
    )
    assert np.array_equal(again.values["candidate"], boot.values["candidate"])
    low, high = boot.interval(boot.values["candidate"][:, 0])
    assert (low, high) == pytest.approx(tuple(np.quantile(boot.values["candidate"][:, 0], [0.05, 0.95])))


def test_group_bootstrap_refuses_groups_it_cannot_resample():
    y = np.array([1, 0, 0, 0, 1, 0])
    s = np.linspace(0, 1, 6)
    g = np.array(["a", "a", "b", "b", "c", "c"])
    with pytest.raises(ValueError, match="group 'b' needs both classes"):
        stats.group_bootstrap("roc_auc", y, g, {"m": s}, resamples=5)
    with pytest.raises(ValueError, match="group 'z' has no rows"):
        stats.group_bootstrap("roc_auc", y, g, {"m": s}, only=["z"], resamples=5)
    with pytest.raises(KeyError):
        stats.group_bootstrap("recall_at_k", y, g, {"m": s}, resamples=5)
    boot = stats.group_bootstrap("brier", y, g, {"m": s}, only=["a", "c"], resamples=5)
    assert boot.groups == ("a", "c") and boot.values["m"].shape == (5, 2)


def test_an_estimate_within_the_limit_passes_unless_the_policy_asks_on_any_straddle():
    """Equal groups at 600 rows: the interval crosses the limit, the estimate does not. By default
    that passes (the message says the interval reaches past the limit); with
    ``undecided_when: interval_straddles`` it asks a person."""
    found = None
    for seed in range(20):
        y, cand, champ, group = make_rows(600, EQUAL, seed=seed)
        verdict = decide(policy(), evaluation(2, y, cand, group), evaluation(1, y, champ, group), phi_found=[])
        reason = fairness_reasons(verdict)["gap"]
        low, high = reason.interval
        if reason.observed <= 0.15 < high:
            found = (y, cand, champ, group, reason)
            break
    assert found is not None, "no dataset with an estimate within the limit and an interval past it"
    y, cand, champ, group, reason = found
    assert outcome(reason) == "PASS" and "the interval reaches past it" in reason.message
    strict = policy(fairness={**policy().fairness.model_dump(), "undecided_when": "interval_straddles"})
    verdict = decide(strict, evaluation(2, y, cand, group), evaluation(1, y, champ, group), phi_found=[])
    assert outcome(fairness_reasons(verdict)["gap"]) == "UNDECIDED"
