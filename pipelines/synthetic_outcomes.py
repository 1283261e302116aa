"""Synthetic delayed outcomes: what a scored snapshot turned out to be, some days later.

A model scores gold on a day; its outcomes (the label) become known later, one member at a time.
For the synthetic data the truth is already known: the gold label column is the generator's draw
(including any planted drift, prevalence change or miscalibration of that snapshot). This module
writes that truth as an outcomes table, the shape a real outcomes feed would have::

    <key_column>    the pseudonymous key of gold (and of the predictions table); never a PHI column
    <date_column>   when the outcome was recorded: snapshot date + 1 .. label_delay_days days
    <label_column>  0 or 1 (the gold label)
    snapshot_date   the scored snapshot the row belongs to (the table's partition)

The recording delay of a row is a hash of ``(seed, key)``, so the same seed gives the same dates
on any partitioning. Writing a snapshot again replaces that snapshot's rows and leaves the others
(Delta: one atomic partition replacement, :func:`pipelines.delta.replace_partition`; Parquet and
CSV: Spark's dynamic partition overwrite). Rows stay in Spark; only counts reach the driver.
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Any

from promoter.errors import DataContractError, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from promoter.config import Settings

SNAPSHOT_COLUMN = "snapshot_date"
FORMATS = ("delta", "parquet", "csv")
MAX_LABEL_DELAY_DAYS = 3650
ROWS_PER_FILE = 1_000_000


def outcomes_schema(key_column: str, date_column: str, label_column: str) -> "pa.Schema":
    """The outcomes table's Arrow schema (the partition column ``snapshot_date`` last)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(key_column, pa.string()),
            pa.field(date_column, pa.date32()),
            pa.field(label_column, pa.int32()),
            pa.field(SNAPSHOT_COLUMN, pa.date32()),
        ]
    )


def check_arguments(
    settings: "Settings",
    *,
    label_delay_days: int,
    format: str,  # noqa: A002 - the configured name
    key_column: str,
    date_column: str,
    label_column: str,
) -> None:
    """Check the arguments of :func:`write_outcomes` (no Spark).

    Raises:
        InvalidInput: one line naming the bad argument; a key column that is PHI.
    """
    fmt = format
    if isinstance(label_delay_days, bool) or not isinstance(label_delay_days, int):
        raise InvalidInput(f"--label-delay-days must be a whole number, got {label_delay_days!r}")
    if not 1 <= label_delay_days <= MAX_LABEL_DELAY_DAYS:
        raise InvalidInput(f"--label-delay-days must be between 1 and {MAX_LABEL_DELAY_DAYS}, got {label_delay_days}")
    if fmt not in FORMATS:
        raise InvalidInput(f"outcomes format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    names = {"key_column": key_column, "date_column": date_column, "label_column": label_column}
    for what, name in names.items():
        if not name or not str(name).strip():
            raise InvalidInput(f"outcomes {what} must not be empty")
        if name == SNAPSHOT_COLUMN:
            raise InvalidInput(f"outcomes {what} {name!r} is the table's partition column; name it otherwise")
    if len(set(names.values())) < len(names):
        raise InvalidInput(f"outcomes key, date and label columns must differ, got {', '.join(names.values())}")
    data = settings.project.data
    phi = {c.lower() for c in [*data.phi_columns, data.id_column]}
    if key_column.lower() in phi:
        raise InvalidInput(
            f"outcomes key_column {key_column!r} is a PHI column (project.yml data.phi_columns / id_column); "
            f"outcomes carry only the pseudonymous key ({data.key_column})"
        )


def write_outcomes(
    spark: "SparkSession",
    settings: "Settings",
    *,
    snapshot_date: date | None,
    label_delay_days: int,
    seed: int,
    path: str,
    format: str,  # noqa: A002 - the configured name
    key_column: str,
    date_column: str,
    label_column: str,
) -> dict[str, Any]:
    """Append the outcomes of the current gold snapshot to the outcomes table.

    One row per gold row: gold's pseudonymous key, an outcome date ``snapshot_date + k`` with
    ``k`` in ``[1, label_delay_days]`` (a hash of ``seed`` and the key) and gold's label.

    Args:
        spark: the session.
        settings: loaded settings (the lake, ``project.data``: key, PHI columns).
        snapshot_date: the day gold was scored; ``None``: the gold catalog's snapshot date.
        label_delay_days: the longest recording delay, in days (1-3650).
        seed: seed of the per-row delays: same seed, same dates.
        path: the outcomes table's location (absolute path or URI).
        format: ``delta``, ``parquet`` or ``csv``.
        key_column: the outcomes table's key column name (the values are gold's key).
        date_column: the outcome date column's name.
        label_column: the label column's name.

    Returns:
        ``{"path", "rows", "positives", "first_outcome", "last_outcome", "snapshot_date"}``
        (dates as ISO strings; the outcome dates ``None`` when gold has no rows).

    Raises:
        InvalidInput: a bad argument, or a key column that is PHI (nothing is written).
        NotFound: no gold table has been built yet.
        DataContractError: gold has no rows or a row without a key, or the existing outcomes
            table has another schema (nothing is written).
    """
    from pyspark.sql import functions as F

    from pipelines import delta, features

    check_arguments(
        settings,
        label_delay_days=label_delay_days,
        format=format,
        key_column=key_column,
        date_column=date_column,
        label_column=label_column,
    )
    gold, catalog = features.load_gold(spark, settings)
    gold_key, gold_label = catalog.id_column, catalog.label_column
    for column in (gold_key, gold_label):
        if column not in gold.columns:
            raise DataContractError(
                f"gold has no column {column!r} (its catalog names it); rebuild with `promote features`"
            )
    day = snapshot_date or date.fromisoformat(str(catalog.snapshot_date)[:10])
    offset = (
        F.pmod(F.xxhash64(F.lit(f"outcomes\0{int(seed)}"), F.col(gold_key).cast("string")), F.lit(label_delay_days)) + 1
    )
    rows = gold.select(
        F.col(gold_key).cast("string").alias(key_column),
        F.date_add(F.lit(day), offset.cast("int")).alias(date_column),
        F.col(gold_label).cast("int").alias(label_column),
    )
    stats = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col(key_column).isNull().cast("long")).alias("null_keys"),
        F.sum(F.col(label_column)).alias("positives"),
        F.min(date_column).alias("first"),
        F.max(date_column).alias("last"),
    ).first()
    n = int(stats["rows"])
    if n == 0:
        raise DataContractError(f"gold at {catalog.path or 'gold/features'} has no rows: no outcomes to write")
    if stats["null_keys"]:
        raise DataContractError(f"{stats['null_keys']} gold row(s) have no {gold_key}; no outcomes were written")
    if format == "delta":
        written = delta.replace_partition(
            rows,
            path,
            schema=outcomes_schema(key_column, date_column, label_column),
            partition_column=SNAPSHOT_COLUMN,
            value=day,
            commit_metadata={"kind": "outcomes", "seed": int(seed), "label_delay_days": label_delay_days},
            num_files=max(1, math.ceil(n / ROWS_PER_FILE)),
        )
        location = written.table_uri
    else:
        location = delta.absolute(path)
        writer = (
            rows.withColumn(SNAPSHOT_COLUMN, F.lit(day))
            .coalesce(max(1, math.ceil(n / ROWS_PER_FILE)))
            .write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(SNAPSHOT_COLUMN)
        )
        if format == "csv":
            writer = writer.option("header", "true")
        writer.format(format).save(location)
    first, last = stats["first"], stats["last"]
    return {
        "path": location,
        "rows": n,
        "positives": int(stats["positives"] or 0),
        "first_outcome": first.isoformat() if first else None,
        "last_outcome": last.isoformat() if last else None,
        "snapshot_date": day.isoformat(),
    }
