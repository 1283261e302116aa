"""Everything works against a real `mlflow server` on 127.0.0.1 (HTTP), not only SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import git, run_promote
from tests.e2e.helpers import make_model_repo

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def test_a_release_through_a_tracking_server(mlflow_server: str, tmp_path: Path):
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    repo = make_model_repo(tmp_path, members=1500, env=env)
    git(repo, "branch", "release/1.0")
    proc = run_promote("replay", "push", "release/1.0", "--json", "--score-date", "2026-11-23", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert result["environment"] == "prod"
    assert result["verdict"]["status"] == "PASS" and result["verdict"]["first_version"] is True
    assert result["champion_moved"] is True
    assert result["scored_rows"] == 1500
    # the registry behind the server holds the champion and the audit chain
    registry = Registry(mlflow_server)
    assert registry.get_alias("hrob-risk-prod", tags.CHAMPION) == result["candidate"]["version"] == 1
    store = registry.audit_store()
    kinds = [r.kind for r in store.read_all("hrob-risk-prod")]
    assert kinds == ["gate", "alias_move", "scoring"]
    assert audit.verify(store.read_all("hrob-risk-prod"), head=store.head("hrob-risk-prod")).ok
    assert not (repo / ".promote" / "mlflow.db").exists()  # nothing went to the embedded store
    verify = run_promote("audit", "verify", "--env", "prod", cwd=repo, env=env)
    assert verify.returncode == 0 and "prod: ok, 3 record(s)" in verify.stdout
    # the same event again (a retried CI job): no second version, move or partition write
    again = run_promote("replay", "push", "release/1.0", "--json", "--score-date", "2026-11-23", cwd=repo, env=env)
    assert again.returncode == 0, again.stderr[-4000:]
    rerun = json.loads(again.stdout[again.stdout.index("{") :])
    steps = {s["name"]: (s["status"], s["detail"]) for s in rerun["steps"]}
    assert steps["score"][0] == "skipped" and "already scored 2026-11-23" in steps["score"][1], steps
    assert rerun["champion_moved"] is False, steps
    assert len(registry.client.search_model_versions("name = 'hrob-risk-prod'")) == 1
    kinds = [r.kind for r in store.read_all("hrob-risk-prod")]
    assert kinds.count("alias_move") == 1 and kinds.count("scoring") == 1, kinds
