"""Fixtures of the app tests: a prod registry with versions, and gate records as the gate step writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from promoter.core import audit, tags
from promoter.registry import Registry

MODEL = "hrob-risk-prod"


@pytest.fixture(autouse=True)
def _lake_in_tmp_path(tmp_path: Path, monkeypatch) -> None:
    """The lake (audit mirror, anchors) of app tests under the test's folder, never the working
    directory: the shipped ``lake_root`` is relative (``.promote/lake``) and these tests do not chdir."""
    monkeypatch.setenv("PROMOTE_LAKE_ROOT", str(tmp_path / "lake"))


def prod_registry(tmp_path: Path, monkeypatch) -> Registry:
    """A prod registry on SQLite in ``tmp_path`` (the process's tracking URI) with versions 1..3, v1 champion."""
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    registry = Registry(uri)
    registry.client.create_registered_model(MODEL)
    exp = registry.client.create_experiment("train", artifact_location=str(tmp_path / "art"))
    for _ in range(3):
        run = registry.client.create_run(exp)
        registry.client.create_model_version(MODEL, source=str(tmp_path / "art" / "model"), run_id=run.info.run_id)
    registry.set_alias(MODEL, tags.CHAMPION, 1)
    return registry


@pytest.fixture
def prod(git_repo: Path, tmp_path: Path, monkeypatch):
    """A prod registry with versions 1..3, v1 champion, and the repo's configs."""
    return prod_registry(tmp_path, monkeypatch), git_repo / "configs"


def record_gate(
    registry,
    verdict: str,
    candidate: int,
    champion: int | None,
    required: int = 0,
    model: str = MODEL,
    policy: dict[str, Any] | None = None,
    ticket_policy: dict[str, Any] | None = None,
    ticket: str | None = None,
) -> audit.Record:
    """A gate record as the gate step writes it: the policy's mode, approvals policy and ticket with it.

    Without ``policy`` it is a record of before roles (only the approval count).
    """
    details: dict[str, Any] = {"mode": "enforce", "approvals_required": required}
    if policy is not None:
        from promoter.core import approvals

        details["approvals"] = policy
        details["approvals_policy_hash"] = approvals.policy_hash(approvals.Policy.from_dict(policy))
    if ticket_policy is not None:
        details["change_ticket_policy"] = ticket_policy
    if ticket is not None:
        details["ticket"] = {"id": ticket, "source": "--ticket", "state": None}
    return audit.append(
        registry.audit_store(),
        kind="gate",
        environment="prod",
        created_at=datetime.now(UTC).isoformat(),
        registered_model=model,
        candidate_version=candidate,
        champion_version=champion,
        verdict=verdict,
        details=details,
    )
