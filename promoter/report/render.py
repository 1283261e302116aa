"""Pure renderers: data in, text out. No I/O here; sinks decide where text goes."""

from __future__ import annotations

import json
from typing import Any

from promoter.core.plan import Plan


def _event_line(plan: Plan) -> str:
    e = plan.event
    if e.kind == "pull_request":
        what = f"pull_request #{e.pr_number}" if e.pr_number is not None else "pull_request"
        what += f" {e.source_branch!r} -> {e.target_branch!r}"
    elif e.kind is None:
        what = e.raw_name or "event"
    else:
        what = f"{e.kind} {e.branch!r}"
        if e.kind == "manual":
            what += f" (action: {e.action})"
    sha = e.commit
    if sha:
        what += f" @ {sha[:12]}"
    return f"{what} [{e.provider}]"


def plan_text(plan: Plan) -> str:
    """Human-readable plan, as ``promote plan`` prints it."""
    lines = [f"event:        {_event_line(plan)}"]
    if plan.event.actor:
        lines.append(f"actor:        {plan.event.actor}")
    if plan.environment:
        lines.append(f"environment:  {plan.environment}  ({plan.rule})")
        lines.append(f"model:        {plan.registered_model}")
    for note in plan.notes:
        lines.append(f"note:         {note}")
    if plan.is_empty:
        lines.append(f"nothing to do: {plan.nothing}")
        return "\n".join(lines) + "\n"
    lines.append("steps:")
    width = max(len(s.name) for s in plan.steps)
    for i, step in enumerate(plan.steps, 1):
        lines.append(f"  {i:>2}. {step.name:<{width}}  {step.reason}")
    return "\n".join(lines) + "\n"


def to_json(data: Any) -> str:
    """Stable JSON (sorted keys, two-space indent) for machines and tests."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def history_text(records: list[Any]) -> str:
    """One line per decision record, oldest first."""
    if not records:
        return "no decisions recorded yet\n"
    lines = []
    for r in records:
        versions = ""
        if r.candidate_version is not None or r.champion_version is not None:
            versions = f" candidate={r.candidate_version} champion={r.champion_version}"
        lines.append(
            f"{r.environment:<8} #{r.seq:<4} {r.created_at}  {r.kind:<12} {r.verdict or '-':<14}"
            f"{versions}  by {r.actor or '?'}  [{r.record_id[:12]}]"
        )
    return "\n".join(lines) + "\n"
