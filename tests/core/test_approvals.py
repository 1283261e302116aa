"""Sign-off by role: who counts for which role, one person once, and the tickets a release carries."""

from __future__ import annotations

import itertools

import pytest

from promoter.config import ApprovalPolicy
from promoter.core import approvals as A
from promoter.core.promotion import MOVE, WAIT, GateOutcome, decide_promotion

POLICY = A.Policy(
    roles=(
        A.Role("data_science", ("@owners",), 1),
        A.Role("clinical_safety", ("dr.lee", "nurse.ng"), 1),
        A.Role("compliance", ("github:comp-ortiz",), 1),
    ),
    groups={"owners": ("dr.lee", "ds.kim")},
)


def gh(name: str) -> A.Approver:
    return A.Approver(name, "github", verified=True)


# approvers -> (satisfied, missing roles)
CASES = [
    ([], False, {"data_science", "clinical_safety", "compliance"}),
    (["dr.lee"], False, {"clinical_safety", "compliance"}),  # one person, one role: not both of hers
    (["dr.lee", "dr.lee"], False, {"clinical_safety", "compliance"}),  # twice is once
    (["dr.lee", "nurse.ng"], False, {"compliance"}),
    (["dr.lee", "ds.kim"], False, {"compliance"}),  # dr.lee moves to clinical_safety so ds.kim fills data_science
    (["dr.lee", "nurse.ng", "comp-ortiz"], True, set()),
    (["ds.kim", "dr.lee", "comp-ortiz"], True, set()),  # the order does not matter
    (["ds.kim", "nurse.ng", "comp-ortiz"], True, set()),
    (["ds.kim", "comp-ortiz"], False, {"clinical_safety"}),
    (["mallory", "ds.kim", "nurse.ng"], False, {"compliance"}),  # a stranger fills nothing
]


@pytest.mark.parametrize("names,satisfied,missing", CASES, ids=["+".join(c[0]) or "nobody" for c in CASES])
def test_role_combinations(names, satisfied, missing):
    got = A.sign_off(POLICY, [gh(n) for n in names])
    assert got.satisfied is satisfied
    assert set(got.missing) == missing
    people = [p for ps in got.assigned.values() for p in ps]
    assert len(people) == len(set(people))  # nobody counts twice
    for role, ps in got.assigned.items():
        for p in ps:
            assert role in A.roles_of(POLICY, gh(p))


def test_matching_agrees_with_brute_force_over_every_subset():
    """Maximum matching: satisfied exactly when some one-role-per-person assignment fills every role."""
    people = ["dr.lee", "ds.kim", "nurse.ng", "comp-ortiz", "mallory"]
    for k in range(len(people) + 1):
        for subset in itertools.combinations(people, k):
            who = [gh(p) for p in subset]
            options = [[*A.roles_of(POLICY, w), None] for w in who]  # anyone may also go unused
            brute = (
                any(
                    {"data_science", "clinical_safety", "compliance"} <= {r for r in pick if r}
                    and len([r for r in pick if r]) == len({r for r in pick if r})
                    for pick in itertools.product(*options)
                )
                if who
                else False
            )
            assert A.sign_off(POLICY, who).satisfied is brute, subset


def test_a_provider_qualified_member_matches_only_that_platform():
    assert A.roles_of(POLICY, gh("comp-ortiz")) == ["compliance"]
    assert A.roles_of(POLICY, A.Approver("comp-ortiz", "azure", True)) == []
    assert A.roles_of(POLICY, A.Approver("COMP-ORTIZ", "github", True)) == ["compliance"]  # names ignore case


def test_the_recorded_form_round_trips_and_hashes_stably():
    data = POLICY.to_dict()
    again = A.Policy.from_dict(data)
    assert A.policy_hash(again) == A.policy_hash(POLICY)
    changed = A.Policy.from_dict({**data, "identity": "any"})
    assert A.policy_hash(changed) != A.policy_hash(POLICY)


def test_the_config_section_becomes_the_recorded_policy():
    cfg = ApprovalPolicy(
        roles={"data_science": {"members": ["@owners"], "required": 1}},
        groups={"owners": ["dr.lee"]},
    )
    assert A.policy_of(cfg).to_dict()["roles"] == {"data_science": {"members": ["@owners"], "required": 1}}
    legacy = ApprovalPolicy(required=2, approvers=["a", "b"])
    assert A.policy_of(legacy).sign_off == "always" and A.policy_of(legacy).required == 2


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"roles": {"ds": {"members": ["@nobody"]}}}, "group '@nobody' is not defined"),
        ({"roles": {"ds": {"members": []}}}, "lists no members"),
        ({"roles": {"Data Science": {"members": ["a"]}}}, "role 'Data Science'"),
        ({"roles": {"ds": {"members": ["a"]}}, "required": 1}, "not both"),
        ({"change_ticket": {"pattern": "CHG-[0-9"}}, "not a regular expression"),
        ({"change_ticket": {"verify": {"url": "ftp://x/{ticket}"}}}, "http"),
    ],
)
def test_bad_policies_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        ApprovalPolicy.model_validate(bad)


def _gate(status: str, policy: A.Policy) -> GateOutcome:
    return GateOutcome(status, "enforce", candidate_version=7, champion_version=5, approval_policy=policy)


def test_a_needs_approval_decision_moves_only_when_every_role_signed():
    gate = _gate("NEEDS_APPROVAL", POLICY)
    wait = decide_promotion(gate, [gh("dr.lee"), gh("nurse.ng")], hold=False, champion_now=5)
    assert wait.action == WAIT and "compliance (1 more)" in wait.reason
    move = decide_promotion(gate, [gh("dr.lee"), gh("nurse.ng"), gh("comp-ortiz")], hold=False, champion_now=5)
    assert move.action == MOVE and "comp-ortiz (compliance)" in move.reason


def test_under_identity_verified_unverified_approvals_do_not_count():
    gate = _gate("NEEDS_APPROVAL", POLICY)
    local = [A.Approver(n) for n in ("dr.lee", "nurse.ng", "comp-ortiz")]
    got = decide_promotion(gate, local, hold=False, champion_now=5)
    assert got.action == WAIT and "not counted (unverified)" in got.reason


def test_sign_off_always_asks_even_for_a_pass_and_needs_approval_only_when_asked():
    always = A.Policy(roles=POLICY.roles, groups=POLICY.groups, sign_off="always")
    assert decide_promotion(_gate("PASS", always), [], hold=False, champion_now=5).action == WAIT
    assert decide_promotion(_gate("PASS", POLICY), [], hold=False, champion_now=5).action == MOVE
    # under a hold a PASS waits for the roles too
    assert decide_promotion(_gate("PASS", POLICY), [gh("dr.lee")], hold=True, champion_now=5).action == WAIT


def test_no_roles_means_one_approval_from_anyone_when_asked():
    bare = A.Policy()
    assert decide_promotion(_gate("NEEDS_APPROVAL", bare), [], hold=False, champion_now=5).action == WAIT
    assert decide_promotion(_gate("NEEDS_APPROVAL", bare), [gh("x")], hold=False, champion_now=5).action == MOVE


@pytest.mark.parametrize(
    "sources,branch,expected",
    [
        ([("release tag", "Release x\n\nChange-Ticket: CHG-12\n")], "release/1.2", ("CHG-12", "release tag")),
        (
            [("release tag", "no trailer"), ("commit message", "fix\n\nchange-ticket: CHG-9")],
            None,
            ("CHG-9", "commit message"),
        ),
        ([("release tag", "Change-Ticket: chg 12")], "release/CHG-3", ("chg 12", "release tag")),  # malformed kept
        ([], "release/CHG-3", ("CHG-3", "branch release/CHG-3")),
        ([("commit message", "nothing")], "release/1.2", None),
    ],
)
def test_the_ticket_a_release_carries(sources, branch, expected):
    assert A.find_ticket("CHG-[0-9]+", sources, branch) == expected
