"""Pure renderers of a run result: data in, text out. No I/O; the sinks decide where it goes.

A *run result* is the plain dict ``promote run`` produces (see ``docs`` in ci/README.md):
event, environment, registered model, steps, candidate, champion, verdict (comparison,
bootstrap interval, fairness, reasons), decision id, whether the champion moved, exit
code, error, links. Every renderer tolerates missing or ``None`` parts, because a run
can stop anywhere (bad config, nothing to do, gate not reached).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MARKER_PREFIX = "<!-- promote:env="
MAX_COMMENT_CHARS = 60_000  # GitHub allows 65,536; Azure DevOps threads 150,000
STATUS_DESCRIPTION_CHARS = 140

_VERDICT_ICON = {"PASS": "✅", "FAIL": "❌", "NEEDS_APPROVAL": "⏳"}
_STEP_ICON = {"done": "✅", "skipped": "⏭️", "failed": "❌"}
_EXIT_MEANING = {0: "done", 1: "unexpected failure", 2: "invalid input", 3: "gate said no", 4: "waiting for approval"}


def marker(environment: str | None, registered_model: str | None = None) -> str:
    """The hidden marker of the sticky comment or thread of one (model, environment).

    Two models built from one pull request (a repository with several projects) each keep their
    own comment: the marker names the registered model when there is one.
    """
    model = f" model={registered_model}" if registered_model else ""
    return f"{MARKER_PREFIX}{environment or 'none'}{model} -->"


def status_context(result: Mapping[str, Any]) -> str:
    """The commit-status context of a run: ``promote/<registered model>`` (``promote/<env>`` without one)."""
    return f"promote/{result.get('registered_model') or result.get('environment') or 'none'}"


def _cell(value: Any) -> str:
    """A value fit for one markdown table cell: no pipes or newlines break the table."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _num(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and not signed:
        return str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _percent(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "?%"
    return f"{value * 100:g}%"


def _link(text: str, url: str | None) -> str:
    return f"[{text}]({url})" if url else text


def _event(result: Mapping[str, Any]) -> Mapping[str, Any]:
    ev = result.get("event")
    return ev if isinstance(ev, Mapping) else {}


def event_line(event: Mapping[str, Any]) -> str:
    """One line naming the event: ``pull_request #2 feature/x -> main @ abc123 (github)``."""
    kind = event.get("kind")
    if kind == "pull_request":
        what = "pull request"
        if event.get("pr_number") is not None:
            what += f" #{event['pr_number']}"
        what += f" `{event.get('source_branch')}` → `{event.get('target_branch')}`"
    elif kind is None:
        what = str(event.get("raw_name") or "event")
    else:
        what = f"{kind} `{event.get('branch')}`"
        if kind == "manual" and event.get("action"):
            what += f" (action: {event['action']})"
    sha = event.get("head_sha") or event.get("sha")
    if sha:
        what += f" @ `{str(sha)[:12]}`"
    if event.get("provider"):
        what += f" ({event['provider']})"
    return what


def verdict_status(result: Mapping[str, Any]) -> str | None:
    """``PASS``/``FAIL``/``NEEDS_APPROVAL``, or ``None`` when no gate ran."""
    verdict = result.get("verdict")
    return verdict.get("status") if isinstance(verdict, Mapping) else None


def headline(result: Mapping[str, Any]) -> str:
    """A one-line outcome, e.g. ``prod: PASS, champion moved to version 3``."""
    env = result.get("environment") or "no environment"
    error = result.get("error")
    code = result.get("exit_code")
    if isinstance(error, Mapping) and error.get("message"):
        return f"{env}: error: {error['message']}"
    status = verdict_status(result)
    parts = [status] if status else []
    cand = result.get("candidate") if isinstance(result.get("candidate"), Mapping) else None
    if result.get("champion_moved") and cand:
        parts.append(f"champion moved to version {cand.get('version')}")
    elif status and status != "PASS":
        parts.append("champion unchanged")
    elif cand and not status:
        parts.append(f"candidate version {cand.get('version')} registered")
    if not parts:
        steps = result.get("steps") or []
        parts.append("nothing to do" if not steps else _EXIT_MEANING.get(code, f"exit code {code}"))
    return f"{env}: " + ", ".join(str(p) for p in parts)


def _version_label(role: str, info: Any) -> str:
    if not isinstance(info, Mapping):
        return f"{role}: none"
    label = f"{role} v{info.get('version')}"
    run_id = info.get("run_id")
    if run_id:
        label += f" ({_link('run ' + str(run_id)[:8], info.get('run_url'))})"
    return label


def _metrics_table(verdict: Mapping[str, Any]) -> list[str]:
    comparison = verdict.get("comparison") or {}
    if not comparison:
        return []
    boot = verdict.get("bootstrap") if isinstance(verdict.get("bootstrap"), Mapping) else None
    lines = ["| metric | candidate | champion | difference | confidence interval |", "|---|---:|---:|---:|---|"]
    for name in comparison:
        row = comparison[name] if isinstance(comparison[name], Mapping) else {}
        ci = ""
        if boot and boot.get("metric") == name:
            ci = (
                f"[{_num(boot.get('ci_low'), True)}, {_num(boot.get('ci_high'), True)}] "
                f"({_percent(boot.get('confidence'))}, {boot.get('resamples')} resamples)"
            )
        lines.append(
            f"| {_cell(name)} | {_num(row.get('candidate'))} | {_num(row.get('champion'))} | "
            f"{_num(row.get('difference'), True)} | {_cell(ci)} |"
        )
    return lines


def _fairness_table(verdict: Mapping[str, Any]) -> list[str]:
    rows = verdict.get("fairness") or []
    if not rows:
        return []
    lines = ["| subgroup | group | n | candidate | champion | difference |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if not isinstance(r, Mapping):
            continue
        lines.append(
            f"| {_cell(r.get('subgroup'))} | {_cell(r.get('group'))} | {_num(r.get('n'))} | "
            f"{_num(r.get('candidate'))} | {_num(r.get('champion'))} | {_num(r.get('difference'), True)} |"
        )
    return lines


def _reasons_table(verdict: Mapping[str, Any]) -> list[str]:
    reasons = verdict.get("reasons") or []
    if not reasons:
        return []
    lines = ["| | rule | observed | limit | reason |", "|---|---|---:|---:|---|"]
    for r in reasons:
        if not isinstance(r, Mapping):
            continue
        icon = "✅" if r.get("passed") else "❌"
        lines.append(
            f"| {icon} | `{_cell(r.get('rule'))}` | {_num(r.get('observed'))} | {_num(r.get('limit'))} | "
            f"{_cell(r.get('message'))} |"
        )
    return lines


def summary(result: Mapping[str, Any]) -> str:
    """The markdown report: a job summary, and the body of the PR comment or thread.

    Shows the event, environment, candidate vs champion with each metric, the
    difference and its confidence interval, the fairness table, the verdict with every
    reason, the steps, any error (file and line), and links to the MLflow runs.
    """
    ev = _event(result)
    env = result.get("environment")
    status = verdict_status(result)
    icon = _VERDICT_ICON.get(status or "", "ℹ️")
    error = result.get("error") if isinstance(result.get("error"), Mapping) else None
    if error:
        icon = "❌"
    out = [f"## {icon} promote · {env or 'no environment'} · {status or ('error' if error else 'no gate')}", ""]
    out.append(f"**Event:** {event_line(ev) if ev else 'unknown'}  ")
    if env:
        out.append(f"**Environment:** `{env}` · registered model `{result.get('registered_model')}`  ")
    out.append(f"**Outcome:** {headline(result)}  ")
    code = result.get("exit_code")
    if code is not None:
        out.append(f"**Exit code:** {code} ({_EXIT_MEANING.get(code, 'unknown')})  ")
    if result.get("decision_id"):
        out.append(f"**Decision:** `{result['decision_id']}`  ")
    if result.get("scored_rows") is not None:
        out.append(f"**Scored rows:** {result['scored_rows']:,}  ")
    out.append("")

    if error:
        where = ""
        if error.get("file"):
            where = str(error["file"])
            if error.get("line") is not None:
                where += f":{error['line']}"
                if error.get("column") is not None:
                    where += f":{error['column']}"
            where = f"`{where}`: "
        out += ["### Error", "", f"{where}{error.get('message', '')}", ""]

    cand, champ = result.get("candidate"), result.get("champion")
    if cand or champ:
        out += [
            "### Candidate vs champion",
            "",
            f"{_version_label('candidate', cand)} · {_version_label('champion', champ)}",
            "",
        ]

    verdict = result.get("verdict") if isinstance(result.get("verdict"), Mapping) else None
    if verdict:
        if verdict.get("first_version"):
            out += ["First version in this environment: no champion to compare; absolute floors and fairness only.", ""]
        table = _metrics_table(verdict)
        if table:
            out += table + [""]
        boot = verdict.get("bootstrap") if isinstance(verdict.get("bootstrap"), Mapping) else None
        if boot:
            out += [
                f"Paired bootstrap on `{boot.get('metric')}`: difference {_num(boot.get('difference'), True)}, "
                f"{_percent(boot.get('confidence'))} interval [{_num(boot.get('ci_low'), True)}, "
                f"{_num(boot.get('ci_high'), True)}] over {boot.get('resamples')} resamples.",
                "",
            ]
        fair = _fairness_table(verdict)
        if fair:
            out += ["### Fairness (per subgroup)", ""] + fair + [""]
        out += [f"### Verdict: {icon} {status}" + (" (blocking)" if verdict.get("blocking") else " (not blocking)"), ""]
        reasons = _reasons_table(verdict)
        out += (reasons + [""]) if reasons else ["No rules were evaluated.", ""]
        moved = result.get("champion_moved")
        if moved is not None:
            out += [("The champion alias moved to the candidate." if moved else "The champion alias did not move."), ""]

    out += _monitoring_lines(result)

    steps = result.get("steps") or []
    if steps:
        out += ["<details><summary>Steps</summary>", "", "| step | status | reason |", "|---|---|---|"]
        for s in steps:
            if isinstance(s, Mapping):
                st = s.get("status") or ""
                out.append(
                    f"| {_cell(s.get('name'))} | {_STEP_ICON.get(st, '')} {_cell(st)} | {_cell(s.get('reason'))} |"
                )
        out += ["", "</details>", ""]

    links = dict(result.get("links") or {})
    for role, info in (("candidate run", cand), ("champion run", champ)):
        if isinstance(info, Mapping) and info.get("run_url"):
            links.setdefault(role, info["run_url"])
    if ev.get("run_url"):
        links.setdefault("CI run", ev["run_url"])
    if links:
        out.append("**Links:** " + " · ".join(_link(str(k), str(v)) for k, v in links.items() if v))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _monitoring_lines(result: Mapping[str, Any]) -> list[str]:
    """The surveillance step's verdict (the full report is the monitoring run's artifact)."""
    m = result.get("monitoring") if isinstance(result.get("monitoring"), Mapping) else None
    if not m:
        return []
    icon = "⚠️" if m.get("verdict") == "ALERT" else "✅"
    out = [f"### Monitoring: {icon} {m.get('verdict')} (version {m.get('model_version')}, {m.get('score_date')})", ""]
    out += [f"- {_cell(a)}" for a in m.get("alerts") or []] or ["No alerts."]
    out.append("")
    rows = []
    for kind, d in (m.get("input_drift") or {}).items():
        top = ", ".join(f"`{c}`" for c in d.get("top") or [])
        rows.append(
            f"| input drift ({str(kind).lower()}) | {d.get('drifted_count')} of {d.get('tested')} features drifted"
            + (f": {top}" if top else "")
            + " |"
        )
    for kind, v in ((m.get("prediction") or {}).get("score_psi") or {}).items():
        rows.append(f"| score PSI ({str(kind).lower()}) | {_num(v)} |")
    perf = m.get("performance") or []
    if perf:
        w = perf[-1]
        metrics = w.get("metrics") or {}
        rows.append(
            f"| realised ({w.get('score_date')}) | AUC {_num(metrics.get('roc_auc'))}, ECE {_num(metrics.get('ece'))},"
            f" calibration slope {_num(metrics.get('calibration_slope'))}, {w.get('labelled')} labelled |"
        )
    retrain = m.get("retrain") or {}
    if retrain.get("request"):
        rows.append(f"| retrain | requested: {_cell(retrain.get('reason'))} |")
    elif retrain.get("suppressed"):
        rows.append(f"| retrain | {_cell(retrain.get('suppressed'))} |")
    if rows:
        out += ["| check | result |", "|---|---|", *rows, ""]
    return out


def comment(result: Mapping[str, Any]) -> str:
    """The sticky PR comment / thread body: the hidden marker, then :func:`summary`."""
    body = marker(result.get("environment"), result.get("registered_model")) + "\n" + summary(result)
    if len(body) > MAX_COMMENT_CHARS:
        body = body[:MAX_COMMENT_CHARS] + "\n\n…(truncated; the full report is in the job summary)\n"
    return body


def status(result: Mapping[str, Any]) -> tuple[str, str]:
    """``(state, description)`` for a commit/PR status.

    ``state`` is one of ``success``, ``failure``, ``pending``, ``error`` (GitHub's words;
    the Azure sink maps them to its own).
    """
    code = result.get("exit_code")
    verdict = verdict_status(result)
    if code == 4 or verdict == "NEEDS_APPROVAL" and code in (None, 4):
        state = "pending"
    elif code in (0, None) and verdict in (None, "PASS"):
        state = "success"
    elif code in (1, 2) or result.get("error"):
        state = "error"
    else:
        state = "failure"
    description = headline(result)
    if len(description) > STATUS_DESCRIPTION_CHARS:
        description = description[: STATUS_DESCRIPTION_CHARS - 1] + "…"
    return state, description


def outputs(result: Mapping[str, Any]) -> dict[str, str]:
    """Step outputs: ``environment``, ``verdict``, ``candidate_version``, ``champion_version``,
    ``decision_id`` (empty string when unknown), plus ``exit_code`` and ``champion_moved``."""

    def version(info: Any) -> str:
        return str(info.get("version")) if isinstance(info, Mapping) and info.get("version") is not None else ""

    return {
        "environment": str(result.get("environment") or ""),
        "verdict": verdict_status(result) or "",
        "candidate_version": version(result.get("candidate")),
        "champion_version": version(result.get("champion")),
        "decision_id": str(result.get("decision_id") or ""),
        "exit_code": "" if result.get("exit_code") is None else str(result["exit_code"]),
        "champion_moved": "true" if result.get("champion_moved") else "false",
    }


def text(result: Mapping[str, Any]) -> str:
    """A plain-text report for a terminal or a CI log."""
    ev = _event(result)
    lines = [f"report:       {headline(result)}"]
    if ev:
        lines.append(f"event:        {event_line(ev).replace('`', '')}")
    for role in ("candidate", "champion"):
        info = result.get(role)
        if isinstance(info, Mapping):
            lines.append(
                f"{role + ':':<14}version {info.get('version')}"
                + (f"  {info['run_url']}" if info.get("run_url") else "")
            )
    verdict = result.get("verdict") if isinstance(result.get("verdict"), Mapping) else None
    if verdict:
        for name, row in (verdict.get("comparison") or {}).items():
            if isinstance(row, Mapping):
                lines.append(
                    f"  {name:<12} candidate {_num(row.get('candidate'))}  champion "
                    f"{_num(row.get('champion'))}  difference {_num(row.get('difference'), True)}"
                )
        boot = verdict.get("bootstrap")
        if isinstance(boot, Mapping):
            lines.append(
                f"  bootstrap {boot.get('metric')}: [{_num(boot.get('ci_low'), True)}, "
                f"{_num(boot.get('ci_high'), True)}] at {boot.get('confidence')}"
            )
        for r in verdict.get("reasons") or []:
            if isinstance(r, Mapping):
                lines.append(f"  {'ok  ' if r.get('passed') else 'FAIL'} {r.get('rule')}: {r.get('message')}")
    error = result.get("error")
    if isinstance(error, Mapping) and error.get("message"):
        where = ":".join(str(error[k]) for k in ("file", "line", "column") if error.get(k) is not None)
        lines.append(f"error:        {where + ': ' if where else ''}{error['message']}")
    return "\n".join(lines) + "\n"
