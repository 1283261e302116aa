"""Drift of one feature and of a whole dataset, from two histograms on the same bins (pure).

The profiles (:mod:`pipelines.drift`) give, per feature, counts on shared bins for the current
window and for a reference (the champion's training snapshot, or the previous window). This
module turns them into distances and a verdict.

Distances: population stability index, Jensen-Shannon distance (base 2, in [0, 1]), total
variation, Wasserstein-1 (numeric features only, mass at the bins' midpoints, in the feature's
units) and the chi-squared test of the 2 x k table of counts. The fine histograms of a profile
(100 bins) are first merged into about ``bins`` bins of equal *reference* mass
(:func:`coarsen_groups`, the same grouping applied to both sides), so that the test has enough
expected counts per cell; Wasserstein uses the fine bins.

Why a feature needs BOTH a corrected test and an effect size: a monitored day tests every model
feature (538 of them in the shipped project). At ``alpha = 0.01`` per feature, an undrifted day
would flag about 5 features by chance, and a day that does change would be flagged on
meaningless shifts: with a million rows every difference is significant. So

* the test's p-value must be below ``alpha`` *corrected for the number of features tested*
  (Bonferroni: ``alpha / m``; Holm's step-down, uniformly more powerful, is offered too), which
  keeps the chance of any false flag in an undrifted day near ``alpha`` (family-wise control);
* AND the effect (``rule.metric``) must exceed ``rule.threshold``: significance alone fires on
  trivial shifts of a large day, the effect alone on the noise of a small day;
* the **dataset drifts** when more than ``max_drifted_share`` of the tested features drift: one
  feature is a feature's problem (it is listed), a share of them is the model's.

A feature with fewer than ``min_rows`` non-null values on either side is not tested (it is
reported, and does not count in ``m``). As the effect, Wasserstein is divided by the reference's
standard deviation, so one threshold fits every feature's units (as a reported number it stays in
the feature's units); categorical features have no order, hence no Wasserstein distance: with that
metric they are judged on their Jensen-Shannon distance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

METRICS = ("js_distance", "population_stability_index", "tv_distance", "wasserstein_distance")
CORRECTIONS = ("bonferroni", "holm", "none")
KINDS = ("numeric", "categorical")


def _proportions(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else c


def psi(expected_counts: Any, actual_counts: Any, eps: float = 1e-4) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over proportions floored at ``eps``.

    The floor keeps a bin empty on one side finite (a new value range costs ``~ln(share/eps)``).
    """
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

    return float(np.sqrt(min(1.0, max(0.0, (kl(p) + kl(q)) / 2))))


def tv_distance(p_counts: Any, q_counts: Any) -> float:
    """Total variation distance: half the L1 distance of the proportions, in [0, 1]."""
    return float(0.5 * np.abs(_proportions(p_counts) - _proportions(q_counts)).sum())


def midpoints(edges: Any) -> np.ndarray:
    """The bins' midpoints (where a binned distance puts each bin's mass)."""
    e = np.asarray(edges, dtype=float)
    return (e[:-1] + e[1:]) / 2


def wasserstein_binned(edges: Any, p_counts: Any, q_counts: Any) -> float:
    """Wasserstein-1 between two histograms on ``edges``, each bin's mass at its midpoint.

    Equal to ``scipy.stats.wasserstein_distance(mids, mids, p, q)``; in the feature's units.
    """
    mids = midpoints(edges)
    p, q = _proportions(p_counts), _proportions(q_counts)
    if len(mids) != len(p) or len(p) != len(q):
        raise ValueError(f"{len(edges)} edges need {len(edges) - 1} counts, got {len(p)} and {len(q)}")
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    # 1-D: the L1 distance between the two CDFs, integrated over the gaps between midpoints
    cdf = np.cumsum(p - q)[:-1]
    return float(np.sum(np.abs(cdf) * np.diff(mids)))


def chi_squared(p_counts: Any, q_counts: Any) -> tuple[float, float]:
    """Chi-squared test of homogeneity of the 2 x k table (no continuity correction).

    Bins empty on both sides are dropped (they carry no information and would divide by zero);
    with fewer than 2 bins left, or an empty side, there is nothing to test: ``(0.0, 1.0)``.
    """
    table = np.vstack([np.asarray(p_counts, float), np.asarray(q_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return 0.0, 1.0
    from scipy.stats import chi2  # here: Spark's Python workers import this module, not the test

    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(chi2.sf(statistic, table.shape[1] - 1))


def coarsen_groups(reference_counts: Any, bins: int) -> list[int]:
    """Group ids merging consecutive fine bins into about ``bins`` bins of equal reference mass.

    A group closes where the reference's cumulative mass crosses the next ``k / bins``; a fine
    bin holding at least ``1 / bins`` of the mass (a discrete column's point mass) is a group of
    its own; a group without reference mass joins its left neighbour. Decided on the reference
    only: apply the same groups to the other side with :func:`coarsen_like`. Fewer fine bins
    than ``bins``: kept as they are.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins!r}")
    c = np.asarray(reference_counts, dtype=float)
    total = c.sum()
    if len(c) <= bins or total <= 0:
        return list(range(len(c)))
    groups: list[int] = []
    mass: list[float] = [0.0]
    cum, boundary = 0.0, 1.0 / bins
    for share in c / total:
        heavy = share >= 1.0 / bins - 1e-12
        if heavy and mass[-1] > 0:  # the point mass starts a group of its own
            mass.append(0.0)
        groups.append(len(mass) - 1)
        mass[-1] += share
        cum += share
        if heavy or cum >= boundary - 1e-9:
            mass.append(0.0)
            boundary = (np.floor(cum * bins + 1e-9) + 1) / bins
    label, last = [], None
    for g, m in enumerate(mass):  # empty groups join the left neighbour (the first: its right one)
        if m > 0 or last is None:
            last = g if m > 0 else None
        label.append(last)
    first = next(g for g, m in enumerate(mass) if m > 0)
    label = [first if lb is None else lb for lb in label]
    _, dense = np.unique([label[g] for g in groups], return_inverse=True)
    return [int(i) for i in dense]


def coarsen_like(groups: Sequence[int], counts: Any) -> np.ndarray:
    """Sum ``counts`` into the groups :func:`coarsen_groups` made (of the same length)."""
    c = np.asarray(counts, dtype=float)
    if len(groups) != len(c):
        raise ValueError(f"{len(groups)} groups for {len(c)} counts")
    out = np.zeros(max(groups) + 1 if len(groups) else 0)
    np.add.at(out, np.asarray(groups, dtype=int), c)
    return out


def coarsen(edges: Sequence[float] | None, counts: Any, bins: int) -> tuple[list[float] | None, np.ndarray]:
    """Merge a fine histogram into about ``bins`` bins of equal mass: ``(edges, counts)``.

    ``edges`` may be ``None`` (categorical levels). To merge another histogram the same way,
    use ``coarsen_like(coarsen_groups(counts, bins), other)``.
    """
    groups = coarsen_groups(counts, bins)
    merged = coarsen_like(groups, counts)
    if edges is None:
        return None, merged
    if len(edges) != len(groups) + 1:
        raise ValueError(f"{len(edges)} edges for {len(groups)} counts")
    last = [i for i in range(len(groups)) if i == len(groups) - 1 or groups[i + 1] != groups[i]]
    return [float(edges[0])] + [float(edges[i + 1]) for i in last], merged


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
            raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {self.alpha!r}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold!r}")
        if not 0 <= self.max_drifted_share < 1:
            raise ValueError(f"max_drifted_share must be in [0, 1), got {self.max_drifted_share!r}")
        if int(self.min_rows) != self.min_rows or self.min_rows < 1:
            raise ValueError(f"min_rows must be an integer of at least 1, got {self.min_rows!r}")


@dataclass
class FeatureDrift:
    """One feature's distances between the reference (``*_cmp``) and the current window."""

    column_name: str
    kind: str  # numeric | categorical
    count: int  # non-null values of the current window
    count_cmp: int  # non-null values of the reference
    population_stability_index: float | None = None
    js_distance: float | None = None
    tv_distance: float | None = None
    wasserstein_distance: float | None = None  # numeric only, in the feature's units
    chi_squared_statistic: float | None = None
    chi_squared_pvalue: float | None = None
    drifted: bool = False
    importance: float | None = None
    tested: bool = True  # False: fewer than min_rows non-null values on a side
    effect: float | None = None  # the rule's metric as judged (Wasserstein: per reference sd)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetDrift:
    """Every feature's verdict (drifted first, by importance) and the dataset's."""

    features: list[FeatureDrift]
    tested: int
    drifted_share: float
    threshold_p: float  # the per-feature p-value threshold after correction (Holm: the smallest)
    rule: DriftRule
    drifted: bool
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_count(self) -> int:
        return sum(1 for f in self.features if f.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "tested": self.tested,
            "drifted_count": self.drifted_count,
            "drifted_share": self.drifted_share,
            "threshold_p": self.threshold_p,
            "drifted": self.drifted,
            "rule": asdict(self.rule),
            "notes": list(self.notes),
        }


def feature_drift(
    name: str,
    kind: str,
    reference_counts: Any,
    current_counts: Any,
    *,
    edges: Sequence[float] | None = None,
    reference_sd: float | None = None,
    rule: DriftRule = DriftRule(),
    importance: float | None = None,
    bins: int | None = None,
) -> FeatureDrift:
    """The distances of one feature on shared bins (no verdict yet: :func:`decide` judges the family).

    With ``bins``, PSI, JS, TV and the test use the histograms merged into about ``bins`` bins of
    equal reference mass; Wasserstein (numeric, given ``edges``) always uses the bins as given.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"{name}: the two histograms differ in shape ({ref.shape} and {cur.shape})")
    out = FeatureDrift(name, kind, int(round(cur.sum())), int(round(ref.sum())), importance=importance)
    out.tested = out.count >= rule.min_rows and out.count_cmp >= rule.min_rows
    numeric = kind == "numeric" and edges is not None
    if ref.sum() <= 0 or cur.sum() <= 0:  # a side without values: nothing to measure
        out.population_stability_index = out.js_distance = out.tv_distance = 0.0
        out.wasserstein_distance = 0.0 if numeric else None
        out.chi_squared_statistic, out.chi_squared_pvalue = 0.0, 1.0
    else:
        r, c = ref, cur
        if bins:
            groups = coarsen_groups(ref, bins)
            r, c = coarsen_like(groups, ref), coarsen_like(groups, cur)
        out.population_stability_index = psi(r, c)
        out.js_distance = js_distance(r, c)
        out.tv_distance = tv_distance(r, c)
        out.chi_squared_statistic, out.chi_squared_pvalue = chi_squared(r, c)
        if numeric:
            out.wasserstein_distance = wasserstein_binned(edges, ref, cur)
    if rule.metric == "wasserstein_distance":
        if out.wasserstein_distance is None:
            out.effect = out.js_distance
        else:
            out.effect = out.wasserstein_distance / reference_sd if reference_sd else 0.0
    else:
        out.effect = getattr(out, rule.metric)
    return out


def significant(pvalues: Sequence[float], rule: DriftRule) -> list[bool]:
    """Which p-values pass ``rule.alpha`` after the rule's correction for their number."""
    m = len(pvalues)
    if rule.correction == "none":
        return [p < rule.alpha for p in pvalues]
    if rule.correction == "bonferroni":
        return [p < rule.alpha / m for p in pvalues]
    out = [False] * m  # Holm: step down the sorted p-values, stop at the first that fails
    for rank, i in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        if pvalues[i] >= rule.alpha / (m - rank):
            break
        out[i] = True
    return out


def decide(
    features: Sequence[FeatureDrift], rule: DriftRule, importance: Mapping[str, float] | None = None
) -> DatasetDrift:
    """Each tested feature's verdict (corrected test AND effect) and the dataset's (share).

    ``importance`` (feature -> the model's importance) overrides the features' own; it only ranks.
    """
    features = list(features)
    for f in features:
        f.drifted = False
        if importance is not None and f.column_name in importance:
            f.importance = float(importance[f.column_name])
    tested = [f for f in features if f.tested]
    pvalues = [1.0 if f.chi_squared_pvalue is None else f.chi_squared_pvalue for f in tested]
    for f, sig in zip(tested, significant(pvalues, rule)):
        f.drifted = bool(sig and f.effect is not None and f.effect > rule.threshold)
    drifted = sum(1 for f in tested if f.drifted)
    share = drifted / len(tested) if tested else 0.0
    threshold_p = rule.alpha / len(tested) if tested and rule.correction != "none" else rule.alpha

    def key(f: FeatureDrift) -> tuple:
        return (not f.drifted, f.importance is None, -(f.importance or 0.0), -(f.effect or 0.0), f.column_name)

    untested = [f.column_name for f in features if not f.tested]
    notes = []
    if untested:
        shown = ", ".join(untested[:10]) + (", ..." if len(untested) > 10 else "")
        notes.append(
            f"{len(untested)} feature(s) with fewer than {rule.min_rows} values on a side, not tested: {shown}"
        )
    return DatasetDrift(
        features=sorted(features, key=key),
        tested=len(tested),
        drifted_share=share,
        threshold_p=threshold_p,
        rule=rule,
        drifted=share > rule.max_drifted_share,
        notes=notes,
    )
