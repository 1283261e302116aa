"""Post-market surveillance of the production model: score drift and subgroup shifts.

After each scoring run, the day's predictions are compared with the previous scored day:

* **score drift**: the population stability index (PSI) of the score distribution, over bins
  cut at the reference day's deciles (PSI < 0.1 stable, 0.1-0.2 moderate, > ``psi_alert`` acts);
* **subgroup shifts** (bias surveillance): per configured subgroup column and group, the mean
  score and the share of rows in the highest-risk tier, today against the reference; a
  change larger than ``share_alert`` in any group with at least ``min_group_size`` rows is an
  alert, because outreach capacity would silently move between groups.

All aggregation runs in Spark over the Delta partitions' Parquet files; only per-bin and
per-group aggregates reach the driver. Subgroup columns come from gold (joined on the
pseudonymous key), so predictions never need to carry them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings

PSI_ALERT = 0.2
SHARE_ALERT = 0.05
MIN_GROUP_SIZE = 50
BINS = 10
_EPS = 1e-6


@dataclass(frozen=True)
class GroupShift:
    subgroup: str
    group: str
    n: int
    mean_score: float
    reference_mean_score: float | None
    top_tier_share: float
    reference_top_tier_share: float | None

    @property
    def share_change(self) -> float | None:
        if self.reference_top_tier_share is None:
            return None
        return self.top_tier_share - self.reference_top_tier_share


@dataclass(frozen=True)
class SurveillanceReport:
    score_date: str
    reference_date: str | None
    rows: int
    psi: float | None
    groups: list[GroupShift] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        return {
            "score_psi": self.psi,
            "rows": self.rows,
            "max_top_tier_share_change": max(
                (abs(g.share_change) for g in self.groups if g.share_change is not None), default=None
            ),
        }

    def summary(self) -> str:
        if self.reference_date is None:
            return f"{self.rows} scores on {self.score_date}; no earlier day to compare with yet"
        head = f"score PSI {self.psi:.3f} vs {self.reference_date}"
        return head + (f"; {len(self.alerts)} alert(s): " + "; ".join(self.alerts) if self.alerts else "; no alerts")

    def to_dict(self) -> dict[str, Any]:
        return {
            "score_date": self.score_date,
            "reference_date": self.reference_date,
            "rows": self.rows,
            "psi": self.psi,
            "alerts": list(self.alerts),
            "groups": [{**asdict(g), "share_change": g.share_change} for g in self.groups],
        }


def psi(reference_counts: list[int], current_counts: list[int]) -> float:
    """Population stability index of two histograms over the same bins (pure).

    Empty bins get a small floor so the index stays finite.
    """
    if len(reference_counts) != len(current_counts) or not reference_counts:
        raise ValueError("both histograms need the same, non-zero number of bins")
    r_total = sum(reference_counts) or 1
    c_total = sum(current_counts) or 1
    out = 0.0
    for r, c in zip(reference_counts, current_counts):
        p = max(r / r_total, _EPS)
        q = max(c / c_total, _EPS)
        out += (q - p) * math.log(q / p)
    return out


def _day_frame(spark: "SparkSession", table_uri: str, day: str) -> "DataFrame":
    from deltalake import DeltaTable

    files = DeltaTable(table_uri).file_uris(partition_filters=[("score_date", "=", day)])
    return spark.read.parquet(*files)


def surveil(spark: "SparkSession", settings: "Settings", gold_df: "DataFrame", score_date: date) -> SurveillanceReport:
    """Compare ``score_date``'s predictions with the previous scored day.

    Raises:
        NotFound: when ``score_date`` has not been scored.
    """
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from pipelines.score import table_paths
    from promoter.errors import NotFound

    path, _ = table_paths(settings)
    day = score_date.isoformat()
    if not DeltaTable.is_deltatable(path):
        raise NotFound(f"no predictions table at {path}: score before surveillance")
    days = sorted({p["score_date"] for p in DeltaTable(path).partitions()})
    if day not in days:
        raise NotFound(f"no predictions for {day} in {path}: score that day first")
    earlier = [d for d in days if d < day]
    reference = earlier[-1] if earlier else None
    key = settings.project.data.key_column  # the key of gold and of the predictions table
    top_tier = settings.project.scoring.tiers[0].name
    subgroups = [c for c in settings.project.data.subgroup_columns if c in gold_df.columns]

    def by_group(frame: "DataFrame") -> dict[tuple[str, str], tuple[int, float, float]]:
        joined = frame.select(key, "score", "risk_tier").join(gold_df.select(key, *subgroups), key, "left")
        out: dict[tuple[str, str], tuple[int, float, float]] = {}
        for col in subgroups:
            rows = (
                joined.groupBy(F.coalesce(F.col(col).cast("string"), F.lit("(missing)")).alias("g"))
                .agg(
                    F.count("*").alias("n"),
                    F.avg("score").alias("mean"),
                    F.avg((F.col("risk_tier") == top_tier).cast("double")).alias("share"),
                )
                .collect()
            )
            for r in rows:
                out[(col, r["g"])] = (int(r["n"]), float(r["mean"]), float(r["share"]))
        return out

    current = _day_frame(spark, path, day)
    rows = current.count()
    if reference is None:
        return SurveillanceReport(day, None, rows, None)
    ref = _day_frame(spark, path, reference)
    cuts = ref.approxQuantile("score", [i / BINS for i in range(1, BINS)], 0.001)
    cuts = sorted(set(cuts))

    def hist(frame: "DataFrame") -> list[int]:
        bucket = F.lit(0)
        for c in cuts:
            bucket = bucket + (F.col("score") > F.lit(c)).cast("int")
        counts = dict(frame.groupBy(bucket.alias("b")).count().collect())
        return [int(counts.get(i, 0)) for i in range(len(cuts) + 1)]

    index = psi(hist(ref), hist(current))
    now_groups, ref_groups = by_group(current), by_group(ref)
    groups: list[GroupShift] = []
    alerts: list[str] = []
    if index > PSI_ALERT:
        alerts.append(f"score distribution drifted: PSI {index:.3f} > {PSI_ALERT}")
    for (col, g), (n, mean, share) in sorted(now_groups.items()):
        ref_n, ref_mean, ref_share = ref_groups.get((col, g), (0, None, None))
        shift = GroupShift(col, g, n, mean, ref_mean, share, ref_share)
        groups.append(shift)
        change = shift.share_change
        if change is not None and n >= MIN_GROUP_SIZE and ref_n >= MIN_GROUP_SIZE and abs(change) > SHARE_ALERT:
            alerts.append(f"{col}={g}: {top_tier}-tier share {ref_share:.1%} -> {share:.1%}")
    return SurveillanceReport(day, reference, rows, index, groups, alerts)
