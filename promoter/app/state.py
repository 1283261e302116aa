"""The typed state of one run, what each step returns, and what the run reports.

A run is a :class:`RunState` passed through the steps of its plan in order; each step reads
what earlier steps left (``gold``, ``candidate``, ``gate`` ...), writes its own field, and
returns a :class:`StepOutcome`. Nothing is shared through attributes of a class that grows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.core.events import Event
from promoter.core.plan import Plan

if TYPE_CHECKING:  # pragma: no cover
    from promoter.app.recording import Recorder
    from promoter.app.tickets import Ticket
    from promoter.app.training import TrainResult
    from promoter.config import Settings
    from promoter.core.audit import AuditStore, Record
    from promoter.core.gate import ModelEvaluation, Verdict
    from promoter.core.promotion import PromotionDecision
    from promoter.registry import Registry

Progress = Callable[[str], None]

# step statuses in a result
DONE = "done"
SKIPPED = "skipped"  # the step ran and found nothing to do (the detail says why)
FAILED = "failed"
NOT_RUN = "not run"  # an earlier step stopped the run
WAITING = "waiting"  # the step stopped the run to wait for approvals (exit 4)


def stderr_progress(message: str) -> None:
    """Default progress sink: one line on stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StepOutcome:
    """What one step did: ``done`` or ``skipped`` (it ran and had nothing to do), and one line."""

    detail: str
    status: str = DONE

    @classmethod
    def skipped(cls, detail: str) -> "StepOutcome":
        return cls(detail, SKIPPED)


@dataclass
class StepResult:
    name: str
    reason: str
    status: str = NOT_RUN
    detail: str = ""
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reason": self.reason,
            "status": self.status,
            "detail": self.detail,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
        }


@dataclass
class RunResult:
    """What one run did; ``to_dict()`` is the schema the reporters render."""

    event: Event
    environment: str | None
    registered_model: str | None
    steps: list[StepResult] = field(default_factory=list)
    candidate: dict[str, Any] | None = None
    champion: dict[str, Any] | None = None
    verdict: dict[str, Any] | None = None
    promotion: dict[str, Any] | None = None
    decision_id: str | None = None
    champion_moved: bool = False
    exit_code: int = 0
    error: dict[str, Any] | None = None
    links: dict[str, str] = field(default_factory=dict)
    scored_rows: int | None = None
    notes: list[str] = field(default_factory=list)
    nothing: str | None = None
    monitoring: dict[str, Any] | None = None  # the surveillance step's verdict (compact)

    @property
    def executed(self) -> list[str]:
        """Names of the steps that ran (done, skipped, failed or waiting), in order."""
        return [s.name for s in self.steps if s.status != NOT_RUN]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.to_dict(),
            "environment": self.environment,
            "registered_model": self.registered_model,
            "steps": [s.to_dict() for s in self.steps],
            "candidate": self.candidate,
            "champion": self.champion,
            "verdict": self.verdict,
            "promotion": self.promotion,
            "decision_id": self.decision_id,
            "champion_moved": self.champion_moved,
            "exit_code": self.exit_code,
            "error": self.error,
            "links": self.links,
            "scored_rows": self.scored_rows,
            "notes": self.notes,
            "nothing_to_do": self.nothing,
            "monitoring": self.monitoring,
        }


@dataclass
class Gold:
    """The gold table this run reads, its catalog entry, and the candidate's selected inputs."""

    df: Any
    catalog: Any
    feature_columns: list[str]


@dataclass
class GateState:
    """The gate's decision in this run (``verdict`` is ``None`` when the candidate already was champion)."""

    champion_version: int | None
    verdict: "Verdict | None" = None
    record: "Record | None" = None
    approvals_required: int = 0


@dataclass
class RunState:
    """Everything a step may read, and what the steps before it produced.

    Inputs (set when the run starts): ``plan``, ``settings`` (the environment's, with the
    protected parts taken from a PR's target branch), ``registry``, ``audit``, ``recorder``,
    ``repo_path``, ``progress``, ``clock``, ``score_date``, ``publish``.

    Produced by steps: ``contract_report`` (contracts), ``gold`` (features), ``candidate`` and
    ``candidate_eval`` (train, scored on the evaluation rows by expectations/gate), ``gate``
    (expectations or gate), ``promotion`` (approval / promote), ``result`` (every step).
    """

    plan: Plan
    settings: "Settings"
    registry: "Registry"
    audit: "AuditStore"
    recorder: "Recorder"
    repo_path: Path
    progress: Progress = stderr_progress
    project_dir: Path | None = None
    clock: Callable[[], datetime] = utc_now
    score_date: date | None = None
    publish: bool = True
    spark_session: Any = None
    contract_report: Any = None
    gold: Gold | None = None
    candidate: "TrainResult | None" = None
    candidate_eval: "ModelEvaluation | None" = None
    gate: GateState | None = None
    promotion: "PromotionDecision | None" = None
    ticket: "Ticket | None" = None
    phi_index: Any = None  # the bronze PHI values as salted digests, built once per run (steps.phi)
    log_lines: list[str] = field(default_factory=list)  # every progress line, for the PHI scan
    result: RunResult = field(init=False)

    def pipeline(self, part: str) -> Callable[..., Any]:
        """The project's entry point for ``part`` (``project.yml`` ``pipelines:``; see ``pipelines/api.py``)."""
        from promoter.app.plugins import entry_point

        return entry_point(self.settings, part, (self.project_dir, self.repo_path))

    def __post_init__(self) -> None:
        sink = self.progress

        def progress(message: str) -> None:  # what the run prints is also kept: the PHI scan reads it
            self.log_lines.append(str(message))
            sink(message)

        self.progress = progress
        self.result = RunResult(
            event=self.plan.event,
            environment=self.plan.environment,
            registered_model=self.model_name,
            steps=[StepResult(s.name, s.reason) for s in self.plan.steps],
            notes=list(self.plan.notes),
        )

    @property
    def event(self) -> Event:
        return self.plan.event

    @property
    def env(self) -> str:
        return self.plan.environment or ""

    @property
    def model_name(self) -> str:
        return self.plan.registered_model or self.settings.model_name_for(self.env)

    @property
    def is_prod(self) -> bool:
        return self.env == self.settings.promotion.prod_environment

    @property
    def spark(self) -> Any:
        """The Spark session, started on first use from the project's spark settings."""
        if self.spark_session is None:
            from pipelines import session

            self.progress(f"starting Spark ({session.describe(self.settings.project.spark)})")
            self.spark_session = session.from_settings(self.settings.project.spark)
        return self.spark_session

    def day(self) -> date:
        """The scoring partition date: ``score_date`` or today (UTC) by the run's clock."""
        return self.score_date or self.clock().astimezone(UTC).date()
