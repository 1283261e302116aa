"""decide_promotion: every verdict x mode x hold x approvals x champion moved, against one table.

The table below is the decision table of the docs: for each (status, mode, hold, required) it
says what a decision needs. "REFUSE"/"SKIP" never move whatever the approvals; a number is how
many distinct approvers a move needs (fewer: WAIT).
"""

from __future__ import annotations

import itertools

import pytest

from promoter.core.promotion import (
    MOVE,
    REFUSE,
    REGATE,
    SKIP,
    WAIT,
    GateOutcome,
    approvers_of,
    decide_promotion,
    decide_rollback,
    gate_outcome_of,
    hold_state,
)

# (status, mode, hold) -> needs with required=0, needs with required=2
TABLE = {
    ("PASS", "enforce", False): (0, 2),
    ("PASS", "enforce", True): (1, 2),
    ("PASS", "dry_run", False): (0, 2),
    ("PASS", "dry_run", True): (1, 2),
    ("PASS", "disabled", False): (0, 2),
    ("PASS", "disabled", True): (1, 2),
    ("FAIL", "enforce", False): (REFUSE, REFUSE),
    ("FAIL", "enforce", True): (REFUSE, REFUSE),
    ("FAIL", "dry_run", False): (SKIP, SKIP),
    ("FAIL", "dry_run", True): (SKIP, SKIP),
    ("FAIL", "disabled", False): (0, 2),  # disabled: the gate did not judge; treated as PASS
    ("FAIL", "disabled", True): (1, 2),
    ("NEEDS_APPROVAL", "enforce", False): (1, 2),
    ("NEEDS_APPROVAL", "enforce", True): (1, 2),
    ("NEEDS_APPROVAL", "dry_run", False): (SKIP, SKIP),
    ("NEEDS_APPROVAL", "dry_run", True): (SKIP, SKIP),
    ("NEEDS_APPROVAL", "disabled", False): (0, 2),
    ("NEEDS_APPROVAL", "disabled", True): (1, 2),
}
PEOPLE = ["dr.lee", "ops.kim", "cs.ng"]
COMBOS = [
    (status, mode, hold, required, have)
    for (status, mode, hold), required, have in itertools.product(TABLE, (0, 2), range(4))
]


def test_the_table_covers_every_status_mode_and_hold():
    assert len(TABLE) == 3 * 3 * 2


@pytest.mark.parametrize(
    "status,mode,hold,required,have",
    COMBOS,
    ids=[f"{s}-{m}-{'hold' if h else 'free'}-req{r}-have{n}" for s, m, h, r, n in COMBOS],
)
def test_decision_table(status, mode, hold, required, have):
    gate = GateOutcome(status, mode, candidate_version=7, champion_version=5, approvals_required=required)
    expected = TABLE[(status, mode, hold)][1 if required else 0]
    got = decide_promotion(gate, PEOPLE[:have], hold=hold, champion_now=5)
    if expected in (REFUSE, SKIP):
        assert got.action == expected
        assert got.blocking is (expected == REFUSE)
    else:
        assert got.needed == expected
        # approvals count up to what the policy asks (one person, one slot); none asked: all listed
        assert got.have == (min(have, expected) if expected else have)
        assert got.action == (MOVE if have >= expected else WAIT)
        assert not got.blocking


@pytest.mark.parametrize(
    "status,mode,hold,required,have",
    COMBOS[::4],
    ids=[f"{s}-{m}-{'hold' if h else 'free'}-req{r}" for s, m, h, r, _ in COMBOS[::4]],
)
def test_a_champion_that_moved_since_the_gate_means_gate_again(status, mode, hold, required, have):
    gate = GateOutcome(status, mode, candidate_version=7, champion_version=5, approvals_required=required)
    assert decide_promotion(gate, PEOPLE, hold=hold, champion_now=6).action == REGATE
    assert decide_promotion(gate, PEOPLE, hold=hold, champion_now=None).action == REGATE


def test_a_candidate_that_already_is_champion_is_skipped_whatever_the_verdict():
    for status in ("PASS", "FAIL", "NEEDS_APPROVAL"):
        gate = GateOutcome(status, "enforce", candidate_version=7, champion_version=5)
        got = decide_promotion(gate, [], hold=True, champion_now=7)
        assert got.action == SKIP and "already champion" in got.reason


def test_no_gate_decision_is_nothing_to_promote():
    assert decide_promotion(None, ["dr.lee"], hold=False, champion_now=3).action == SKIP


def test_one_person_counts_once():
    gate = GateOutcome("PASS", "enforce", candidate_version=2, champion_version=1, approvals_required=2)
    got = decide_promotion(gate, ["dr.lee", "dr.lee", ""], hold=False, champion_now=1)
    assert (got.action, got.have, got.missing) == (WAIT, 1, 1)


def test_a_first_version_is_judged_against_no_champion():
    gate = GateOutcome("PASS", "enforce", candidate_version=1, champion_version=None)
    assert decide_promotion(gate, [], hold=False, champion_now=None).action == MOVE


def test_bad_gate_outcomes_are_refused_at_construction():
    with pytest.raises(ValueError, match="status"):
        GateOutcome("MAYBE", "enforce", 1, None)
    with pytest.raises(ValueError, match="mode"):
        GateOutcome("PASS", "strict", 1, None)


class _Rec:
    def __init__(
        self,
        kind,
        seq=0,
        actor="a",
        decision_id=None,
        details=None,
        verdict="PASS",
        candidate_version=2,
        champion_version=1,
        record_id="r",
    ):
        self.kind, self.seq, self.actor, self.decision_id = kind, seq, actor, decision_id
        self.details, self.verdict, self.record_id = details or {}, verdict, record_id
        self.candidate_version, self.champion_version = candidate_version, champion_version


def test_hold_starts_with_a_hold_and_ends_with_a_release_or_an_approved_move():
    held = [_Rec("rollback", 0), _Rec("hold", 1, details={"reason": "x"}, record_id="h")]
    assert hold_state(held)["record_id"] == "h"
    assert hold_state(held + [_Rec("release_hold", 2)]) is None
    assert hold_state(held + [_Rec("alias_move", 2, details={"approved": True})]) is None
    assert hold_state(held + [_Rec("alias_move", 2, details={"approved": False})]) is not None


def test_approvers_of_a_decision_in_order_once_each():
    chain = [
        _Rec("approval", actor="b", decision_id="d1"),
        _Rec("approval", actor="a", decision_id="d1"),
        _Rec("approval", actor="b", decision_id="d1"),
        _Rec("approval", actor="c", decision_id="d2"),
    ]
    assert [a.name for a in approvers_of(chain, "d1")] == ["b", "a"]


def test_a_stored_record_carries_its_policy():
    rec = _Rec("gate", verdict="NEEDS_APPROVAL", details={"mode": "enforce", "approvals_required": 2})
    assert gate_outcome_of(rec) == GateOutcome("NEEDS_APPROVAL", "enforce", 2, 1, 2)
    # an expectations record judged the candidate alone: it replaces whoever is champion now
    staged = _Rec("gate", champion_version=None, details={"check": "expectations", "mode": "enforce"})
    assert gate_outcome_of(staged, champion_now=4).champion_version == 4
    # older records without a recorded count fall back to the given default
    assert gate_outcome_of(_Rec("gate", details={}), default_required=1).approvals_required == 1


@pytest.mark.parametrize("now,target,action", [(3, 2, MOVE), (None, 2, REFUSE), (3, None, REFUSE), (3, 3, REFUSE)])
def test_rollback_decision(now, target, action):
    assert decide_rollback(now, target).action == action
