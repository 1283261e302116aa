"""PHI guard: stop a run when protected health information reaches silver or gold.

Two checks, both on every features build:

* **names**: a configured PHI column (``project.data.phi_columns``) is present;
* **values**: a text column holds values that look like an SSN, a US phone number or an
  e-mail address. The values themselves are never printed, only counts.

The value check is one Spark aggregation over the table's text columns (Parquet reads
only those columns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promoter.errors import DataContractError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from promoter.config import Settings

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
