"""Step ``surveillance``: monitor the champion for one scored day, then tell the owners.

In this order, so a failure late never loses what came before it:

1. compute (the project's ``monitor`` part, :func:`pipelines.surveillance.surveil`): input and
   prediction drift, realised performance of matured windows;
2. write the day's rows of ``monitoring/profile_metrics`` and ``monitoring/drift_metrics``, and
   (once) the scored rows' subgroup values in ``monitoring/scored_slices``;
3. log the report (markdown, self-contained HTML, plots) to an MLflow run tagged with the
   champion's version;
4. append one ``surveillance`` audit record with the verdict;
5. alert the owners (GitHub issue, Azure DevOps work item, webhook): opened or updated while the
   alert lasts, closed when it clears; a sink that fails is a warning;
6. ask the retrain policy (:func:`promoter.core.monitoring.retrain_decision`); when it says
   so, append a ``retrain_requested`` record and dispatch the retrain workflow of the release
   branch. Never a promotion: the retrained candidate meets the normal gate. While a request
   is pending (no new champion yet), repeated breaches do not dispatch again.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from promoter import errors
from promoter.app.recording import decision_id
from promoter.app.state import RunState, StepOutcome
from promoter.app.steps.data import load_gold
from promoter.core import tags

BASELINE_ARTIFACT = "monitoring/baseline_profile.json"
FEATURES_ARTIFACT = "data/features.json"
IMPORTANCE_ARTIFACT = "feature_importance.csv"


# --------------------------------------------------------------------------- the training-snapshot profile


def monitors(settings: Any, env: str) -> bool:
    """Whether ``env``'s versions get a training profile: monitoring is on and ``env`` is where the
    schedule runs or some event of ``env`` plans surveillance."""
    if not settings.monitoring.enabled:
        return False
    p = settings.promotion
    return env == p.schedule.environment or any("surveillance" in names for names in p.steps.get(env, {}).values())


def profile_training_snapshot(state: RunState, run_id: str, feature_columns: list[str]) -> dict[str, Any]:
    """Profile gold (the snapshot the version trained on) and log it with the version's run."""
    from pipelines import drift
    from promoter.registry.tracking import log_run_json

    cfg = state.settings.monitoring.drift
    gold = load_gold(state)
    cols = [c for c in feature_columns if c in gold.df.columns]
    profile = drift.baseline_profile(gold.df.select(*cols), cols, fine_bins=cfg.fine_bins, max_levels=cfg.max_levels)
    data = {**profile.to_dict(), "snapshot_id": gold.catalog.snapshot_id}
    log_run_json(state.registry, run_id, BASELINE_ARTIFACT, data)
    return data


def _baseline(state: RunState, info: Any, features: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The champion's training profile: logged with it, or made now when gold is still its snapshot."""
    from promoter.registry.tracking import read_run_text

    text = read_run_text(state.registry, info.run_id, BASELINE_ARTIFACT) if info.run_id else None
    if text is not None:
        return json.loads(text), None
    snapshot = (info.tags or {}).get(tags.DATA_SNAPSHOT)
    gold = load_gold(state)
    if snapshot and snapshot == gold.catalog.snapshot_id:
        return profile_training_snapshot(state, info.run_id, features), (
            f"profiled version {info.version}'s training snapshot now (gold is still that snapshot)"
        )
    return None, None


def _features_and_importance(state: RunState, run_id: str) -> tuple[list[str], dict[str, float]]:
    from promoter.registry.tracking import read_run_text

    text = read_run_text(state.registry, run_id, FEATURES_ARTIFACT)
    features = json.loads(text) if text else list(load_gold(state).feature_columns)
    importance: dict[str, float] = {}
    text = read_run_text(state.registry, run_id, IMPORTANCE_ARTIFACT)
    if text:
        for row in csv.DictReader(io.StringIO(text)):
            try:
                importance[row["feature"]] = abs(float(row["importance"]))
            except (KeyError, ValueError):
                continue
    return features, importance


# --------------------------------------------------------------------------- the step


def surveillance(state: RunState) -> StepOutcome:
    """Monitor the champion's scores of the run's day (see the module docstring)."""
    from pipelines import monitoring_tables as tables
    from pipelines.api import MonitorInput
    from pipelines.score import table_paths
    from pipelines.surveillance import monitored_subgroups, predictions_day

    settings = state.settings
    if not settings.monitoring.enabled:
        return StepOutcome("monitoring is off (monitoring.yml enabled: false): nothing monitored")
    champion = state.registry.get_alias(state.model_name, tags.CHAMPION)
    if champion is None:
        raise errors.NotFound(f"{state.model_name} has no champion yet: nothing to monitor")
    info = state.registry.version_info(state.model_name, champion)
    day = state.day()
    gold = load_gold(state)
    features, importance = _features_and_importance(state, info.run_id)
    baseline, note = _baseline(state, info, features)
    if note:
        state.result.notes.append(note)
    result = state.pipeline("monitor")(
        MonitorInput(
            spark=state.spark,
            settings=settings,
            gold_df=gold.df,
            score_date=day,
            model_name=state.model_name,
            environment=state.env,
            model_version=champion,
            feature_columns=tuple(features),
            baseline=baseline,
            importance=importance or None,
        )
    )
    state.progress(f"surveillance: {result.summary()}")

    # 2. tables (a re-run of the day replaces its rows)
    profile_uri = tables.replace_day(
        settings, tables.PROFILE, result.profile_rows, model_name=state.model_name, monitor_date=day
    )
    drift_uri = tables.replace_day(
        settings, tables.DRIFT, result.drift_rows, model_name=state.model_name, monitor_date=day
    )
    # the day's subgroup values, for realised performance when its outcomes mature
    predictions, _ = table_paths(settings)
    tables.record_slices(
        settings,
        predictions_day(state.spark, predictions, day.isoformat()),
        gold.df,
        monitored_subgroups(settings, gold.df),
        day,
    )

    # 3-6. verdict, report, record, alerts, retrain
    chain = state.recorder.chain()
    summary = {
        **result.to_dict(),
        "environment": state.env,
        "verdict": "ALERT" if result.alerts else "OK",
    }
    retrain = _retrain_decision(state, chain, result, champion, day)
    summary["retrain"] = {"request": retrain.request, "reason": retrain.reason, "suppressed": retrain.suppressed}
    report_run = _log_report(state, summary, result, champion, info)
    rid = decision_id("surveillance", state.model_name, champion, day.isoformat(), result.rows)
    state.recorder.record(
        "surveillance",
        record_id=rid,
        champion_version=champion,
        metrics=result.metrics(),
        verdict=summary["verdict"],
        details={
            "score_date": day.isoformat(),
            "alerts": list(result.alerts),
            **result.flags(),
            "tables": {"profile_metrics": profile_uri, "drift_metrics": drift_uri},
            "report_run_id": report_run,
            "retrain": summary["retrain"],
        },
    )
    state.result.monitoring = compact(summary)
    sinks = _alert(state, chain, summary)
    state.result.monitoring["alerts_sent"] = [dataclasses.asdict(s) for s in sinks]
    if retrain.request:
        dispatched = _request_retrain(state, retrain, champion, day)
        state.result.monitoring["retrain"]["dispatch"] = [dataclasses.asdict(s) for s in dispatched]
        sinks += dispatched
    for s in sinks:
        if not s.ok:
            state.result.notes.append(f"warning: {s.sink} {s.action}: {s.message}")
        elif s.action == "skipped":
            state.result.notes.append(f"{s.sink} skipped: {s.message}")
    state.result.notes.extend(f"surveillance alert: {a}" for a in result.alerts)
    state.result.notes.extend(result.notes)
    tail = "; retrain requested" if retrain.request else (f"; {retrain.suppressed}" if retrain.suppressed else "")
    return StepOutcome(result.summary() + tail)


def compact(summary: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """The verdict without the per-feature lists: what a run's JSON result and its report carry."""
    drift = {
        kind: {
            "tested": d["tested"],
            "drifted_count": d["drifted_count"],
            "drifted_share": d["drifted_share"],
            "drifted": d["drifted"],
            "window_cmp": d.get("window_cmp"),
            "top": [f["column_name"] for f in d["features"] if f["drifted"]][:top],
        }
        for kind, d in (summary.get("input_drift") or {}).items()
    }
    keep = (
        "score_date",
        "model_name",
        "model_version",
        "environment",
        "verdict",
        "rows",
        "alerts",
        "skipped",
        "drifted",
        "prediction_drifted",
        "performance_breached",
        "retrain",
        "label_delay_days",
    )
    out = {k: summary.get(k) for k in keep}
    out["input_drift"] = drift
    out["prediction"] = {"score_psi": (summary.get("prediction") or {}).get("score_psi") or {}}
    out["performance"] = summary.get("performance") or []
    return out


# --------------------------------------------------------------------------- retrain


def _retrain_decision(state: RunState, chain: list[Any], result: Any, champion: int, day: date) -> Any:
    from promoter.core.monitoring import PendingRetrain, WindowVerdict, retrain_decision

    history = [
        WindowVerdict(
            monitor_date=r.details.get("score_date", ""),
            model_version=r.champion_version,
            drifted=bool(r.details.get("drifted")),
            prediction_drifted=bool(r.details.get("prediction_drifted")),
            performance_breached=bool(r.details.get("performance_breached")),
            alerts=tuple(r.details.get("alerts", ())),
        )
        for r in chain
        if r.kind == "surveillance" and r.details.get("score_date", "") < day.isoformat()
    ]
    history.append(
        WindowVerdict(
            monitor_date=day.isoformat(),
            model_version=champion,
            alerts=tuple(result.alerts),
            **result.flags(),
        )
    )
    requests = [r for r in chain if r.kind == "retrain_requested"]
    pending = None
    if requests:
        last = requests[-1]
        pending = PendingRetrain(
            requested_on=last.details.get("requested_on", last.created_at[:10]), champion_version=last.champion_version
        )
    return retrain_decision(history, state.settings.monitoring.retrain, pending, champion, day)


def _request_retrain(state: RunState, decision: Any, champion: int, day: date) -> list[Any]:
    from promoter.report import dispatch

    state.recorder.record(
        "retrain_requested",
        record_id=decision_id("retrain_requested", state.model_name, champion, day.isoformat()),
        champion_version=champion,
        verdict="REQUESTED",
        details={"requested_on": day.isoformat(), "reason": decision.reason},
    )
    request = dispatch.RetrainRequest(
        model_name=state.model_name,
        environment=state.env,
        reason=decision.reason,
        project=state.settings.project.name,
    )
    out = dispatch.dispatch_retrain(request, state.settings.monitoring.retrain.dispatch, os.environ)
    state.result.notes.append(f"retrain requested: {decision.reason}")
    return list(out)


# --------------------------------------------------------------------------- alerts


def _alert(state: RunState, chain: list[Any], summary: dict[str, Any]) -> list[Any]:
    from promoter.core.monitoring import alert_action
    from promoter.report import alerts
    from promoter.report import monitoring as rendering

    previous = [r for r in chain if r.kind == "surveillance"]
    was_open = bool(previous) and previous[-1].verdict == "ALERT"
    action = alert_action(was_open, list(summary["alerts"]))
    if action == "none" or not state.publish:
        return []
    alert = alerts.Alert(
        model_name=state.model_name,
        environment=state.env,
        title=f"Monitoring alert: {state.model_name} ({state.env})",
        body_markdown=rendering.markdown(summary),
        alerts=list(summary["alerts"]),
        verdict=summary["verdict"],
        url=state.event.run_url,
        payload={k: summary[k] for k in ("score_date", "model_version", "drifted", "prediction_drifted")},
    )
    return list(alerts.send_alerts(alert, state.settings.monitoring.alerts, os.environ))


# --------------------------------------------------------------------------- the report


def _log_report(state: RunState, summary: dict[str, Any], result: Any, champion: int, info: Any) -> str | None:
    """Markdown, HTML and plots in one MLflow run of the environment's experiment, tagged with the version."""
    from pipelines import plots
    from promoter.registry.tracking import training_run
    from promoter.report import monitoring as rendering

    settings = state.settings
    with tempfile.TemporaryDirectory(prefix="promote-monitor-") as tmp:
        folder = Path(tmp)
        images: list[tuple[str, bytes]] = []
        top = settings.monitoring.drift.top_features
        for kind, d in result.input_drift.items():
            feats = d["features"][:top]
            if not feats:
                continue
            metric = d["rule"]["metric"]
            png = plots.drift_png(
                [f["column_name"] for f in feats],
                [f.get(metric) or 0.0 for f in feats],
                [f["drifted"] for f in feats],
                d["rule"]["threshold"],
                metric,
                folder / "plots" / f"drift_{kind.lower()}.png",
            )
            images.append((f"Input drift ({kind.lower()}), top features", png.read_bytes()))
        if result.calibration:
            c = result.calibration
            png = plots.calibration_png(
                c["mean_score"],
                c["fraction_positive"],
                c["count"],
                c.get("ece", float("nan")),
                folder / "plots" / "calibration.png",
                title="Realised calibration (matured outcomes)",
            )
            images.append(("Realised calibration", png.read_bytes()))
        history = [
            *result.performance_history,
            *({"score_date": w["score_date"], **w["metrics"]} for w in result.performance),
        ]
        aucs = [(h["score_date"], h.get("roc_auc")) for h in history if h.get("roc_auc") is not None]
        if aucs:
            floor = (settings.monitoring.outcomes.floors or {}).get("roc_auc") if settings.monitoring.outcomes else None
            png = plots.metric_history_png(
                [d for d, _ in aucs], [v for _, v in aucs], "roc_auc", floor, folder / "plots" / "realised_auc.png"
            )
            images.append(("Realised AUC over time", png.read_bytes()))
        (folder / "report.md").write_text(rendering.markdown(summary, top))
        (folder / "report.html").write_text(rendering.html_report(summary, images, top))
        (folder / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=str))
        run_tags = {
            "promote.kind": "monitoring",
            "promote.registered_model": state.model_name,
            "promote.model_version": str(champion),
            "promote.score_date": summary["score_date"],
            "promote.verdict": summary["verdict"],
            "promote.source_run_id": info.run_id or "",
        }
        name = f"monitor-{state.env}-v{champion}-{summary['score_date']}"
        with training_run(state.registry, state.registry.experiment_name(settings, state.env), name, run_tags) as run:
            run.log_metrics({k: float(v) for k, v in result.metrics().items() if isinstance(v, (int, float))})
            run.log_artifacts(folder)
            run_id = run.run_id
    url = state.registry.run_url(run_id)
    if url:
        state.result.links["monitoring report"] = url
    return run_id
