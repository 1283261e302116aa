"""plan.build is pure: (event, settings) -> Plan. Table-driven, named for behaviour."""

from __future__ import annotations

import pytest

from promoter import config
from promoter.core import plan
from promoter.core.events import Event
from tests.conftest import CONFIGS

BASE = config.load(CONFIGS, None, environ={})


def push(branch, **kw):
    return Event(kind="push", provider="local", branch=branch, **kw)


def pr(source, target, **kw):
    return Event(kind="pull_request", provider="local", branch=target, source_branch=source, target_branch=target, **kw)


CASES = [
    ("feature push is dev", push("feature/x"), "dev", ["contracts", "features", "train", "report"]),
    ("dev/* push is dev", push("dev/alice"), "dev", None),
    ("any other branch is dev", push("experiment-42"), "dev", None),
    ("release-notes is not a release", push("release-notes"), "dev", None),
    ("releases/x is not a release", push("releases/x"), "dev", None),
    ("nested release path is not release/*", push("release/1.2/hotfix"), "dev", None),
    (
        "main push is staging",
        push("main"),
        "staging",
        ["contracts", "features", "train", "expectations", "promote", "report"],
    ),
    ("release branch is prod", push("release"), "prod", None),
    (
        "release/1.2 is prod",
        push("release/1.2"),
        "prod",
        ["contracts", "features", "train", "gate", "approval", "promote", "score", "report"],
    ),
    (
        "PR into main is staging",
        pr("feature/x", "main"),
        "staging",
        ["contracts", "features", "train", "expectations", "report"],
    ),
    ("PR into release is validated in staging", pr("hotfix/y", "release/1.2"), "staging", None),
    ("PR into bare release is staging", pr("x", "release"), "staging", None),
    ("PR into a feature branch is dev", pr("x", "feature/base"), "dev", None),
    (
        "schedule is prod scoring",
        Event(kind="schedule", provider="local", branch="main"),
        "prod",
        ["score", "surveillance", "report"],
    ),
    (
        "manual score",
        Event(kind="manual", provider="local", branch="release/1.0", action="score"),
        "prod",
        ["score", "report"],
    ),
    (
        "manual rollback",
        Event(kind="manual", provider="local", branch="release/1.0", action="rollback"),
        "prod",
        ["rollback", "report"],
    ),
    (
        "manual run on main = push steps",
        Event(kind="manual", provider="local", branch="main", action="run"),
        "staging",
        ["contracts", "features", "train", "expectations", "promote", "report"],
    ),
    ("release event is prod", Event(kind="release", provider="github", branch="release/2.0"), "prod", None),
]


@pytest.mark.parametrize("name,event,env,steps", CASES, ids=[c[0] for c in CASES])
def test_environment_and_steps(name, event, env, steps):
    p = plan.build(event, BASE)
    assert p.environment == env
    assert p.registered_model == f"hrob-risk-{env}"
    assert not p.is_empty
    if steps is not None:
        assert p.step_names() == steps
    assert all(s.reason for s in p.steps)


@pytest.mark.parametrize("event", [pr("a", "main"), pr("a", "release/9"), pr("a", "release")])
def test_pull_request_never_resolves_to_prod_nor_moves_a_champion(event):
    p = plan.build(event, BASE)
    assert p.environment != "prod"
    assert not {"promote", "approval", "score", "rollback"} & set(p.step_names())


def test_pr_into_release_explains_the_fallback():
    p = plan.build(pr("a", "release/9"), BASE)
    assert any("never runs with prod credentials" in n for n in p.notes)


def test_default_branch_auto_uses_the_payload():
    p = plan.build(push("master", default_branch="master"), BASE)
    assert p.environment == "staging"
    p = plan.build(push("main", default_branch="master"), BASE)
    assert p.environment == "dev"


def test_default_branch_auto_falls_back_with_a_note():
    p = plan.build(push("main"), BASE)
    assert p.environment == "staging"
    assert any("fallback" in n or "using 'main'" in n for n in p.notes)


def test_fixed_default_branch_ignores_payload():
    s = BASE.model_copy(update={"promotion": BASE.promotion.model_copy(update={"default_branch": "trunk"})})
    assert plan.build(push("trunk", default_branch="master"), s).environment == "staging"
    assert plan.build(push("master", default_branch="master"), s).environment == "dev"


def test_first_match_wins():
    rules = [
        config.BranchRule(pattern="release/*", environment="staging"),
        config.BranchRule(pattern="release/**", environment="prod"),
        config.BranchRule(pattern="**", environment="dev"),
    ]
    s = BASE.model_copy(update={"promotion": BASE.promotion.model_copy(update={"branch_rules": rules})})
    assert plan.build(push("release/1"), s).environment == "staging"
    assert plan.build(push("release/1/x"), s).environment == "prod"


def test_no_matching_rule_is_nothing_to_do():
    rules = [config.BranchRule(pattern="release/*", environment="prod")]
    s = BASE.model_copy(update={"promotion": BASE.promotion.model_copy(update={"branch_rules": rules})})
    p = plan.build(push("feature/x"), s)
    assert p.is_empty and "matches no branch rule" in p.nothing


def test_nothing_events_pass_through():
    p = plan.build(Event(kind=None, provider="github", nothing="tag push (refs/tags/v1) is not a branch"), BASE)
    assert p.is_empty and p.environment is None and p.nothing.startswith("tag push")


def test_the_plan_does_not_depend_on_the_registry():
    """The plan printed is the plan run: reasons come from config, never from what a registry holds."""
    ev = push("release/1.1")
    first = plan.build(ev, BASE)
    assert plan.build(ev, BASE) == first
    assert "first version" in next(s for s in first.steps if s.name == "gate").reason


def test_approval_step_is_planned_and_names_the_policy_count():
    approvals = {"prod": config.ApprovalPolicy(required=2)}
    s = BASE.model_copy(update={"promotion": BASE.promotion.model_copy(update={"approvals": approvals})})
    p = plan.build(push("release/1.0"), s)
    assert "approval" in p.step_names()
    assert "(roles approver 2; sign-off always;" in next(st for st in p.steps if st.name == "approval").reason
    # no count keeps the step: a NEEDS_APPROVAL verdict or a rollback hold still needs a person
    reason = next(st for st in plan.build(push("release/1.0"), BASE).steps if st.name == "approval").reason
    assert "roles data_science 1, clinical_safety 1, compliance 1; sign-off needs_approval; identity verified" in reason


def test_every_step_name_has_a_reason_and_a_function():
    from promoter.app.steps import STEPS

    assert set(plan.STEP_REASONS) == set(STEPS)
    assert set(config.StepName.__args__) == set(STEPS)


def test_a_dry_run_gate_says_so_in_its_reason():
    gate = {**BASE.promotion.gate, "prod": BASE.promotion.gate["prod"].model_copy(update={"mode": "dry_run"})}
    s = BASE.model_copy(update={"promotion": BASE.promotion.model_copy(update={"gate": gate})})
    reason = next(st for st in plan.build(push("release/1.0"), s).steps if st.name == "gate").reason
    assert reason.endswith("[mode: dry_run]")


def test_manual_action_in_a_named_environment():
    p = plan.build_action(Event(kind="push", provider="local", branch="main"), BASE, "prod", "score")
    assert p.environment == "prod" and p.step_names() == ["score", "report"]
    assert p.registered_model == "hrob-risk-prod"


def test_plan_is_pure_and_repeatable():
    ev = pr("feature/x", "main", pr_number=5)
    assert plan.build(ev, BASE) == plan.build(ev, BASE)
    assert plan.build(ev, BASE).to_dict()["event"]["pr_number"] == 5
