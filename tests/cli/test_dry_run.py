"""Dry run is dry: `promote replay ... --dry-run` leaves git, registry, lake and audit untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import git, run_promote


def _snapshot(repo: Path) -> dict[str, str]:
    state = {
        "head": git(repo, "rev-parse", "HEAD"),
        "refs": git(repo, "show-ref"),
        "status": git(repo, "status", "--porcelain"),
    }
    for p in sorted(repo.rglob("*")):
        if ".git" in p.parts or not p.is_file():
            continue
        state[str(p.relative_to(repo))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


@pytest.mark.parametrize(
    "args",
    [
        ["push", "release/1.0"],
        ["pull-request", "--from", "feature/x", "--into", "main"],
        ["push", "main"],
        ["schedule"],
    ],
)
def test_replay_dry_run_changes_nothing(git_repo: Path, args):
    git(git_repo, "branch", "feature/x")
    git(git_repo, "branch", "release/1.0")
    # an existing store and lake, to prove they are not touched either
    (git_repo / ".promote" / "lake" / "bronze").mkdir(parents=True)
    (git_repo / ".promote" / "lake" / "bronze" / "marker").write_text("x")
    before = _snapshot(git_repo)
    proc = run_promote(
        "--config-dir",
        "configs",
        "replay",
        *args,
        "--dry-run",
        cwd=git_repo,
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{git_repo / '.promote' / 'mlflow.db'}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "dry run: stopping after the plan" in proc.stdout
    assert "steps:" in proc.stdout
    assert _snapshot(git_repo) == before
    assert not (git_repo / ".promote" / "mlflow.db").exists()


def test_replay_dry_run_never_imports_spark_or_mlflow(git_repo: Path):
    import subprocess
    import sys

    code = (
        "import sys, os\nos.chdir(sys.argv[1])\nfrom promoter.cli import main\n"
        "rc = main(['replay', 'push', 'main', '--dry-run'])\n"
        "print('HEAVY=' + ','.join(m for m in ('pyspark', 'mlflow') if m in sys.modules))\nsys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(git_repo)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stdout
