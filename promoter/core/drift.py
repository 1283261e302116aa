"""Drift of one feature and of a whole dataset, from two histograms on the same bins (pure).

The profiles (:mod:`pipelines.drift`) give, per feature, counts on shared bins for the current
window and for a reference (the champion's training snapshot, or the previous window). This
module turns them into distances and a verdict:

* distances: population stability index, Jensen-Shannon distance (base 2, in [0, 1]), total
  variation, Wasserstein-1 (numeric features, on the bins' midpoints, in the feature's units) and
  the chi-squared test of the 2 x k table of counts;
* a **feature drifts** when its chi-squared p-value is below ``alpha`` *corrected for the number
  of features tested* (Bonferroni: ``alpha / m``; Holm's step-down is also offered) **and** its
  effect (``rule.metric``) exceeds ``rule.threshold``. Significance alone fires on trivial shifts
  of a million rows; effect size alone fires on noise of a small day; both together keep the
  family-wise false-alarm rate of 538 features near ``alpha``;
* the **dataset drifts** when more than ``max_drifted_share`` of the tested features drift.

Wasserstein as the effect metric is divided by the reference's standard deviation (so one
threshold fits every feature's units); as a reported number it stays in the feature's units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

METRICS = ("js_distance", "population_stability_index", "tv_distance", "wasserstein_distance")
CORRECTIONS = ("bonferroni", "holm", "none")


def _proportions(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else c


def psi(expected_counts: Any, actual_counts: Any, eps: float = 1e-4) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over proportions floored at ``eps``."""
    e = np.maximum(_proportions(expected_counts), eps)
    a = np.maximum(_proportions(actual_counts), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(p_counts: Any, q_counts: Any) -> float:
    """Jensen-Shannon distance in base 2 (the square root of the divergence), in [0, 1]."""
    p, q = _proportions(p_counts), _proportions(q_counts)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def tv_distance(p_counts: Any, q_counts: Any) -> float:
    """Total variation distance: half the L1 distance of the proportions."""
    return float(0.5 * np.abs(_proportions(p_counts) - _proportions(q_counts)).sum())


def midpoints(edges: Any) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    return (e[:-1] + e[1:]) / 2


def wasserstein_binned(edges: Any, p_counts: Any, q_counts: Any) -> float:
    """Wasserstein-1 between two histograms on ``edges``, their mass at the bins' midpoints."""
    mids = midpoints(edges)
    p, q = _proportions(p_counts), _proportions(q_counts)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    # 1-D: the L1 distance of the two CDFs, integrated over the gaps between midpoints
    cdf = np.cumsum(p - q)[:-1]
    return float(np.sum(np.abs(cdf) * np.diff(mids)))


def chi_squared(p_counts: Any, q_counts: Any) -> tuple[float, float]:
    """Chi-squared test of homogeneity of the 2 x k table (no continuity correction)."""
    table = np.vstack([np.asarray(p_counts, float), np.asarray(q_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof))


def coarsen_groups(reference_counts: Any, bins: int) -> list[int]:
    """Group ids that merge consecutive fine bins into about ``bins`` bins of equal reference mass.

    Decided on the reference only, so the current window is merged the same way.
    """
    c = np.asarray(reference_counts, dtype=float)
    if len(c) <= bins or c.sum() <= 0:
        return list(range(len(c)))
    cum = np.cumsum(c) / c.sum()
    ids = np.minimum((cum * bins - 1e-9).astype(int), bins - 1)
    ids = np.maximum.accumulate(ids)
    _, dense = np.unique(ids, return_inverse=True)
    return [int(i) for i in dense]


def coarsen_like(groups: list[int], counts: Any) -> np.ndarray:
    """Sum ``counts`` into the groups :func:`coarsen_groups` made."""
    out = np.zeros(max(groups) + 1 if groups else 0)
    np.add.at(out, np.asarray(groups, dtype=int), np.asarray(counts, dtype=float))
    return out


@dataclass(frozen=True)
class DriftRule:
    """When a feature, and the dataset, count as drifted (see the module docstring)."""

    metric: str = "js_distance"
    threshold: float = 0.1
    alpha: float = 0.01
    correction: str = "bonferroni"
    max_drifted_share: float = 0.1
    min_rows: int = 100

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha!r}")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be positive, got {self.threshold!r}")
        if not 0 <= self.max_drifted_share < 1:
            raise ValueError(f"max_drifted_share must be in [0, 1), got {self.max_drifted_share!r}")
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be at least 1, got {self.min_rows!r}")


@dataclass
class FeatureDrift:
    column_name: str
    kind: str  # numeric | categorical
    count: int
    count_cmp: int
    population_stability_index: float | None = None
    js_distance: float | None = None
    tv_distance: float | None = None
    wasserstein_distance: float | None = None  # numeric only, in the feature's units
    chi_squared_statistic: float | None = None
    chi_squared_pvalue: float | None = None
    drifted: bool = False
    importance: float | None = None
    tested: bool = True
    effect: float | None = None  # the rule's metric as judged (wasserstein: per reference sd)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetDrift:
    features: list[FeatureDrift]
    tested: int
    drifted_share: float
    threshold_p: float
    rule: DriftRule
    drifted: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "tested": self.tested,
            "drifted_count": sum(1 for f in self.features if f.drifted),
            "drifted_share": self.drifted_share,
            "threshold_p": self.threshold_p,
            "drifted": self.drifted,
            "rule": asdict(self.rule),
        }


def feature_drift(
    name: str,
    kind: str,
    reference_counts: Any,
    current_counts: Any,
    *,
    edges: Any = None,
    reference_sd: float | None = None,
    rule: DriftRule = DriftRule(),
    importance: float | None = None,
) -> FeatureDrift:
    """The distances of one feature (no verdict yet: :func:`decide` corrects for the family)."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    out = FeatureDrift(name, kind, int(cur.sum()), int(ref.sum()), importance=importance)
    out.tested = out.count >= rule.min_rows and out.count_cmp >= rule.min_rows
    out.population_stability_index = psi(ref, cur)
    out.js_distance = js_distance(ref, cur)
    out.tv_distance = tv_distance(ref, cur)
    if kind == "numeric" and edges is not None:
        out.wasserstein_distance = wasserstein_binned(edges, ref, cur)
    out.chi_squared_statistic, out.chi_squared_pvalue = chi_squared(ref, cur)
    effect = getattr(out, rule.metric)
    if rule.metric == "wasserstein_distance" and effect is not None:
        effect = effect / reference_sd if reference_sd else 0.0
    out.effect = effect
    return out


def _significant(pvalues: list[float], rule: DriftRule) -> list[bool]:
    m = len(pvalues)
    if m == 0:
        return []
    if rule.correction == "none":
        return [p < rule.alpha for p in pvalues]
    if rule.correction == "bonferroni":
        return [p < rule.alpha / m for p in pvalues]
    order = sorted(range(m), key=lambda i: pvalues[i])  # Holm's step-down
    out = [False] * m
    for rank, i in enumerate(order):
        if pvalues[i] < rule.alpha / (m - rank):
            out[i] = True
        else:
            break
    return out


def decide(features: list[FeatureDrift], rule: DriftRule) -> DatasetDrift:
    """Each tested feature's verdict (corrected test AND effect) and the dataset's (share)."""
    tested = [f for f in features if f.tested]
    significant = _significant(
        [f.chi_squared_pvalue if f.chi_squared_pvalue is not None else 1.0 for f in tested], rule
    )
    for f, sig in zip(tested, significant):
        f.drifted = bool(sig and f.effect is not None and f.effect > rule.threshold)
    drifted = sum(1 for f in tested if f.drifted)
    share = drifted / len(tested) if tested else 0.0
    threshold_p = rule.alpha / len(tested) if tested and rule.correction != "none" else rule.alpha

    def key(f: FeatureDrift) -> tuple:
        imp = f.importance
        return (not f.drifted, imp is None, -(imp or 0.0), -(f.effect or 0.0), f.column_name)

    return DatasetDrift(
        features=sorted(features, key=key),
        tested=len(tested),
        drifted_share=share,
        threshold_p=threshold_p,
        rule=rule,
        drifted=share > rule.max_drifted_share,
    )
