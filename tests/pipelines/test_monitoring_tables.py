"""The two monitoring Delta tables: Lakehouse-style schemas, one atomic replace per day and model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines import monitoring_tables as tables
from promoter import config
from tests.conftest import CONFIGS


@pytest.fixture
def settings(tmp_path: Path):
    loaded = config.load(CONFIGS, "prod", environ={})
    return loaded.model_copy(
        update={"project": loaded.project.model_copy(update={"lake_root": str(tmp_path / "lake")})}
    )


def _profile_row(column: str, count: int, **extra):
    return {
        "window": tables.window("2026-11-02"),
        "model_version": 3,
        "environment": "prod",
        "data_kind": "input",
        "column_name": column,
        "count": count,
        "num_nulls": 1,
        "avg": 0.5,
        "histogram": {"kind": "numeric", "edges": [0.0, 1.0], "counts": [count]},
        **extra,
    }


def test_lakehouse_column_names_are_in_both_schemas():
    profile, drift = tables.profile_schema(), tables.drift_schema()
    for name in ("window", "column_name", "slice_key", "slice_value", "model_name", "model_version", "monitor_date"):
        assert name in profile.names and name in drift.names
    for name in (
        "window_cmp",
        "drift_type",
        "population_stability_index",
        "js_distance",
        "wasserstein_distance",
        "chi_squared_test",
        "tv_distance",
    ):
        assert name in drift.names
    assert [f.name for f in drift.field("chi_squared_test").type] == ["statistic", "pvalue"]
    assert [f.name for f in profile.field("window").type] == ["start", "end"]


def test_a_rerun_of_a_day_replaces_only_that_model_and_day(settings):
    day1, day2 = date(2026, 11, 2), date(2026, 11, 3)
    tables.replace_day(
        settings, tables.PROFILE, [_profile_row("a", 10), _profile_row("b", 10)], model_name="m1", monitor_date=day1
    )
    tables.replace_day(settings, tables.PROFILE, [_profile_row("a", 20)], model_name="m2", monitor_date=day1)
    uri = tables.replace_day(settings, tables.PROFILE, [_profile_row("a", 30)], model_name="m1", monitor_date=day2)
    # the re-run of m1's first day: one row now, m2 and the second day untouched
    tables.replace_day(settings, tables.PROFILE, [_profile_row("c", 11)], model_name="m1", monitor_date=day1)

    m1 = tables.read(settings, tables.PROFILE, model_name="m1")
    assert [(r["monitor_date"], r["column_name"], r["count"]) for r in m1] == [
        ("2026-11-02", "c", 11),
        ("2026-11-03", "a", 30),
    ]
    assert [r["count"] for r in tables.read(settings, tables.PROFILE, model_name="m2")] == [20]
    assert [r["column_name"] for r in tables.read(settings, tables.PROFILE, model_name="m1", before=day2)] == ["c"]
    assert [r["count"] for r in tables.read(settings, tables.PROFILE, model_name="m1", on=day2)] == [30]
    assert DeltaTable(uri).metadata().partition_columns == ["monitor_date"]
    assert uri.endswith("hrob-risk/monitoring/profile_metrics")


def test_nan_is_stored_as_null_and_histograms_as_json(settings):
    tables.replace_day(
        settings,
        tables.PROFILE,
        [_profile_row("a", 5, stddev=float("nan"))],
        model_name="m",
        monitor_date=date(2026, 11, 2),
    )
    (row,) = tables.read(settings, tables.PROFILE, model_name="m")
    assert row["stddev"] is None and row["avg"] == 0.5
    assert row["histogram"] == '{"kind":"numeric","edges":[0.0,1.0],"counts":[5]}'
    assert row["window"] == {"start": date(2026, 11, 2), "end": date(2026, 11, 2)}


def test_an_unknown_column_is_refused_before_anything_is_written(settings):
    with pytest.raises(ValueError, match="unknown column.*drift_score"):
        tables.replace_day(
            settings,
            tables.DRIFT,
            [{"column_name": "a", "drift_score": 1.0}],
            model_name="m",
            monitor_date=date(2026, 11, 2),
        )
    assert not Path(tables.table_path(settings, tables.DRIFT)).exists()
    assert tables.read(settings, tables.DRIFT, model_name="m") == []


def test_drift_rows_keep_the_chi_squared_struct(settings):
    row = {
        "window": tables.window("2026-11-03"),
        "window_cmp": tables.window("2026-11-02"),
        "drift_type": "CONSECUTIVE",
        "data_kind": "input",
        "column_name": "x",
        "population_stability_index": 0.31,
        "chi_squared_test": {"statistic": 42.0, "pvalue": 1e-9},
        "drifted": True,
        "rank": 1,
    }
    tables.replace_day(settings, tables.DRIFT, [row], model_name="m", monitor_date=date(2026, 11, 3))
    (got,) = tables.read(settings, tables.DRIFT, model_name="m")
    assert got["chi_squared_test"] == {"statistic": 42.0, "pvalue": 1e-9}
    assert got["drift_type"] == "CONSECUTIVE" and got["drifted"] is True
    assert got["window_cmp"]["start"] == date(2026, 11, 2)


@pytest.mark.spark
def test_scored_slices_keep_the_day_s_values_once_and_fall_back_to_gold(spark, settings):
    key = settings.project.data.key_column
    day1, day2, day3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
    preds = spark.createDataFrame([("e1",), ("e2",), ("e3",)], f"{key} string")
    gold1 = spark.createDataFrame([("e1", "F", "north"), ("e2", "M", None)], f"{key} string, sex string, region string")
    assert tables.record_slices(settings, preds, gold1, ["sex", "region"], day1)
    # a re-run of the day keeps what was recorded when it was scored
    gold_later = spark.createDataFrame([("e1", "M", "south")], f"{key} string, sex string, region string")
    assert not tables.record_slices(settings, preds, gold_later, ["sex", "region"], day1)
    assert not tables.record_slices(settings, preds, gold_later, [], day2)  # no subgroups: nothing
    assert tables.slice_days(settings) == {day1.isoformat()}

    frame = tables.slices_frame(spark, settings, [day1.isoformat(), day3.isoformat()], ["sex", "region"], gold_later)
    got = sorted(tuple(r) for r in frame.select(key, "score_date", "sex", "region").collect())
    assert got == [
        ("e1", "2026-11-02", "F", "north"),
        ("e1", "2026-11-04", "M", "south"),  # not recorded: today's gold
        ("e2", "2026-11-02", "M", None),
        ("e3", "2026-11-02", None, None),  # scored, not in that day's gold
    ]
