"""Profiles of many columns on real local Spark: counts equal numpy's, a bounded number of jobs,
a planted shift flagged and an undrifted sample not; the sketch and re-binning maths (numpy)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from pipelines import drift
from promoter.core.drift import DriftRule

N = 4000
COLS = 30
FINE = 50
SHIFTED = ("x0", "x2", "x3")
_GROUPS = itertools.count()


def _frame(seed: int, shift: float = 0.0, new_level: float = 0.0) -> pd.DataFrame:
    """30 N(0, 1) columns (``SHIFTED`` moved by ``shift`` sd), a categorical, a 0/1 flag, a constant."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(size=N) + (shift if f"x{i}" in SHIFTED else 0.0) for i in range(COLS)})
    grade = rng.choice(["a", "b", "c"], N, p=[0.5, 0.3, 0.2]).astype(object)
    grade[rng.random(N) < new_level] = "d"  # a level the reference never saw
    grade[:50] = None
    df["grade"] = grade
    df["flag"] = (rng.random(N) < 0.3).astype("int64")
    df["flat"] = 3.0
    df.loc[:99, "x1"] = np.nan
    return df


def _jobs(spark, fn):
    """``fn()`` and the number of Spark jobs it ran (its own job group, read from the status tracker)."""
    sc = spark.sparkContext
    group = f"drift-test-{next(_GROUPS)}"
    sc.setJobGroup(group, "count the jobs")
    try:
        out = fn()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return out, len(sc.statusTracker().getJobIdsForGroup(group))


@pytest.fixture(scope="module")
def reference(spark):
    """The reference frame, its Spark twin, its profile and the Spark jobs the profile took."""
    pdf = _frame(1)
    df = spark.createDataFrame(pdf)
    prof, jobs = _jobs(spark, lambda: drift.baseline_profile(df, list(pdf.columns), fine_bins=FINE))
    return pdf, df, prof, jobs


@pytest.mark.spark
def test_baseline_counts_and_moments_equal_numpy(reference):
    pdf, _, prof, _ = reference
    assert prof.rows == N and prof.fine_bins == FINE
    for i in range(COLS):
        name = f"x{i}"
        col, x = prof.columns[name], pdf[name].dropna().to_numpy()
        assert col.kind == "numeric" and len(col.edges) == len(col.counts) + 1 <= FINE + 1
        assert (col.edges[0], col.edges[-1]) == (x.min(), x.max())  # the end bins close at min and max
        assert col.counts == np.histogram(x, bins=col.edges)[0].tolist()
        assert max(col.counts) < 1.3 * len(x) / FINE  # quantile bins: about equal reference mass
        assert (col.avg, col.stddev) == (pytest.approx(x.mean()), pytest.approx(x.std(ddof=1)))
        assert (col.min, col.max, col.count) == (x.min(), x.max(), len(x))
    assert (prof.columns["x1"].num_nulls, prof.columns["x1"].count) == (100, N - 100)

    g = prof.columns["grade"]
    assert g.kind == "categorical" and g.levels == ["a", "b", "c", drift.OTHER]
    assert g.counts == [*pdf["grade"].value_counts()[["a", "b", "c"]].tolist(), 0]
    assert (g.num_nulls, g.count) == (50, N - 50)

    flag = prof.columns["flag"]  # a 0/1 column: each value in its own bin, not both in the closed last one
    ones = int(pdf["flag"].sum())
    assert flag.counts[0] == N - ones and flag.counts[-1] == ones and sum(flag.counts) == N
    assert prof.columns["flat"].edges == [3.0, 3.0] and prof.columns["flat"].counts == [N]  # constant: one bin

    # JSON-safe (logged with the version), and extra keys are ignored
    again = drift.Profile.from_dict(json.loads(json.dumps({**prof.to_dict(), "snapshot_id": "s1"})))
    assert again == prof


@pytest.mark.spark
def test_job_counts_window_one_pass_baseline_two_whatever_the_columns(spark, reference):
    pdf, df, prof, jobs_all = reference
    window, jobs = _jobs(spark, lambda: drift.window_profile(df, prof))
    assert jobs == 1
    assert all(window.columns[c].counts == prof.columns[c].counts for c in prof.columns)
    assert all(window.columns[c].num_nulls == prof.columns[c].num_nulls for c in prof.columns)
    verdict = drift.compare(window, prof)
    assert not verdict.drifted and verdict.drifted_share == 0.0 and verdict.tested == len(pdf.columns)
    assert max(f.js_distance for f in verdict.features) == pytest.approx(0.0, abs=1e-9)

    few = ["x0", "grade"]
    _, jobs_few = _jobs(spark, lambda: drift.baseline_profile(df.select(*few), few, fine_bins=FINE))
    assert jobs_few == jobs_all == 2  # 2 and 33 columns: the same two passes


@pytest.mark.spark
def test_a_planted_shift_is_flagged_and_an_undrifted_sample_is_not(spark, reference):
    pdf, _, prof, _ = reference
    current = _frame(2, shift=0.5, new_level=0.01)
    shifted = drift.window_profile(spark.createDataFrame(current), prof)
    grade = shifted.columns["grade"]
    assert grade.counts[-1] == int((current["grade"] == "d").sum()) > 0  # the unseen level counts as other
    assert sum(grade.counts) == grade.count == N - 50

    rule = DriftRule(max_drifted_share=0.05)
    verdict = drift.compare(shifted, prof, rule=rule, importance={"x3": 0.9, "x0": 0.1})
    flagged = [f.column_name for f in verdict.features if f.drifted]
    assert set(flagged) == set(SHIFTED), flagged
    assert flagged[:2] == ["x3", "x0"]  # ranked by the model's importance, then the effect
    assert verdict.tested == len(pdf.columns) and verdict.drifted_share == pytest.approx(3 / len(pdf.columns))
    assert verdict.drifted and verdict.threshold_p == pytest.approx(0.01 / len(pdf.columns))
    w = {f.column_name: f.wasserstein_distance for f in verdict.features}
    assert w["x0"] == pytest.approx(0.5, abs=0.1) and w["x5"] < 0.1  # in the feature's units (sd 1)

    clean = drift.compare(drift.window_profile(spark.createDataFrame(_frame(4)), prof), prof)
    assert not clean.drifted and not any(f.drifted for f in clean.features)


def _column(name, kind, counts, edges=None, levels=None, sd=1.0):
    return drift.ColumnProfile(
        name, kind, int(sum(counts)), 0, stddev=sd, edges=edges, levels=levels, counts=list(counts)
    )


def test_compare_rebins_profiles_made_on_other_bins():
    """Two windows profiled without a common baseline: moved onto the reference's bins, with a note."""
    ref = drift.Profile(
        200,
        {
            "x": _column("x", "numeric", [50, 50, 50, 50], edges=[0.0, 1.0, 2.0, 3.0, 4.0]),
            "g": _column("g", "categorical", [120, 80, 0], levels=["a", "b", drift.OTHER]),
        },
    )
    cur = drift.Profile(
        200,
        {
            "x": _column("x", "numeric", [100, 100], edges=[0.0, 2.0, 4.0]),
            "g": _column("g", "categorical", [70, 120, 10], levels=["b", "a", drift.OTHER]),
        },
    )
    verdict = drift.compare(cur, ref)
    by_name = {f.column_name: f for f in verdict.features}
    assert by_name["x"].js_distance == pytest.approx(0.0, abs=1e-9)  # uniform within bins: the same mass
    assert by_name["g"].count == 200 and by_name["g"].tv_distance == pytest.approx(10 / 200)
    assert {n.split(":")[0] for n in verdict.notes} == {"x", "g"}
    np.testing.assert_allclose(drift.rebin([0, 2, 4], [100, 100], [0, 1, 3, 4]), [50, 100, 50])
    np.testing.assert_allclose(drift.rebin([3, 3], [7], [0, 1, 5, 9]), [0, 7, 0])  # a constant column


@pytest.mark.parametrize("seed", range(2))
def test_sketch_edges_are_quantiles_of_the_union(seed):
    """Sketches of 7 chunks, merged in two levels: edges at the data's quantiles, within 0.5 % of rank."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=9000), rng.lognormal(2, 1, size=6000)])
    rng.shuffle(x)
    parts = [drift.sketch(c, 4 * 100) for c in np.array_split(x, 7)]
    merged = [drift.merge_sketches(parts[:4], 400), drift.merge_sketches(parts[4:], 400)]
    edges = drift.edges_from_sketches(merged, 100)
    assert (edges[0], edges[-1]) == (x.min(), x.max()) and len(edges) == 101
    ranks = np.searchsorted(np.sort(x), edges[1:-1]) / len(x)
    assert np.abs(ranks - np.arange(1, 100) / 100).max() < 0.005


def test_sketch_edges_separate_the_values_of_a_discrete_column():
    rng = np.random.default_rng(3)
    counts = rng.poisson(1.2, 5000).astype(float)
    edges = drift.edges_from_sketches([drift.sketch(c, 400) for c in np.array_split(counts, 3)], 100)
    hist = np.histogram(counts, bins=edges)[0]
    for v in range(4):  # the frequent values each have a bin of their own
        assert (counts == v).sum() in hist.tolist()
    rare = (rng.random(5000) < 0.004).astype(float)  # a rare flag keeps its 1s apart
    edges = drift.edges_from_sketches([drift.sketch(rare, 400)], 100)
    assert np.histogram(rare, bins=edges)[0].tolist() == [(rare == 0).sum(), rare.sum()]
    assert drift.edges_from_sketches([drift.sketch(np.full(10, 2.5), 400)], 100) == [2.5, 2.5]
    assert drift.edges_from_sketches([], 100) is None
