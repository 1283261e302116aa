"""Table-driven tests of the champion/challenger gate (promoter.gate.decide)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from promoter.config import FairnessRule, GatePolicy, SignificanceRule
from promoter.core import gate, stats
from promoter.core.gate import ModelEvaluation, Verdict, approvals_needed, decide, needs_approval

# --------------------------------------------------------------------------- evaluation data
# 400 evaluation rows, ~29% positive. Scores are probabilities from a binormal latent score:
# larger ``mu`` separates the classes more. Independent noise per model keeps the paired
# bootstrap interval wide (about +-0.07), so a small gain is not significant on these rows.

N = 400
_rng = np.random.default_rng(11)
LABELS = (_rng.random(N) < 0.25).astype(int)
_NOISE_CHAMP, _NOISE_STRONG, _NOISE_OTHER = _rng.normal(size=(3, N))
IDS = tuple(f"m{i:04d}" for i in range(N))


def _scores(mu: float, noise: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(mu * LABELS + noise - 1.5)))


CHAMP_SCORES = _scores(1.0, _NOISE_CHAMP)  # AUC ~0.71
STRONG_SCORES = _scores(2.2, _NOISE_STRONG)  # AUC ~0.93: clearly better
MARGINAL_SCORES = _scores(0.85, _NOISE_OTHER)  # AUC ~+0.025 over champion, not significant
WORSE_SCORES = _scores(0.4, _NOISE_OTHER)  # AUC ~0.62: clearly worse than the champion

GOOD_GROUPS = {
    "north": {"roc_auc": 0.80, "n": 150},
    "south": {"roc_auc": 0.76, "n": 140},
    "west": {"roc_auc": 0.78, "n": 110},
}


def evaluation(
    scores: np.ndarray,
    version: int,
    *,
    metrics: dict[str, float] | None = None,
    groups: dict[str, dict[str, float]] | None = None,
    ids=IDS,
    labels=LABELS,
    subgroups: dict | None = None,
) -> ModelEvaluation:
    """A model evaluation whose overall metrics are computed from its scores (overridable)."""
    computed = stats.compute_metrics(labels, scores)
    computed.update(metrics or {})
    return ModelEvaluation(
        version=version,
        metrics=computed,
        subgroup_metrics=subgroups if subgroups is not None else {"region": groups or GOOD_GROUPS},
        scores=scores,
        labels=labels,
        ids=ids,
    )


def policy(**overrides: Any) -> GatePolicy:
    base: dict[str, Any] = dict(
        mode="enforce",
        primary_metric="roc_auc",
        direction="maximize",
        min_absolute_improvement=0.005,
        min_relative_improvement=0.0,
        floors={"roc_auc": 0.60},
        ceilings={"brier": 0.25},
        significance=SignificanceRule(enabled=True, confidence=0.95, resamples=200, seed=7),
        fairness=FairnessRule(
            subgroups=["region"], metric="roc_auc", max_gap=0.10, max_regression=0.02, min_group_size=50
        ),
        phi_check=True,
        marginal="reject",
    )
    base.update(overrides)
    return GatePolicy(**base)


def test_preconditions_of_the_evaluation_data():
    """The cases below rely on these properties of the synthetic rows; check them, not assume."""
    champ = stats.roc_auc(LABELS, CHAMP_SCORES)
    assert stats.roc_auc(LABELS, STRONG_SCORES) - champ > 0.15
    marginal = stats.paired_bootstrap("roc_auc", LABELS, MARGINAL_SCORES, CHAMP_SCORES, resamples=200, seed=7)
    assert 0.01 < marginal.difference < 0.05 and marginal.ci_low < 0.0
    assert 0.60 < stats.roc_auc(LABELS, WORSE_SCORES) < champ - 0.05
    assert champ > 0.60 and stats.brier(LABELS, CHAMP_SCORES) < 0.25


# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    name: str
    candidate: Callable[[], ModelEvaluation]
    champion: Callable[[], ModelEvaluation | None]
    status: str
    failed: set[str]
    policy: dict[str, Any] = field(default_factory=dict)
    phi_found: list[str] | None = field(default_factory=list)
    blocking: bool | None = None
    message_has: dict[str, str] = field(default_factory=dict)


def champion_default() -> ModelEvaluation:
    return evaluation(CHAMP_SCORES, 1)


def strong() -> ModelEvaluation:
    return evaluation(STRONG_SCORES, 2)


CASES = [
    Case("first_version_passes_on_floors_ceilings_fairness_gap_and_phi", strong, lambda: None, "PASS", set()),
    Case(
        "first_version_below_floor_fails",
        lambda: evaluation(STRONG_SCORES, 1, metrics={"roc_auc": 0.55}),
        lambda: None,
        "FAIL",
        {"floor.roc_auc"},
        message_has={"floor.roc_auc": "is not >= 0.6"},
    ),
    Case(
        "first_version_with_wide_fairness_gap_fails",
        lambda: evaluation(
            STRONG_SCORES, 1, groups={"north": {"roc_auc": 0.90, "n": 200}, "south": {"roc_auc": 0.70, "n": 200}}
        ),
        lambda: None,
        "FAIL",
        {"fairness.gap.region"},
    ),
    Case(
        "floor_exactly_at_threshold_passes",
        lambda: evaluation(STRONG_SCORES, 1, metrics={"roc_auc": 0.60}),
        lambda: None,
        "PASS",
        set(),
    ),
    Case(
        "ceiling_exactly_at_threshold_passes",
        lambda: evaluation(STRONG_SCORES, 1, metrics={"brier": 0.25}),
        lambda: None,
        "PASS",
        set(),
    ),
    Case(
        "ceiling_exceeded_fails",
        lambda: evaluation(STRONG_SCORES, 1, metrics={"brier": 0.2500001}),
        lambda: None,
        "FAIL",
        {"ceiling.brier"},
    ),
    Case(
        "improvement_exactly_at_threshold_passes",
        lambda: evaluation(STRONG_SCORES, 2, metrics={"roc_auc": 0.755}),
        lambda: evaluation(CHAMP_SCORES, 1, metrics={"roc_auc": 0.75}),
        "PASS",
        set(),
        policy={"significance": SignificanceRule(enabled=False)},
    ),
    Case(
        "improvement_just_below_threshold_fails",
        lambda: evaluation(STRONG_SCORES, 2, metrics={"roc_auc": 0.7549}),
        lambda: evaluation(CHAMP_SCORES, 1, metrics={"roc_auc": 0.75}),
        "FAIL",
        {"improvement.absolute"},
        policy={"significance": SignificanceRule(enabled=False)},
    ),
    Case(
        "relative_improvement_below_threshold_fails",
        strong,
        champion_default,
        "FAIL",
        {"improvement.relative"},
        policy={"min_relative_improvement": 0.50},
    ),
    Case(
        "missing_metric_fails_and_names_it",
        lambda: ModelEvaluation(2, {"roc_auc": 0.9}, {"region": GOOD_GROUPS}, STRONG_SCORES, LABELS, IDS),
        champion_default,
        "FAIL",
        {"ceiling.brier"},
        message_has={"ceiling.brier": "brier is missing"},
    ),
    Case(
        "nan_metric_fails_floor_and_improvement",
        lambda: evaluation(STRONG_SCORES, 2, metrics={"roc_auc": float("nan")}),
        champion_default,
        "FAIL",
        {"floor.roc_auc", "improvement.absolute", "improvement.relative"},
        message_has={"floor.roc_auc": "not a finite number"},
    ),
    Case(
        "nan_champion_metric_fails_improvement",
        strong,
        lambda: evaluation(CHAMP_SCORES, 1, metrics={"roc_auc": float("nan")}),
        "FAIL",
        {"improvement.absolute", "improvement.relative"},
        message_has={"improvement.absolute": "champion roc_auc is not a finite number"},
    ),
    Case("clearly_better_candidate_passes_every_rule", strong, champion_default, "PASS", set()),
    Case(
        "champion_better_fails_improvement_and_significance",
        lambda: evaluation(WORSE_SCORES, 2),
        champion_default,
        "FAIL",
        {"improvement.absolute", "improvement.relative", "significance"},
    ),
    Case(
        "significance_fails_while_point_estimate_passes_marginal_reject",
        lambda: evaluation(MARGINAL_SCORES, 2),
        champion_default,
        "FAIL",
        {"significance"},
        policy={"marginal": "reject"},
    ),
    Case(
        "significance_fails_while_point_estimate_passes_marginal_approval",
        lambda: evaluation(MARGINAL_SCORES, 2),
        champion_default,
        "NEEDS_APPROVAL",
        {"significance"},
        policy={"marginal": "approval"},
        blocking=True,
    ),
    Case(
        "marginal_approval_does_not_soften_other_failures",
        lambda: evaluation(MARGINAL_SCORES, 2),
        champion_default,
        "FAIL",
        {"significance", "phi"},
        policy={"marginal": "approval"},
        phi_found=["ssn"],
    ),
    Case(
        "significance_disabled_passes_on_point_estimate",
        lambda: evaluation(MARGINAL_SCORES, 2),
        champion_default,
        "PASS",
        set(),
        policy={"significance": SignificanceRule(enabled=False)},
    ),
    Case(
        "fairness_regression_in_one_subgroup_only_fails",
        lambda: evaluation(
            STRONG_SCORES,
            2,
            groups={
                "north": {"roc_auc": 0.85, "n": 150},
                "south": {"roc_auc": 0.77, "n": 140},
                "west": {"roc_auc": 0.84, "n": 110},
            },
        ),
        lambda: evaluation(
            CHAMP_SCORES,
            1,
            groups={
                "north": {"roc_auc": 0.80, "n": 150},
                "south": {"roc_auc": 0.80, "n": 140},
                "west": {"roc_auc": 0.78, "n": 110},
            },
        ),
        "FAIL",
        {"fairness.regression.region"},
        message_has={"fairness.regression.region": "group south is worse than under the champion by 0.0300"},
    ),
    Case(
        "fairness_regression_exactly_at_tolerance_passes",
        lambda: evaluation(
            STRONG_SCORES, 2, groups={"north": {"roc_auc": 0.80, "n": 150}, "south": {"roc_auc": 0.75, "n": 140}}
        ),
        lambda: evaluation(
            CHAMP_SCORES, 1, groups={"north": {"roc_auc": 0.80, "n": 150}, "south": {"roc_auc": 0.77, "n": 140}}
        ),
        "PASS",
        set(),
    ),
    Case(
        "fairness_gap_too_wide_fails",
        lambda: evaluation(
            STRONG_SCORES, 2, groups={"north": {"roc_auc": 0.92, "n": 150}, "south": {"roc_auc": 0.80, "n": 140}}
        ),
        lambda: evaluation(
            CHAMP_SCORES, 1, groups={"north": {"roc_auc": 0.85, "n": 150}, "south": {"roc_auc": 0.80, "n": 140}}
        ),
        "FAIL",
        {"fairness.gap.region"},
        message_has={"fairness.gap.region": "(north 0.9200 - south 0.8000) > 0.1"},
    ),
    Case(
        "fairness_gap_exactly_at_limit_passes",
        lambda: evaluation(
            STRONG_SCORES, 1, groups={"north": {"roc_auc": 0.85, "n": 150}, "south": {"roc_auc": 0.75, "n": 140}}
        ),
        lambda: None,
        "PASS",
        set(),
    ),
    Case(
        "fairness_ignores_groups_below_min_group_size",
        lambda: evaluation(STRONG_SCORES, 2, groups={**GOOD_GROUPS, "tiny": {"roc_auc": 0.30, "n": 49}}),
        lambda: evaluation(CHAMP_SCORES, 1, groups={**GOOD_GROUPS, "tiny": {"roc_auc": 0.90, "n": 49}}),
        "PASS",
        set(),
    ),
    Case(
        "fairness_nan_metric_in_an_eligible_group_fails",
        lambda: evaluation(STRONG_SCORES, 1, groups={**GOOD_GROUPS, "east": {"roc_auc": float("nan"), "n": 80}}),
        lambda: None,
        "FAIL",
        {"fairness.gap.region"},
        message_has={"fairness.gap.region": "missing or NaN for group(s) east (n=80)"},
    ),
    Case(
        "fairness_subgroup_without_metrics_fails",
        lambda: evaluation(STRONG_SCORES, 2, subgroups={}),
        champion_default,
        "FAIL",
        {"fairness.gap.region", "fairness.regression.region"},
    ),
    Case(
        "phi_found_fails",
        strong,
        champion_default,
        "FAIL",
        {"phi"},
        phi_found=["ssn", "first_name"],
        message_has={"phi": "first_name, ssn"},
    ),
    Case(
        "phi_scan_not_run_fails_when_policy_requires_it",
        strong,
        champion_default,
        "FAIL",
        {"phi"},
        phi_found=None,
        message_has={"phi": "did not run"},
    ),
    Case(
        "phi_scan_not_run_is_fine_when_policy_turns_it_off",
        strong,
        champion_default,
        "PASS",
        set(),
        phi_found=None,
        policy={"phi_check": False},
    ),
    Case(
        "misaligned_evaluation_rows_fail",
        strong,
        lambda: evaluation(CHAMP_SCORES[::-1].copy(), 1, ids=IDS[::-1], labels=LABELS[::-1].copy()),
        "FAIL",
        {"evaluation_rows", "significance"},
        message_has={"evaluation_rows": "evaluation rows differ: the same ids in a different order"},
    ),
    Case(
        "different_row_count_fails",
        strong,
        lambda: evaluation(CHAMP_SCORES[:-1], 1, ids=IDS[:-1], labels=LABELS[:-1]),
        "FAIL",
        {"evaluation_rows", "significance"},
        message_has={"evaluation_rows": "candidate has 400 rows, champion 399"},
    ),
    Case(
        "same_ids_with_different_labels_fail",
        strong,
        lambda: evaluation(CHAMP_SCORES, 1, labels=np.where(np.arange(N) == 3, 1 - LABELS, LABELS)),
        "FAIL",
        {"evaluation_rows", "significance"},
        message_has={"evaluation_rows": "different labels in 1 rows"},
    ),
    Case(
        "champion_without_scores_fails_significance",
        strong,
        lambda: ModelEvaluation(
            1, stats.compute_metrics(LABELS, CHAMP_SCORES), {"region": GOOD_GROUPS}, None, LABELS, IDS
        ),
        "FAIL",
        {"significance"},
        policy={"marginal": "approval"},
        message_has={"significance": "per-row scores are missing"},
    ),
    Case(
        "dry_run_reports_the_real_verdict_without_blocking",
        lambda: evaluation(WORSE_SCORES, 2),
        champion_default,
        "FAIL",
        {"improvement.absolute", "improvement.relative", "significance"},
        policy={"mode": "dry_run"},
        blocking=False,
    ),
    Case(
        "disabled_passes_without_checking",
        lambda: evaluation(WORSE_SCORES, 2, metrics={"roc_auc": 0.1}),
        champion_default,
        "PASS",
        set(),
        policy={"mode": "disabled"},
        phi_found=["ssn"],
        blocking=False,
        message_has={"gate": "disabled"},
    ),
    Case(
        "every_failing_rule_is_reported_not_only_the_first",
        lambda: evaluation(
            WORSE_SCORES,
            2,
            metrics={"roc_auc": 0.5, "brier": 0.3},
            groups={"north": {"roc_auc": 0.90, "n": 200}, "south": {"roc_auc": 0.40, "n": 200}},
        ),
        champion_default,
        "FAIL",
        {
            "floor.roc_auc",
            "ceiling.brier",
            "improvement.absolute",
            "improvement.relative",
            "significance",
            "fairness.gap.region",
            "fairness.regression.region",
            "phi",
        },
        phi_found=["dob"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gate(case: Case):
    candidate = case.candidate()
    champion = case.champion()
    verdict = decide(policy(**case.policy), candidate, champion, phi_found=case.phi_found)

    assert verdict.status == case.status, verdict.summary()
    assert {r.rule for r in verdict.failed} == case.failed, verdict.summary()
    expected_blocking = case.blocking if case.blocking is not None else case.status != "PASS"
    assert verdict.blocking is expected_blocking
    assert verdict.first_version is (champion is None)
    by_rule = {r.rule: r for r in verdict.reasons}
    for rule, text in case.message_has.items():
        assert text in by_rule[rule].message, by_rule[rule].message
    # the verdict is always JSON-safe, NaN included
    json.dumps(verdict.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- focused behaviour


def test_first_version_checks_only_floors_ceilings_fairness_gap_and_phi():
    verdict = decide(policy(), strong(), None, phi_found=[])
    rules = [r.rule for r in verdict.reasons]
    assert rules == ["floor.roc_auc", "ceiling.brier", "fairness.gap.region", "phi"]
    assert verdict.bootstrap is None and verdict.champion_version is None
    assert verdict.comparison["roc_auc"]["champion"] is None


def test_every_configured_rule_reports_observed_value_and_limit():
    verdict = decide(policy(), strong(), champion_default(), phi_found=[])
    rules = [r.rule for r in verdict.reasons]
    assert rules == [
        "floor.roc_auc",
        "ceiling.brier",
        "evaluation_rows",
        "improvement.absolute",
        "improvement.relative",
        "significance",
        "fairness.gap.region",
        "fairness.regression.region",
        "phi",
    ]
    by_rule = {r.rule: r for r in verdict.reasons}
    assert by_rule["floor.roc_auc"].limit == 0.60
    assert by_rule["floor.roc_auc"].observed == pytest.approx(stats.roc_auc(LABELS, STRONG_SCORES))
    assert by_rule["evaluation_rows"].observed == N
    assert by_rule["significance"].observed == pytest.approx(verdict.bootstrap.ci_low)
    assert by_rule["significance"].limit == 0.005


def test_bootstrap_result_is_reported_with_the_policy_settings():
    verdict = decide(policy(), strong(), champion_default(), phi_found=[])
    boot = verdict.bootstrap
    assert boot is not None and boot.metric == "roc_auc"
    assert (boot.resamples, boot.seed, boot.confidence) == (200, 7, 0.95)
    assert boot.ci_low < boot.difference < boot.ci_high
    assert boot.difference == pytest.approx(stats.roc_auc(LABELS, STRONG_SCORES) - stats.roc_auc(LABELS, CHAMP_SCORES))
    data = verdict.to_dict()["bootstrap"]
    assert set(data) >= {"difference", "ci_low", "ci_high", "confidence", "resamples"}


def test_the_same_inputs_give_the_same_verdict():
    a = decide(policy(), evaluation(MARGINAL_SCORES, 2), champion_default(), phi_found=[])
    b = decide(policy(), evaluation(MARGINAL_SCORES, 2), champion_default(), phi_found=[])
    assert a.to_dict() == b.to_dict()


def test_a_different_seed_changes_the_interval_but_not_the_point_estimate():
    a = decide(policy(), evaluation(MARGINAL_SCORES, 2), champion_default(), phi_found=[])
    b = decide(
        policy(significance=SignificanceRule(resamples=200, seed=8)),
        evaluation(MARGINAL_SCORES, 2),
        champion_default(),
        phi_found=[],
    )
    assert a.bootstrap.difference == b.bootstrap.difference
    assert a.bootstrap.ci_low != b.bootstrap.ci_low


def test_minimize_direction_counts_a_lower_primary_metric_as_improvement():
    pol = policy(
        primary_metric="brier", direction="minimize", floors={}, ceilings={"brier": 0.25}, min_absolute_improvement=0.01
    )
    better = decide(pol, evaluation(STRONG_SCORES, 2), champion_default(), phi_found=[])
    assert better.status == "PASS", better.summary()
    by_rule = {r.rule: r for r in better.reasons}
    assert by_rule["improvement.absolute"].observed == pytest.approx(
        stats.brier(LABELS, CHAMP_SCORES) - stats.brier(LABELS, STRONG_SCORES)
    )
    # the significance bound is the improvement's lower bound: -(upper bound of cand - champ)
    assert by_rule["significance"].observed == pytest.approx(-better.bootstrap.ci_high)

    worse = decide(pol, champion_default(), evaluation(STRONG_SCORES, 1), phi_found=[])
    assert {"improvement.absolute", "significance"} <= {r.rule for r in worse.failed}


def test_fairness_regression_uses_the_metric_direction():
    pol = policy(
        fairness=FairnessRule(
            subgroups=["region"], metric="brier", max_gap=None, max_regression=0.01, min_group_size=50
        )
    )
    cand = evaluation(STRONG_SCORES, 2, groups={"a": {"brier": 0.20, "n": 100}, "b": {"brier": 0.10, "n": 100}})
    champ = evaluation(CHAMP_SCORES, 1, groups={"a": {"brier": 0.15, "n": 100}, "b": {"brier": 0.12, "n": 100}})
    verdict = decide(pol, cand, champ, phi_found=[])
    (reason,) = [r for r in verdict.reasons if r.rule == "fairness.regression.region"]
    assert not reason.passed and reason.observed == pytest.approx(0.05)
    assert "group a" in reason.message


def test_fairness_table_lists_every_group_with_eligibility():
    groups = {**GOOD_GROUPS, "tiny": {"roc_auc": 0.5, "n": 10}}
    verdict = decide(
        policy(),
        evaluation(STRONG_SCORES, 2, groups=groups),
        evaluation(CHAMP_SCORES, 1, groups=GOOD_GROUPS),
        phi_found=[],
    )
    rows = {row.group: row for row in verdict.fairness}
    assert set(rows) == {"north", "south", "west", "tiny"}
    assert rows["tiny"].eligible is False and rows["tiny"].champion is None
    assert rows["north"].eligible is True and rows["north"].difference == pytest.approx(0.0)


def test_comparison_table_has_candidate_champion_and_difference():
    verdict = decide(policy(), strong(), champion_default(), phi_found=[])
    row = verdict.comparison["roc_auc"]
    assert row["difference"] == pytest.approx(row["candidate"] - row["champion"])
    assert set(verdict.comparison) >= {"roc_auc", "pr_auc", "brier", "log_loss", "ece"}


def test_verdict_to_dict_is_json_safe_and_complete():
    verdict = decide(
        policy(), evaluation(STRONG_SCORES, 2, metrics={"roc_auc": float("nan")}), champion_default(), phi_found=[]
    )
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert data["status"] == "FAIL" and data["candidate_version"] == 2 and data["champion_version"] == 1
    assert data["comparison"]["roc_auc"]["candidate"] is None
    reason = data["reasons"][0]
    assert set(reason) == {"rule", "passed", "observed", "limit", "message"}


def test_unsupported_primary_metric_fails_significance_with_a_clear_reason():
    pol = policy(primary_metric="precision_at_k", floors={})
    verdict = decide(
        pol,
        evaluation(STRONG_SCORES, 2, metrics={"precision_at_k": 0.6}),
        evaluation(CHAMP_SCORES, 1, metrics={"precision_at_k": 0.5}),
        phi_found=[],
    )
    (reason,) = [r for r in verdict.reasons if r.rule == "significance"]
    assert not reason.passed and "no paired bootstrap for metric 'precision_at_k'" in reason.message
    assert verdict.status == "FAIL"


def test_evaluation_with_mismatched_lengths_is_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        ModelEvaluation(1, {}, {}, scores=np.zeros(3), labels=np.zeros(4, dtype=int), ids=["a", "b", "c"])


@pytest.mark.parametrize(
    "status,mode,required,expected",
    [
        ("PASS", "enforce", 0, 0),
        ("PASS", "enforce", 2, 2),
        ("NEEDS_APPROVAL", "enforce", 0, 1),
        ("NEEDS_APPROVAL", "enforce", 3, 3),
        ("FAIL", "enforce", 2, 0),
        ("FAIL", "dry_run", 1, 1),
        ("NEEDS_APPROVAL", "dry_run", 0, 0),
    ],
    ids=[
        "pass_no_approvals",
        "pass_with_required_approvals",
        "needs_approval_asks_for_one",
        "needs_approval_uses_policy_count",
        "fail_cannot_be_approved",
        "dry_run_fail_follows_policy_count",
        "dry_run_needs_approval_does_not_block",
    ],
)
def test_approvals_needed(status, mode, required, expected):
    verdict = Verdict(
        status=status,
        blocking=mode == "enforce" and status != "PASS",
        mode=mode,
        reasons=(),
        comparison={},
        bootstrap=None,
        fairness=(),
        first_version=False,
        primary_metric="roc_auc",
        direction="maximize",
    )
    assert approvals_needed(verdict, required) == expected
    assert needs_approval(verdict, required) is (expected > 0)


def test_policy_hash_is_stable_and_changes_with_the_policy():
    assert gate.policy_hash(policy()) == gate.policy_hash(policy())
    assert gate.policy_hash(policy()) != gate.policy_hash(policy(min_absolute_improvement=0.001))
    assert len(gate.policy_hash(policy())) == 64


def test_summary_names_every_failed_rule():
    verdict = decide(policy(), evaluation(WORSE_SCORES, 2), champion_default(), phi_found=["ssn"])
    text = verdict.summary()
    assert text.startswith("FAIL (enforce): 4 of 9 rules failed:")
    for rule in ("improvement.absolute", "improvement.relative", "significance", "phi"):
        assert rule in text


def test_prod_policy_from_config_runs_end_to_end():
    from promoter.config import load
    from tests.conftest import CONFIGS

    pol = load(CONFIGS, "prod", environ={}).policy
    groups = {col: GOOD_GROUPS for col in pol.fairness.subgroups}
    # satisfy whatever absolute limits the shipped policy sets, keeping the computed roc_auc
    computed = stats.compute_metrics(LABELS, STRONG_SCORES)
    metrics = {m: lim + 0.05 for m, lim in pol.floors.items() if not computed.get(m, -1) >= lim}
    metrics.update({m: lim / 2 for m, lim in pol.ceilings.items() if not computed.get(m, 1e9) <= lim})
    assert "roc_auc" not in metrics
    verdict = decide(
        pol,
        evaluation(STRONG_SCORES, 2, subgroups=groups, metrics=metrics),
        evaluation(CHAMP_SCORES, 1, subgroups=groups),
        phi_found=[],
    )
    assert verdict.status == "PASS", verdict.summary()
    assert verdict.bootstrap.resamples == pol.significance.resamples
    assert not math.isnan(verdict.bootstrap.ci_low)
