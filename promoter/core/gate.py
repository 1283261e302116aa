"""The champion/challenger gate: a pure function from policy and evaluations to a verdict.

``decide(policy, candidate, champion)`` evaluates every rule the policy configures and
reports each one (rule, passed, observed value, limit, message), never only the first
failure, so a CI log shows all reasons at once:

* ``floor.<metric>`` / ``ceiling.<metric>``: absolute limits on the candidate's metrics;
  a missing or NaN metric fails.
* ``evaluation_rows``: candidate and champion were scored on the same rows (same ids, same
  order, same labels).
* ``improvement.absolute`` / ``improvement.relative``: the candidate's primary metric beats
  the champion's by the policy's margins (respecting ``direction``).
* ``significance``: paired bootstrap over the evaluation rows; the lower confidence bound of
  the improvement must clear ``min_absolute_improvement``. When it fails only because of
  that bound, ``marginal: approval`` gives ``NEEDS_APPROVAL`` instead of ``FAIL``.
* ``fairness.gap.<subgroup>`` / ``fairness.regression.<subgroup>``: the candidate's spread of
  the fairness metric across groups with at least ``min_group_size`` rows (gap: best minus
  worst group, at most ``max_gap``), and no group worse than under the champion by more than
  ``max_regression``. Both are judged on bootstrap intervals over the evaluation rows, with the
  significance rule's ``resamples``, ``seed`` and ``confidence``: each resample draws, in every
  group of the column, as many positives and negatives from the group's own as it holds
  (:func:`promoter.core.stats.group_bootstrap`), and candidate and champion are measured on
  the same drawn rows. A rule FAILs only when the whole interval is over its limit, PASSes
  when the whole interval is within it, and is *undecided* (``NEEDS_APPROVAL``: a person must
  decide) when the interval straddles it. Gap interval: its lower end is the lower bound of
  (best minus worst group of the point estimates) that holds for every ordered pair of groups
  at once (bootstrap max-t, :func:`promoter.core.stats.simultaneous_lower_bounds`), so
  picking the widest pair after the fact does not turn noise into a FAIL; its upper end is
  the upper bound of the per-resample spread (max minus min over the eligible groups,
  whichever they are), so it cannot pass while another pair could be wider. Regression: per
  group, the paired bootstrap of how much worse the candidate is than the champion
  (direction aware); FAIL when some group's lower bound (again holding for all the column's
  groups at once) is over ``max_regression``, PASS when every group's upper bound (at the
  plain level: all must hold, so no widening is needed) is within it. Without per-row groups
  (``ModelEvaluation.row_groups``; old records, callers without them), without per-row
  scores or for a metric with no bootstrap here, both rules fall back to the point
  estimates and say so (``point estimate: per-row groups not available``).
* ``phi``: the PHI scan (``promoter.core.phi``) found no bronze PHI value or PHI column in what
  the run produced (signature, input example, artifacts, tables, log lines).

Status: any rule that failed outright gives ``FAIL``; otherwise any undecided rule (or a
marginal significance under ``marginal: approval``) gives ``NEEDS_APPROVAL``; otherwise
``PASS``.

First version (no champion): floors, ceilings, fairness gap and PHI only. A value exactly at
a limit passes. ``mode: dry_run`` gives the real verdict but never blocks; ``mode: disabled``
passes without checking. No I/O, no clock; the bootstrap seed comes from the policy, so the
same inputs always give the same verdict.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from promoter.config import GatePolicy
from promoter.core import stats
from promoter.core.stats import BootstrapResult

Status = Literal["PASS", "FAIL", "NEEDS_APPROVAL"]
PASS: Status = "PASS"
FAIL: Status = "FAIL"
NEEDS_APPROVAL: Status = "NEEDS_APPROVAL"

# absolute slack for "exactly at the limit passes" when limits and metrics are decimal floats
# (0.755 - 0.75 is 0.005000000000000004, 0.805 - 0.8 is 0.0050000000000000044, ...)
TOLERANCE = 1e-12

MAXIMIZE_METRICS = frozenset(
    {
        "roc_auc",
        "pr_auc",
        "precision_at_k",
        "recall_at_k",
        "accuracy",
        "f1",
        "precision",
        "recall",
        "sensitivity",
        "specificity",
        "lift_at_k",
    }
)
MINIMIZE_METRICS = frozenset({"brier", "log_loss", "ece"})


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, eq=False)
class ModelEvaluation:
    """One model measured on the evaluation rows of this run.

    Attributes:
        version: registered model version, or ``None`` before registration.
        metrics: overall metrics by name (``roc_auc``, ``pr_auc``, ``brier``, ``ece``, ...).
        subgroup_metrics: subgroup column -> group value -> metric name -> value; each group
            also carries ``"n"``, its row count.
        scores: per-row scores (probabilities), aligned with ``labels`` and ``ids``.
        labels: per-row 0/1 labels.
        ids: per-row ids; candidate and champion must list the same ids in the same order.
        row_groups: subgroup column -> the group of each row (aligned with ``labels``, compared
            as strings, the keys of ``subgroup_metrics``). With them the fairness rules judge
            bootstrap intervals; without them (old records, callers without per-row data) the
            point estimates.
    """

    version: int | None
    metrics: Mapping[str, float]
    subgroup_metrics: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    ids: Sequence[str] | None = None
    row_groups: Mapping[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.scores is not None:
            object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64))
        if self.labels is not None:
            object.__setattr__(self, "labels", np.asarray(self.labels))
        if self.ids is not None:
            object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))
        if self.row_groups is not None:
            object.__setattr__(
                self, "row_groups", {str(col): np.asarray(values) for col, values in self.row_groups.items()}
            )
        lengths = {
            name: len(value)
            for name, value in (("scores", self.scores), ("labels", self.labels), ("ids", self.ids))
            if value is not None
        }
        for col, values in (self.row_groups or {}).items():
            lengths[f"row_groups[{col!r}]"] = len(values)
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "evaluation of version {}: scores, labels, ids and row groups differ in length ({})".format(
                    self.version, ", ".join(f"{k}={v}" for k, v in lengths.items())
                )
            )

    @property
    def rows(self) -> int:
        """Number of evaluation rows with per-row scores (0 when there are none)."""
        return 0 if self.scores is None else int(self.scores.shape[0])


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Reason:
    """The outcome of one rule.

    Attributes:
        rule: the rule's name, e.g. ``fairness.gap.region``.
        passed: whether it passed.
        observed: the value judged (a point estimate where an interval was judged).
        limit: the policy's limit.
        message: one line for people.
        undecided: ``True`` when the rule did not pass because the data cannot tell (a bootstrap
            interval straddles the limit): it asks for a person (``NEEDS_APPROVAL``), not ``FAIL``.
        interval: the bootstrap interval the rule judged, when it judged one.
    """

    rule: str
    passed: bool
    observed: Any
    limit: Any
    message: str
    undecided: bool = False
    interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"rule", "passed", "observed", "limit", "message"}``, JSON-safe.

        ``"undecided": true`` and ``"interval": [low, high]`` are added only when set, so
        records of rules without them keep their old shape.
        """
        out = {
            "rule": self.rule,
            "passed": self.passed,
            "observed": _jsonable(self.observed),
            "limit": _jsonable(self.limit),
            "message": self.message,
        }
        if self.undecided:
            out["undecided"] = True
        if self.interval is not None:
            out["interval"] = _jsonable(list(self.interval))
        return out


@dataclass(frozen=True)
class FairnessRow:
    """One group of one subgroup column, as the fairness rules saw it."""

    subgroup: str
    group: str
    n: int | None
    candidate: float | None
    champion: float | None
    difference: float | None
    eligible: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            k: _jsonable(getattr(self, k))
            for k in ("subgroup", "group", "n", "candidate", "champion", "difference", "eligible")
        }


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, and why.

    Attributes:
        status: ``PASS``, ``FAIL`` or ``NEEDS_APPROVAL``.
        blocking: ``True`` when the verdict stops promotion: ``mode: enforce`` and the status is
            not ``PASS``. Always ``False`` under ``dry_run`` and ``disabled``.
        mode: the policy's mode.
        reasons: every rule's outcome, in evaluation order.
        comparison: metric -> ``{"candidate", "champion", "difference"}`` (difference is
            candidate minus champion; ``None`` where either is missing).
        bootstrap: the paired bootstrap of the primary metric, when it ran.
        fairness: one row per subgroup group.
        first_version: ``True`` when there was no champion.
        primary_metric: the policy's primary metric.
        direction: ``maximize`` or ``minimize``.
        candidate_version: the candidate's version.
        champion_version: the champion's version, ``None`` for a first version.
    """

    status: Status
    blocking: bool
    mode: str
    reasons: tuple[Reason, ...]
    comparison: Mapping[str, Mapping[str, float | None]]
    bootstrap: BootstrapResult | None
    fairness: tuple[FairnessRow, ...]
    first_version: bool
    primary_metric: str
    direction: str
    candidate_version: int | None = None
    champion_version: int | None = None

    @property
    def failed(self) -> tuple[Reason, ...]:
        """The reasons whose rule did not pass (including the undecided ones)."""
        return tuple(r for r in self.reasons if not r.passed)

    def summary(self) -> str:
        """One line, e.g. ``FAIL (enforce): 2 of 9 rules failed: floor.roc_auc, significance``.

        Rules the data could not decide are named apart: ``NEEDS_APPROVAL (enforce): 1 of 9
        rules undecided: fairness.gap.region``.
        """
        hard = [r.rule for r in self.failed if not r.undecided]
        undecided = [r.rule for r in self.failed if r.undecided]
        head = f"{self.status} ({self.mode})"
        total = len(self.reasons)
        if not hard and not undecided:
            return f"{head}: all {total} rules passed"
        parts = []
        if hard:
            parts.append(f"{len(hard)} of {total} rules failed: " + ", ".join(hard))
        if undecided:
            parts.append(f"{len(undecided)} of {total} rules undecided: " + ", ".join(undecided))
        return f"{head}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The whole verdict as JSON-safe data (NaN and infinities become ``None``)."""
        return {
            "status": self.status,
            "blocking": self.blocking,
            "mode": self.mode,
            "first_version": self.first_version,
            "primary_metric": self.primary_metric,
            "direction": self.direction,
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "reasons": [r.to_dict() for r in self.reasons],
            "comparison": {m: {k: _jsonable(v) for k, v in row.items()} for m, row in self.comparison.items()},
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
            "fairness": [row.to_dict() for row in self.fairness],
        }


# --------------------------------------------------------------------------- helpers for callers


def approvals_needed(verdict: Verdict, approvals_required: int) -> int:
    """How many approvals must be recorded before the champion may move.

    A blocking ``FAIL`` cannot be approved (0, and the promotion stops). A blocking
    ``NEEDS_APPROVAL`` needs at least one approval even when the environment requires none.
    Otherwise the environment's count applies.

    Args:
        verdict: the gate's verdict.
        approvals_required: the environment's ``approvals.<env>.required``.

    Returns:
        The number of approvals needed (0 means none).
    """
    if verdict.blocking and verdict.status == FAIL:
        return 0
    if verdict.blocking and verdict.status == NEEDS_APPROVAL:
        return max(1, approvals_required)
    return max(0, approvals_required)


def needs_approval(verdict: Verdict, approvals_required: int) -> bool:
    """``True`` when the promotion must wait for approvals (see :func:`approvals_needed`).

    Args:
        verdict: the gate's verdict.
        approvals_required: the environment's ``approvals.<env>.required``.

    Returns:
        Whether at least one approval is needed.
    """
    return approvals_needed(verdict, approvals_required) > 0


def policy_hash(policy: GatePolicy) -> str:
    """sha256 of the policy's canonical JSON: the same policy always gives the same hash.

    Args:
        policy: a gate policy.

    Returns:
        64 hex characters.
    """
    blob = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def metric_direction(metric: str, policy: GatePolicy) -> str | None:
    """``maximize`` / ``minimize`` for a metric name, or ``None`` when unknown.

    The primary metric takes the policy's direction; other names use the known lists.

    Args:
        metric: a metric name.
        policy: the gate policy.

    Returns:
        The direction, or ``None``.
    """
    if metric == policy.primary_metric:
        return policy.direction
    if metric in MAXIMIZE_METRICS:
        return "maximize"
    if metric in MINIMIZE_METRICS:
        return "minimize"
    return None


# --------------------------------------------------------------------------- the gate


def decide(
    policy: GatePolicy,
    candidate: ModelEvaluation,
    champion: ModelEvaluation | None,
    *,
    phi_found: list[str] | None = None,
    phi_scanned: str | None = None,
) -> Verdict:
    """Decide whether ``candidate`` may replace ``champion``.

    Args:
        policy: the environment's gate policy.
        candidate: the candidate measured on this run's evaluation rows.
        champion: the current champion measured on the same rows by the same code, or ``None``
            when the environment has no champion yet (first version).
        phi_found: the PHI scan's findings, one line each naming where and what, never the
            value (``artifact data/report.md line 12: value of PHI column ssn``); ``[]`` when
            the scan ran and found none. ``None`` means the scan did not run, which fails the
            ``phi`` rule when ``policy.phi_check`` is on.
        phi_scanned: what the scan looked at (``ScanSummary.text()``), for the rule's message.

    Returns:
        A :class:`Verdict` with one reason per evaluated rule.
    """
    first = champion is None
    comparison = _comparison(candidate, champion)
    common = dict(
        mode=policy.mode,
        comparison=comparison,
        first_version=first,
        primary_metric=policy.primary_metric,
        direction=policy.direction,
        candidate_version=candidate.version,
        champion_version=None if champion is None else champion.version,
    )
    if policy.mode == "disabled":
        reason = Reason(
            "gate", True, "disabled", None, "the gate is disabled by policy (mode: disabled): no rule was checked"
        )
        return Verdict(status=PASS, blocking=False, reasons=(reason,), bootstrap=None, fairness=(), **common)

    reasons: list[Reason] = []
    reasons += _limits(policy, candidate)
    marginal = False
    aligned = False
    bootstrap: BootstrapResult | None = None
    if champion is not None:
        rows_reason, aligned = _alignment(candidate, champion)
        reasons.append(rows_reason)
        improvement = _improvement(policy, candidate, champion)
        reasons += improvement
        sig_reason, bootstrap, computed = _significance(policy, candidate, champion, aligned)
        reasons.append(sig_reason)
        # "marginal": the point estimate clears the margins but the bootstrap bound does not
        marginal = computed and not sig_reason.passed and all(r.passed for r in improvement)
    fairness_reasons, fairness_rows = _fairness(policy, candidate, champion, aligned)
    reasons += fairness_reasons
    reasons.append(_phi(policy, phi_found, phi_scanned))

    # any hard failure -> FAIL; else anything the data cannot tell (an undecided rule, or a
    # marginal significance under "marginal: approval") -> NEEDS_APPROVAL; else PASS
    failed = [r for r in reasons if not r.passed]
    marginal_ok = marginal and policy.marginal == "approval"
    if not failed:
        status: Status = PASS
    elif all(r.undecided or (marginal_ok and r.rule == "significance") for r in failed):
        status = NEEDS_APPROVAL
    else:
        status = FAIL
    blocking = policy.mode == "enforce" and status != PASS
    return Verdict(
        status=status,
        blocking=blocking,
        reasons=tuple(reasons),
        bootstrap=bootstrap,
        fairness=tuple(fairness_rows),
        **common,
    )


# --------------------------------------------------------------------------- rules


def _value(metrics: Mapping[str, Any], name: str) -> float | None:
    """The metric as a float, or ``None`` when missing, NaN, infinite or not a number."""
    raw = metrics.get(name)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _describe_missing(metrics: Mapping[str, Any], name: str) -> str:
    if name not in metrics or metrics.get(name) is None:
        return "is missing"
    return f"is not a finite number ({metrics[name]!r})"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _limits(policy: GatePolicy, candidate: ModelEvaluation) -> list[Reason]:
    out: list[Reason] = []
    for kind, limits in (("floor", policy.floors), ("ceiling", policy.ceilings)):
        for metric, limit in limits.items():
            rule = f"{kind}.{metric}"
            value = _value(candidate.metrics, metric)
            if value is None:
                out.append(
                    Reason(
                        rule,
                        False,
                        None,
                        limit,
                        f"candidate {metric} {_describe_missing(candidate.metrics, metric)}; "
                        f"the {kind} {limit} cannot be checked",
                    )
                )
                continue
            ok = value >= limit - TOLERANCE if kind == "floor" else value <= limit + TOLERANCE
            sign = ">=" if kind == "floor" else "<="
            out.append(
                Reason(
                    rule,
                    ok,
                    value,
                    limit,
                    f"candidate {metric} {_fmt(value)} {'is' if ok else 'is not'} {sign} {limit}",
                )
            )
    return out


def _alignment(candidate: ModelEvaluation, champion: ModelEvaluation) -> tuple[Reason, bool]:
    rule = "evaluation_rows"
    if candidate.ids is None or champion.ids is None:
        who = " and ".join(n for n, e in (("candidate", candidate), ("champion", champion)) if e.ids is None)
        return Reason(
            rule, False, None, "same ids in the same order", f"evaluation rows differ: no row ids for the {who}"
        ), False
    n_a, n_b = len(candidate.ids), len(champion.ids)
    if n_a != n_b:
        return Reason(
            rule,
            False,
            {"candidate": n_a, "champion": n_b},
            "same ids in the same order",
            f"evaluation rows differ: candidate has {n_a} rows, champion {n_b}",
        ), False
    if candidate.ids != champion.ids:
        a, b = np.asarray(candidate.ids, dtype=object), np.asarray(champion.ids, dtype=object)
        mismatched = int((a != b).sum())
        first = int(np.flatnonzero(a != b)[0])
        same_set = set(candidate.ids) == set(champion.ids)
        how = "the same ids in a different order" if same_set else "different ids"
        return Reason(
            rule,
            False,
            {"mismatched_rows": mismatched, "first_row": first},
            "same ids in the same order",
            f"evaluation rows differ: {how} ({mismatched} of {n_a} positions differ, "
            f"first at row {first}: {candidate.ids[first]!r} vs {champion.ids[first]!r})",
        ), False
    if candidate.labels is None or champion.labels is None:
        return Reason(rule, False, None, "same labels", "evaluation rows differ: labels are missing"), False
    if candidate.labels.shape != champion.labels.shape or not np.array_equal(candidate.labels, champion.labels):
        diff = (
            int((np.asarray(candidate.labels) != np.asarray(champion.labels)).sum())
            if candidate.labels.shape == champion.labels.shape
            else n_a
        )
        return Reason(
            rule,
            False,
            {"mismatched_labels": diff},
            "same labels",
            f"evaluation rows differ: the same ids carry different labels in {diff} rows",
        ), False
    return Reason(
        rule, True, n_a, "same ids in the same order", f"candidate and champion were scored on the same {n_a} rows"
    ), True


def _improvement_of(policy: GatePolicy, cand: float, champ: float) -> float:
    return cand - champ if policy.direction == "maximize" else champ - cand


def _improvement(policy: GatePolicy, candidate: ModelEvaluation, champion: ModelEvaluation) -> list[Reason]:
    metric = policy.primary_metric
    cand = _value(candidate.metrics, metric)
    champ = _value(champion.metrics, metric)
    rules = (
        ("improvement.absolute", policy.min_absolute_improvement),
        ("improvement.relative", policy.min_relative_improvement),
    )
    if cand is None or champ is None:
        problems = []
        if cand is None:
            problems.append(f"candidate {metric} {_describe_missing(candidate.metrics, metric)}")
        if champ is None:
            problems.append(f"champion {metric} {_describe_missing(champion.metrics, metric)}")
        return [
            Reason(rule, False, None, limit, "; ".join(problems) + "; the improvement cannot be measured")
            for rule, limit in rules
        ]
    better = "higher" if policy.direction == "maximize" else "lower"
    absolute = _improvement_of(policy, cand, champ)
    ok_abs = absolute >= policy.min_absolute_improvement - TOLERANCE
    out = [
        Reason(
            "improvement.absolute",
            ok_abs,
            absolute,
            policy.min_absolute_improvement,
            f"{metric}: candidate {_fmt(cand)} vs champion {_fmt(champ)} ({better} is better): "
            f"improvement {absolute:+.4f} {'>=' if ok_abs else '<'} "
            f"{policy.min_absolute_improvement}",
        )
    ]
    if champ == 0.0:
        relative = math.inf if absolute > 0 else (0.0 if absolute == 0 else -math.inf)
    else:
        relative = absolute / abs(champ)
    ok_rel = relative >= policy.min_relative_improvement - TOLERANCE
    out.append(
        Reason(
            "improvement.relative",
            ok_rel,
            relative,
            policy.min_relative_improvement,
            f"{metric}: relative improvement {relative:+.2%} {'>=' if ok_rel else '<'} "
            f"{policy.min_relative_improvement:.2%} of the champion's",
        )
    )
    return out


def _significance(
    policy: GatePolicy, candidate: ModelEvaluation, champion: ModelEvaluation, aligned: bool
) -> tuple[Reason, BootstrapResult | None, bool]:
    """The significance reason, the bootstrap (when it ran) and whether it was computed."""
    rule = "significance"
    sig = policy.significance
    limit = policy.min_absolute_improvement
    metric = policy.primary_metric
    if not sig.enabled:
        return Reason(rule, True, None, None, "significance check disabled by policy"), None, False
    if not aligned:
        return (
            Reason(
                rule, False, None, limit, "not computed: the paired bootstrap needs both models scored on the same rows"
            ),
            None,
            False,
        )
    if candidate.scores is None or champion.scores is None or candidate.labels is None:
        return (
            Reason(rule, False, None, limit, "not computed: per-row scores are missing for the paired bootstrap"),
            None,
            False,
        )
    try:
        boot = stats.paired_bootstrap(
            metric,
            candidate.labels,
            candidate.scores,
            champion.scores,
            resamples=sig.resamples,
            seed=sig.seed,
            confidence=sig.confidence,
        )
    except KeyError:
        return (
            Reason(
                rule,
                False,
                None,
                limit,
                f"not computed: no paired bootstrap for metric {metric!r} (available: {', '.join(stats.METRICS)})",
            ),
            None,
            False,
        )
    except ValueError as exc:
        return Reason(rule, False, None, limit, f"not computed: {exc}"), None, False
    # the bound of the improvement on the "worse" side of the interval
    lower = boot.ci_low if policy.direction == "maximize" else -boot.ci_high
    if not math.isfinite(lower):
        return Reason(rule, False, None, limit, "not computed: the bootstrap gave no finite interval"), boot, False
    ok = lower >= limit - TOLERANCE
    pct = f"{sig.confidence:.0%}"
    return (
        Reason(
            rule,
            ok,
            lower,
            limit,
            f"{metric}: paired bootstrap ({boot.resamples} resamples, seed {boot.seed}) "
            f"improvement {_improvement_of(policy, boot.candidate, boot.champion):+.4f}, "
            f"{pct} interval lower bound {lower:+.4f} {'>=' if ok else '<'} {limit}",
        ),
        boot,
        True,
    )


def _fairness(
    policy: GatePolicy, candidate: ModelEvaluation, champion: ModelEvaluation | None, aligned: bool = False
) -> tuple[list[Reason], list[FairnessRow]]:
    rule_cfg = policy.fairness
    metric = rule_cfg.metric
    reasons: list[Reason] = []
    rows: list[FairnessRow] = []
    direction = metric_direction(metric, policy)
    for column in rule_cfg.subgroups:
        groups = candidate.subgroup_metrics.get(column)
        champ_groups = None if champion is None else champion.subgroup_metrics.get(column)
        gap_rule = f"fairness.gap.{column}"
        reg_rule = f"fairness.regression.{column}"
        check_regression = champion is not None and rule_cfg.max_regression is not None
        if not groups:
            msg = f"candidate has no {metric} by {column!r}; fairness cannot be checked"
            if rule_cfg.max_gap is not None:
                reasons.append(Reason(gap_rule, False, None, rule_cfg.max_gap, msg))
            if check_regression:
                reasons.append(Reason(reg_rule, False, None, rule_cfg.max_regression, msg))
            continue

        eligible: dict[str, float] = {}
        sizes: dict[str, int] = {}
        undefined: list[str] = []
        no_count: list[str] = []
        for group in sorted(groups, key=str):
            values = groups[group]
            n_raw = _value(values, "n")
            n = None if n_raw is None else int(n_raw)
            value = _value(values, metric)
            champ_value = None
            if champ_groups is not None and group in champ_groups:
                champ_value = _value(champ_groups[group], metric)
            is_eligible = n is not None and n >= rule_cfg.min_group_size
            if n is None:
                no_count.append(str(group))
            elif is_eligible:
                if value is None:
                    undefined.append(f"{group} (n={n})")
                else:
                    eligible[str(group)] = value
                    sizes[str(group)] = n
            diff = None if value is None or champ_value is None else value - champ_value
            rows.append(FairnessRow(column, str(group), n, value, champ_value, diff, is_eligible))

        data_problems = []
        if no_count:
            data_problems.append(f"no row count 'n' for group(s) {', '.join(no_count)}")
        if undefined:
            data_problems.append(f"{metric} missing or NaN for group(s) {', '.join(undefined)}")
        if data_problems:
            msg = f"{column}: " + "; ".join(data_problems) + "; fairness cannot be checked"
            if rule_cfg.max_gap is not None:
                reasons.append(Reason(gap_rule, False, None, rule_cfg.max_gap, msg))
            if check_regression:
                reasons.append(Reason(reg_rule, False, None, rule_cfg.max_regression, msg))
            continue

        # the bootstrap over the evaluation rows, when the per-row data allow it
        paired = None if not check_regression else (champion if aligned else None)
        boot, point_note = _group_bootstrap(policy, candidate, paired, column, sizes)

        if rule_cfg.max_gap is not None:
            if len(eligible) < 2:
                reasons.append(
                    Reason(
                        gap_rule,
                        True,
                        None,
                        rule_cfg.max_gap,
                        f"{column}: fewer than two groups with n >= {rule_cfg.min_group_size}; no gap to measure",
                    )
                )
            else:
                reasons.append(_gap(policy, column, eligible, boot, point_note))

        if check_regression:
            limit = rule_cfg.max_regression
            if direction is None:
                reasons.append(
                    Reason(
                        reg_rule,
                        False,
                        None,
                        limit,
                        f"{column}: unknown direction for metric {metric!r}; "
                        "cannot tell a regression from an improvement",
                    )
                )
                continue
            if not champ_groups:
                reasons.append(
                    Reason(
                        reg_rule,
                        False,
                        None,
                        limit,
                        f"champion has no {metric} by {column!r}; regression cannot be checked",
                    )
                )
                continue
            compared: dict[str, float] = {}  # group -> how much worse than under the champion
            for group, value in eligible.items():
                champ_value = _value(champ_groups.get(group, {}), metric)
                if champ_value is not None:
                    compared[group] = champ_value - value if direction == "maximize" else value - champ_value
            if not compared:
                reasons.append(
                    Reason(
                        reg_rule,
                        True,
                        None,
                        limit,
                        f"{column}: no group with n >= {rule_cfg.min_group_size} has a champion value to compare",
                    )
                )
                continue
            if boot is not None and "champion" not in boot.values:
                note = (
                    "the champion was not scored on the same rows"
                    if not aligned
                    else "per-row champion scores not available"
                )
            else:
                note = point_note
            reasons.append(_regression(policy, column, compared, direction, boot, note))
    return reasons, rows


def _group_bootstrap(
    policy: GatePolicy,
    candidate: ModelEvaluation,
    champion: ModelEvaluation | None,
    column: str,
    sizes: Mapping[str, int],
) -> tuple[stats.GroupBootstrap | None, str]:
    """The per-group bootstrap of the fairness metric by ``column``, or ``None`` and why not.

    ``champion`` (aligned with the candidate, or ``None``) joins the same resamples when given
    with per-row scores. The resamples, seed and confidence are the significance rule's.
    """
    metric = policy.fairness.metric
    sig = policy.significance
    if not sizes:
        return None, "no eligible group"
    if candidate.row_groups is None or column not in candidate.row_groups:
        return None, "per-row groups not available"
    if candidate.scores is None or candidate.labels is None:
        return None, "per-row scores not available"
    if metric not in stats.METRICS:
        return None, f"no bootstrap for metric {metric!r}"
    labels = np.asarray(candidate.row_groups[column])
    labels = labels if labels.dtype.kind == "U" else labels.astype(str)
    present, counts = np.unique(labels, return_counts=True)
    count = dict(zip((str(p) for p in present), (int(c) for c in counts)))
    for group, n in sizes.items():
        if count.get(group, 0) != n:
            return None, f"per-row groups do not match the group counts ({group}: {count.get(group, 0)} rows, n={n})"
    scores = {"candidate": candidate.scores}
    if champion is not None and champion.scores is not None:
        scores["champion"] = champion.scores
    try:
        boot = stats.group_bootstrap(
            metric,
            candidate.labels,
            labels,
            scores,
            only=sorted(sizes),
            resamples=sig.resamples,
            seed=sig.seed,
            confidence=sig.confidence,
        )
    except ValueError as exc:
        return None, f"no bootstrap ({exc})"
    return boot, ""


def _interval_text(policy: GatePolicy, low: float, high: float) -> str:
    sig = policy.significance
    return f"{sig.confidence:.0%} interval {low:.3f} to {high:.3f}"


def _against_limit(policy: GatePolicy, low: float, high: float, estimate: float, limit: float) -> str:
    """How an interval ``[low, high]`` around ``estimate`` stands against ``limit`` (the fairness rules).

    ``"over"``: even the lower bound exceeds it (FAIL); ``"within"``: the upper bound is within it
    (PASS); ``"estimate_within"``: the estimate is within it and the interval reaches past it,
    which PASSes under ``undecided_when: estimate_over_limit``; ``"straddles"``: a person must
    decide (NEEDS_APPROVAL).
    """
    if low > limit + TOLERANCE:
        return "over"
    if high <= limit + TOLERANCE:
        return "within"
    if estimate <= limit + TOLERANCE and policy.fairness.undecided_when == "estimate_over_limit":
        return "estimate_within"
    return "straddles"


def _gap(
    policy: GatePolicy,
    column: str,
    eligible: Mapping[str, float],
    boot: stats.GroupBootstrap | None,
    point_note: str,
) -> Reason:
    """``fairness.gap.<column>`` over two or more eligible groups."""
    rule = f"fairness.gap.{column}"
    metric = policy.fairness.metric
    limit = policy.fairness.max_gap
    hi = max(eligible, key=lambda g: eligible[g])
    lo = min(eligible, key=lambda g: eligible[g])
    gap = eligible[hi] - eligible[lo]
    interval = None
    if boot is not None:
        values = boot.values["candidate"]
        point = boot.point["candidate"]
        at = {g: i for i, g in enumerate(boot.groups)}
        # lower end: the bound of (best - worst group of the point estimates) that holds for
        # every ordered pair of groups at once, so picking the widest pair after the fact does
        # not make a gap out of noise; upper end: the upper bound of the spread (best minus
        # worst, whichever they are) of each resample
        pairs = [(i, j) for i in range(len(boot.groups)) for j in range(len(boot.groups)) if i != j]
        first, second = (np.array(side) for side in zip(*pairs))
        lows = stats.simultaneous_lower_bounds(
            values[:, first] - values[:, second], point[first] - point[second], boot.confidence
        )
        low = float(lows[pairs.index((at[hi], at[lo]))])
        _, high = boot.interval(np.nanmax(values, axis=1) - np.nanmin(values, axis=1))
        low = max(low, 0.0)  # a gap is never negative
        if math.isfinite(low) and math.isfinite(high):
            interval = (low, high)
        else:
            point_note = "the bootstrap gave no finite interval"
    if interval is None:
        ok = gap <= limit + TOLERANCE
        return Reason(
            rule,
            ok,
            gap,
            limit,
            f"{column}: candidate {metric} gap {gap:.4f} ({hi} {eligible[hi]:.4f} - {lo} {eligible[lo]:.4f}) "
            f"{'<=' if ok else '>'} {limit} (point estimate: {point_note})",
        )
    low, high = interval
    head = (
        f"{column}: candidate {metric} gap {gap:.3f} ({_interval_text(policy, low, high)}; "
        f"{hi} {eligible[hi]:.3f} - {lo} {eligible[lo]:.3f})"
    )
    standing = _against_limit(policy, low, high, gap, limit)
    if standing == "over":
        return Reason(
            rule, False, gap, limit, f"{head} is over {limit}: even the lower bound exceeds it", interval=interval
        )
    if standing == "within":
        return Reason(rule, True, gap, limit, f"{head} is within {limit}", interval=interval)
    if standing == "estimate_within":
        return Reason(
            rule,
            True,
            gap,
            limit,
            f"{head}: the estimate is within {limit}; the interval reaches past it (too few rows to show more)",
            interval=interval,
        )
    return Reason(
        rule, False, gap, limit, f"{head} straddles {limit}: a person must decide", undecided=True, interval=interval
    )


def _regression(
    policy: GatePolicy,
    column: str,
    compared: Mapping[str, float],
    direction: str,
    boot: stats.GroupBootstrap | None,
    point_note: str,
) -> Reason:
    """``fairness.regression.<column>``; ``compared``: group -> how much worse than under the champion."""
    rule = f"fairness.regression.{column}"
    limit = policy.fairness.max_regression
    worst_group = max(compared, key=lambda g: compared[g])
    worst = compared[worst_group]
    bounds: dict[str, tuple[float, float]] = {}
    if boot is not None and "champion" in boot.values:
        at = {g: i for i, g in enumerate(boot.groups)}
        cols = np.array([at[g] for g in compared])
        sign = 1.0 if direction == "maximize" else -1.0
        draws = sign * (boot.values["champion"][:, cols] - boot.values["candidate"][:, cols])
        point = sign * (boot.point["champion"][cols] - boot.point["candidate"][cols])
        # lower bounds that hold for all the column's groups at once (a FAIL must not come from
        # the luckiest of many groups); upper bounds per group: PASS needs every one of them
        lows = stats.simultaneous_lower_bounds(draws, point, boot.confidence)
        for k, group in enumerate(compared):
            high = boot.interval(draws[:, k])[1]
            if not (math.isfinite(lows[k]) and math.isfinite(high)):
                bounds = {}
                point_note = "the bootstrap gave no finite interval"
                break
            bounds[group] = (float(lows[k]), high)
    if not bounds:
        ok = worst <= limit + TOLERANCE
        if worst <= 0:
            msg = f"{column}: no group is worse than under the champion (largest change {worst:+.4f})"
        else:
            msg = (
                f"{column}: group {worst_group} is worse than under the champion by {worst:.4f} "
                f"{'<=' if ok else '>'} {limit}"
            )
        return Reason(rule, ok, worst, limit, f"{msg} (point estimate: {point_note})")

    # FAIL: the group whose lower bound is highest clears the limit; PASS: every upper bound is
    # within it; otherwise the data cannot tell
    by_low = max(bounds, key=lambda g: bounds[g][0])
    by_high = max(bounds, key=lambda g: bounds[g][1])

    def describe(group: str) -> str:
        low, high = bounds[group]
        return (
            f"group {group} is worse than under the champion by {compared[group]:+.3f} "
            f"({_interval_text(policy, low, high)})"
        )

    standing = _against_limit(policy, bounds[by_low][0], bounds[by_high][1], worst, limit)
    if standing == "over":
        return Reason(
            rule,
            False,
            compared[by_low],
            limit,
            f"{column}: {describe(by_low)}, over {limit}: even the lower bound exceeds it",
            interval=bounds[by_low],
        )
    if standing == "within":
        return Reason(
            rule,
            True,
            worst,
            limit,
            f"{column}: no group is worse than under the champion by more than {limit} "
            f"(highest upper bound: {describe(by_high)})",
            interval=bounds[by_high],
        )
    if standing == "estimate_within":
        return Reason(
            rule,
            True,
            worst,
            limit,
            f"{column}: no group's estimate is worse than under the champion by more than {limit}; "
            f"the widest interval reaches past it (too few rows to show more): {describe(by_high)}",
            interval=bounds[by_high],
        )
    by_high = (
        max(compared, key=lambda g: compared[g]) if policy.fairness.undecided_when == "estimate_over_limit" else by_high
    )
    return Reason(
        rule,
        False,
        compared[by_high],
        limit,
        f"{column}: {describe(by_high)} straddles {limit}: a person must decide",
        undecided=True,
        interval=bounds[by_high],
    )


def _phi(policy: GatePolicy, phi_found: list[str] | None, scanned: str | None = None) -> Reason:
    what = f"scanned: {scanned}" if scanned else "scanned: (no summary given)"
    if phi_found:
        found = sorted(str(c) for c in phi_found)
        return Reason("phi", False, found, [], f"PHI found outside bronze ({what}): " + ", ".join(found))
    if phi_found is None:
        if policy.phi_check:
            return Reason("phi", False, None, [], "the PHI scan did not run (no result given); the policy requires it")
        return Reason("phi", True, None, None, "PHI check disabled by policy")
    return Reason("phi", True, [], [], f"{what}; no PHI found")


def _comparison(candidate: ModelEvaluation, champion: ModelEvaluation | None) -> dict[str, dict[str, float | None]]:
    names = set(candidate.metrics) | (set(champion.metrics) if champion is not None else set())
    out: dict[str, dict[str, float | None]] = {}
    for name in sorted(names):
        cand = _value(candidate.metrics, name)
        champ = None if champion is None else _value(champion.metrics, name)
        out[name] = {
            "candidate": cand,
            "champion": champ,
            "difference": None if cand is None or champ is None else cand - champ,
        }
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, type(None), str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    return str(value)
