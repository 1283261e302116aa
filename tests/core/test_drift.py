"""Drift distances against scipy, the merging of bins, and the family-wise decision (pure)."""

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
    assert stat == pytest.approx(ref[0], rel=1e-12)
    assert pvalue == pytest.approx(ref[1], rel=1e-9, abs=1e-300)
    assert drift.tv_distance(p, q) == pytest.approx(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def test_js_distance_bounds():
    assert drift.js_distance([5, 0], [0, 7]) == pytest.approx(1.0)  # disjoint supports: the maximum
    assert drift.js_distance([3, 4, 5], [6, 8, 10]) == pytest.approx(0.0, abs=1e-9)  # same proportions


def test_psi_by_hand_and_its_floor():
    e, a = np.array([50, 30, 20.0]), np.array([40, 30, 30.0])
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + 0 + (0.3 - 0.2) * np.log(0.3 / 0.2)
    assert drift.psi(e, a) == pytest.approx(by_hand)
    assert drift.psi(e, e) == 0.0
    # an empty bin is floored at eps: finite, and equal to the hand formula with eps
    assert drift.psi([10, 0], [5, 5]) == pytest.approx((0.5 - 1) * np.log(0.5 / 1) + (0.5 - 1e-4) * np.log(0.5 / 1e-4))


def test_chi_squared_drops_bins_empty_on_both_sides_and_degenerate_tables():
    p, q = [5, 0, 7, 0, 9], [4, 0, 6, 3, 11]
    ref = chi2_contingency([[5, 7, 0, 9], [4, 6, 3, 11]], correction=False)
    assert drift.chi_squared(p, q) == (pytest.approx(ref[0]), pytest.approx(ref[1]))
    assert drift.chi_squared([10, 0], [12, 0]) == (0.0, 1.0)  # one non-empty bin: nothing to test
    assert drift.chi_squared([3, 4], [0, 0]) == (0.0, 1.0)  # an empty side


def test_coarsen_merges_on_reference_mass_and_applies_the_same_grouping():
    ref = np.ones(100)
    groups = drift.coarsen_groups(ref, 10)
    assert drift.coarsen_like(groups, ref).tolist() == [10.0] * 10
    cur = np.arange(100.0)
    assert drift.coarsen_like(groups, cur).tolist() == [cur[i * 10 : i * 10 + 10].sum() for i in range(10)]
    assert drift.coarsen_groups([3, 4], 10) == [0, 1]  # fewer bins than asked: kept


def test_coarsen_keeps_a_point_mass_alone_and_empty_groups_join_their_left_neighbour():
    ref = np.array([0, 0, 1, 1, 60, 0, 0, 1, 1, 1, 35.0])  # empty leading bins, point masses of 60 % and 35 %
    groups = drift.coarsen_groups(ref, 4)
    assert groups == [0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 3]
    assert drift.coarsen_like(groups, ref).tolist() == [2.0, 60.0, 3.0, 35.0]
    coarse_edges, counts = drift.coarsen(list(range(12)), ref, 4)
    assert coarse_edges == [0, 4, 5, 10, 11] and counts.tolist() == [2.0, 60.0, 3.0, 35.0]  # [4, 5) alone
    assert drift.coarsen_groups([5, 5, 5, 5, 0, 0], 2) == [0, 0, 1, 1, 1, 1]  # trailing empty bins join left
    assert drift.coarsen(None, [3, 1, 1, 5], 2)[0] is None


def test_feature_drift_merges_both_sides_on_the_reference_and_keeps_fine_bins_for_wasserstein():
    ref = RNG.integers(50, 150, 40).astype(float)
    cur = RNG.integers(50, 150, 40).astype(float)
    edges = np.linspace(-2, 2, 41)
    f = drift.feature_drift("x", "numeric", ref, cur, edges=edges, reference_sd=0.5, bins=8)
    groups = drift.coarsen_groups(ref, 8)
    r, c = drift.coarsen_like(groups, ref), drift.coarsen_like(groups, cur)
    assert len(r) == 8
    assert f.js_distance == pytest.approx(jensenshannon(r / r.sum(), c / c.sum(), base=2))
    assert f.chi_squared_pvalue == pytest.approx(chi2_contingency([r, c], correction=False)[1])
    mids = (edges[:-1] + edges[1:]) / 2
    assert f.wasserstein_distance == pytest.approx(wasserstein_distance(mids, mids, ref, cur))
    assert (f.count, f.count_cmp, f.tested) == (int(cur.sum()), int(ref.sum()), True)
    assert f.effect == f.js_distance
    small = drift.feature_drift("x", "numeric", ref[:1], cur[:1], edges=edges[:2], rule=drift.DriftRule(min_rows=10**6))
    assert not small.tested


def test_wasserstein_effect_is_per_reference_sd_and_categoricals_fall_back_to_js():
    rule = drift.DriftRule(metric="wasserstein_distance")
    f = drift.feature_drift("x", "numeric", [10, 10, 0], [0, 10, 10], edges=[0, 1, 2, 3], reference_sd=2.0, rule=rule)
    assert f.wasserstein_distance == pytest.approx(1.0) and f.effect == pytest.approx(0.5)
    g = drift.feature_drift("g", "categorical", [10, 10, 0], [0, 10, 10], rule=rule)
    assert g.wasserstein_distance is None and g.effect == pytest.approx(g.js_distance) and g.effect > 0.5


def _feature(name, p, importance=None, effect=0.5, tested=True):
    f = drift.FeatureDrift(name, "numeric", 1000, 1000, chi_squared_pvalue=p, importance=importance, effect=effect)
    f.tested = tested
    return f


def test_bonferroni_holm_and_none():
    ps = [0.0001, 0.002, 0.003, 0.008, 0.3]  # m = 5, alpha 0.01: Bonferroni 0.002, Holm 0.002, 0.0025...
    for correction, expected in (
        ("bonferroni", {"f0"}),
        ("holm", {"f0", "f1", "f2"}),
        ("none", {"f0", "f1", "f2", "f3"}),
    ):
        d = drift.decide([_feature(f"f{i}", p) for i, p in enumerate(ps)], drift.DriftRule(correction=correction))
        assert {f.column_name for f in d.features if f.drifted} == expected, correction
        assert d.threshold_p == pytest.approx(0.01 if correction == "none" else 0.002)
    # Holm steps down and stops at the first failure: the smallest fails, so nothing passes
    d = drift.decide(
        [_feature(f"f{i}", p) for i, p in enumerate([0.004, 0.0045, 0.009])], drift.DriftRule(correction="holm")
    )
    assert not any(f.drifted for f in d.features)


@pytest.mark.parametrize("seed", range(3))
def test_holm_equals_adjusted_pvalues(seed):
    """Holm's step-down == rejecting where the adjusted p-value max_{j<=i} (m - j + 1) p_(j) < alpha."""
    rng = np.random.default_rng(seed)
    ps = np.concatenate([rng.uniform(0, 0.004, 6), rng.uniform(0, 1, 14)])
    order = np.argsort(ps)
    m = len(ps)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * ps[order])
    expected = {f"f{i}" for i, a in zip(order, adjusted) if a < 0.01}
    d = drift.decide([_feature(f"f{i}", p) for i, p in enumerate(ps)], drift.DriftRule(correction="holm"))
    assert {f.column_name for f in d.features if f.drifted} == expected


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
    assert d.threshold_p == pytest.approx(0.01 / 3)  # m counts the tested features only
    assert any("small_day" in n for n in d.notes)
    # the dataset rule is strict: a share equal to the maximum does not drift
    assert not drift.decide(feats, drift.DriftRule(max_drifted_share=1 / 3)).drifted


def test_drifted_features_come_first_ranked_by_importance_then_effect():
    feats = [
        _feature("a", 1e-9, importance=0.1),
        _feature("b", 0.9, importance=0.9),
        _feature("c", 1e-9, importance=0.7),
        _feature("d", 1e-9, effect=0.3),
        _feature("e", 1e-9, effect=0.8),
    ]
    d = drift.decide(feats, drift.DriftRule())
    assert [f.column_name for f in d.features] == ["c", "a", "e", "d", "b"]
    out = d.to_dict()
    assert out["drifted_count"] == 4 and out["tested"] == 5 and out["drifted_share"] == pytest.approx(0.8)
    assert out["rule"] == {
        "metric": "js_distance",
        "threshold": 0.1,
        "alpha": 0.01,
        "correction": "bonferroni",
        "max_drifted_share": 0.1,
        "min_rows": 100,
    }
    assert out["features"][0]["column_name"] == "c" and out["features"][0]["drifted"] is True
    # importance given to decide overrides the features' own
    d = drift.decide(feats, drift.DriftRule(), importance={"d": 5.0})
    assert [f.column_name for f in d.features][:2] == ["d", "c"]


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"metric": "kl"}, "metric"),
        ({"correction": "fdr"}, "correction"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0}, "alpha"),
        ({"threshold": 0}, "threshold"),
        ({"max_drifted_share": 1.0}, "max_drifted_share"),
        ({"min_rows": 0}, "min_rows"),
    ],
)
def test_rule_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        drift.DriftRule(**kw)
