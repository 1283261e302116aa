"""The release evidence pack of every prod decision: gathered here, rendered by ``report.evidence``.

A gate decision in the prod environment (PASS, FAIL or NEEDS_APPROVAL) gets a pack built from
the run: the model card, the data snapshot and contract result, the feature groups (social-
determinant inputs named as such), the training search, held-out performance with bootstrap
intervals and plots, the subgroup table with intervals, candidate vs champion with every gate
reason, the approvals policy recorded with the decision, the rollback plan and the lineage. It is
logged to MLflow as one run tagged with the candidate version (``evidence.md``, ``evidence.html``,
``evidence.json``, ``plots/``), and the version carries a tag pointing at it.

An approval or a rollback later gets its own pack: the gate's pack (read back from MLflow),
updated with the approvals recorded so far, the sign-off by role, and the champion after.

A pack that cannot be logged is a warning: the decision is already recorded in the audit chain.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from promoter.core import approvals as signoff
from promoter.core import stats

if TYPE_CHECKING:  # pragma: no cover
    from promoter.app.state import RunState
    from promoter.config import Settings
    from promoter.core.audit import Record
    from promoter.core.gate import ModelEvaluation, Verdict
    from promoter.registry import Registry

PACK_FILE = "evidence/evidence.json"
EVIDENCE_RUN_TAG = "promote.evidence_run"
INTERVAL_METRICS = ("roc_auc", "pr_auc", "brier", "ece")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _interval(labels: np.ndarray, scores: np.ndarray, metric: str, sig: Any) -> tuple[float | None, float | None]:
    if labels.size < 2 or labels.min() == labels.max():
        return None, None
    try:
        low, high = stats.bootstrap_interval(
            labels, scores, metric, resamples=sig.resamples, confidence=sig.confidence, seed=sig.seed
        )
    except (KeyError, ValueError):
        return None, None
    return low, high


def performance(cand: "ModelEvaluation", settings: "Settings", env: str) -> dict[str, Any]:
    """Held-out metrics, with percentile-bootstrap intervals for the ones the bootstrap knows."""
    sig = settings.promotion.policy(env).significance
    labels = np.asarray(cand.labels if cand.labels is not None else [], dtype=float)
    scores = np.asarray(cand.scores if cand.scores is not None else [], dtype=float)
    out: dict[str, Any] = {}
    for name, value in sorted(cand.metrics.items()):
        low, high = _interval(labels, scores, name, sig) if name in INTERVAL_METRICS and scores.size else (None, None)
        out[name] = {"value": value, "low": low, "high": high}
    return {"metrics": out, "confidence": sig.confidence, "resamples": sig.resamples, "seed": sig.seed}


def subgroups(cand: "ModelEvaluation", verdict: "Verdict | None", settings: "Settings", env: str) -> dict[str, Any]:
    """The gate's subgroup rows with a bootstrap interval of the fairness metric in each group."""
    policy = settings.promotion.policy(env)
    rule, sig = policy.fairness, policy.significance
    labels = np.asarray(cand.labels if cand.labels is not None else [], dtype=float)
    scores = np.asarray(cand.scores if cand.scores is not None else [], dtype=float)
    rows = []
    for row in verdict.fairness if verdict is not None else ():
        item = row.to_dict()
        groups = (cand.row_groups or {}).get(row.subgroup)
        low = high = None
        if groups is not None and scores.size:
            mask = np.asarray(groups).astype(str) == str(row.group)
            low, high = _interval(labels[mask], scores[mask], rule.metric, sig)
        rows.append({**item, "low": low, "high": high})
    return {"metric": rule.metric, "min_group_size": rule.min_group_size, "rows": rows}


def monitoring_summary(settings: "Settings") -> dict[str, Any]:
    m = settings.monitoring
    out: dict[str, Any] = {
        "input drift": f"{m.drift.metric} over every feature, {m.drift.correction} correction",
        "dataset drift when more than": f"{m.drift.max_drifted_share:.0%} of features drift",
    }
    if m.outcomes is not None:
        out["realised performance"] = f"after a label delay of {m.outcomes.label_delay_days} days"
        if m.outcomes.floors:
            out["realised floors"] = ", ".join(f"{k} {v}" for k, v in m.outcomes.floors.items())
    out["retrain request"] = (
        f"{m.retrain.breached_windows} of the last {m.retrain.of_last} windows breached" if m.retrain.enabled else "off"
    )
    return out


def gate_pack(state: "RunState", verdict: "Verdict", record: "Record", cand: "ModelEvaluation") -> dict[str, Any]:
    """The pack of a gate decision in this run (plain, JSON-safe data)."""
    settings, env = state.settings, state.env
    card = settings.model_card
    catalog = state.gold.catalog if state.gold is not None else None
    details = record.details or {}
    labels = np.asarray(cand.labels if cand.labels is not None else [], dtype=float)
    sdoh = set(card.social_determinant_groups)
    groups = dict(getattr(catalog, "groups", {}) or {})
    data = settings.project.data
    train = state.candidate
    contract = None
    report = state.contract_report
    if report is not None and hasattr(report, "to_dict"):
        rep = report.to_dict()
        violations = rep.get("violations", [])
        contract = {
            "status": "PASS" if rep.get("ok") else "FAIL",
            "checks": sum(int(t.get("checked_rules", 0) or 0) for t in rep.get("tables", {}).values()),
            "violations": len(violations),
            "warnings": 0,
            "rows": [
                [t_name, f"{t.get('checked_rules', 0)} rule(s)", "ok", f"{t.get('rows')} rows"]
                for t_name, t in sorted(rep.get("tables", {}).items())
            ]
            + [[v.get("table"), v.get("rule"), "VIOLATION", str(v.get("observed"))] for v in violations[:50]],
        }
    champion = record.champion_version
    pack = {
        "decision": {
            "kind": "gate",
            "verdict": record.verdict,
            "record_id": record.record_id,
            "created_at": record.created_at,
            "registered_model": state.model_name,
            "environment": env,
            "candidate_version": record.candidate_version,
            "champion_version": champion,
            "actor": record.actor,
            "summary": verdict.summary(),
        },
        "card": card.model_dump(mode="json"),
        "data": {
            "snapshot_id": getattr(catalog, "snapshot_id", None),
            "snapshot_date": getattr(catalog, "snapshot_date", None),
            "rows": getattr(catalog, "row_count", None),
            "source": getattr(catalog, "source", None),
            "evaluation_rows": int(labels.size),
            "evaluation_positives": int(labels.sum()) if labels.size else 0,
            "evaluation_rows_sha256": getattr(train, "evaluation_rows_sha256", None),
            "contract": contract,
        },
        "features": {
            "count": len(state.gold.feature_columns) if state.gold is not None else 0,
            "groups": [
                {"group": g, "features": len(cols), "social_determinant": g in sdoh}
                for g, cols in sorted(groups.items())
            ],
            "excluded_columns": sorted(
                {data.key_column, data.label_column, *data.subgroup_columns} - {None}  # type: ignore[arg-type]
            )
            + ([f"{len(data.phi_columns)} PHI column(s), which never leave bronze"] if data.phi_columns else []),
        },
        "training": {
            "estimator": settings.training.algorithm,
            "search": f"Hyperopt TPE on {settings.training.search_metric}"
            if settings.training.search_space
            else "none",
            "evaluations": settings.training.max_evals if settings.training.search_space else 1,
            "trained": None if train is None else not (train.reused or train.resumed),
            "run_id": getattr(train, "run_id", None),
            "seconds": round(sum((getattr(train, "timings", {}) or {}).values()), 1) if train is not None else None,
            "params": dict(getattr(train, "best_params", {}) or {}),
        },
        "performance": performance(cand, settings, env),
        "subgroups": subgroups(cand, verdict, settings, env),
        "gate": {
            "comparison": verdict.to_dict().get("comparison"),
            "reasons": [r.to_dict() for r in verdict.reasons],
            "policy_hash": record.policy_hash,
            "mode": verdict.mode,
        },
        "approvals": {
            "policy": details.get("approvals"),
            "policy_hash": details.get("approvals_policy_hash"),
            "policy_source": details.get("policy_source"),
            "ticket": details.get("ticket"),
            "records": [],
            "assigned": {},
        },
        "rollback": {"restores": champion}
        if champion is not None
        else {
            "note": "first champion: there is no earlier version to roll back to (a rollback would need --to-version)"
        },
        "monitoring": monitoring_summary(settings),
        "lineage": {
            "commit": state.event.commit,
            "tree": getattr(state.plan.event, "tree_sha", None),
            "config hash": settings.config_hash,
            "gate policy sha256": record.policy_hash,
            "approvals policy sha256": details.get("approvals_policy_hash"),
            "data snapshot": getattr(catalog, "snapshot_id", None),
            "content key": getattr(train, "content_key", None),
            "training run": state.registry.run_url(train.run_id) if train is not None else None,
            "audit record": f"seq {record.seq}, sha256 {record.hash}",
            "CI run": state.event.run_url,
        },
        "images": ["calibration", "roc", "pr"] if labels.size and labels.min() != labels.max() else [],
    }
    return _clean(pack)


def with_approvals(pack: Mapping[str, Any], chain: Sequence["Record"], decision_id: str) -> dict[str, Any]:
    """``pack`` with the approvals recorded so far for ``decision_id`` and their sign-off by role."""
    out = json.loads(json.dumps(pack))
    recs = [r for r in chain if r.kind == "approval" and r.decision_id == decision_id]
    out["approvals"]["records"] = [
        {
            **{k: v for k, v in (r.details.get("identity") or {"name": r.actor}).items()},
            "roles": r.details.get("roles", []),
            "ticket": r.details.get("ticket"),
            "at": r.created_at,
        }
        for r in recs
    ]
    policy_data = out["approvals"].get("policy")
    if policy_data:
        policy = signoff.Policy.from_dict(policy_data)
        who = [signoff.approver_of(r.details or {}, r.actor) for r in recs]
        out["approvals"]["assigned"] = {
            k: list(v) for k, v in signoff.sign_off(policy, signoff.counted_approvers(policy, who)).assigned.items()
        }
    return out


def log_pack(
    registry: "Registry",
    settings: "Settings",
    env: str,
    pack: Mapping[str, Any],
    images: Mapping[str, bytes] | None = None,
) -> tuple[str, str | None]:
    """Log ``pack`` (markdown, HTML, JSON, plots) as one MLflow run tagged with its version.

    Returns:
        ``(run_id, url)``; the version's ``promote.evidence_run`` tag points at the newest pack.
    """
    from promoter.registry.tracking import training_run
    from promoter.report import evidence as render

    d = pack["decision"]
    version = d["candidate_version"]
    model = d["registered_model"]
    with tempfile.TemporaryDirectory(prefix="promote-evidence-") as tmp:
        folder = Path(tmp) / "evidence"
        (folder / "plots").mkdir(parents=True)
        for key, png in (images or {}).items():
            (folder / "plots" / f"{key}.png").write_bytes(png)
        (folder / "evidence.md").write_text(render.markdown(pack))
        (folder / "evidence.html").write_text(render.html_document(pack, images))
        (folder / "evidence.json").write_text(json.dumps(pack, indent=1, sort_keys=True, default=str))
        run_tags = {
            "promote.kind": "evidence",
            "promote.registered_model": model,
            "promote.model_version": str(version),
            "promote.decision_kind": str(d["kind"]),
            "promote.decision_id": str(d.get("record_id") or ""),
            "promote.verdict": str(d.get("verdict") or ""),
        }
        name = f"evidence-{env}-v{version}-{d['kind']}-{str(d.get('record_id') or '')[:8]}"
        with training_run(registry, registry.experiment_name(settings, env), name, run_tags) as run:
            run.log_artifacts(Path(tmp))
            run_id = run.run_id
    registry.set_version_tags(model, int(version), {EVIDENCE_RUN_TAG: run_id})
    return run_id, registry.run_url(run_id)


def read_pack(registry: "Registry", model: str, version: int) -> dict[str, Any] | None:
    """The newest pack logged for ``model`` version ``version`` (``None`` when there is none)."""
    from promoter.registry.tracking import read_run_json

    run_id = registry.version_info(model, version).tags.get(EVIDENCE_RUN_TAG)
    if not run_id:
        return None
    try:
        return read_run_json(registry, run_id, PACK_FILE)
    except Exception:  # noqa: BLE001 - an unreadable pack is rebuilt from what the decision knows
        return None


def decision_pack(
    registry: "Registry",
    settings: "Settings",
    env: str,
    record: "Record",
    chain: Sequence["Record"],
    *,
    version: int,
    decision_id: str | None,
    champion_after: int | None,
    restores: int | None = None,
) -> dict[str, Any]:
    """The pack of an approval or a rollback: the version's newest pack, brought up to this record."""
    base = read_pack(registry, record.registered_model, version) or {
        "decision": {},
        "card": settings.model_card.model_dump(mode="json"),
        "approvals": {"records": [], "assigned": {}},
        "monitoring": monitoring_summary(settings),
        "lineage": {},
    }
    pack = with_approvals(base, chain, decision_id) if decision_id else json.loads(json.dumps(base))
    before = pack.get("decision") or {}
    pack["decision"] = {
        **before,
        "kind": record.kind,
        "verdict": record.verdict or before.get("verdict"),
        "gate_record_id": before.get("gate_record_id") or before.get("record_id"),
        "record_id": record.record_id,
        "created_at": record.created_at,
        "registered_model": record.registered_model,
        "environment": env,
        "candidate_version": version,
        "champion_after": champion_after,
        "actor": record.actor,
    }
    if restores is not None or record.kind == "rollback":
        pack["rollback"] = {
            "restores": restores,
            "note": (record.details or {}).get("reason"),
        }
    pack.setdefault("lineage", {})["audit record"] = f"seq {record.seq}, sha256 {record.hash}"
    pack["images"] = []
    return _clean(pack)
