"""The monitoring report: markdown (for an issue, a work item or the job summary) and self-contained HTML.

Pure renderers of the plain summary a monitoring run produces (``pipelines.surveillance``
``MonitorResult.to_dict()`` plus what the step added: verdict, retrain, sinks). The HTML embeds
its plots as ``data:`` URIs, so the one file opens anywhere (an MLflow artifact view, an e-mail, an
auditor's laptop) with nothing to fetch.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

MARKER = "<!-- promote:monitor model={model} env={env} -->"

_DRIFT_COLUMNS = (
    ("population_stability_index", "PSI"),
    ("js_distance", "JS"),
    ("wasserstein_distance", "Wasserstein"),
    ("tv_distance", "TV"),
    ("chi_squared_pvalue", "chi2 p"),
)
_PERF_COLUMNS = (
    ("roc_auc", "AUC"),
    ("pr_auc", "PR-AUC"),
    ("brier", "Brier"),
    ("ece", "ECE"),
    ("calibration_slope", "cal. slope"),
    ("calibration_intercept", "cal. intercept"),
    ("precision_at_k", "precision@k"),
    ("recall_at_k", "recall@k"),
)


def marker(model: str, env: str) -> str:
    """The hidden line that finds this model's alert again (one open issue per model and environment)."""
    return MARKER.format(model=model, env=env)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and 0 < abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _interval(m: Mapping[str, Any], key: str) -> str:
    lo, hi = m.get(f"{key}_lower"), m.get(f"{key}_upper")
    if lo is None or hi is None:
        return _num(m.get(key))
    return f"{_num(m.get(key))} [{_num(lo)}, {_num(hi)}]"


def sections(summary: Mapping[str, Any], top: int = 20) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The report as (heading, table header, table rows, text) sections, shared by both renderers."""
    out: list[tuple[str, list[str], list[list[str]], str]] = []
    for kind in ("BASELINE", "CONSECUTIVE"):
        d = (summary.get("input_drift") or {}).get(kind)
        if not d:
            out.append((f"Input drift ({kind.lower()})", [], [], (summary.get("skipped") or {}).get(kind, "not run")))
            continue
        text = (
            f"{d['drifted_count']} of {d['tested']} features drifted ({d['drifted_share']:.1%}; dataset alert "
            f"above {d['rule']['max_drifted_share']:.0%}); per feature: {d['rule']['metric']} > "
            f"{d['rule']['threshold']:g} and chi-squared p < {d['threshold_p']:.2g} ({d['rule']['correction']})"
            f"; against {d.get('window_cmp', '?')}"
        )
        rows = [
            [
                f["column_name"],
                *(_num(f.get(k)) for k, _ in _DRIFT_COLUMNS),
                _num(f.get("importance")),
                "**yes**" if f["drifted"] else "no",
            ]
            for f in d["features"][:top]
        ]
        out.append(
            (
                f"Input drift ({kind.lower()})",
                ["feature", *(h for _, h in _DRIFT_COLUMNS), "importance", "drifted"],
                rows,
                text,
            )
        )
    p = summary.get("prediction") or {}
    if p:
        psi = p.get("score_psi") or {}
        text = "score PSI: " + ", ".join(f"{k.lower()} {_num(v)}" for k, v in psi.items()) if psi else ""
        rows = [
            [
                g["slice_key"],
                str(g["slice_value"]),
                str(g["count"]),
                _num(g.get("top_tier_share")),
                _num(g.get("reference_top_tier_share")),
                _num(g.get("change")),
            ]
            for g in p.get("groups", [])
        ]
        out.append(
            ("Prediction drift", ["subgroup", "group", "rows", "top-tier share", "previous", "change"], rows, text)
        )
    perf = summary.get("performance") or []
    if perf:
        rows = [
            [
                w["score_date"],
                str(w["labelled"]),
                _num(w["coverage"]),
                *(_interval(w["metrics"], k) for k, _ in _PERF_COLUMNS),
            ]
            for w in perf
        ]
        out.append(
            (
                "Realised performance",
                ["score date", "labelled", "coverage", *(h for _, h in _PERF_COLUMNS)],
                rows,
                f"outcomes matured {summary.get('label_delay_days', '?')} days after the score date",
            )
        )
        last = perf[-1]
        rows = [
            [col, str(grp), str(int(m.get("n", 0))), *(_interval(m, k) for k in ("roc_auc", "pr_auc", "brier", "ece"))]
            for col, groups in sorted((last.get("subgroups") or {}).items())
            for grp, m in sorted(groups.items())
        ]
        if rows:
            out.append(
                (
                    f"Realised performance by subgroup ({last['score_date']})",
                    ["subgroup", "group", "n", "AUC", "PR-AUC", "Brier", "ECE"],
                    rows,
                    "intervals: percentile bootstrap, for groups smaller than the configured small_group",
                )
            )
    else:
        out.append(
            ("Realised performance", [], [], summary.get("performance_note") or "no window has matured outcomes yet")
        )
    r = summary.get("retrain") or {}
    if r:
        text = (
            ("requested: " + r.get("reason", "")) if r.get("request") else (r.get("suppressed") or r.get("reason", ""))
        )
        rows = [
            [s["sink"], s["action"], "ok" if s["ok"] else "failed", s.get("message", "")] for s in r.get("dispatch", [])
        ]
        out.append(("Retrain", ["dispatch", "action", "result", "detail"] if rows else [], rows, text))
    return out


def markdown(summary: Mapping[str, Any], top: int = 20) -> str:
    """The report as GitHub-flavoured markdown (its first line is the hidden marker)."""
    lines = [
        marker(summary["model_name"], summary["environment"]),
        f"## Monitoring: {summary['model_name']} v{summary.get('model_version')} on {summary['score_date']}"
        f" — **{summary['verdict']}**",
        "",
    ]
    lines += [f"- {a}" for a in summary.get("alerts", [])] or ["No alerts."]
    lines += [f"> {n}" for n in summary.get("notes", [])]
    for heading, header, rows, text in sections(summary, top):
        lines += ["", f"### {heading}", ""]
        if text:
            lines += [text, ""]
        if header:
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines).rstrip() + "\n"


def html_report(summary: Mapping[str, Any], images: Sequence[tuple[str, bytes]] = (), top: int = 20) -> str:
    """A self-contained HTML page: the same sections, plus the PNG plots embedded as data URIs."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Monitoring {e(summary['model_name'])} {e(summary['score_date'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}td:first-child,th:first-child"
        "{text-align:left}.ALERT{color:#c0392b}.OK{color:#1e8449}img{max-width:100%}</style></head><body>",
        f"<h1>Monitoring: {e(summary['model_name'])} v{e(str(summary.get('model_version')))} on "
        f"{e(summary['score_date'])} — <span class='{e(summary['verdict'])}'>{e(summary['verdict'])}</span></h1>",
        "<ul>" + "".join(f"<li>{e(a)}</li>" for a in summary.get("alerts", [])) + "</ul>"
        if summary.get("alerts")
        else "<p>No alerts.</p>",
    ]
    parts += [f"<blockquote>{e(n)}</blockquote>" for n in summary.get("notes", [])]
    for heading, header, rows, text in sections(summary, top):
        parts.append(f"<h2>{e(heading)}</h2>")
        if text:
            parts.append(f"<p>{e(text)}</p>")
        if header:
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c.replace('**', ''))}</td>" for c in r) + "</tr>" for r in rows]
            parts.append("</table>")
    for title, png in images:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
