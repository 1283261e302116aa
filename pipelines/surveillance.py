"""Post-market surveillance of a champion for one scored day: the ``monitor`` part of a project.

One call of :func:`surveil` (the default ``project.yml`` ``pipelines: monitor:``) computes, for the
day ``score_date`` and the champion that scored it, with ``monitoring.yml``'s rules:

* **input drift** of every model feature, against two references: the champion's training
  snapshot (``BASELINE``: its profile is logged with the version when it is trained) and the
  previous monitored day of the same version (``CONSECUTIVE``: read back from
  ``monitoring/profile_metrics``, so the previous day's data is never re-read). The day's gold
  rows are profiled in ONE Spark pass on the baseline's bins (:mod:`pipelines.drift`), whatever
  the number of features; the per-feature and dataset-level rules are
  :mod:`promoter.core.drift`'s (Bonferroni-corrected test and effect size; share of drifted
  features);
* **prediction drift**: the score distribution against the version's first scored day and the
  previous scored day; the top tier's share per subgroup against the previous day;
* **realised performance** of every scored day whose outcomes have matured (``outcomes:``,
  :mod:`pipelines.outcomes`) and has not been evaluated yet: AUC, PR-AUC, Brier, ECE,
  calibration slope and intercept, precision and recall at the outreach capacity, per subgroup
  with bootstrap intervals for small groups, and the subgroup gap of the gate's fairness metric
  (fairness drift).

It returns a :class:`MonitorResult`: the rows for the two monitoring tables, the alerts and the
three flags the retrain policy reads. Writing tables, logging, alerting and dispatching are the
engine's (``promoter.app.steps.surveillance``); this module only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.outcomes import METRIC_KEYS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from pipelines.api import MonitorInput
    from promoter.config import Settings

SCORE = "score"
MISSING = "(missing)"
MAX_NEW_WINDOWS = 31  # matured windows evaluated per run (a backlog is caught up over a few runs)


@dataclass
class MonitorResult:
    """What one monitoring run found (plain data; ``to_dict`` is the report's input)."""

    score_date: str
    model_name: str
    model_version: int | None
    rows: int
    input_drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # drift type -> DatasetDrift.to_dict()
    skipped: dict[str, str] = field(default_factory=dict)  # drift type -> why it was not computed
    prediction: dict[str, Any] = field(default_factory=dict)
    performance: list[dict[str, Any]] = field(default_factory=list)  # newly matured windows, oldest first
    performance_history: list[dict[str, Any]] = field(default_factory=list)  # (score_date, metric) of earlier runs
    calibration: dict[str, list[float]] | None = None  # the newest matured window's reliability bins
    label_delay_days: int | None = None
    profile_rows: list[dict[str, Any]] = field(default_factory=list)
    drift_rows: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drifted: bool = False
    prediction_drifted: bool = False
    performance_breached: bool = False

    def metrics(self) -> dict[str, Any]:
        """The few numbers worth an MLflow metric and the audit record."""
        out: dict[str, Any] = {"rows": self.rows}
        for kind, d in self.input_drift.items():
            out[f"input_drifted_share_{kind.lower()}"] = d["drifted_share"]
        for kind, v in (self.prediction.get("score_psi") or {}).items():
            out[f"score_psi_{kind.lower()}"] = v
        if self.performance:
            for k in ("roc_auc", "pr_auc", "brier", "ece", "calibration_slope"):
                v = self.performance[-1]["metrics"].get(k)
                if v is not None:
                    out[f"realised_{k}"] = v
        return out

    def flags(self) -> dict[str, bool]:
        return {
            "drifted": self.drifted,
            "prediction_drifted": self.prediction_drifted,
            "performance_breached": self.performance_breached,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "score_date": self.score_date,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "rows": self.rows,
            "input_drift": self.input_drift,
            "skipped": self.skipped,
            "prediction": self.prediction,
            "performance": self.performance,
            "label_delay_days": self.label_delay_days,
            "alerts": list(self.alerts),
            "notes": list(self.notes),
            **self.flags(),
        }

    def summary(self) -> str:
        parts = [f"{self.rows} scores on {self.score_date}"]
        for kind, d in self.input_drift.items():
            parts.append(f"{kind.lower()} drift {d['drifted_count']}/{d['tested']} features")
        psi = self.prediction.get("score_psi") or {}
        if psi:
            parts.append("score PSI " + ", ".join(f"{k.lower()} {v:.3f}" for k, v in psi.items()))
        if self.performance:
            w = self.performance[-1]
            auc = w["metrics"].get("roc_auc")
            parts.append(f"realised AUC {auc:.3f} ({w['score_date']})" if auc is not None else "realised AUC n/a")
        tail = f"{len(self.alerts)} alert(s): " + "; ".join(self.alerts) if self.alerts else "no alerts"
        return "; ".join(parts) + "; " + tail


# --------------------------------------------------------------------------- reading


def predictions_day(spark: Any, table_uri: str, day: str) -> "DataFrame":
    """One scored day of the predictions table (only that partition's files are read)."""
    from deltalake import DeltaTable

    files = DeltaTable(table_uri).file_uris(partition_filters=[("score_date", "=", day)])
    return spark.read.parquet(*files)


def scored_days(table_uri: str) -> list[str]:
    from deltalake import DeltaTable

    return sorted({p["score_date"] for p in DeltaTable(table_uri).partitions()})


def _first_day_of(spark: Any, table_uri: str, days: list[str], version: int | None) -> str | None:
    """The first scored day of ``version`` (its scores' own baseline), from the partition files only."""
    from deltalake import DeltaTable

    if version is None:
        return None
    t = DeltaTable(table_uri)
    for d in days:
        table = t.to_pyarrow_table(partitions=[("score_date", "=", d)], columns=["model_version"])
        if table.num_rows and int(table.column("model_version")[0].as_py()) == int(version):
            return d
    return None


# --------------------------------------------------------------------------- the run


def surveil(inp: "MonitorInput") -> MonitorResult:
    """Monitor ``inp.score_date`` (see the module docstring).

    Raises:
        NotFound: when the day has not been scored.
        DataContractError: when the outcomes table breaks its contract (nothing is written then).
    """
    from deltalake import DeltaTable

    from pipelines.score import table_paths
    from promoter.errors import NotFound

    settings = inp.settings
    predictions, _ = table_paths(settings)
    day = inp.score_date.isoformat()
    if not DeltaTable.is_deltatable(predictions):
        raise NotFound(f"no predictions table at {predictions}: score before monitoring")
    days = scored_days(predictions)
    if day not in days:
        raise NotFound(
            f"no predictions for {day} in {predictions}: score that day first (`promote score --date {day}`)"
        )

    # Outcomes first: a broken outcomes table stops the run before anything is computed or written.
    outcomes = _read_outcomes(inp)

    res = MonitorResult(day, inp.model_name, inp.model_version, 0)
    _input_drift(inp, res)
    current = predictions_day(inp.spark, predictions, day)
    _prediction_drift(inp, res, current, predictions, days)
    if outcomes is not None:
        _performance(inp, res, outcomes, predictions)
    elif settings.monitoring.outcomes is None:
        res.notes.append("no outcomes table configured (monitoring.yml outcomes): realised performance not computed")
    else:
        res.notes.append(f"no outcomes yet at {outcomes_source(settings).path}: realised performance not computed")
    return res


def drift_rule(settings: "Settings") -> Any:
    """``monitoring.yml`` ``drift:`` as a :class:`promoter.core.drift.DriftRule`."""
    from promoter.core.drift import DriftRule

    d = settings.monitoring.drift
    return DriftRule(
        metric=d.metric,
        threshold=d.threshold,
        alpha=d.alpha,
        correction=d.correction,
        max_drifted_share=d.max_drifted_share,
        min_rows=d.min_rows,
    )


def _input_drift(inp: "MonitorInput", res: MonitorResult) -> None:
    from pipelines import drift
    from pipelines import monitoring_tables as tables

    settings = inp.settings
    cfg = settings.monitoring.drift
    features = [c for c in inp.feature_columns if c in inp.gold_df.columns]
    missing = [c for c in inp.feature_columns if c not in inp.gold_df.columns]
    if missing:
        res.notes.append(f"{len(missing)} model feature(s) not in gold: {', '.join(missing[:5])}")
    frame = inp.gold_df.select(*features)
    rule = drift_rule(settings)
    w = tables.window(res.score_date)
    if inp.baseline is not None:
        baseline = drift.Profile.from_dict(inp.baseline)
        features = [c for c in features if c in baseline.columns]
        profile = drift.window_profile(frame.select(*features), baseline)
    else:
        baseline = None
        profile = drift.baseline_profile(frame, features, fine_bins=cfg.fine_bins, max_levels=cfg.max_levels)
        res.skipped["BASELINE"] = (
            f"version {inp.model_version} has no training profile (it was trained before monitoring was set up, "
            "or in another environment): retrain to get baseline drift"
        )
    res.rows = profile.rows
    for name, col in profile.columns.items():
        res.profile_rows.append(_profile_row(w, inp, "input", name, col, profile.rows))

    previous = _previous_profile(inp, res.score_date)
    refs: list[tuple[str, Any, Any]] = []
    if baseline is not None:
        refs.append(("BASELINE", baseline, None))
    if previous is not None:
        refs.append(("CONSECUTIVE", previous[1], tables.window(previous[0])))
    else:
        res.skipped["CONSECUTIVE"] = (
            "no earlier monitored day of this version (the first day has nothing to compare with)"
        )
    for kind, reference, cmp_window in refs:
        verdict = drift.compare(profile, reference, rule=rule, importance=inp.importance, bins=cfg.bins)
        d = verdict.to_dict()
        d["drifted_count"] = sum(1 for f in d["features"] if f["drifted"])
        d["window_cmp"] = "training snapshot" if cmp_window is None else cmp_window["start"].isoformat()
        res.input_drift[kind] = d
        for rank, f in enumerate(d["features"], 1):
            res.drift_rows.append(
                _drift_row(w, cmp_window, kind, inp, "input", f, bool(f["drifted"]), rank, f.get("importance"))
            )
        if verdict.drifted:
            res.drifted = True
            top = ", ".join(f["column_name"] for f in d["features"] if f["drifted"])
            against = "the training snapshot" if kind == "BASELINE" else d["window_cmp"]
            res.alerts.append(
                f"input drift vs {against}: {d['drifted_count']} of {d['tested']} features "
                f"({d['drifted_share']:.1%} > {rule.max_drifted_share:.0%}): {_short(top)}"
            )


def _drift_row(
    w: dict,
    window_cmp: dict | None,
    kind: str,
    inp: "MonitorInput",
    data_kind: str,
    f: dict[str, Any],
    drifted: bool,
    rank: int,
    importance: float | None = None,
) -> dict[str, Any]:
    """One row of ``drift_metrics`` (Lakehouse Monitoring's names) for one column's comparison."""
    return {
        "window": w,
        "window_cmp": window_cmp,
        "drift_type": kind,
        "model_version": inp.model_version,
        "environment": inp.environment,
        "data_kind": data_kind,
        "column_name": f["column_name"],
        "count": f.get("count"),
        "count_cmp": f.get("count_cmp"),
        "population_stability_index": f.get("population_stability_index"),
        "js_distance": f.get("js_distance"),
        "tv_distance": f.get("tv_distance"),
        "wasserstein_distance": f.get("wasserstein_distance"),
        "chi_squared_test": {"statistic": f.get("chi_squared_statistic"), "pvalue": f.get("chi_squared_pvalue")},
        "drifted": drifted,
        "importance": importance,
        "rank": rank,
    }


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _profile_row(w: dict, inp: "MonitorInput", kind: str, name: str, col: Any, rows: int, **extra: Any) -> dict:
    hist = {"edges": col.edges, "levels": col.levels, "counts": list(col.counts), "kind": col.kind}
    total = (col.count or 0) + (col.num_nulls or 0)
    return {
        "window": w,
        "model_version": inp.model_version,
        "environment": inp.environment,
        "data_kind": kind,
        "column_name": name,
        "count": col.count,
        "num_nulls": col.num_nulls,
        "percent_null": (col.num_nulls / total) if total else None,
        "avg": col.avg,
        "stddev": col.stddev,
        "min": col.min,
        "max": col.max,
        "histogram": hist,
        **extra,
    }


def _previous_profile(inp: "MonitorInput", day: str) -> tuple[str, Any] | None:
    """The latest earlier monitored day of this version, as a Profile rebuilt from profile_metrics."""
    from pipelines import drift
    from pipelines import monitoring_tables as tables

    rows = tables.read(inp.settings, tables.PROFILE, model_name=inp.model_name, before=date.fromisoformat(day))
    rows = [
        r
        for r in rows
        if r["data_kind"] == "input" and r["slice_key"] is None and r["model_version"] == inp.model_version
    ]
    if not rows:
        return None
    last = max(r["monitor_date"] for r in rows)
    cols = {}
    n = 0
    for r in rows:
        if r["monitor_date"] != last:
            continue
        h = _json(r["histogram"])
        cols[r["column_name"]] = drift.ColumnProfile(
            name=r["column_name"],
            kind=h["kind"],
            count=int(r["count"] or 0),
            num_nulls=int(r["num_nulls"] or 0),
            avg=r["avg"],
            stddev=r["stddev"],
            min=r["min"],
            max=r["max"],
            edges=h.get("edges"),
            levels=h.get("levels"),
            counts=[int(c) for c in h["counts"]],
        )
        n = max(n, int(r["count"] or 0) + int(r["num_nulls"] or 0))
    fine = next((len(c.edges) - 1 for c in cols.values() if c.edges), inp.settings.monitoring.drift.fine_bins)
    return last, drift.Profile(rows=n, columns=cols, fine_bins=fine)


def _json(text: Any) -> dict:
    import json

    return json.loads(text) if isinstance(text, str) else dict(text)


def _prediction_drift(
    inp: "MonitorInput", res: MonitorResult, current: "DataFrame", predictions: str, days: list[str]
) -> None:
    from pipelines import drift
    from pipelines import monitoring_tables as tables

    settings = inp.settings
    cfg = settings.monitoring.prediction
    rule = drift_rule(settings)
    w = tables.window(res.score_date)
    earlier = [d for d in days if d < res.score_date]
    refs = []
    first = _first_day_of(inp.spark, predictions, days, inp.model_version)
    if first is not None and first < res.score_date:
        refs.append(("BASELINE", first))
    if earlier:
        refs.append(("CONSECUTIVE", earlier[-1]))
    psi: dict[str, float] = {}
    scores = current.select(SCORE)
    for kind, ref_day in refs:
        ref = predictions_day(inp.spark, predictions, ref_day).select(SCORE)
        ref_profile = drift.baseline_profile(
            ref, [SCORE], kinds={SCORE: "numeric"}, fine_bins=settings.monitoring.drift.fine_bins
        )
        cur_profile = drift.window_profile(scores, ref_profile)
        verdict = drift.compare(cur_profile, ref_profile, rule=rule, bins=settings.monitoring.drift.bins)
        f = verdict.to_dict()["features"][0]
        psi[kind] = f["population_stability_index"]
        drifted = f["population_stability_index"] > cfg.psi_threshold
        res.drift_rows.append(_drift_row(w, tables.window(ref_day), kind, inp, "prediction", f, drifted, 1))
        if drifted:
            res.prediction_drifted = True
            res.alerts.append(
                f"score distribution drifted vs {ref_day} ({kind.lower()}): PSI "
                f"{f['population_stability_index']:.3f} > {cfg.psi_threshold:g}"
            )
    res.prediction["score_psi"] = psi
    groups = _tier_shares(inp, res, current, predictions, earlier[-1] if earlier else None)
    res.prediction["groups"] = groups


def monitored_subgroups(settings: "Settings", gold_df: "DataFrame") -> list[str]:
    """The subgroups monitoring slices by (``monitoring.yml`` or the project's) that gold has."""
    wanted = settings.monitoring.prediction.subgroups or settings.project.data.subgroup_columns
    return [c for c in wanted if c in gold_df.columns]


def _day_slices(inp: "MonitorInput", day: str, subgroups: list[str]) -> "DataFrame":
    """Key and subgroup values of an earlier scored day (as recorded then, else today's gold)."""
    from pipelines import monitoring_tables as tables

    key = inp.settings.project.data.key_column
    return tables.slices_frame(inp.spark, inp.settings, [day], subgroups, inp.gold_df).select(key, *subgroups)


def _tier_shares(
    inp: "MonitorInput", res: MonitorResult, current: "DataFrame", predictions: str, previous_day: str | None
) -> list[dict[str, Any]]:
    """The top tier's share per subgroup today and on the previous scored day (two small aggregations)."""
    from pyspark.sql import functions as F

    from pipelines import monitoring_tables as tables

    settings = inp.settings
    cfg = settings.monitoring.prediction
    key = settings.project.data.key_column
    top_tier = settings.project.scoring.tiers[0].name
    subgroups = monitored_subgroups(settings, inp.gold_df)

    def shares(frame: "DataFrame", day: str) -> dict[tuple[str, str], tuple[int, float, float]]:
        groups_df = inp.gold_df if day == res.score_date else _day_slices(inp, day, subgroups)
        joined = frame.select(key, SCORE, "risk_tier").join(groups_df.select(key, *subgroups), key, "left")
        dims = [F.struct(F.lit(":all").alias("k"), F.lit(":all").alias("v"))] + [
            F.struct(F.lit(c).alias("k"), F.coalesce(F.col(c).cast("string"), F.lit(MISSING)).alias("v"))
            for c in subgroups
        ]
        rows = (
            joined.withColumn("_d", F.explode(F.array(*dims)))
            .groupBy(F.col("_d.k").alias("k"), F.col("_d.v").alias("v"))
            .agg(
                F.count("*").alias("n"),
                F.avg(SCORE).alias("mean"),
                F.avg((F.col("risk_tier") == top_tier).cast("double")).alias("share"),
            )
            .collect()
        )
        return {(r["k"], r["v"]): (int(r["n"]), float(r["mean"]), float(r["share"])) for r in rows}

    now = shares(current, res.score_date)
    before = shares(predictions_day(inp.spark, predictions, previous_day), previous_day) if previous_day else {}
    w = tables.window(res.score_date)
    out = []
    for (k, v), (n, mean, share) in sorted(now.items()):
        ref_n, _, ref_share = before.get((k, v), (0, None, None))
        change = None if ref_share is None else share - ref_share
        if k != ":all":
            out.append(
                {
                    "slice_key": k,
                    "slice_value": v,
                    "count": n,
                    "mean_score": mean,
                    "top_tier_share": share,
                    "reference_top_tier_share": ref_share,
                    "change": change,
                }
            )
        res.profile_rows.append(
            {
                "window": w,
                "model_version": inp.model_version,
                "environment": inp.environment,
                "data_kind": "prediction",
                "column_name": SCORE,
                "slice_key": None if k == ":all" else k,
                "slice_value": None if k == ":all" else v,
                "count": n,
                "avg": mean,
                "mean_score": mean,
                "top_tier_share": share,
            }
        )
        if (
            k != ":all"
            and change is not None
            and n >= cfg.min_group_size
            and ref_n >= cfg.min_group_size
            and abs(change) > cfg.tier_share_change
        ):
            res.prediction_drifted = True
            res.alerts.append(f"{k}={v}: {top_tier}-tier share {ref_share:.1%} -> {share:.1%} vs {previous_day}")
    return out


# --------------------------------------------------------------------------- realised performance


def _read_outcomes(inp: "MonitorInput") -> "DataFrame | None":
    from pipelines import outcomes as oc

    cfg = inp.settings.monitoring.outcomes
    if cfg is None:
        return None
    source = outcomes_source(inp.settings)
    if not _outcomes_arrived(inp.spark, source):
        return None  # outcomes come later: not an error until the table is there
    return oc.read_outcomes(inp.spark, source)


def _outcomes_arrived(spark: Any, source: Any) -> bool:
    from deltalake import DeltaTable

    from pipelines import lake

    if source.format == "delta":
        return DeltaTable.is_deltatable(source.path)
    return lake.exists(spark, source.path)


def outcomes_source(settings: "Settings") -> Any:
    """The configured outcomes table as an :class:`pipelines.outcomes.OutcomesSource`."""
    from pipelines import lake
    from pipelines import outcomes as oc

    cfg = settings.monitoring.outcomes
    path = lake.location(settings, cfg.path)
    return oc.OutcomesSource(
        path=path,
        format=cfg.format,
        key_column=cfg.key_column or settings.project.data.key_column,
        date_column=cfg.date_column,
        label_column=cfg.label_column,
        display=f"monitoring.yml outcomes ({path})",
    )


def _performance(inp: "MonitorInput", res: MonitorResult, outcomes: "DataFrame", predictions: str) -> None:
    from pipelines import monitoring_tables as tables
    from pipelines import outcomes as oc

    settings = inp.settings
    cfg = settings.monitoring.outcomes
    res.label_delay_days = cfg.label_delay_days
    today = inp.score_date
    done = {
        r["window"]["start"].isoformat()
        for r in tables.read(settings, tables.PROFILE, model_name=inp.model_name, before=today)
        if r["data_kind"] == "performance" and r["slice_key"] is None
    }
    history = [
        r
        for r in tables.read(settings, tables.PROFILE, model_name=inp.model_name, before=today)
        if r["data_kind"] == "performance" and r["slice_key"] is None
    ]
    res.performance_history = [
        {"score_date": r["window"]["start"].isoformat(), **{k: r.get(k) for k in ("roc_auc", "pr_auc", "brier", "ece")}}
        for r in history
    ]
    cutoff = (today - timedelta(days=cfg.label_delay_days)).isoformat()
    mature = [d for d in scored_days(predictions) if d <= cutoff and d not in done][-MAX_NEW_WINDOWS:]
    if not mature:
        res.notes.append(f"no newly matured window (outcomes mature {cfg.label_delay_days} days after the score date)")
        return
    subgroups = monitored_subgroups(settings, inp.gold_df)
    key = settings.project.data.key_column
    windows = oc.realised_performance(
        inp.spark,
        predictions,
        outcomes,
        key_column=key,
        as_of=today,
        label_delay_days=cfg.label_delay_days,
        capacity_percent=_capacity_percent(settings),
        subgroups=tables.slices_frame(inp.spark, settings, mature, subgroups, inp.gold_df) if subgroups else None,
        subgroup_columns=subgroups,
        model_name=inp.model_name,
        small_group=cfg.small_group,
        resamples=cfg.resamples,
        confidence=cfg.confidence,
        seed=cfg.seed,
        windows=mature,
    )
    fairness = settings.promotion.policy(inp.environment).fairness if inp.environment else None
    for wp in windows:
        d = wp.to_dict()
        res.performance.append(d)
        w = tables.window(d["score_date"])
        m = d["metrics"]
        res.profile_rows.append(
            {
                "window": w,
                "model_version": inp.model_version,
                "environment": inp.environment,
                "data_kind": "performance",
                "column_name": tables.TABLE_LEVEL,
                "count": d["rows"],
                "labelled": d["labelled"],
                "coverage": d["coverage"],
                **{k: m.get(k) for k in _PERF_KEYS},
            }
        )
        for col, groups in (d.get("subgroups") or {}).items():
            for grp, gm in groups.items():
                res.profile_rows.append(
                    {
                        "window": w,
                        "model_version": inp.model_version,
                        "environment": inp.environment,
                        "data_kind": "performance",
                        "column_name": tables.TABLE_LEVEL,
                        "slice_key": col,
                        "slice_value": str(grp),
                        "count": int(gm.get("n") or 0),
                        "labelled": gm.get("n"),
                        **{k: gm.get(k) for k in _PERF_KEYS},
                    }
                )
    newest = res.performance[-1]
    res.calibration = newest.get("calibration") or None
    _performance_alerts(settings, res, newest, fairness)


_PERF_KEYS = tuple(k for k in METRIC_KEYS if k != "n")  # the n is the row's count


def _capacity_percent(settings: "Settings") -> float:
    """The outreach capacity in percent: the top tier's ``percent`` (capacity tiering), else the
    evaluation's ``top_k_percent`` (the same k the gate's precision and recall at k use)."""
    tier = settings.project.scoring.tiers[0]
    if settings.project.scoring.tiering == "capacity" and tier.percent:
        return float(tier.percent)
    return float(settings.training.evaluation.top_k_percent)


def _performance_alerts(settings: "Settings", res: MonitorResult, window: dict, fairness: Any) -> None:
    cfg = settings.monitoring.outcomes
    m = window["metrics"]
    day = window["score_date"]
    for name, floor in cfg.floors.items():
        v = m.get(name)
        if v is not None and v < floor:
            res.performance_breached = True
            res.alerts.append(f"realised {name} {v:.3f} < floor {floor:g} (scores of {day})")
    for name, ceiling in cfg.ceilings.items():
        v = m.get(name)
        if v is not None and v > ceiling:
            res.performance_breached = True
            res.alerts.append(f"realised {name} {v:.3f} > ceiling {ceiling:g} (scores of {day})")
    if fairness is None or not fairness.subgroups:
        return
    for col in fairness.subgroups:
        groups = (window.get("subgroups") or {}).get(col) or {}
        values = {
            g: gm.get(fairness.metric)
            for g, gm in groups.items()
            if gm.get(fairness.metric) is not None and (gm.get("n") or 0) >= fairness.min_group_size
        }
        if len(values) < 2:
            continue
        gap = max(values.values()) - min(values.values())
        if gap > fairness.max_gap:
            lo = min(values, key=values.get)
            res.performance_breached = True
            res.alerts.append(
                f"fairness drift: realised {fairness.metric} gap across {col} {gap:.3f} > {fairness.max_gap:g} "
                f"(lowest: {lo} {values[lo]:.3f}; scores of {day})"
            )
