"""Run a prepared plan: each step of the plan, in order, through the one step table.

``execute(prepared)`` is what ``promote run`` and ``promote replay`` do after
:func:`promoter.app.prepare.prepare`: open the registry, hold the model's run lock while
steps that act on the registry run, call ``STEPS[name](state)`` for each planned step and
nothing else (invariant 13), and return the :class:`RunResult`. A step stops the run by
raising a ``PromoteError``; the later steps are marked "not run", except ``report``, which
still publishes the failure. The error is re-raised with ``.result`` attached, so the CLI maps
it to the exit code in its one place.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import errors
from promoter.app import plugins, tickets
from promoter.app.connect import open_registry
from promoter.app.prepare import Prepared
from promoter.app.recording import Recorder
from promoter.app.state import (
    DONE,
    FAILED,
    NOT_RUN,
    WAITING,
    Progress,
    RunResult,
    RunState,
    StepResult,
    stderr_progress,
    utc_now,
)
from promoter.app.steps import ALWAYS, LOCKING, PIPELINE_PARTS, STEPS

if TYPE_CHECKING:  # pragma: no cover
    from promoter.registry import Registry

LOCK_NOTICE_SECONDS = 2.0


def error_dict(exc: BaseException) -> dict[str, Any]:
    """The ``error`` entry of a run result: message, kind, and file/line/column when known."""
    out: dict[str, Any] = {"message": str(exc), "kind": type(exc).__name__}
    for attr in ("file", "line", "column"):
        if getattr(exc, attr, None) is not None:
            out[attr] = getattr(exc, attr)
    return out


def publish_failure(event: Any, environment: str | None, exc: BaseException) -> None:
    """Publish an error that came before any plan (bad config, bad event) as a CI result.

    Inside GitHub Actions or Azure DevOps this gives an annotation at the config file and
    line, step outputs and a summary; elsewhere nothing. Never raises.
    """
    from promoter.report import sinks

    failed = RunResult(
        event=event,
        environment=environment,
        registered_model=None,
        exit_code=getattr(exc, "exit_code", errors.EXIT_UNEXPECTED),
        error=error_dict(exc),
    )
    sinks.publish(failed.to_dict(), console=False)
    exc.result = failed  # type: ignore[attr-defined] - published: the CLI only prints the line


def dry_result(prepared: Prepared) -> RunResult:
    """The result of a dry run (or of an event with nothing to do): the plan, nothing executed."""
    p = prepared.plan
    return RunResult(
        event=p.event,
        environment=p.environment,
        registered_model=p.registered_model,
        steps=[StepResult(s.name, s.reason, NOT_RUN, "dry run") for s in p.steps],
        notes=list(p.notes),
        nothing=p.nothing,
    )


def new_state(
    prepared: Prepared,
    *,
    registry: "Registry | None" = None,
    repo_path: str | Path = ".",
    progress: Progress = stderr_progress,
    clock: Callable[[], datetime] = utc_now,
    score_date: date | None = None,
    publish: bool = True,
    spark: Any = None,
) -> RunState:
    """The run state for a prepared plan (opens the environment's registry unless given one)."""
    if prepared.settings is None or prepared.plan.environment is None:
        raise errors.PromoteError("a plan with nothing to do has no run state")
    settings = prepared.settings
    registry = registry or open_registry(settings)
    store = registry.audit_store()
    plan = prepared.plan
    recorder = Recorder(
        settings,
        store,
        plan.environment or "",
        plan.registered_model or "",
        actor=plan.event.actor or "unknown",
        event=plan.event.to_dict(),
        clock=clock,
        repo_path=Path(repo_path),
    )
    state = RunState(
        plan=plan,
        settings=settings,
        registry=registry,
        audit=store,
        recorder=recorder,
        repo_path=Path(repo_path),
        project_dir=prepared.project_dir,
        progress=progress,
        clock=clock,
        score_date=score_date,
        publish=publish,
        spark_session=spark,
        ticket=prepared.ticket,
    )
    recorder.on_warning = state.result.notes.append  # an anchor not written: a warning in the result
    return state


def execute(prepared: Prepared, **kwargs: Any) -> RunResult:
    """Carry out a prepared plan (see :func:`new_state` for the keyword arguments).

    Returns:
        The result, when every step finished (exit 0).

    Raises:
        PromoteError: the error that stopped the run, with ``.result`` attached.
    """
    if prepared.plan.is_empty or prepared.settings is None:
        return dry_result(prepared)
    # the project's ML code imports before anything is opened or run (a typo fails in seconds, exit 2)
    for step in prepared.plan.steps:
        if step.name in PIPELINE_PARTS:
            plugins.entry_point(
                prepared.settings, PIPELINE_PARTS[step.name], (prepared.project_dir, kwargs.get("repo_path", "."))
            )
    state = new_state(prepared, **kwargs)
    # a change ticket the ticket system has not cleared stops the run before anything is written
    policy = state.settings.promotion.approval(state.env).change_ticket
    state.ticket = tickets.verified(policy, state.env, state.ticket, os.environ)
    return run_steps(state)


def _unreachable(exc: BaseException, state: RunState, step: str) -> errors.TrackingUnreachable | None:
    """A tracking server that did not answer as the one line that names it and the step."""
    from promoter.registry import deadline

    if not deadline.is_unreachable(exc):
        return None
    state.registry.mark_unreachable()  # the way out makes one quick attempt per call, not a deadline each
    uri = getattr(exc, "uri", "") or state.settings.project.tracking_uri
    out = errors.TrackingUnreachable(
        f"tracking server unreachable at {uri} during {step}; nothing was promoted; re-run the event",
        uri=uri,
        step=step,
    )
    out.__cause__ = exc
    return out


def _explain(exc: BaseException, state: RunState, step: str) -> errors.PromoteError | None:
    """A Spark out-of-memory or dead JVM (or a dead tracking server) as one line naming the step."""
    unreachable = _unreachable(exc, state, step)
    if unreachable is not None:
        return unreachable
    if state.spark_session is None:
        return None
    from pipelines import session

    text = session.explain_failure(exc, state.settings.project.spark)
    return None if text is None else errors.StepFailed(f"step {step}: {text}")


def run_steps(state: RunState) -> RunResult:
    """Run every step of ``state.plan`` in order (the one loop; see the module docstring)."""
    result = state.result
    names = [s.name for s in result.steps]
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise errors.PromoteError(f"the plan names step(s) with no implementation: {', '.join(unknown)}")
    lock_cm = (
        state.registry.lock(f"run.{state.model_name}", timeout_seconds=3 * 3600)
        if LOCKING.intersection(names)
        else None
    )
    failure: BaseException | None = None
    stopped_by = ""
    try:
        if lock_cm is not None:
            _enter_lock(lock_cm, state)
        for i, step in enumerate(result.steps, 1):
            if failure is not None and step.name not in ALWAYS:
                step.detail = f"not run: {stopped_by} stopped the run"
                continue
            if failure is not None:
                result.exit_code = getattr(failure, "exit_code", errors.EXIT_UNEXPECTED)
                result.error = error_dict(failure)
            state.progress(f"[{i}/{len(names)}] {step.name}: {step.reason}")
            started = time.monotonic()
            try:
                outcome = STEPS[step.name](state)
            except errors.AwaitingApproval as exc:
                step.status, step.detail = WAITING, str(exc)
                failure, stopped_by = failure or exc, stopped_by or step.name
            except errors.PromoteError as exc:
                named = _unreachable(exc, state, step.name) if isinstance(exc, errors.TrackingUnreachable) else None
                step.status, step.detail = FAILED, str(named or exc)
                failure, stopped_by = failure or named or exc, stopped_by or step.name
            except Exception as exc:  # noqa: BLE001 - explained when it is Spark's, re-raised otherwise
                explained = _explain(exc, state, step.name)
                step.status, step.detail = FAILED, str(explained or f"{type(exc).__name__}: {exc}")
                if explained is not None:
                    explained.__cause__ = exc
                # the first failure is the run's: a report that then fails too does not replace it
                failure, stopped_by = failure or explained or exc, stopped_by or step.name
            else:
                step.status, step.detail = outcome.status, outcome.detail
            step.seconds = time.monotonic() - started
            took = f" ({step.seconds:.1f}s)"
            state.progress(f"      {step.status}{took}: {step.detail}" if step.detail else f"      {step.status}{took}")
    finally:
        if lock_cm is not None:
            lock_cm.__exit__(None, None, None)
    if failure is not None:
        result.exit_code = getattr(failure, "exit_code", errors.EXIT_UNEXPECTED)
        result.error = error_dict(failure)
        failure.result = result  # type: ignore[attr-defined] - the CLI and the demo read what ran
        raise failure
    return result


def _enter_lock(lock_cm: Any, state: RunState) -> None:
    """Take the model's run lock; say so only when another run holds it (a retried job, a parallel release)."""
    asked = time.monotonic()
    notice = threading.Timer(
        LOCK_NOTICE_SECONDS,
        state.progress,
        [f"waiting for the {state.model_name} run lock: another run of this model is in progress"],
    )
    notice.daemon = True
    notice.start()
    try:
        handle = lock_cm.__enter__()
    except errors.TrackingUnreachable as exc:
        raise errors.TrackingUnreachable(
            f"{exc} while taking the {state.model_name} run lock; nothing was promoted; re-run the event",
            uri=exc.uri,
        ) from exc
    finally:
        notice.cancel()
    if handle.broke:
        text = f"broke the {state.model_name} run lock of a dead run ({handle.broke})"
        state.progress(text)
        state.result.notes.append(text)
    waited = time.monotonic() - asked
    if waited > LOCK_NOTICE_SECONDS:
        state.progress(f"got the {state.model_name} run lock after {waited:.0f}s")


__all__ = ["DONE", "execute", "run_steps", "new_state", "dry_result", "open_registry", "error_dict"]
