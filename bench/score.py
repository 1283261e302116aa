"""Batch-scoring throughput beside the engine's floor (read the gold table, write it back unchanged).

For each size it builds a gold-like table (``member_key``, ``snapshot_date``, label and ~500 double
features: a third 0/1 flags, a third small counts, a third continuous values rounded to 3 places,
as imputed gold features look), writes it as Parquet, fits a small logistic regression on a
sample, then times:

* floor: ``spark.read.parquet(gold).write.parquet(copy)``, every column, nothing computed;
* scoring: :func:`pipelines.score.score_population` end to end on the same Parquet table (read,
  assemble, predict, checks, capacity tiers, tier counts, both Delta commits, outreach list).

Run by hand (not part of the tests)::

    .venv/bin/python bench/score.py                       # 100,000 and 1,000,000 rows
    .venv/bin/python bench/score.py --rows 100000 --features 100 --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.session import build_session  # noqa: E402


def build_gold(spark, n: int, features: int, path: str, partitions: int) -> list[str]:
    """Write a gold-like Parquet table of ``n`` rows; returns the feature names."""
    from pyspark.sql import functions as F

    names = [f"f_{i:03d}" for i in range(features)]
    cols = []
    for i, name in enumerate(names):
        r = F.rand(1000 + i)
        if i % 3 == 0:
            expr = (r < 0.1).cast("double")
        elif i % 3 == 1:
            expr = F.floor(r * r * 8).cast("double")
        else:
            expr = F.round(F.randn(1000 + i), 3)
        cols.append(expr.alias(name))
    base = spark.range(0, n, numPartitions=partitions).select(
        F.sha2(F.concat(F.lit("m-"), F.col("id").cast("string")), 256).substr(1, 16).alias("member_key"),
        F.lit("2026-11-01").cast("date").alias("snapshot_date"),
        *cols,
    )
    logit = F.lit(-3.0)
    for i, name in enumerate(names[:12]):
        logit = logit + F.col(name) * (0.3 if i % 2 else -0.2)
    base = base.withColumn("hrob_label", (F.rand(7) < 1 / (1 + F.exp(-logit))).cast("int"))
    base.write.mode("overwrite").parquet(path)
    return names


def reusable_gold(spark, path: str, n: int, features: int) -> list[str] | None:
    """The feature names of a complete gold table already at ``path`` with ``n`` rows, else None."""
    if not (Path(path) / "_SUCCESS").exists():
        return None
    df = spark.read.parquet(path)
    names = [c for c in df.columns if c.startswith("f_")]
    return names if len(names) == features and df.count() == n else None


def fit_model(spark, gold_path: str, names: list[str], sample_rows: int):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    sample = spark.read.parquet(gold_path).limit(sample_rows)
    pipe = Pipeline(
        stages=[
            VectorAssembler(inputCols=names, outputCol="features"),
            LogisticRegression(labelCol="hrob_label", maxIter=10, regParam=0.01),
        ]
    )
    return pipe.fit(sample)


def folder_mb(path: str) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--features", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=0, help="gold files (default: ~64k rows each, >= 2)")
    ap.add_argument("--sample-rows", type=int, default=20_000, help="rows the model is fitted on")
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument(
        "--workdir",
        default=None,
        help="keep tables here (a complete gold table of the same size is reused); "
        "default: a temporary folder, removed at the end",
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="time floor and scoring this many times each; the best is reported"
    )
    args = ap.parse_args(argv)

    from pipelines.score import score_population
    from promoter.config import ProjectSettings

    work = Path(args.workdir or tempfile.mkdtemp(prefix="promote-bench-score-"))
    work.mkdir(parents=True, exist_ok=True)
    spark = build_session(
        args.master,
        "promote-bench-score",
        {
            "spark.driver.memory": args.driver_memory,
            "spark.sql.shuffle.partitions": 8,
            "spark.ui.enabled": False,
        },
    )
    cores = spark.sparkContext.defaultParallelism
    rows_out = []
    try:
        for n in args.rows:
            parts = args.partitions or max(2, round(n / 65_536))
            gold = str(work / f"gold_{n}")
            t = time.perf_counter()
            names = reusable_gold(spark, gold, n, args.features)
            how = "reused"
            if names is None:
                names, how = build_gold(spark, n, args.features, gold, parts), "written"
            gen_s = time.perf_counter() - t
            model = fit_model(spark, gold, names, min(args.sample_rows, n))
            size = folder_mb(gold)
            print(f"[{n:,} rows] gold {how} in {gen_s:.1f}s ({size:,.0f} MiB); model fitted", flush=True)

            copy = str(work / f"copy_{n}")
            settings = ProjectSettings(name="bench", model_name="hrob-risk", lake_root=str(work / f"lake_{n}"))
            floors, scorings = [], []
            for attempt in range(1, args.repeat + 1):  # alternate, so both see the same machine
                t = time.perf_counter()
                spark.read.parquet(gold).write.mode("overwrite").parquet(copy)
                floors.append(time.perf_counter() - t)
                print(f"[{n:,} rows] floor (read + write back unchanged) #{attempt}: {floors[-1]:.1f}s", flush=True)
                t = time.perf_counter()
                result = score_population(
                    spark,
                    model,
                    spark.read.parquet(gold),
                    score_date=date(2026, 11, 23),
                    model_name="hrob-risk-prod",
                    model_version=attempt,
                    run_id=f"bench-{attempt}",
                    settings=settings,
                    scored_at=datetime.now(UTC),
                )
                scorings.append(time.perf_counter() - t)
                if result.rows != n:
                    raise SystemExit(f"scored {result.rows} rows, expected {n}")
                print(
                    f"[{n:,} rows] scoring #{attempt}: {scorings[-1]:.1f}s; tiers {result.tier_counts} "
                    f"(exact: {result.tiers_exact}); outreach {result.outreach_rows}",
                    flush=True,
                )
            rows_out.append((n, args.features, size, min(floors), min(scorings)))
            shutil.rmtree(copy, ignore_errors=True)
    finally:
        spark.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"batch scoring vs. read+write floor  (Spark {args.master}, {cores} cores, {args.features} features, "
        f"best of {args.repeat})"
    )
    head = ("rows", "gold MiB", "floor s", "floor rows/s", "scoring s", "scoring rows/s", "scoring/floor")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" for _ in head) + "|")
    for n, _, size, floor_s, score_s in rows_out:
        print(
            f"| {n:,} | {size:,.0f} | {floor_s:.1f} | {n / floor_s:,.0f} | {score_s:.1f} | "
            f"{n / score_s:,.0f} | {score_s / floor_s:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
