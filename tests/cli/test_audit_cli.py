"""`promote audit verify` and `promote history` read the chain kept with the registry."""

from __future__ import annotations

import json
from pathlib import Path

from promoter.core import audit
from promoter.registry import AUDIT_PART, Registry
from tests.conftest import run_promote


def test_verify_names_an_edited_record_and_history_lists_the_chain(git_repo: Path, tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    registry = Registry(uri)
    store = registry.audit_store()
    for i in range(3):
        audit.append(
            store,
            kind="gate",
            environment="prod",
            registered_model="hrob-risk-prod",
            created_at=f"2026-11-23T09:0{i}:00+00:00",
            candidate_version=i + 1,
            verdict="PASS",
            actor="ci",
        )
    env = {"MLFLOW_TRACKING_URI": uri}
    cfg = str(git_repo / "configs")
    ok = run_promote("--config-dir", cfg, "audit", "verify", "--env", "prod", env=env, cwd=git_repo)
    assert ok.returncode == 0, ok.stderr
    assert "prod: ok, 3 record(s)" in ok.stdout

    hist = run_promote("--config-dir", cfg, "history", "--env", "prod", "--json", env=env, cwd=git_repo)
    records = json.loads(hist.stdout)
    assert [r["seq"] for r in records] == [0, 1, 2]

    run_id = store.run_id_of("hrob-risk-prod", 2)
    data = json.loads(registry.client.get_run(run_id).data.tags[AUDIT_PART + "0"])
    data["candidate_version"] = 99  # someone quietly rewrites which version passed
    registry.client.set_tag(run_id, AUDIT_PART + "0", json.dumps(data))
    bad = run_promote("--config-dir", cfg, "audit", "verify", "--env", "prod", env=env, cwd=git_repo)
    assert bad.returncode == 2
    assert "prod record 2 " in bad.stderr
    assert "edited" in bad.stderr
