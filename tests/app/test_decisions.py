"""People's decisions: approve (bound to a gate decision), rollback (with a hold), release-hold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from promoter import errors
from promoter.app import decisions
from promoter.core import audit, tags
from promoter.core.promotion import hold_state
from tests.app.conftest import MODEL, record_gate


def _gate(registry, verdict, candidate, champion, required=0, model=MODEL, policy=None):
    return record_gate(registry, verdict, candidate, champion, required=required, model=model, policy=policy)


def test_approving_a_needs_approval_decision_moves_the_champion(prod):
    registry, cfg = prod
    gate = _gate(registry, "NEEDS_APPROVAL", 2, 1)
    action = decisions.approve(cfg, "prod", 2, "dr.lee", ticket="CHG-1", reason="reviewed")
    assert action.champion_moved
    assert registry.get_alias(MODEL, tags.CHAMPION) == 2
    assert registry.get_alias(MODEL, tags.PREVIOUS) == 1
    records = registry.audit_store().read_all(MODEL)
    assert [r.kind for r in records] == ["gate", "approval", "alias_move"]
    assert records[1].decision_id == gate.record_id and records[1].details["ticket"] == "CHG-1"
    assert records[2].decision_id == gate.record_id and records[2].details["approved"] is True
    # approving again changes nothing
    again = decisions.approve(cfg, "prod", 2, "dr.lee")
    assert not again.champion_moved
    assert len(registry.audit_store().read_all(MODEL)) == 3


def test_a_fail_cannot_be_approved(prod):
    registry, cfg = prod
    _gate(registry, "FAIL", 2, 1)
    with pytest.raises(errors.InvalidInput, match="cannot be approved"):
        decisions.approve(cfg, "prod", 2, "dr.lee")
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1


def test_approval_refused_when_the_champion_moved_since_the_decision(prod):
    registry, cfg = prod
    _gate(registry, "NEEDS_APPROVAL", 3, 1)
    registry.set_alias(MODEL, tags.CHAMPION, 2)  # another release got there first
    with pytest.raises(errors.PromoteError, match="re-run the release"):
        decisions.approve(cfg, "prod", 3, "dr.lee")
    assert registry.get_alias(MODEL, tags.CHAMPION) == 2


def test_approval_without_a_decision_is_not_found(prod):
    _, cfg = prod
    with pytest.raises(errors.NotFound):
        decisions.approve(cfg, "prod", 3, "dr.lee")


def test_rollback_moves_back_holds_and_release_hold_lifts(prod):
    registry, cfg = prod
    _gate(registry, "NEEDS_APPROVAL", 2, 1)
    decisions.approve(cfg, "prod", 2, "dr.lee")
    action = decisions.rollback(cfg, "prod", "ops.kim", "calibration drift")
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1
    assert registry.get_alias(MODEL, tags.PREVIOUS) == 2
    records = registry.audit_store().read_all(MODEL)
    assert [r.kind for r in records][-2:] == ["rollback", "hold"]
    assert hold_state(records) is not None
    assert "hold" in action.message
    # while held, even a PASS needs a person: an approval of it counts and moves the champion
    _gate(registry, "PASS", 3, 1)
    decisions.approve(cfg, "prod", 3, "dr.lee")
    assert registry.get_alias(MODEL, tags.CHAMPION) == 3
    assert hold_state(registry.audit_store().read_all(MODEL)) is None  # an approved move lifts it
    decisions.rollback(cfg, "prod", "ops.kim", "again")
    released = decisions.release_hold(cfg, "prod", "ops.kim", "fixed")
    assert "released" in released.message
    assert hold_state(registry.audit_store().read_all(MODEL)) is None
    store = registry.audit_store()
    assert audit.verify(store.read_all(MODEL), head=store.head(MODEL)).ok


def test_rollback_to_an_explicit_version_and_refusals(prod):
    registry, cfg = prod
    with pytest.raises(errors.NotFound, match="previous"):
        decisions.rollback(cfg, "prod", "ops.kim", "no previous yet")
    with pytest.raises(errors.InvalidInput, match="already the champion"):
        decisions.rollback(cfg, "prod", "ops.kim", "same", to_version=1)
    decisions.rollback(cfg, "prod", "ops.kim", "pin v3", to_version=3)
    assert registry.get_alias(MODEL, tags.CHAMPION) == 3


def test_hold_makes_the_next_pass_wait_for_approval():
    def rec(kind, **kw):
        return audit.build(
            seq=kw.pop("seq"),
            prev_hash=audit.GENESIS,
            kind=kind,
            environment="prod",
            created_at="2026-11-23T00:00:00+00:00",
            **kw,
        )

    held = [rec("rollback", seq=0), rec("hold", seq=1, details={"reason": "x"})]
    assert hold_state(held) is not None
    assert hold_state(held + [rec("release_hold", seq=2)]) is None
    assert hold_state(held + [rec("alias_move", seq=2, details={"approved": True})]) is None
    assert hold_state(held + [rec("alias_move", seq=2, details={"approved": False})]) is not None


def _legacy(required: int, approvers: list[str]) -> dict:
    """The recorded form of the older ``required``/``approvers`` policy (anyone's --by counts)."""
    from promoter.config import ApprovalPolicy
    from promoter.core.approvals import policy_of

    return policy_of(ApprovalPolicy(required=required, approvers=approvers, identity="any")).to_dict()


def test_two_approvals_from_two_named_people(prod):
    """The older form, required: 2 with a named list: one person counts once, strangers are refused."""
    registry, cfg = prod
    _gate(registry, "PASS", 2, 1, required=2, policy=_legacy(2, ["dr.lee", "ops.kim"]))
    first = decisions.approve(cfg, "prod", 2, "dr.lee", ticket="CHG-7")
    assert first.waiting and not first.champion_moved and "has 1" in first.message
    assert "approver (1 more)" in first.message
    again = decisions.approve(cfg, "prod", 2, "dr.lee")  # the same person again is still one approval
    assert again.waiting and "has 1" in again.message
    with pytest.raises(errors.InvalidInput, match="'mallory' is in no role of approvals.prod"):
        decisions.approve(cfg, "prod", 2, "mallory")
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1
    second = decisions.approve(cfg, "prod", 2, "ops.kim")
    assert second.champion_moved and registry.get_alias(MODEL, tags.CHAMPION) == 2
    kinds = [r.kind for r in registry.audit_store().read_all(MODEL)]
    assert kinds == ["gate", "approval", "approval", "alias_move"]


def test_approval_counts_under_the_policy_recorded_with_the_decision(prod):
    """Editing approvals in the working tree after the gate changes nothing: the recorded policy rules."""
    registry, cfg = prod
    _gate(registry, "PASS", 2, 1, required=2, policy=_legacy(2, []))
    (cfg / "prod" / "promotion.yml").write_text(
        "approvals:\n  prod:\n    identity: any\n    roles: {data_science: {members: ['*'], required: 0}}\n"
    )
    first = decisions.approve(cfg, "prod", 2, "dr.lee")
    assert first.waiting and "has 1" in first.message
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1


def test_a_dry_run_decision_has_nothing_to_approve(prod):
    """mode dry_run + NEEDS_APPROVAL: the run left the champion alone, and so does an approval."""
    registry, cfg = prod
    audit.append(
        registry.audit_store(),
        kind="gate",
        environment="prod",
        created_at=datetime.now(UTC).isoformat(),
        registered_model=MODEL,
        candidate_version=2,
        champion_version=1,
        verdict="NEEDS_APPROVAL",
        details={"mode": "dry_run", "approvals_required": 0},
    )
    with pytest.raises(errors.InvalidInput, match="nothing to approve: NEEDS_APPROVAL under mode dry_run"):
        decisions.approve(cfg, "prod", 2, "dr.lee")
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1
    assert [r.kind for r in registry.audit_store().read_all(MODEL)] == ["gate"]


def test_release_hold_says_what_the_pending_decision_now_allows(prod):
    registry, cfg = prod
    registry.set_alias(MODEL, tags.PREVIOUS, 3)
    decisions.rollback(cfg, "prod", "ops.kim", "drift")  # champion 1 -> 3, hold
    _gate(registry, "PASS", 2, 3)  # a later release passed, waits on the hold
    released = decisions.release_hold(cfg, "prod", "ops.kim", "fixed")
    assert "version 2's decision is now MOVE" in released.message


OTHER = "hie-b-prod"


@pytest.fixture
def two_models(prod, tmp_path: Path):
    """A second project (model ``hie-b``) in the same registry as the first: versions 1..2, v1 champion."""
    import shutil

    registry, cfg = prod
    other = tmp_path / "hie-b" / "configs"
    shutil.copytree(cfg, other)
    project = other / "base" / "project.yml"
    text = project.read_text()
    assert "model_name: hrob-risk" in text
    project.write_text(text.replace("model_name: hrob-risk", "model_name: hie-b"))
    registry.client.create_registered_model(OTHER)
    exp = registry.client.get_experiment_by_name("train").experiment_id
    for _ in range(2):
        run = registry.client.create_run(exp)
        registry.client.create_model_version(OTHER, source=str(tmp_path / "art" / "model"), run_id=run.info.run_id)
    registry.set_alias(OTHER, tags.CHAMPION, 1)
    return registry, cfg, other


def test_two_models_in_one_registry_keep_their_decisions_apart(two_models):
    """Regression: an approval bound to the other model's decision, a rollback's hold stopping the other model."""
    registry, cfg, other = two_models
    store = registry.audit_store()
    b_gate = _gate(registry, "NEEDS_APPROVAL", 2, 1, model=OTHER)
    a_gate = _gate(registry, "NEEDS_APPROVAL", 2, 1)  # same version number, newer, other model

    b_action = decisions.approve(other, "prod", 2, "dr.lee")
    assert b_action.champion_moved
    b_records = store.read_all(OTHER)
    assert [r.kind for r in b_records] == ["gate", "approval", "alias_move"]
    assert b_records[1].decision_id == b_gate.record_id != a_gate.record_id
    assert registry.get_alias(OTHER, tags.CHAMPION) == 2
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1  # model A's v2 still waits for its own approval
    assert [r.kind for r in store.read_all(MODEL)] == ["gate"]

    # model A: approve, then roll back (a hold on A's prod chain only)
    decisions.approve(cfg, "prod", 2, "dr.lee")
    decisions.rollback(cfg, "prod", "ops.kim", "calibration drift")
    assert hold_state(store.read_all(MODEL)) is not None
    assert hold_state(store.read_all(OTHER)) is None
    assert registry.get_alias(OTHER, tags.CHAMPION) == 2  # untouched by A's rollback
    assert "hie-b-prod has no hold" in decisions.release_hold(other, "prod", "ops.kim", "not ours").message
    assert [r.kind for r in store.read_all(OTHER)] == ["gate", "approval", "alias_move"]
    for chain in (MODEL, OTHER):
        assert audit.verify(store.read_all(chain), head=store.head(chain)).ok
