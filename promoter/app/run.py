"""apply(plan): the one place that acts, through the adapters.

Pure decisions live elsewhere (``plan.build``, ``gate.decide``); this module runs the steps a
plan names, in order, against Spark (``pipelines``), MLflow (``registry``) and the audit chain
(``audit``), and returns a :class:`RunResult` that the reporters render.

Guarantees (DESIGN invariants):
  * only the plan's environment is touched; a PR never moves a champion;
  * a version becomes champion only through a PASS record, an approved NEEDS_APPROVAL record,
    or an explicit rollback record;
  * candidate and champion are scored on the same evaluation rows, in this run, by the same code;
  * the whole run for one registered model holds a registry lock, and the champion is re-read
    just before the alias moves (a changed champion means the gate runs again);
  * re-running an event reuses the registered version (content key) and the stored decision
    (deterministic record ids), so nothing is duplicated.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from promoter import errors
from promoter.core import tags
from promoter.config import Settings
from promoter.core.events import Event
from promoter.core.plan import Plan

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.audit import AuditStore, Record
    from promoter.core.gate import ModelEvaluation, Verdict
    from promoter.registry import Registry

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    """Default progress sink: one line on stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- result

@dataclass
class StepResult:
    name: str
    reason: str
    status: str = "pending"   # done | skipped | failed | pending
    detail: str = ""
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason, "status": self.status, "detail": self.detail,
                "seconds": None if self.seconds is None else round(self.seconds, 2)}


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
    decision_id: str | None = None
    champion_moved: bool = False
    exit_code: int = 0
    error: dict[str, Any] | None = None
    links: dict[str, str] = field(default_factory=dict)
    scored_rows: int | None = None
    notes: list[str] = field(default_factory=list)
    nothing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.to_dict(), "environment": self.environment,
            "registered_model": self.registered_model, "steps": [s.to_dict() for s in self.steps],
            "candidate": self.candidate, "champion": self.champion, "verdict": self.verdict,
            "decision_id": self.decision_id, "champion_moved": self.champion_moved,
            "exit_code": self.exit_code, "error": self.error, "links": self.links,
            "scored_rows": self.scored_rows, "notes": self.notes, "nothing_to_do": self.nothing,
        }


# --------------------------------------------------------------------------- helpers

def decision_id(*parts: Any) -> str:
    """A deterministic id: the same inputs (a re-run of the same event) give the same id."""
    blob = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def wide_settings(settings: Settings) -> Settings:
    """``settings`` with every mapped feature group selected: the gold table every model reads."""
    fs = settings.feature_selection
    wide = fs.model_copy(update={"include_groups": list(settings.feature_mappings.groups), "exclude_groups": [],
                                 "exclude_features": []})
    return settings.model_copy(update={"feature_selection": wide})


def selected_columns(catalog: Any, settings: Settings) -> list[str]:
    """The candidate's inputs: the gold columns of the selected groups and features, in gold order.

    A dropped feature takes its missing-indicator column (``<name>__missing``) with it.
    """
    fs = settings.feature_selection
    groups = list(fs.include_groups) or list(catalog.groups)
    chosen = {c for g in groups if g not in set(fs.exclude_groups) for c in catalog.groups.get(g, [])}
    chosen |= {c for c in catalog.feature_columns
               if c in set(fs.include_features) or c.split("__missing")[0] in set(fs.include_features)}
    dropped = set(fs.exclude_features)
    return [c for c in catalog.feature_columns if c in chosen and c not in dropped
            and c.split("__missing")[0] not in dropped]


def phi_in_columns(columns: list[str], settings: Settings) -> list[str]:
    """Configured PHI column names that appear among ``columns`` (features, signature, outputs)."""
    phi = {c.lower() for c in settings.project.data.phi_columns}
    return sorted(c for c in columns if c.lower() in phi)


def hold_state(records: list["Record"]) -> dict[str, Any] | None:
    """The active hold of a chain (set by a rollback), or ``None``. Pure over records."""
    state = None
    for r in records:
        if r.kind == "hold":
            state = {"seq": r.seq, "by": r.actor, "reason": r.details.get("reason", ""), "record_id": r.record_id}
        elif r.kind in ("release_hold",):
            state = None
        elif r.kind == "alias_move" and r.details.get("approved") and state is not None:
            state = None  # an approved promotion lifts the hold
    return state


def approvals_for(records: list["Record"], decision: str) -> list["Record"]:
    """Approval records bound to ``decision``, one per approver (the first counts)."""
    seen: dict[str, "Record"] = {}
    for r in records:
        if r.kind == "approval" and r.decision_id == decision and r.actor not in seen:
            seen[r.actor] = r
    return list(seen.values())


# --------------------------------------------------------------------------- the runner

class Runner:
    """Carries out one plan. Build it with :func:`apply`."""

    def __init__(self, plan: Plan, settings: Settings, *, registry: "Registry", audit_store: "AuditStore",
                 repo_path: Path, policy_settings: Settings | None = None, progress: Progress = stderr_progress,
                 clock: Callable[[], datetime] = utc_now, score_date: date | None = None,
                 spark: Any = None) -> None:
        if plan.environment is None or settings.env != plan.environment:
            raise errors.PromoteError("runner needs settings loaded for the plan's environment")
        self.plan = plan
        self.event = plan.event
        self.env = plan.environment
        self.settings = settings
        self.policy_settings = policy_settings or settings
        self.policy = self.policy_settings.promotion.policy(self.env)
        self.approvals_required = self.policy_settings.promotion.approval(self.env).required
        self.registry = registry
        self.audit = audit_store
        self.repo_path = repo_path
        self.progress = progress
        self.clock = clock
        self.score_date = score_date
        self._spark = spark
        self.model_name = plan.registered_model or settings.model_name_for(self.env)
        self.result = RunResult(event=self.event, environment=self.env, registered_model=self.model_name,
                                steps=[StepResult(s.name, s.reason) for s in plan.steps],
                                notes=list(plan.notes))
        # filled as steps run
        self.contract_report: Any = None
        self.catalog: Any = None
        self.gold_df: Any = None
        self.feature_columns: list[str] = []
        self.train: Any = None
        self.candidate_eval: "ModelEvaluation | None" = None
        self.verdict: "Verdict | None" = None
        self.gate_record: "Record | None" = None
        self.gated_champion: int | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def spark(self) -> Any:
        if self._spark is None:
            from pipelines.session import from_settings

            self.progress("starting Spark ({})".format(self.settings.project.spark.master))
            self._spark = from_settings(self.settings.project.spark)
        return self._spark

    def now_iso(self) -> str:
        return self.clock().astimezone(timezone.utc).isoformat(timespec="seconds")

    def record(self, kind: str, *, record_id: str | None = None, **fields: Any) -> "Record":
        from promoter.core import audit

        rec = audit.append(self.audit, kind=kind, environment=self.env, created_at=self.now_iso(),
                           record_id=record_id, registered_model=self.model_name,
                           actor=fields.pop("actor", None) or self.event.actor or "unknown",
                           event=self.event.to_dict(), commit=self.event.commit, **fields)
        export_audit(self.settings, self.audit)
        return rec

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        steps = {s.name: s for s in self.result.steps}
        names = [s.name for s in self.result.steps]
        total = len(names)
        lock_needed = any(n in names for n in ("train", "promote", "gate", "rollback"))
        lock = self.registry.lock(f"run.{self.model_name}", timeout_seconds=3 * 3600) if lock_needed else None
        try:
            if lock is not None:
                # say so only when another run holds it (a retried CI job, a parallel release)
                asked = time.monotonic()
                notice = threading.Timer(2.0, self.progress, [f"waiting for the {self.model_name} run lock: "
                                                              "another run of this model is in progress"])
                notice.daemon = True
                notice.start()
                try:
                    lock.__enter__()
                finally:
                    notice.cancel()
                if time.monotonic() - asked > 2.0:
                    self.progress(f"got the {self.model_name} run lock after {time.monotonic() - asked:.0f}s")
            for i, name in enumerate(names, 1):
                step = steps[name]
                if step.status != "pending":
                    continue
                self.progress(f"[{i}/{total}] {name}: {step.reason}")
                started = time.monotonic()
                try:
                    detail = getattr(self, f"step_{name}")(steps)
                except errors.PromoteError as exc:
                    step.status = "failed"
                    step.detail = str(exc)
                    step.seconds = time.monotonic() - started
                    for later in names[i:]:
                        if steps[later].status == "pending":
                            steps[later].status = "skipped"
                            steps[later].detail = f"not run: {name} stopped the run"
                    raise
                step.seconds = time.monotonic() - started
                if step.status == "pending":
                    step.status = "done"
                if detail:
                    step.detail = detail
                took = f" ({step.seconds:.1f}s)"
                self.progress(f"      {step.status}{took}: {step.detail}" if step.detail else f"      {step.status}{took}")
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)
        return self.result

    # ------------------------------------------------------------------ data
    def step_contracts(self, steps: dict[str, StepResult]) -> str:
        from pipelines import contracts

        self.contract_report = contracts.check(self.spark, self.settings)
        contracts.enforce(self.contract_report)
        return (f"{len(self.settings.contracts.tables)} table contract(s) hold (version "
                f"{self.settings.contracts.version}, checked {self.contract_report.checked_at})")

    def _ensure_gold(self) -> None:
        if self.gold_df is None:
            from pipelines import features

            self.gold_df, self.catalog = features.load_gold(self.spark, wide_settings(self.settings))
            self.feature_columns = selected_columns(self.catalog, self.settings)

    def step_features(self, steps: dict[str, StepResult]) -> str:
        from pipelines import features

        # Gold holds every mapped group; the selection picks the candidate's inputs. So the
        # champion, trained on another selection, is scored on the same rows from the same table.
        wide = wide_settings(self.settings)
        features.build(self.spark, wide)
        self.gold_df, self.catalog = features.load_gold(self.spark, wide)
        self.feature_columns = selected_columns(self.catalog, self.settings)
        return (f"gold snapshot {self.catalog.snapshot_id[:12]} (built {self.catalog.built_at}): "
                f"{self.catalog.row_count} rows, {len(self.catalog.feature_columns)} features, "
                f"{len(self.feature_columns)} selected")

    # ------------------------------------------------------------------ training
    def step_train(self, steps: dict[str, StepResult]) -> str:
        from pipelines.train import train_and_register
        from promoter.registry import Lineage

        self._ensure_gold()
        lineage = Lineage.from_event(self.event, self.settings, data_snapshot=self.catalog.snapshot_id,
                                     environment=self.env)
        self.train = train_and_register(self.spark, self.settings, lineage, self.gold_df, self.catalog,
                                        self.registry, contract_report=self.contract_report,
                                        feature_columns=self.feature_columns)
        tr = self.train
        self.result.candidate = {"version": tr.version, "run_id": tr.run_id,
                                 "run_url": self.registry.run_url(tr.run_id), "reused": tr.reused,
                                 "metrics": dict(tr.metrics)}
        self.result.links["mlflow"] = self.registry.run_url(tr.run_id)
        for name in ("evaluate", "register"):
            if name in steps:
                steps[name].status = "done"
        what = "reused" if tr.reused else "trained and registered"
        if "register" in steps:
            steps["register"].detail = f"{what} {self.model_name} version {tr.version}"
        primary = self.policy.primary_metric
        if "evaluate" in steps:
            steps["evaluate"].detail = f"{primary} {tr.metrics.get(primary, float('nan')):.4f} on held-out rows"
        return f"{what} version {tr.version} (run {tr.run_id[:8]})"

    def step_evaluate(self, steps: dict[str, StepResult]) -> str:
        return "evaluated with training"

    def step_register(self, steps: dict[str, StepResult]) -> str:
        return "registered with training"

    def _evaluate(self, version: int) -> "ModelEvaluation":
        """Score one registered version on this run's evaluation rows (same code for every model)."""
        from pipelines.train import evaluate_model
        from promoter.core.gate import ModelEvaluation

        self._ensure_gold()
        model = self.registry.load_model(self.model_name, version)
        result, (ids, labels, scores) = evaluate_model(model, self.gold_df, self.settings)
        return ModelEvaluation(version=version, metrics=dict(result.metrics),
                               subgroup_metrics=result.subgroup_metrics, scores=scores, labels=labels, ids=ids)

    def _candidate_eval(self) -> "ModelEvaluation":
        if self.candidate_eval is None:
            if self.train is None:
                raise errors.PromoteError("no candidate: the plan has no train step before the gate")
            self.candidate_eval = self._evaluate(self.train.version)
        return self.candidate_eval

    def _phi_found(self) -> list[str]:
        return phi_in_columns(list(self.feature_columns), self.settings)

    # ------------------------------------------------------------------ staging expectations
    def step_expectations(self, steps: dict[str, StepResult]) -> str:
        from promoter.core import gate

        cand = self._candidate_eval()
        verdict = gate.decide(self.policy, cand, None, phi_found=self._phi_found())
        self._set_verdict(verdict)
        rid = decision_id("expectations", self.env, self.train.version, gate.policy_hash(self.policy),
                          self.event.kind, self.event.pr_number)
        rec = self.record("gate", record_id=rid, candidate_version=self.train.version, champion_version=None,
                          metrics=dict(cand.metrics), policy_hash=gate.policy_hash(self.policy),
                          verdict=verdict.status, reasons=[r.to_dict() for r in verdict.reasons],
                          details={"check": "expectations", "mode": verdict.mode})
        self.gate_record = rec
        self.result.decision_id = rec.record_id
        ok = verdict.status == gate.PASS
        self.registry.set_version_tags(self.model_name, self.train.version,
                                       {tags.EXPECTATIONS: "PASS" if ok else "FAIL", tags.DECISION_ID: rec.record_id})
        if ok:
            self.registry.set_alias(self.model_name, tags.CHALLENGER, self.train.version)
        elif verdict.blocking:
            raise errors.GateRejected(f"expectations failed for {self.model_name} version {self.train.version}: "
                                      + "; ".join(r.message for r in verdict.failed))
        return verdict.summary() + (" -> alias 'challenger'" if ok else "")

    def _set_verdict(self, verdict: "Verdict") -> None:
        self.verdict = verdict
        self.result.verdict = verdict.to_dict()

    # ------------------------------------------------------------------ prod gate
    def step_gate(self, steps: dict[str, StepResult]) -> str:
        return self._gate_against(self.registry.get_alias(self.model_name, tags.CHAMPION))

    def _gate_against(self, champion_version: int | None) -> str:
        from promoter.core import gate

        cand_version = self.train.version
        self.gated_champion = champion_version
        if champion_version is not None:
            self.result.champion = self._version_summary(champion_version)
        if champion_version == cand_version:
            self.result.notes.append(f"version {cand_version} is already the champion: nothing to promote")
            self.verdict = None
            return f"version {cand_version} is already champion"
        cand = self._candidate_eval()
        champ = self._evaluate(champion_version) if champion_version is not None else None
        verdict = gate.decide(self.policy, cand, champ, phi_found=self._phi_found())
        self._set_verdict(verdict)
        phash = gate.policy_hash(self.policy)
        rid = decision_id("gate", self.env, cand_version, champion_version, phash)
        rec = self.record("gate", record_id=rid, candidate_version=cand_version,
                          champion_version=champion_version,
                          metrics={"candidate": dict(cand.metrics),
                                   "champion": dict(champ.metrics) if champ else None},
                          policy_hash=phash, verdict=verdict.status,
                          reasons=[r.to_dict() for r in verdict.reasons],
                          details={"mode": verdict.mode, "first_version": verdict.first_version,
                                   "bootstrap": verdict.to_dict().get("bootstrap")})
        self.gate_record = rec
        self.result.decision_id = rec.record_id
        floors_ok = all(r.passed for r in verdict.reasons if r.rule.startswith(("floor", "ceiling")))
        self.registry.set_version_tags(self.model_name, cand_version,
                                       {tags.VERDICT: verdict.status, tags.DECISION_ID: rec.record_id})
        if floors_ok:
            self.registry.set_alias(self.model_name, tags.CHALLENGER, cand_version)
        return verdict.summary()

    # ------------------------------------------------------------------ approval and promotion
    def step_approval(self, steps: dict[str, StepResult]) -> str:
        return self._check_approvals()

    def _approvals_needed(self) -> int:
        from promoter.core import gate

        if self.verdict is None:
            return 0
        needed = gate.approvals_needed(self.verdict, self.approvals_required)
        if hold_state(self.audit.read_all(self.env)) is not None and self.verdict.status != gate.FAIL:
            needed = max(needed, 1)
        return needed

    def _check_approvals(self) -> str:
        needed = self._approvals_needed()
        if needed == 0 or self.gate_record is None:
            return "no approval needed"
        have = approvals_for(self.audit.read_all(self.env), self.gate_record.record_id)
        # the promote step waits (exit 4) when too few are recorded; this step only reports them
        return f"{len(have)} of {needed} approval(s) recorded"

    def step_promote(self, steps: dict[str, StepResult]) -> str:
        from promoter.core import gate

        if self.env != self.settings.promotion.prod_environment:
            return self._promote_non_prod()
        if self.verdict is None:
            return "nothing to promote"
        for _attempt in range(3):
            current = self.registry.get_alias(self.model_name, tags.CHAMPION)
            if current == self.gated_champion:
                break
            # invariant 6: another run moved the champion; decide again against the new one
            self.progress(f"      champion moved to version {current} since the gate: running the gate again")
            self._gate_against(current)  # the candidate's scored evaluation rows are reused
            if self.verdict is None:
                return "candidate is already champion"
        else:
            raise errors.PromoteError("the champion kept moving while this run tried to promote; re-run the event")
        verdict = self.verdict
        if verdict.status == gate.FAIL or (verdict.status == gate.NEEDS_APPROVAL and self._approvals_needed() == 0):
            if verdict.blocking:
                raise errors.GateRejected(f"{self.model_name} version {self.train.version}: {verdict.summary()}")
            return f"champion unchanged: {verdict.summary()} (mode {verdict.mode}: not blocking)"
        needed = self._approvals_needed()
        approvals = approvals_for(self.audit.read_all(self.env), self.gate_record.record_id)
        if len(approvals) < needed:
            steps["promote"].status = "pending"
            raise errors.AwaitingApproval(
                f"{self.model_name} version {self.train.version} needs {needed} approval(s), has {len(approvals)}: "
                f"promote approve --env {self.env} --version {self.train.version} --by NAME")
        moved = move_champion(self.registry, self.settings, self.model_name, self.train.version,
                              decision=self.gate_record.record_id, approved=bool(approvals),
                              record=self.record, expected_current=self.gated_champion)
        self.result.champion_moved = moved
        return (f"champion -> version {self.train.version}" if moved
                else f"version {self.train.version} already champion")

    def _promote_non_prod(self) -> str:
        """Staging: the candidate for merged code becomes champion once its expectations passed."""
        if self.train is None:
            return "nothing to promote"
        version = self.train.version
        info = self.registry.version_info(self.model_name, version)
        if info.tags.get(tags.EXPECTATIONS) == "FAIL":
            raise errors.GateRejected(f"{self.model_name} version {version} failed its expectations")
        decision = self.gate_record.record_id if self.gate_record else None
        moved = move_champion(self.registry, self.settings, self.model_name, version, decision=decision,
                              approved=False, record=self.record,
                              expected_current=self.registry.get_alias(self.model_name, tags.CHAMPION))
        self.result.champion_moved = moved
        return f"champion -> version {version}" if moved else f"version {version} already champion"

    # ------------------------------------------------------------------ scoring
    def step_score(self, steps: dict[str, StepResult]) -> str:
        # scoring uses whichever version is champion now (after a FAIL: the unchanged champion)
        summary = score_with_champion(self, self.score_date or self.clock().date())
        return summary

    def step_surveillance(self, steps: dict[str, StepResult]) -> str:
        from pipelines import surveillance

        self._ensure_gold()
        champion = self.registry.get_alias(self.model_name, tags.CHAMPION)
        day = self.score_date or self.clock().date()
        report = surveillance.surveil(self.spark, self.settings, self.gold_df, day)
        rid = decision_id("surveillance", self.model_name, champion, report.score_date, report.rows)
        self.record("surveillance", record_id=rid, champion_version=champion,
                    metrics=report.metrics(), verdict="ALERT" if report.alerts else "OK",
                    details=report.to_dict())
        if report.alerts:
            self.result.notes.extend(f"surveillance alert: {a}" for a in report.alerts)
        return report.summary()

    def step_report(self, steps: dict[str, StepResult]) -> str:
        return "reported"  # publishing happens after the run, whatever its outcome (see cli)

    def step_rollback(self, steps: dict[str, StepResult]) -> str:
        raise errors.InvalidInput("a rollback needs a person and a reason: "
                                  f"promote rollback --env {self.env} --by NAME --reason TEXT")

    # ------------------------------------------------------------------ helpers
    def _version_summary(self, version: int) -> dict[str, Any]:
        info = self.registry.version_info(self.model_name, version)
        return {"version": version, "run_id": info.run_id, "run_url": self.registry.run_url(info.run_id)}


# --------------------------------------------------------------------------- shared actions

def move_champion(registry: "Registry", settings: Settings, model_name: str, version: int, *, decision: str | None,
                  approved: bool, record: Callable[..., "Record"], expected_current: int | None,
                  kind: str = "alias_move", actor: str | None = None, extra: dict[str, Any] | None = None) -> bool:
    """Move ``champion`` to ``version`` (old champion -> ``previous``) and record it.

    Holds the alias lock and re-reads the champion first; returns ``False`` when ``version``
    already is champion (a re-run), raises when the champion is not ``expected_current``.
    """
    with registry.lock(f"alias.{model_name}", timeout_seconds=600):
        current = registry.get_alias(model_name, tags.CHAMPION)
        if current == version:
            return False
        if current != expected_current:
            raise errors.PromoteError(f"{model_name}: champion is version {current}, expected {expected_current}; "
                                      "another run moved it: re-run the event")
        if current is not None:
            registry.set_alias(model_name, tags.PREVIOUS, current)
        registry.set_alias(model_name, tags.CHAMPION, version)
        if settings.project.registry.use_stages:
            stage = "Production" if settings.env == settings.promotion.prod_environment else "Staging"
            registry.transition_stage(model_name, version, stage, archive_existing=True)
        rid = decision_id(kind, model_name, current, version, decision)
        registry.set_version_tags(model_name, version, {tags.DECISION_ID: decision or rid})
        record(kind, record_id=rid, candidate_version=version, champion_version=current, decision_id=decision,
               verdict="MOVED", actor=actor,
               details={"alias": tags.CHAMPION, "from": current, "to": version, "approved": approved, **(extra or {})})
    return True


def score_with_champion(runner: Runner, score_date: date) -> str:
    """Resolve and pin the champion, score the gold snapshot, write Delta, record the run."""
    from pipelines import score

    champion = runner.registry.get_alias(runner.model_name, tags.CHAMPION)
    if champion is None:
        raise errors.NotFound(f"{runner.model_name} has no champion yet: nothing to score with "
                              "(a release must promote one first)")
    runner._ensure_gold()
    info = runner.registry.version_info(runner.model_name, champion)
    model = runner.registry.load_model(runner.model_name, champion)
    res = score.score_population(runner.spark, model, runner.gold_df, score_date=score_date,
                                 model_name=runner.model_name, model_version=champion, run_id=info.run_id,
                                 settings=runner.settings, scored_at=runner.clock())
    runner.result.scored_rows = res.rows
    rid = decision_id("scoring", runner.model_name, champion, score_date.isoformat(), res.rows,
                      runner.catalog.snapshot_id)
    runner.record("scoring", record_id=rid, champion_version=champion, candidate_version=None,
                  verdict="SCORED", details={"score_date": score_date.isoformat(), "rows": res.rows,
                                             "tiers": res.tier_counts, "predictions": str(res.predictions_path),
                                             "snapshot": runner.catalog.snapshot_id})
    return f"scored {res.rows} members with version {champion} for {score_date.isoformat()}"


def export_audit(settings: Settings, store: "AuditStore") -> None:
    """Mirror every chain to the lake as a Delta table (the registry store stays the source of truth)."""
    from promoter.core import audit

    path = Path(settings.project.lake_root) / "audit" / "decisions"
    if "://" in settings.project.lake_root:
        path = f"{settings.project.lake_root.rstrip('/')}/audit/decisions"  # type: ignore[assignment]
    audit.export_delta(store.read_all(None), path)


def apply(plan: Plan, settings: Settings, **kwargs: Any) -> RunResult:
    """Carry out ``plan`` (see :class:`Runner` for the keyword arguments)."""
    return Runner(plan, settings, **kwargs).run()


# --------------------------------------------------------------------------- from event to result

@dataclass
class Prepared:
    """An event resolved to a plan, with the settings to run it and where the policy came from."""

    plan: Plan
    settings: Settings | None
    policy_settings: Settings | None
    notes: list[str] = field(default_factory=list)


def policy_from_target(event: Event, config_dir: Path, repo_path: Path, env: str,
                       head_settings: Settings) -> tuple[Settings, list[str]]:
    """Invariant 4: a PR's gate policy comes from its (protected) target branch, not its head.

    Reads ``configs/`` as committed on the target branch (locally, or ``origin/<target>``) and
    notes when the PR changes the policy: the change applies after merge.

    Raises:
        GitError: when the target branch cannot be read here (fetch it first).
    """
    from promoter import config, gitops

    target = event.target_branch or ""
    top = gitops.repo_root(repo_path)
    try:
        rel = Path(config_dir).resolve().relative_to(top)
    except ValueError:
        raise errors.GitError(f"{config_dir} is outside the git checkout {top}: cannot read the gate policy "
                              f"of target branch {target!r}") from None
    files = gitops.read_tree_files(top, target, rel.as_posix())
    if files is None:
        raise errors.GitError(f"cannot read target branch {target!r} to take the gate policy from it "
                              f"(in CI, fetch it first: git fetch origin {target})")
    if not files:
        raise errors.GitError(f"target branch {target!r} has no {rel.as_posix()}/ folder: no committed policy")
    settings = config.load(config.MappingSource(files, label=f"{target}:{rel.as_posix()}"), env)
    notes = [f"gate policy read from the target branch {target!r} (invariant: never from the PR head)"]
    if settings.promotion.model_dump() != head_settings.promotion.model_dump():
        notes.append("this pull request changes the promotion policy (promotion.yml); "
                     "the change applies after merge")
    return settings, notes


def prepare(event: Event, config_dir: str | Path, repo_path: str | Path = ".",
            expected_env: str | None = None) -> Prepared:
    """Resolve the environment, load its settings (and a PR's policy from the target branch), plan."""
    from promoter import config
    from promoter.core import plan as planning

    base = config.load(config_dir, None)
    first = planning.build(event, base)
    planning.check_expected_environment(first, expected_env, base)
    if first.environment is None:
        return Prepared(first, None, None)
    settings = config.load(config_dir, first.environment)
    policy_settings, notes = settings, []
    if event.is_pull_request:
        policy_settings, notes = policy_from_target(event, Path(config_dir), Path(repo_path), first.environment,
                                                    settings)
    the_plan = planning.build(event, settings)
    return Prepared(replace(the_plan, notes=tuple(list(the_plan.notes) + notes)), settings, policy_settings, notes)


def open_registry(settings: Settings) -> "Registry":
    from promoter.registry import Registry

    return Registry.from_settings(settings)


def execute(event: Event, *, config_dir: str | Path, repo_path: str | Path = ".", expected_env: str | None = None,
            dry_run: bool = False, progress: Progress = stderr_progress, score_date: date | None = None,
            render_plan: Callable[[Plan], None] | None = None, publish: bool = True, console: bool = True,
            clock: Callable[[], datetime] = utc_now, spark: Any = None) -> RunResult:
    """Everything `promote run` does for one event: plan, (stop if dry), apply, publish.

    Returns the result; re-raises the PromoteError that ended the run (after publishing), so the
    CLI maps it to the exit code in its one place.
    """
    try:
        prepared = prepare(event, config_dir, repo_path, expected_env)
    except errors.PromoteError as exc:
        # a config or event error is still a CI result: the annotation points at file and line
        if publish and not dry_run:
            from promoter.report import sinks

            failed = RunResult(event=event, environment=expected_env, registered_model=None,
                               exit_code=exc.exit_code, error=error_dict(exc))
            sinks.publish(failed.to_dict(), console=False)
            exc.result = failed  # type: ignore[attr-defined] - published: the CLI only prints the line
        raise
    the_plan = prepared.plan
    registry = store = None
    if not (the_plan.is_empty or dry_run or prepared.settings is None):
        # a real run: sharpen the plan's reasons with what the registry holds now
        from promoter.core import plan as planning

        registry = open_registry(prepared.settings)
        store = registry.audit_store()
        model = the_plan.registered_model or prepared.settings.model_name_for(the_plan.environment or "")
        snapshot = planning.RegistrySnapshot(champion_version=registry.get_alias(model, tags.CHAMPION),
                                             hold=hold_state(store.read_all(the_plan.environment)) is not None)
        the_plan = replace(planning.build(event, prepared.settings, snapshot), notes=the_plan.notes)
    if render_plan is not None:
        render_plan(the_plan)
    if the_plan.is_empty or dry_run or prepared.settings is None or registry is None or store is None:
        return RunResult(event=event, environment=the_plan.environment, registered_model=the_plan.registered_model,
                         steps=[StepResult(s.name, s.reason, "skipped", "dry run") for s in the_plan.steps],
                         notes=list(the_plan.notes), nothing=the_plan.nothing)
    settings = prepared.settings
    runner = Runner(the_plan, settings, registry=registry, audit_store=store, repo_path=Path(repo_path),
                    policy_settings=prepared.policy_settings, progress=progress, clock=clock, score_date=score_date,
                    spark=spark)
    return _finish(runner, publish=publish, console=console, progress=progress)


def _finish(runner: Runner, *, publish: bool, console: bool, progress: Progress) -> RunResult:
    """Run, publish the result wherever the CI provider offers (never failing), re-raise the failure."""
    failure: errors.PromoteError | None = None
    try:
        runner.run()
    except errors.PromoteError as exc:
        failure = exc
        runner.result.exit_code = exc.exit_code
        runner.result.error = error_dict(exc)
    result = runner.result
    if publish:
        from promoter.report import sinks

        sinks.publish(result.to_dict(), console=console)
    if failure is not None:
        failure.result = result  # type: ignore[attr-defined] - callers (demo, tests) read what ran
        raise failure
    return result


def error_dict(exc: errors.PromoteError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": str(exc), "kind": type(exc).__name__}
    for attr in ("file", "line", "column"):
        if getattr(exc, attr, None) is not None:
            out[attr] = getattr(exc, attr)
    return out


# --------------------------------------------------------------------------- approvals, rollback, holds

@dataclass
class Action:
    """The outcome of approve / rollback / release-hold, for the CLI to render."""

    message: str
    records: list[dict[str, Any]] = field(default_factory=list)
    champion_moved: bool = False
    waiting: bool = False


def _env_context(config_dir: str | Path, env: str) -> tuple[Settings, "Registry", "AuditStore", str]:
    from promoter import config

    settings = config.load(config_dir, env)
    registry = open_registry(settings)
    return settings, registry, registry.audit_store(), settings.model_name_for(env)


def _recorder(settings: Settings, store: "AuditStore", env: str, model_name: str, actor: str,
              clock: Callable[[], datetime]) -> Callable[..., "Record"]:
    from promoter.core import audit

    def record(kind: str, *, record_id: str | None = None, **fields: Any) -> "Record":
        fields.setdefault("actor", actor)
        who = fields.pop("actor") or actor
        rec = audit.append(store, kind=kind, environment=env, created_at=clock().astimezone(timezone.utc)
                           .isoformat(timespec="seconds"), record_id=record_id, registered_model=model_name,
                           actor=who, event={"kind": "manual", "provider": "cli", "actor": actor}, **fields)
        export_audit(settings, store)
        return rec

    return record


def approve(config_dir: str | Path, env: str, version: int, by: str, *, ticket: str | None = None,
            reason: str | None = None, clock: Callable[[], datetime] = utc_now) -> Action:
    """Record an approval bound to the newest gate decision for ``version``; move when enough.

    Raises:
        NotFound: no gate decision for that version.
        InvalidInput: the decision is a FAIL (never approvable), or the approver is not allowed.
        PromoteError: the champion moved since the decision (re-run the release).
    """
    settings, registry, store, model_name = _env_context(config_dir, env)
    if not by.strip():
        raise errors.InvalidInput("--by must name the approver")
    policy = settings.promotion.approval(env)
    if policy.approvers and by not in policy.approvers:
        raise errors.InvalidInput(f"{by!r} may not approve in {env} (promotion.yml approvals.{env}.approvers: "
                                  f"{', '.join(policy.approvers)})")
    records = store.read_all(env)
    gates = [r for r in records if r.kind == "gate" and r.candidate_version == version]
    if not gates:
        raise errors.NotFound(f"no gate decision for {model_name} version {version}: run the release first")
    decision = gates[-1]
    if decision.verdict == "FAIL":
        raise errors.InvalidInput(f"{model_name} version {version}: the gate said FAIL (decision "
                                  f"{decision.record_id[:12]}); a FAIL cannot be approved")
    record = _recorder(settings, store, env, model_name, by, clock)
    rid = decision_id("approval", decision.record_id, by)
    rec = record("approval", record_id=rid, candidate_version=version, champion_version=decision.champion_version,
                 decision_id=decision.record_id, verdict="APPROVED",
                 details={"ticket": ticket, "reason": reason})
    records = store.read_all(env)
    have = approvals_for(records, decision.record_id)
    needed = max(policy.required, 1 if decision.verdict == "NEEDS_APPROVAL" or hold_state(records) else 0)
    if len(have) < needed:
        return Action(f"approval recorded ({len(have)} of {needed}); waiting for more", [rec.to_dict()],
                      waiting=True)
    current = registry.get_alias(model_name, tags.CHAMPION)
    if current == version:
        return Action(f"approval recorded; version {version} is already champion", [rec.to_dict()])
    if current != decision.champion_version:
        raise errors.PromoteError(f"the champion is version {current} but the decision was made against "
                                  f"{decision.champion_version}: re-run the release so the gate compares "
                                  "against the current champion")
    moved = move_champion(registry, settings, model_name, version, decision=decision.record_id, approved=True,
                          record=record, expected_current=current, actor=by)
    return Action(f"approved by {', '.join(r.actor for r in have)}: champion -> version {version}",
                  [rec.to_dict()], champion_moved=moved)


def rollback(config_dir: str | Path, env: str, by: str, reason: str, *, to_version: int | None = None,
             clock: Callable[[], datetime] = utc_now) -> Action:
    """Move ``champion`` back (default: the ``previous`` alias), record it, and hold promotion."""
    settings, registry, store, model_name = _env_context(config_dir, env)
    if not by.strip() or not reason.strip():
        raise errors.InvalidInput("a rollback needs --by NAME and --reason TEXT")
    current = registry.get_alias(model_name, tags.CHAMPION)
    target = to_version if to_version is not None else registry.get_alias(model_name, tags.PREVIOUS)
    if target is None:
        raise errors.NotFound(f"{model_name} has no 'previous' version to roll back to; pass --to-version N")
    if current is None:
        raise errors.NotFound(f"{model_name} has no champion to roll back")
    if target == current:
        raise errors.InvalidInput(f"version {target} is already the champion of {model_name}")
    registry.version_info(model_name, target)  # raises NotFound for an unknown version
    record = _recorder(settings, store, env, model_name, by, clock)
    rid = decision_id("rollback", model_name, current, target, reason, clock().isoformat())
    with registry.lock(f"alias.{model_name}", timeout_seconds=600):
        if registry.get_alias(model_name, tags.CHAMPION) != current:
            raise errors.PromoteError("the champion moved while rolling back; look again and retry")
        registry.set_alias(model_name, tags.CHAMPION, target)
        registry.set_alias(model_name, tags.PREVIOUS, current)
        if settings.project.registry.use_stages:
            registry.transition_stage(model_name, target, "Production" if env == settings.promotion.prod_environment
                                      else "Staging", archive_existing=True)
        rec = record("rollback", record_id=rid, candidate_version=target, champion_version=current,
                     verdict="ROLLED_BACK", details={"reason": reason, "from": current, "to": target})
        registry.set_version_tags(model_name, target, {tags.DECISION_ID: rec.record_id})
    hold = record("hold", record_id=decision_id("hold", rec.record_id), decision_id=rec.record_id,
                  verdict="HOLD", details={"reason": f"rollback: {reason}"})
    return Action(f"champion of {model_name}: version {current} -> {target}; automatic promotion in {env} is on "
                  f"hold until `promote release-hold --env {env} --by NAME` or an approval",
                  [rec.to_dict(), hold.to_dict()], champion_moved=True)


def release_hold(config_dir: str | Path, env: str, by: str, reason: str | None = None,
                 clock: Callable[[], datetime] = utc_now) -> Action:
    """Lift the hold a rollback put on automatic promotion."""
    settings, registry, store, model_name = _env_context(config_dir, env)
    state = hold_state(store.read_all(env))
    if state is None:
        return Action(f"{env} has no hold on promotion: nothing to do")
    record = _recorder(settings, store, env, model_name, by, clock)
    rec = record("release_hold", record_id=decision_id("release_hold", state["record_id"]),
                 decision_id=state["record_id"], verdict="RELEASED", details={"reason": reason})
    return Action(f"hold released by {by}: automatic promotion in {env} resumes", [rec.to_dict()])


# --------------------------------------------------------------------------- scoring, history, verify

def score_only(config_dir: str | Path, env: str, *, repo_path: str | Path = ".", score_date: date | None = None,
               progress: Progress = stderr_progress, console: bool = True,
               clock: Callable[[], datetime] = utc_now) -> RunResult:
    """`promote score`: the daily batch run with the current champion of ``env``."""
    from promoter import config
    from promoter.core import events
    from promoter.core.plan import Step

    settings = config.load(config_dir, env)
    try:
        event = events.detect(repo_path=repo_path)
    except errors.InvalidInput:
        event = Event(kind="manual", provider="local", action="score")
    if event.kind in (None, "pull_request"):
        event = replace(event, kind="manual", action="score", nothing=None)
    model = settings.model_name_for(env)
    the_plan = Plan(event=event, environment=env, registered_model=model,
                    steps=(Step("score", f"score the population with the champion of {model}"),))
    registry = open_registry(settings)
    runner = Runner(the_plan, settings, registry=registry, audit_store=registry.audit_store(),
                    repo_path=Path(repo_path), progress=progress, clock=clock, score_date=score_date)
    return _finish(runner, publish=True, console=console, progress=progress)


def _all_envs(config_dir: str | Path, env: str | None) -> tuple[Settings, list[str]]:
    from promoter import config

    base = config.load(config_dir, env)
    return base, [env] if env else list(base.promotion.environments)


def read_history(config_dir: str | Path, env: str | None) -> list["Record"]:
    """Every record of one chain (or of all chains), oldest first."""
    settings, envs = _all_envs(config_dir, env)
    store = open_registry(settings).audit_store()
    out: list["Record"] = []
    for name in envs:
        out.extend(store.read_all(name))
    return out


def verify_audit(config_dir: str | Path, env: str | None) -> dict[str, Any]:
    """Verify each chain; returns {environment: VerifyResult}."""
    from promoter.core import audit

    settings, envs = _all_envs(config_dir, env)
    store = open_registry(settings).audit_store()
    return {name: audit.verify(store.read_all(name), head=store.head(name)) for name in envs}
