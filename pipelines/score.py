"""Batch scoring: gold features -> Delta predictions table and outreach list, with risk tiers.

The whole population is scored in Spark. The driver receives only aggregates (row, key and tier
counts), the capacity cut points with the few scores that make them exact (about
4 x ``quantile_relative_error`` x rows doubles per tier, no keys) and the Parquet footers of the
written files; the scored rows never pass through it. The tables are written by Spark as Parquet
and committed to Delta with ``deltalake``'s transaction API, one atomic commit per table that
replaces the day's partition and leaves other days alone (see :mod:`pipelines.delta` for why this
and not ``write_deltalake``).

Tables (paths from ``project.yml`` ``scoring:``, relative to the model's lake folder
``<lake_root>/<model_name>``), both partitioned by ``score_date``, and holding no PHI: only the
pseudonymous key, in a column named as the project's ``data.key_column`` (``<key>`` below), and
the columns below.

* predictions: ``<key>, score, risk_tier, model_name, model_version, run_id, scored_at, score_date``
* outreach list (the top ``top_n`` rows by score, ties by key):
  ``<key>, score, risk_tier, rank, model_version, score_date``

Risk tiers (pure functions below, also usable without Spark):

* ``tiering: cut_points``: tier ``i`` holds scores ``>= min_score_i`` (first match, highest first).
* ``tiering: capacity``: tier ``i`` holds the next ``percent_i`` of rows by score. The cut
  point is the exact score at quantile ``p = 1 - cumulative share`` (rank ``ceil(p * rows)``, as
  Spark defines it) and a tier holds the scores strictly above it, so a tier never exceeds its
  capacity (``floor(share * rows)`` rows when scores are distinct); rows tied at a boundary
  go to the lower tier together. Spark's ``approxQuantile`` brackets each cut point within
  ``quantile_relative_error`` x rows ranks and one more pass picks the exact score from the few
  scores inside the bracket (:func:`capacity_scores`).

The two tables are two commits: if the outreach write fails after the predictions commit, run the
same date again; both partitions are replaced.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pipelines import delta
from promoter.errors import DataContractError, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.ml import PipelineModel
    from pyspark.sql import Column, DataFrame, SparkSession

    from promoter.config import ProjectSettings, ScoringSettings, Settings

PARTITION_COLUMN = "score_date"
# the columns after the key (the key column is named as the project's data.key_column, which
# config keeps off these names: promoter.config.models.SCORE_TABLE_COLUMNS)
PREDICTION_VALUE_COLUMNS = ("score", "risk_tier", "model_name", "model_version", "run_id", "scored_at", "score_date")
OUTREACH_VALUE_COLUMNS = ("score", "risk_tier", "rank", "model_version", "score_date")
DEFAULT_KEY_COLUMN = "key"  # the engine's default data.key_column
MAX_REFINE_WINDOW = 2_000_000  # scores brought to the driver to make capacity cut points exact

# Values that must never appear in an output table (a guard for tests and audits).
PHI_VALUE_PATTERNS = {
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "phone": re.compile(r"(?:\+?1[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"),
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
}


# --------------------------------------------------------------------------- pure tiering


@dataclass(frozen=True)
class TierCut:
    """A score above (``inclusive``: at or above) ``threshold`` is in tier ``name``."""

    name: str
    threshold: float
    inclusive: bool

    def holds(self, score: float) -> bool:
        """True when ``score`` falls in this tier (or a higher one already checked)."""
        return score >= self.threshold if self.inclusive else score > self.threshold


def capacity_quantiles(scoring: "ScoringSettings") -> list[float]:
    """The quantile probabilities whose scores bound each capacity tier (all but the last tier).

    ``high 5 %, medium 15 %`` gives ``[0.95, 0.80]``. A tier whose cumulative share reaches 100 %
    gives ``0.0`` (everyone left).
    """
    out: list[float] = []
    cumulative = 0.0
    for tier in scoring.tiers[:-1]:
        cumulative += float(tier.percent or 0.0)
        out.append(max(0.0, round(1.0 - cumulative / 100.0, 12)))
    return out


def tier_cuts(scoring: "ScoringSettings", quantile_scores: Sequence[float] | None = None) -> list[TierCut]:
    """The ordered cuts for every tier but the last (which takes everyone left).

    Args:
        scoring: the ``scoring:`` settings.
        quantile_scores: for ``tiering: capacity``, the scores at :func:`capacity_quantiles`
            (same order); ignored for ``cut_points``.

    Returns:
        One :class:`TierCut` per bounded tier, highest risk first.

    Raises:
        ValueError: when capacity tiers are asked for without their quantile scores.
    """
    bounded = scoring.tiers[:-1]
    if scoring.tiering == "cut_points":
        return [TierCut(t.name, float(t.min_score), True) for t in bounded]  # type: ignore[arg-type]
    probs = capacity_quantiles(scoring)
    if quantile_scores is None or len(quantile_scores) != len(probs):
        raise ValueError(f"capacity tiers need {len(probs)} quantile scores, got {quantile_scores!r}")
    return [
        TierCut(t.name, -math.inf if p <= 0.0 else float(q), False) for t, p, q in zip(bounded, probs, quantile_scores)
    ]


def assign_tier(score: float, cuts: Sequence[TierCut], rest: str) -> str:
    """The tier of one score: the first cut it passes, else ``rest``."""
    for cut in cuts:
        if cut.holds(score):
            return cut.name
    return rest


def exact_quantile(sorted_scores: Sequence[float], p: float) -> float:
    """Spark's exact quantile (``approxQuantile`` with error 0): the value at rank ``ceil(p * n)``."""
    n = len(sorted_scores)
    if n == 0:
        raise ValueError("no scores")
    rank = max(1, math.ceil(p * n))
    return sorted_scores[min(rank, n) - 1]


def rank_in_window(window: Sequence[float], below: int, rank: int) -> float | None:
    """The score at ``rank`` (1-based, ascending) given the sorted scores of a window and the
    count of scores below it; ``None`` when that rank is not inside the window."""
    i = rank - below - 1
    return window[i] if 0 <= i < len(window) else None


def tier_scores(scores: Sequence[float], scoring: "ScoringSettings") -> list[str]:
    """Tier a list of scores exactly as :func:`score_population` does with exact quantiles.

    Args:
        scores: model scores, any order.
        scoring: the ``scoring:`` settings.

    Returns:
        The tier name of each score, in the input order.
    """
    quantiles = None
    if scoring.tiering == "capacity":
        ordered = sorted(scores)
        quantiles = [exact_quantile(ordered, p) if p > 0 else -math.inf for p in capacity_quantiles(scoring)]
    cuts = tier_cuts(scoring, quantiles)
    rest = scoring.tiers[-1].name
    return [assign_tier(s, cuts, rest) for s in scores]


def phi_findings(values: Sequence[Any]) -> list[tuple[str, str]]:
    """``(pattern name, value)`` for each value that looks like an SSN, phone number or e-mail."""
    found = []
    for v in values:
        if isinstance(v, str):
            for name, pattern in PHI_VALUE_PATTERNS.items():
                if pattern.search(v):
                    found.append((name, v))
    return found


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class ScoreResult:
    """What one scoring run wrote.

    Attributes:
        rows: rows scored (rows in the day's predictions partition).
        tier_counts: rows per tier, every configured tier present (0 when empty).
        cut_points: each bounded tier's score threshold as used (capacity: the quantile score).
        predictions_path: the predictions Delta table.
        outreach_path: the outreach-list Delta table.
        outreach_rows: rows on the outreach list.
        score_date: the partition written.
        predictions_version: Delta version of the predictions commit.
        outreach_version: Delta version of the outreach commit.
        model_name, model_version, run_id, scored_at: as written on every row.
        tiering: ``capacity`` or ``cut_points``.
        tiers_exact: capacity cut points are exact quantiles (False only when the refinement
            window was too large and Spark's approximate quantiles were used as they are).
    """

    rows: int
    tier_counts: dict[str, int]
    cut_points: dict[str, float]
    predictions_path: str
    outreach_path: str
    outreach_rows: int
    score_date: date
    predictions_version: int
    outreach_version: int
    model_name: str
    model_version: int
    run_id: str
    scored_at: datetime
    tiering: str = "capacity"
    tiers_exact: bool = True

    @property
    def delta_versions(self) -> dict[str, int]:
        """``{"predictions": v, "outreach": v}``."""
        return {"predictions": self.predictions_version, "outreach": self.outreach_version}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for an audit record or a report)."""
        out = asdict(self)
        out["score_date"] = self.score_date.isoformat()
        out["scored_at"] = self.scored_at.isoformat()
        out["cut_points"] = {k: (None if math.isinf(v) else v) for k, v in self.cut_points.items()}
        return out


# --------------------------------------------------------------------------- Spark


def prediction_columns(key_column: str = DEFAULT_KEY_COLUMN) -> tuple[str, ...]:
    """The predictions table's columns, in order: the key (``data.key_column``) first."""
    return (key_column, *PREDICTION_VALUE_COLUMNS)


def outreach_columns(key_column: str = DEFAULT_KEY_COLUMN) -> tuple[str, ...]:
    """The outreach table's columns, in order: the key (``data.key_column``) first."""
    return (key_column, *OUTREACH_VALUE_COLUMNS)


def predictions_schema(key_column: str = DEFAULT_KEY_COLUMN) -> "pa.Schema":
    """The predictions table's Arrow schema (partition column last)."""
    import pyarrow as pa

    return pa.schema(
        [
            (key_column, pa.string()),
            ("score", pa.float64()),
            ("risk_tier", pa.string()),
            ("model_name", pa.string()),
            ("model_version", pa.int64()),
            ("run_id", pa.string()),
            ("scored_at", pa.timestamp("us", tz="UTC")),
            ("score_date", pa.date32()),
        ]
    )


def outreach_schema(key_column: str = DEFAULT_KEY_COLUMN) -> "pa.Schema":
    """The outreach table's Arrow schema (partition column last)."""
    import pyarrow as pa

    return pa.schema(
        [
            (key_column, pa.string()),
            ("score", pa.float64()),
            ("risk_tier", pa.string()),
            ("rank", pa.int32()),
            ("model_version", pa.int64()),
            ("score_date", pa.date32()),
        ]
    )


def table_paths(settings: "Settings | ProjectSettings") -> tuple[str, str]:
    """``(predictions table, outreach table)`` locations under the model's folder of the lake."""
    project = _project(settings)
    return (
        delta.join(project.lake, project.scoring.predictions_table),
        delta.join(project.lake, project.scoring.outreach_table),
    )


def tier_column(score: "Column", cuts: Sequence[TierCut], rest: str) -> "Column":
    """The Spark expression of :func:`assign_tier`."""
    from pyspark.sql import functions as F

    expr = None
    for cut in cuts:
        if math.isinf(cut.threshold) and cut.threshold < 0:
            cond = F.lit(True)
        else:
            cond = score >= F.lit(cut.threshold) if cut.inclusive else score > F.lit(cut.threshold)
        expr = F.when(cond, F.lit(cut.name)) if expr is None else expr.when(cond, F.lit(cut.name))
    return F.lit(rest) if expr is None else expr.otherwise(F.lit(rest))


def capacity_scores(
    scored: "DataFrame", probs: Sequence[float], rows: int, relative_error: float, max_window: int = MAX_REFINE_WINDOW
) -> tuple[list[float], bool]:
    """The exact score at each quantile ``probs`` (Spark's definition: rank ``ceil(p * rows)``).

    Spark's ``approxQuantile`` brackets each rank within ``relative_error * rows``; one more pass
    counts the scores below each bracket and brings the few scores inside it (about
    ``4 * relative_error * rows`` doubles per tier: 400 per million rows at 1e-4) to the driver,
    where the exact one is picked. Only scores travel, never keys.

    Returns:
        ``(scores, exact)``; a probability of 0 gives ``-inf`` (everyone left). ``exact`` is False
        when a bracket held more than ``max_window`` scores and the approximate value was kept.
    """
    from pyspark.sql import functions as F

    out: list[float] = [-math.inf] * len(probs)
    asked = [i for i, p in enumerate(probs) if p > 0]
    if not asked:
        return out, True
    if relative_error == 0:
        for i, q in zip(asked, scored.approxQuantile("score", [probs[i] for i in asked], 0.0)):
            out[i] = float(q)
        return out, True
    margin = 2 * relative_error
    want = [probs[i] for i in asked]
    bounds = scored.approxQuantile(
        "score",
        [max(0.0, p - margin) for p in want] + [p for p in want] + [min(1.0, p + margin) for p in want],
        relative_error,
    )
    k = len(want)
    lows, approx, highs = bounds[:k], bounds[k : 2 * k], bounds[2 * k :]
    score = F.col("score")
    below = scored.agg(*[F.sum((score < F.lit(lo)).cast("long")).alias(f"b{j}") for j, lo in enumerate(lows)]).first()
    inside = None
    for lo, hi in zip(lows, highs):
        cond = score.between(F.lit(lo), F.lit(hi))
        inside = cond if inside is None else inside | cond
    window = sorted(r["score"] for r in scored.filter(inside).select("score").limit(max_window + 1).collect())
    exact = len(window) <= max_window
    for j, i in enumerate(asked):
        rank = max(1, math.ceil(want[j] * rows))
        got = None
        if exact:
            mine = [s for s in window if lows[j] <= s <= highs[j]]
            got = rank_in_window(mine, int(below[f"b{j}"] or 0), rank)
        if got is None:
            exact = False
            got = approx[j]
        out[i] = float(got)
    return out, exact


def model_input_columns(model: Any) -> list[str]:
    """Columns a fitted Spark ML pipeline reads from its input (not made by an earlier stage)."""
    stages = list(getattr(model, "stages", [model]))
    made: set[str] = set()
    needed: list[str] = []
    for stage in stages:
        inputs: list[str] = []
        for getter, many in (("getInputCols", True), ("getInputCol", False), ("getFeaturesCol", False)):
            fn = getattr(stage, getter, None)
            if fn is None:
                continue
            try:
                got = fn()
            except Exception:  # noqa: BLE001 - param not set on this stage
                continue
            inputs.extend(got if many else [got])
            if getter != "getFeaturesCol":
                break
        for col in inputs:
            if col not in made and col not in needed:
                needed.append(col)
        for getter, many in (
            ("getOutputCols", True),
            ("getOutputCol", False),
            ("getPredictionCol", False),
            ("getProbabilityCol", False),
            ("getRawPredictionCol", False),
        ):
            fn = getattr(stage, getter, None)
            if fn is None:
                continue
            try:
                got = fn()
            except Exception:  # noqa: BLE001
                continue
            made.update(got if many else [got])
    return needed


def score_frame(model: "PipelineModel", gold_df: "DataFrame", key_column: str = DEFAULT_KEY_COLUMN) -> "DataFrame":
    """``<key_column>, score`` for every row of ``gold_df`` (lazy; the score is P(class 1)).

    Raises:
        DataContractError: when the key or a column the model reads is missing, or the model
            gives no ``probability``.
    """
    from pyspark.errors import AnalysisException
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    missing = [c for c in [key_column, *model_input_columns(model)] if c not in gold_df.columns]
    if missing:
        shown = ", ".join(missing[:20]) + (f", ... ({len(missing)} in all)" if len(missing) > 20 else "")
        raise DataContractError(f"gold features lack column(s) the scoring needs: {shown}")
    try:
        out = model.transform(gold_df)
        if "probability" not in out.columns:
            raise DataContractError(
                "the model gives no 'probability' column; scoring needs a probabilistic binary classifier"
            )
        return out.select(
            F.col(key_column).cast("string").alias(key_column),
            vector_to_array(F.col("probability"))[1].cast("double").alias("score"),
        )
    except AnalysisException as exc:
        raise DataContractError(f"gold features do not fit the model: {str(exc).splitlines()[0][:300]}") from None


def score_population(
    spark: "SparkSession",
    model: "PipelineModel",
    gold_df: "DataFrame",
    *,
    score_date: date,
    model_name: str,
    model_version: int,
    run_id: str,
    settings: "Settings | ProjectSettings",
    scored_at: datetime,
) -> ScoreResult:
    """Score every row in Spark and replace ``score_date``'s partitions of both tables.

    Args:
        spark: the session (the gold frame's).
        model: a fitted Spark ML pipeline whose output has ``probability``; the score is P(class 1).
        gold_df: one snapshot of gold features: one row per key, with the key column
            (``data.key_column``, which also names the key column of both tables) and the
            model's input columns.
        score_date: the partition to write (re-running a date replaces it).
        model_name: the registered model, written on every row.
        model_version: the registered version, written on every row.
        run_id: the MLflow run of the model version, written on every row.
        settings: the loaded settings (or just ``settings.project``): the lake, ``data.key_column``,
            ``scoring``.
        scored_at: when this run scored (a naive time is taken as UTC).

    Returns:
        The :class:`ScoreResult`.

    Raises:
        InvalidInput: bad model name/version/run id.
        DataContractError: no rows, a missing column, a null or repeated key, or scores
            that are null/NaN; nothing is written.
    """
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    project = _project(settings)
    scoring = project.scoring
    key_column = project.data.key_column
    if key_column in set(project.data.phi_columns):
        raise DataContractError(
            f"the key column {key_column!r} is listed in data.phi_columns; predictions carry only a pseudonymous key"
        )
    if not isinstance(model_version, int) or isinstance(model_version, bool) or model_version < 1:
        raise InvalidInput(f"model_version must be a positive whole number, got {model_version!r}")
    if not model_name or not run_id:
        raise InvalidInput("model_name and run_id must not be empty")
    if isinstance(score_date, datetime) or not isinstance(score_date, date):
        raise InvalidInput(f"score_date must be a date (not a time), got {score_date!r}")
    scored_at = _utc(scored_at)
    predictions_path, outreach_path = table_paths(project)

    scored = score_frame(model, gold_df, key_column).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        check = scored.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count_distinct(key_column).alias("keys"),
            F.sum(F.col(key_column).isNull().cast("long")).alias("null_keys"),
            F.sum((F.col("score").isNull() | F.isnan("score")).cast("long")).alias("bad_scores"),
        ).first()
        rows = int(check["rows"])
        if rows == 0:
            raise DataContractError(
                f"gold features have no rows to score for {score_date.isoformat()}; nothing was written"
            )
        if check["null_keys"]:
            raise DataContractError(f"{check['null_keys']} gold row(s) have no {key_column}; nothing was written")
        if int(check["keys"]) != rows:
            raise DataContractError(
                f"gold has {rows} rows but {check['keys']} distinct {key_column} values: "
                "score one snapshot (one row per key); nothing was written"
            )
        if check["bad_scores"]:
            raise DataContractError(
                f"{check['bad_scores']} row(s) got no score (null/NaN features?); nothing was written"
            )

        quantiles, exact = None, True
        if scoring.tiering == "capacity":
            quantiles, exact = capacity_scores(
                scored, capacity_quantiles(scoring), rows, scoring.quantile_relative_error
            )
        cuts = tier_cuts(scoring, quantiles)
        rest = scoring.tiers[-1].name
        tiered = scored.withColumn("risk_tier", tier_column(F.col("score"), cuts, rest))

        counts = {r["risk_tier"]: int(r["count"]) for r in tiered.groupBy("risk_tier").count().collect()}
        tier_counts = {t.name: counts.get(t.name, 0) for t in scoring.tiers}

        metadata = {
            "model_name": model_name,
            "model_version": model_version,
            "run_id": run_id,
            "score_date": score_date,
            "scored_at": scored_at,
            "tiering": scoring.tiering,
        }
        predictions = tiered.select(
            key_column,
            "score",
            "risk_tier",
            F.lit(model_name).alias("model_name"),
            F.lit(model_version).cast("long").alias("model_version"),
            F.lit(run_id).alias("run_id"),
            F.lit(scored_at).cast("timestamp").alias("scored_at"),
        )
        written = delta.replace_partition(
            predictions,
            predictions_path,
            schema=predictions_schema(key_column),
            partition_column=PARTITION_COLUMN,
            value=score_date,
            commit_metadata=metadata,
            max_rows_per_file=scoring.max_rows_per_file,
            num_files=max(1, math.ceil(rows / scoring.max_rows_per_file)),
        )
        if written.rows != rows:
            raise DataContractError(f"wrote {written.rows} prediction rows for {rows} scored rows")

        order = [F.col("score").desc(), F.col(key_column).asc()]
        top = tiered.orderBy(*order).limit(scoring.top_n)
        outreach = top.select(
            key_column,
            "score",
            "risk_tier",
            F.row_number().over(Window.orderBy(*order)).cast("int").alias("rank"),
            F.lit(model_version).cast("long").alias("model_version"),
        )
        listed = delta.replace_partition(
            outreach,
            outreach_path,
            schema=outreach_schema(key_column),
            partition_column=PARTITION_COLUMN,
            value=score_date,
            commit_metadata=metadata,
            num_files=1,
        )
    finally:
        scored.unpersist()

    return ScoreResult(
        rows=rows,
        tier_counts=tier_counts,
        cut_points={c.name: c.threshold for c in cuts},
        predictions_path=written.table_uri,
        outreach_path=listed.table_uri,
        outreach_rows=listed.rows,
        score_date=score_date,
        predictions_version=written.version,
        outreach_version=listed.version,
        model_name=model_name,
        model_version=model_version,
        run_id=run_id,
        scored_at=scored_at,
        tiering=scoring.tiering,
        tiers_exact=exact,
    )


def predictions_summary(settings: "Settings | ProjectSettings") -> dict[date, dict[str, Any]]:
    """Rows and model version per score date in the predictions table, from the Delta log only.

    Returns:
        ``{date: {"rows": int, "model_version": int | None}}`` (``None`` if a partition somehow
        mixes versions); empty when nothing has been scored yet.
    """
    from deltalake import DeltaTable

    path, _ = table_paths(settings)
    if not DeltaTable.is_deltatable(path):
        return {}
    out: dict[date, dict[str, Any]] = {}
    for day, stats in delta.partition_stats(path, PARTITION_COLUMN, ("model_version",)).items():
        lo, hi = stats["model_version"]
        out[date.fromisoformat(day)] = {"rows": stats["rows"], "model_version": lo if lo == hi else None}
    return out


def _project(settings: Any) -> "ProjectSettings":
    return getattr(settings, "project", settings)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
