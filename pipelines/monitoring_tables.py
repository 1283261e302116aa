"""The monitoring tables: ``monitoring/profile_metrics`` and ``monitoring/drift_metrics`` (Delta).

Both live under the model's lake folder (``<lake_root>/<model_name>/monitoring/...``) and use the
column names of Databricks Lakehouse Monitoring where a concept matches, so a dashboard or a
query written for one reads the other:

* ``profile_metrics``: one row per (window, column, slice) with the window's statistics:
  ``count``, ``num_nulls``, ``avg``, ``stddev``, ``min``, ``max``, ``percent_null``, the histogram
  on the baseline's bins (JSON), and for ``column_name = ':table'`` rows of ``data_kind =
  'performance'`` the realised model quality (``roc_auc``, ``pr_auc``, ``brier``, ``ece``,
  ``calibration_slope``, ... with bootstrap bounds for small slices).
* ``drift_metrics``: one row per (window, comparison window, drift type, column, slice):
  ``drift_type`` is ``BASELINE`` (against the champion's training snapshot) or ``CONSECUTIVE``
  (against the previous monitored window); ``population_stability_index``, ``js_distance``,
  ``tv_distance``, ``wasserstein_distance``, ``chi_squared_test`` (struct of statistic and
  p-value), and promote's own ``drifted``, ``importance`` and ``rank``.

Every row also carries ``model_name`` (the registered model), ``model_version`` (the champion's),
``environment`` and ``monitor_date`` (the day monitored, the partition column). The rows are
aggregates (a few per feature), so they are written from the driver with
``deltalake.write_deltalake``; re-monitoring a day replaces that day's rows of that registered
model in one atomic commit (``predicate``) and leaves every other row alone. No row holds PHI or
a key: only column names, group labels of the configured subgroups and numbers.

A third table, ``monitoring/scored_slices``, keeps each scored row's subgroup values of the day
(key, ``slice_key``, ``slice_value``; partition ``score_date``), so realised performance weeks
later is sliced by the values the rows had when scored (:func:`record_slices`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from pipelines.outcomes import METRIC_KEYS

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings

PROFILE, DRIFT = "profile_metrics", "drift_metrics"
TABLE_LEVEL = ":table"  # Lakehouse Monitoring's column_name for table-level rows
PARTITION = "monitor_date"

_PERFORMANCE = ("labelled", "coverage", *(k for k in METRIC_KEYS if k != "n"), "top_tier_share")


def _window_type() -> "pa.DataType":
    import pyarrow as pa

    return pa.struct([("start", pa.date32()), ("end", pa.date32())])


def _common() -> list[tuple[str, "pa.DataType"]]:
    import pyarrow as pa

    return [
        ("window", _window_type()),
        ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("environment", pa.string()),
        ("data_kind", pa.string()),
        ("column_name", pa.string()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
    ]


def profile_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema(
        _common()
        + [
            ("count", pa.int64()),
            ("num_nulls", pa.int64()),
            ("percent_null", pa.float64()),
            ("avg", pa.float64()),
            ("stddev", pa.float64()),
            ("min", pa.float64()),
            ("max", pa.float64()),
            ("histogram", pa.string()),
        ]
        + [(name, pa.float64()) for name in _PERFORMANCE]
        + [(PARTITION, pa.string())]
    )


def drift_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema(
        _common()
        + [
            ("window_cmp", _window_type()),
            ("drift_type", pa.string()),
            ("count", pa.int64()),
            ("count_cmp", pa.int64()),
            ("population_stability_index", pa.float64()),
            ("js_distance", pa.float64()),
            ("tv_distance", pa.float64()),
            ("wasserstein_distance", pa.float64()),
            ("chi_squared_test", pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])),
            ("drifted", pa.bool_()),
            ("importance", pa.float64()),
            ("rank", pa.int32()),
            (PARTITION, pa.string()),
        ]
    )


SCHEMAS = {PROFILE: profile_schema, DRIFT: drift_schema}


def table_path(settings: "Settings", table: str) -> str:
    """The folder of ``monitoring/<table>`` under the model's lake folder."""
    from pipelines import lake

    return lake.path(settings, "monitoring", table)


def window(start: date | str, end: date | str | None = None) -> dict[str, date]:
    """A Lakehouse-style window struct (a scored day is a one-day window)."""
    s = date.fromisoformat(start) if isinstance(start, str) else start
    e = end if end is not None else s
    return {"start": s, "end": date.fromisoformat(e) if isinstance(e, str) else e}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN -> null: "not defined", not a number
        return None
    return value


def to_arrow(table: str, rows: Iterable[Mapping[str, Any]]) -> "pa.Table":
    """Rows (dicts; missing columns are null, unknown keys refused) as an Arrow table of ``table``'s schema."""
    import pyarrow as pa

    schema = SCHEMAS[table]()
    rows = list(rows)
    for r in rows:
        unknown = set(r) - set(schema.names)
        if unknown:
            raise ValueError(f"{table}: unknown column(s) {', '.join(sorted(unknown))}")
    columns = {name: [_clean(r.get(name)) for r in rows] for name in schema.names}
    for r, i in zip(rows, range(len(rows))):
        hist = r.get("histogram")
        if hist is not None and not isinstance(hist, str):
            columns["histogram"][i] = json.dumps(hist, separators=(",", ":"))
    return pa.table(columns, schema=schema)


def replace_day(
    settings: "Settings", table: str, rows: list[Mapping[str, Any]], *, model_name: str, monitor_date: date
) -> str:
    """Replace ``model_name``'s rows of ``monitor_date`` in ``table`` with ``rows`` (one atomic commit).

    Returns:
        The table's location.
    """
    from deltalake import DeltaTable, write_deltalake

    from pipelines.delta import absolute

    uri = absolute(table_path(settings, table))
    day = monitor_date.isoformat()
    data = to_arrow(table, [{**r, "model_name": model_name, PARTITION: day} for r in rows])
    if not DeltaTable.is_deltatable(uri):
        write_deltalake(uri, data, mode="append", partition_by=[PARTITION])
        return uri
    predicate = f"{PARTITION} = '{day}' AND model_name = '{_quoted(model_name)}'"
    write_deltalake(uri, data, mode="overwrite", predicate=predicate, partition_by=[PARTITION])
    return uri


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def read(
    settings: "Settings", table: str, *, model_name: str, before: date | None = None, on: date | None = None
) -> list[dict[str, Any]]:
    """``model_name``'s rows of ``table`` (all days, days before ``before``, or the day ``on``), oldest day first."""
    from deltalake import DeltaTable

    from pipelines.delta import absolute

    uri = absolute(table_path(settings, table))
    if not DeltaTable.is_deltatable(uri):
        return []
    filters: list[tuple[str, str, Any]] = []
    if on is not None:
        filters.append((PARTITION, "=", on.isoformat()))
    rows = DeltaTable(uri).to_pyarrow_table(partitions=filters or None).to_pylist()
    out = [r for r in rows if r["model_name"] == model_name]
    if before is not None:
        out = [r for r in out if r[PARTITION] < before.isoformat()]
    return sorted(out, key=lambda r: r[PARTITION])


# --------------------------------------------------------------------------- scored slices

SLICES = "scored_slices"


def slices_path(settings: "Settings") -> str:
    """The folder of ``monitoring/scored_slices``: each scored row's subgroup values, per day."""
    return table_path(settings, SLICES)


def slices_schema(key_column: str) -> "pa.Schema":
    """``scored_slices``: key, ``slice_key`` (subgroup column), ``slice_value``; partitioned by ``score_date``."""
    import pyarrow as pa

    return pa.schema(
        [
            (key_column, pa.string()),
            ("slice_key", pa.string()),
            ("slice_value", pa.string()),
            ("score_date", pa.date32()),
        ]
    )


def slice_days(settings: "Settings") -> set[str]:
    """The days whose slices are recorded."""
    from deltalake import DeltaTable

    from pipelines.delta import absolute

    uri = absolute(slices_path(settings))
    if not DeltaTable.is_deltatable(uri):
        return set()
    return {str(p["score_date"]) for p in DeltaTable(uri).partitions()}


def record_slices(
    settings: "Settings", predictions_df: "DataFrame", gold_df: "DataFrame", subgroups: list[str], day: date
) -> bool:
    """Keep the subgroup values the day's scored rows had (once per day; a re-run keeps the first).

    Realised performance is computed when outcomes mature, weeks later, when today's data may no
    longer hold the scored rows (an encounter-keyed model) or holds other values (a member moved
    region). The rows are ``predictions_df``'s keys with ``gold_df``'s values of ``subgroups``
    (null when the key is not in gold), one row per key and subgroup column. Keys are what the
    predictions table holds already; the values are the configured subgroups, never PHI.

    Returns:
        ``True`` when the day was written, ``False`` when it was already recorded or there are
        no subgroups.
    """
    from pyspark.sql import functions as F

    from pipelines import delta

    if not subgroups or day.isoformat() in slice_days(settings):
        return False
    key = settings.project.data.key_column
    keys = predictions_df.select(F.col(key).cast("string").alias(key)).distinct()
    values = gold_df.select(
        F.col(key).cast("string").alias(key), *[F.col(c).cast("string").alias(c) for c in subgroups]
    ).dropDuplicates([key])
    dims = F.array(*[F.struct(F.lit(c).alias("k"), F.col(c).alias("v")) for c in subgroups])
    rows = (
        keys.join(values, key, "left")
        .select(key, F.explode(dims).alias("_s"))
        .select(key, F.col("_s.k").alias("slice_key"), F.col("_s.v").alias("slice_value"))
    )
    delta.replace_partition(
        rows,
        delta.absolute(slices_path(settings)),
        schema=slices_schema(key),
        partition_column="score_date",
        value=day,
        num_files=1,
    )
    return True


def slices_frame(
    spark: "SparkSession", settings: "Settings", days: list[str], subgroups: list[str], fallback: "DataFrame"
) -> "DataFrame":
    """Key, ``score_date`` (``YYYY-MM-DD``) and one column per subgroup for each of ``days``.

    Days with recorded slices get them; the others get ``fallback``'s values (today's gold: right
    for a member-keyed model whose members stay, and all a day monitored before slices existed has).
    """
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from pipelines.delta import absolute

    key = settings.project.data.key_column
    recorded = slice_days(settings)
    have = [d for d in days if d in recorded]
    lack = [d for d in days if d not in recorded]
    frames = []
    if have:
        table = DeltaTable(absolute(slices_path(settings)))
        for d in have:
            files = table.file_uris(partition_filters=[("score_date", "=", d)])
            long = spark.read.parquet(*files)
            frames.append(
                long.groupBy(key)
                .pivot("slice_key", subgroups)
                .agg(F.first("slice_value"))
                .select(key, F.lit(d).alias("score_date"), *subgroups)
            )
    if lack:
        base = fallback.select(F.col(key).cast("string").alias(key), *[F.col(c).cast("string") for c in subgroups])
        frames.append(base.select(key, F.explode(F.array(*[F.lit(d) for d in lack])).alias("score_date"), *subgroups))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out
