"""The steps a plan may name, in one table: name -> function ``(RunState) -> StepOutcome``.

The names are the plan's vocabulary (``promoter.core.plan.STEP_REASONS``); a test keeps the
two equal, so every planned step has exactly one function and every function is plannable.
A step raises a ``PromoteError`` to stop the run (its exit code says why).
"""

from __future__ import annotations

from collections.abc import Callable

from promoter.app.state import RunState, StepOutcome
from promoter.app.steps import data, gating, promotion, reporting, rollback, scoring, surveillance, training

Step = Callable[[RunState], StepOutcome]

STEPS: dict[str, Step] = {
    "contracts": data.contracts,
    "features": data.features,
    "train": training.train,
    "expectations": gating.expectations,
    "gate": gating.gate,
    "approval": promotion.approval,
    "promote": promotion.promote,
    "score": scoring.score,
    "surveillance": surveillance.surveillance,
    "rollback": rollback.rollback,
    "report": reporting.report,
}

# Steps that still run after an earlier step stopped the run, so the failure is published too.
ALWAYS = frozenset({"report"})

# Steps that act on the registry: the run holds the model's run lock while they run.
LOCKING = frozenset({"train", "gate", "promote", "rollback"})

# Steps that call the project's ML code: step -> the ``project.yml`` ``pipelines:`` part it calls.
PIPELINE_PARTS = {
    "contracts": "contracts",
    "features": "features",
    "train": "train",
    "score": "score",
    "surveillance": "monitor",
}
