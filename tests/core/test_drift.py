"""Drift distances and rules against scipy, and the family-wise decision (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, wasserstein_distance

from promoter.core import drift

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("trial", range(5))
def test_distances_match_scipy(trial):
    k = int(RNG.integers(3, 15))
    p, q = RNG.integers(1, 500, k).astype(float), RNG.integers(1, 500, k).astype(float)
    edges = np.cumsum(RNG.uniform(0.1, 2.0, k + 1))
    mids = (edges[:-1] + edges[1:]) / 2
    assert drift.js_distance(p, q) == pytest.approx(jensenshannon(p / p.sum(), q / q.sum(), base=2), abs=1e-12)
    assert drift.wasserstein_binned(edges, p, q) == pytest.approx(wasserstein_distance(mids, mids, p, q), abs=1e-12)
    stat, pvalue = drift.chi_squared(p, q)
    ref = chi2_contingency(np.vstack([p, q]), correction=False)
    assert (stat, pvalue) == (pytest.approx(ref[0], rel=1e-12), pytest.approx(ref[1], rel=1e-9, abs=1e-300))
    assert drift.tv_distance(p, q) == pytest.approx(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def test_psi_by_hand_and_its_floor():
    e, a = np.array([50, 30, 20.0]), np.array([40, 30, 30.0])
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + 0 + (0.3 - 0.2) * np.log(0.3 / 0.2)
    assert drift.psi(e, a) == pytest.approx(by_hand)
    assert drift.psi(e, e) == 0.0
    assert np.isfinite(drift.psi([10, 0], [0, 10]))  # empty bins are floored, never infinite


def test_chi_squared_ignores_bins_empty_on_both_sides_and_degenerate_tables():
    assert drift.chi_squared([5, 0, 5], [4, 0, 6]) == pytest.approx(drift.chi_squared([5, 5], [4, 6]))
    assert drift.chi_squared([10], [12]) == (0.0, 1.0)


def test_coarsen_merges_on_reference_mass_and_applies_the_same_grouping():
    ref = np.array([1] * 100)
    groups = drift.coarsen_groups(ref, 10)
    assert len(set(groups)) == 10 and drift.coarsen_like(groups, ref).tolist() == [10.0] * 10
    cur = np.arange(100)
    assert drift.coarsen_like(groups, cur).sum() == cur.sum()
    assert drift.coarsen_groups([3, 4], 10) == [0, 1]  # fewer bins than asked: kept


def _feature(name, p, importance=None, effect=0.5, tested=True):
    f = drift.FeatureDrift(name, "numeric", 1000, 1000, chi_squared_pvalue=p, importance=importance, effect=effect)
    f.tested = tested
    return f


def test_bonferroni_holm_and_none():
    ps = [0.0001, 0.002, 0.004, 0.3]  # m = 4, alpha 0.01: bonferroni 0.0025
    for correction, expected in (("bonferroni", 2), ("holm", 3), ("none", 3)):
        d = drift.decide([_feature(f"f{i}", p) for i, p in enumerate(ps)], drift.DriftRule(correction=correction))
        assert sum(f.drifted for f in d.features) == expected, correction
    d = drift.decide([_feature(f"f{i}", p) for i, p in enumerate(ps)], drift.DriftRule())
    assert d.threshold_p == pytest.approx(0.0025) and d.drifted_share == 0.5 and d.drifted


def test_both_significance_and_effect_are_needed_and_untested_features_do_not_count():
    rule = drift.DriftRule(threshold=0.1, max_drifted_share=0.3)
    feats = [
        _feature("tiny_effect", 1e-30, effect=0.01),
        _feature("noise", 0.5, effect=0.9),
        _feature("real", 1e-30, effect=0.4),
        _feature("small_day", 1e-30, tested=False),
    ]
    d = drift.decide(feats, rule)
    assert [f.column_name for f in d.features if f.drifted] == ["real"]
    assert d.tested == 3 and d.drifted_share == pytest.approx(1 / 3) and d.drifted


def test_drifted_features_come_first_ranked_by_importance():
    feats = [
        _feature("a", 1e-9, importance=0.1),
        _feature("b", 0.9, importance=0.9),
        _feature("c", 1e-9, importance=0.7),
        _feature("d", 1e-9),
    ]
    d = drift.decide(feats, drift.DriftRule())
    assert [f.column_name for f in d.features] == ["c", "a", "d", "b"]
    out = d.to_dict()
    assert out["drifted_count"] == 3 and out["rule"]["correction"] == "bonferroni"


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"metric": "kl"}, "metric"),
        ({"correction": "fdr"}, "correction"),
        ({"alpha": 1.5}, "alpha"),
        ({"threshold": 0}, "threshold"),
        ({"max_drifted_share": 1.0}, "max_drifted_share"),
        ({"min_rows": 0}, "min_rows"),
    ],
)
def test_rule_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        drift.DriftRule(**kw)


def test_wasserstein_effect_is_per_reference_sd():
    f = drift.feature_drift(
        "x",
        "numeric",
        [10, 10, 0],
        [0, 10, 10],
        edges=[0, 1, 2, 3],
        reference_sd=2.0,
        rule=drift.DriftRule(metric="wasserstein_distance"),
    )
    assert f.wasserstein_distance == pytest.approx(1.0) and f.effect == pytest.approx(0.5)
