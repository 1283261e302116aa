"""Where the lake's tables live, how source tables are read, and all-or-nothing writes.

Layout under the model's folder of the lake, ``settings.project.lake`` (``<lake_root>/<model_name>``)::

    bronze/members, bronze/claims      raw (may hold PHI), Parquet written by Spark
    silver/<table>                     typed, de-duplicated, pseudonymised, PHI removed
    gold/features                      the feature table (Parquet) + gold/features/_catalog.json

A local ``lake_root`` (no URI scheme) is resolved against the working directory; any
Hadoop file system URI (``s3a://``, ``abfss://``, ``hdfs://``) works the same way.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.errors import DataContractError, InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings, TableSource

BRONZE, SILVER, GOLD = "bronze", "silver", "gold"
GOLD_FEATURES = "features"
CATALOG_FILE = "_catalog.json"
SYNTHETIC_TABLES = ("members", "claims")


def root(settings: "Settings") -> str:
    """The model's folder of the lake (``<lake_root>/<model_name>``) as an absolute path or URI."""
    return _absolute(settings.project.lake)


def path(settings: "Settings", layer: str, table: str) -> str:
    """The folder of one table, e.g. ``path(s, "silver", "entities")``."""
    return root(settings).rstrip("/") + f"/{layer}/{table}"


def location(settings: "Settings", where: str) -> str:
    """A configured table location: a URI or absolute path as it is, a relative one under the model's folder."""
    if "://" in where or where.startswith("file:") or Path(where).expanduser().is_absolute():
        return _absolute(where)
    return root(settings).rstrip("/") + "/" + where.strip("/")


def gold_path(settings: "Settings") -> str:
    """The gold feature table's folder (the catalog file sits inside it)."""
    return path(settings, GOLD, GOLD_FEATURES)


def source_tables(settings: "Settings") -> dict[str, "TableSource"]:
    """The tables bronze is read from: the synthetic bronze folders, or the configured tables."""
    from promoter.config import TableSource

    data = settings.project.data
    if data.source == "tables":
        return dict(data.tables)
    return {name: TableSource(path=path(settings, BRONZE, name), format="parquet") for name in SYNTHETIC_TABLES}


def read_table(spark: "SparkSession", name: str, source: "TableSource") -> "DataFrame":
    """Read one source table with Spark.

    Parquet and CSV are read natively. Delta is read through the ``deltalake`` package into
    Arrow and handed to Spark, which suits small tables only (Spark here has no Delta jars).

    Raises:
        DataContractError: when the table does not exist or cannot be read.
    """
    location = _absolute(source.path)
    if not exists(spark, location):
        raise DataContractError(
            f"table {name!r} not found at {location} "
            f"({'run `promote data generate` first' if '/bronze/' in location else 'check project.yml data.tables'})"
        )
    options = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in source.options.items()}
    try:
        if source.format == "parquet":
            return spark.read.options(**options).parquet(location)
        if source.format == "csv":
            options = {"header": "true", "inferSchema": "true", **options}
            return spark.read.options(**options).csv(location)
        from deltalake import DeltaTable

        arrow = DeltaTable(location).to_pyarrow_table()
        return spark.createDataFrame(arrow.to_pandas())
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader error is bad input, named with the table
        raise DataContractError(
            f"table {name!r} ({source.format} at {location}) cannot be read: {str(exc).splitlines()[0][:300]}"
        ) from None


def source_identity(sources: dict[str, "TableSource"]) -> list[Any] | None:
    """Every file of the source tables as (table, relative path, size, mtime in ns), sorted.

    Rewriting a table (``promote data generate``, a new Delta commit, a new CSV) changes it.
    ``None`` when a table is not on the local file system.
    """
    out: list[Any] = []
    for name, source in sorted(sources.items()):
        location = _absolute(source.path)
        if not _is_local(location):
            return None
        base = Path(location.removeprefix("file:"))
        if base.is_file():
            st = base.stat()
            out.append([name, base.name, st.st_size, st.st_mtime_ns])
            continue
        for f in sorted(base.rglob("*")):
            if f.is_file():
                st = f.stat()
                out.append([name, str(f.relative_to(base)), st.st_size, st.st_mtime_ns])
    return out


def inputs_key(sources: dict[str, "TableSource"], parts: list[Any], code: list[Any]) -> str | None:
    """A sha256 over the source files (:func:`source_identity`), ``parts`` (settings, JSON-able)
    and the source of the ``code`` modules: equal keys mean the same work on the same inputs.
    ``None`` when a table is not on the local file system (listing is no cheaper than the work)."""
    import hashlib
    import json

    files = source_identity(sources)
    if files is None:
        return None
    code_hashes = [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in code]
    blob = json.dumps([files, parts, code_hashes], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------- file system


def _absolute(location: str) -> str:
    if "://" in location or location.startswith("file:"):
        return location
    return str(Path(location).expanduser().resolve())


def _is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file:")


def _local(location: str) -> str:
    return (
        location[len("file://") :]
        if location.startswith("file://")
        else location[len("file:") :]
        if location.startswith("file:")
        else location
    )


def _hadoop_fs(spark: "SparkSession", location: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    jpath = jvm.org.apache.hadoop.fs.Path(location)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    return fs, jpath


def exists(spark: "SparkSession", location: str) -> bool:
    """True when a file or folder exists at ``location``."""
    if _is_local(location):
        return os.path.exists(_local(location))
    fs, jpath = _hadoop_fs(spark, location)
    return bool(fs.exists(jpath))


def delete(spark: "SparkSession", location: str) -> None:
    """Remove a file or folder (recursively); missing is fine."""
    if _is_local(location):
        p = _local(location)
        if os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.exists(p):
            os.remove(p)
        return
    fs, jpath = _hadoop_fs(spark, location)
    fs.delete(jpath, True)


def rename(spark: "SparkSession", src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (atomic for a folder on a local or HDFS file system)."""
    if _is_local(src):
        os.makedirs(os.path.dirname(_local(dst)), exist_ok=True)
        os.replace(_local(src), _local(dst))
        return
    fs, jsrc = _hadoop_fs(spark, src)
    _, jdst = _hadoop_fs(spark, dst)
    fs.mkdirs(jdst.getParent())
    if not fs.rename(jsrc, jdst):
        raise OSError(f"cannot rename {src} to {dst}")


def write_text(spark: "SparkSession", location: str, text: str) -> None:
    """Write a small text file (the catalog)."""
    if _is_local(location):
        p = _local(location)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    fs, jpath = _hadoop_fs(spark, location)
    out = fs.create(jpath, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def read_text(spark: "SparkSession", location: str) -> str | None:
    """Read a small text file, or ``None`` when it does not exist."""
    if _is_local(location):
        p = _local(location)
        if not os.path.isfile(p):
            return None
        with open(p, encoding="utf-8") as fh:
            return fh.read()
    if not exists(spark, location):
        return None
    rows = spark.sparkContext.wholeTextFiles(location).collect()
    return rows[0][1] if rows else None


class Staging:
    """All-or-nothing writes of several tables: write to hidden siblings, then swap them in.

    Use as a context manager: on success every staged folder replaces its target; on an
    exception every staged folder is deleted and the targets are untouched::

        with lake.Staging(spark) as stage:
            df.write.parquet(stage.path(target))
    """

    def __init__(self, spark: "SparkSession") -> None:
        self.spark = spark
        self.token = uuid.uuid4().hex[:12]
        self.pending: dict[str, str] = {}

    def path(self, target: str) -> str:
        """The staging location for ``target`` (written now, swapped in at commit)."""
        tmp = target.rstrip("/") + f".__staging-{self.token}"
        self.pending[target] = tmp
        return tmp

    def commit(self) -> None:
        """Swap every staged folder into place (old content is removed)."""
        for target, tmp in self.pending.items():
            old = target.rstrip("/") + f".__old-{self.token}"
            had_old = exists(self.spark, target)
            if had_old:
                rename(self.spark, target, old)
            rename(self.spark, tmp, target)
            if had_old:
                delete(self.spark, old)
        self.pending.clear()

    def abort(self) -> None:
        """Delete every staged folder."""
        for tmp in self.pending.values():
            delete(self.spark, tmp)
        self.pending.clear()

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def ensure_readable_columns(df: "DataFrame", columns: list[str], what: str) -> None:
    """Raise InvalidInput naming ``what`` when any of ``columns`` is missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInput(
            f"{what}: column(s) not found: {', '.join(missing)} "
            f"(available: {', '.join(df.columns[:20])}{', ...' if len(df.columns) > 20 else ''})"
        )
