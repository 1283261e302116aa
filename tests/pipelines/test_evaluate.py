"""Held-out metrics computed in Spark agree with an independent reference (scikit-learn, numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promoter.errors import DataContractError

pytestmark = pytest.mark.spark

N = 1500


@pytest.fixture(scope="module")
def rows():
    """Scores with many ties (rounded), three subgroups, one group with a single class."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, N)
    p = np.round(np.clip(0.35 * y + rng.random(N) * 0.65, 0, 1), 2)
    group = rng.choice(["a", "b", "c"], N)
    region = np.where(np.arange(N) % 50 == 0, None, rng.choice(["north", "south"], N))
    # group "solo": only negatives -> AUC undefined
    solo = np.arange(N) < 40
    y = np.where(solo, 0, y)
    group = np.where(solo, "solo", group)
    ids = [f"m{i:05d}" for i in range(N)]
    return ids, y, p, group, region


@pytest.fixture(scope="module")
def pred_df(spark, rows):
    ids, y, p, group, region = rows
    data = [
        (ids[i], int(y[i]), float(p[i]), str(group[i]), None if region[i] is None else str(region[i])) for i in range(N)
    ]
    # shuffle the row order so nothing depends on input order
    order = np.random.default_rng(3).permutation(N)
    return spark.createDataFrame(
        [data[i] for i in order], "key string, label int, score double, grp string, region string"
    ).cache()


@pytest.fixture(scope="module")
def result(pred_df):
    from pipelines import evaluate as ev

    return ev.metrics(pred_df, "label", top_k_percent=10, subgroup_cols=["grp", "region"], ece_bins=10)


def _ece(y, p, bins):
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return sum(abs(y[idx == b].sum() - p[idx == b].sum()) for b in range(bins)) / len(y)


def test_overall_metrics_match_reference_implementations(result, rows):
    sk = pytest.importorskip("sklearn.metrics")
    _, y, p, _, _ = rows
    m = result.metrics
    assert m["n"] == N and m["positives"] == y.sum()
    assert m["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(sk.average_precision_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(sk.brier_score_loss(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(sk.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), abs=1e-9)
    assert m["ece"] == pytest.approx(_ece(y, p, 10), abs=1e-12)


def test_top_k_uses_one_list_broken_by_the_key(result, rows):
    ids, y, p, group, _ = rows
    k = math.ceil(N * 0.10)
    order = sorted(range(N), key=lambda i: (-p[i], ids[i]))[:k]
    chosen = np.zeros(N, bool)
    chosen[order] = True
    m = result.metrics
    assert m["selected"] == k
    assert m["precision_at_k"] == pytest.approx(y[chosen].sum() / k)
    assert m["recall_at_k"] == pytest.approx(y[chosen].sum() / y.sum())
    a = result.subgroup_metrics["grp"]["a"]
    sel_a = chosen & (group == "a")
    assert a["selected"] == sel_a.sum()
    assert a["precision_at_k"] == pytest.approx(y[sel_a].sum() / sel_a.sum())
    assert a["recall_at_k"] == pytest.approx(y[sel_a].sum() / y[group == "a"].sum())


def test_subgroup_metrics_match_reference_and_carry_counts(result, rows):
    sk = pytest.importorskip("sklearn.metrics")
    _, y, p, group, region = rows
    groups = result.subgroup_metrics["grp"]
    assert set(groups) == {"a", "b", "c", "solo"}
    for g in ("a", "b", "c"):
        mask = group == g
        assert groups[g]["n"] == mask.sum()
        assert groups[g]["roc_auc"] == pytest.approx(sk.roc_auc_score(y[mask], p[mask]), abs=1e-12)
        assert groups[g]["ece"] == pytest.approx(_ece(y[mask], p[mask], 10), abs=1e-12)
    assert math.isnan(groups["solo"]["roc_auc"]) and math.isnan(groups["solo"]["pr_auc"])
    assert groups["solo"]["n"] == 40
    regions = result.subgroup_metrics["region"]
    assert regions["(missing)"]["n"] == sum(r is None for r in region)
    assert sum(g["n"] for g in regions.values()) == N


def test_eval_result_round_trips_and_flattens_without_nan(result):
    from pipelines.evaluate import EvalResult

    again = EvalResult.from_dict(result.to_dict())
    assert again.metrics == result.metrics
    assert math.isnan(again.subgroup_metrics["grp"]["solo"]["roc_auc"])
    flat = result.flat()
    assert flat["roc_auc"] == result.metrics["roc_auc"]
    assert flat["n.grp.a"] == result.subgroup_metrics["grp"]["a"]["n"]
    assert "roc_auc.grp.solo" not in flat and all(not math.isnan(v) for v in flat.values())


def test_paired_rows_are_ordered_by_the_key(pred_df, rows):
    from pipelines import evaluate as ev

    ids, y, p, _, _ = rows
    got_ids, labels, scores = ev.paired_rows(pred_df, "label")
    assert got_ids == sorted(ids)
    where = {k: i for i, k in enumerate(ids)}
    assert labels.tolist() == [float(y[where[k]]) for k in got_ids]
    assert scores.tolist() == [float(p[where[k]]) for k in got_ids]


def test_the_key_column_is_the_projects_and_the_metric_list_is_configs(spark, pred_df, result):
    from pipelines import evaluate as ev
    from promoter import config

    renamed = pred_df.withColumnRenamed("key", "person_key")
    ids, _, _ = ev.paired_rows(renamed, "label", id_col="person_key")
    assert ids == sorted(r["key"] for r in pred_df.select("key").collect())
    other = ev.metrics(renamed, "label", top_k_percent=10, subgroup_cols=["grp", "region"], id_col="person_key")
    assert other.metrics == result.metrics  # the same rows, the same tie-break, another key name
    with pytest.raises(DataContractError, match="key"):  # the default is the engine's neutral 'key'
        ev.paired_rows(renamed, "label")
    assert tuple(result.metrics) == ev.METRIC_NAMES == config.EVALUATION_METRICS


def test_paired_rows_refuses_duplicate_ids(spark):
    from pipelines import evaluate as ev

    df = spark.createDataFrame([("x", 1, 0.9), ("x", 0, 0.1)], "key string, label int, score double")
    with pytest.raises(DataContractError, match="not unique"):
        ev.paired_rows(df, "label")


@pytest.mark.parametrize(
    "rows_, message",
    [
        ([("a", 2, 0.5), ("b", 0, 0.1)], "not 0 or 1"),
        ([("a", 1, 1.5), ("b", 0, 0.1)], "outside"),
        ([("a", 1, None), ("b", 0, 0.1)], "null"),
    ],
)
def test_bad_labels_or_scores_are_named(spark, rows_, message):
    from pipelines import evaluate as ev

    df = spark.createDataFrame(rows_, "key string, label int, score double")
    with pytest.raises(DataContractError, match=message):
        ev.metrics(df, "label")


def test_missing_column_is_named(spark):
    from pipelines import evaluate as ev

    df = spark.createDataFrame([("a", 1, 0.5)], "key string, label int, score double")
    with pytest.raises(DataContractError, match="plan_kind"):
        ev.metrics(df, "label", subgroup_cols=["plan_kind"])


def test_curves_span_the_unit_square(pred_df, result):
    from pipelines import evaluate as ev

    c = ev.curves(pred_df, "label", ece_bins=10)
    assert c.fpr[0] == 0 and c.tpr[0] == 0 and c.fpr[-1] == pytest.approx(1) and c.tpr[-1] == pytest.approx(1)
    assert np.all(np.diff(c.fpr) >= 0) and np.all(np.diff(c.tpr) >= 0)
    assert c.bin_count.sum() == N
    # the trapezoid under the binned ROC is close to the exact AUC
    assert np.trapezoid(c.tpr, c.fpr) == pytest.approx(result.metrics["roc_auc"], abs=0.01)


def test_curves_of_rows_on_the_driver_equal_the_spark_curves(pred_df, rows):
    """The evidence pack's plots (per-row arrays) and the training run's (Spark) share one maths."""
    from pipelines import evaluate as ev

    _, y, p, _, _ = rows
    spark_side = ev.curves(pred_df, "label", ece_bins=10)
    driver_side = ev.curves_of_rows(y, p, ece_bins=10)
    for name in ("fpr", "tpr", "recall", "precision", "bin_mean_score", "bin_fraction_positive", "bin_count"):
        np.testing.assert_allclose(getattr(driver_side, name), getattr(spark_side, name), err_msg=name)


def test_score_adds_probability_of_class_one_and_keeps_inputs(spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    from pipelines import evaluate as ev

    df = spark.createDataFrame(
        [(f"m{i}", float(i), int(i >= 10)) for i in range(20)], "key string, x double, label int"
    )
    model = Pipeline(
        stages=[VectorAssembler(inputCols=["x"], outputCol="v"), LogisticRegression(featuresCol="v", labelCol="label")]
    ).fit(df)
    out = ev.score(model, df)
    assert out.columns == df.columns + ["score"]
    got = {r["key"]: r["score"] for r in out.collect()}
    assert got["m19"] > 0.9 and got["m0"] < 0.1


def test_plots_write_png_files(tmp_path, pred_df, result):
    from pipelines import evaluate as ev
    from pipelines import plots

    c = ev.curves(pred_df, "label")
    m = result.metrics
    files = [
        plots.roc_png(c.fpr, c.tpr, m["roc_auc"], tmp_path / "roc.png"),
        plots.pr_png(c.recall, c.precision, m["pr_auc"], m["prevalence"], tmp_path / "pr.png"),
        plots.calibration_png(c.bin_mean_score, c.bin_fraction_positive, c.bin_count, m["ece"], tmp_path / "cal.png"),
        plots.importance_png(["a", "b", "c"], [0.1, -0.5, 0.3], tmp_path / "imp.png"),
    ]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
