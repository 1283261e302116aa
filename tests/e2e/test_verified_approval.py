"""Approvals against a real `mlflow server --app-name basic-auth` on 127.0.0.1: the server's user is the approver.

The server authenticates each request (HTTP basic auth); ``promote approve`` asks it who the
credentials belong to and records that identity as verified. A typed ``--by`` that disagrees is
refused, and so are credentials the server rejects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from promoter import errors
from promoter.app import decisions
from promoter.core import tags
from promoter.registry import Registry
from tests.app.conftest import MODEL, record_gate
from tests.e2e.conftest import AUTH_ADMIN

pytestmark = pytest.mark.e2e

POLICY = {
    "identity": "verified",
    "sign_off": "needs_approval",
    "roles": {
        "data_science": {"members": ["ds.kim"], "required": 1},
        "clinical_safety": {"members": ["dr.lee"], "required": 1},
    },
    "groups": {},
}
PASSWORDS = {"dr.lee": "lee-password-5678", "ds.kim": "kim-password-9012"}


def _as(monkeypatch, user: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


@pytest.fixture
def auth_registry(mlflow_auth_server, git_repo: Path, monkeypatch, tmp_path: Path):
    uri = mlflow_auth_server
    for user, password in PASSWORDS.items():
        r = requests.post(
            f"{uri}/api/2.0/mlflow/users/create",
            json={"username": user, "password": password},
            auth=AUTH_ADMIN,
            timeout=10,
        )
        assert r.status_code == 200 or "already exists" in r.text, r.text
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _as(monkeypatch, *AUTH_ADMIN)
    registry = Registry(uri)
    name = f"{MODEL}"
    if not registry.client.search_registered_models(filter_string=f"name = '{name}'"):
        registry.client.create_registered_model(name)
        exp = registry.client.create_experiment(f"train-{tmp_path.name}")
        for _ in range(2):
            run = registry.client.create_run(exp)
            registry.client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    registry.set_alias(name, tags.CHAMPION, 1)
    gate = record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=POLICY)
    return registry, git_repo / "configs", gate


def test_the_tracking_servers_user_is_the_verified_approver(auth_registry, monkeypatch):
    registry, cfg, gate = auth_registry
    _as(monkeypatch, "dr.lee", PASSWORDS["dr.lee"])
    with pytest.raises(errors.InvalidInput, match=r"--by 'ds.kim' disagrees with the identity the tracking server"):
        decisions.approve(cfg, "prod", 2, "ds.kim", environ={})
    first = decisions.approve(cfg, "prod", 2, environ={})
    assert first.waiting and "data_science (1 more)" in first.message
    _as(monkeypatch, "ds.kim", "not-the-password")
    with pytest.raises(errors.PromoteError, match="refused the credentials of user 'ds.kim'"):
        decisions.approve(cfg, "prod", 2, environ={})
    _as(monkeypatch, "ds.kim", PASSWORDS["ds.kim"])
    second = decisions.approve(cfg, "prod", 2, environ={})
    assert second.champion_moved
    assert registry.get_alias(MODEL, tags.CHAMPION) == 2
    records = registry.audit_store().read_all(MODEL)
    approvals = [r for r in records if r.kind == "approval" and r.decision_id == gate.record_id]
    assert [(r.actor, r.details["identity"]["provider"], r.details["identity"]["verified"]) for r in approvals] == [
        ("dr.lee", "mlflow", True),
        ("ds.kim", "mlflow", True),
    ]


def test_the_cli_refuses_a_mismatched_name_with_exit_2(auth_registry, mlflow_auth_server):
    _, cfg, _ = auth_registry
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_auth_server,
        "MLFLOW_TRACKING_USERNAME": "dr.lee",
        "MLFLOW_TRACKING_PASSWORD": PASSWORDS["dr.lee"],
    }
    for var in ("GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI"):
        env.pop(var, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "promoter",
            "--config-dir",
            str(cfg),
            "approve",
            "--env",
            "prod",
            "--version",
            "2",
            "--by",
            "mallory",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert "--by 'mallory' disagrees" in lines[0] and "user of http://127.0.0.1" in lines[0]
