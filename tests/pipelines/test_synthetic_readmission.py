"""The synthetic readmission table: deterministic, of its own shape, learnable, with informative
missingness, agreeing with the readmission project's contracts, written all or nothing. No Spark."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines import synthetic_readmission as sr
from promoter import config
from promoter.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "models" / "readmission" / "configs"
AS_OF = date(2024, 9, 30)
HROB_NAMES = {"member_id", "member_key", "hrob_label", "snapshot_date", "race_ethnicity", "payer_type", "region"}


@pytest.fixture(scope="module")
def big() -> pa.Table:
    return sr.table(sr.Spec(rows=20_000, seed=7, as_of=AS_OF))


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    pos = y == 1
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def _design(t: pa.Table, groups: tuple[str, ...]) -> np.ndarray:
    """Standardised, median-imputed features of ``groups`` (text one-hot) and an intercept."""
    cols = []
    for name in sr.FEATURE_COLUMNS:
        if not any(name.startswith(sr.GROUP_PREFIXES[g]) for g in groups):
            continue
        col = t.column(name)
        if pa.types.is_string(col.type):
            values = np.array(col.to_pylist(), dtype=object)
            cols += [(values == level).astype(float) for level in sorted(set(values))[1:]]
        else:
            x = np.array(col.to_pylist(), dtype=float)
            x[np.isnan(x)] = np.nanmedian(x)
            cols.append(x)
    x = np.column_stack(cols)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1)
    return np.column_stack([np.ones(len(x)), x])


def _logistic_auc(t: pa.Table, groups: tuple[str, ...]) -> float:
    """Held-out AUC of a ridge logistic regression (Newton steps) on one fifth of the rows."""
    x, y = _design(t, groups), np.array(t.column(sr.LABEL_COLUMN).to_pylist())
    test = np.arange(len(y)) % 5 == 0
    w = np.zeros(x.shape[1])
    for _ in range(12):
        p = 1 / (1 + np.exp(-x[~test] @ w))
        grad = x[~test].T @ (p - y[~test]) + 1.0 * w
        hess = (x[~test] * (p * (1 - p))[:, None]).T @ x[~test] + np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return _auc(x[test] @ w, y[test])


def test_same_seed_same_table_and_another_seed_another():
    a = sr.table(sr.Spec(rows=500, seed=3, as_of=AS_OF))
    b = sr.table(sr.Spec(rows=500, seed=3, as_of=AS_OF))
    c = sr.table(sr.Spec(rows=500, seed=4, as_of=AS_OF))
    assert a.equals(b)
    assert not a.equals(c)
    assert a.column(sr.ID_COLUMN).to_pylist() != c.column(sr.ID_COLUMN).to_pylist()


def test_shape_is_its_own_one_row_per_discharge(big):
    names = big.column_names
    assert names[:3] == ["patient_id", "patient_name", "mrn"]
    assert not HROB_NAMES & set(names)
    assert 20 <= len(sr.FEATURE_COLUMNS) <= 60
    assert set(sr.FEATURE_COLUMNS) <= set(names)
    ids = big.column("patient_id").to_pylist()
    assert len(set(ids)) == len(ids) == 20_000
    assert all(re.fullmatch(r"P[0-9]{8}", i) for i in ids[:1000])
    for col in ("date_of_birth", "as_of_date", "admit_date", "discharge_date"):
        assert big.schema.field(col).type == pa.date32(), col
    assert big.schema.field("readmitted_30d").type == pa.int32()
    assert set(big.column("as_of_date").to_pylist()) == {AS_OF}
    # every 30-day outcome is complete: discharged 31-120 days before the extract, after admission
    lag = pc.days_between(big.column("discharge_date"), big.column("as_of_date")).to_numpy()
    assert lag.min() >= 31 and lag.max() <= 120
    stay = pc.days_between(big.column("admit_date"), big.column("discharge_date")).to_numpy()
    assert np.array_equal(stay, big.column("enc_length_of_stay").to_numpy())


def test_phi_is_plainly_fictional(big):
    phones = [p for p in big.column("home_phone").to_pylist() if p is not None]
    assert phones and all(re.fullmatch(r"555-01[0-9]{2}", p) for p in phones)
    assert all(m.startswith("TEST") for m in big.column("mrn").to_pylist())
    assert 0.05 < big.column("home_phone").null_count / big.num_rows < 0.12
    ages = (AS_OF - d for d in big.column("date_of_birth").to_pylist()[:2000])
    assert all(18 <= a.days / 365.25 < 101 for a in ages)


def test_prevalence_is_a_few_percent_and_rises_with_shift(big):
    rate = pc.mean(big.column("readmitted_30d")).as_py()
    assert 0.06 < rate < 0.13
    drifted = sr.table(sr.Spec(rows=20_000, seed=7, as_of=AS_OF, shift=1.0))
    assert pc.mean(drifted.column("readmitted_30d")).as_py() > rate + 0.03
    # every subgroup level is present, with readmissions, so fairness can be measured
    for col, levels in (("sex", {"F", "M"}), ("insurance_type", set(sr.INSURANCE_TYPES))):
        values = np.array(big.column(col).to_pylist())
        y = big.column("readmitted_30d").to_numpy()
        assert set(values) == levels
        for level in levels:
            assert y[values == level].sum() >= 50, (col, level)


def test_the_label_is_learnable_and_history_adds_to_the_index_stay(big):
    clinical = _logistic_auc(big, sr.CLINICAL_GROUPS)
    everything = _logistic_auc(big, sr.CLINICAL_GROUPS + sr.HISTORY_GROUPS)
    assert clinical > 0.72
    assert everything > clinical + 0.03


def test_missing_values_are_not_at_random(big):
    stay = big.column("enc_length_of_stay").to_numpy()
    ed = big.column("enc_admit_via_ed").to_numpy()
    lab_missing = big.column("lab_hemoglobin").is_null().to_numpy(zero_copy_only=False)
    short_elective = (stay <= 2) & (ed == 0)
    assert lab_missing[short_elective].mean() > 3 * lab_missing[~short_elective].mean()
    # days since the last admission is empty exactly when there was none
    since = big.column("hx_days_since_last_admit").is_null().to_numpy(zero_copy_only=False)
    assert np.array_equal(since, big.column("hx_admissions_12m").to_numpy() == 0)
    social = big.column("soc_distance_km").is_null().to_numpy(zero_copy_only=False)
    self_pay = np.array(big.column("insurance_type").to_pylist()) == "self_pay"
    assert social[self_pay].mean() > 3 * social[~self_pay].mean()


def test_the_table_agrees_with_the_readmission_project(big):
    settings = config.load(CONFIGS, "prod", environ={})
    data = settings.project.data
    assert (data.id_column, data.label_column, data.snapshot_date_column) == (
        sr.ID_COLUMN,
        sr.LABEL_COLUMN,
        sr.SNAPSHOT_COLUMN,
    )
    assert set(sr.SUBGROUP_COLUMNS) <= set(data.subgroup_columns)
    assert set(data.phi_columns) == set(sr.PHI_COLUMNS)
    contract = settings.contracts.tables[data.entity_table]
    # allow_extra_columns: false, so the contract lists exactly the columns it does not match by pattern
    assert set(contract.columns) <= set(big.column_names)
    spark_types = {pa.int32(): "int", pa.float64(): "double", pa.string(): "string", pa.date32(): "date"}
    for name, rule in contract.columns.items():
        col = big.column(name)
        if rule.type:
            assert spark_types[col.type] == rule.type, name
        nulls = col.null_count / big.num_rows
        if rule.nullable is False:
            assert nulls == 0, name
        if rule.max_null_fraction is not None:
            assert nulls <= rule.max_null_fraction, name
        if rule.allowed:
            assert set(pc.unique(col.drop_null()).to_pylist()) <= set(rule.allowed), name
        if rule.min is not None and col.type != pa.date32():
            assert pc.min(col).as_py() >= float(rule.min), name
        if rule.max is not None and col.type != pa.date32():
            assert pc.max(col).as_py() <= float(rule.max), name
    # every feature group of feature_mappings.yml claims columns, and the generator's groups are its groups
    assert set(settings.feature_mappings.groups) == set(sr.GROUP_PREFIXES)


def test_write_is_all_or_nothing_in_each_format(tmp_path):
    small = sr.table(sr.Spec(rows=600, seed=1, as_of=AS_OF))
    target = tmp_path / "out" / "discharges.parquet"
    sr.write(small, target)
    assert pq.read_table(target).equals(small)
    sr.write(sr.table(sr.Spec(rows=700, seed=2, as_of=AS_OF)), target)  # replaced, not appended
    assert pq.read_table(target).num_rows == 700
    assert sorted(p.name for p in target.parent.iterdir()) == ["discharges.parquet"]

    csv = tmp_path / "out" / "discharges.csv"
    sr.write(small, csv, "csv")
    assert csv.read_text().splitlines()[0].startswith('"patient_id","patient_name"')
    assert len(csv.read_text().splitlines()) == 601

    from deltalake import DeltaTable

    sr.write(small, tmp_path / "delta", "delta")
    sr.write(small, tmp_path / "delta", "delta")
    assert DeltaTable(str(tmp_path / "delta")).to_pyarrow_table().num_rows == 600

    with pytest.raises(InvalidInput, match="is a folder"):
        sr.write(small, tmp_path / "delta", "parquet")


def test_generate_writes_the_projects_entity_table(tmp_path):
    settings = config.load(CONFIGS, None, environ={"PROMOTE_DATA_ROOT": str(tmp_path / "data")})
    info = sr.generate(settings, 800, 5, AS_OF)
    path = tmp_path / "data" / "readmission" / "discharges.parquet"
    assert info["path"] == str(path) and info["rows"] == 800 and info["table"] == "discharges"
    assert pq.read_table(path).num_rows == 800
    assert math.isclose(info["prevalence"], pc.mean(pq.read_table(path).column("readmitted_30d")).as_py())


@pytest.mark.parametrize(
    ("rows", "shift", "match"),
    [(0, 0.0, "at least 1"), (10, float("nan"), "--shift"), (10, 9.0, "--shift")],
)
def test_bad_arguments_are_one_line_each(rows, shift, match):
    with pytest.raises(InvalidInput, match=match):
        sr.table(sr.Spec(rows=rows, seed=1, as_of=AS_OF, shift=shift))


def test_a_project_without_tables_is_refused_and_nothing_is_written(tmp_path):
    hrob = config.load(ROOT / "configs", None, environ={"PROMOTE_LAKE_ROOT": str(tmp_path / "lake")})
    with pytest.raises(InvalidInput, match="data.source: tables"):
        sr.generate(hrob, 100, 1, AS_OF)
    assert not any(tmp_path.iterdir())


def test_data_generate_command_writes_the_readmission_table(tmp_path, monkeypatch, capsys):
    from promoter.cli import main

    monkeypatch.setenv("PROMOTE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    generate = ["--config-dir", str(CONFIGS), "data", "generate", "--dataset", "readmission"]
    assert main(generate + ["--rows", "900", "--seed", "4", "--snapshot-date", "2024-09-30"]) == 0
    out = capsys.readouterr().out
    assert "900 discharges" in out and "readmitted within 30 days" in out
    table = pq.read_table(tmp_path / "data" / "readmission" / "discharges.parquet")
    assert table.equals(sr.table(sr.Spec(rows=900, seed=4, as_of=AS_OF)))
    # bad input: one line, exit 2, the table as it was
    assert main(generate + ["--shift", "nan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shift" in err[0]
    assert pq.read_table(tmp_path / "data" / "readmission" / "discharges.parquet").equals(table)
