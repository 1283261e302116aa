"""Step ``score``: the batch run with the champion (``surveillance`` monitors it afterwards)."""

from __future__ import annotations

from typing import Any

from promoter import errors
from promoter.app.recording import decision_id
from promoter.app.state import RunState, StepOutcome
from promoter.app.steps.data import load_gold
from promoter.core import tags


def _scan_tables(state: RunState, res: Any, day: Any) -> None:
    """The PHI scan of the day's partitions just written (and the log lines); exit 3 on a finding."""
    from pipelines.score import PARTITION_COLUMN
    from promoter.app.steps import phi

    if not phi.enabled(state):
        return
    tables = {
        name: str(path)
        for name, path in (("predictions", res.predictions_path), ("outreach", getattr(res, "outreach_path", None)))
        if path
    }
    scan = phi.scan_tables(state, tables, day, PARTITION_COLUMN)
    state.progress(
        f"      PHI scan of the tables written: {len(scan.findings)} finding(s); scanned {scan.summary.text()}"
    )
    phi.refuse(state, scan, f"the {day.isoformat()} tables hold PHI (no scoring record was written)")


def _already_scored(state: RunState, champion: int, day: str, snapshot: str) -> Any:
    """The chain's scoring record of ``champion`` for ``day`` from ``snapshot``, when the day's
    partition is still in the predictions table; else ``None`` (invariant 5: a re-run of the
    event does not write the partition again)."""
    from pipelines.score import table_paths
    from pipelines.surveillance import scored_days

    found = next(
        (
            r
            for r in reversed(state.recorder.chain())
            if r.kind == "scoring"
            and r.champion_version == champion
            and r.details.get("score_date") == day
            and r.details.get("snapshot") == snapshot
        ),
        None,
    )
    if found is None:
        return None
    try:
        return found if day in scored_days(table_paths(state.settings)[0]) else None
    except Exception:  # noqa: BLE001 - no table (deleted, moved): score again
        return None


def score(state: RunState) -> StepOutcome:
    """Score the population with whichever version is champion now into the Delta predictions table."""
    champion = state.registry.get_alias(state.model_name, tags.CHAMPION)
    if champion is None:
        raise errors.NotFound(
            f"{state.model_name} has no champion yet: nothing to score with (a release must promote one first)"
        )
    gold = load_gold(state)
    day = state.day()
    done = _already_scored(state, champion, day.isoformat(), gold.catalog.snapshot_id)
    if done is not None:
        state.result.scored_rows = done.details.get("rows")
        return StepOutcome.skipped(
            f"version {champion} already scored {day.isoformat()} from this snapshot "
            f"(record {done.seq}, {done.details.get('rows')} rows): the partition is kept as written"
        )
    info = state.registry.version_info(state.model_name, champion)
    model = state.registry.load_model(state.model_name, champion)
    res = state.pipeline("score")(
        state.spark,
        model,
        gold.df,
        score_date=day,
        model_name=state.model_name,
        model_version=champion,
        run_id=info.run_id,
        settings=state.settings,
        scored_at=state.clock(),
    )
    state.result.scored_rows = res.rows
    _scan_tables(state, res, day)
    rid = decision_id("scoring", state.model_name, champion, day.isoformat(), res.rows, gold.catalog.snapshot_id)
    state.recorder.record(
        "scoring",
        record_id=rid,
        champion_version=champion,
        candidate_version=None,
        verdict="SCORED",
        details={
            "score_date": day.isoformat(),
            "rows": res.rows,
            "tiers": res.tier_counts,
            "predictions": str(res.predictions_path),
            "snapshot": gold.catalog.snapshot_id,
        },
    )
    return StepOutcome(f"scored {res.rows} rows with version {champion} for {day.isoformat()}")
