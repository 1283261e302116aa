"""Data contracts: every rule fires on a small crafted table; a clean table passes; reports list all."""

from __future__ import annotations

import json
from datetime import date

import pytest

from promoter.config import ContractsSettings
from promoter.errors import DataContractError

TODAY = date(2024, 7, 1)

CONTRACT = {
    "version": "test-1",
    "tables": {
        "people": {
            "owner": "team-a",
            "primary_key": ["person_id"],
            "row_count": {"min": 3, "max": 10},
            "freshness": {"column": "as_of", "max_age_days": 10},
            "allow_extra_columns": False,
            "columns": {
                "person_id": {"type": "string", "nullable": False, "regex": "P[0-9]{3}"},
                "email": {"type": "string", "max_null_fraction": 0.5},
                "as_of": {"type": "date", "nullable": False, "min": "2024-01-01"},
                "age": {"type": "int", "min": 12, "max": 60},
                "score": {"type": "double", "max_null_fraction": 0.25},
                "label": {"type": "int", "nullable": False, "allowed": [0, 1], "mean_min": 0.05, "mean_max": 0.6},
                "plan": {"type": "string", "allowed": ["gold", "silver"]},
                "badge": {"type": "string", "unique": True},
                "required_col": {"type": "string"},
            },
            "column_patterns": {
                "flag_*": {"type": "int", "allowed": [0, 1], "min_columns": 3},
            },
        },
        "visits": {
            "owner": "team-b",
            "primary_key": ["visit_id"],
            "row_count": {"min": 1, "max": 2},
            "freshness": {"column": "visit_date", "max_age_days": 30},
            "foreign_keys": [{"column": "person_id", "references": "people.person_id"}],
            "columns": {
                "visit_id": {"type": "string", "nullable": False},
                "person_id": {"type": "string", "nullable": False},
                "visit_date": {"type": "date", "nullable": False},
            },
        },
    },
}

GOOD_PEOPLE = [
    ("P001", "a@example.org", date(2024, 6, 28), 25, 1.5, 0, "gold", "b1", "x", 0, 1),
    ("P002", None, date(2024, 6, 28), 31, 2.5, 1, "silver", "b2", "y", 1, 0),
    ("P003", "c@example.org", date(2024, 6, 28), 40, None, 0, "gold", "b3", "z", 0, 0),
    ("P004", "d@example.org", date(2024, 6, 28), 22, 3.0, 0, None, "b4", "w", 1, 1),
]
PEOPLE_SCHEMA = (
    "person_id string, email string, as_of date, age int, score double, label int, plan string, "
    "badge string, required_col string, flag_a int, flag_b int"
)


def _contracts() -> ContractsSettings:
    return ContractsSettings.model_validate(CONTRACT)


@pytest.fixture(scope="module")
def bad_report(spark):
    """One crafted pair of tables breaking every rule at once; checked once for the module."""
    from pipelines import contracts

    people = spark.createDataFrame(
        [
            # duplicate key, bad id format, age out of range both ways, label outside {0,1}
            ("P001", "a@example.org", date(2024, 6, 1), 11, 1.0, 1, "gold", "b1", 1.5, 0, 2, 1),
            ("P001", None, date(2024, 6, 1), 70, None, 1, "platinum", "b1", 2.5, 1, 1, 0),
            ("bad-id", None, date(2023, 12, 1), 30, None, 2, "silver", "b2", 3.5, 1, 0, 1),
            (None, None, date(2024, 6, 1), 30, None, 1, "gold", "b3", 4.5, 0, 1, 1),
        ]
        * 3,
        "person_id string, email string, as_of date, age int, score double, label int, plan string, "
        "badge string, surprise double, flag_a int, flag_b int, flag_c int",
    )
    # 'required_col' is missing; 'surprise' is unexpected; flag_c makes 3 flag columns but flag_b has a 2;
    # score is 75 % null; email 75 % null; 12 rows > max 10; label mean 1.25 > 0.6
    people = people.withColumn("flag_c", people["flag_c"].cast("double"))  # wrong type
    visits = spark.createDataFrame(
        [
            ("V1", "P001", date(2024, 7, 5)),  # in the future of TODAY
            ("V2", "P999", date(2024, 7, 5)),  # no such person
            ("V3", "P002", date(2024, 7, 5)),
        ],
        "visit_id string, person_id string, visit_date date",
    )
    return contracts.check_frames(
        {"people": people, "visits": visits}, _contracts(), today=TODAY, phi_columns=["email"]
    )


EXPECTED = [
    # (rule, table, column, a fragment of observed, a fragment of limit)
    ("column_missing", "people", "required_col", "absent", "required"),
    ("unexpected_column", "people", "surprise", "double", "not in the contract"),
    ("column_type", "people", "flag_c", "double", "int"),
    ("not_null", "people", "person_id", "3 null(s)", "no nulls"),
    ("max_null_fraction", "people", "score", "0.75", "0.25"),
    ("max_null_fraction", "people", "email", "0.75", "0.5"),
    ("primary_key", "people", "person_id", "duplicated", "unique"),
    ("unique", "people", "badge", "duplicated", "unique"),
    ("allowed_values", "people", "label", "row(s) outside", "[0, 1]"),
    ("allowed_values", "people", "plan", "'platinum'", "[gold, silver]"),
    ("allowed_values", "people", "flag_b", "row(s) outside", "[0, 1]"),
    ("min", "people", "age", "11", "12"),
    ("max", "people", "age", "70", "60"),
    ("min", "people", "as_of", "2023-12-01", "2024-01-01"),
    ("mean_max", "people", "label", "1.25", "0.6"),
    ("regex", "people", "person_id", "do not match", "P[0-9]{3}"),
    ("row_count_max", "people", None, "12", "10"),
    ("freshness", "people", "as_of", "30 day(s) old", "10 day(s)"),
    ("row_count_max", "visits", None, "3", "2"),
    ("foreign_key", "visits", "person_id", "2 row(s) with no match", "people.person_id"),  # P999, P002
    ("freshness_future", "visits", "visit_date", "2024-07-05", "not in the future"),
]


@pytest.mark.spark
@pytest.mark.parametrize(
    "rule,table,column,observed,limit", EXPECTED, ids=[f"{r}-{t}-{c}" for r, t, c, _, _ in EXPECTED]
)
def test_each_rule_fires_on_a_crafted_table(bad_report, rule, table, column, observed, limit):
    hits = [v for v in bad_report.violations if v.rule == rule and v.table == table and v.column == column]
    assert hits, f"{rule} on {table}.{column} did not fire; got {[str(v) for v in bad_report.violations]}"
    text = str(hits[0])  # "<table>.<column>: <rule>: observed <observed>, limit <limit>"
    seen, allowed = text.split(", limit ", 1) if ", limit " in text else (text, "")
    assert observed in seen and limit in allowed, text


@pytest.mark.spark
def test_crafted_report_covers_many_rule_kinds_and_hides_phi_values(bad_report):
    kinds = {v.rule for v in bad_report.violations}
    assert len(kinds) >= 15, sorted(kinds)
    assert not bad_report.ok
    # 'email' is PHI: its values never appear, only counts
    assert "a@example.org" not in bad_report.to_text() + bad_report.to_json() + bad_report.to_markdown()


@pytest.mark.spark
def test_too_few_rows_and_pattern_columns_and_missing_table(spark):
    from pipelines import contracts

    people = spark.createDataFrame(
        [GOOD_PEOPLE[0][:9] + (0,)],
        "person_id string, email string, as_of date, age int, score double, "
        "label int, plan string, badge string, required_col string, flag_a int",
    )
    report = contracts.check_frames({"people": people, "visits": None}, _contracts(), today=TODAY)
    found = {(v.rule, v.table, v.column) for v in report.violations}
    assert ("row_count_min", "people", None) in found
    assert ("pattern_columns", "people", "flag_*") in found
    assert ("mean_min", "people", "label") in found
    assert ("table_exists", "visits", None) in found


@pytest.mark.spark
def test_a_clean_table_passes(spark):
    from pipelines import contracts

    people = spark.createDataFrame(GOOD_PEOPLE, PEOPLE_SCHEMA).withColumn(
        "flag_c", __import__("pyspark.sql.functions", fromlist=["lit"]).lit(0)
    )
    visits = spark.createDataFrame(
        [("V1", "P001", date(2024, 6, 20)), ("V2", "P002", date(2024, 6, 30))],
        "visit_id string, person_id string, visit_date date",
    )
    report = contracts.check_frames({"people": people, "visits": visits}, _contracts(), today=TODAY)
    assert report.ok, report.to_text()
    assert report.tables["people"].rows == 4 and report.tables["visits"].rows == 2
    assert report.tables["people"].checked_rules > 20
    contracts.enforce(report)  # no exception
    assert "all rules hold" in report.to_text() and "all rules hold" in report.to_markdown()


@pytest.mark.spark
def test_enforce_lists_every_violation_and_reports_render(bad_report):
    from pipelines import contracts

    with pytest.raises(DataContractError) as exc:
        contracts.enforce(bad_report)
    message = str(exc.value)
    assert exc.value.exit_code == 2
    assert f"{len(bad_report.violations)} data contract violation(s)" in message
    for v in bad_report.violations:
        assert str(v) in message
    data = json.loads(bad_report.to_json())
    assert data["ok"] is False and len(data["violations"]) == len(bad_report.violations)
    assert {"table", "column", "rule", "observed", "limit"} <= set(data["violations"][0])
    md = bad_report.to_markdown()
    assert md.count("\n| people |") + md.count("\n| visits |") >= len(bad_report.violations)
    assert "people.person_id: primary_key" in bad_report.to_text()


def test_contract_config_errors_name_file_and_key(tmp_path):
    """A foreign key to an unknown table and an unknown type are config errors (exit 2)."""
    import shutil

    from promoter import config
    from promoter.errors import ConfigError

    root = tmp_path / "configs"
    shutil.copytree(config.Path(__file__).resolve().parents[2] / "configs", root)
    (root / "base" / "contracts.yml").write_text(
        "version: '1'\ntables:\n  members:\n    owner: x\n    columns:\n      a: {type: strng}\n"
        "    foreign_keys:\n      - {column: a, references: nowhere.id}\n"
    )
    with pytest.raises(ConfigError) as exc:
        config.load(root, environ={})
    text = str(exc.value)
    assert "contracts.yml" in text and ("strng" in text or "nowhere" in text)


def test_config_columns_the_data_lacks_are_named_by_their_config_key():
    """The pure half of the contracts step's data-time check (no Spark): which configured columns a
    table lacks, each at the key that names it; columns ``derive`` makes are not looked for."""
    from pipelines import contracts
    from promoter.config import DataSettings

    class S:  # the two sections the check reads
        class project:
            data = DataSettings(
                entity_table="people",
                id_column="person_id",
                key_column="person_key",
                label_column="outcome",
                snapshot_date_column="as_of",
                subgroup_columns=["sex", "age_band"],
                phi_columns=["dob", "name"],
                derive={"age_from": "dob"},
                events={"table": "visits", "date_column": "seen_on", "type_column": "kind", "kinds": {"er": ["ER"]}},
            )

    people = ["person_id", "as_of", "outcome", "sex", "dob"]
    visits = ["person_id", "seen_on", "kind"]
    assert contracts.config_column_problems(S, {"people": people, "visits": visits}) == [
        (("project", "data", "phi_columns", 1), "PHI column 'name' is in none of the tables (people, visits)")
    ]
    got = contracts.config_column_problems(S, {"people": ["person_id", "outcomes", "as_of"], "visits": None})
    assert [loc for loc, _ in got] == [
        ("project", "data", "label_column"),
        ("project", "data", "subgroup_columns", 0),
        ("project", "data", "derive", "age_from"),
        ("project", "data", "phi_columns", 0),
        ("project", "data", "phi_columns", 1),
    ]
    assert "(did you mean 'outcomes'?)" in got[0][1]
    # the event table's id is the entity id unless said otherwise, and is looked for there
    assert contracts.config_column_problems(S, {"people": None, "visits": ["seen_on", "kind"]})[0] == (
        ("project", "data", "events", "id_column"),
        "column 'person_id' is not in the event table 'visits'",
    )
