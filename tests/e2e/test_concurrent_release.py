"""Invariant 5/6: several `promote run` processes for the same prod release at once end with
exactly one registered version, one champion move and a valid audit chain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import ROOT, git
from tests.e2e.helpers import make_model_repo

# slow tier: three whole releases at once (2-3 minutes on 2 cores); make test-slow
pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]


def test_concurrent_runs_of_one_release_move_the_champion_once(tmp_path: Path):
    repo = make_model_repo(tmp_path, members=1500)
    git(repo, "branch", "release/1.0")
    uri = f"sqlite:///{repo / '.promote' / 'mlflow.db'}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TF_BUILD", "BUILD_", "SYSTEM_", "GITLAB_", "CI_", "PROMOTE_"))
    }
    env.update(MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "promoter", "replay", "push", "release/1.0", "--json"]
    procs = [
        subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=1800) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0, 0, 0], "\n\n".join(err[-3000:] for _, err in outs)

    registry = Registry(uri)
    versions = registry.client.search_model_versions("name = 'hrob-risk-prod'")
    assert len(versions) == 1
    assert registry.get_alias("hrob-risk-prod", tags.CHAMPION) == 1
    store = registry.audit_store()
    records = store.read_all("hrob-risk-prod")
    assert audit.verify(records, head=store.head("hrob-risk-prod")).ok
    moves = [r for r in records if r.kind == "alias_move"]
    gates = [r for r in records if r.kind == "gate"]
    assert len(moves) == 1 and moves[0].candidate_version == 1
    assert len(gates) == 1 and gates[0].verdict == "PASS"
