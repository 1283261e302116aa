"""Config that cross-checks itself: a column or name one file uses and another file defines is checked
when the config loads (or, where it needs the data, at the contracts step), through the real CLI.

Each case breaks one thing in a copy of a real project and asserts: exit code 2, exactly one error
line naming the right file, line and key, and nothing written (no .promote/, no lake, no mlflow.db,
no file added or changed in the project).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promoter import config
from promoter.cli import main
from tests.config import neutral_project as neutral
from tests.conftest import git

CI_PREFIXES = ("GITHUB_", "TF_BUILD", "BUILD_", "SYSTEM_", "GITLAB_", "CI_", "PROMOTE_", "MLFLOW_TRACKING_URI")


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith(CI_PREFIXES)]:
        monkeypatch.delenv(name)


def _commit(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "project")
    git(repo, "branch", "release/1.0")


@pytest.fixture
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a copy of the reference project's configs; the working directory."""
    repo = tmp_path / "repo"
    repo.mkdir()
    neutral.copy_reference_configs(repo)
    _commit(repo)
    _clean_env(monkeypatch)
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture
def people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding the neutral one-table project (its table outside the repository)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    neutral.write_configs(repo, neutral.write_table(tmp_path / "data" / "people.parquet", neutral.people(400)))
    _commit(repo)
    _clean_env(monkeypatch)
    monkeypatch.chdir(repo)
    return repo


def edit(repo: Path, rel: str, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in ``configs/<rel>`` (a new file when ``old`` is empty); returns the
    1-based line of the first line of ``new`` that differs from ``old``."""
    path = repo / "configs" / rel
    if not old:
        path.write_text(new)
        return 1
    text = path.read_text()
    if text.count(old) != 1:
        raise LookupError(f"{old!r} is not once in {rel}")
    path.write_text(text.replace(old, new))
    at = text.index(old)
    olds, news = old.splitlines(), new.splitlines()
    offset = next((i for i, (a, b) in enumerate(zip(olds, news)) if a != b), min(len(olds), len(news)))
    return text[:at].count("\n") + 1 + offset


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but git's own, with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def run_cli(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> list[str]:
    """Run `promote *argv` in this process; assert exit 2 with nothing written; return stderr's lines."""
    before = snapshot(root)
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 2, out.err + out.out
    assert snapshot(root) == before, "the command wrote or changed files"
    for name in (".promote", "mlflow.db", "lake", "spark-warehouse"):
        assert not list(root.rglob(name)), f"{name} was written"
    return out.err.strip().splitlines()


def assert_one_line(lines: list[str], file: str, line: int, key: str, message: str) -> None:
    assert len(lines) == 1, lines
    head = f"error: {file}:{line}:"
    assert lines[0].startswith(head), (lines[0], head)
    assert f": {key}: " in lines[0] and message in lines[0], lines[0]
    assert "more problem" not in lines[0], lines[0]


PLAN_RELEASE = ("plan", "--event", "push", "--branch", "release/1.0")

# file, text replaced, replacement, key in the message, words of the message
REFERENCE_CASES = {
    "fairness subgroup the evaluation does not measure": (
        "base/promotion.yml",
        "subgroups: [race_ethnicity, payer_type, region, age_band]",
        "subgroups: [race_ethnicity, payer_type, ethnicity]",
        "gate.prod.fairness.subgroups[2]",
        "'ethnicity' is not a measured subgroup: not in project.yml data.subgroup_columns",
    ),
    "floor on a metric the evaluation does not give": (
        "base/promotion.yml",
        "floors: {roc_auc: 0.70, pr_auc: 0.15}",
        "floors: {roc_auc: 0.70, auprc: 0.15}",
        "gate.prod.floors.auprc",
        "unknown metric 'auprc' (the evaluation gives: n, positives",
    ),
    "primary metric of another environment's gate, in base": (
        "base/promotion.yml",
        "    primary_metric: roc_auc\n    floors: {roc_auc: 0.65}",
        "    primary_metric: accuracy\n    floors: {roc_auc: 0.65}",
        "gate.staging.primary_metric",
        "unknown metric 'accuracy'",
    ),
    "fairness metric": (
        "base/promotion.yml",
        "      metric: roc_auc\n      max_gap: 0.15",
        "      metric: auc\n      max_gap: 0.15",
        "gate.prod.fairness.metric",
        "unknown metric 'auc'",
    ),
    "evaluation subgroup gold does not keep": (
        "base/training.yml",
        "  # subgroups: [race_ethnicity, payer_type, region, age_band]   # default: project data.subgroup_columns",
        "  subgroups: [race_ethnicity, payer_type, region, age_band, zip3]",
        "evaluation.subgroups[4]",
        "'zip3' is not one of project.yml data.subgroup_columns",
    ),
    "label column the closed entity contract does not list": (
        "base/project.yml",
        "label_column: hrob_label",
        "label_column: hrob_outcome",
        "data.label_column",
        "'hrob_outcome' is not a column of table 'members': its contract in contracts.yml",
    ),
    "derive reads a column the entity contract does not list": (
        "base/project.yml",
        "age_from: date_of_birth ",
        "age_from: birth_date ",
        "data.derive.age_from",
        "'birth_date' is not a column of table 'members'",
    ),
    "subgroup column mapped as a feature": (
        "base/feature_mappings.yml",
        'demographics: [age_years, "demo_*"]',
        'demographics: [age_years, payer_type, "demo_*"]',
        "groups.demographics[1]",
        "'payer_type' is a subgroup column in project.yml data and can never be a feature",
    ),
    "label column as a single feature": (
        "base/feature_selection_config.yml",
        "exclude_features: []",
        "exclude_features: [hrob_label]",
        "exclude_features[0]",
        "'hrob_label' is the label column in project.yml data",
    ),
    "included group feature_mappings.yml lacks": (
        "base/feature_selection_config.yml",
        "  - sdoh_food\n",
        "  - sdoh_foods\n",
        "include_groups[9]",
        "unknown group 'sdoh_foods' (groups in feature_mappings.yml: demographics,",
    ),
    "imputation of a group feature_mappings.yml lacks": (
        "base/feature_selection_config.yml",
        "  sdoh_neighborhood: {method: mean}",
        "  sdoh_nbhd: {method: mean}",
        "imputation.sdoh_nbhd",
        "unknown group 'sdoh_nbhd'",
    ),
    "the label listed as a subgroup": (
        "base/project.yml",
        "subgroup_columns: [race_ethnicity, payer_type, region, age_band]",
        "subgroup_columns: [race_ethnicity, payer_type, region, age_band, hrob_label]",
        "data.subgroup_columns[4]",
        "'hrob_label' is the label column, not a subgroup",
    ),
    "monitoring floor on a metric realised performance does not give": (
        "base/monitoring.yml",
        "floors: {roc_auc: 0.70}",
        "floors: {auroc: 0.70}",
        "outcomes.floors.auroc",
        "unknown metric 'auroc' (realised performance gives: n, positives",
    ),
    "monitoring prediction subgroup gold does not keep": (
        "base/monitoring.yml",
        "subgroups: []              # empty",
        "subgroups: [zip3]          # empty",
        "prediction.subgroups[0]",
        "'zip3' is not one of project.yml data.subgroup_columns",
    ),
    "a retrain rule that can never fire": (
        "base/monitoring.yml",
        "  breached_windows: 2",
        "  breached_windows: 7",
        "retrain.breached_windows",
        "7 breached windows can never happen in the last 5 (of_last)",
    ),
    "a drift rule of the wrong kind": (
        "base/monitoring.yml",
        "correction: bonferroni     #",
        "correction: fdr            #",
        "drift.correction",
        "bonferroni",
    ),
    "a label delay that is not a number of days": (
        "base/monitoring.yml",
        "  label_delay_days: 270",
        "  label_delay_days: nine months",
        "outcomes.label_delay_days",
        "must be a whole number, got 'nine months'",
    ),
    "an environment overlay names the file that set the key": (
        "prod/promotion.yml",
        "",
        "gate:\n  prod:\n    fairness:\n      subgroups:\n        - race_ethnicity\n        - zip_region\n",
        "gate.prod.fairness.subgroups[1]",
        "'zip_region' is not a measured subgroup",
    ),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES), ids=list(REFERENCE_CASES))
def test_a_cross_file_problem_of_the_reference_project_stops_plan(reference, capsys, case):
    rel, old, new, key, message = REFERENCE_CASES[case]
    line = edit(reference, rel, old, new)
    if rel == "prod/promotion.yml":
        line = 6  # the list item that names the column
    lines = run_cli(capsys, reference, *PLAN_RELEASE)
    assert_one_line(lines, f"configs/{rel}", line, key, message)


PEOPLE_CASES = {
    "a contract for a table that is not a source table": (
        "base/contracts.yml",
        "tables:\n  people:\n",
        "tables:\n  visits: {owner: analytics}\n  people:\n",
        "tables.visits",
        "no source table 'visits' in project.yml data.tables (people)",
    ),
    "a PHI column the closed contract does not list": (
        "base/project.yml",
        "phi_columns: [full_name]",
        "phi_columns: [full_name, ssn]",
        "data.phi_columns[1]",
        "'ssn' is in no table's contract in contracts.yml",
    ),
    "a subgroup column of the prod gate not in the project": (
        "base/promotion.yml",
        "subgroups: [sex, plan_kind]",
        "subgroups: [sex, plan]",
        "gate.prod.fairness.subgroups[1]",
        "'plan' is not a measured subgroup: not in project.yml data.subgroup_columns (sex, plan_kind)",
    ),
}


@pytest.mark.parametrize("case", list(PEOPLE_CASES), ids=list(PEOPLE_CASES))
def test_a_cross_file_problem_of_a_tables_project_stops_plan_and_data_check(people, capsys, case):
    rel, old, new, key, message = PEOPLE_CASES[case]
    line = edit(people, rel, old, new)
    for argv in (PLAN_RELEASE, ("data", "check")):  # load-time: data check stops before Spark starts
        assert_one_line(run_cli(capsys, people, *argv), f"configs/{rel}", line, key, message)


def test_the_reference_and_the_neutral_project_load_in_every_environment(tmp_path: Path):
    cfg, _ = neutral.make_project(tmp_path, n=10)
    for root in (neutral.CONFIGS, cfg):
        for env in (None, "dev", "staging", "prod"):
            config.load(root, env, environ={})


def test_engine_defaults_are_neutral():
    data = config.DataSettings()
    assert (data.entity_table, data.id_column, data.key_column, data.label_column) == ("entities", "id", "key", "label")
    events = config.DataSettings(events={"kinds": {"visits": ["V"]}}).events
    assert (events.table, events.id_column, events.date_column, events.type_column) == (
        "events",
        "id",
        "event_date",
        "event_type",
    )
    # the event table's id is the entity id unless said otherwise
    assert config.DataSettings(id_column="person_id", events={}).events.id_column == "person_id"
    assert config.ScoringSettings().predictions_table == "predictions/scores"


def test_locate_finds_a_key_written_in_an_overlay_or_its_parent(tmp_path: Path):
    cfg = neutral.copy_reference_configs(tmp_path)
    (cfg / "prod" / "promotion.yml").write_text("gate:\n  prod:\n    floors: {roc_auc: 0.72}\n")
    s = config.load(cfg, "prod", environ={})
    assert config.locate(s, ("promotion", "gate", "prod", "floors", "roc_auc"))[0].endswith("prod/promotion.yml")
    assert config.locate(s, ("promotion", "gate", "prod", "floors", "roc_auc"))[1:] == (3, 23)
    lines = (cfg / "base" / "project.yml").read_text().splitlines()

    def line_of(text: str) -> int:  # 1-based line of the first line that starts with ``text`` (indented)
        return next(i for i, ln in enumerate(lines, 1) if ln.strip().startswith(text))

    file, line, _ = config.locate(s, ("project", "data", "label_column"))
    assert file.endswith("base/project.yml") and line == line_of("label_column:")
    assert config.locate(s, ("project", "data", "events", "amount_column"))[1] == line_of("amount_column:")
    # a key left to its default is placed at its nearest written parent
    assert config.locate(s, ("project", "scoring", "max_rows_per_file"))[1] == line_of(
        "tiering:"
    )  # scoring: starts there
    # a key path of a copy made with model_copy (the features step's wide selection) still resolves
    wide = s.model_copy(update={"env": "prod"})
    assert config.locate(wide, ("project", "data", "label_column"))[1] == line_of("label_column:")
    err = config.error_at(s, ("project", "data", "subgroup_columns", 1), "boom")
    where = line_of("subgroup_columns:")
    column = lines[where - 1].index("payer_type") + 1
    assert str(err).endswith(f"base/project.yml:{where}:{column}: data.subgroup_columns[1]: boom"), str(err)


# --------------------------------------------------------------------------- the data (contracts step)


def _rewrite_people(people: Path, **renames: str) -> None:
    import pyarrow.parquet as pq

    path = people.parent / "data" / "people.parquet"
    table = pq.read_table(path)
    pq.write_table(table.rename_columns([renames.get(c, c) for c in table.column_names]), path)


DATA_CASES = {
    "a subgroup column the table lacks": (
        {"plan_kind": "plankind"},
        "subgroup_columns: [sex, plan_kind]",
        "data.subgroup_columns[1]",
        "column 'plan_kind' is not in the entity table 'people' (did you mean 'plankind'?)",
    ),
    "the label column the table lacks": (
        {"outcome": "outcome_flag"},
        "label_column: outcome",
        "data.label_column",
        "column 'outcome' is not in the entity table 'people' (did you mean 'outcome_flag'?)",
    ),
    "a PHI column in no table": (
        {"full_name": "name"},
        "phi_columns: [full_name]",
        "data.phi_columns[0]",
        "PHI column 'full_name' is in none of the tables (people)",
    ),
}


@pytest.mark.spark
@pytest.mark.parametrize("case", list(DATA_CASES), ids=list(DATA_CASES))
def test_a_configured_column_the_data_lacks_stops_the_contracts_check(spark, people, capsys, case):
    renames, needle, key, message = DATA_CASES[case]
    _rewrite_people(people, **renames)
    text = (people / "configs" / "base" / "project.yml").read_text()
    line = text[: text.index(needle)].count("\n") + 1
    # the same check stops `promote data check` and `promote train` (its contracts check) before
    # anything trains: no registry, no lake, no pass file
    for argv in (("data", "check"), ("train", "--env", "dev")):
        assert_one_line(run_cli(capsys, people, *argv), "configs/base/project.yml", line, key, message)
