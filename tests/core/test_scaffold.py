"""`promote init`'s pure decisions: role proposals, PHI flags, answer checks, gate sizing, the files it writes."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from promoter import config
from promoter.core import scaffold as S
from promoter.errors import ConfigError

ROWS = 3000


def col(name: str, type: str = "double", **kw) -> S.ColumnProfile:
    return S.ColumnProfile(name=name, type=type, **kw)


def listed(name: str, type: str, counts: dict, **kw) -> S.ColumnProfile:
    values = tuple(sorted(counts.items(), key=lambda vn: -vn[1]))
    return S.ColumnProfile(name=name, type=type, distinct=len(values), values=values, **kw)


def people(rows: int = ROWS, *, extra: tuple[S.ColumnProfile, ...] = ()) -> S.TableProfile:
    """A profile shaped like tests/app/init_tables.py's one table (names share nothing with HROB)."""
    pos = int(rows * 0.28)
    return S.TableProfile(
        name="people",
        path="/data/people.csv",
        format="csv",
        rows=rows,
        options={"header": True},
        columns=(
            col("person_id", "string", distinct=rows + 40),
            listed("as_of", "date", {"2025-06-30": rows}, min="2025-06-30", max="2025-06-30"),
            listed("sex", "string", {"F": rows // 2, "M": rows - rows // 2}),
            listed("language", "string", {"en": int(rows * 0.6), "es": int(rows * 0.3), "other": rows // 10}),
            col("birth_date", "date", distinct=rows - 200, min="1935-08-03", max="2007-07-03"),
            col("full_name", "string", distinct=rows - 100),
            col("contact", "string", distinct=rows, pattern_hits={"an e-mail address": rows}),
            col("lab_a1c", nulls=int(rows * 0.08), distinct=66, min=2.7, max=9.7, mean=6.0),
            col("lab_ldl", distinct=900, min=-6.2, max=232.0, mean=120.0),
            col("vit_sbp", distinct=600, min=82.1, max=181.4),
            col("vit_bmi", nulls=rows // 40, distinct=280, min=11.2, max=47.2),
            listed("prior_visits", "int", {i: rows // 11 for i in range(11)}, min=0.0, max=10.0),
            listed("smoker", "int", {0: rows - rows // 5, 1: rows // 5}, min=0.0, max=1.0),
            listed("plan_type", "string", {"hmo": rows // 3, "ppo": rows // 3, "medicaid": rows - 2 * (rows // 3)}),
            col("note", "string", distinct=rows // 2),
            listed("outcome", "int", {0: rows - pos, 1: pos}, min=0.0, max=1.0),
            *extra,
        ),
    )


def encounters(rows: int = 9000) -> S.TableProfile:
    return S.TableProfile(
        name="encounters",
        path="/data/encounters.parquet",
        format="parquet",
        rows=rows,
        columns=(
            col("encounter_id", "string", distinct=rows),
            col("person_id", "string", distinct=2800),
            col("encounter_date", "date", distinct=700, min="2023-08-01", max="2025-06-29"),
            listed("encounter_type", "string", {"OFFICE": 4500, "TELEHEALTH": 2200, "E.D.": 1500, "INPATIENT": 800}),
            col("cost", distinct=8000, min=3.7, max=8555.2),
        ),
    )


def answers(**kw) -> S.Answers:
    base = dict(
        name="people",
        model_name="people",
        entity_table="people",
        id_column="person_id",
        label_column="outcome",
        snapshot_column="as_of",
        subgroup_columns=("sex", "language"),
        phi_columns=("person_id", "birth_date", "full_name", "contact"),
        primary_key=("person_id",),
        version="9.9.9",
    )
    base.update(kw)
    return S.Answers(**base)


def load_files(files: dict[str, str], config_dir: str = "configs", env: str | None = None) -> config.Settings:
    prefix = config_dir + "/"
    inner = {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix) and k.endswith(".yml")}
    return config.load(config.MappingSource(inner), env, environ={})


# --------------------------------------------------------------------------- names and proposals


@pytest.mark.parametrize(
    "name,expected",
    [
        ("dateOfBirth", ["date", "of", "birth"]),
        ("lab_A1c", ["lab", "a1c"]),
        ("Person-ID", ["person", "id"]),
        ("ZIPCode", ["zipcode"]),
    ],
)
def test_tokens_split_snake_camel_and_punctuation(name, expected):
    assert S.tokens(name) == expected


@pytest.mark.parametrize(
    "text,expected", [("E.D.", "e_d"), ("Tele Health", "tele_health"), ("30-day", "x_30_day"), ("", "x")]
)
def test_slug_names_a_column_safely(text, expected):
    assert S.slug(text) == expected


def test_roles_are_proposed_from_names_and_shapes():
    roles = S.propose_roles(people())
    assert roles == S.Roles("person_id", "outcome", "as_of", ("sex", "language"))


def test_label_is_proposed_only_when_a_name_or_a_single_binary_column_says_so():
    table = people()
    renamed = S.TableProfile(
        **{
            **table.__dict__,
            "columns": tuple(
                S.ColumnProfile(**{**c.__dict__, "name": "flag_b"}) if c.name == "outcome" else c for c in table.columns
            ),
        }
    )
    # two 0/1 columns (smoker, flag_b) and neither named like a label: no proposal, init asks
    assert S.propose_roles(renamed).label_column is None


def test_phi_is_flagged_by_name_by_value_and_for_the_id():
    extra = (
        col("home_zip", "string", distinct=40),
        col("phone_number", "string", distinct=ROWS),
        col("free_text", "string", distinct=ROWS, pattern_hits={"an SSN": 12, "a phone number": 3}),
    )
    flagged = S.phi_candidates(people(extra=extra), "person_id")
    assert list(flagged) == ["person_id", "birth_date", "full_name", "contact", "home_zip", "phone_number", "free_text"]
    assert flagged["person_id"].startswith("the id")
    assert flagged["contact"] == "values: 3,000 of 3,000 look like an e-mail address"
    assert flagged["free_text"].startswith("values: 12 of")  # the pattern with most hits is named
    assert flagged["birth_date"] == "name: looks like a birth date"
    assert flagged["home_zip"] == "name: looks like an address"


@pytest.mark.parametrize("name", ["white_cell_count", "birth_weight", "ip_visits", "device_type", "lab_a1c", "age"])
def test_clinical_feature_names_are_not_flagged_as_phi(name):
    table = S.TableProfile("t", "/t", "parquet", 10, (col(name),))
    assert S.phi_candidates(table) == {}


def test_event_roles_join_by_the_entity_id_and_find_date_type_amount():
    roles = S.propose_event_roles(encounters(), "person_id")
    assert roles == S.EventRoles("person_id", "encounter_date", "encounter_type", "cost")
    assert S.event_key(encounters(), roles) == "encounter_id"


# --------------------------------------------------------------------------- checking answers


@pytest.mark.parametrize(
    "role,value,problem",
    [
        ("label", "outcome", None),
        ("label", "nope", "no column 'nope' in people"),
        ("label", "sex", "'sex' is not a 0/1 (or true/false) label"),
        ("label", "prior_visits", "not a 0/1"),
        ("id", "lab_a1c", "an id is text or a whole number"),
        ("id", "person_id", None),
        ("snapshot", "sex", "'sex' is string, not a date"),
        ("snapshot", "as_of", None),
        ("subgroup", "note", "a subgroup needs a few levels"),
        ("subgroup", "plan_type", None),
        ("subgroup", "age_band", "no column 'age_band'"),
    ],
)
def test_check_role_says_in_one_line_what_does_not_fit(role, value, problem):
    found = S.check_role(people(), role, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "\n" not in found


def test_a_derived_subgroup_is_accepted_and_a_label_with_nulls_is_not():
    assert S.check_role(people(), "subgroup", "age_band", derived=["age_band"]) is None
    holes = people(extra=(listed("outcome2", "int", {0: 2000, 1: 900}, nulls=100),))
    assert "100 missing value(s)" in S.check_role(holes, "label", "outcome2")


@pytest.mark.parametrize(
    "id_column,taken,expected",
    [
        ("person_id", [], "person_key"),
        ("PatientID", [], "Patient_key"),
        ("id", [], "id_key"),
        ("person_id", ["person_key"], "person_id_key"),
        ("score", [], "score_key"),
        ("run_id", [], "run_key"),
        ("rank", ["rank_key"], "pseudo_key"),
    ],
)
def test_key_column_is_named_after_the_id_and_never_clashes(id_column, taken, expected):
    name = S.key_column_name(id_column, taken)
    assert name == expected
    assert name not in taken and name != id_column and name not in config.SCORE_TABLE_COLUMNS


# --------------------------------------------------------------------------- sizing the gate


def test_a_large_table_gets_default_limits_and_no_warning():
    sizing = S.size_gate(200_000, 0.2, {"sex": {"F": 100_000, "M": 100_000}})
    assert sizing.warnings == ()
    assert sizing.fairness_subgroups == ("sex",)
    assert sizing.max_gap == 0.10 and sizing.max_regression == 0.02
    assert sizing.min_group_size == 50  # 10 positives expected at prevalence 0.2
    assert sizing.detectable_gain < 0.01


def test_small_data_warns_that_significance_and_fairness_cannot_decide():
    sizing = S.size_gate(600, 0.1, {"sex": {"F": 300, "M": 300}, "region": {"N": 560, "S": 40}, "age_band": None})
    text = "\n".join(sizing.warnings)
    assert "only ~120 evaluation rows (~12 positives): too few" in text
    assert "fairness by 'sex': only 0 group(s) can expect 100+ evaluation rows" in text
    assert "fairness by 'region': only 1 group(s) can expect 100+ evaluation rows" in text
    assert "fairness by 'age_band': its group sizes are not known" in text
    assert sizing.fairness_subgroups == ()  # sex: 60 evaluation rows per group < 100


def test_fairness_limits_widen_to_what_the_smallest_groups_can_tell_from_noise():
    small = S.size_gate(3000, 0.28, {"language": {"en": 1800, "es": 900, "other": 280}})
    large = S.size_gate(60_000, 0.28, {"language": {"en": 36_000, "es": 18_000, "other": 5_600}})
    assert small.fairness_subgroups == large.fairness_subgroups == ("language",)
    assert small.max_gap > large.max_gap and small.max_regression > large.max_regression
    assert any("fairness gap rule is set to" in w for w in small.warnings)
    # a rule the data cannot decide is loosened to its noise, and said so; never silently
    assert small.max_gap >= 0.15


def test_auc_standard_error_shrinks_with_rows():
    assert S.auc_standard_error(10, 90) > S.auc_standard_error(100, 900) > S.auc_standard_error(1000, 9000)
    assert S.auc_standard_error(0, 50) == float("inf")


@pytest.mark.parametrize(
    "a,b", [("2023-08-01", "2025-06-30"), ("2024-02-28", "2024-03-01"), ("1999-12-31", "2000-01-01")]
)
def test_days_between_matches_the_calendar(a, b):
    assert S._days_between(a, b) == (date.fromisoformat(b) - date.fromisoformat(a)).days


# --------------------------------------------------------------------------- the files


@pytest.fixture(scope="module")
def one_table() -> S.Scaffold:
    return S.render(people(), None, answers())


def test_written_configs_load_for_every_environment(one_table):
    S.validate(one_table.files)
    for env in (None, "dev", "staging", "prod"):
        settings = load_files(one_table.files, env=env)
        assert settings.project.data.label_column == "outcome"
    assert load_files(one_table.files, env="dev").training.max_evals == 2


def test_project_yml_names_the_table_roles_and_phi(one_table):
    data = load_files(one_table.files).project.data
    assert data.source == "tables" and data.tables["people"].path == "/data/people.csv"
    assert data.tables["people"].format == "csv" and data.tables["people"].options == {"header": True}
    assert (data.id_column, data.key_column, data.snapshot_date_column) == ("person_id", "person_key", "as_of")
    assert data.subgroup_columns == ["sex", "language"]
    assert data.phi_columns == ["person_id", "birth_date", "full_name", "contact"]
    # the birth date is PHI; silver turns it into an age (a feature) and a band
    assert data.derive.age_from == "birth_date" and data.derive.age_bands == [20, 35, 50, 65, 80]


def test_contracts_take_types_nulls_ranges_and_values_but_never_phi_values(one_table):
    tables = load_files(one_table.files).contracts.tables
    people_c = tables["people"]
    cols = people_c.columns
    assert people_c.primary_key == ["person_id"] and people_c.allow_extra_columns is False
    assert cols["sex"].allowed == ["F", "M"] and cols["sex"].nullable is False
    assert cols["plan_type"].allowed == ["hmo", "medicaid", "ppo"]
    assert cols["smoker"].allowed == [0, 1]
    assert cols["lab_a1c"].max_null_fraction == 0.13 and cols["lab_a1c"].nullable is True
    assert (cols["lab_a1c"].min, cols["lab_a1c"].max) == (2.0, 10.4)  # 2.7..9.7 widened by a tenth
    assert (cols["prior_visits"].min, cols["prior_visits"].max) == (0, 11)  # counts stay non-negative
    assert cols["outcome"].allowed == [0, 1] and cols["outcome"].mean_min < 0.28 < cols["outcome"].mean_max
    assert cols["as_of"].allowed is None and cols["as_of"].min == "2024-01-01"  # next month's data still passes
    for phi in ("person_id", "birth_date", "full_name", "contact"):
        rule = cols[phi]
        assert rule.allowed is None and rule.min is None and rule.max is None and rule.regex is None


def test_phi_values_never_reach_a_file():
    zips = listed("home_zip", "string", {"43215": 900, "44101": 800, "45202": 1300})
    table = people(extra=(zips,))
    out = S.render(table, None, answers(phi_columns=("person_id", "birth_date", "full_name", "contact", "home_zip")))
    text = "".join(out.files.values())
    assert "43215" not in text and "44101" not in text
    assert "home_zip" in load_files(out.files).project.data.phi_columns


def test_feature_groups_by_prefix_then_type_without_roles_phi_or_free_text(one_table):
    groups = load_files(one_table.files).feature_mappings.groups
    assert groups == {
        "lab": ["lab_*"],
        "vit": ["vit_*"],
        "numeric": ["prior_visits", "smoker", "age_years"],
        "categorical": ["plan_type"],
    }
    assert any("note (text with 1,500+ distinct values" in f for f in one_table.findings)
    selection = load_files(one_table.files).feature_selection
    assert selection.include_groups == list(groups)
    assert selection.imputation["lab"].add_indicator is True  # lab_a1c is 8% missing
    assert "vit" not in selection.imputation


def test_a_prefix_shared_with_a_phi_column_is_listed_by_name_not_by_pattern():
    table = people(extra=(col("lab_patient_name", "string", distinct=ROWS),))
    out = S.render(
        table, None, answers(phi_columns=("person_id", "birth_date", "full_name", "contact", "lab_patient_name"))
    )
    assert load_files(out.files).feature_mappings.groups["lab"] == ["lab_a1c", "lab_ldl"]


def test_the_gate_policy_is_sized_and_consistent_with_the_data(one_table):
    s = load_files(one_table.files, env="prod")
    prod = s.promotion.policy("prod")
    assert prod.fairness.subgroups == ["sex", "language"]  # both can expect 40+ rows per group
    assert set(prod.fairness.subgroups) <= set(s.project.data.subgroup_columns)
    assert prod.fairness.min_group_size == one_table.sizing.min_group_size == 40
    assert prod.ceilings["brier"] == pytest.approx(0.28 * 0.72, abs=0.002)
    assert prod.floors["pr_auc"] > 0.28  # better than the prevalence
    assert prod.marginal == "approval" and prod.significance.enabled
    assert s.training.evaluation.ece_bins == one_table.sizing.ece_bins == 5  # ~600 evaluation rows
    assert [r.pattern or "<default>" for r in s.promotion.branch_rules] == ["release", "release/*", "<default>", "**"]
    assert "significance rule can only confirm" in "\n".join(one_table.warnings)


def test_yaml_is_block_style_at_the_top_without_anchors(one_table):
    for path, text in one_table.files.items():
        if path.endswith(".yml"):
            assert "&id" not in text and "*id" not in text, path
            assert not text.lstrip().startswith("{"), path
            assert isinstance(yaml.safe_load(text), dict), path
    assert (
        "steps:\n  dev:\n    push: [contracts, features, train, report]"
        in one_table.files["configs/base/promotion.yml"]
    )


def test_readme_says_what_to_review_and_pins_the_version(one_table):
    text = one_table.files["configs/README.md"]
    assert "pip install 'promote==9.9.9'" in text
    assert "`person_id`, `birth_date`, `full_name`, `contact`" in text
    assert "promote replay push release/1.0" in text


def test_a_second_project_lives_in_models_and_releases_from_its_own_branches():
    project_dir, config_dir, releases = S.layout("readmit", in_models=True)
    out = S.render(
        people(),
        None,
        answers(
            name="readmit",
            model_name="readmit",
            project_dir=project_dir,
            config_dir=config_dir,
            release_branches=releases,
        ),
    )
    assert "models/readmit/README.md" in out.files and "models/readmit/configs/base/project.yml" in out.files
    S.validate(out.files, config_dir)
    rules = load_files(out.files, config_dir).promotion.branch_rules
    assert [r.pattern for r in rules[:2]] == ["release/readmit", "release/readmit/*"]
    assert "promote --project readmit replay push release/readmit/1.0" in out.files["models/readmit/README.md"]


def test_an_event_table_adds_window_features_kinds_and_a_foreign_key():
    a = answers(
        events=S.EventAnswers("encounters", "person_id", "encounter_date", "encounter_type", "cost", ("encounter_id",))
    )
    out = S.render(people(), encounters(), a)
    s = load_files(out.files)
    ev = s.project.data.events
    assert ev.table == "encounters" and ev.id_column == "person_id" and ev.amount_column == "cost"
    assert ev.kinds == {"office": ["OFFICE"], "telehealth": ["TELEHEALTH"], "e_d": ["E.D."], "inpatient": ["INPATIENT"]}
    assert ev.windows_days == [30, 90, 180, 365] and ev.lookback_days == 700  # the history spans 699 days
    assert s.feature_mappings.groups["events"] == [f"{ev.prefix}*"]
    assert not any(c.startswith(ev.prefix) for c in people().names)
    contract = s.contracts.tables["encounters"]
    assert contract.primary_key == ["encounter_id"]
    assert contract.foreign_keys[0].references == "people.person_id"
    assert contract.columns["person_id"].allowed is None  # the id is PHI in every table
    assert contract.columns["encounter_type"].allowed == ["E.D.", "INPATIENT", "OFFICE", "TELEHEALTH"]


def test_validate_names_the_file_and_line_of_a_broken_config(one_table):
    files = dict(one_table.files)
    files["configs/base/training.yml"] = files["configs/base/training.yml"].replace("max_evals: 6", "max_evals: 0")
    with pytest.raises(ConfigError, match=r"configs/base/training\.yml:\d+:\d+: max_evals: must be greater than or"):
        S.validate(files, label="configs")


def test_no_usable_feature_is_an_error_naming_the_table():
    bare = S.TableProfile(
        "t",
        "/t.csv",
        "csv",
        100,
        (
            col("person_id", "string", distinct=100),
            listed("as_of", "date", {"2025-01-01": 100}, min="2025-01-01", max="2025-01-01"),
            listed("outcome", "int", {0: 70, 1: 30}),
        ),
    )
    with pytest.raises(ConfigError, match=r"t: no column can be a feature"):
        S.render(bare, None, answers(entity_table="t", subgroup_columns=(), phi_columns=("person_id",)))
