"""The release evidence pack: one document per prod decision, markdown and self-contained HTML.

A pack is built (``promoter.app.evidence``) as plain data for every prod decision: a gate
verdict (PASS, FAIL, NEEDS_APPROVAL), an approval and a rollback. This module only renders
it: :func:`sections` turns the pack into titled blocks of text, bullet lists and tables, and
:func:`markdown` and :func:`html_document` render the same blocks, so both forms always hold the
same content. The HTML embeds its plots as data URIs (one file, opens offline).

Every section is listed in :data:`SECTIONS` with the CHAI Applied Model Card section and the
ONC HTI-1 source-attribute group it serves (the table in ``docs/evidence-pack.md``). The pack
holds aggregates only: counts, metrics, intervals, names of columns and groups; never a row.

Pure: data in, text out.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# id, title, CHAI Applied Model Card section, HTI-1 source-attribute group (45 CFR 170.315(b)(11))
SECTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("decision", "Decision", "Release information", "Details and output of the intervention"),
    ("intended_use", "Intended use", "Summary; Uses and directions", "Purpose of the intervention"),
    (
        "out_of_scope",
        "Out-of-scope uses, limitations and risks",
        "Warnings (known risks, limitations, out-of-scope uses)",
        "Cautioned out-of-scope use of the intervention",
    ),
    (
        "data",
        "Data",
        "Trust ingredients: AI system facts (data)",
        "Intervention development details and input features",
    ),
    (
        "features",
        "Input features",
        "Trust ingredients: AI system facts (inputs)",
        "Intervention development details and input features (incl. social determinants of health)",
    ),
    ("training", "Training", "Trust ingredients: transparency information", "Intervention development details"),
    (
        "performance",
        "Held-out performance",
        "Key metrics: usefulness, efficacy; safety and reliability",
        "Quantitative measures of performance",
    ),
    (
        "subgroups",
        "Subgroups",
        "Key metrics: fairness and equity",
        "Process used to ensure fairness in development of the intervention",
    ),
    (
        "gate",
        "Candidate vs champion: the gate",
        "Key metrics: safety and reliability",
        "External validation process; quantitative measures of performance",
    ),
    (
        "approvals",
        "Approvals and change ticket",
        "Release information",
        "Ongoing maintenance of intervention implementation and use",
    ),
    ("rollback", "Rollback plan", "Resources", "Ongoing maintenance of intervention implementation and use"),
    (
        "monitoring",
        "Surveillance after release",
        "Key metrics: safety and reliability (monitoring)",
        "Update and continued validation or fairness assessment schedule",
    ),
    ("lineage", "Lineage", "Release information; Resources", "Intervention development details"),
)
TITLES = {sid: title for sid, title, _, _ in SECTIONS}


@dataclass
class Block:
    """One section as rendered: paragraphs, bullet lists, tables and images (by key), in that order."""

    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _interval(low: Any, high: Any) -> str:
    if low is None or high is None:
        return "-"
    return f"{_num(low)} to {_num(high)}"


def _kv(rows: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    return ["", ""], [[k, _num(v)] for k, v in rows.items() if v not in (None, "")]


def sections(pack: Mapping[str, Any]) -> list[Block]:
    """The pack as titled blocks, in :data:`SECTIONS` order (every section present, saying so when empty)."""
    blocks = {sid: Block(sid, title) for sid, title, _, _ in SECTIONS}
    d = pack.get("decision", {})
    b = blocks["decision"]
    b.paragraphs.append(
        f"{d.get('registered_model')} version {d.get('candidate_version')} in {d.get('environment')}: "
        f"**{d.get('kind')}** {d.get('verdict') or ''}".rstrip()
    )
    b.tables.append(
        _kv(
            {
                "decision": d.get("kind"),
                "verdict": d.get("verdict"),
                "candidate version": d.get("candidate_version"),
                "champion before": d.get("champion_version") if d.get("champion_version") is not None else "none",
                "champion after": d.get("champion_after"),
                "decision record": d.get("record_id"),
                "recorded at": d.get("created_at"),
                "by": d.get("actor"),
            }
        )
    )
    if d.get("summary"):
        b.paragraphs.append(str(d["summary"]))

    card = pack.get("card") or {}
    b = blocks["intended_use"]
    if not card.get("intended_use"):
        b.paragraphs.append(
            "No model_card.yml: the intended use is not documented (write one; `promote init` scaffolds it)."
        )
    else:
        if card.get("title"):
            b.paragraphs.append(f"**{card['title']}**")
        for key, label in (
            ("summary", ""),
            ("intended_use", "Intended use: "),
            ("population", "Population: "),
            ("outcome", "Outcome predicted: "),
            ("clinical_action", "Action taken on the score: "),
        ):
            if card.get(key):
                b.paragraphs.append(f"{label}{card[key]}")
        b.bullets += [f"Intended user: {u}" for u in card.get("intended_users", [])]
    b = blocks["out_of_scope"]
    for key, label in (
        ("out_of_scope_uses", "Out of scope"),
        ("contraindications", "Contraindication"),
        ("known_limitations", "Limitation"),
        ("risks_and_mitigations", "Risk"),
    ):
        b.bullets += [f"{label}: {v}" for v in card.get(key, [])]
    if not b.bullets:
        b.paragraphs.append("None documented in model_card.yml.")

    data = pack.get("data") or {}
    b = blocks["data"]
    b.tables.append(
        _kv(
            {
                "data snapshot": data.get("snapshot_id"),
                "snapshot date": data.get("snapshot_date"),
                "gold rows": data.get("rows"),
                "held-out evaluation rows": data.get("evaluation_rows"),
                "held-out positives": data.get("evaluation_positives"),
                "evaluation rows sha256": data.get("evaluation_rows_sha256"),
                "source": data.get("source"),
            }
        )
    )
    b.bullets += [f"Source: {s}" for s in card.get("data_sources", [])]
    contract = data.get("contract")
    if contract:
        b.paragraphs.append(
            f"Data contract: **{contract.get('status', '-')}**, {contract.get('checks', 0)} check(s), "
            f"{contract.get('violations', 0)} violation(s), {contract.get('warnings', 0)} warning(s)."
        )
        if contract.get("rows"):
            b.tables.append((["table", "check", "result", "detail"], [[_num(c) for c in r] for r in contract["rows"]]))
    else:
        b.paragraphs.append("No contract report in this decision (the contracts step did not run in it).")

    feats = pack.get("features") or {}
    b = blocks["features"]
    b.paragraphs.append(f"{feats.get('count', 0)} input feature(s) in {len(feats.get('groups', []))} group(s).")
    rows = [
        [g["group"], str(g["features"]), "social-determinant input" if g.get("social_determinant") else ""]
        for g in feats.get("groups", [])
    ]
    if rows:
        b.tables.append((["group", "features", "kind"], rows))
    sdoh = [g["group"] for g in feats.get("groups", []) if g.get("social_determinant")]
    if sdoh:
        b.paragraphs.append("Social-determinant inputs (named in model_card.yml): " + ", ".join(sdoh) + ".")
    unknown = sorted(set(card.get("social_determinant_groups", [])) - {g["group"] for g in feats.get("groups", [])})
    if unknown and feats.get("groups"):
        b.paragraphs.append(
            "Named as social-determinant groups in model_card.yml but not feature groups of this model: "
            + ", ".join(unknown)
            + "."
        )
    excluded = feats.get("excluded_columns") or []
    if excluded:
        b.paragraphs.append("Never features (PHI, key, label, subgroup columns): " + ", ".join(excluded) + ".")

    tr = pack.get("training") or {}
    b = blocks["training"]
    b.tables.append(
        _kv(
            {
                "estimator": tr.get("estimator"),
                "search": tr.get("search"),
                "evaluations": tr.get("evaluations"),
                "trained in this run": tr.get("trained"),
                "training run": tr.get("run_id"),
                "seconds": tr.get("seconds"),
            }
        )
    )
    params = tr.get("params") or {}
    if params:
        b.tables.append((["parameter", "value"], [[k, _num(v)] for k, v in sorted(params.items())]))

    perf = pack.get("performance") or {}
    b = blocks["performance"]
    conf = perf.get("confidence")
    if perf.get("metrics"):
        head = ["metric", "value", f"{conf:.0%} interval" if conf else "interval"]
        b.tables.append(
            (
                head,
                [[m, _num(v.get("value")), _interval(v.get("low"), v.get("high"))] for m, v in perf["metrics"].items()],
            )
        )
        if perf.get("resamples"):
            b.paragraphs.append(
                f"Intervals: percentile bootstrap over the held-out rows, {perf['resamples']} resamples, seed {perf.get('seed')}."
            )
    else:
        b.paragraphs.append("No held-out evaluation in this decision.")
    b.images += [k for k in ("calibration", "roc", "pr") if k in (pack.get("images") or [])]

    subs = pack.get("subgroups") or {}
    b = blocks["subgroups"]
    srows = subs.get("rows") or []
    if srows:
        b.paragraphs.append(
            f"Fairness metric {subs.get('metric')}; groups with fewer than {subs.get('min_group_size')} rows are not judged."
        )
        b.tables.append(
            (
                ["subgroup", "group", "n", "candidate", "interval", "champion", "difference", "judged"],
                [
                    [
                        r["subgroup"],
                        r["group"],
                        _num(r.get("n")),
                        _num(r.get("candidate")),
                        _interval(r.get("low"), r.get("high")),
                        _num(r.get("champion")),
                        _num(r.get("difference")),
                        _num(r.get("eligible")),
                    ]
                    for r in srows
                ],
            )
        )
    else:
        b.paragraphs.append("No subgroup metrics in this decision.")

    gate = pack.get("gate") or {}
    b = blocks["gate"]
    if gate.get("comparison"):
        b.tables.append(
            (
                ["metric", "candidate", "champion", "difference"],
                [
                    [m, _num(v.get("candidate")), _num(v.get("champion")), _num(v.get("difference"))]
                    for m, v in gate["comparison"].items()
                ],
            )
        )
    if gate.get("reasons"):
        b.tables.append(
            (
                ["rule", "result", "observed", "limit", "reason"],
                [
                    [
                        r.get("rule", ""),
                        "pass" if r.get("passed") else ("undecided" if r.get("undecided") else "FAIL"),
                        _num(r.get("observed")),
                        _num(r.get("limit")),
                        r.get("message", ""),
                    ]
                    for r in gate["reasons"]
                ],
            )
        )
    if gate.get("policy_hash"):
        b.paragraphs.append(f"Gate policy sha256 {gate['policy_hash']}, mode {gate.get('mode', 'enforce')}.")
    if not b.tables:
        b.paragraphs.append("No gate verdict in this decision.")

    ap = pack.get("approvals") or {}
    b = blocks["approvals"]
    roles = (ap.get("policy") or {}).get("roles") or {}
    if roles:
        b.tables.append(
            (
                ["role", "members", "required", "signed by"],
                [
                    [
                        name,
                        ", ".join(spec.get("members", [])),
                        str(spec.get("required", 0)),
                        ", ".join((ap.get("assigned") or {}).get(name, [])) or "-",
                    ]
                    for name, spec in roles.items()
                ],
            )
        )
    policy = ap.get("policy") or {}
    if policy:
        b.paragraphs.append(
            f"Policy: identity {policy.get('identity')}, sign-off {policy.get('sign_off')}, "
            f"sha256 {ap.get('policy_hash', '-')}; committed at {ap.get('policy_source') or '-'}."
        )
    recs = ap.get("records") or []
    if recs:
        b.tables.append(
            (
                ["approver", "verified by", "roles", "ticket", "at"],
                [
                    [
                        r.get("name", ""),
                        r.get("provider", "") if r.get("verified") else "unverified",
                        ", ".join(r.get("roles", [])),
                        r.get("ticket") or "-",
                        r.get("at", ""),
                    ]
                    for r in recs
                ],
            )
        )
    else:
        b.paragraphs.append("No approvals recorded for this decision.")
    ticket = ap.get("ticket") or {}
    b.paragraphs.append(
        f"Change ticket: {ticket.get('id')} (from {ticket.get('source')}"
        + (f", {ticket['state']} in the ticket system)" if ticket.get("state") else ")")
        if ticket.get("id")
        else "Change ticket: none given."
    )
    if ap.get("waiting"):
        b.paragraphs.append(f"Waiting: {ap['waiting']}")

    rb = pack.get("rollback") or {}
    b = blocks["rollback"]
    if d.get("kind") == "rollback":
        b.paragraphs.append(
            f"This rollback moved `champion` from version {rb.get('restores')} to version {d.get('candidate_version')}"
            + (f" ({rb['note']})" if rb.get("note") else "")
            + "; automatic promotion is on hold until `promote release-hold` or an approval. Undo it with "
            f"`promote rollback --to-version {rb.get('restores')}`."
        )
    elif rb.get("restores") is not None:
        b.paragraphs.append(
            f"If this version misbehaves, `promote rollback --env {d.get('environment')} --reason TEXT` moves "
            f"`champion` back to version {rb['restores']} (the `previous` alias) and holds automatic promotion "
            "until `promote release-hold`."
        )
    else:
        b.paragraphs.append(rb.get("note") or "No earlier version to roll back to: this would be the first champion.")

    mon = pack.get("monitoring") or {}
    b = blocks["monitoring"]
    if mon:
        b.tables.append(_kv(mon))
    else:
        b.paragraphs.append("No monitoring.yml: no surveillance configured.")

    lin = pack.get("lineage") or {}
    b = blocks["lineage"]
    b.tables.append(_kv(lin))
    return [blocks[sid] for sid, _, _, _ in SECTIONS]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(pack: Mapping[str, Any]) -> str:
    """The pack as markdown (plots referenced by file name under ``plots/``)."""
    d = pack.get("decision", {})
    out = [
        f"# Release evidence: {d.get('registered_model')} version {d.get('candidate_version')} "
        f"({d.get('kind')}{', ' + d['verdict'] if d.get('verdict') else ''})",
        "",
    ]
    for block in sections(pack):
        out += [f"## {block.title}", ""]
        for p in block.paragraphs:
            out += [p, ""]
        if block.bullets:
            out += [f"- {x}" for x in block.bullets] + [""]
        for header, rows in block.tables:
            if header == ["", ""]:
                out += ["| | |", "|---|---|"]
            else:
                out += ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
        for key in block.images:
            out += [f"![{key}](plots/{key}.png)", ""]
    return "\n".join(out).rstrip() + "\n"


def _inline_html(text: str) -> str:
    """Escape, then ``**bold**`` and ```code``` (the only markup the blocks use)."""
    import re

    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def html_document(pack: Mapping[str, Any], images: Mapping[str, bytes] | None = None) -> str:
    """The pack as one self-contained HTML page (PNG plots embedded as data URIs)."""
    e = html.escape
    images = images or {}
    d = pack.get("decision", {})
    title = f"Release evidence: {d.get('registered_model')} version {d.get('candidate_version')}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;line-height:1.4}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:.2em .5em;"
        "vertical-align:top}th{background:#eee}nav ol{columns:2}img{max-width:48%;margin:.3em}"
        ".FAIL{color:#b03a2e}.PASS{color:#1e8449}.NEEDS_APPROVAL{color:#b9770e}</style></head><body>",
        f"<h1>{e(title)} — <span class='{e(str(d.get('verdict') or ''))}'>{e(str(d.get('kind')))} "
        f"{e(str(d.get('verdict') or ''))}</span></h1>",
        "<nav><ol>" + "".join(f"<li><a href='#{sid}'>{e(t)}</a></li>" for sid, t, _, _ in SECTIONS) + "</ol></nav>",
    ]
    for block in sections(pack):
        parts.append(f"<section id='{e(block.id)}'><h2>{e(block.title)}</h2>")
        parts += [f"<p>{_inline_html(p)}</p>" for p in block.paragraphs]
        if block.bullets:
            parts.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in block.bullets) + "</ul>")
        for header, rows in block.tables:
            head = "" if header == ["", ""] else "<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
            body = "".join("<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            parts.append(f"<table>{head}{body}</table>")
        for key in block.images:
            if key in images:
                data = base64.b64encode(images[key]).decode()
                parts.append(f"<img alt='{e(key)}' src='data:image/png;base64,{data}'>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def section_titles() -> Sequence[str]:
    """The titles of the sections, in order (what a reader finds in every pack)."""
    return [t for _, t, _, _ in SECTIONS]
