"""Step ``rollback``: a manual dispatch that asks for one (its inputs carry who and why)."""

from __future__ import annotations

from promoter import errors
from promoter.app.state import RunState, StepOutcome


def rollback(state: RunState) -> StepOutcome:
    """Move ``champion`` back to ``previous`` (or the asked version) and hold promotion."""
    from promoter.app.decisions import rollback_model

    event = state.event
    if not event.reason:
        raise errors.InvalidInput(
            "a rollback needs a reason: the workflow_dispatch input 'reason', "
            "PROMOTE_REASON, or promote rollback --reason TEXT"
        )
    action = rollback_model(
        state.settings,
        state.registry,
        state.recorder,
        by=event.actor or "unknown",
        reason=event.reason,
        to_version=event.to_version,
        clock=state.clock,
    )
    state.result.champion_moved = action.champion_moved
    return StepOutcome(action.message)
