"""Steps ``expectations`` (absolute floors, staging) and ``gate`` (candidate vs champion, prod).

Both score the models they judge on this run's evaluation rows with the same code
(invariant 3) and append one gate record with every reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promoter import errors
from promoter.app.recording import decision_id
from promoter.app.state import GateState, RunState, StepOutcome
from promoter.app.steps.data import load_gold
from promoter.core import approvals as approvals_policy
from promoter.core import gate as gating
from promoter.core import tags

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.audit import Record
    from promoter.core.gate import ModelEvaluation, Verdict


def evaluate(state: RunState, version: int) -> "ModelEvaluation":
    """Score one registered version on this run's evaluation rows (the same code for every model)."""
    from pipelines.train import evaluate_model_with_groups

    gold = load_gold(state)
    model = state.registry.load_model(state.model_name, version)
    result, (ids, labels, scores), groups = evaluate_model_with_groups(model, gold.df, state.settings)
    return gating.ModelEvaluation(
        version=version,
        metrics=dict(result.metrics),
        subgroup_metrics=result.subgroup_metrics,
        scores=scores,
        labels=labels,
        ids=ids,
        row_groups=groups,  # per-row subgroup labels (gold columns, never PHI) for the fairness intervals
    )


def candidate_evaluation(state: RunState) -> "ModelEvaluation":
    if state.candidate is None:
        raise errors.PromoteError("no candidate: the plan has no train step before this one")
    if state.candidate_eval is None:
        state.candidate_eval = evaluate(state, state.candidate.version)
    return state.candidate_eval


def _phi_found(state: RunState) -> dict[str, Any]:
    """The ``phi`` rule's inputs: the PHI scan of the candidate (``steps.phi``) and what it read.

    The selected features are checked against the PHI column names too (upstream refuses them).
    """
    from promoter.app.steps import phi

    if not phi.enabled(state):
        return {"phi_found": None}
    names = {c.lower() for c in state.settings.project.data.phi_columns}
    found = [f"feature {c}: is a PHI column" for c in load_gold(state).feature_columns if c.lower() in names]
    scan = phi.scan_candidate(state)
    return {"phi_found": found + scan.lines(), "phi_scanned": scan.summary.text()}


def _policy(state: RunState):
    return state.settings.promotion.policy(state.env)


def _set_verdict(state: RunState, verdict: "Verdict") -> None:
    state.result.verdict = verdict.to_dict()


def expectations(state: RunState) -> StepOutcome:
    """The candidate's absolute floors and ceilings; PASS makes it the ``challenger``."""
    policy = _policy(state)
    cand = candidate_evaluation(state)
    version = state.candidate.version  # type: ignore[union-attr] - candidate_evaluation checked it
    verdict = gating.decide(policy, cand, None, **_phi_found(state))
    _set_verdict(state, verdict)
    phash = gating.policy_hash(policy)
    rid = decision_id("expectations", state.env, version, phash, state.event.kind, state.event.pr_number)
    rec = state.recorder.record(
        "gate",
        record_id=rid,
        candidate_version=version,
        champion_version=None,
        metrics=dict(cand.metrics),
        policy_hash=phash,
        verdict=verdict.status,
        reasons=[r.to_dict() for r in verdict.reasons],
        details={
            "check": "expectations",
            "mode": verdict.mode,
            "approvals_required": state.settings.promotion.approval(state.env).count,
        },
    )
    state.gate = GateState(champion_version=None, verdict=verdict, record=rec)
    state.result.decision_id = rec.record_id
    ok = verdict.status == gating.PASS
    state.registry.set_version_tags(
        state.model_name, version, {tags.EXPECTATIONS: "PASS" if ok else "FAIL", tags.DECISION_ID: rec.record_id}
    )
    if ok:
        state.registry.set_alias(state.model_name, tags.CHALLENGER, version)
    elif verdict.blocking:
        raise errors.GateRejected(
            f"expectations failed for {state.model_name} version {version}: "
            + "; ".join(r.message for r in verdict.failed)
        )
    return StepOutcome(verdict.summary() + (" -> alias 'challenger'" if ok else ""))


def gate(state: RunState) -> StepOutcome:
    """Candidate and champion on the same evaluation rows: the verdict with every reason."""
    return gate_against(state, state.registry.get_alias(state.model_name, tags.CHAMPION))


def gate_against(state: RunState, champion_version: int | None) -> StepOutcome:
    """Judge the candidate against ``champion_version`` and record the decision."""
    if state.candidate is None:
        raise errors.PromoteError("no candidate: the plan has no train step before the gate")
    cand_version = state.candidate.version
    approval_cfg = state.settings.promotion.approval(state.env)
    approvals = approval_cfg.count
    signoff = approvals_policy.policy_of(approval_cfg)
    signoff_hash = approvals_policy.policy_hash(signoff)
    state.gate = GateState(champion_version=champion_version, approvals_required=approvals)
    if champion_version is not None:
        info = state.registry.version_info(state.model_name, champion_version)
        state.result.champion = {
            "version": champion_version,
            "run_id": info.run_id,
            "run_url": state.registry.run_url(info.run_id),
        }
    if champion_version == cand_version:
        state.result.notes.append(f"version {cand_version} is already the champion: nothing to promote")
        return StepOutcome.skipped(f"version {cand_version} is already champion")
    policy = _policy(state)
    cand = candidate_evaluation(state)
    champ = evaluate(state, champion_version) if champion_version is not None else None
    verdict = gating.decide(policy, cand, champ, **_phi_found(state))
    _set_verdict(state, verdict)
    phash = gating.policy_hash(policy)
    # a different approvals policy or ticket is a different decision (both are recorded with it)
    ticket = state.ticket.to_dict() if state.ticket is not None else None
    rid = decision_id(
        "gate", state.env, cand_version, champion_version, phash, signoff_hash, ticket["id"] if ticket else None
    )
    rec = state.recorder.record(
        "gate",
        record_id=rid,
        candidate_version=cand_version,
        champion_version=champion_version,
        metrics={"candidate": dict(cand.metrics), "champion": dict(champ.metrics) if champ else None},
        policy_hash=phash,
        verdict=verdict.status,
        reasons=[r.to_dict() for r in verdict.reasons],
        details={
            "mode": verdict.mode,
            "first_version": verdict.first_version,
            "bootstrap": verdict.to_dict().get("bootstrap"),
            "approvals_required": approvals,
            # the policy in force: the one committed where this run's config came from, never
            # the approver's working tree (``promote approve`` decides under this one)
            "approvals": signoff.to_dict(),
            "approvals_policy_hash": signoff_hash,
            "change_ticket_policy": approval_cfg.change_ticket.model_dump(mode="json"),
            "ticket": ticket,
            "policy_source": state.plan.event.commit,
        },
    )
    state.gate = GateState(champion_version=champion_version, verdict=verdict, record=rec, approvals_required=approvals)
    state.result.decision_id = rec.record_id
    floors_ok = all(r.passed for r in verdict.reasons if r.rule.startswith(("floor", "ceiling")))
    state.registry.set_version_tags(
        state.model_name, cand_version, {tags.VERDICT: verdict.status, tags.DECISION_ID: rec.record_id}
    )
    if floors_ok:
        state.registry.set_alias(state.model_name, tags.CHALLENGER, cand_version)
    if state.env == state.settings.promotion.prod_environment:
        log_evidence(state, verdict, rec, cand)
    return StepOutcome(verdict.summary())


def log_evidence(state: RunState, verdict: "Verdict", record: "Record", cand: "ModelEvaluation") -> None:
    """The release evidence pack of a prod gate decision, logged with the candidate (a failure is a warning)."""
    import tempfile

    from pipelines import plots
    from promoter.app import evidence

    try:
        logged = evidence.read_pack(state.registry, state.model_name, record.candidate_version)
        if logged and logged.get("decision", {}).get("record_id") == record.record_id:
            return  # a re-run of the same decision: its pack is logged already
        pack = evidence.gate_pack(state, verdict, record, cand)
        images: dict[str, bytes] = {}
        if pack["images"] and cand.labels is not None and cand.scores is not None:
            with tempfile.TemporaryDirectory(prefix="promote-evidence-plots-") as tmp:
                images = plots.evaluation_pngs(cand.labels, cand.scores, tmp)
        run_id, url = evidence.log_pack(state.registry, state.settings, state.env, pack, images)
        url = url or f"runs:/{run_id}/evidence/evidence.html"
    except Exception as exc:  # noqa: BLE001 - the decision is recorded; the pack is its documentation
        state.result.notes.append(f"the evidence pack could not be logged: {type(exc).__name__}: {exc}")
        return
    state.result.links["evidence pack"] = url
    state.progress(f"      evidence pack logged: {url}")
