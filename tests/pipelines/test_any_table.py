"""Any table, not only ours: a loan-default dataset of another shape (a CSV entity table with text
and date columns, a Delta event table) goes through the same contracts, silver and gold with only
its own YAML, and the PHI guard stops it when PHI hides in a free-text column."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from promoter import config
from promoter.errors import ConfigError, DataContractError

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2024, 3, 31)
KEY = "loan-test-key"
PURPOSES = ["car", "home", "education", "medical"]


def _loans(n: int = 80, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        income = None if rng.random() < 0.2 else round(rng.uniform(20_000, 120_000), 2)
        score = rng.randint(450, 820)
        rows.append(
            {
                "loan_id": f"L{i:04d}",
                "applicant_name": f"Applicant {i}",
                "applicant_email": f"a{i}@example.org",
                "as_of": AS_OF.isoformat(),
                "defaulted": int(score < 560 or rng.random() < 0.1),
                "branch_region": rng.choice(["north", "south"]),
                "income": income,
                "loan_amount": round(rng.uniform(1_000, 40_000), 2),
                "credit_score": score,
                "term_months": rng.choice([12, 24, 36, 60]),
                "purpose": rng.choice(PURPOSES + [None]),
                "opened_date": (AS_OF - timedelta(days=rng.randint(30, 900))).isoformat(),
                "employment_years": rng.randint(0, 30),
            }
        )
    return rows


def _payments(loans: list[dict], seed: int = 4) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for loan in loans:
        for k in range(rng.randint(0, 6)):
            out.append(
                {
                    "payment_id": f"{loan['loan_id']}-{k}",
                    "loan_id": loan["loan_id"],
                    "paid_on": AS_OF - timedelta(days=rng.randint(0, 200)),
                    "kind": rng.choice(["LATE", "ONTIME", "ONTIME"]),
                    "amount": round(rng.uniform(50, 900), 2),
                }
            )
    return out


PROJECT = """name: loans
model_name: loan-default
lake_root: ${{PROMOTE_LAKE_ROOT}}
spark: {{master: "local[2]"}}
data:
  source: tables
  entity_table: loans
  tables:
    loans: {{path: "{loans}", format: csv, options: {{header: true}}}}
    payments: {{path: "{payments}", format: delta}}
  id_column: loan_id
  key_column: loan_key
  label_column: defaulted
  snapshot_date_column: as_of
  subgroup_columns: [branch_region]
  phi_columns: [applicant_name, applicant_email]
  pseudonym_key_env: LOANS_PSEUDONYM_KEY
  derive: {{}}
  events:
    table: payments
    id_column: loan_id
    date_column: paid_on
    type_column: kind
    amount_column: amount
    prefix: pay_
    kinds: {{late: [LATE], ontime: [ONTIME]}}
    windows_days: [30, 90]
    lookback_days: 180
"""
CONTRACTS = """version: "loans-1"
tables:
  loans:
    owner: lending-data
    primary_key: [loan_id]
    row_count: {min: 10}
    columns:
      loan_id: {type: string, nullable: false}
      defaulted: {type: int, nullable: false, allowed: [0, 1]}
      credit_score: {type: int, min: 300, max: 850}
      income: {type: double, max_null_fraction: 0.5}
      purpose: {type: string, allowed: [car, home, education, medical]}
  payments:
    owner: servicing
    primary_key: [payment_id]
    foreign_keys: [{column: loan_id, references: loans.loan_id}]
    columns:
      kind: {type: string, allowed: [LATE, ONTIME]}
      amount: {type: double, min: 0}
"""
MAPPINGS = """groups:
  finances: [income, loan_amount, credit_score]
  loan: [term_months, purpose, opened_date]
  history: ["pay_*"]
  work: [employment_years]
"""
SELECTION = """include_groups: []
imputation:
  default: {method: median}
  finances: {method: median, add_indicator: true}
"""


@pytest.fixture
def loans_project(tmp_path):
    """A loan-default project: its own configs tree, a CSV and a Delta table, nothing of ours."""
    import pandas as pd
    from deltalake import write_deltalake

    loans = _loans()
    payments = _payments(loans)
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame(loans).to_csv(data / "loans.csv", index=False)
    write_deltalake(str(data / "payments"), pd.DataFrame(payments))
    cfg = tmp_path / "configs"
    (cfg / "base").mkdir(parents=True)
    # the reference project's branch rules and steps, with this project's fairness subgroups
    promotion = (ROOT / "configs" / "base" / "promotion.yml").read_text()
    (cfg / "base" / "promotion.yml").write_text(
        promotion.replace("subgroups: [race_ethnicity, payer_type, region, age_band]", "subgroups: [branch_region]")
    )
    (cfg / "base" / "project.yml").write_text(PROJECT.format(loans=data / "loans.csv", payments=data / "payments"))
    (cfg / "base" / "contracts.yml").write_text(CONTRACTS)
    (cfg / "base" / "feature_mappings.yml").write_text(MAPPINGS)
    (cfg / "base" / "feature_selection_config.yml").write_text(SELECTION)
    environ = {"PROMOTE_LAKE_ROOT": str(tmp_path / "lake"), "LOANS_PSEUDONYM_KEY": KEY}
    return tmp_path, cfg, environ, loans, payments


@pytest.mark.spark
def test_another_dataset_goes_through_contracts_silver_and_gold(spark, loans_project):
    from pyspark.sql import functions as F

    from pipelines import contracts, features, phi

    tmp_path, cfg, environ, loans, payments = loans_project
    settings = config.load(cfg, environ=environ)
    report = contracts.check(spark, settings, today=AS_OF)
    assert report.ok, report.to_text()
    assert report.tables["payments"].rows == len(payments)

    catalog = features.build(spark, settings, environ=environ)
    gold, catalog = features.load_gold(spark, settings)
    levels = [f"purpose__{p}" for p in sorted(PURPOSES, key=lambda p: (-sum(r["purpose"] == p for r in loans), p))]
    assert catalog.groups == {
        "finances": [
            "income",
            "income__missing",
            "loan_amount",
            "loan_amount__missing",
            "credit_score",
            "credit_score__missing",
        ],
        "loan": ["term_months", *levels, "opened_date"],
        "history": [
            "pay_late_30d",
            "pay_late_90d",
            "pay_late_days_since",
            "pay_ontime_30d",
            "pay_ontime_90d",
            "pay_ontime_days_since",
            "pay_events_30d",
            "pay_events_90d",
            "pay_amount_30d",
            "pay_amount_90d",
        ],
        "work": ["employment_years"],
    }
    assert gold.columns == ["loan_key", "as_of", "defaulted", "branch_region", *catalog.feature_columns]
    assert catalog.id_column == "loan_key" and catalog.label_column == "defaulted"
    assert catalog.source_contract_version == "loans-1" and catalog.row_count == len(loans)
    assert phi.findings(gold, ["applicant_name", "applicant_email", "loan_id"]) == []

    rows = {r["loan_key"]: r for r in gold.collect()}
    by_id = {features.pseudonymize_value(x["loan_id"], KEY.encode()): x for x in loans}
    assert set(rows) == set(by_id)
    incomes = [x["income"] for x in loans if x["income"] is not None]
    fill = catalog.imputation["income"]["value"]
    assert min(incomes) <= fill <= max(incomes)
    assert abs(sorted(incomes).index(fill) - len(incomes) / 2) <= 1  # the median of the non-null values
    for key, src in by_id.items():
        g = rows[key]
        assert g["income"] == (src["income"] if src["income"] is not None else fill)
        assert g["income__missing"] == float(src["income"] is None)
        assert g["opened_date"] == (AS_OF - date.fromisoformat(src["opened_date"])).days
        for p in PURPOSES:
            if f"purpose__{p}" in g:
                assert g[f"purpose__{p}"] == float(src["purpose"] == p)
        mine = [p for p in payments if p["loan_id"] == src["loan_id"]]
        assert g["pay_late_90d"] == sum(p["kind"] == "LATE" and (AS_OF - p["paid_on"]).days < 90 for p in mine)
        late = [(AS_OF - p["paid_on"]).days for p in mine if p["kind"] == "LATE"]
        assert g["pay_late_days_since"] == (min(late) if late else 180)
        assert g["pay_amount_30d"] == pytest.approx(sum(p["amount"] for p in mine if (AS_OF - p["paid_on"]).days < 30))
    assert gold.agg(F.sum(F.isnull("credit_score").cast("int"))).first()[0] == 0

    # rebuilding the same data and config gives the same snapshot id and keeps the version
    again = features.build(spark, settings, environ=environ)
    assert (again.snapshot_id, again.version) == (catalog.snapshot_id, catalog.version)
    # another pseudonym key is another snapshot (keys differ), so a new version
    other = features.build(spark, settings, environ={**environ, "LOANS_PSEUDONYM_KEY": "rotated"})
    assert other.snapshot_id != catalog.snapshot_id and other.version == catalog.version + 1


@pytest.mark.spark
def test_phi_in_free_text_stops_the_build_and_leaves_the_lake_untouched(spark, loans_project):
    import pandas as pd

    from pipelines import features

    tmp_path, cfg, environ, loans, _ = loans_project
    for i, row in enumerate(loans):
        row["officer_note"] = "call back at (216) 555-0142" if i == 7 else "ok"
    pd.DataFrame(loans).to_csv(tmp_path / "data" / "loans.csv", index=False)
    settings = config.load(cfg, environ=environ)
    with pytest.raises(DataContractError) as exc:
        features.build(spark, settings, environ=environ)
    assert "officer_note" in str(exc.value) and "phone" in str(exc.value) and "555-0142" not in str(exc.value)
    lake = tmp_path / "lake"
    assert not (lake / "silver").exists() or not any((lake / "silver").iterdir())
    assert not (lake / "gold").exists()
    assert not [p for p in lake.rglob("*") if "__staging" in p.name]


@pytest.mark.spark
def test_a_contract_violation_in_another_dataset_is_reported(spark, loans_project):
    import pandas as pd

    from pipelines import contracts

    tmp_path, cfg, environ, loans, _ = loans_project
    loans[3]["defaulted"] = 2
    loans[4]["credit_score"] = 900
    pd.DataFrame(loans).to_csv(tmp_path / "data" / "loans.csv", index=False)
    report = contracts.check(spark, config.load(cfg, environ=environ), today=AS_OF)
    assert {(v.table, v.column, v.rule) for v in report.violations} == {
        ("loans", "defaulted", "allowed_values"),
        ("loans", "credit_score", "max"),
    }


def test_a_missing_entity_table_or_unknown_column_is_a_clear_error(loans_project):
    tmp_path, cfg, environ, _, _ = loans_project
    text = (cfg / "base" / "project.yml").read_text()
    (cfg / "base" / "project.yml").write_text(text.replace("entity_table: loans", "entity_table: borrowers"))
    with pytest.raises(ConfigError) as exc:
        config.load(cfg, environ=environ)
    assert "project.yml" in str(exc.value) and "data.entity_table" in str(exc.value) and "borrowers" in str(exc.value)
