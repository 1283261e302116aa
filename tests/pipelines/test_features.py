"""Bronze -> silver -> gold on the synthetic population: PHI never leaves bronze, the catalog is
right, utilisation comes from claims, imputation fills every gap, and the YAML files decide the
features (a bad name is one clear config error)."""

from __future__ import annotations

import shutil
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from promoter import config
from promoter.errors import ConfigError, DataContractError
from tests.conftest import run_promote

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
KEY = "test-pseudonym-key-not-a-secret"
MEMBERS = 2000
SDOH = ("sdoh_economic", "sdoh_housing", "sdoh_transportation", "sdoh_food", "sdoh_education", "sdoh_neighborhood")


def _settings(root: Path, configs: Path = CONFIGS, env: str | None = None):
    environ = {"PROMOTE_LAKE_ROOT": str(root), "PROMOTE_PSEUDONYM_KEY": KEY}
    return config.load(configs, env, environ=environ), environ


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """The synthetic population generated and built once for this module (2,000 members)."""
    from pipelines import features, synthetic

    root = tmp_path_factory.mktemp("lake")
    settings, environ = _settings(root)
    today = datetime.now(UTC).date()
    counts = synthetic.generate(spark, settings, MEMBERS, 11, today)
    catalog = features.build(spark, settings, environ=environ)
    return SimpleNamespace(root=root, settings=settings, environ=environ, counts=counts, catalog=catalog, today=today)


@pytest.mark.spark
def test_gold_has_key_label_subgroups_and_500_plus_imputed_double_features(spark, lake):
    from pyspark.sql import functions as F

    from pipelines import features

    gold, catalog = features.load_gold(spark, lake.settings)
    assert catalog.row_count == MEMBERS == gold.count()
    head = ["member_key", "snapshot_date", "hrob_label", "race_ethnicity", "payer_type", "region", "age_band"]
    assert gold.columns == head + catalog.feature_columns
    assert len(catalog.feature_columns) >= 500
    assert list(catalog.groups) == [
        "demographics",
        "obstetric_history",
        "comorbidities",
        "vitals_labs",
        "medications",
        "utilization",
        *SDOH,
    ]
    assert [c for cols in catalog.groups.values() for c in cols] == catalog.feature_columns
    types = dict(gold.dtypes)
    assert {types[c] for c in catalog.feature_columns} == {"double"}
    assert types["hrob_label"] == "int" and types["member_key"] == "string"
    nulls = gold.agg(*[F.sum(F.col(c).isNull().cast("int")).alias(c) for c in catalog.feature_columns]).first()
    assert not any(nulls), [c for c in catalog.feature_columns if nulls[c]]
    assert catalog.snapshot_date == lake.today.isoformat()
    assert catalog.source_contract_version == lake.settings.contracts.version
    assert catalog.id_column == "member_key" and catalog.label_column == "hrob_label"
    assert catalog.subgroup_columns == ["race_ethnicity", "payer_type", "region", "age_band"]
    assert len(catalog.snapshot_id) == 32 and len(catalog.schema_hash) == 64
    assert catalog.pseudonym_key == "environment"
    # subgroups are never features; derived subgroups have their coarse values only
    assert not set(catalog.subgroup_columns) & set(catalog.feature_columns)
    bands = {r[0] for r in gold.select("age_band").distinct().collect()}
    assert bands <= {"<20", "20-24", "25-29", "30-34", "35-39", "40+"} and len(bands) >= 4
    regions = {r[0] for r in gold.select("region").distinct().collect()}
    assert regions == set(lake.settings.project.data.derive.regions)


@pytest.mark.spark
def test_phi_is_absent_from_silver_and_gold_names_and_values(spark, lake):
    from pipelines import lake as lake_io
    from pipelines import phi

    data = lake.settings.project.data
    phi_names = {c.lower() for c in [*data.phi_columns, data.id_column]}
    bronze = spark.read.parquet(lake_io.path(lake.settings, "bronze", "members"))
    # the guard sees PHI where it is allowed to be (bronze), by name and by value pattern
    bronze_findings = phi.findings(bronze.select("ssn", "phone", "email", "street_address"), [])
    assert any("SSN" in f for f in bronze_findings) and any("phone" in f for f in bronze_findings)
    assert any("e-mail" in f for f in bronze_findings)
    for layer, table in (("silver", "members"), ("silver", "claims"), ("gold", "features")):
        df = spark.read.parquet(lake_io.path(lake.settings, layer, table))
        assert not {c.lower() for c in df.columns} & phi_names, (layer, table)
        assert phi.findings(df, list(phi_names)) == [], (layer, table)
        for text_col in [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]:
            hits = df.where(df[text_col].rlike(r"[0-9]{3}-[0-9]{2}-[0-9]{4}|@|555-01")).count()
            assert hits == 0, (layer, table, text_col)
    # nothing half-written is left behind
    assert not [p for p in lake.root.rglob("*") if "__staging" in p.name or "__old" in p.name]


@pytest.mark.spark
def test_member_key_is_the_hmac_of_the_member_id(spark, lake):
    from pyspark.sql import functions as F

    from pipelines import features

    gold, _ = features.load_gold(spark, lake.settings)
    keys = {r[0] for r in gold.select("member_key").limit(5000).collect()}
    expected = features.pseudonymize_value("M000000001", KEY.encode())
    assert expected in keys
    assert features.pseudonymize_value("M000000001", b"another key") not in keys
    long_key = b"k" * 100  # longer than the block: hashed first, as hmac does
    df = spark.createDataFrame([("M000000001",), ("x",), ("",)], "v string")
    got = [r[0] for r in df.select(features.pseudonymize(F.col("v"), long_key)).collect()]
    assert got == [features.pseudonymize_value(v, long_key) for v in ("M000000001", "x", "")]


@pytest.mark.spark
def test_utilisation_features_are_claims_counts_and_recency(spark, lake):
    from pyspark.sql import functions as F

    from pipelines import features
    from pipelines import lake as lake_io

    gold, catalog = features.load_gold(spark, lake.settings)
    util = catalog.groups["utilization"]
    assert {
        "util_er_visits_365d",
        "util_admissions_90d",
        "util_prenatal_visits_30d",
        "util_er_visits_days_since",
        "util_paid_amount_365d",
        "util_events_180d",
    } <= set(util)
    claims = spark.read.parquet(lake_io.path(lake.settings, "silver", "claims"))
    days = F.datediff(F.lit(lake.today), F.col("service_date"))
    expect = claims.agg(
        F.sum(((F.col("claim_type") == "ER") & (days < 365)).cast("int")).alias("er365"),
        F.sum(((F.col("claim_type") == "PRENATAL") & (days < 30)).cast("int")).alias("pn30"),
        F.countDistinct(F.when(F.col("claim_type") == "ER", F.col("member_key"))).alias("with_er"),
    ).first()
    got = gold.agg(
        F.sum("util_er_visits_365d").alias("er365"),
        F.sum("util_prenatal_visits_30d").alias("pn30"),
        F.sum((F.col("util_er_visits_days_since") < 730).cast("int")).alias("with_er"),
    ).first()
    assert (got["er365"], got["pn30"], got["with_er"]) == (expect["er365"], expect["pn30"], expect["with_er"])
    assert expect["er365"] > 0 and lake.counts["claims"] > 3 * MEMBERS  # many claims per member
    # a member with no ER visit has recency = the look-back cap, not a null
    assert gold.agg(F.max("util_er_visits_days_since")).first()[0] == 730.0


@pytest.mark.spark
def test_missing_values_are_imputed_per_group_with_indicators(spark, lake):
    from pyspark.sql import functions as F

    from pipelines import features
    from pipelines import lake as lake_io

    gold, catalog = features.load_gold(spark, lake.settings)
    silver = spark.read.parquet(lake_io.path(lake.settings, "silver", "members"))
    joined = silver.select(
        "member_key",
        F.col("vl_bmi").alias("raw_bmi"),
        F.col("sdoh_econ_unemployed").alias("raw_unemp"),
        F.col("cm_asthma").alias("raw_asthma"),
    ).join(
        gold.select("member_key", "vl_bmi", "sdoh_econ_unemployed", "sdoh_econ_unemployed__missing", "cm_asthma"),
        "member_key",
    )
    bmi = catalog.imputation["vl_bmi"]
    assert bmi["method"] == "median"
    row = joined.agg(
        F.sum(F.col("raw_bmi").isNull().cast("int")).alias("bmi_nulls"),
        F.sum((F.col("raw_bmi").isNull() & (F.col("vl_bmi") != bmi["value"])).cast("int")).alias("bmi_wrong"),
        F.sum((F.col("raw_bmi").isNotNull() & (F.col("vl_bmi") != F.col("raw_bmi"))).cast("int")).alias("bmi_changed"),
        F.sum(F.col("raw_unemp").isNull().cast("int")).alias("unemp_nulls"),
        F.sum("sdoh_econ_unemployed__missing").alias("unemp_flags"),
        F.percentile_approx("raw_bmi", 0.5, features.MEDIAN_ACCURACY).alias("median"),
    ).first()
    assert row["bmi_nulls"] > 0 and row["bmi_wrong"] == 0 and row["bmi_changed"] == 0
    assert row["unemp_nulls"] == row["unemp_flags"] > 0
    assert bmi["value"] == pytest.approx(row["median"])
    assert catalog.imputation["cm_asthma"] == {"method": "constant", "value": 0.0}
    assert "sdoh_econ_unemployed__missing" in catalog.groups["sdoh_economic"]
    assert not any(c.endswith("__missing") for c in catalog.groups["vitals_labs"])


@pytest.mark.spark
def test_clean_population_passes_the_shipped_contracts(spark, lake):
    from pipelines import contracts

    report = contracts.check(spark, lake.settings)
    assert report.ok, report.to_text()
    assert report.tables["members"].rows == MEMBERS
    assert report.tables["claims"].rows == lake.counts["claims"]
    assert report.tables["members"].checked_rules > 500


@pytest.mark.spark
def test_selection_config_changes_the_gold_columns(spark, lake, tmp_path):
    """Another selection (and the bronze read as plain 'tables') gives another gold, no code change."""
    from pipelines import features
    from pipelines import lake as lake_io

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    bronze = {t: lake_io.path(lake.settings, "bronze", t) for t in ("members", "claims")}
    (configs / "dev" / "project.yml").write_text(
        "data:\n  source: tables\n  tables:\n"
        f"    members: {{path: '{bronze['members']}', format: parquet}}\n"
        f"    claims: {{path: '{bronze['claims']}', format: parquet}}\n"
    )
    (configs / "dev" / "feature_selection_config.yml").write_text(
        "include_groups: [demographics, obstetric_history, sdoh_housing]\n"
        "exclude_features: [ob_gravidity]\n"
        "include_features: [vl_bmi]\n"
        "imputation:\n  sdoh_housing: {method: mean, add_indicator: true}\n"
    )
    settings, environ = _settings(tmp_path / "lake2", configs, "dev")
    catalog = features.build(spark, settings, environ=environ)
    assert list(catalog.groups) == ["demographics", "obstetric_history", "vitals_labs", "sdoh_housing"]
    assert catalog.groups["vitals_labs"] == ["vl_bmi"]
    assert "ob_gravidity" not in catalog.feature_columns and "ob_parity" in catalog.feature_columns
    housing = catalog.groups["sdoh_housing"]
    assert "sdoh_housing_unstable" in housing and "sdoh_housing_unstable__missing" in housing
    assert not any(c.startswith(("cm_", "rx_", "util_", "sdoh_food")) for c in catalog.feature_columns)
    gold, _ = features.load_gold(spark, settings)
    assert gold.columns[7:] == catalog.feature_columns
    assert set(catalog.feature_columns) < set(lake.catalog.feature_columns) | set(f"{c}__missing" for c in housing)
    assert catalog.snapshot_id != lake.catalog.snapshot_id
    assert catalog.row_count == MEMBERS


def _mapping_error(tmp_path: Path, file: str, text: str) -> ConfigError:
    from pipelines import features

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "base" / "feature_mappings.yml").write_text(
        'groups:\n  demographics: [age_years, "demo_*"]\n  obstetric_history: ["ob_*"]\n'
        '  vitals_labs: ["vl_*"]\n  sdoh_food: ["sdoh_food_*"]\n  utilization: ["util_*"]\n'
    )
    (configs / "base" / "feature_selection_config.yml").write_text("include_groups: []\n")
    (configs / "base" / file).write_text(text)
    old = Path.cwd()
    columns = [
        ("age_years", "int"),
        ("demo_married", "int"),
        ("ob_parity", "int"),
        ("vl_bmi", "double"),
        ("sdoh_food_insecure", "int"),
        ("util_er_visits_30d", "double"),
    ]
    import os

    os.chdir(tmp_path)  # the error names the file relative to the working directory
    try:
        with pytest.raises(ConfigError) as exc:
            # what one file says of another fails at load (LOAD_TIME); what needs the columns, here
            settings, _ = _settings(tmp_path / "lake", configs)
            features.resolve_features(columns, settings)
    finally:
        os.chdir(old)
    return exc.value


# problems config.load finds on its own (cross-file checks), before any column is known
LOAD_TIME = {"label-as-feature", "unknown-group", "unknown-imputation-group"}


BAD_MAPPINGS = [
    (
        "feature_mappings.yml",
        "groups:\n  demographics: [age_years, demo_maried]\n",
        "feature_mappings.yml:2:",
        "groups.demographics[1]",
        "column 'demo_maried' not found",
        "demo_married",
    ),
    (
        "feature_mappings.yml",
        'groups:\n  demographics: ["demo_*"]\n  labs: ["lab_*"]\n',
        "feature_mappings.yml:3:",
        "groups.labs[0]",
        "pattern 'lab_*' matches no column",
        None,
    ),
    (
        "feature_mappings.yml",
        'groups:\n  a: ["demo_*"]\n  b: ["*_married"]\n',
        "feature_mappings.yml:3:",
        "groups.b[0]",
        "already in group 'a'",
        None,
    ),
    (
        "feature_mappings.yml",
        "groups:\n  a: [hrob_label]\n",
        "feature_mappings.yml:2:",
        "groups.a[0]",
        "is the label",
        None,
    ),
    (
        "feature_selection_config.yml",
        "include_groups: [demographics, sdoh_fod]\n",
        "feature_selection_config.yml:1:",
        "include_groups[1]",
        "unknown group 'sdoh_fod'",
        None,
    ),
    (
        "feature_selection_config.yml",
        "exclude_features: [vl_bmii]\n",
        "feature_selection_config.yml:1:",
        "exclude_features[0]",
        "column 'vl_bmii' not found",
        "vl_bmi",
    ),
    (
        "feature_selection_config.yml",
        "imputation:\n  nope: {method: mean}\n",
        "feature_selection_config.yml:2:",
        "imputation.nope",
        "unknown group 'nope'",
        None,
    ),
]


@pytest.mark.parametrize(
    "file,text,where,key,message,hint",
    BAD_MAPPINGS,
    ids=[
        "unknown-column",
        "empty-pattern",
        "two-groups",
        "label-as-feature",
        "unknown-group",
        "unknown-feature",
        "unknown-imputation-group",
    ],
)
def test_a_bad_mapping_is_one_clear_config_error(request, tmp_path, file, text, where, key, message, hint):
    err = _mapping_error(tmp_path, file, text)
    line = str(err)
    assert "\n" not in line and err.exit_code == 2
    assert where in line and key in line and message in line, line
    if hint:
        assert f"did you mean '{hint}'" in line
    case = request.node.callspec.id
    try:
        config.load(tmp_path / "configs", environ={"PROMOTE_LAKE_ROOT": str(tmp_path / "lake")})
    except ConfigError as exc:
        assert case in LOAD_TIME and key in str(exc), (case, str(exc))
    else:
        assert case not in LOAD_TIME, f"{case}: config.load should have found it"


def test_imputation_value_is_only_for_constant():
    from pydantic import ValidationError

    from promoter.config import Imputation

    with pytest.raises(ValidationError):
        Imputation(method="constant")
    with pytest.raises(ValidationError):
        Imputation(method="median", value=1.0)
    assert Imputation(method="constant", value=0).value == 0.0


@pytest.mark.spark
def test_cli_features_with_a_bad_mapping_exits_2_and_writes_nothing(lake, tmp_path):
    from pipelines import lake as lake_io

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    bronze = {t: lake_io.path(lake.settings, "bronze", t) for t in ("members", "claims")}
    (configs / "base" / "project.yml").write_text(
        (CONFIGS / "base" / "project.yml")
        .read_text()
        .replace(
            "  source: synthetic\n",
            "  source: tables\n  tables:\n"
            f"    members: {{path: '{bronze['members']}', format: parquet}}\n"
            f"    claims: {{path: '{bronze['claims']}', format: parquet}}\n",
        )
    )
    (configs / "base" / "feature_mappings.yml").write_text("groups:\n  demographics: [age_years, demo_typo]\n")
    (configs / "base" / "feature_selection_config.yml").write_text("include_groups: []\n")
    out_lake = tmp_path / "lake"
    proc = run_promote(
        "--config-dir",
        str(configs),
        "features",
        cwd=tmp_path,
        env={"PROMOTE_LAKE_ROOT": str(out_lake), "PROMOTE_PSEUDONYM_KEY": KEY},
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "feature_mappings.yml:2:" in errors[0] and "demo_typo" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out_lake.exists() or not any(out_lake.rglob("*.parquet"))


def test_development_key_is_labelled_and_warned():
    from pipelines import features

    settings, _ = _settings(Path("/nonexistent"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        key, source = features.pseudonym_key(settings, environ={})
    assert source == "development" and b"DEVELOPMENT" in key
    assert any(
        issubclass(w.category, features.DevelopmentKeyWarning) and "PROMOTE_PSEUDONYM_KEY" in str(w.message)
        for w in caught
    )
    assert features.pseudonym_key(settings, environ={"PROMOTE_PSEUDONYM_KEY": "s3cret"}) == (b"s3cret", "environment")


@pytest.mark.spark
def test_phi_guard_rejects_phi_names_and_values(spark):
    from pipelines import phi

    settings, _ = _settings(Path("/nonexistent"))
    clean = spark.createDataFrame(
        [("abc", 1.0, "note about 3 visits"), ("d", 2.0, "1234-5678")], "member_key string, x double, note string"
    )
    phi.check(clean, settings, "gold/features")  # no exception
    for value, what in (
        ("call (614) 555-0199", "phone"),
        ("ssn 912-34-5678", "SSN"),
        ("mail jane.doe@example.org", "e-mail"),
    ):
        df = spark.createDataFrame([("abc", value)], "member_key string, note string")
        with pytest.raises(DataContractError) as exc:
            phi.check(df, settings, "silver/members")
        assert what in str(exc.value) and "note" in str(exc.value) and value not in str(exc.value)
    named = spark.createDataFrame([("abc", "x")], "member_key string, date_of_birth string")
    with pytest.raises(DataContractError, match="date_of_birth"):
        phi.check(named, settings)


def test_catalog_round_trips_as_json():
    from pipelines.features import Catalog

    cat = Catalog(
        feature_columns=["a", "b"],
        snapshot_id="s" * 32,
        groups={"g": ["a", "b"]},
        row_count=3,
        snapshot_date=date(2024, 6, 30).isoformat(),
    )
    import json

    again = Catalog.from_dict(json.loads(cat.to_json()))
    assert again == cat and again.to_dict()["feature_columns"] == ["a", "b"]


@pytest.mark.spark
def test_gold_and_contract_checks_are_reused_only_for_identical_inputs(spark, tmp_path):
    """Re-running a pipeline on untouched bronze reuses gold and the passing contract check
    (each CI event of a release would otherwise rebuild them); any change rebuilds."""
    import time

    from pipelines import contracts, features, synthetic

    settings, environ = _settings(tmp_path / "lake")
    today = datetime.now(UTC).date()
    synthetic.generate(spark, settings, 1000, 5, today)
    first = features.build(spark, settings, environ=environ)
    report = contracts.check(spark, settings)
    assert report.ok and first.build_key
    time.sleep(1.1)  # built_at / checked_at have one-second resolution
    again = features.build(spark, settings, environ=environ)
    assert (again.built_at, again.snapshot_id, again.build_key) == (first.built_at, first.snapshot_id, first.build_key)
    assert contracts.check(spark, settings).checked_at == report.checked_at

    # another pseudonym key: another gold (the keys differ), same contract check
    other_key = features.build(spark, settings, environ={**environ, "PROMOTE_PSEUDONYM_KEY": "another-key-xyz"})
    assert other_key.build_key != first.build_key and other_key.built_at != first.built_at

    # new bronze (same size, another seed): both are done again
    synthetic.generate(spark, settings, 1000, 6, today)
    rebuilt = features.build(spark, settings, environ=environ)
    assert rebuilt.build_key != first.build_key and rebuilt.snapshot_id != first.snapshot_id
    rechecked = contracts.check(spark, settings)
    assert rechecked.ok and rechecked.checked_at != report.checked_at

    # a failing check is never remembered: it runs again each time
    members = settings.contracts.tables["members"]
    tables = {
        **settings.contracts.tables,
        "members": members.model_copy(update={"row_count": members.row_count.model_copy(update={"min": 100_000})}),
    }
    strict = settings.model_copy(update={"contracts": settings.contracts.model_copy(update={"tables": tables})})
    failed = contracts.check(spark, strict)
    assert not failed.ok and any(v.rule.startswith("row_count") for v in failed.violations)
    time.sleep(1.1)
    assert contracts.check(spark, strict).checked_at != failed.checked_at
