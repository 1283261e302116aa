"""Shared fixtures: real git repos, a real local Spark, a real MLflow store in tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CONFIGS = ROOT / "configs"

# Folders whose tests need no Spark, no server and no subprocess: the `unit` tier (make test-unit).
UNIT_FOLDERS = {"core", "config"}
HEAVY_MARKERS = {"spark", "e2e", "cluster", "act", "slow"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of the pure packages `unit`; a module may also opt in with ``pytestmark``."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in UNIT_FOLDERS and not HEAVY_MARKERS & {m.name for m in item.iter_markers()}:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run (2 cores, small shuffles)."""
    from pipelines.session import build_session

    session = build_session(
        "local[2]",
        "promote-tests",
        {
            "spark.sql.shuffle.partitions": 4,
            "spark.default.parallelism": 4,
            "spark.ui.enabled": False,
            "spark.driver.memory": "3g",
            "spark.sql.adaptive.enabled": True,
        },
    )
    yield session
    session.stop()


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity; returns stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.org",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.org",
    }
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repo with the project's configs committed on ``main``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(CONFIGS, repo / "configs")
    (repo / "README.md").write_text("model repo\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def payload_repo(git_repo: Path) -> Path:
    """``git_repo`` with a ``master`` branch too: the target of the GitHub pull-request fixtures,
    whose branch rules and gate policy a PR's plan reads (invariant 4)."""
    git(git_repo, "branch", "master")
    return git_repo


@pytest.fixture
def mlflow_uri(tmp_path: Path) -> str:
    """A fresh MLflow tracking store (SQLite) in tmp_path."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_promote(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `promote` console entry point in a subprocess."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TF_BUILD", "BUILD_", "SYSTEM_", "GITLAB_", "CI_", "PROMOTE_"))
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "promoter", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=900,
    )
