"""`promote score` before any release: one clear line, exit 2, nothing scored or recorded."""

from __future__ import annotations

from pathlib import Path

from promoter.registry import Registry
from tests.conftest import run_promote


def test_score_without_a_champion_says_so(git_repo: Path, mlflow_uri: str):
    proc = run_promote("score", "--env", "prod", cwd=git_repo, env={"MLFLOW_TRACKING_URI": mlflow_uri})
    assert proc.returncode == 2, proc.stderr
    assert "hrob-risk-prod has no champion yet: nothing to score with" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (git_repo / ".promote" / "lake" / "predictions").exists()
    assert Registry(mlflow_uri).audit_store().read_all("hrob-risk-prod") == []
