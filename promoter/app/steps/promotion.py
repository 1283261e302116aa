"""Steps ``approval`` and ``promote``: one decision (``core.promotion``), then the alias moves.

``approval`` stops the run with exit 4 while the decision is WAIT; ``promote`` re-reads the
champion under the lock, gates again when another run moved it (invariant 6), and moves the
alias only on MOVE. A REFUSE (a blocking FAIL) stops the run with exit 3.
"""

from __future__ import annotations

from promoter import errors
from promoter.app.champion import move_champion
from promoter.app.state import RunState, StepOutcome
from promoter.app.steps.gating import gate_against
from promoter.core import promotion as rules
from promoter.core import tags

MAX_REGATES = 3


def current_decision(state: RunState) -> tuple[rules.PromotionDecision, int | None]:
    """The promotion decision for this run's gate record as things stand now, and the champion read.

    The record carries the verdict, the mode and the approval count of the policy it was made
    under, so ``promote approve`` later decides from exactly the same facts.
    """
    champion_now = state.registry.get_alias(state.model_name, tags.CHAMPION)
    record = state.gate.record if state.gate is not None else None
    chain = state.recorder.chain()
    decision = rules.decide_promotion(
        rules.gate_outcome_of(record, champion_now) if record is not None else None,
        rules.approvers_of(chain, record.record_id) if record is not None else [],
        hold=rules.hold_state(chain) is not None,
        champion_now=champion_now,
    )
    state.promotion = decision
    state.result.promotion = decision.to_dict()
    return decision, champion_now


def _waiting(state: RunState, decision: rules.PromotionDecision) -> errors.AwaitingApproval:
    version = state.gate.record.candidate_version  # type: ignore[union-attr] - WAIT implies a record
    return errors.AwaitingApproval(
        f"{state.model_name} {decision.reason}: each approver runs "
        f"promote approve --env {state.env} --version {version} (in the CI approval job, or --by NAME "
        "where the policy accepts unverified approvals)"
    )


def approval(state: RunState) -> StepOutcome:
    """Wait (exit 4) until the decision's approvals are recorded; otherwise say none are needed."""
    decision, _ = current_decision(state)
    if decision.action == rules.WAIT:
        raise _waiting(state, decision)
    if decision.action == rules.MOVE:
        if decision.needed:
            return StepOutcome(f"{decision.have} of {decision.needed} approval(s) recorded")
        return StepOutcome("no approval needed")
    return StepOutcome.skipped(f"no approval to wait for: {decision.reason}")


def _scan_before_move(state: RunState) -> None:
    """The PHI scan of the candidate again, just before the alias moves (exit 3 on a finding)."""
    from promoter.app.steps import phi

    if phi.enabled(state) and state.candidate is not None:
        phi.refuse(state, phi.scan_candidate(state), "the champion was not moved")


def promote(state: RunState) -> StepOutcome:
    """Move ``champion`` to the candidate when the decision is MOVE."""
    for _ in range(MAX_REGATES):
        decision, champion_now = current_decision(state)
        if decision.action != rules.REGATE:
            break
        state.progress(f"      champion moved to version {champion_now} since the gate: running the gate again")
        gate_against(state, champion_now)  # the candidate's evaluation rows are reused
    else:
        raise errors.PromoteError("the champion kept moving while this run tried to promote; re-run the event")
    if decision.action == rules.SKIP:
        return StepOutcome.skipped(decision.reason)
    if decision.action == rules.REFUSE:
        raise errors.GateRejected(f"{state.model_name}: {decision.reason}")
    if decision.action == rules.WAIT:
        raise _waiting(state, decision)
    _scan_before_move(state)
    record = state.gate.record  # type: ignore[union-attr] - MOVE implies a gate record
    moved = move_champion(
        state.registry,
        state.settings,
        state.recorder,
        record.candidate_version,
        decision=record.record_id,
        approved=decision.have > 0,
        expected_current=champion_now,
        extra={"ticket": state.ticket.to_dict()} if state.ticket is not None else None,
    )
    state.result.champion_moved = moved
    return StepOutcome(
        f"champion -> version {record.candidate_version}"
        if moved
        else f"version {record.candidate_version} already champion"
    )
