"""Batch scoring: tiers (pure), then real Spark scoring into real Delta tables in tmp_path."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines import score as sc
from promoter import config
from promoter.config import ConfigError, DataSettings, ProjectSettings, RiskTier, ScoringSettings
from promoter.errors import DataContractError, InvalidInput
from tests.conftest import CONFIGS

FEATURES = ["f_age", "f_er_visits", "f_bmi", "f_prior_preterm"]
# a project of neutral names: the prediction tables take their key column's name from data.key_column
KEY, LABEL, MODEL = "person_key", "outcome", "scores-test"
D1, D2 = date(2026, 11, 23), date(2026, 11, 24)
AT = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def capacity(high: float = 5, medium: float = 15, **kw) -> ScoringSettings:
    return ScoringSettings(
        tiering="capacity",
        tiers=[RiskTier(name="high", percent=high), RiskTier(name="medium", percent=medium), RiskTier(name="low")],
        **kw,
    )


def cut_points(high: float = 0.30, medium: float = 0.10, **kw) -> ScoringSettings:
    return ScoringSettings(
        tiering="cut_points",
        tiers=[RiskTier(name="high", min_score=high), RiskTier(name="medium", min_score=medium), RiskTier(name="low")],
        **kw,
    )


# --------------------------------------------------------------------------- pure tiering


def test_capacity_quantiles_are_one_minus_cumulative_share():
    assert sc.capacity_quantiles(capacity(5, 15)) == [0.95, 0.80]
    assert sc.capacity_quantiles(capacity(60, 40)) == [0.4, 0.0]


@pytest.mark.parametrize("n", [2000, 1999, 500, 37])
def test_capacity_tiers_never_exceed_capacity_with_unique_scores(n: int):
    scores = [((i * 7919) % n) / n for i in range(n)]  # a permutation of i/n: unique
    tiers = sc.tier_scores(scores, capacity(5, 15))
    assert tiers.count("high") == math.floor(0.05 * n + 1e-9)
    assert tiers.count("high") + tiers.count("medium") == math.floor(0.20 * n + 1e-9)
    assert len(tiers) == n
    # the high tier is exactly the highest scores
    high = sorted(s for s, t in zip(scores, tiers) if t == "high")
    rest = [s for s, t in zip(scores, tiers) if t != "high"]
    assert not rest or min(high) > max(rest)


def test_capacity_ties_at_a_boundary_go_to_the_lower_tier_together():
    scores = [0.9] * 10 + [0.5] * 90
    tiers = sc.tier_scores(scores, capacity(5, 15))
    # the top 5 % boundary falls inside the block of 0.9s: none of them can be high alone
    assert tiers.count("high") == 0
    assert tiers[:10] == ["medium"] * 10
    assert set(tiers[10:]) == {"low"}


def test_capacity_of_100_percent_leaves_the_rest_tier_empty():
    tiers = sc.tier_scores([0.1, 0.2, 0.3, 0.4], capacity(50, 50))
    assert tiers == ["medium", "medium", "high", "high"]


def test_cut_points_are_inclusive_floors_highest_first():
    s = cut_points(0.30, 0.10)
    cuts = sc.tier_cuts(s)
    assert [(c.name, c.threshold, c.inclusive) for c in cuts] == [("high", 0.30, True), ("medium", 0.10, True)]
    assert sc.tier_scores([0.31, 0.30, 0.2999, 0.10, 0.0999, 0.0], s) == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]


def test_rank_in_window_picks_the_rank_or_says_it_is_outside():
    window = [0.2, 0.3, 0.3, 0.5]  # sorted scores inside a bracket, 10 scores below it
    assert sc.rank_in_window(window, 10, 11) == 0.2
    assert sc.rank_in_window(window, 10, 13) == 0.3
    assert sc.rank_in_window(window, 10, 14) == 0.5
    assert sc.rank_in_window(window, 10, 10) is None and sc.rank_in_window(window, 10, 15) is None


def test_capacity_cuts_need_their_quantiles():
    with pytest.raises(ValueError, match="quantile scores"):
        sc.tier_cuts(capacity())


def test_phi_findings_spot_ssn_phone_email_and_not_hex_keys():
    found = sc.phi_findings(["123-45-6789", "(614) 555-0134", "a.b@example.org", "9f86d081884c7d65", "0.1234"])
    assert [name for name, _ in found] == ["ssn", "phone", "email"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tiers": [{"name": "high", "percent": 5}]}, "at least two tiers"),
        (
            {"tiers": [{"name": "high", "percent": 60}, {"name": "mid", "percent": 50}, {"name": "low"}]},
            "add up to 110",
        ),
        ({"tiers": [{"name": "high", "percent": 5}, {"name": "high", "percent": 5}, {"name": "low"}]}, "listed twice"),
        ({"tiers": [{"name": "high", "percent": 5}, {"name": "low", "percent": 95}]}, "last tier takes everyone"),
        ({"tiers": [{"name": "high"}, {"name": "low"}]}, "needs 'percent'"),
        ({"tiers": [{"name": "high", "min_score": 0.3}, {"name": "low"}]}, "'min_score' is not used"),
        (
            {
                "tiering": "cut_points",
                "tiers": [{"name": "high", "min_score": 0.1}, {"name": "mid", "min_score": 0.3}, {"name": "low"}],
            },
            "must decrease",
        ),
        ({"tiers": [{"name": "high", "percent": 0}, {"name": "low"}]}, "greater than 0"),
        ({"predictions_table": "../elsewhere"}, "relative to lake_root"),
        ({"predictions_table": "/abs/path"}, "relative to lake_root"),
        ({"outreach_table": "predictions/scores/list"}, "different folder"),
        ({"top_n": 0}, "greater than or equal to 1"),
    ],
)
def test_scoring_settings_reject_bad_tiers_and_paths(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        ScoringSettings(**kwargs)


def test_bad_scoring_config_names_file_key_and_line(tmp_path: Path):
    root = tmp_path / "configs"
    shutil.copytree(CONFIGS, root)
    p = root / "base" / "project.yml"
    text = p.read_text()
    old = "    - {name: medium, percent: 15}\n"
    if old not in text:
        raise LookupError("scoring tiers not found in configs/base/project.yml")
    p.write_text(text.replace(old, "    - {name: medium, percent: 15, min_score: 0.1}\n"))
    with pytest.raises(ConfigError) as err:
        config.load(root, "prod", environ={})
    msg = str(err.value)
    assert "base/project.yml:" in msg and "scoring.tiers[1].min_score" in msg and "not used" in msg


def test_project_config_has_a_valid_scoring_section():
    s = config.load(CONFIGS, "prod", environ={}).project.scoring
    assert s.predictions_table == "predictions/hrob_scores"
    assert s.outreach_table == "predictions/outreach_list"
    assert [t.name for t in s.tiers][-1] == "low" and s.top_n >= 1


# --------------------------------------------------------------------------- Spark


def _gold(spark, n: int, seed: int = 7, phi_decoys: bool = False):
    from pyspark.sql import functions as F

    df = spark.range(n).select(
        F.sha2(F.concat(F.lit("m-"), F.col("id").cast("string")), 256).substr(1, 16).alias(KEY),
        F.lit("2026-11-01").cast("date").alias("snapshot_date"),
        F.when(F.col("id") % 2 == 0, "Central").otherwise("Northeast").alias("region"),
        *[F.round(F.rand(seed + i) * (10 if i else 40), 3).alias(f) for i, f in enumerate(FEATURES)],
    )
    logit = -3 + 0.04 * F.col("f_age") + 0.3 * F.col("f_er_visits") + 0.2 * F.col("f_prior_preterm")
    df = df.withColumn(LABEL, (F.rand(seed + 99) < 1 / (1 + F.exp(-logit))).cast("int"))
    if phi_decoys:  # columns that must never reach an output table
        df = (
            df.withColumn(
                "ssn", F.format_string("%03d-%02d-%04d", F.col("f_age").cast("int") + 100, F.lit(12), F.lit(3456))
            )
            .withColumn("phone", F.lit("(614) 555-0134"))
            .withColumn("email", F.lit("jane.doe@example.org"))
        )
    return df


@pytest.fixture(scope="module")
def fitted(spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    gold = _gold(spark, 1000, phi_decoys=True).cache()
    model = Pipeline(
        stages=[
            VectorAssembler(inputCols=FEATURES, outputCol="features"),
            LogisticRegression(labelCol=LABEL, maxIter=25),
        ]
    ).fit(gold)
    yield model, gold
    gold.unpersist()


def project(lake: Path, scoring: ScoringSettings | None = None) -> ProjectSettings:
    return ProjectSettings(
        name="t",
        model_name=MODEL,
        lake_root=str(lake),
        data=DataSettings(id_column="person_id", key_column=KEY, label_column=LABEL),
        scoring=scoring or capacity(top_n=50),
    )


def run(spark, model, gold, settings, *, day=D1, version=1, run_id="run-a", at=AT) -> sc.ScoreResult:
    return sc.score_population(
        spark,
        model,
        gold,
        score_date=day,
        model_name=f"{MODEL}-prod",
        model_version=version,
        run_id=run_id,
        settings=settings,
        scored_at=at,
    )


def read(path: str):
    from deltalake import DeltaTable

    return DeltaTable(path).to_pyarrow_table()


@pytest.mark.spark
def test_rescoring_a_date_replaces_its_partition_only(spark, fitted, tmp_path: Path):
    model, gold = fitted
    settings = project(tmp_path / "lake")
    first = run(spark, model, gold, settings, day=D1, version=1, run_id="run-a")
    other = run(spark, model, gold.limit(300), settings, day=D2, version=1, run_id="run-b")
    second = run(
        spark,
        model,
        gold.limit(700),
        settings,
        day=D1,
        version=2,
        run_id="run-c",
        at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )

    assert (first.rows, other.rows, second.rows) == (1000, 300, 700)
    table = read(second.predictions_path).to_pylist()
    day1 = [r for r in table if r["score_date"] == D1]
    day2 = [r for r in table if r["score_date"] == D2]
    assert len(day1) == 700 and {(r["model_version"], r["run_id"]) for r in day1} == {(2, "run-c")}
    assert {r["scored_at"] for r in day1} == {datetime(2026, 11, 23, 9, 0, tzinfo=UTC)}
    assert len(day2) == 300 and {(r["model_version"], r["run_id"]) for r in day2} == {(1, "run-b")}
    assert len({r[KEY] for r in day1}) == 700

    outreach = read(second.outreach_path).to_pylist()
    assert sorted({(r["score_date"], r["model_version"]) for r in outreach}) == [(D1, 2), (D2, 1)]
    assert sum(r["score_date"] == D1 for r in outreach) == 50

    assert sc.predictions_summary(settings) == {
        D1: {"rows": 700, "model_version": 2},
        D2: {"rows": 300, "model_version": 1},
    }
    assert sc.predictions_summary(project(tmp_path / "empty-lake")) == {}
    # one commit per scoring run and table, each carrying the run's identity
    from deltalake import DeltaTable

    history = DeltaTable(second.predictions_path).history()
    assert [h["version"] for h in history] == [2, 1, 0]
    assert [h.get("promote.run_id") for h in history] == ["run-c", "run-b", "run-a"]
    assert (first.predictions_version, other.predictions_version, second.predictions_version) == (0, 1, 2)
    assert second.delta_versions == {"predictions": 2, "outreach": 2}
    assert len(DeltaTable(second.outreach_path).history()) == 3
    # time travel: version 0 still reads the first run
    v0 = DeltaTable(second.predictions_path, version=0).to_pyarrow_table()
    assert v0.num_rows == 1000 and set(v0.column("run_id").to_pylist()) == {"run-a"}
    # only the current files are in the table: 700 + 300 rows, no leftovers of the replaced write
    assert DeltaTable(second.predictions_path).to_pyarrow_table().num_rows == 1000


@pytest.mark.spark
@pytest.mark.parametrize("relative_error", [0.0, 1e-4, 0.05])
def test_capacity_tiers_are_exact_and_outreach_list_is_the_top_n(spark, fitted, tmp_path: Path, relative_error):
    model, gold = fitted
    settings = project(tmp_path / "lake", capacity(5, 15, top_n=40, quantile_relative_error=relative_error))
    result = run(spark, model, gold, settings)
    assert result.tiers_exact

    preds = read(result.predictions_path).to_pylist()
    scores = [r["score"] for r in preds]
    assert len(set(scores)) == len(scores)  # the check below assumes unique scores
    assert result.tier_counts == {"high": 50, "medium": 150, "low": 800}
    assert [r["risk_tier"] for r in preds] == sc.tier_scores(scores, settings.scoring)
    assert all(0.0 <= s <= 1.0 for s in scores)

    outreach = sorted(read(result.outreach_path).to_pylist(), key=lambda r: r["rank"])
    assert result.outreach_rows == 40 and [r["rank"] for r in outreach] == list(range(1, 41))
    assert [r["score"] for r in outreach] == sorted(scores, reverse=True)[:40]
    by_key = {r[KEY]: r for r in preds}
    assert all(by_key[r[KEY]]["risk_tier"] == r["risk_tier"] == "high" for r in outreach)
    assert result.cut_points["high"] == pytest.approx(sorted(scores)[949])


@pytest.mark.spark
def test_cut_point_tiers_in_spark_match_the_pure_function(spark, fitted, tmp_path: Path):
    model, gold = fitted
    settings = project(tmp_path / "lake", cut_points(0.30, 0.10, top_n=5))
    result = run(spark, model, gold, settings)
    preds = read(result.predictions_path).to_pylist()
    assert [r["risk_tier"] for r in preds] == sc.tier_scores([r["score"] for r in preds], settings.scoring)
    expected = sc.tier_scores([r["score"] for r in preds], settings.scoring)
    assert result.tier_counts == {t: expected.count(t) for t in ("high", "medium", "low")}
    assert sum(result.tier_counts.values()) == 1000 and min(result.tier_counts.values()) > 0
    assert result.tier_counts["high"] == sum(r["score"] >= 0.30 for r in preds) > 0
    assert result.cut_points == {"high": 0.30, "medium": 0.10}


@pytest.mark.spark
def test_outputs_hold_only_their_columns_and_no_phi(spark, fitted, tmp_path: Path):
    import pyarrow as pa

    model, gold = fitted
    assert {"ssn", "phone", "email"} <= set(gold.columns)  # the input does carry PHI decoys
    result = run(spark, model, gold, project(tmp_path / "lake"))
    preds, outreach = read(result.predictions_path), read(result.outreach_path)
    assert tuple(preds.column_names) == sc.prediction_columns(KEY) == (KEY, *sc.PREDICTION_VALUE_COLUMNS)
    assert tuple(outreach.column_names) == sc.outreach_columns(KEY) == (KEY, *sc.OUTREACH_VALUE_COLUMNS)
    # the project's table paths, under the model's own folder of the lake
    assert result.predictions_path == str(tmp_path / "lake" / MODEL / "predictions" / "scores")
    assert preds.schema.field("score").type == pa.float64()
    assert preds.schema.field("model_version").type == pa.int64()
    assert pa.types.is_timestamp(preds.schema.field("scored_at").type)
    assert preds.schema.field("score_date").type == pa.date32()
    values = [v for t in (preds, outreach) for c in t.columns for v in c.to_pylist() if isinstance(v, str)]
    assert values and sc.phi_findings(values) == []
    # nothing but the table's own files under its folder
    files = [p for p in Path(result.predictions_path).rglob("*") if p.is_file()]
    assert files and all(p.suffix in (".parquet", ".json") for p in files), files


@pytest.mark.spark
def test_full_settings_object_is_accepted(spark, fitted, tmp_path: Path):
    model, gold = fitted
    loaded = config.load(CONFIGS, "prod", environ={})
    lake = tmp_path / "lake"
    settings = loaded.model_copy(update={"project": loaded.project.model_copy(update={"lake_root": str(lake)})})
    # the reference project names its key member_key and its tables explicitly
    result = run(spark, model, gold.limit(200).withColumnRenamed(KEY, "member_key"), settings)
    assert result.predictions_path == str(lake / "hrob-risk" / "predictions" / "hrob_scores")
    assert read(result.predictions_path).column_names[0] == "member_key"
    assert result.outreach_rows == min(200, loaded.project.scoring.top_n)
    assert result.to_dict()["score_date"] == "2026-11-23"


@pytest.mark.spark
def test_empty_input_is_a_clear_error_and_writes_nothing(spark, fitted, tmp_path: Path):
    model, gold = fitted
    settings = project(tmp_path / "lake")
    with pytest.raises(DataContractError, match="no rows to score for 2026-11-23"):
        run(spark, model, gold.limit(0), settings)
    assert not (tmp_path / "lake").exists()


@pytest.mark.spark
def test_bad_gold_is_rejected_before_any_write(spark, fitted, tmp_path: Path):
    model, gold = fitted
    settings = project(tmp_path / "lake")
    with pytest.raises(DataContractError, match="f_bmi"):
        run(spark, model, gold.drop("f_bmi"), settings)
    with pytest.raises(DataContractError, match=KEY):
        run(spark, model, gold.drop(KEY), settings)
    with pytest.raises(DataContractError, match=f"distinct {KEY}"):
        run(spark, model, gold.limit(10).unionByName(gold.limit(10)), settings)
    with pytest.raises(InvalidInput, match="model_version"):
        run(spark, model, gold, settings, version=0)
    assert not (tmp_path / "lake").exists()


@pytest.mark.spark
def test_existing_table_with_another_schema_is_not_overwritten(spark, fitted, tmp_path: Path):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    model, gold = fitted
    settings = project(tmp_path / "lake")
    path = tmp_path / "lake" / MODEL / "predictions" / "scores"
    write_deltalake(str(path), pa.table({"x": [1], "score_date": [D1]}), partition_by=["score_date"])
    with pytest.raises(DataContractError, match="existing Delta table has columns"):
        run(spark, model, gold, settings)
    assert DeltaTable(str(path)).version() == 0
    assert [p.name for p in path.iterdir() if p.name.startswith("score_date")] == ["score_date=2026-11-23"]
    assert all("write-" not in str(p) for p in path.rglob("*"))


# --------------------------------------------------------------------------- the Delta helper


def _schema():
    import pyarrow as pa

    return pa.schema(
        [("k", pa.string()), ("v", pa.float64()), ("at", pa.timestamp("us", tz="UTC")), ("day", pa.string())]
    )


@pytest.mark.spark
def test_a_failed_write_leaves_the_table_and_its_folder_as_they_were(spark, tmp_path: Path):
    import pyarrow as pa
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from pipelines import delta

    at = datetime(2026, 11, 23, 6, 30, 0, 123456, tzinfo=UTC)
    rows = spark.range(20).select(
        F.col("id").cast("string").alias("k"), F.col("id").cast("double").alias("v"), F.lit(at).alias("at")
    )
    path = str(tmp_path / "t")
    first = delta.replace_partition(rows, path, schema=_schema(), partition_column="day", value="a")
    assert (first.version, first.rows) == (0, 20)
    # the file's statistics bound the data: the max time is rounded up to Delta's milliseconds
    adds = pa.table(DeltaTable(path).get_add_actions(flatten=True)).to_pylist()
    assert sum(a["num_records"] for a in adds) == 20 and max(a["max.v"] for a in adds) == 19.0
    assert all(a["min.at"] <= at <= a["max.at"] for a in adds if a["num_records"])
    before = sorted(p for p in Path(path).rglob("*") if p.is_file())

    boom = rows.withColumn("v", F.when(F.col("k") == "7", F.raise_error(F.lit("boom"))).otherwise(F.col("v")))
    with pytest.raises(Exception, match="boom"):
        delta.replace_partition(boom, path, schema=_schema(), partition_column="day", value="a")
    assert DeltaTable(path).version() == 0
    assert DeltaTable(path).to_pyarrow_table().num_rows == 20
    assert sorted(p for p in Path(path).rglob("*") if p.is_file()) == before

    with pytest.raises(DataContractError, match="the table needs"):
        delta.replace_partition(rows.select("v", "k", "at"), path, schema=_schema(), partition_column="day", value="a")


@pytest.mark.spark
def test_capacity_scores_refine_approximate_quantiles_or_say_they_did_not(spark):
    from pyspark.sql import functions as F

    n = 5000
    scored = spark.range(n).select(((F.col("id") * 7919) % n / n).alias("score")).cache()
    ordered = sorted(((i * 7919) % n) / n for i in range(n))
    want = [sc.exact_quantile(ordered, p) for p in (0.95, 0.8)]
    got, exact = sc.capacity_scores(scored, [0.95, 0.8, 0.0], n, 0.05)
    assert exact and got[:2] == want and got[2] == -math.inf
    # a bracket too large for the driver: Spark's approximate value is kept, and said so
    approx, exact = sc.capacity_scores(scored, [0.95, 0.8], n, 0.05, max_window=10)
    assert not exact and len(approx) == 2
    scored.unpersist()
