"""Delta tables written by Spark and committed with ``deltalake``: one partition replaced atomically.

How a write works (:func:`replace_partition`):

1. Spark writes the rows as Parquet straight into the table's folder, under a fresh, unique
   sub-folder of the partition: ``<table>/score_date=2026-11-23/write-<uuid>/part-*.parquet``.
   No reader sees these files yet: a Delta reader only reads files the log names.
2. The driver lists the new files and reads each Parquet footer (a few KiB; never the rows) for
   the row count, null counts and min/max of numeric columns, and checks the written schema.
3. One Delta commit (``deltalake``'s transaction API, ``DeltaTable.create_write_transaction`` with
   ``mode="overwrite"`` and a partition filter) removes every file of that partition and adds the
   new ones. The first write creates the table with ``create_table_with_add_actions``. Readers see
   the old partition or the new one, never a mix; other partitions are not touched.
4. If anything fails before the commit, the write folder is deleted and the table is unchanged.

Why not ``deltalake.write_deltalake(..., mode="overwrite", predicate=...)``: it takes Arrow data in
the Python driver, so the whole population would pass through one process. Here the rows stay in
Spark executors (any cluster), and only file names and footers reach the driver.

Replaced files stay on disk (the log marks them removed, so time travel works) until a
``DeltaTable.vacuum()`` past the retention period deletes them.

Locations: a local path (made absolute) or a URI that both Spark (Hadoop file systems) and
``pyarrow.fs`` / ``deltalake`` understand, e.g. ``abfss://`` or ``gs://``; for S3 give ``s3://`` and
map it to S3A in Spark (``spark.hadoop.fs.s3.impl``).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.errors import DataContractError, PromoteError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# Spark writes TimestampType as INT96 by default; Delta readers expect INT64 microseconds (UTC).
_WRITE_CONF = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
_META_PREFIX = "promote."


@dataclass(frozen=True)
class DeltaWrite:
    """What one partition replacement committed.

    Attributes:
        table_uri: the table's location.
        version: the Delta table version of this commit.
        rows: rows now in the partition (from the Parquet footers of the committed files).
        files: data files added.
        write_id: the unique id of this write (also in the commit's metadata).
    """

    table_uri: str
    version: int
    rows: int
    files: int
    write_id: str


def absolute(location: str) -> str:
    """A local path made absolute; a URI (``scheme://``) is returned unchanged."""
    if "://" in location:
        return location.rstrip("/")
    if location.startswith("file:"):
        location = location[len("file:") :]
    return str(Path(location).expanduser().resolve())


def join(root: str, relpath: str) -> str:
    """``root/relpath`` for a local path or a URI."""
    return absolute(root).rstrip("/") + "/" + relpath.strip("/")


def partition_value(value: date | str) -> str:
    """The Delta partition value string: ``date`` as ``YYYY-MM-DD``."""
    return value.isoformat() if isinstance(value, date) else str(value)


def replace_partition(
    df: "DataFrame",
    table_uri: str,
    *,
    schema: "pa.Schema",
    partition_column: str,
    value: date | str,
    commit_metadata: Mapping[str, Any] | None = None,
    max_rows_per_file: int | None = None,
    num_files: int | None = None,
) -> DeltaWrite:
    """Replace one partition of a Delta table with the rows of ``df``, in one atomic commit.

    Args:
        df: the rows, with exactly the columns of ``schema`` except ``partition_column``, in order.
        table_uri: the table's folder (created with the first write).
        schema: the table's Arrow schema, partition column included (stored by Delta, not in files).
        partition_column: the one partition column, e.g. ``score_date``.
        value: the partition to replace, e.g. ``date(2026, 11, 23)``.
        commit_metadata: extra keys for the commit's info (shown by ``DeltaTable.history()``);
            stored with a ``promote.`` prefix.
        max_rows_per_file: split Spark's output into files of at most this many rows.
        num_files: coalesce ``df`` to this many partitions before writing (``None``: as it is).

    Returns:
        The committed :class:`DeltaWrite`.

    Raises:
        DataContractError: when ``df`` does not have the schema's columns, or the existing table
            has another schema or partitioning.
        PromoteError: when the written files are not what was asked for (nothing is committed).
    """
    import pyarrow as pa
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import CommitProperties, create_table_with_add_actions

    table_uri = absolute(table_uri)
    if partition_column not in schema.names:
        raise PromoteError(f"partition column {partition_column!r} is not in the table schema")
    file_schema = pa.schema([f for f in schema if f.name != partition_column])
    if list(df.columns) != file_schema.names:
        raise DataContractError(
            f"{table_uri}: rows have columns {list(df.columns)}, the table needs {file_schema.names}"
        )
    existing = _existing_table(table_uri)
    if existing is not None:
        _check_compatible(existing, table_uri, schema, partition_column)

    part = partition_value(value)
    write_id = uuid.uuid4().hex
    rel_dir = f"{partition_column}={part}/write-{write_id}"
    write_dir = f"{table_uri}/{rel_dir}"
    fs, fs_dir = _filesystem(write_dir)
    try:
        out = df.coalesce(num_files) if num_files else df
        writer = out.write.mode("errorifexists").option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        if max_rows_per_file:
            writer = writer.option("maxRecordsPerFile", int(max_rows_per_file))
        with session_conf(df.sparkSession, _WRITE_CONF):
            writer.parquet(write_dir)
        actions, rows = _add_actions(fs, fs_dir, rel_dir, file_schema, {partition_column: part})
        metadata = {
            f"{_META_PREFIX}write_id": write_id,
            f"{_META_PREFIX}rows": rows,
            **{f"{_META_PREFIX}{k}": _jsonable(v) for k, v in (commit_metadata or {}).items()},
        }
        props = CommitProperties(custom_metadata=metadata)
        if existing is None:
            create_table_with_add_actions(
                table_uri,
                Schema.from_arrow(schema),
                actions,
                mode="error",
                partition_by=[partition_column],
                commit_properties=props,
            )
        else:
            DeltaTable(table_uri).create_write_transaction(
                actions,
                mode="overwrite",
                schema=schema,
                partition_by=[partition_column],
                partition_filters=[(partition_column, "=", part)],
                commit_properties=props,
            )
    except BaseException:
        _delete_dir(fs, fs_dir)
        raise
    _tidy(fs, fs_dir)
    return DeltaWrite(
        table_uri=table_uri, version=_version_of(table_uri, write_id), rows=rows, files=len(actions), write_id=write_id
    )


@contextmanager
def session_conf(spark: "SparkSession", conf: Mapping[str, str]) -> Iterator[None]:
    """Set Spark SQL settings for the duration of a block, then put the old values back."""
    old: dict[str, str | None] = {}
    for key, value in conf.items():
        old[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def history_of(table_uri: str) -> list[dict[str, Any]]:
    """The table's commits, newest first (``DeltaTable.history()``)."""
    from deltalake import DeltaTable

    return DeltaTable(absolute(table_uri)).history()


def partition_stats(table_uri: str, partition_column: str, columns: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Per partition value: ``rows`` and, for each of ``columns``, the ``(min, max)`` over its files.

    Read from the Delta log's file statistics only; no data file is opened.
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    adds = pa.table(DeltaTable(absolute(table_uri)).get_add_actions(flatten=True)).to_pylist()
    out: dict[str, dict[str, Any]] = {}
    for add in adds:
        key = str(add[f"partition.{partition_column}"])
        entry = out.setdefault(key, {"rows": 0, **{c: (None, None) for c in columns}})
        entry["rows"] += int(add.get("num_records") or 0)
        for c in columns:
            lo, hi = entry[c]
            a_lo, a_hi = add.get(f"min.{c}"), add.get(f"max.{c}")
            entry[c] = (
                a_lo if lo is None else (lo if a_lo is None else min(lo, a_lo)),
                a_hi if hi is None else (hi if a_hi is None else max(hi, a_hi)),
            )
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- internals


def _existing_table(table_uri: str) -> Any:
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(table_uri):
        return None
    return DeltaTable(table_uri)


def _check_compatible(table: Any, table_uri: str, schema: "pa.Schema", partition_column: str) -> None:
    import pyarrow as pa

    parts = list(table.metadata().partition_columns)
    if parts != [partition_column]:
        raise DataContractError(
            f"{table_uri}: the existing Delta table is partitioned by {parts}, "
            f"not [{partition_column!r}]; move it away or choose another table path"
        )
    have = pa.schema(table.schema().to_arrow())
    got = {f.name: _canonical(f.type) for f in have}
    want = {f.name: _canonical(f.type) for f in schema}
    if got != want:
        raise DataContractError(
            f"{table_uri}: the existing Delta table has columns {got}, this write has "
            f"{want}; move it away or choose another table path"
        )


def _canonical(t: "pa.DataType") -> str:
    import pyarrow as pa

    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_timestamp(t):
        return f"timestamp[{'utc' if t.tz else 'ntz'}]"
    return str(t)


def _filesystem(location: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(location)


def _add_actions(
    fs: Any, fs_dir: str, rel_dir: str, file_schema: "pa.Schema", partition_values: dict[str, str]
) -> tuple[list[Any], int]:
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    infos = [
        i
        for i in fs.get_file_info(pafs.FileSelector(fs_dir, recursive=False))
        if i.type == pafs.FileType.File and i.base_name.endswith(".parquet") and not i.base_name.startswith((".", "_"))
    ]
    actions: list[Any] = []
    total = 0
    for info in sorted(infos, key=lambda i: i.base_name):
        with fs.open_input_file(info.path) as fh:
            meta = pq.read_metadata(fh)
        written = meta.schema.to_arrow_schema()
        got = [(f.name, _canonical(f.type)) for f in written]
        want = [(f.name, _canonical(f.type)) for f in file_schema]
        if got != want:
            raise PromoteError(f"Spark wrote {info.path} with columns {got}, expected {want}")
        if meta.num_rows == 0:
            continue  # Spark writes an empty file for an empty frame; the partition is just cleared
        total += meta.num_rows
        mtime = info.mtime or datetime.now(UTC)
        actions.append(
            AddAction(
                path=f"{rel_dir}/{info.base_name}",
                size=info.size,
                partition_values=dict(partition_values),
                modification_time=int(mtime.timestamp() * 1000),
                data_change=True,
                stats=json.dumps(_stats(meta, file_schema)),
            )
        )
    return actions, total


def _stats(meta: Any, file_schema: "pa.Schema") -> dict[str, Any]:
    """Delta file statistics from a Parquet footer: row and null counts, min/max of numbers and times."""
    import pyarrow as pa

    nulls: dict[str, int] = {}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for ci, field in enumerate(file_schema):
        nulls_known = True
        n_null = 0
        lo: Any = None
        hi: Any = None
        bounds_known = (
            pa.types.is_integer(field.type) or pa.types.is_floating(field.type) or pa.types.is_timestamp(field.type)
        )
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(ci).statistics
            if st is None or not st.has_null_count:
                nulls_known = False
            else:
                n_null += st.null_count
            if not bounds_known:
                continue
            if st is None or not st.has_min_max:
                if meta.row_group(rg).num_rows and (st is None or st.null_count != meta.row_group(rg).num_rows):
                    bounds_known = False
                continue
            lo = st.min if lo is None else min(lo, st.min)
            hi = st.max if hi is None else max(hi, st.max)
        if nulls_known:
            nulls[field.name] = n_null
        if bounds_known and lo is not None and not _nan(lo) and not _nan(hi):
            mins[field.name] = _stat_value(lo, up=False)
            maxs[field.name] = _stat_value(hi, up=True)
    return {"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _stat_value(x: Any, *, up: bool) -> Any:
    """A stats value; times in Delta's millisecond form, rounded outwards so the bound still holds."""
    if isinstance(x, datetime):
        if x.tzinfo is None:
            x = x.replace(tzinfo=UTC)
        x = x.astimezone(UTC)
        if up and x.microsecond % 1000:
            x = x + timedelta(microseconds=1000 - x.microsecond % 1000)
        return x.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return x


def _jsonable(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    return str(v)


def _tidy(fs: Any, fs_dir: str) -> None:
    """Remove the writer's side files (checksums, markers): only the committed Parquet files stay."""
    import pyarrow.fs as pafs

    try:
        for info in fs.get_file_info(pafs.FileSelector(fs_dir, recursive=False)):
            if info.type == pafs.FileType.File and info.base_name.startswith((".", "_")):
                fs.delete_file(info.path)
    except OSError:  # cosmetic only
        pass


def _delete_dir(fs: Any, fs_dir: str) -> None:
    import pyarrow.fs as pafs

    try:
        if fs.get_file_info(fs_dir).type != pafs.FileType.NotFound:
            fs.delete_dir(fs_dir)
    except OSError:  # best effort; the files are not in the log, so no reader sees them
        pass


def _version_of(table_uri: str, write_id: str) -> int:
    from deltalake import DeltaTable

    table = DeltaTable(table_uri)
    for entry in table.history(limit=20):
        if entry.get(f"{_META_PREFIX}write_id") == write_id:
            return int(entry["version"])
    return int(table.version())
