"""Metrics of a scored DataFrame, computed in Spark: overall and per subgroup.

Every function takes DataFrames and returns plain data; nothing here reads or writes
tables, and nothing knows about registries. The gate (champion vs challenger) calls the
same code on the same held-out rows for both models (DESIGN invariant 3).

Metrics (keys of :attr:`EvalResult.metrics` and of each subgroup's dict):

=================  ====================================================================
``n``              rows
``positives``      rows with label 1
``prevalence``     positives / n
``roc_auc``        area under the ROC curve (ties handled exactly, as scikit-learn)
``pr_auc``         area under the precision-recall curve as average precision
                   (step-wise, as scikit-learn's ``average_precision_score``)
``brier``          mean squared error of the probability
``log_loss``       mean negative log-likelihood (probabilities clipped to [1e-15, 1-1e-15])
``ece``            expected calibration error over ``ece_bins`` equal-width bins
``precision_at_k`` of the top ``top_k_percent`` % rows by score, the share that are positive
``recall_at_k``    of all positives, the share in the top ``top_k_percent`` %
``selected``       rows in the top ``top_k_percent`` % (overall: k)
=================  ====================================================================

The top k % is chosen once over **all** rows (the outreach list has one capacity); per
subgroup, ``precision_at_k``/``recall_at_k`` describe that same list restricted to the
group. Ties in score are broken by the id column so the list is deterministic. A metric
that is undefined for a group (AUC with one class, precision with nobody selected) is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from promoter.config.models import EVALUATION_METRICS
from promoter.errors import DataContractError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

EPS = 1e-15
ALL = "__all__"
MISSING_GROUP = "(missing)"
# the keys of every metrics dict below; the list lives in config (a gate may name only these)
METRIC_NAMES = EVALUATION_METRICS
DEFAULT_ID_COLUMN = "key"  # the engine's default key column (project.yml data.key_column)


@dataclass(frozen=True)
class EvalResult:
    """Metrics on one evaluation set.

    Attributes:
        metrics: metric name -> value over all rows (see the module docstring).
        subgroup_metrics: subgroup column -> group value -> metric name -> value (incl. ``n``).
        top_k_percent: the k used for ``*_at_k``.
        ece_bins: the bins used for ``ece``.
    """

    metrics: dict[str, float]
    subgroup_metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    top_k_percent: float = 5.0
    ece_bins: int = 10

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (NaN becomes ``None``)."""

        def clean(d: Mapping[str, float]) -> dict[str, float | None]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

        return {
            "metrics": clean(self.metrics),
            "subgroup_metrics": {
                c: {g: clean(m) for g, m in groups.items()} for c, groups in self.subgroup_metrics.items()
            },
            "top_k_percent": self.top_k_percent,
            "ece_bins": self.ece_bins,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalResult":
        """Inverse of :meth:`to_dict`."""

        def fill(d: Mapping[str, Any]) -> dict[str, float]:
            return {k: (float("nan") if v is None else float(v)) for k, v in d.items()}

        return cls(
            metrics=fill(data["metrics"]),
            subgroup_metrics={
                c: {g: fill(m) for g, m in groups.items()} for c, groups in data.get("subgroup_metrics", {}).items()
            },
            top_k_percent=float(data.get("top_k_percent", 5.0)),
            ece_bins=int(data.get("ece_bins", 10)),
        )

    def flat(self) -> dict[str, float]:
        """``{metric: v, "<metric>.<column>.<group>": v}`` for logging (NaN left out)."""
        out = {k: v for k, v in self.metrics.items() if not math.isnan(v)}
        for col, groups in self.subgroup_metrics.items():
            for group, values in groups.items():
                for k, v in values.items():
                    if not math.isnan(v):
                        out[f"{k}.{col}.{group}"] = v
        return out


@dataclass(frozen=True)
class Curves:
    """Points for the ROC, precision-recall and calibration plots (from binned scores)."""

    fpr: np.ndarray
    tpr: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    bin_mean_score: np.ndarray
    bin_fraction_positive: np.ndarray
    bin_count: np.ndarray


# --------------------------------------------------------------------------- scoring


def score(model: "PipelineModel", df: "DataFrame", score_col: str = "score") -> "DataFrame":
    """``df`` with a ``score`` column: the model's probability of class 1.

    The model's own output columns (features, raw prediction, probability, prediction) are
    dropped; every input column is kept.

    Args:
        model: a fitted Spark ``PipelineModel`` whose last stage is a probabilistic classifier.
        df: rows to score (must hold the model's feature columns).
        score_col: name of the new column.
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    out = model.transform(df)
    last = model.stages[-1]
    prob = last.getProbabilityCol() if hasattr(last, "getProbabilityCol") else "probability"
    out = out.withColumn(score_col, vector_to_array(F.col(prob)).getItem(1))
    added = [c for c in out.columns if c not in df.columns and c != score_col]
    return out.drop(*added)


# --------------------------------------------------------------------------- metrics


def _check_columns(df: "DataFrame", cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataContractError(f"evaluation rows lack column(s) {', '.join(missing)} (have: {', '.join(df.columns)})")


def _nan_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def metrics(
    pred_df: "DataFrame",
    label_col: str,
    score_col: str = "score",
    top_k_percent: float = 5.0,
    subgroup_cols: Sequence[str] = (),
    ece_bins: int = 10,
    id_col: str | None = DEFAULT_ID_COLUMN,
) -> EvalResult:
    """Every metric of the module docstring, overall and per subgroup, in one Spark job.

    Args:
        pred_df: scored rows (one per key), e.g. ``score(model, evaluation_rows(...))``.
        label_col: 0/1 label column.
        score_col: probability of class 1.
        top_k_percent: outreach capacity for ``precision_at_k``/``recall_at_k``, in percent.
        subgroup_cols: columns to break the metrics down by (a null value is "(missing)").
        ece_bins: equal-width probability bins for the calibration error.
        id_col: the key column (``data.key_column``); it breaks score ties in the top-k list
            (``None``: ties broken arbitrarily).

    Returns:
        EvalResult.

    Raises:
        DataContractError: when columns are missing, labels are not 0/1, or scores are null
            or outside [0, 1], or there are no rows.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not 0 < top_k_percent <= 100:
        raise ValueError(f"top_k_percent must be in (0, 100], got {top_k_percent}")
    if ece_bins < 1:
        raise ValueError(f"ece_bins must be >= 1, got {ece_bins}")
    subgroup_cols = list(subgroup_cols)
    _check_columns(pred_df, [label_col, score_col, *subgroup_cols, *([id_col] if id_col else [])])

    gcols = [f"_g{i}" for i in range(len(subgroup_cols))]
    base = pred_df.select(
        F.col(label_col).cast("double").alias("y"),
        F.col(score_col).cast("double").alias("p"),
        *([F.col(id_col).cast("string").alias("_id")] if id_col else []),
        *[F.coalesce(F.col(c).cast("string"), F.lit(MISSING_GROUP)).alias(g) for c, g in zip(subgroup_cols, gcols)],
    )
    # One Spark job: rank all rows once (the top-k list), fan each row out to "all" and its
    # subgroups, aggregate per distinct score, accumulate along the score order (ROC/AP), and
    # aggregate again per probability bin (ECE). Only the per-bin sums reach the driver.
    order = [F.desc_nulls_last("p")] + ([F.asc("_id")] if id_col else [])
    ranked = (
        base.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy()))
        .withColumn("_rank", F.row_number().over(Window.orderBy(*order)))
        .withColumn("_sel", (F.col("_rank") <= F.ceil(F.col("_n") * F.lit(top_k_percent / 100.0))).cast("double"))
    )
    dims = [F.struct(F.lit(ALL).alias("dim"), F.lit(ALL).alias("grp"))] + [
        F.struct(F.lit(c).alias("dim"), F.col(g).alias("grp")) for c, g in zip(subgroup_cols, gcols)
    ]
    clipped = F.least(F.greatest(F.col("p"), F.lit(EPS)), F.lit(1 - EPS))
    bad_y = F.col("y").isNull() | ~F.col("y").isin(0.0, 1.0)
    bad_p = F.col("p").isNull() | F.isnan("p") | (F.col("p") < 0) | (F.col("p") > 1)
    by_score = (
        ranked.withColumn("_d", F.explode(F.array(*dims)))
        .groupBy(F.col("_d.dim").alias("dim"), F.col("_d.grp").alias("grp"), "p")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("y").alias("tp"),
            F.sum(1 - F.col("y")).alias("fp"),
            F.sum((F.col("p") - F.col("y")) ** 2).alias("sq"),
            F.sum(-(F.col("y") * F.log(clipped) + (1 - F.col("y")) * F.log(1 - clipped))).alias("ll"),
            F.sum("_sel").alias("sel"),
            F.sum(F.col("_sel") * F.col("y")).alias("tp_sel"),
            F.sum(bad_y.cast("int")).alias("bad_y"),
            F.sum(bad_p.cast("int")).alias("bad_p"),
        )
    )
    w = (
        Window.partitionBy("dim", "grp")
        .orderBy(F.desc_nulls_last("p"))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    by_score = by_score.withColumn("ctp", F.sum("tp").over(w)).withColumn("cfp", F.sum("fp").over(w))
    bin_ = F.least(F.floor(F.col("p") * ece_bins), F.lit(ece_bins - 1)).cast("int")
    rows = (
        by_score.groupBy("dim", "grp", bin_.alias("bin"))
        .agg(
            F.sum("n").alias("n"),
            F.sum("tp").alias("pos"),
            F.sum(F.col("p") * F.col("n")).alias("sum_p"),
            F.sum("sq").alias("sq"),
            F.sum("ll").alias("ll"),
            F.sum("sel").alias("sel"),
            F.sum("tp_sel").alias("tp_sel"),
            F.sum("bad_y").alias("bad_y"),
            F.sum("bad_p").alias("bad_p"),
            F.sum(F.col("fp") * (2 * F.col("ctp") - F.col("tp")) / 2).alias("roc"),
            F.sum(F.col("tp") * F.col("ctp") / (F.col("ctp") + F.col("cfp"))).alias("ap"),
        )
        .collect()
    )

    sums: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        s = sums.setdefault(
            (r["dim"], r["grp"]),
            dict.fromkeys(("n", "pos", "sq", "ll", "sel", "tp_sel", "ece", "roc", "ap", "bad_y", "bad_p"), 0.0),
        )
        for key in ("n", "pos", "sq", "ll", "sel", "tp_sel", "roc", "ap", "bad_y", "bad_p"):
            s[key] += float(r[key] or 0.0)
        s["ece"] += abs(float(r["pos"] or 0.0) - float(r["sum_p"] or 0.0))
    total = sums.get((ALL, ALL))
    if not total or not total["n"]:
        raise DataContractError("no evaluation rows to compute metrics on")
    if total["bad_y"]:
        raise DataContractError(f"label column {label_col!r}: {int(total['bad_y'])} row(s) are not 0 or 1")
    if total["bad_p"]:
        raise DataContractError(f"score column {score_col!r}: {int(total['bad_p'])} row(s) are null or outside [0, 1]")

    def finish(key: tuple[str, str]) -> dict[str, float]:
        s = sums[key]
        cnt, pos = s["n"], s["pos"]
        neg = cnt - pos
        roc, ap = s["roc"], s["ap"]
        return {
            "n": cnt,
            "positives": pos,
            "prevalence": _nan_div(pos, cnt),
            "roc_auc": _nan_div(roc, pos * neg) if pos and neg else float("nan"),
            "pr_auc": _nan_div(ap, pos) if pos else float("nan"),
            "brier": _nan_div(s["sq"], cnt),
            "log_loss": _nan_div(s["ll"], cnt),
            "ece": _nan_div(s["ece"], cnt),
            "precision_at_k": _nan_div(s["tp_sel"], s["sel"]),
            "recall_at_k": _nan_div(s["tp_sel"], pos),
            "selected": s["sel"],
        }

    overall = finish((ALL, ALL))
    subgroups: dict[str, dict[str, dict[str, float]]] = {c: {} for c in subgroup_cols}
    for dim, grp in sorted(k for k in sums if k[0] != ALL):
        subgroups[dim][grp] = finish((dim, grp))
    return EvalResult(
        metrics=overall, subgroup_metrics=subgroups, top_k_percent=float(top_k_percent), ece_bins=int(ece_bins)
    )


def curves(
    pred_df: "DataFrame", label_col: str, score_col: str = "score", ece_bins: int = 10, resolution: int = 1000
) -> Curves:
    """Plot points from scores bucketed to ``1/resolution`` (one small Spark aggregation)."""
    from pyspark.sql import functions as F

    bucket = F.least(F.floor(F.col(score_col) * resolution), F.lit(resolution - 1)).cast("int")
    rows = (
        pred_df.select(
            bucket.alias("b"), F.col(label_col).cast("double").alias("y"), F.col(score_col).cast("double").alias("p")
        )
        .groupBy("b")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("y").alias("pos"), F.sum("p").alias("sp"))
        .collect()
    )
    if not rows:
        empty = np.array([], dtype=float)
        return Curves(empty, empty, empty, empty, empty, empty, empty)
    b, cnt, pos, sp = np.array([(r["b"], r["n"], r["pos"], r["sp"]) for r in rows], dtype=float).T
    return curves_of_buckets(b, cnt, pos, sp, ece_bins=ece_bins, resolution=resolution)


def curves_of_rows(
    labels: Sequence[float], scores: Sequence[float], ece_bins: int = 10, resolution: int = 1000
) -> Curves:
    """:func:`curves` of per-row ``labels`` and ``scores`` already on the driver (numpy)."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(scores, dtype=float)
    bucket = np.minimum(np.floor(p * resolution), resolution - 1).astype(int)
    b = np.unique(bucket)
    at = np.searchsorted(b, bucket)
    cnt = np.bincount(at, minlength=len(b)).astype(float)
    pos = np.bincount(at, weights=y, minlength=len(b))
    sp = np.bincount(at, weights=p, minlength=len(b))
    return curves_of_buckets(b.astype(float), cnt, pos, sp, ece_bins=ece_bins, resolution=resolution)


def curves_of_buckets(
    b: np.ndarray, cnt: np.ndarray, pos: np.ndarray, sp: np.ndarray, *, ece_bins: int = 10, resolution: int = 1000
) -> Curves:
    """The plot points of scores bucketed to ``1/resolution``: per bucket ``b`` its row count,
    positives and sum of scores (any order)."""
    if len(b) == 0:
        empty = np.array([], dtype=float)
        return Curves(empty, empty, empty, empty, empty, empty, empty)
    order = np.argsort(-b, kind="mergesort")  # highest scores first: the thresholds from the top
    b, cnt, pos, sp = b[order], cnt[order], pos[order], sp[order]
    tp, fp = np.cumsum(pos), np.cumsum(cnt - pos)
    total_pos, total_neg = tp[-1], fp[-1]
    fpr = np.concatenate([[0.0], fp / total_neg if total_neg else np.zeros_like(fp)])
    tpr = np.concatenate([[0.0], tp / total_pos if total_pos else np.zeros_like(tp)])
    recall = tp / total_pos if total_pos else np.zeros_like(tp)
    precision = tp / (tp + fp)
    bins = np.minimum((b * ece_bins) // resolution, ece_bins - 1).astype(int)
    bc = np.bincount(bins, weights=cnt, minlength=ece_bins)
    bp = np.bincount(bins, weights=pos, minlength=ece_bins)
    bs = np.bincount(bins, weights=sp, minlength=ece_bins)
    keep = bc > 0
    return Curves(
        fpr=fpr,
        tpr=tpr,
        recall=np.concatenate([[0.0], recall]),
        precision=np.concatenate([[precision[0]], precision]),
        bin_mean_score=bs[keep] / bc[keep],
        bin_fraction_positive=bp[keep] / bc[keep],
        bin_count=bc[keep],
    )


# --------------------------------------------------------------------------- per-row, for the gate


def paired_rows(
    pred_df: "DataFrame", label_col: str, score_col: str = "score", id_col: str = DEFAULT_ID_COLUMN
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, labels, scores) of every row, ordered by id, for paired comparisons.

    Collects only three columns of the evaluation rows to the driver (small: the held-out
    part). Two models scored on the same rows give arrays aligned element by element.

    Raises:
        DataContractError: when columns are missing, or an id appears twice (pairs would be
            ambiguous).
    """
    from pyspark.sql import functions as F

    _check_columns(pred_df, [id_col, label_col, score_col])
    small = pred_df.select(
        F.col(id_col).cast("string").alias("id"),
        F.col(label_col).cast("double").alias("y"),
        F.col(score_col).cast("double").alias("p"),
    ).orderBy("id")
    try:
        table = small.toArrow()
        ids = [str(x) for x in table.column("id").to_pylist()]
        labels = table.column("y").to_numpy(zero_copy_only=False).astype(float)
        scores = table.column("p").to_numpy(zero_copy_only=False).astype(float)
    except (AttributeError, ImportError):  # older PySpark without toArrow
        rows = small.collect()
        ids = [r["id"] for r in rows]
        labels = np.array([r["y"] for r in rows], dtype=float)
        scores = np.array([r["p"] for r in rows], dtype=float)
    if len(set(ids)) != len(ids):
        raise DataContractError(
            f"{id_col!r} is not unique in the evaluation rows: paired comparison needs "
            f"one row per key (filter to one snapshot)"
        )
    return ids, labels, scores


def row_groups(
    pred_df: "DataFrame", group_cols: Sequence[str], id_col: str = DEFAULT_ID_COLUMN
) -> dict[str, np.ndarray]:
    """The group of every row by each subgroup column, ordered by id as :func:`paired_rows`.

    Group values are those of :func:`metrics` (strings, a null is ``"(missing)"``), so they
    match the keys of ``EvalResult.subgroup_metrics``; the gate's fairness rules bootstrap
    over them. Subgroup columns are gold columns (never PHI).

    Returns:
        ``{column: array of group labels}``, aligned with the arrays of :func:`paired_rows`.
    """
    from pyspark.sql import functions as F

    group_cols = list(group_cols)
    if not group_cols:
        return {}
    _check_columns(pred_df, [id_col, *group_cols])
    gcols = [f"_g{i}" for i in range(len(group_cols))]
    small = pred_df.select(
        F.col(id_col).cast("string").alias("id"),
        *[F.coalesce(F.col(c).cast("string"), F.lit(MISSING_GROUP)).alias(g) for c, g in zip(group_cols, gcols)],
    ).orderBy("id")
    try:
        table = small.toArrow()
        columns = {c: table.column(g).to_pylist() for c, g in zip(group_cols, gcols)}
    except (AttributeError, ImportError):  # older PySpark without toArrow
        rows = small.collect()
        columns = {c: [r[g] for r in rows] for c, g in zip(group_cols, gcols)}
    return {c: np.asarray(values, dtype=str) for c, values in columns.items()}
