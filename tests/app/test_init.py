"""`promote init` on real tables with the real CLI, in-process on the shared local Spark session.

One table (CSV), an entity plus an event table (Parquet) and a Delta table; the CLI's interactive
questions; bad input (one line, exit 2, nothing written); a second project of the same repository.
The full release replays of each shape are in tests/e2e/test_init_release.py (slow).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from promoter import config
from promoter.app import projects, scaffold
from promoter.cli import cli, main
from promoter.errors import InvalidInput
from tests.app.init_tables import one_table, people_and_encounters, write_csv, write_delta, write_parquet
from tests.conftest import git

pytestmark = [pytest.mark.spark]

CONFIG_FILES = [
    "configs/base/project.yml",
    "configs/base/promotion.yml",
    "configs/base/contracts.yml",
    "configs/base/feature_mappings.yml",
    "configs/base/feature_selection_config.yml",
    "configs/base/training.yml",
    "configs/base/model_card.yml",
    "configs/dev/training.yml",
    "configs/prod/training.yml",
]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("init-tables")
    people, encounters = people_and_encounters(2000, seed=5)
    flat = one_table(2000, seed=5)
    return {
        "csv": write_csv(flat, root / "people.csv"),
        "people": write_parquet(people, root / "people.parquet"),
        "encounters": write_parquet(encounters, root / "encounters.parquet"),
        "delta": write_delta(flat, root / "patients_delta"),
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "model-repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


def promote(monkeypatch, capsys, cwd: Path, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def commit(repo: Path, message: str = "init") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


# --------------------------------------------------------------------------- one table: init, plan, data check


def test_init_on_one_csv_table_then_plan_and_data_check_work_unedited(spark, tables, repo, monkeypatch, capsys):
    code, out, err = promote(monkeypatch, capsys, repo, "init", str(tables["csv"]), "--yes")
    assert code == 0, err
    written = [line.strip() for line in out.split("wrote ", 1)[1].split("next")[0].splitlines()[1:]]
    assert written == CONFIG_FILES + ["configs/README.md", ".github/workflows/promote.yml", ".gitignore"]
    # PHI is printed with why it was flagged, for the user to confirm
    assert "  contact: values: 2,000 of 2,000 look like an e-mail address" in out
    assert "  full_name: name: looks like a personal name" in out
    assert "  person_id: the id (silver replaces it by a keyed hash)" in out
    assert "id person_id, label outcome, snapshot as_of, subgroups sex, language; primary key person_id" in out
    settings = config.load(repo / "configs", "prod")
    data = settings.project.data
    assert data.tables["people"].path == str(tables["csv"].resolve()) and data.tables["people"].format == "csv"
    assert data.phi_columns == ["person_id", "birth_date", "full_name", "contact"]
    ci = (repo / ".github/workflows/promote.yml").read_text()
    assert f'PROMOTE_REQUIREMENT: "promote=={scaffold.tool_version()}"' in ci
    commit(repo)

    code, out, err = promote(monkeypatch, capsys, repo, "plan", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["environment"] == "staging" and plan["registered_model"] == "people-staging"
    assert [s["name"] for s in plan["steps"]] == ["contracts", "features", "train", "expectations", "promote", "report"]
    code, out, err = promote(monkeypatch, capsys, repo, "plan", "--event", "push", "--branch", "release/1.0", "--json")
    assert code == 0, err
    assert json.loads(out)["environment"] == "prod"

    code, out, err = promote(monkeypatch, capsys, repo, "data", "check")
    assert code == 0, out + err
    assert "data contracts v1: 1 table(s), all rules hold" in out
    assert "people (owner unassigned, 2,000 rows" in out


# --------------------------------------------------------------------------- interactive


def test_interactive_init_asks_explains_and_asks_again(spark, tables, repo, monkeypatch):
    monkeypatch.chdir(repo)
    answers = "\n".join(
        [
            "",  # id: take the proposal (person_id)
            "sex",  # label: not 0/1 -> explained, asked again
            "outcome",
            "",  # snapshot: as_of
            "person_id, birth_date, full_name",  # PHI without contact: refused (its values are e-mails)
            "",  # PHI: the proposal
            "sex, plan_type",  # subgroups
        ]
    )
    result = CliRunner().invoke(cli, ["init", str(tables["people"]), "--provider", "none"], input=answers + "\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Id column (one per entity; replaced by a keyed hash in silver) [person_id]:" in out
    assert "Error: 'sex' is not a 0/1 (or true/false) label with both classes" in out
    assert out.count("Label column (0/1: what the model predicts) [outcome]:") == 2
    assert "Error: 'contact' must stay PHI: values: 2,000 of 2,000 look like an e-mail address" in out
    assert "PHI columns (never leave bronze; comma-separated) [person_id, birth_date, full_name, contact]:" in out
    assert "Subgroup columns for fairness (comma-separated; 'none' for none) [sex, language]:" in out
    data = config.load(repo / "configs", None).project.data
    assert data.subgroup_columns == ["sex", "plan_type"]
    assert data.phi_columns == ["person_id", "birth_date", "full_name", "contact"]
    assert not (repo / ".github").exists()  # --provider none


# --------------------------------------------------------------------------- bad input: one line, exit 2, nothing written


@pytest.mark.parametrize(
    "args,message",
    [
        (["/nowhere/people.csv", "--yes"], "error: table not found: /nowhere/people.csv"),
        (["{csv}", "--label", "nope", "--yes"], "error: --label: no column 'nope' in people (person_id, as_of, sex"),
        (["{csv}", "--label", "plan_type", "--yes"], "error: --label: 'plan_type' is not a 0/1 (or true/false) label"),
        (["{csv}", "--not-phi", "contact", "--yes"], "error: --not-phi: 'contact' must stay PHI: values: 2,000"),
        (["{csv}", "--subgroups", "sex,full_name", "--yes"], "error: --subgroups: 'full_name' is PHI (name: looks"),
        (["{csv}", "--events", "/nowhere/e.parquet", "--yes"], "error: --events: table not found: /nowhere/e.parquet"),
        (["{csv}", "--name", "Bad Name", "--yes"], "error: --name: 'Bad Name' must be lower-case letters"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(spark, tables, repo, monkeypatch, capsys, args, message):
    before = files_of(repo)
    args = [a.replace("{csv}", str(tables["csv"])) for a in args]
    code, out, err = promote(monkeypatch, capsys, repo, "init", *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert files_of(repo) == before


def test_closed_input_without_yes_is_one_line_and_exit_2(spark, tables, repo, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = promote(monkeypatch, capsys, repo, "init", str(tables["csv"]))
    assert code == 2
    assert err.strip() == "error: no answer for id (input closed); pass --yes to take the proposals, or the flags"
    assert files_of(repo) == {}


def test_an_existing_file_is_not_overwritten_without_force(spark, tables, repo, monkeypatch, capsys):
    (repo / "configs" / "base").mkdir(parents=True)
    (repo / "configs" / "base" / "project.yml").write_text("name: mine\n")
    (repo / ".gitignore").write_text("*.log\n")
    before = files_of(repo)
    code, out, err = promote(monkeypatch, capsys, repo, "init", str(tables["csv"]), "--layout", "root", "--yes")
    assert code == 2
    assert err.strip() == f"error: {repo}: would overwrite configs/base/project.yml; pass --force to replace them"
    assert files_of(repo) == before

    code, out, err = promote(
        monkeypatch, capsys, repo, "init", str(tables["csv"]), "--layout", "root", "--yes", "--force"
    )
    assert code == 0, err
    assert "  configs/base/project.yml (replaced)" in out and "  .gitignore (kept as it was)" in out
    assert ".gitignore is kept as it is; add .promote/, spark-warehouse/ to it" in out
    assert (repo / ".gitignore").read_text() == "*.log\n"
    assert config.load(repo / "configs", None).project.name == "people"


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    before = files_of(tmp_path)
    with pytest.raises(NotADirectoryError):
        scaffold.write_all(
            tmp_path, {"new/a.yml": "a: 1\n", "keep.txt": "theirs", "blocker/b.yml": "b: 2\n"}, force=True
        )
    assert files_of(tmp_path) == before and not (tmp_path / "new").exists()
    with pytest.raises(InvalidInput, match="would overwrite keep.txt; pass --force"):
        scaffold.write_all(tmp_path, {"keep.txt": "theirs"}, force=False)


# --------------------------------------------------------------------------- other shapes


def test_init_on_an_entity_and_an_event_table(spark, tables, repo, monkeypatch, capsys):
    code, out, err = promote(
        monkeypatch, capsys, repo, "init", str(tables["people"]), "--events", str(tables["encounters"]), "--yes"
    )
    assert code == 0, err
    s = config.load(repo / "configs", "prod")
    ev = s.project.data.events
    assert (ev.table, ev.id_column, ev.date_column, ev.type_column, ev.amount_column) == (
        "encounters",
        "person_id",
        "encounter_date",
        "encounter_type",
        "cost",
    )
    assert ev.kinds == {"office": ["OFFICE"], "telehealth": ["TELEHEALTH"], "ed": ["ED"], "inpatient": ["INPATIENT"]}
    assert s.project.data.tables["encounters"].format == "parquet"
    contract = s.contracts.tables["encounters"]
    assert contract.primary_key == ["encounter_id"]
    assert [(fk.column, fk.references) for fk in contract.foreign_keys] == [("person_id", "people.person_id")]
    assert s.feature_mappings.groups["events"] == ["ev_*"]
    assert "encounters: " in out and "features per kind (office, telehealth, ed, inpatient)" in out


def test_init_on_a_delta_table(spark, tables, repo, monkeypatch, capsys):
    code, out, err = promote(
        monkeypatch,
        capsys,
        repo,
        "init",
        str(tables["delta"]),
        "--subgroups",
        "language",
        "--provider",
        "gitlab",
        "--yes",
    )
    assert code == 0, err
    s = config.load(repo / "configs", None)
    assert s.project.name == "patients_delta"
    assert s.project.data.tables["patients_delta"].format == "delta"
    assert s.project.data.subgroup_columns == ["language"]
    assert s.promotion.policy("prod").fairness.subgroups == ["language"]
    assert (repo / ".gitlab-ci.yml").is_file() and (repo / ".gitlab" / "promote-jobs.yml").is_file()


def test_a_second_project_goes_to_models_with_its_own_release_branches(spark, tables, repo, monkeypatch, capsys):
    code, out, err = promote(monkeypatch, capsys, repo, "init", str(tables["csv"]), "--name", "outreach", "--yes")
    assert code == 0, err
    ci = (repo / ".github/workflows/promote.yml").read_bytes()
    code, out, err = promote(
        monkeypatch, capsys, repo, "init", str(tables["people"]), "--name", "readmit", "--not-phi", "full_name", "--yes"
    )
    assert code == 0, err
    assert "  models/readmit/configs/base/project.yml" in out and "  models/readmit/README.md" in out
    assert "  .github/workflows/promote.yml (kept as it was)" in out
    assert (repo / ".github/workflows/promote.yml").read_bytes() == ci
    readmit = config.load(repo / "models/readmit/configs", None)
    assert "full_name" not in readmit.project.data.phi_columns  # the user said it is not PHI
    assert [p.name for p in projects.discover(repo)] == ["outreach", "readmit"]
    commit(repo)
    branch = ["--event", "push", "--branch", "release/readmit/1.0", "--json"]
    code, out, err = promote(monkeypatch, capsys, repo, "--project", "readmit", "plan", *branch)
    assert code == 0, err
    assert (json.loads(out)["environment"], json.loads(out)["registered_model"]) == ("prod", "readmit-prod")
    code, out, err = promote(monkeypatch, capsys, repo, "plan", *branch)  # the root project: not its release
    assert code == 0, err
    assert json.loads(out)["environment"] == "dev"
