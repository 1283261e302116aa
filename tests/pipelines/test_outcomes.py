"""Outcomes table contract and realised performance, on real Spark and real Delta tables.

Every metric is checked against scikit-learn on labels built here in plain Python from the same
generated outcome rows (the window rule of ``pipelines.outcomes``: max label over outcomes dated
in ``(d, d + delay]``; no outcome row: unlabelled).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from pipelines import outcomes as oc
from pipelines.score import predictions_schema
from promoter.errors import DataContractError

pytestmark = pytest.mark.spark

KEY = "member_key"  # the predictions' key column
D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 5), date(2024, 3, 20)
DELAY = 10
AS_OF = date(2024, 3, 16)  # D1 and D2 matured (03-11, 03-15), D3 not
CAPACITY = 7.5
SMALL = 200
RESAMPLES = 200
N = 1500


def _region(i: int) -> str | None:
    return "B" if i % 12 == 0 else "C" if i % 50 == 7 else None if i % 40 == 3 else "A"


@pytest.fixture(scope="module")
def data(spark, tmp_path_factory):
    """Three scored days and an outcomes Delta table (named columns differ from the predictions')."""
    root = tmp_path_factory.mktemp("outcomes")
    rng = np.random.default_rng(11)
    keys = [f"k{i:05d}" for i in range(N)]
    preds, scores = [], {}
    for d in (D1, D2, D3):
        s = np.round(rng.beta(2, 6, N), 2)  # rounded: ties in score
        scores[d] = dict(zip(keys, s.tolist()))
        for k, v in zip(keys, s.tolist()):
            preds.append((k, v, "high" if v > 0.5 else "low", "m", 3, "r1", datetime(2024, 1, 1, tzinfo=UTC), d))
    cols = list(zip(*preds))
    schema = predictions_schema(KEY)
    table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, schema)], schema=schema)
    predictions = str(root / "predictions")
    write_deltalake(predictions, table, partition_by=["score_date"])

    rows = []  # (key, outcome date, label, snapshot)
    late = []  # D2 keys whose only outcome falls one day after the window
    for d in (D1, D2):  # D3 has no outcomes yet
        span = 4 if d == D1 else DELAY  # D1's outcomes end before D2: one label per key and date
        for i, k in enumerate(keys):
            u = rng.random()
            if u < 0.12:
                continue  # never recorded: unlabelled
            y = 0 if _region(i) == "C" else int(rng.random() < scores[d][k])
            od = d + timedelta(days=int(rng.integers(1, span + 1)))
            if d == D2 and u < 0.16:
                od = d + timedelta(days=DELAY + 1)
                y = 1
                late.append(k)
            rows.append((k, od, y, d))
            if u > 0.95 and y == 0 and _region(i) != "C" and od < d + timedelta(days=span):
                rows.append((k, d + timedelta(days=span), 1, d))  # a later positive in the window
            if u > 0.97:  # an identical re-delivery: allowed
                rows.append(rows[-1])
    out_cols = list(zip(*rows))
    out_schema = pa.schema(
        [("mkey", pa.string()), ("recorded_on", pa.date32()), ("event", pa.int32()), ("snapshot_date", pa.date32())]
    )
    out_table = pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(out_cols, out_schema)], schema=out_schema
    )
    outcomes = str(root / "outcomes")
    write_deltalake(outcomes, out_table, partition_by=["snapshot_date"])
    groups = [(k, _region(i)) for i, k in enumerate(keys) if i % 97 != 5]  # some keys unknown: (missing)
    return {
        "outcomes_df": oc.read_outcomes(spark, _source(outcomes)),  # the contract holds: re-deliveries are allowed
        "root": root,
        "predictions": predictions,
        "outcomes": outcomes,
        "out_table": out_table,
        "rows": rows,
        "scores": scores,
        "late": late,
        "groups": dict(groups),
    }


def _source(path: str, fmt: str = "delta", **names) -> oc.OutcomesSource:
    cols = {"key_column": "mkey", "date_column": "recorded_on", "label_column": "event", **names}
    return oc.OutcomesSource(path=path, format=fmt, display=f"outcomes ({fmt})", **cols)


def _subgroups(spark, data):
    return spark.createDataFrame(list(data["groups"].items()), f"{KEY} string, region string")


def _run(spark, data, **kw):
    args = {
        "key_column": KEY,
        "as_of": AS_OF,
        "label_delay_days": DELAY,
        "capacity_percent": CAPACITY,
        "subgroups": _subgroups(spark, data),
        "subgroup_columns": ["region"],
        "model_name": "m",
        "small_group": SMALL,
        "resamples": RESAMPLES,
        "seed": 3,
        **kw,
    }
    return oc.realised_performance(spark, data["predictions"], data["outcomes_df"], **args)


def _reference(data, d: date, delay: int = DELAY) -> dict[str, int]:
    """key -> label for day d, by the window rule, in plain Python."""
    labels: dict[str, int] = {}
    for k, od, y, _ in data["rows"]:
        if d < od <= d + timedelta(days=delay):
            labels[k] = max(labels.get(k, 0), y)
    return labels


@pytest.fixture(scope="module")
def windows(spark, data):
    return _run(spark, data)


def test_only_matured_days_are_evaluated_oldest_first(windows):
    assert [w.score_date for w in windows] == [D1.isoformat(), D2.isoformat()]
    assert [w.matured_on for w in windows] == ["2024-03-11", "2024-03-15"]


def test_metrics_equal_sklearn_on_the_same_labelled_rows(windows, data):
    for w in windows:
        d = date.fromisoformat(w.score_date)
        labels = _reference(data, d)
        keys = sorted(labels)
        y = np.array([labels[k] for k in keys])
        s = np.array([data["scores"][d][k] for k in keys])
        m = w.to_dict()["metrics"]
        assert w.rows == N and w.labelled == len(keys) and w.coverage == pytest.approx(len(keys) / N)
        assert m["n"] == len(keys) and m["positives"] == int(y.sum())
        assert m["prevalence"] == pytest.approx(y.mean(), abs=1e-12)
        assert m["mean_score"] == pytest.approx(s.mean(), abs=1e-12)
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-9)
        assert m["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-9)
        assert m["brier"] == pytest.approx(brier_score_loss(y, s), abs=1e-9)
        assert m["log_loss"] == pytest.approx(log_loss(y, s), abs=1e-9)
        # calibration: sklearn's reliability bins, ECE from them
        true, pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
        cal = w.calibration
        assert cal["fraction_positive"] == pytest.approx(true, abs=1e-12)
        assert cal["mean_score"] == pytest.approx(pred, abs=1e-12)
        assert sum(cal["count"]) == len(keys)
        ece = sum(c / len(keys) * abs(t - p) for c, t, p in zip(cal["count"], true, pred))
        assert m["ece"] == pytest.approx(ece, abs=1e-9) and cal["ece"] == m["ece"]
        x = np.log(np.clip(s, 1e-6, 1 - 1e-6) / (1 - np.clip(s, 1e-6, 1 - 1e-6))).reshape(-1, 1)
        lr = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(x, y)
        assert m["calibration_slope"] == pytest.approx(lr.coef_[0][0], abs=1e-5)
        assert m["calibration_intercept"] == pytest.approx(lr.intercept_[0], abs=1e-5)
        # the bootstrap interval brackets the estimate
        for name in oc.INTERVAL_METRICS:
            assert m[f"{name}_lower"] <= m[name] <= m[f"{name}_upper"]
            assert m[f"{name}_lower"] < m[f"{name}_upper"]


def test_precision_and_recall_at_capacity_use_all_scored_rows_ranked_with_ties_by_key(windows, data):
    for w in windows:
        d = date.fromisoformat(w.score_date)
        labels = _reference(data, d)
        ranked = sorted(data["scores"][d].items(), key=lambda kv: (-kv[1], kv[0]))
        top = {k for k, _ in ranked[: math.ceil(N * CAPACITY / 100)]}
        on_list = np.array([labels[k] for k in top if k in labels])
        positives = sum(labels.values())
        assert w.metrics["precision_at_k"] == pytest.approx(on_list.mean(), abs=1e-12)
        assert w.metrics["recall_at_k"] == pytest.approx(on_list.sum() / positives, abs=1e-12)


def test_subgroups_n_auc_and_small_group_intervals(windows, data):
    w = windows[0]
    labels = _reference(data, D1)
    groups = w.to_dict()["subgroups"]["region"]
    assert set(groups) == {"A", "B", "C", oc.MISSING}
    for g, m in groups.items():
        keys = [k for k in labels if (data["groups"].get(k) or oc.MISSING) == g]
        y = np.array([labels[k] for k in keys])
        s = np.array([data["scores"][D1][k] for k in keys])
        assert m["n"] == len(keys) and m["positives"] == int(y.sum())
        if g == "C":  # one class: undefined, not NaN, no exception
            assert m["roc_auc"] is None and m["roc_auc_lower"] is None and m["recall_at_k"] is None
            assert m["brier"] == pytest.approx(brier_score_loss(y, s), abs=1e-9)
        else:
            assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-9)
        if len(keys) < SMALL:
            assert m["brier_lower"] <= m["brier"] <= m["brier_upper"]
        else:
            assert m["roc_auc_lower"] is None and m["brier_upper"] is None
    assert groups["B"]["n"] < SMALL <= groups["A"]["n"]
    assert groups["B"]["roc_auc_lower"] <= groups["B"]["roc_auc"] <= groups["B"]["roc_auc_upper"]


def test_subgroups_by_day_give_each_day_the_values_it_was_scored_with(spark, data):
    # D1's rows were scored as region "X" or "Y" (by key parity), D2's all as "Z": with a
    # score_date column the frame is joined by key and day, not one value per key
    keys = list(data["scores"][D1])
    rows = [(k, D1.isoformat(), "X" if i % 2 else "Y") for i, k in enumerate(keys)]
    rows += [(k, D2.isoformat(), "Z") for k in keys]
    by_day = spark.createDataFrame(rows, f"{KEY} string, score_date string, region string")
    w1, w2 = _run(spark, data, subgroups=by_day)
    g1, g2 = w1.to_dict()["subgroups"]["region"], w2.to_dict()["subgroups"]["region"]
    assert set(g1) == {"X", "Y"} and set(g2) == {"Z"}
    labels = _reference(data, D1)
    odd = {k for i, k in enumerate(keys) if i % 2}
    assert g1["X"]["n"] == len([k for k in labels if k in odd])
    assert g1["X"]["n"] + g1["Y"]["n"] == w1.labelled
    assert g2["Z"]["n"] == w2.labelled


def test_outcomes_after_the_delay_are_not_counted(spark, data, windows):
    late = set(data["late"])
    w2 = windows[1]
    assert late and not late & set(_reference(data, D2))  # the late keys have no in-window outcome
    assert w2.labelled == len(_reference(data, D2))
    # one more day of delay and they count (and D2 is still matured by AS_OF)
    (wider,) = _run(spark, data, label_delay_days=DELAY + 1, windows=[D2.isoformat()])
    assert wider.labelled == len(_reference(data, D2, DELAY + 1)) > w2.labelled
    assert late <= set(_reference(data, D2, DELAY + 1))


def test_requested_windows_not_yet_matured_or_without_outcomes(spark, data):
    assert _run(spark, data, windows=[D3], as_of=D3 + timedelta(days=DELAY - 1)) == []
    (w,) = _run(spark, data, windows=[D3.isoformat(), "2024-03-21"], as_of=D3 + timedelta(days=DELAY))
    d = w.to_dict()
    assert (d["rows"], d["labelled"], d["coverage"], d["calibration"]) == (N, 0, 0.0, None)
    assert d["metrics"]["n"] == 0 and d["metrics"]["roc_auc"] is None and d["metrics"]["brier_lower"] is None
    assert all(m["n"] == 0 for m in d["subgroups"]["region"].values())
    assert "none of the 1500 scores" in w.note


def _write(path: Path, table: pa.Table, fmt: str) -> str:
    if fmt == "csv":
        path.mkdir(parents=True)
        pacsv.write_csv(table, path / "part-0.csv")
    elif fmt == "parquet":
        path.mkdir(parents=True)
        pq.write_table(table, path / "part-0.parquet")
    else:
        write_deltalake(str(path), table)
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_read_as_delta(spark, data, tmp_path, fmt):
    path = _write(tmp_path / fmt, data["out_table"].drop_columns(["snapshot_date"]), fmt)
    got = oc.read_outcomes(spark, _source(path, fmt))
    assert got.columns == [oc.KEY, oc.DATE, oc.LABEL]
    rows = sorted((r[0], r[1], r[2]) for r in got.collect())
    assert rows == sorted((k, od, y) for k, od, y, _ in data["rows"])


def _bad(tmp_path: Path, fmt: str, **cols) -> str:
    base = {"mkey": ["a", "b", "c"], "recorded_on": ["2024-01-02", "2024-01-03", "2024-01-04"], "event": [0, 1, 0]}
    base.update(cols)
    return _write(tmp_path / "bad", pa.table(base), fmt)


def test_every_broken_rule_is_named_on_one_line(spark, tmp_path):
    path = _bad(
        tmp_path,
        "csv",
        mkey=["a", None, "c", "d", "d"],
        recorded_on=["2024-01-02", "2024-01-03", "2024-02-30", "2024-01-05", "2024-01-05"],
        event=["0", "1", "2", "0", "1"],
    )
    with pytest.raises(DataContractError) as err:
        oc.read_outcomes(spark, _source(path, "csv"))
    message = str(err.value)
    assert message.startswith("outcomes (csv): ") and "\n" not in message
    for part in (
        "mkey: not_null: 1 row(s)",
        "event: allowed_values [0, 1]: 1 row(s) are not 0 or 1 (e.g. '2')",
        "recorded_on: date: 1 row(s) do not parse as a date (e.g. '2024-02-30')",
        "mkey, recorded_on: unique: 1 (key, date) pair(s) have both label 0 and label 1",
    ):
        assert part in message, message


@pytest.mark.parametrize(
    ("fmt", "cols", "names", "expected"),
    [
        ("parquet", {"event": [0, 2, 1]}, {}, "event: allowed_values [0, 1]: 1 row(s) are not 0 or 1 (e.g. '2')"),
        ("delta", {}, {"label_column": "outcome"}, "column_missing: 'outcome' not in the table"),
        ("parquet", {"recorded_on": [1, 2, 3]}, {}, "recorded_on: column_type: bigint is not a date"),
    ],
    ids=["label-2", "missing-column", "date-type"],
)
def test_contract_failures_name_the_table_column_and_rule(spark, tmp_path, fmt, cols, names, expected):
    path = _bad(tmp_path, fmt, **cols)
    with pytest.raises(DataContractError) as err:
        oc.read_outcomes(spark, _source(path, fmt, **names))
    message = str(err.value)
    assert message.startswith(f"outcomes ({fmt}): ") and "\n" not in message
    assert expected in message, message


@pytest.mark.parametrize("fmt", ["delta", "parquet", "csv"])
def test_missing_table_is_a_contract_error(spark, tmp_path, fmt):
    path = str(tmp_path / "nowhere")
    with pytest.raises(DataContractError, match=rf"^outcomes \({fmt}\): no outcomes table at {re.escape(path)}$"):
        oc.read_outcomes(spark, _source(path, fmt))
