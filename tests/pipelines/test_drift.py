"""Profiles of many columns on real local Spark: counts equal numpy's, a bounded number of jobs,
a planted shift flagged and an undrifted sample not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import drift

pytestmark = pytest.mark.spark

N = 4000
COLS = 30


def _frame(seed: int, shift: float = 0.0, shifted: int = 0, levels: str = "abc") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(size=N) + (shift if i < shifted else 0.0) for i in range(COLS)})
    df["grade"] = rng.choice(list(levels), N)
    df["flat"] = 3.0
    df.loc[:99, "x1"] = np.nan
    return df


@pytest.fixture(scope="module")
def reference(spark):
    pdf = _frame(1)
    return pdf, drift.baseline_profile(spark.createDataFrame(pdf), list(pdf.columns), fine_bins=50)


def _jobs(spark, fn):
    sc = spark.sparkContext
    group = f"drift-{id(fn)}"
    sc.setJobGroup(group, "count the jobs")
    try:
        out = fn()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return out, len(sc.statusTracker().getJobIdsForGroup(group))


def test_baseline_counts_and_moments_equal_numpy(reference):
    pdf, prof = reference
    assert prof.rows == N
    x = prof.columns["x0"]
    assert len(x.edges) <= 51 and sum(x.counts) == N
    clipped = np.clip(pdf["x0"], x.edges[0], x.edges[-1])
    assert np.array_equal(np.histogram(clipped, bins=x.edges)[0], x.counts)
    assert x.avg == pytest.approx(pdf["x0"].mean()) and x.stddev == pytest.approx(pdf["x0"].std())
    assert (x.min, x.max) == (pdf["x0"].min(), pdf["x0"].max())
    assert (prof.columns["x1"].num_nulls, prof.columns["x1"].count) == (100, N - 100)
    g = prof.columns["grade"]
    assert g.levels[-1] == drift.OTHER and sorted(g.levels[:-1]) == ["a", "b", "c"]
    assert dict(zip(g.levels, g.counts)) == {**pdf["grade"].value_counts().to_dict(), drift.OTHER: 0}
    assert prof.columns["flat"].counts == [N]  # a constant column: one bin
    # the profile survives JSON (it is logged with the version) and ignores extra keys
    again = drift.Profile.from_dict({**prof.to_dict(), "snapshot_id": "s1"})
    assert again.columns["x0"] == x


def test_a_window_on_the_same_rows_reproduces_the_baseline_in_one_job(spark, reference):
    pdf, prof = reference
    window, jobs = _jobs(spark, lambda: drift.window_profile(spark.createDataFrame(pdf), prof))
    assert jobs == 1
    assert all(window.columns[c].counts == prof.columns[c].counts for c in prof.columns)
    verdict = drift.compare(window, prof)
    assert not verdict.drifted and verdict.drifted_share == 0.0


def test_baseline_profile_jobs_do_not_grow_with_the_columns(spark):
    pdf = _frame(3)
    few = ["x0", "x1", "grade"]
    _, jobs_few = _jobs(spark, lambda: drift.baseline_profile(spark.createDataFrame(pdf[few]), few))
    _, jobs_all = _jobs(spark, lambda: drift.baseline_profile(spark.createDataFrame(pdf), list(pdf.columns)))
    # moments+quantiles, levels (a shuffle: adaptive execution runs it as two jobs), histograms
    assert jobs_all == jobs_few <= 5, (jobs_few, jobs_all)


def test_a_planted_shift_is_flagged_and_an_undrifted_sample_is_not(spark, reference):
    _, prof = reference
    shifted = drift.window_profile(spark.createDataFrame(_frame(2, shift=0.5, shifted=3, levels="abcd")), prof)
    verdict = drift.compare(shifted, prof, importance={"x2": 0.9, "x0": 0.1})
    flagged = [f.column_name for f in verdict.features if f.drifted]
    assert set(flagged) == {"x0", "x1", "x2", "grade"}, flagged
    assert flagged[:2] == ["x2", "x0"]  # ranked by the model's importance
    grade = shifted.columns["grade"]
    assert grade.counts[-1] > 0  # the unseen level counted as other
    assert verdict.drifted  # 4 of 31 tested > 10 %
    clean = drift.compare(drift.window_profile(spark.createDataFrame(_frame(4)), prof), prof)
    assert not clean.drifted and not any(f.drifted for f in clean.features)


def test_distances_of_a_profile_equal_scipy_on_the_merged_bins(spark, reference):
    from scipy.spatial.distance import jensenshannon

    from promoter.core import drift as rules

    _, prof = reference
    window = drift.window_profile(spark.createDataFrame(_frame(5, shift=0.3, shifted=1)), prof)
    f = next(f for f in drift.compare(window, prof, bins=10).features if f.column_name == "x0")
    groups = rules.coarsen_groups(prof.columns["x0"].counts, 10)
    p = rules.coarsen_like(groups, prof.columns["x0"].counts)
    q = rules.coarsen_like(groups, window.columns["x0"].counts)
    assert len(p) == 10
    assert f.js_distance == pytest.approx(jensenshannon(p / p.sum(), q / q.sum(), base=2))
    assert f.wasserstein_distance == pytest.approx(0.3, abs=0.08)  # the planted shift, in sd units of 1
