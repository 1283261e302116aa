"""Step ``train``: tune, fit, evaluate on the held-out rows, register (or reuse by content key).

Before a new version is registered, the PHI scan (``promoter.app.steps.phi``) reads what the
training run produced: signature, input example, logged files and the log lines so far.
"""

from __future__ import annotations

from typing import Any

from promoter.app.state import RunState, StepOutcome
from promoter.app.steps.data import load_gold


def train(state: RunState) -> StepOutcome:
    """Train from this branch's code and register the candidate in the environment's model."""
    from promoter.app.steps import phi
    from promoter.app.training import train_and_register
    from promoter.registry import Lineage

    gold = load_gold(state)
    lineage = Lineage.from_event(
        state.event, state.settings, data_snapshot=gold.catalog.snapshot_id, environment=state.env
    )
    tr = train_and_register(
        state.spark,
        state.settings,
        lineage,
        gold.df,
        gold.catalog,
        state.registry,
        contract_report=state.contract_report,
        feature_columns=gold.feature_columns,
        fit=state.pipeline("train"),
        trainer=state.settings.project.pipelines.train,
        before_register=(lambda run_id, uri: _scan_before_register(state, run_id, uri)) if phi.enabled(state) else None,
    )
    state.candidate = tr
    profiled = _profile_for_monitoring(state, tr)
    url = state.registry.run_url(tr.run_id)
    state.result.candidate = {
        "version": tr.version,
        "run_id": tr.run_id,
        "run_url": url,
        "reused": tr.reused,
        "metrics": dict(tr.metrics),
    }
    if url:
        state.result.links["mlflow"] = url
    primary = state.settings.promotion.policy(state.env).primary_metric
    what = (
        "reused"
        if tr.reused
        else "registered the model an earlier run logged as"
        if tr.resumed
        else "trained and registered"
    )
    return StepOutcome(
        f"{what} {state.model_name} version {tr.version} (run {tr.run_id[:8]}); held-out "
        f"{primary} {tr.metrics.get(primary, float('nan')):.4f}"
        + ("; profiled its training snapshot" if profiled else "")
    )


def _scan_before_register(state: RunState, run_id: str, model_uri: str) -> None:
    """The PHI scan of the training run before its model becomes a version (exit 3 on a finding)."""
    from promoter.app.steps import phi

    scan = phi.scan_run(state, run_id, model_uri)
    state.progress(
        f"      PHI scan before registration: {len(scan.findings)} finding(s); scanned {scan.summary.text()}"
        if scan.findings
        else f"      PHI scan before registration: no PHI found; scanned {scan.summary.text()}"
    )
    phi.refuse(state, scan, f"run {run_id[:8]} was not registered")


def _profile_for_monitoring(state: RunState, tr: Any) -> bool:
    """Log the training snapshot's profile with a version that will be monitored (its drift baseline).

    Only where surveillance runs (the schedule's environment, by default prod) and only once per
    version: a reused version that has its profile is left alone.
    """
    from promoter.app.steps import surveillance
    from promoter.registry.tracking import read_run_text

    if not surveillance.monitors(state.settings, state.env):
        return False
    if tr.reused and read_run_text(state.registry, tr.run_id, surveillance.BASELINE_ARTIFACT) is not None:
        return False
    features = getattr(tr.output, "feature_columns", None) or load_gold(state).feature_columns
    surveillance.profile_training_snapshot(state, tr.run_id, list(features))
    return True
