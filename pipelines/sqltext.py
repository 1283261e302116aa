"""SQL text for wide selects and aggregations: one JVM call where Columns cost thousands.

Each PySpark ``Column`` operation is a round trip to the JVM (``F.col(c).cast("double")`` is
several). At 538 features and 954 contract rules that is tens of thousands of calls, seconds
to minutes per step; the same expressions as SQL text in one ``selectExpr`` are parsed by the
JVM in one call (measured: 768 casts, 4.6 s as Columns, 0.9 s as text). Names are quoted and
values are written as literals here, so no user-supplied name or value is ever SQL.
"""

from __future__ import annotations

import math
from typing import Any


def name(column: str) -> str:
    """``column`` as a quoted identifier (any characters, a backtick doubled)."""
    return "`" + column.replace("`", "``") + "`"


def literal(value: Any) -> str:
    """A Python scalar as a Spark SQL literal (strings escaped; ``None`` is ``NULL``).

    Raises:
        TypeError: for anything but ``None``, bool, int, float and str.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "double('NaN')"
        if math.isinf(value):
            return "double('Infinity')" if value > 0 else "double('-Infinity')"
        return f"double({value!r})"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")
