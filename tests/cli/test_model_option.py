"""`--model` on the decisions of a repository with several model projects: a decision is never
bound to a model nobody named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promoter.cli import main
from tests.conftest import git


@pytest.fixture
def two_projects(git_repo: Path, tmp_path: Path, monkeypatch) -> Path:
    """The reference project in configs/ and a second one, model ``hie-b``, in models/hie-b/configs."""
    other = git_repo / "models" / "hie-b" / "configs"
    shutil.copytree(git_repo / "configs", other)
    project = other / "base" / "project.yml"
    project.write_text(project.read_text().replace("model_name: hrob-risk", "model_name: hie-b"))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "second project")
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'reg.db'}")
    monkeypatch.delenv("PROMOTE_PROJECT", raising=False)
    monkeypatch.delenv("PROMOTE_CONFIG_DIR", raising=False)
    return git_repo


@pytest.mark.parametrize(
    "argv",
    [
        ["approve", "--env", "prod", "--version", "2", "--by", "dr.lee"],
        ["rollback", "--env", "prod", "--by", "ops.kim", "--reason", "drift"],
        ["release-hold", "--env", "prod", "--by", "ops.kim"],
        ["history", "--env", "prod"],
    ],
    ids=["approve", "rollback", "release-hold", "history"],
)
def test_a_decision_in_a_repository_of_two_models_must_name_one(two_projects, tmp_path, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds 2 model projects (hrob-risk, hie-b)" in err[0] and "--model" in err[0]
    assert not (tmp_path / "reg.db").exists()  # refused before the registry was opened


def test_an_unknown_model_names_the_known_ones(two_projects, tmp_path, capsys):
    assert main(["approve", "--model", "hie-c", "--env", "prod", "--version", "2", "--by", "dr.lee"]) == 2
    err = capsys.readouterr().err
    assert "no model project 'hie-c'" in err and "hrob-risk (hrob)" in err and "hie-b (hie-b)" in err
    assert not (tmp_path / "reg.db").exists()


def test_model_and_project_that_disagree_are_refused(two_projects, capsys):
    argv = ["--project", "hie-b", "rollback", "--model", "hrob-risk", "--env", "prod", "--by", "a", "--reason", "b"]
    assert main(argv) == 2
    assert "--model hrob-risk is the project in configs" in capsys.readouterr().err


def test_model_picks_the_project_and_its_chain(two_projects, capsys):
    assert main(["history", "--model", "hie-b", "--env", "prod", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"
    assert main(["--project", "hie-b", "history", "--model", "hie-b", "--env", "prod", "--json"]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["approve", "--model", "hie-b", "--env", "prod", "--version", "1", "--by", "dr.lee"],
        ["rollback", "--model", "hie-b", "--env", "prod", "--by", "ops.kim", "--reason", "drift"],
        ["release-hold", "--model", "hie-b", "--env", "prod", "--by", "ops.kim"],
        ["audit", "verify", "--model", "hie-b", "--env", "prod"],
    ],
    ids=["approve", "rollback", "release-hold", "audit-verify"],
)
def test_a_decision_before_anything_ran_is_bad_input_and_creates_no_store(two_projects, tmp_path, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: no registry at {tmp_path / 'reg.db'}"), err
    assert "nothing has run here yet" in err[0]
    assert not (tmp_path / "reg.db").exists()
