"""Step ``report``: publish the run's result where reviewers look (it runs even after a failed step)."""

from __future__ import annotations

import os

from promoter.app.state import RunState, StepOutcome
from promoter.core.events import provider_of


def report(state: RunState) -> StepOutcome:
    """Publish to the CI provider this process runs under: summary, outputs, PR comment, status."""
    from promoter.report import sinks

    provider = provider_of(os.environ)
    if not state.publish:
        return StepOutcome.skipped("publishing is off for this run")
    if provider == "local":
        return StepOutcome.skipped("no CI provider here to publish to (the console shows the result)")
    warnings = sinks.publish(state.result.to_dict(), console=False)
    done = f"published to {provider}"
    return StepOutcome(done + (f" with {len(warnings)} warning(s)" if warnings else ""))
