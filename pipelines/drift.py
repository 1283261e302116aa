"""Profiles of many columns in a bounded number of Spark passes, and their drift.

A :class:`Profile` keeps, per column, the count, nulls, mean, standard deviation, min, max and a
histogram: for a numeric column on ``fine_bins`` quantile bins of the reference (equal reference
mass), for a categorical column on the reference's ``max_levels`` most frequent levels plus
``__other__``. A window is profiled on its reference's bins, so two profiles compare bin by bin.

Spark jobs, whatever the number of columns (538 is the normal case):

* :func:`baseline_profile`: one aggregation for the moments and quantile edges of every numeric
  column, one for the levels of the categorical columns (only when there are any), then the
  histogram pass of :func:`window_profile`;
* :func:`window_profile`: ONE pass (``mapInPandas``: each partition bins every column with numpy
  and returns one row of partial sums; the driver adds them up).

:func:`compare` is numpy only: it merges the fine bins into ``bins`` bins of equal reference mass
and applies :mod:`promoter.core.drift`'s distances and rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from promoter.core import drift as rules

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import DataFrame

OTHER = "__other__"
NUMERIC_TYPES = ("double", "float", "int", "bigint", "smallint", "tinyint", "decimal", "long", "short", "byte")


@dataclass
class ColumnProfile:
    name: str
    kind: str  # numeric | categorical
    count: int  # non-null values
    num_nulls: int
    avg: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    edges: list[float] | None = None  # numeric: len(counts) + 1 values
    levels: list[str] | None = None  # categorical: len(counts) values, the last is __other__
    counts: list[int] = field(default_factory=list)


@dataclass
class Profile:
    rows: int
    columns: dict[str, ColumnProfile]
    fine_bins: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "fine_bins": self.fine_bins,
            "columns": {k: asdict(v) for k, v in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Profile":
        names = set(ColumnProfile.__dataclass_fields__)
        cols = {k: ColumnProfile(**{f: v for f, v in c.items() if f in names}) for k, c in data["columns"].items()}
        return cls(rows=int(data["rows"]), columns=cols, fine_bins=int(data.get("fine_bins", 100)))


def _kind(dtype: str) -> str:
    return "numeric" if dtype.split("(")[0] in NUMERIC_TYPES else "categorical"


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def baseline_profile(
    df: "DataFrame",
    features: list[str],
    kinds: Mapping[str, str] | None = None,
    fine_bins: int = 100,
    max_levels: int = 20,
) -> Profile:
    """Profile ``features`` of ``df`` as a reference: quantile bins, top levels, counts."""
    from pyspark.sql import functions as F

    dtypes = dict(df.dtypes)
    kinds = {c: (kinds or {}).get(c) or _kind(dtypes[c]) for c in features}
    numeric = [c for c in features if kinds[c] == "numeric"]
    categorical = [c for c in features if kinds[c] == "categorical"]
    probs = [i / fine_bins for i in range(fine_bins + 1)]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for i, c in enumerate(numeric):
        x = F.col(c).cast("double")
        aggs += [
            F.count(x).alias(f"n{i}"),
            F.stddev_samp(x).alias(f"s{i}"),
            F.percentile_approx(x, probs, 1000).alias(f"q{i}"),
        ]
    row = df.agg(*aggs).collect()[0]  # job 1
    columns: dict[str, ColumnProfile] = {}
    for i, c in enumerate(numeric):
        q = row[f"q{i}"]
        edges = sorted(set(float(v) for v in q if v is not None)) if q else []
        if len(edges) == 1:
            edges = [edges[0], edges[0]]
        columns[c] = ColumnProfile(
            c, "numeric", int(row[f"n{i}"]), 0, stddev=_finite(row[f"s{i}"]), edges=edges or None
        )
    if categorical:  # job 2: the levels of every categorical column, in one aggregation
        stacked = df.select(
            F.explode(
                F.array(*[F.struct(F.lit(c).alias("k"), F.col(c).cast("string").alias("v")) for c in categorical])
            ).alias("d")
        )
        counts: dict[str, list[tuple[str, int]]] = {c: [] for c in categorical}
        for r in stacked.where(F.col("d.v").isNotNull()).groupBy("d.k", "d.v").count().collect():
            counts[r["k"]].append((r["v"], int(r["count"])))
        for c in categorical:
            top = sorted(counts[c], key=lambda kv: (-kv[1], kv[0]))[:max_levels]
            columns[c] = ColumnProfile(c, "categorical", 0, 0, levels=[v for v, _ in top] + [OTHER])
    shell = Profile(rows=int(row["__rows"]), columns=columns, fine_bins=fine_bins)
    return window_profile(df, shell)  # job 3: counts on those bins


def _partition_stats(specs: list[tuple[str, str, Any]]) -> Any:
    """The mapInPandas function: per column, histogram and moments of one partition."""

    def run(batches: Iterator["pd.DataFrame"]) -> Iterator["pd.DataFrame"]:
        import pandas as pd

        acc: dict[str, dict[str, Any]] = {}
        rows = 0
        for pdf in batches:
            rows += len(pdf)
            for name, kind, bins in specs:
                a = acc.setdefault(
                    name,
                    {
                        "counts": np.zeros(len(bins) + 1 if kind == "categorical" else max(len(bins) - 1, 1), np.int64),
                        "nulls": 0,
                        "n": 0,
                        "sum": 0.0,
                        "sumsq": 0.0,
                        "min": None,
                        "max": None,
                    },
                )
                col = pdf[name]
                if kind == "numeric":
                    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                    ok = np.isfinite(x)
                    v = x[ok]
                    a["nulls"] += int((~ok).sum())
                    if v.size:
                        idx = (
                            np.searchsorted(np.asarray(bins[1:-1], float), v, side="right")
                            if len(bins) > 2
                            else np.zeros(v.size, int)
                        )
                        a["counts"] += np.bincount(idx, minlength=len(a["counts"]))[: len(a["counts"])]
                        a["n"] += int(v.size)
                        a["sum"] += float(v.sum())
                        a["sumsq"] += float((v * v).sum())
                        lo, hi = float(v.min()), float(v.max())
                        a["min"] = lo if a["min"] is None else min(a["min"], lo)
                        a["max"] = hi if a["max"] is None else max(a["max"], hi)
                else:
                    present = col.notna().to_numpy()
                    a["nulls"] += int((~present).sum())
                    values = col[present].astype(str)
                    codes = pd.Categorical(values, categories=bins).codes  # -1: not a level
                    codes = np.where(codes < 0, len(bins), codes)
                    a["counts"] += np.bincount(codes, minlength=len(bins) + 1)
                    a["n"] += int(present.sum())
        out = {k: {**v, "counts": v["counts"].tolist()} for k, v in acc.items()}
        yield pd.DataFrame({"stats": [json.dumps({"rows": rows, "columns": out})]})

    return run


def window_profile(df: "DataFrame", baseline: Profile) -> Profile:
    """Profile ``df`` on ``baseline``'s bins and levels in one Spark pass (unseen levels: __other__)."""
    from pyspark.sql import functions as F

    specs: list[tuple[str, str, Any]] = []
    cols = []
    for name, ref in baseline.columns.items():
        if name not in df.columns:
            continue
        if ref.kind == "numeric":
            specs.append((name, "numeric", list(ref.edges or [0.0, 0.0])))
            cols.append(F.col(name).cast("double").alias(name))
        else:
            specs.append((name, "categorical", [lv for lv in (ref.levels or [OTHER]) if lv != OTHER]))
            cols.append(F.col(name).cast("string").alias(name))
    parts = df.select(*cols).mapInPandas(_partition_stats(specs), "stats string").collect()  # the one job
    total: dict[str, dict[str, Any]] = {}
    rows = 0
    for p in parts:
        d = json.loads(p["stats"])
        rows += d["rows"]
        for name, a in d["columns"].items():
            t = total.get(name)
            if t is None:
                total[name] = {**a, "counts": np.asarray(a["counts"], np.int64)}
                continue
            t["counts"] = t["counts"] + np.asarray(a["counts"], np.int64)
            for k in ("nulls", "n", "sum", "sumsq"):
                t[k] += a[k]
            for k, f in (("min", min), ("max", max)):
                if a[k] is not None:
                    t[k] = a[k] if t[k] is None else f(t[k], a[k])
    out: dict[str, ColumnProfile] = {}
    for name, kind, bins in specs:
        ref = baseline.columns[name]
        t = total.get(name) or {
            "counts": np.zeros(0, np.int64),
            "nulls": 0,
            "n": 0,
            "sum": 0.0,
            "sumsq": 0.0,
            "min": None,
            "max": None,
        }
        n = int(t["n"])
        counts = [int(c) for c in t["counts"]] or (
            [0] * (len(bins) + 1 if kind == "categorical" else max(len(bins) - 1, 1))
        )
        col = ColumnProfile(name, kind, n, int(t["nulls"]), edges=ref.edges, levels=ref.levels, counts=counts)
        if kind == "numeric" and n:
            mean = t["sum"] / n
            col.avg, col.min, col.max = mean, t["min"], t["max"]
            var = (t["sumsq"] - n * mean * mean) / (n - 1) if n > 1 else 0.0
            col.stddev = math.sqrt(max(var, 0.0))
        out[name] = col
    return Profile(rows=rows, columns=out, fine_bins=baseline.fine_bins)


def compare(
    profile: Profile,
    reference: Profile,
    rule: rules.DriftRule = rules.DriftRule(),
    importance: Mapping[str, float] | None = None,
    bins: int = 10,
) -> rules.DatasetDrift:
    """Drift of every column the two profiles share (numpy only; see the module docstring)."""
    features = []
    for name, cur in profile.columns.items():
        ref = reference.columns.get(name)
        if ref is None or ref.kind != cur.kind or len(ref.counts) != len(cur.counts) or not ref.counts:
            continue
        groups = rules.coarsen_groups(ref.counts, bins)
        f = rules.feature_drift(
            name,
            cur.kind,
            rules.coarsen_like(groups, ref.counts),
            rules.coarsen_like(groups, cur.counts),
            rule=rule,
            reference_sd=ref.stddev,
            importance=(importance or {}).get(name),
        )
        if cur.kind == "numeric" and ref.edges and len(ref.edges) == len(ref.counts) + 1:
            f.wasserstein_distance = rules.wasserstein_binned(ref.edges, ref.counts, cur.counts)
            if rule.metric == "wasserstein_distance":
                f.effect = f.wasserstein_distance / ref.stddev if ref.stddev else 0.0
        features.append(f)
    return rules.decide(features, rule)
