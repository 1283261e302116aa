"""Governed sign-off: roles under the recorded policy, verified identities, change tickets.

Real parts: a git repo with the shipped configs, an MLflow registry on SQLite, CI identities as
the platforms set them (environment variables), and a ticket system on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from promoter import errors
from promoter.app import decisions, prepare, tickets
from promoter.core import tags
from promoter.core.events import Event
from tests.app.conftest import MODEL, record_gate
from tests.report.conftest import fake_api  # noqa: F401 - the fixture

ROLES = {
    "identity": "verified",
    "sign_off": "needs_approval",
    "roles": {
        "data_science": {"members": ["@owners"], "required": 1},
        "clinical_safety": {"members": ["dr.lee", "nurse.ng"], "required": 1},
        "compliance": {"members": ["github:comp-ortiz"], "required": 1},
    },
    "groups": {"owners": ["ds.kim", "dr.lee"]},
}


def github(actor: str) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": actor}


def test_every_role_signs_then_the_champion_moves(prod):
    registry, cfg = prod
    gate = record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES)
    one = decisions.approve(cfg, "prod", 2, environ=github("dr.lee"))
    assert one.waiting and "compliance (1 more)" in one.message
    # dr.lee counts once: a second approval of hers does not fill data_science as well
    again = decisions.approve(cfg, "prod", 2, environ=github("dr.lee"))
    assert again.waiting and "has 1" in again.message
    two = decisions.approve(cfg, "prod", 2, environ=github("ds.kim"))
    assert two.waiting and "needs sign-off from compliance (1 more), has 2" in two.message
    three = decisions.approve(cfg, "prod", 2, environ=github("comp-ortiz"))
    assert three.champion_moved and registry.get_alias(MODEL, tags.CHAMPION) == 2
    records = registry.audit_store().read_all(MODEL)
    approvals = [r for r in records if r.kind == "approval"]
    assert [r.actor for r in approvals] == ["dr.lee", "ds.kim", "comp-ortiz"]  # the repeat is not a new record
    assert all(r.details["identity"] == {"name": r.actor, "provider": "github", "verified": True} for r in approvals)
    assert all(r.decision_id == gate.record_id for r in approvals)
    move = records[-1]
    assert move.kind == "alias_move"
    assert move.details["sign_off"]["assigned"] == {
        "clinical_safety": ["dr.lee"],
        "compliance": ["comp-ortiz"],
        "data_science": ["ds.kim"],
    }


def test_a_typed_name_that_disagrees_with_the_verified_identity_is_refused(prod):
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES)
    with pytest.raises(errors.InvalidInput, match=r"--by 'dr.lee' disagrees .* GitHub Actions .*GITHUB_ACTOR=mallory"):
        decisions.approve(cfg, "prod", 2, "dr.lee", environ=github("mallory"))
    azure = {"TF_BUILD": "True", "BUILD_REQUESTEDFOREMAIL": "eve@example.org"}
    with pytest.raises(errors.InvalidInput, match="Azure DevOps .*BUILD_REQUESTEDFOREMAIL=eve@example.org"):
        decisions.approve(cfg, "prod", 2, "dr.lee", environ=azure)
    gitlab = {"GITLAB_CI": "true", "GITLAB_USER_LOGIN": "trudy"}
    with pytest.raises(errors.InvalidInput, match="GitLab CI .*GITLAB_USER_LOGIN=trudy"):
        decisions.approve(cfg, "prod", 2, "dr.lee", environ=gitlab)
    assert [r.kind for r in registry.audit_store().read_all(MODEL)] == ["gate"]  # nothing recorded


def test_the_same_name_as_the_verified_identity_is_accepted(prod):
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES)
    action = decisions.approve(cfg, "prod", 2, "DR.LEE", environ=github("dr.lee"))
    assert action.waiting


def test_an_unverified_local_approval_is_refused_with_how_to_approve(prod):
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES)
    with pytest.raises(errors.InvalidInput) as caught:
        decisions.approve(cfg, "prod", 2, "dr.lee", environ={})
    text = str(caught.value)
    assert "requires a verified identity" in text and "approval job" in text and "basic-auth" in text
    assert caught.value.exit_code == 2
    with pytest.raises(errors.InvalidInput, match="--by must name who acts"):
        decisions.approve(cfg, "prod", 2, environ={})


def test_a_person_in_no_role_is_refused(prod):
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES)
    with pytest.raises(
        errors.InvalidInput, match=r"'mallory' is in no role of approvals.prod under the policy recorded"
    ):
        decisions.approve(cfg, "prod", 2, environ=github("mallory"))
    # a provider-qualified member: the same login verified by another platform is not that member
    azure = {"TF_BUILD": "True", "BUILD_REQUESTEDFOR": "comp-ortiz"}
    with pytest.raises(errors.InvalidInput, match="in no role"):
        decisions.approve(cfg, "prod", 2, environ=azure)


def test_a_policy_edited_in_the_working_tree_is_ignored(prod):
    """The approver rewrites approvals.prod to let anyone approve alone: the recorded policy still rules."""
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES)
    (cfg / "prod" / "promotion.yml").write_text(
        "approvals:\n  prod:\n    identity: any\n    roles: !!null\n    groups: !!null\n",
    )
    (cfg / "prod" / "promotion.yml").write_text(
        "approvals:\n  prod:\n    identity: any\n    roles:\n      data_science: {members: ['*'], required: 1}\n"
        "      clinical_safety: {members: ['*'], required: 0}\n      compliance: {members: ['*'], required: 0}\n"
    )
    with pytest.raises(errors.InvalidInput, match="requires a verified identity"):
        decisions.approve(cfg, "prod", 2, "mallory", environ={})
    with pytest.raises(errors.InvalidInput, match="in no role"):
        decisions.approve(cfg, "prod", 2, environ=github("mallory"))
    action = decisions.approve(cfg, "prod", 2, environ=github("dr.lee"))
    assert action.waiting and registry.get_alias(MODEL, tags.CHAMPION) == 1


REQUIRED_TICKET = {"required": True, "pattern": "CHG-[0-9]+", "verify": None}


@pytest.mark.parametrize(
    "ticket,match",
    [(None, "a change ticket is required"), ("INC-12", "does not match the pattern 'CHG-\\[0-9\\]\\+'")],
)
def test_a_missing_or_malformed_ticket_is_refused_where_required(prod, ticket, match):
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES, ticket_policy=REQUIRED_TICKET)
    with pytest.raises(errors.InvalidInput, match=match) as caught:
        decisions.approve(cfg, "prod", 2, ticket=ticket, environ=github("dr.lee"))
    assert "promotion.yml approvals.prod.change_ticket" in str(caught.value) and caught.value.exit_code == 2
    assert [r.kind for r in registry.audit_store().read_all(MODEL)] == ["gate"]


def test_the_release_ticket_recorded_with_the_decision_serves_the_approval(prod):
    registry, cfg = prod
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES, ticket_policy=REQUIRED_TICKET, ticket="CHG-77")
    decisions.approve(cfg, "prod", 2, environ=github("dr.lee"))
    approval = registry.audit_store().read_all(MODEL)[-1]
    assert approval.details["ticket"] == "CHG-77"


def test_a_ticket_is_checked_with_the_ticket_system(prod, fake_api):  # noqa: F811
    registry, cfg = prod
    verify = {
        "url": fake_api.base_url + "/itsm/changes/{ticket}",
        "token_env": "ITSM_TOKEN",
        "state_field": "result.state",
    }
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES, ticket_policy={**REQUIRED_TICKET, "verify": verify})
    env = {**github("dr.lee"), "ITSM_TOKEN": "itsm-token"}
    fake_api.changes["CHG-5"] = {"state": "Approved"}
    fake_api.changes["CHG-6"] = {"state": "draft"}
    with pytest.raises(errors.InvalidInput, match="CHG-404 is not known to the ticket system"):
        decisions.approve(cfg, "prod", 2, ticket="CHG-404", environ=env)
    with pytest.raises(errors.InvalidInput, match="CHG-6 is 'draft' in the ticket system"):
        decisions.approve(cfg, "prod", 2, ticket="CHG-6", environ=env)
    with pytest.raises(errors.PromoteError, match="answered HTTP 401"):
        decisions.approve(cfg, "prod", 2, ticket="CHG-5", environ=github("dr.lee"))  # no token
    decisions.approve(cfg, "prod", 2, ticket="CHG-5", environ=env)
    approval = registry.audit_store().read_all(MODEL)[-1]
    assert approval.details["ticket_check"]["state"] == "Approved"
    assert fake_api.requests_to("GET", r"/itsm/changes/CHG-5")[-1].auth == "Bearer itsm-token"


def test_an_unreachable_ticket_system_promotes_nothing(prod):
    registry, cfg = prod
    verify = {"url": "http://127.0.0.1:9/itsm/{ticket}", "timeout_seconds": 2}
    record_gate(registry, "NEEDS_APPROVAL", 2, 1, policy=ROLES, ticket_policy={**REQUIRED_TICKET, "verify": verify})
    with pytest.raises(errors.PromoteError, match="cannot be reached"):
        decisions.approve(cfg, "prod", 2, ticket="CHG-5", environ=github("dr.lee"))
    assert [r.kind for r in registry.audit_store().read_all(MODEL)] == ["gate"]


# --------------------------------------------------------------------------- a release's ticket


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _require_tickets(repo: Path) -> Path:
    cfg = repo / "configs"
    (cfg / "prod").mkdir(exist_ok=True)
    (cfg / "prod" / "promotion.yml").write_text(
        "approvals:\n  prod:\n    change_ticket: {required: true, pattern: 'CHG-[0-9]+'}\n"
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "prod promotions need a change ticket")
    return cfg


def _release_event(repo: Path, branch: str) -> Event:
    return Event(kind="push", provider="local", branch=branch, sha=_git(repo, "rev-parse", "HEAD"))


def test_a_release_without_a_ticket_is_refused_before_anything_runs(git_repo):
    cfg = _require_tickets(git_repo)
    _git(git_repo, "checkout", "-q", "-b", "release/1.0")
    with pytest.raises(errors.InvalidInput, match="a change ticket is required for a promotion in prod") as caught:
        prepare.prepare(_release_event(git_repo, "release/1.0"), cfg, git_repo, environ={})
    assert "cut-release --ticket" in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(errors.InvalidInput, match="'chg-1' does not match"):
        prepare.prepare(_release_event(git_repo, "release/1.0"), cfg, git_repo, ticket="chg-1", environ={})


def test_a_release_takes_its_ticket_from_the_tag_the_variable_or_the_branch(git_repo):
    from promoter import config
    from promoter.app import release

    cfg = _require_tickets(git_repo)
    settings = config.load(cfg, None)
    policy = config.load(cfg, "prod").promotion.approval("prod").change_ticket
    cut = dict(name="release/1.0", force=True, reason="test", settings=settings, ticket_policy=policy)
    with pytest.raises(errors.InvalidInput, match="a change ticket is required"):
        release.cut_release(str(git_repo), **cut)
    with pytest.raises(errors.InvalidInput, match="'CHG-x' does not match"):
        release.cut_release(str(git_repo), **cut, ticket="CHG-x")
    cut = release.cut_release(str(git_repo), **cut, ticket="CHG-41")
    event = Event(kind="push", provider="local", branch=cut.branch, sha=cut.sha)
    found = prepare.prepare(event, cfg, git_repo, environ={}).ticket
    assert found == tickets.Ticket("CHG-41", "release tag")
    assert prepare.prepare(event, cfg, git_repo, environ={tickets.ENV_VAR: "CHG-9"}).ticket.id == "CHG-9"
    branch_event = Event(kind="push", provider="local", branch="release/CHG-77", sha="f" * 40)
    assert prepare.prepare(branch_event, cfg, git_repo, environ={}).ticket == tickets.Ticket(
        "CHG-77", "branch release/CHG-77"
    )
    # a plan that cannot move a champion needs no ticket (a dev push)
    dev = Event(kind="push", provider="local", branch="feature/x", sha="f" * 40)
    assert prepare.prepare(dev, cfg, git_repo, environ={}).ticket is None
