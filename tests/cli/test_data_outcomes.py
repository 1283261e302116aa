"""Synthetic delayed outcomes (`promote data outcomes`): one row per gold row with gold's
pseudonymous key and label, recorded 1..delay days after the snapshot, idempotent per snapshot;
never a PHI column; bad options one line, exit 2. Run on the readmission project, whose names
(patient_key, readmitted_30d, as_of_date) are not the sample model's."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from promoter import config
from promoter.errors import InvalidInput
from tests.conftest import run_promote

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "models" / "readmission" / "configs"
KEY = "test-outcomes-key-not-a-secret"
AS_OF = date(2024, 9, 30)
ROWS = 2000
COLUMNS = {"key_column": "patient_key", "date_column": "outcome_date", "label_column": "label"}
MONITORING = "outcomes:\n  path: monitoring/outcomes\n  label_delay_days: 12\n"


def _environ(tmp: Path) -> dict[str, str]:
    return {
        "PROMOTE_LAKE_ROOT": str(tmp / "lake"),
        "PROMOTE_DATA_ROOT": str(tmp / "data"),
        "READMISSION_PSEUDONYM_KEY": KEY,
    }


@pytest.fixture(scope="module")
def project(spark, tmp_path_factory):
    """The readmission project's discharges generated and built into gold once (2,000 rows)."""
    from pipelines import features, synthetic_readmission

    tmp = tmp_path_factory.mktemp("outcomes")
    configs = tmp / "configs"
    shutil.copytree(CONFIGS, configs)
    for stale in configs.glob("*/monitoring.yml"):
        stale.unlink()
    environ = _environ(tmp)
    settings = config.load(configs, None, environ=environ)
    synthetic_readmission.generate(settings, ROWS, 3, AS_OF, 0.0)
    catalog = features.build(spark, settings, environ=environ)
    gold = features.load_gold(spark, settings)[0].select(catalog.id_column, catalog.label_column).toPandas()
    source = synthetic_readmission.table(synthetic_readmission.Spec(rows=ROWS, seed=3, as_of=AS_OF))
    return SimpleNamespace(
        tmp=tmp,
        configs=configs,
        environ=environ,
        settings=settings,
        catalog=catalog,
        gold=gold.set_index(catalog.id_column)[catalog.label_column],
        patient_ids=set(source.column(synthetic_readmission.ID_COLUMN).to_pylist()),
    )


def _write(spark, project, path: Path, *, day: date | None = AS_OF, delay: int = 12, seed: int = 1, fmt="delta"):
    from pipelines import synthetic_outcomes

    return synthetic_outcomes.write_outcomes(
        spark,
        project.settings,
        snapshot_date=day,
        label_delay_days=delay,
        seed=seed,
        path=str(path),
        format=fmt,
        **COLUMNS,
    )


def _delta(path: Path):
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pandas()


@pytest.mark.spark
def test_one_outcome_per_gold_row_with_its_key_label_and_a_delayed_date(spark, project, tmp_path):
    path = tmp_path / "outcomes"
    info = _write(spark, project, path, day=None)  # None: gold's snapshot date
    table = _delta(path)
    gold = project.gold
    assert info["rows"] == len(table) == len(gold) == ROWS
    assert info["snapshot_date"] == AS_OF.isoformat() == project.catalog.snapshot_date
    assert set(table.columns) == {"patient_key", "outcome_date", "label", "snapshot_date"}
    # gold's pseudonymous keys, never the patient ids (PHI) of the source table
    assert set(table["patient_key"]) == set(gold.index)
    assert not set(table["patient_key"]) & project.patient_ids
    assert not set(table.columns) & {c.lower() for c in project.settings.project.data.phi_columns}
    # the label is gold's, row by row
    labels = table.set_index("patient_key")["label"]
    assert (labels.sort_index() == gold.sort_index()).all()
    assert info["positives"] == int(gold.sum()) > 0
    # recorded 1..delay days after the snapshot, spread over the window
    days = (table["outcome_date"].map(lambda d: date.fromisoformat(str(d)[:10])) - AS_OF).map(lambda t: t.days)
    assert days.min() >= 1 and days.max() <= 12 and days.nunique() == 12
    assert info["first_outcome"] == (AS_OF + timedelta(days=int(days.min()))).isoformat()
    assert info["last_outcome"] == (AS_OF + timedelta(days=int(days.max()))).isoformat()


@pytest.mark.spark
def test_rerunning_a_snapshot_replaces_it_and_another_snapshot_appends(spark, project, tmp_path):
    path = tmp_path / "outcomes"
    _write(spark, project, path)
    first = _delta(path).sort_values("patient_key", ignore_index=True)
    _write(spark, project, path)  # the same snapshot again: no duplicates, the same rows
    again = _delta(path).sort_values("patient_key", ignore_index=True)
    assert again.equals(first)
    later = AS_OF + timedelta(days=7)
    _write(spark, project, path, day=later, seed=2)
    both = _delta(path)
    assert len(both) == 2 * ROWS and set(both["snapshot_date"].astype(str)) == {str(AS_OF), str(later)}
    _write(spark, project, path, day=later, seed=3)  # replaces only the later snapshot
    replaced = _delta(path)
    assert len(replaced) == 2 * ROWS
    old = replaced[replaced["snapshot_date"].astype(str) == str(AS_OF)].sort_values("patient_key", ignore_index=True)
    assert old.equals(first)


@pytest.mark.spark
def test_the_seed_decides_the_dates_and_parquet_is_idempotent_too(spark, project, tmp_path):
    import pandas as pd

    path = tmp_path / "outcomes-parquet"
    _write(spark, project, path, seed=1, fmt="parquet")
    _write(spark, project, path, seed=1, fmt="parquet")
    a = pd.read_parquet(path).sort_values("patient_key", ignore_index=True)
    assert len(a) == ROWS
    _write(spark, project, tmp_path / "other", seed=9)
    b = _delta(tmp_path / "other").sort_values("patient_key", ignore_index=True)
    assert (a["patient_key"] == b["patient_key"]).all() and (a["label"] == b["label"]).all()
    assert (a["outcome_date"].astype(str) != b["outcome_date"].astype(str)).mean() > 0.5


@pytest.mark.parametrize(
    "change,message",
    [
        ({"key_column": "patient_id"}, "outcomes key_column 'patient_id' is a PHI column"),
        ({"key_column": "mrn"}, "is a PHI column"),
        ({"label_delay_days": 0}, "--label-delay-days must be between 1 and 3650"),
        ({"format": "json"}, "outcomes format must be one of delta, parquet, csv"),
        ({"date_column": "snapshot_date"}, "partition column"),
        ({"label_column": "patient_key"}, "must differ"),
    ],
)
def test_bad_arguments_are_one_line_before_spark(change, message):
    from pipelines import synthetic_outcomes

    settings = config.load(CONFIGS, None, environ={})
    args = {"label_delay_days": 10, "format": "delta", **COLUMNS, **change}
    with pytest.raises(InvalidInput, match=message) as err:
        synthetic_outcomes.check_arguments(settings, **args)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- the command


def _promote(project, *args: str, capsys) -> tuple[int, str, str]:
    """Run the CLI in this process (its Spark is the session fixture's)."""
    from promoter.cli import main

    code = main(["--config-dir", str(project.configs), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.spark
def test_data_outcomes_writes_the_configured_table(spark, project, monkeypatch, capsys):
    from pipelines import lake

    for k, v in project.environ.items():
        monkeypatch.setenv(k, v)
    (project.configs / "base" / "monitoring.yml").write_text(MONITORING)
    try:
        code, out, err = _promote(project, "data", "outcomes", "--seed", "4", capsys=capsys)
        assert code == 0, err
        settings = config.load(project.configs, None, environ=project.environ)
        target = lake.location(settings, "monitoring/outcomes")
        assert target.startswith(lake.root(settings))
        table = _delta(Path(target))
        assert len(table) == ROWS and set(table["patient_key"]) == set(project.gold.index)
        assert f"outcomes of snapshot {AS_OF} written to {target}" in out
        assert f"{ROWS:,} rows, {int(project.gold.sum()):,} positive" in out
        assert f"recorded {AS_OF + timedelta(days=1)} .. {AS_OF + timedelta(days=12)}" in out
        # --label-delay-days overrides the configured delay; the same snapshot is replaced
        code, out, err = _promote(
            project,
            "data",
            "outcomes",
            "--snapshot-date",
            AS_OF.isoformat(),
            "--label-delay-days",
            "3",
            capsys=capsys,
        )
        assert code == 0, err
        table = _delta(Path(target))
        assert len(table) == ROWS
        assert f"recorded {AS_OF + timedelta(days=1)} .. {AS_OF + timedelta(days=3)}" in out
    finally:
        (project.configs / "base" / "monitoring.yml").unlink()


def test_data_outcomes_without_an_outcomes_section_exits_2(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    for stale in configs.glob("*/monitoring.yml"):
        stale.unlink()
    proc = run_promote("--config-dir", str(configs), "data", "outcomes", env=_environ(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "monitoring.yml has no outcomes section: configure outcomes.path" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--label-delay-days", "0"], "'--label-delay-days'"),
        (["--snapshot-date", "30/09/2024"], "'--snapshot-date'"),
        (["--seed", "x"], "'--seed'"),
    ],
)
def test_data_outcomes_bad_options_exit_2(args, message, tmp_path):
    proc = run_promote("data", "outcomes", *args, env=_environ(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_data_outcomes_help_has_examples():
    proc = run_promote("data", "outcomes", "--help")
    assert proc.returncode == 0
    assert "Examples:" in proc.stdout and "promote data outcomes --snapshot-date" in proc.stdout
