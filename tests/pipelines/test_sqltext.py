"""SQL text from names and values: Spark reads back exactly what went in."""

from __future__ import annotations

import math

import pytest

from pipelines import sqltext

VALUES = ["it's", "a\\b", r"\d{3}", "x`y", "ünï", "a\nb", "", 0, -7, 2.5, 1e-300, True, False, None]


@pytest.mark.spark
def test_literals_and_names_round_trip_through_spark(spark):
    row = spark.range(1).selectExpr(*[f"{sqltext.literal(v)} AS v{i}" for i, v in enumerate(VALUES)]).first()
    assert [row[i] for i in range(len(VALUES))] == VALUES
    special = spark.range(1).selectExpr(*[sqltext.literal(x) for x in (math.nan, math.inf, -math.inf)]).first()
    assert math.isnan(special[0]) and special[1] == math.inf and special[2] == -math.inf
    odd = "we`ird.col name"
    df = spark.range(2).withColumnRenamed("id", odd)
    assert [r[0] for r in df.selectExpr(f"{sqltext.name(odd)} + 1 AS y").collect()] == [1, 2]
    # a regex with backslashes matches as written (the contract's regex rule)
    pattern = sqltext.literal(r"^(?:\d{3})$")
    assert spark.range(1).selectExpr(f"'123' RLIKE {pattern}", f"'12a' RLIKE {pattern}").first()[:] == (True, False)


@pytest.mark.unit
def test_only_scalars_have_literals():
    with pytest.raises(TypeError, match="no SQL literal for list"):
        sqltext.literal([1])
    assert sqltext.literal("a'b") == "'a\\'b'" and sqltext.name("a`b") == "`a``b`"
