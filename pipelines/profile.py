"""Profile a source table in Spark for ``promote init``: schema, rows, nulls, ranges, values, PHI-looking values.

Two passes over the table, whatever its width:

1. one aggregation: the row count and, per column, nulls, an approximate distinct count
   (HyperLogLog++), min and max (numbers, dates, timestamps), the mean (numbers), and for text
   columns the rows that look like an SSN, a phone number or an e-mail address (the PHI guard's
   patterns, :data:`pipelines.phi.VALUE_PATTERNS`) or an ISO date;
2. one grouped count over the columns with few distinct values only: every value and its rows.

:func:`repeated_keys` adds one narrow pass over the key columns when a primary key is to be
proposed. The result is the plain data of :mod:`promoter.core.scaffold`; nothing is written, and
values are only collected for low-cardinality columns.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pipelines import lake, phi
from promoter.core.scaffold import ColumnProfile, TableProfile

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import TableSource

VALUE_LIMIT = 50
"""Columns whose approximate distinct count is at most this have their values counted (pass 2)."""
_APPROX_RSD = 0.05
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T].*)?$"
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


def _col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def read(spark: "SparkSession", name: str, source: "TableSource") -> "DataFrame":
    """Read one table as ``promote`` will (``pipelines.lake.read_table``: Parquet, CSV or Delta)."""
    return lake.read_table(spark, name, source)


def profile(
    df: "DataFrame", name: str, *, path: str, format: str, options: dict[str, Any] | None = None
) -> TableProfile:
    """Profile ``df`` in two passes (see the module docstring).

    Args:
        df: the table.
        name: the table's name in config.
        path, format, options: where and how it is read (kept in the profile for the config).

    Returns:
        The :class:`~promoter.core.scaffold.TableProfile`.
    """
    from pyspark.sql import functions as F

    fields = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    exprs = [F.count(F.lit(1)).alias("__rows")]
    for i, (col, typ) in enumerate(fields):
        c = _col(col)
        exprs.append(F.sum(c.isNull().cast("long")).alias(f"n{i}"))
        if typ in ("binary",) or typ.startswith(("array", "map", "struct")):
            continue
        exprs.append(F.approx_count_distinct(c, _APPROX_RSD).alias(f"d{i}"))
        if typ in _NUMERIC or typ.startswith("decimal"):
            exprs += [
                F.min(c.cast("double")).alias(f"lo{i}"),
                F.max(c.cast("double")).alias(f"hi{i}"),
                F.avg(c.cast("double")).alias(f"m{i}"),
            ]
        elif typ in ("date", "timestamp", "timestamp_ntz"):
            exprs += [F.min(c).cast("string").alias(f"lo{i}"), F.max(c).cast("string").alias(f"hi{i}")]
        elif typ == "string":
            exprs.append(F.sum(c.rlike(_ISO_DATE).cast("long")).alias(f"iso{i}"))
            exprs += [F.min(c).alias(f"slo{i}"), F.max(c).alias(f"shi{i}")]
            for j, pattern in enumerate(phi.VALUE_PATTERNS.values()):
                exprs.append(F.sum(c.rlike(pattern).cast("long")).alias(f"p{i}_{j}"))
    row = df.agg(*exprs).first().asDict()
    rows = int(row["__rows"])

    few = [i for i, (col, typ) in enumerate(fields) if f"d{i}" in row and (row[f"d{i}"] or 0) <= VALUE_LIMIT]
    counted = _value_counts(df, [fields[i][0] for i in few]) if few and rows else {}

    columns: list[ColumnProfile] = []
    names = list(phi.VALUE_PATTERNS)
    for i, (col, typ) in enumerate(fields):
        values = counted.get(col)
        distinct = len(values) if values is not None else int(row.get(f"d{i}") or 0)
        lo, hi = row.get(f"lo{i}"), row.get(f"hi{i}")
        iso = int(row.get(f"iso{i}") or 0)
        if typ == "string" and iso and iso == rows - int(row[f"n{i}"] or 0):
            lo, hi = row.get(f"slo{i}"), row.get(f"shi{i}")  # ISO dates sort as text
        mean = row.get(f"m{i}")
        columns.append(
            ColumnProfile(
                name=col,
                type=typ,
                nulls=int(row[f"n{i}"] or 0),
                distinct=distinct,
                min=_plain(lo),
                max=_plain(hi),
                mean=None if mean is None or not math.isfinite(mean) else float(mean),
                values=values,
                pattern_hits={names[j]: int(row.get(f"p{i}_{j}") or 0) for j in range(len(names))}
                if typ == "string"
                else {},
                iso_dates=iso,
            )
        )
    return TableProfile(name, path, format, rows, tuple(columns), dict(options or {}))


def _value_counts(df: "DataFrame", cols: list[str]) -> dict[str, tuple[tuple[Any, int], ...]]:
    """Every non-null value and its rows, for each of ``cols``: one grouped count over a stacked view.

    Values keep their type (numbers, booleans, text); dates and timestamps become ISO text.
    """
    from pyspark.sql import functions as F

    types = dict((f.name, f.dataType.simpleString()) for f in df.schema.fields)
    parts = [
        F.struct(F.lit(i).alias("c"), _col(c).cast("string").alias("v"), _col(c).isNull().alias("z"))
        for i, c in enumerate(cols)
    ]
    stacked = df.select(F.explode(F.array(*parts)).alias("s")).select("s.c", "s.v", "s.z")
    rows = stacked.where(~F.col("z")).groupBy("c", "v").count().collect()
    out: dict[str, list[tuple[Any, int]]] = {c: [] for c in cols}
    for r in rows:
        col = cols[r["c"]]
        out[col].append((_typed(r["v"], types[col]), int(r["count"])))
    return {
        c: tuple(sorted(vals, key=lambda vn: (-vn[1], str(vn[0]))))
        for c, vals in out.items()
        if len(vals) <= VALUE_LIMIT
    }


def _typed(text: str, typ: str) -> Any:
    """A value counted as text, back in its column's type (the cast of pass 2 is exact for these)."""
    if typ == "boolean":
        return text == "true"
    if typ in ("tinyint", "smallint", "int", "bigint"):
        return int(text)
    if typ in ("float", "double") or typ.startswith("decimal"):
        x = float(text)
        return int(x) if x.is_integer() and typ.startswith("decimal") and typ.endswith(",0)") else x
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def repeated_keys(df: "DataFrame", keys: list[str]) -> int:
    """Key values that occur more than once (one narrow aggregation over the key columns)."""
    from pyspark.sql import functions as F

    return df.groupBy(*[_col(k) for k in keys]).count().where(F.col("count") > 1).count()


__all__ = ["VALUE_LIMIT", "repeated_keys", "profile", "read"]
