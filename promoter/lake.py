"""The lake adapter: the audit chain's Delta mirror, written with the deltalake package, no Spark.

The audit store (the registry) is the source of truth; the lake keeps a Delta table of the
same records under ``<lake_root>/<model>/audit/decisions`` for analysts and dashboards. Each decision
appends its row (:func:`append_audit`); :func:`rebuild_audit` rewrites the table from a full
read of the store (repair). One row per record: scalar fields become columns of the same name,
``event``, ``metrics``, ``reasons`` and ``details`` are canonical JSON strings, so ``hash``
can be recomputed from a row (:func:`from_delta_row`) and the mirror verified like the chain.

This is the only module of ``promoter`` that imports ``deltalake`` or ``pyarrow`` (lazily, so
importing it costs nothing until a table is touched).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from promoter.core.audit import ANCHOR_FIELDS, Anchor, Record, canonical_json

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from deltalake import DeltaTable

DELTA_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Record))
"""The mirror's columns, in order: every :class:`Record` field."""

JSON_COLUMNS: tuple[str, ...] = ("event", "metrics", "reasons", "details")
"""Columns holding canonical JSON text rather than a scalar."""

AUDIT_TABLE = ("audit", "decisions")
"""Where the mirror lives under the lake root."""


def audit_table_path(lake_root: str | os.PathLike[str]) -> str:
    """``<lake_root>/audit/decisions``, for a local path or an object-store URI.

    Args:
        lake_root: the model's folder of the lake (``settings.project.lake``).

    Returns:
        The table's path (local) or URI (``s3://``, ``abfss://``, ...), as a string.
    """
    root = os.fspath(lake_root)
    if "://" in root:
        return "/".join([root.rstrip("/"), *AUDIT_TABLE])
    return os.path.join(root, *AUDIT_TABLE)


def _schema() -> "pa.Schema":
    import pyarrow as pa

    types = {"seq": pa.int64(), "candidate_version": pa.int64(), "champion_version": pa.int64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in DELTA_COLUMNS])


def _table(records: Sequence[Record]) -> "pa.Table":
    import pyarrow as pa

    schema = _schema()
    rows: dict[str, list[Any]] = {name: [] for name in schema.names}
    for rec in records:
        data = rec.to_dict()
        for name in schema.names:
            value = data[name]
            rows[name].append(canonical_json(value) if name in JSON_COLUMNS else value)
    return pa.Table.from_pydict(rows, schema=schema)


def _open(path: str) -> "DeltaTable | None":
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(path)
    except TableNotFoundError:
        return None


def _mirrored(table: "DeltaTable", records: Sequence[Record]) -> dict[tuple[str, int], set[str]]:
    """``(chain, seq) -> hashes`` of the rows the mirror already holds at these records' seqs.

    One DataFusion query per call, filtered on the chain's columns (registered model and
    environment) and a ``seq`` range, so Delta's file statistics skip every file that cannot hold
    those rows: the one-row files of earlier appends are pruned from the log without being opened.
    """
    import pyarrow as pa
    from deltalake import QueryBuilder

    def text(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for rec in records:
        key = (rec.registered_model, rec.environment)
        lo, hi = spans.get(key, (rec.seq, rec.seq))
        spans[key] = (min(lo, rec.seq), max(hi, rec.seq))
    where = " OR ".join(
        f"(registered_model = {text(model)} AND environment = {text(env)} AND seq BETWEEN {lo} AND {hi})"
        for (model, env), (lo, hi) in sorted(spans.items())
    )
    result = (
        QueryBuilder()
        .register("audit", table)
        .execute(f'SELECT registered_model, environment, seq, "hash" FROM audit WHERE {where}')
    )
    if isinstance(result, list):  # deltalake < 1.0: a list of pyarrow batches
        batches = result
    else:  # an Arrow stream (arro3 RecordBatchReader)
        batches = list(pa.RecordBatchReader.from_stream(result))
    data: dict[str, list[Any]] = {"registered_model": [], "environment": [], "seq": [], "hash": []}
    for batch in batches:
        for name in data:
            data[name].extend(batch.column(name).to_pylist())
    held: dict[tuple[str, int], set[str]] = {}
    for model, env, seq, digest in zip(
        data["registered_model"], data["environment"], data["seq"], data["hash"], strict=True
    ):
        held.setdefault((model or env, int(seq)), set()).add(digest)
    return held


def append_audit(records: Sequence[Record], path: str | os.PathLike[str]) -> int:
    """Append the records' rows to the Delta mirror at ``path`` (created on the first write).

    Records the mirror already holds (same chain, seq and hash: a re-run that
    :func:`promoter.core.audit.append` answered with the stored record) are skipped, so calling
    this once per appended or returned record keeps one row per record. The work does not
    depend on the table's length: one look-up of those rows (file statistics prune the rest)
    and one Delta commit of the new rows. Two processes mirroring the same record at the same
    moment may both write it; :func:`read_audit` drops such exact duplicates.

    The store, not the mirror, is the record, so a row at the same seq with another hash (a
    mirror shared with another registry, or edited) does not stop the append: both rows are
    kept, ``verify(read_audit(path))`` then names the duplicate seq, and
    :func:`rebuild_audit` from the store repairs the table.

    Args:
        records: the records to mirror (usually the one just appended).
        path: a local path or object-store URI the ``deltalake`` package can write.

    Returns:
        The number of rows written.
    """
    from deltalake import write_deltalake

    if not records:
        return 0
    target = os.fspath(path)
    table = _open(target)
    todo = list({(r.chain, r.seq, r.hash): r for r in records}.values())
    if table is not None:
        held = _mirrored(table, todo)
        todo = [r for r in todo if r.hash not in held.get((r.chain, r.seq), ())]
    if not todo:
        return 0
    rows = _table(todo)
    write_deltalake(table if table is not None else target, rows, mode="append")
    return rows.num_rows


def rebuild_audit(records: Sequence[Record], path: str | os.PathLike[str]) -> int:
    """Rewrite the Delta mirror at ``path`` with exactly these records (overwrite; for repair).

    Costs a full read of the store and a rewrite of the table: use it to repair or create a
    mirror, not per decision.

    Args:
        records: every record to keep (usually ``store.read_all(None)``).
        path: a local path or object-store URI the ``deltalake`` package can write.

    Returns:
        The number of rows written.
    """
    from deltalake import write_deltalake

    rows = _table(records)
    write_deltalake(os.fspath(path), rows, mode="overwrite", schema_mode="overwrite")
    return rows.num_rows


def from_delta_row(row: Mapping[str, Any]) -> Record:
    """Rebuild a record from a row of the mirror (JSON columns parsed back).

    Args:
        row: one row as a dict (e.g. from ``to_pyarrow_table().to_pylist()``).

    Returns:
        The record, whose ``computed_hash()`` equals ``hash`` when the row is intact.
    """
    data = dict(row)
    for name in JSON_COLUMNS:
        data[name] = json.loads(data[name]) if data.get(name) is not None else None
    return Record.from_dict(data)


def read_audit(path: str | os.PathLike[str]) -> list[Record]:
    """Every record of the mirror, by environment then seq (exact duplicate rows dropped once).

    Args:
        path: the mirror's path or URI.

    Returns:
        The records (``[]`` when there is no table yet); pass them to
        :func:`promoter.core.audit.verify` to check the mirror.
    """
    table = _open(os.fspath(path))
    if table is None:
        return []
    seen: set[str] = set()
    records: list[Record] = []
    for row in table.to_pyarrow_table().to_pylist():
        rec = from_delta_row(row)
        key = rec.to_json()
        if key not in seen:
            seen.add(key)
            records.append(rec)
    return sorted(records, key=lambda r: (r.chain, r.seq))


# --------------------------------------------------------------------------- audit anchors
# The chain's head at each prod decision (:class:`promoter.core.audit.Anchor`), one row per
# anchor in ``<lake_root>/<model>/audit/anchors``, beside the mirror: kept outside the tracking
# server, so a rewrite of the chain and its head tag there is still visible.

ANCHORS_TABLE = ("audit", "anchors")
"""Where the anchors table lives under the lake root."""


def anchors_table_path(lake_root: str | os.PathLike[str]) -> str:
    """``<lake_root>/audit/anchors`` (beside the mirror), for a local path or an object-store URI."""
    root = os.fspath(lake_root)
    if "://" in root:
        return "/".join([root.rstrip("/"), *ANCHORS_TABLE])
    return os.path.join(root, *ANCHORS_TABLE)


def _anchor_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema([(name, pa.int64() if name == "seq" else pa.string()) for name in ANCHOR_FIELDS])


def append_anchor(anchor: Anchor, path: str | os.PathLike[str]) -> int:
    """Append one anchor's row to the table at ``path`` (created on the first write).

    An anchor the table already holds (same chain, seq and hash: a re-run) is not written again.
    The check reads only the rows of that chain and seq (file statistics prune the rest).

    Returns:
        The number of rows written (0 or 1).
    """
    import pyarrow as pa
    from deltalake import write_deltalake

    target = os.fspath(path)
    table = _open(target)
    if table is not None:
        held = [a.key for a in _read_anchor_rows(table, anchor.registered_model, anchor.seq)]
        if anchor.key in held:
            return 0
    rows = pa.Table.from_pylist([anchor.to_dict()], schema=_anchor_schema())
    write_deltalake(table if table is not None else target, rows, mode="append")
    return 1


def _read_anchor_rows(table: "DeltaTable", model: str | None = None, seq: int | None = None) -> list[Anchor]:
    filters: list[tuple[str, str, Any]] = []
    if model is not None:
        filters.append(("registered_model", "=", model))
    if seq is not None:
        filters.append(("seq", "=", int(seq)))
    data = table.to_pyarrow_table(filters=filters or None).to_pylist()
    return [Anchor.from_dict({k: row[k] for k in ANCHOR_FIELDS}) for row in data]


def read_anchors(path: str | os.PathLike[str]) -> list[Anchor] | None:
    """Every anchor of the table, by chain then recorded time.

    Returns:
        The anchors, or ``None`` when there is no table at ``path``.
    """
    table = _open(os.fspath(path))
    if table is None:
        return None
    return sorted(_read_anchor_rows(table), key=lambda a: (a.chain, a.recorded_at, a.seq))
