"""Observed outcomes and the realised performance of past scores, on Spark.

A model scores a day ``d``; whether each scored member had the event becomes known later, in an
**outcomes table** (one row per recorded outcome: key, outcome date, 0/1 label; the layout
:mod:`pipelines.synthetic_outcomes` writes). This module reads that table under its own contract
(:func:`read_outcomes`) and measures how the scores of each matured day turned out
(:func:`realised_performance`).

Labelling rules (the same for every model project; names come from the arguments):

* an outcome belongs to the score day it **follows**: the label of key ``k`` scored on ``d`` is
  ``max(label)`` over ``k``'s outcome rows dated in ``(d, d + label_delay_days]``: positive when
  any recorded outcome in that window is 1, negative when all are 0. A member may appear on many
  snapshots; each snapshot gets the outcomes of its own window;
* a scored row with **no** outcome row in its window is *unlabelled*: it is not counted as a
  negative (an outcomes feed is rarely complete), it is left out of every metric and lowers
  ``coverage = labelled / rows``;
* a day is **matured** on ``d + label_delay_days``; days not matured by ``as_of`` are never
  evaluated (their labels would still be arriving).

Spark reads, joins and filters; each batch of windows brings one small frame (day, key, score,
label, subgroups) to the driver as Arrow, and the metrics are :mod:`promoter.core.stats`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from promoter.errors import DataContractError, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

FORMATS = ("delta", "parquet", "csv")
# the columns of the frame read_outcomes returns (whatever the table calls them)
KEY, DATE, LABEL = "key", "outcome_date", "label"
MISSING = "(missing)"  # the subgroup of a row whose subgroup value is null or unknown
PARTITION_COLUMN = "score_date"  # the predictions table's partition (pipelines.score)
MAX_PULL_ROWS = 2_000_000  # scored rows brought to the driver by one Spark job (windows are batched)
INTERVAL_METRICS = ("roc_auc", "pr_auc", "brier")
METRIC_KEYS = (
    "n",
    "positives",
    "prevalence",
    "mean_score",
    "roc_auc",
    "roc_auc_lower",
    "roc_auc_upper",
    "pr_auc",
    "pr_auc_lower",
    "pr_auc_upper",
    "brier",
    "brier_lower",
    "brier_upper",
    "ece",
    "log_loss",
    "calibration_slope",
    "calibration_intercept",
    "precision_at_k",
    "recall_at_k",
)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class OutcomesSource:
    """Where the outcomes table is and what its columns are called.

    ``display`` names the table in every error message (e.g. ``monitoring.yml outcomes (<path>)``).
    """

    path: str
    format: str
    key_column: str
    date_column: str
    label_column: str
    display: str


def read_outcomes(spark: "SparkSession", source: OutcomesSource) -> "DataFrame":
    """Read the outcomes table and check its contract (one Spark job) before anything uses it.

    The contract: the table exists; the key, date and label columns exist; no key is null; every
    date parses as a date (date, timestamp or ``YYYY-MM-DD...`` string); every label is 0 or 1
    (integer, boolean, ``0.0``/``1.0`` or the strings ``"0"``/``"1"``); at most one label per
    (key, outcome date): rows repeating the same label are harmless re-deliveries and allowed,
    rows with *different* labels for one key on one date contradict each other and are not.
    A key may have outcomes on many dates (one per snapshot it was scored on).

    Delta is read with ``deltalake`` (its live files, then ``spark.read.parquet``): this Spark
    has no Delta jars. CSV is read with a header and every column as text.

    Returns:
        A lazy frame with exactly the columns :data:`KEY` (string), :data:`DATE` (date) and
        :data:`LABEL` (int 0/1), whatever the table calls them.

    Raises:
        DataContractError: one line naming ``source.display`` and every broken rule with its
            column, the count of bad rows and one bad value (keys are never shown).
        InvalidInput: an unknown ``source.format``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    df = _read(spark, source)
    where = source.display
    names = {"key": source.key_column, "date": source.date_column, "label": source.label_column}
    missing = [c for c in names.values() if c not in df.columns]
    if missing:
        shown = ", ".join(df.columns[:20]) + (", ..." if len(df.columns) > 20 else "")
        raise DataContractError(
            f"{where}: column_missing: {', '.join(repr(c) for c in missing)} not in the table (columns: {shown})"
        )
    fields = {f.name: f.dataType for f in df.schema.fields}
    date_type, label_type = fields[source.date_column], fields[source.label_column]
    problems = []
    if not isinstance(date_type, T.DateType | T.TimestampType | T.TimestampNTZType | T.StringType):
        problems.append(f"{source.date_column}: column_type: {date_type.simpleString()} is not a date")
    if not isinstance(label_type, T.NumericType | T.BooleanType | T.StringType):
        problems.append(f"{source.label_column}: column_type: {label_type.simpleString()} is not a 0/1 label")
    if problems:
        raise DataContractError(f"{where}: " + "; ".join(problems))

    raw_date, raw_label = F.col(source.date_column), F.col(source.label_column)
    parsed = raw_date.try_cast("date") if isinstance(date_type, T.StringType) else raw_date.cast("date")
    value = raw_label.try_cast("double")
    bad_label = raw_label.isNull() | value.isNull() | ~value.isin(0.0, 1.0)
    rows = df.select(
        F.col(source.key_column).cast("string").alias("_k"),
        parsed.alias("_d"),
        F.when(~bad_label, value).alias("_y"),
        bad_label.cast("long").alias("_bl"),
        F.when(bad_label, F.coalesce(raw_label.cast("string"), F.lit("null"))).alias("_blx"),
        parsed.isNull().cast("long").alias("_bd"),
        F.when(parsed.isNull(), F.coalesce(raw_date.cast("string"), F.lit("null"))).alias("_bdx"),
    )
    # one job: per (key, date) first, so contradicting labels are found in the same pass
    per_key_date = rows.groupBy("_k", "_d").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum("_bl").alias("bl"),
        F.min("_blx").alias("blx"),
        F.sum("_bd").alias("bd"),
        F.min("_bdx").alias("bdx"),
        F.min("_y").alias("lo"),
        F.max("_y").alias("hi"),
    )
    conflict = F.col("_k").isNotNull() & F.col("_d").isNotNull() & (F.col("lo") != F.col("hi"))
    s = per_key_date.agg(
        F.sum("n").alias("rows"),
        F.sum(F.when(F.col("_k").isNull(), F.col("n"))).alias("null_keys"),
        F.sum("bl").alias("bad_labels"),
        F.min("blx").alias("bad_label"),
        F.sum("bd").alias("bad_dates"),
        F.min("bdx").alias("bad_date"),
        F.sum(conflict.cast("long")).alias("conflicts"),
    ).first()
    if s["null_keys"]:
        problems.append(f"{source.key_column}: not_null: {s['null_keys']} row(s) have no key")
    if s["bad_labels"]:
        problems.append(
            f"{source.label_column}: allowed_values [0, 1]: {s['bad_labels']} row(s) are not 0 or 1 "
            f"(e.g. {_value(s['bad_label'])})"
        )
    if s["bad_dates"]:
        problems.append(
            f"{source.date_column}: date: {s['bad_dates']} row(s) do not parse as a date (e.g. {_value(s['bad_date'])})"
        )
    if s["conflicts"]:
        problems.append(
            f"{source.key_column}, {source.date_column}: unique: {s['conflicts']} (key, date) pair(s) have both "
            "label 0 and label 1"
        )
    if problems:
        raise DataContractError(f"{where}: " + "; ".join(problems))
    return df.select(
        F.col(source.key_column).cast("string").alias(KEY),
        parsed.alias(DATE),
        value.cast("int").alias(LABEL),
    )


def _value(v: Any) -> str:
    text = str(v)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def _read(spark: "SparkSession", source: OutcomesSource) -> "DataFrame":
    """The table as Spark reads it (nothing checked but existence and readability)."""
    from pipelines import lake

    if source.format not in FORMATS:
        raise InvalidInput(f"{source.display}: format must be one of {', '.join(FORMATS)}, got {source.format!r}")
    path = source.path
    absent = DataContractError(f"{source.display}: no outcomes table at {path}")
    if source.format == "delta":
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(path):
            raise absent
    elif not lake.exists(spark, path):
        raise absent
    try:
        if source.format == "delta":
            return _read_delta(spark, path)
        if source.format == "parquet":
            return spark.read.parquet(path)
        return spark.read.option("header", "true").option("inferSchema", "false").csv(path)
    except Exception as exc:  # noqa: BLE001 - a reader error is bad input, named with the table
        raise DataContractError(
            f"{source.display}: the {source.format} table at {path} cannot be read: {str(exc).splitlines()[0][:300]}"
        ) from None


def _read_delta(spark: "SparkSession", path: str) -> "DataFrame":
    """A Delta table's live files through Spark's Parquet reader (partition columns from the
    Hive-style folder names); an empty table from its schema."""
    from deltalake import DeltaTable

    table = DeltaTable(path)
    files = table.file_uris()
    if not files:
        return spark.createDataFrame(table.to_pyarrow_table())
    reader = spark.read
    if table.metadata().partition_columns:
        reader = reader.option("basePath", path)
    return reader.parquet(*files)


# --------------------------------------------------------------------------- realised performance


@dataclass
class WindowPerformance:
    """How the scores of one day turned out once its outcomes matured.

    ``metrics`` (and each subgroup's dict) holds :data:`METRIC_KEYS`; an undefined metric (one
    class only, no labelled row) is ``None``. ``calibration`` is the reliability diagram of the
    labelled rows (non-empty equal-width bins), ``None`` without labelled rows. ``note`` says why
    nothing could be measured (not part of :meth:`to_dict`).
    """

    score_date: str
    matured_on: str
    rows: int
    labelled: int
    coverage: float | None
    metrics: dict[str, Any]
    subgroups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score_date": self.score_date,
            "matured_on": self.matured_on,
            "rows": self.rows,
            "labelled": self.labelled,
            "coverage": self.coverage,
            "metrics": dict(self.metrics),
            "subgroups": {c: {g: dict(m) for g, m in gs.items()} for c, gs in self.subgroups.items()},
            "calibration": None if self.calibration is None else dict(self.calibration),
        }


def realised_performance(
    spark: "SparkSession",
    predictions_uri: str,
    outcomes_df: "DataFrame",
    *,
    key_column: str,
    as_of: date | str,
    label_delay_days: int,
    capacity_percent: float,
    subgroups: "DataFrame | None",
    subgroup_columns: list[str] | tuple[str, ...],
    model_name: str,
    small_group: int = 200,
    resamples: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
    windows: list[str | date] | None = None,
) -> list[WindowPerformance]:
    """Realised performance of every matured scored day, oldest first (see the module docstring).

    For each day ``d`` of ``windows`` (default: every scored day) with ``d + label_delay_days <=
    as_of`` (days not in the predictions table, or not matured, are skipped): the day's
    predictions (``key_column``, ``score``) are labelled with ``max(label)`` of their outcomes
    dated in ``(d, d + label_delay_days]``; rows with no such outcome are unlabelled and left out.

    ``precision_at_k``/``recall_at_k``: the outreach list is the top ``capacity_percent`` % of
    **all** the day's scored rows (``ceil(rows * capacity_percent / 100)``, ties broken by key),
    as the outreach would have been; precision is the positive share of its labelled rows, recall
    the share of labelled positives on it. Per subgroup, the same list restricted to the group.

    Subgroups: ``subgroups`` (key + ``subgroup_columns``, one row per key; duplicates keep the
    smallest value) is joined by key; null or unknown values are the group ``"(missing)"``. When
    it also has a ``score_date`` column (``YYYY-MM-DD``), it is joined by key and day: each
    day's rows get the values they had when they were scored (an encounter-keyed model's
    earlier encounters are gone from today's data).
    Bootstrap intervals (``roc_auc``, ``pr_auc``, ``brier``; class-stratified percentile,
    ``resamples``/``confidence``/``seed``) for the whole day and for groups with ``n <
    small_group``; ``None`` for larger groups.

    Args:
        spark: the session.
        predictions_uri: the predictions Delta table (:func:`pipelines.score.table_paths`).
        outcomes_df: :func:`read_outcomes`'s frame.
        key_column: the predictions' key column (and the key of ``subgroups``).
        as_of: the day of the run; only days matured by then are evaluated.
        label_delay_days: how long after the score date an outcome still counts (>= 1).
        capacity_percent: the outreach capacity in percent, in (0, 100].
        subgroups: key + subgroup columns, or ``None``.
        subgroup_columns: the subgroup columns of ``subgroups`` to report.
        model_name: the model (named in notes).
        small_group: groups smaller than this get intervals.
        resamples, confidence, seed: the bootstrap's.
        windows: score days to evaluate (``YYYY-MM-DD`` or dates); ``None``: all.

    Returns:
        One :class:`WindowPerformance` per evaluated day, oldest first.

    Raises:
        InvalidInput: bad arguments, a frame without the expected columns (before any Spark job).
    """
    from deltalake import DeltaTable

    if isinstance(label_delay_days, bool) or not isinstance(label_delay_days, int) or label_delay_days < 1:
        raise InvalidInput(f"label_delay_days must be a whole number >= 1, got {label_delay_days!r}")
    if not 0 < float(capacity_percent) <= 100:
        raise InvalidInput(f"capacity_percent must be in (0, 100], got {capacity_percent!r}")
    if small_group < 1 or resamples < 1 or not 0 < confidence < 1:
        raise InvalidInput("small_group and resamples must be >= 1 and confidence in (0, 1)")
    missing = [c for c in (KEY, DATE, LABEL) if c not in outcomes_df.columns]
    if missing:
        raise InvalidInput(f"outcomes frame lacks {', '.join(missing)}: read it with pipelines.outcomes.read_outcomes")
    columns = list(subgroup_columns or [])
    if columns:
        if subgroups is None:
            raise InvalidInput(f"subgroup columns {', '.join(columns)} given without a subgroups frame")
        absent = [c for c in [key_column, *columns] if c not in subgroups.columns]
        if absent:
            raise InvalidInput(f"subgroups frame has no column(s) {', '.join(absent)}")
    if not DeltaTable.is_deltatable(predictions_uri):
        raise InvalidInput(f"no predictions table at {predictions_uri}")

    as_of_day = _day(as_of)
    table = DeltaTable(predictions_uri)
    counts = _rows_per_day(table)
    wanted = sorted(counts) if windows is None else sorted({_iso(w) for w in windows} & set(counts))
    delay = timedelta(days=label_delay_days)
    days = [d for d in wanted if date.fromisoformat(d) + delay <= as_of_day]

    out: list[WindowPerformance] = []
    for batch in _batches(days, counts):
        pulled = _pull(spark, table, batch, outcomes_df, key_column, label_delay_days, subgroups, columns)
        for d in batch:
            frame = pulled.get(d)
            out.append(
                _window(
                    d,
                    (date.fromisoformat(d) + delay).isoformat(),
                    frame,
                    columns,
                    capacity_percent=float(capacity_percent),
                    model_name=model_name,
                    small_group=small_group,
                    resamples=resamples,
                    confidence=confidence,
                    seed=seed,
                )
            )
    return out


def _iso(day: str | date) -> str:
    """``YYYY-MM-DD`` of a date, datetime or ISO string."""
    return _day(day).isoformat()


def _day(value: str | date) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _rows_per_day(table: Any) -> dict[str, int | None]:
    """Rows per ``score_date`` partition from the Delta log's file statistics (no data read)."""
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    parts = actions.get(f"partition.{PARTITION_COLUMN}", [])
    records = actions.get("num_records", [None] * len(parts))
    out: dict[str, int | None] = {}
    for part, n in zip(parts, records):
        if part is None:
            continue
        day = _iso(part)
        known = out.get(day, 0)
        out[day] = None if n is None or known is None else known + int(n)
    return out


def _batches(days: list[str], counts: dict[str, int | None]) -> list[list[str]]:
    """Consecutive days grouped so one pull stays under :data:`MAX_PULL_ROWS` rows."""
    batches: list[list[str]] = []
    size = 0
    for d in days:
        n = counts.get(d)
        n = MAX_PULL_ROWS if n is None else n
        if batches and size + n <= MAX_PULL_ROWS:
            batches[-1].append(d)
            size += n
        else:
            batches.append([d])
            size = n
    return batches


def _pull(
    spark: "SparkSession",
    table: Any,
    days: list[str],
    outcomes_df: "DataFrame",
    key_column: str,
    delay: int,
    subgroups: "DataFrame | None",
    columns: list[str],
) -> dict[str, "pa.Table"]:
    """One Spark job: the days' scored rows with their window label and subgroups, as Arrow per day."""
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    parts = []
    for d in days:
        files = table.file_uris(file_pruning_predicate=[(PARTITION_COLUMN, "=", d)])
        parts.append(
            spark.read.parquet(*files).select(
                F.lit(d).alias("_d"),
                F.col(key_column).cast("string").alias("_k"),
                F.col("score").cast("double").alias("_s"),
            )
        )
    preds = parts[0]
    for p in parts[1:]:
        preds = preds.unionByName(p)

    first = date.fromisoformat(days[0])
    last = date.fromisoformat(days[-1]) + timedelta(days=delay)
    outcomes = outcomes_df.select(F.col(KEY).alias("_ok"), F.col(DATE).alias("_od"), F.col(LABEL).alias("_y")).where(
        (F.col("_od") > F.lit(first)) & (F.col("_od") <= F.lit(last))
    )
    day = F.to_date(F.col("_d"))
    # a row id keeps every scored row exactly once (and unlabelled, left join) whatever its outcomes
    joined = (
        preds.withColumn("_id", F.monotonically_increasing_id())
        .join(
            outcomes,
            (F.col("_k") == F.col("_ok")) & (F.col("_od") > day) & (F.col("_od") <= F.date_add(day, delay)),
            "left",
        )
        .groupBy("_id")
        .agg(F.first("_d").alias("_d"), F.first("_k").alias("_k"), F.first("_s").alias("_s"), F.max("_y").alias("_y"))
    )
    gcols = [f"_g{i}" for i in range(len(columns))]
    if columns:
        # a subgroups frame with a score_date column holds each day's own values (the scored
        # rows' slices, pipelines.surveillance); without it, one value per key for every day
        by_day = PARTITION_COLUMN in subgroups.columns
        on = ["_k", "_d"] if by_day else ["_k"]
        groups = (
            subgroups.select(
                F.col(key_column).cast("string").alias("_k"),
                *([F.col(PARTITION_COLUMN).cast("string").alias("_d")] if by_day else []),
                *[F.col(c).cast("string").alias(g) for c, g in zip(columns, gcols)],
            )
            .groupBy(*on)
            .agg(*[F.min(g).alias(g) for g in gcols])
        )
        joined = joined.join(groups, on, "left")
    result = joined.select("_d", "_k", "_s", F.col("_y").cast("int").alias("_y"), *gcols).toArrow()
    result = result.rename_columns(["_d", "_k", "_s", "_y", *columns])
    out: dict[str, "pa.Table"] = {}
    for d in days:
        out[d] = result.filter(pc.equal(result.column("_d"), d))
    return out


def _window(
    day: str,
    matured: str,
    frame: "pa.Table | None",
    columns: list[str],
    *,
    capacity_percent: float,
    model_name: str,
    small_group: int,
    resamples: int,
    confidence: float,
    seed: int,
) -> WindowPerformance:
    """The metrics of one day's pulled rows (numpy and :mod:`promoter.core.stats` only)."""
    import pyarrow.compute as pc

    rows = 0 if frame is None else frame.num_rows
    if rows == 0:
        return WindowPerformance(day, matured, 0, 0, None, _empty(), note=f"{model_name}: no scored rows on {day}")
    # the outreach list: top capacity % of all scored rows by score, ties by key (deterministic)
    scores = frame.column("_s").fill_null(float("nan")).to_numpy(zero_copy_only=False).astype(np.float64)
    key_rank = np.empty(rows, dtype=np.int64)
    key_rank[pc.sort_indices(frame.column("_k")).to_numpy()] = np.arange(rows)
    order = np.lexsort((key_rank, -np.where(np.isfinite(scores), scores, -np.inf)))  # a missing score last
    selected = np.zeros(rows, dtype=bool)
    selected[order[: math.ceil(rows * capacity_percent / 100.0)]] = True
    label_col = frame.column("_y")
    has_label = ~label_col.is_null().to_numpy(zero_copy_only=False)
    labels = label_col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int8)
    labelled = int(has_label.sum())
    usable = has_label & np.isfinite(scores)
    args = {"resamples": resamples, "confidence": confidence, "seed": seed}
    metrics = _metrics(labels[usable], scores[usable], selected[usable], intervals=True, **args)
    subgroup_metrics: dict[str, dict[str, dict[str, Any]]] = {}
    for c in columns:
        values = np.asarray(frame.column(c).fill_null(MISSING).to_numpy(zero_copy_only=False), dtype=object)
        groups: dict[str, dict[str, Any]] = {}
        for g in sorted(set(values.tolist())):
            m = usable & (values == g)
            n = int(m.sum())
            groups[g] = _metrics(labels[m], scores[m], selected[m], intervals=n < small_group, **args)
        subgroup_metrics[c] = groups
    note = None
    if labelled == 0:
        note = f"{model_name}: none of the {rows} scores of {day} has an outcome recorded by {matured}"
    return WindowPerformance(
        score_date=day,
        matured_on=matured,
        rows=rows,
        labelled=labelled,
        coverage=labelled / rows,
        metrics=metrics,
        subgroups=subgroup_metrics,
        calibration=_calibration(labels[usable], scores[usable], metrics.get("ece")),
        note=note,
    )


def _empty() -> dict[str, Any]:
    return {k: (0 if k in ("n", "positives") else None) for k in METRIC_KEYS}


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _metrics(
    y: np.ndarray,
    s: np.ndarray,
    selected: np.ndarray,
    *,
    intervals: bool,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Every key of :data:`METRIC_KEYS` on labelled rows; undefined values are ``None``."""
    from promoter.core import stats

    out = _empty()
    n = int(y.size)
    if n == 0:
        return out
    positives = int(y.sum())
    out.update(n=n, positives=positives, prevalence=positives / n, mean_score=float(s.mean()))
    probabilities = bool(s.min() >= 0.0 and s.max() <= 1.0)
    out["roc_auc"] = _finite(stats.roc_auc(y, s))
    out["pr_auc"] = _finite(stats.average_precision(y, s))
    if probabilities:
        out["brier"] = _finite(stats.brier(y, s))
        out["log_loss"] = _finite(stats.log_loss(y, s))
        out["ece"] = _finite(stats.ece(y, s))
        slope, intercept = stats.calibration_slope_intercept(y, s)
        out["calibration_slope"], out["calibration_intercept"] = _finite(slope), _finite(intercept)
    chosen = int(selected.sum())
    hits = int(y[selected].sum())
    out["precision_at_k"] = hits / chosen if chosen else None
    out["recall_at_k"] = hits / positives if positives else None
    if intervals:
        for name in INTERVAL_METRICS:
            if out[name] is None:
                continue
            lo, hi = stats.bootstrap_interval(y, s, name, resamples=resamples, confidence=confidence, seed=seed)
            out[f"{name}_lower"], out[f"{name}_upper"] = _finite(lo), _finite(hi)
    return out


def _calibration(y: np.ndarray, s: np.ndarray, ece: float | None) -> dict[str, Any] | None:
    """Reliability bins of :data:`promoter.core.stats.ECE_BINS` equal widths ``(lo, hi]`` (0 in the
    first), the bins :func:`promoter.core.stats.ece` sums over; only non-empty bins are listed."""
    from promoter.core import stats

    if y.size == 0 or ece is None:
        return None
    edges = np.linspace(0.0, 1.0, stats.ECE_BINS + 1)
    bins = np.searchsorted(edges[1:-1], s, side="left")
    count = np.bincount(bins, minlength=stats.ECE_BINS)
    total_s = np.bincount(bins, weights=s, minlength=stats.ECE_BINS)
    total_y = np.bincount(bins, weights=y.astype(np.float64), minlength=stats.ECE_BINS)
    keep = count > 0
    return {
        "mean_score": (total_s[keep] / count[keep]).tolist(),
        "fraction_positive": (total_y[keep] / count[keep]).tolist(),
        "count": count[keep].astype(int).tolist(),
        "ece": ece,
    }
