"""Per-row subgroup labels for the gate's fairness intervals (pipelines.evaluate.row_groups)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.spark

N = 400


@pytest.fixture(scope="module")
def frame(spark):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, N)
    p = rng.random(N)
    region = [None if i % 40 == 0 else str(rng.choice(["north", "south", "east"])) for i in range(N)]
    band = [str(rng.choice(["<30", "30+"])) for _ in range(N)]
    data = [(f"k{i:04d}", int(y[i]), float(p[i]), region[i], band[i]) for i in range(N)]
    order = np.random.default_rng(9).permutation(N)  # nothing may depend on the input order
    return spark.createDataFrame(
        [data[i] for i in order], "key string, label int, score double, region string, band string"
    ).cache(), dict(zip((d[0] for d in data), data))


def test_row_groups_align_with_paired_rows_and_match_the_subgroup_counts(frame):
    from pipelines import evaluate as ev

    df, by_key = frame
    ids, _, _ = ev.paired_rows(df, "label")
    groups = ev.row_groups(df, ["region", "band"])
    assert set(groups) == {"region", "band"}
    assert groups["region"].tolist() == [by_key[k][3] or ev.MISSING_GROUP for k in ids]
    assert groups["band"].tolist() == [by_key[k][4] for k in ids]
    result = ev.metrics(df, "label", subgroup_cols=["region", "band"])
    for column, labels in groups.items():
        names, counts = np.unique(labels, return_counts=True)
        assert {str(g): int(c) for g, c in zip(names, counts)} == {
            g: int(m["n"]) for g, m in result.subgroup_metrics[column].items()
        }


def test_row_groups_without_columns_is_empty(frame):
    from pipelines import evaluate as ev

    assert ev.row_groups(frame[0], []) == {}
