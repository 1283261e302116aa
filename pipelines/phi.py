"""PHI guard: stop a run when protected health information reaches silver or gold.

Two checks, both on every features build:

* **names**: a configured PHI column (``project.data.phi_columns``) is present;
* **values**: a text column holds values that look like an SSN, a US phone number or an
  e-mail address. The values themselves are never printed, only counts.

The value check is one Spark aggregation over the table's text columns (Parquet reads
only those columns).

The same guard also reads for the scan of what a run produced (``promoter.app.steps.phi``):
:func:`bronze_index` builds the salted digests of every distinct bronze PHI value, and
:func:`scan_delta_table` reads a prediction table's text columns in Arrow batches; the matching
itself is pure (``promoter.core.phi``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promoter.errors import DataContractError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings
    from promoter.core.phi import Finding, PhiIndex

# Java regular expressions (Spark's rlike); each finds the pattern anywhere in a value. Each is
# guarded by a cheap substring test every match needs, so most values never reach the regex.
VALUE_PATTERNS: dict[str, str] = {
    "an SSN": r"(?<![0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9])",
    "a phone number": r"(?<![0-9])(\([0-9]{3}\)\s?|[0-9]{3}[-.\s])[0-9]{3}[-.\s][0-9]{4}(?![0-9])",
    "an e-mail address": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
}
_NEEDS: dict[str, tuple[str, ...]] = {
    "an SSN": ("-",),
    "a phone number": ("-", ".", " ", "\t", "("),
    "an e-mail address": ("@",),
}


def findings(df: "DataFrame", phi_columns: list[str]) -> list[str]:
    """Every PHI finding in ``df`` as one line each (empty when clean).

    Args:
        df: the table to inspect (silver or gold).
        phi_columns: column names that are PHI (case-insensitive).

    Returns:
        Lines such as ``column 'ssn' is a PHI column`` or
        ``column 'note': 3 value(s) look like an e-mail address``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    phi = {c.lower() for c in phi_columns}
    found = [f"column {c!r} is a PHI column" for c in df.columns if c.lower() in phi]
    text = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType) and f.name.lower() not in phi]
    if not text:
        return found
    exprs, labels = [], []
    for col in text:
        for what, pattern in VALUE_PATTERNS.items():
            c = F.col(f"`{col}`")
            cheap = None
            for token in _NEEDS[what]:
                cheap = c.contains(token) if cheap is None else cheap | c.contains(token)
            exprs.append(F.sum((cheap & c.rlike(pattern)).cast("long")).alias(f"c{len(exprs)}"))
            labels.append((col, what))
    row = df.agg(*exprs).first()
    for i, (col, what) in enumerate(labels):
        hits = row[f"c{i}"] if row is not None else None
        if hits:
            found.append(f"column {col!r}: {hits} value(s) look like {what}")
    return found


def check(df: "DataFrame", settings: "Settings", where: str = "table") -> None:
    """Fail when ``df`` holds a PHI column or PHI-looking values.

    Args:
        df: the table to inspect.
        settings: loaded settings (``project.data.phi_columns`` and the id column are PHI).
        where: how to name the table in the message, e.g. ``silver/entities``.

    Raises:
        DataContractError: listing every finding (never the values).
    """
    data = settings.project.data
    problems = findings(df, [*data.phi_columns, data.id_column])
    if problems:
        raise DataContractError(f"PHI guard: {where} holds PHI; nothing was published:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- the run's outputs
#
# The scan of what a run produced (promoter.app.steps.phi) matches strings against the bronze PHI
# values; the matching is pure (promoter.core.phi), the reading is here: bronze through Spark,
# the Delta prediction tables through deltalake/Arrow, in batches.

# a bronze PHI column whose every value is one word of letters (a first or a last name)
_ONE_WORD = r"^\p{L}+$"
TABLE_BATCH_ROWS = 65_536


def phi_columns_of(settings: "Settings", table: str, columns: list[str]) -> list[str]:
    """The columns of bronze ``table`` that are PHI: ``data.phi_columns``, the id column, and
    the event table's id column (case-insensitive; in the table's own spelling)."""
    data = settings.project.data
    names = {c.lower() for c in data.phi_columns} | {data.id_column.lower()}
    if data.events is not None and table == data.events.table and data.events.id_column:
        names.add(data.events.id_column.lower())
    return [c for c in columns if c.lower() in names]


def bronze_index(spark: "SparkSession", settings: "Settings", salt: bytes) -> "PhiIndex":
    """The salted digests of every distinct value of the bronze PHI columns (``core.phi``).

    Each source table (``lake.source_tables``) is read with Spark; only its PHI columns, one
    ``distinct`` over all of them (as ``(column, value)`` pairs, one Spark job) streamed to the
    driver partition by partition, so the driver holds one partition of values at a time plus
    the digests (about 10 bytes per distinct value).
    Columns whose values are single words (first and last names) are indexed as the pairs one
    row gives (``first_name + last_name``, both orders), since a lone name is a common word.

    Args:
        spark: the session.
        settings: the loaded settings (sources, ``data.phi_columns``, the id columns).
        salt: random bytes for this scan (never stored).

    Returns:
        The index; its ``description`` says how many values and how much memory.
    """
    from itertools import permutations

    from pyspark.sql import functions as F

    from pipelines import lake
    from promoter.core.phi import PhiIndexBuilder

    data = settings.project.data
    builder = PhiIndexBuilder(salt, [*data.phi_columns, data.id_column])
    for name, source in lake.source_tables(settings).items():
        try:
            df = lake.read_table(spark, name, source)
        except DataContractError:
            continue  # a table the project does not have (e.g. no claims): nothing to index
        cols = phi_columns_of(settings, name, df.columns)
        if not cols:
            continue
        typed = dict(df.dtypes)
        text_cols = [c for c in cols if typed[c] == "string"]
        one_word: list[str] = []
        if text_cols:
            row = df.agg(
                *[
                    F.min(F.when(F.col(f"`{c}`").isNull(), True).otherwise(F.col(f"`{c}`").rlike(_ONE_WORD))).alias(
                        f"w{i}"
                    )
                    for i, c in enumerate(text_cols)
                ]
            ).first()
            one_word = [c for i, c in enumerate(text_cols) if row is not None and row[f"w{i}"]]
        # one job per table: every (column, value) pair, PHI columns and name pairs alike, made
        # distinct in one shuffle and streamed to the driver a partition at a time
        entries = [F.struct(F.lit(c).alias("c"), F.col(f"`{c}`").cast("string").alias("v")) for c in cols]
        for a, b in permutations(one_word, 2):
            both = F.col(f"`{a}`").isNotNull() & F.col(f"`{b}`").isNotNull()
            pair = F.when(both, F.concat_ws(" ", F.col(f"`{a}`"), F.col(f"`{b}`")))
            entries.append(F.struct(F.lit(f"{a} + {b}").alias("c"), pair.alias("v")))
        pairs = df.select(F.explode(F.array(*entries)).alias("e")).select("e.c", "e.v")
        for r in pairs.where(F.col("v").isNotNull()).distinct().toLocalIterator(prefetchPartitions=True):
            builder.add(r["c"], r["v"])
    return builder.build()


def scan_delta_table(
    index: "PhiIndex", location: str, name: str, partition: tuple[str, str] | None = None
) -> list["Finding"] | None:
    """Scan one Delta table's column names and text values (``None`` when there is no table).

    Args:
        index: the bronze PHI index.
        location: the table's folder.
        name: how findings name it (``table predictions column note row 3``).
        partition: ``(column, value)`` to scan one partition only (e.g. the day just written).
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    from promoter.core import phi as core_phi

    if not DeltaTable.is_deltatable(location):
        return None
    table = DeltaTable(location)
    dataset = table.to_pyarrow_dataset(partitions=[(partition[0], "=", partition[1])] if partition else None)
    schema = dataset.schema
    found = core_phi.scan_names(index, schema.names, f"table {name}")
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    per_column: dict[str, list[Any]] = {c: [] for c in text}
    row = 0
    if text:
        for batch in dataset.to_batches(columns=text, batch_size=TABLE_BATCH_ROWS):
            for c in text:
                values = batch.column(c).to_pylist()
                per_column[c] += core_phi.scan_cells(
                    index, ((row + i + 1, v) for i, v in enumerate(values)), f"table {name} column {c}"
                )
            row += batch.num_rows
    for c in text:
        found += core_phi.cap(per_column[c], f"table {name} column {c}")
    return found
