"""Training time and Hyperopt trials per minute at several population sizes, and how time grows.

For each size it trains exactly what ``promote train`` trains (``pipelines.train.train``: hash
split, assemble + scale, Hyperopt TPE search on a validation part, refit, held-out metrics
in Spark) on a gold table of that many members, and prints one row per size:

* prepare / search / refit / evaluate / total seconds (as ``TrainOutput.timings`` measures);
* trials run and trials per minute of search;
* the growth exponent of total time between consecutive sizes, ``log(t2/t1) / log(n2/n1)``
  (1.0 = linear in members; below 1 = fixed costs still dominate).

By default the gold table is the data layer's own: the synthetic population generated and
built to gold (every feature group, as ``promote run`` builds it), once per size under
``--workdir``. ``--source gold-like`` instead writes a gold-like table in the agreed shape (``member_key``, ``snapshot_date``, ``hrob_label``, subgroup columns,
``--features`` imputed double features: a third 0/1 flags, a third small counts, a third
continuous) with a known logistic signal. It is written once as Parquet under ``--workdir``
and reused by later runs of the same size.

Run by hand (never part of ``make test``)::

    .venv/bin/python bench/train.py                          # 20,000 100,000 1,000,000 members
    .venv/bin/python bench/train.py --members 20000 100000 --features 500 --max-evals 8
    .venv/bin/python bench/train.py --members 20000 --log    # also time MLflow logging + registration
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.session import build_session  # noqa: E402

SUBGROUPS = {
    "race_ethnicity": ["White", "Black", "Hispanic", "Asian", "Other"],
    "payer_type": ["medicaid", "chip", "marketplace"],
    "region": ["Central", "NE", "NW", "SE", "SW"],
    "age_band": ["<20", "20-24", "25-29", "30-34", "35+"],
}


def build_gold(spark, members: int, features: int, path: str, partitions: int) -> list[str]:
    """Write a gold-like table of ``members`` rows to ``path``; returns the feature names."""
    from pyspark.sql import functions as F

    names = [f"f_{i:03d}" for i in range(features)]
    cols = []
    for i, name in enumerate(names):
        r = F.rand(1000 + i)
        expr = (
            (r < 0.1).cast("double")
            if i % 3 == 0
            else F.floor(r * r * 8).cast("double")
            if i % 3 == 1
            else F.round(F.randn(1000 + i), 3)
        )
        cols.append(expr.alias(name))
    sub = [
        F.element_at(
            F.array(*[F.lit(v) for v in vals]),
            (F.pmod(F.xxhash64(F.col("id"), F.lit(col)), F.lit(len(vals))) + 1).cast("int"),
        ).alias(col)
        for col, vals in SUBGROUPS.items()
    ]
    base = spark.range(0, members, numPartitions=partitions).select(
        F.sha2(F.concat(F.lit("m-"), F.col("id").cast("string")), 256).substr(1, 20).alias("member_key"),
        F.lit("2026-11-01").cast("date").alias("snapshot_date"),
        *sub,
        *cols,
    )
    logit = F.lit(-2.6)
    for i, name in enumerate(names[:24]):
        logit = logit + F.col(name) * (0.35 if i % 2 else -0.25)
    base = base.withColumn("hrob_label", (F.rand(7) < 1 / (1 + F.exp(-logit))).cast("int"))
    base.write.mode("overwrite").parquet(path)
    return names


def toy_source(spark, members: int, features: int, workdir: Path, partitions: int):
    path = workdir / f"gold-{members}-{features}"
    if not (path / "_SUCCESS").exists():
        t0 = time.monotonic()
        build_gold(spark, members, features, str(path), partitions)
        print(
            f"  built gold-like table of {members:,} members x {features} features in {time.monotonic() - t0:.0f}s",
            flush=True,
        )
    df = spark.read.parquet(str(path))
    return df, [c for c in df.columns if c.startswith("f_")], f"gold-like-{members}"


def synthetic_source(spark, settings, members: int, workdir: Path):
    """The data layer's own synthetic population -> gold with every feature group."""
    from datetime import date

    from pipelines import features, synthetic
    from promoter.app.steps.data import wide_settings

    lake = workdir / f"lake-{members}"
    local = settings.model_copy(update={"project": settings.project.model_copy(update={"lake_root": str(lake)})})
    if not (lake / "gold").exists():
        t0 = time.monotonic()
        synthetic.generate(spark, local, members, 20240601, date(2024, 6, 30))
        features.build(spark, wide_settings(local))
        print(
            f"  generated synthetic population and gold for {members:,} members in {time.monotonic() - t0:.0f}s",
            flush=True,
        )
    df, catalog = features.load_gold(spark, wide_settings(local))
    return df, list(catalog.feature_columns), catalog.snapshot_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, nargs="+", default=[20_000, 100_000, 1_000_000])
    ap.add_argument("--features", type=int, default=500, help="features of the gold-like table")
    ap.add_argument("--source", choices=["gold-like", "synthetic"], default="synthetic")
    ap.add_argument("--env", default="prod", help="config environment whose training.yml is used")
    ap.add_argument("--max-evals", type=int, help="override training.max_evals")
    ap.add_argument("--timeout", type=int, help="override training.timeout_seconds")
    ap.add_argument("--algorithm", choices=["logistic_regression", "gbt", "random_forest"])
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "promote-bench-train"))
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--log", action="store_true", help="also log to MLflow and register (sqlite in workdir)")
    args = ap.parse_args(argv)

    from promoter import config
    from promoter.config import TrainingSettings

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = config.load(Path(__file__).resolve().parent.parent / "configs", args.env)
    values = settings.training.model_dump()
    for key, value in (("max_evals", args.max_evals), ("timeout_seconds", args.timeout), ("algorithm", args.algorithm)):
        if value is not None:
            values[key] = value
    if args.algorithm and args.algorithm != settings.training.algorithm:
        values["search_space"], values["params"] = {}, {}
    settings = settings.model_copy(update={"training": TrainingSettings.model_validate(values)})
    t = settings.training
    spark = build_session(
        args.master,
        "promote-bench-train",
        {
            "spark.driver.memory": args.driver_memory,
            "spark.sql.shuffle.partitions": 8,
            "spark.ui.enabled": False,
            "spark.sql.adaptive.enabled": True,
        },
    )
    cores = spark.sparkContext.defaultParallelism
    print(
        f"promote training benchmark: {t.algorithm}, max_evals {t.max_evals}, early stop "
        f"{t.early_stop_rounds}, timeout {t.timeout_seconds}s, fixed {t.params}, master {args.master} "
        f"({cores} cores), source {args.source}",
        flush=True,
    )

    from pipelines.train import fit_and_log, train

    rows = []
    for members in args.members:
        if args.source == "synthetic":
            gold, names, snapshot = synthetic_source(spark, settings, members, workdir)
        else:
            gold, names, snapshot = toy_source(spark, members, args.features, workdir, partitions=max(4, cores * 2))
        print(f"  training on {members:,} members x {len(names)} features ...", flush=True)
        wall = time.monotonic()
        if args.log:
            from promoter.app.training import resolved_config_yaml
            from promoter.registry import Lineage, Registry
            from promoter.registry.tracking import training_run

            registry = Registry(f"sqlite:///{workdir / 'mlflow.db'}")
            lineage = Lineage(
                environment=settings.env or "dev", config_hash=settings.config_hash, data_snapshot=snapshot
            )
            with training_run(registry, "/promote/bench", "bench", lineage.tags()) as run:
                _, out = fit_and_log(
                    spark,
                    settings,
                    gold,
                    {"snapshot_id": snapshot},
                    run,
                    lineage=lineage.to_dict(),
                    config_yaml=resolved_config_yaml(settings),
                    feature_columns=names,
                )
        else:
            out = train(spark, settings, gold, names)
        wall = time.monotonic() - wall
        tm = out.timings
        per_min = len(out.trials) / (tm["search_s"] / 60) if tm["search_s"] > 0 else float("nan")
        rows.append((members, len(names), tm, len(out.trials), per_min, wall, out.eval_result.metrics["roc_auc"]))
        print(f"  done in {wall:.0f}s (held-out roc_auc {out.eval_result.metrics['roc_auc']:.3f})", flush=True)

    head = (
        f"{'members':>10} {'features':>8} {'prepare_s':>9} {'search_s':>9} {'refit_s':>8} {'evaluate_s':>10} "
        f"{'train_s':>8} {'trials':>6} {'trials/min':>10} {'growth':>7}" + (f" {'wall_s':>7}" if args.log else "")
    )
    print()
    print(head)
    prev = None
    for members, nf, tm, trials, per_min, wall, _ in rows:
        growth = "" if prev is None else f"{math.log(tm['total_s'] / prev[1]) / math.log(members / prev[0]):.2f}"
        line = (
            f"{members:>10,} {nf:>8} {tm['prepare_s']:>9.1f} {tm['search_s']:>9.1f} {tm['refit_s']:>8.1f} "
            f"{tm['evaluate_s']:>10.1f} {tm['total_s']:>8.1f} {trials:>6} {per_min:>10.2f} {growth:>7}"
        )
        print(line + (f" {wall:>7.1f}" if args.log else ""))
        prev = (members, tm["total_s"])
    print("\ngrowth = log(train_s ratio) / log(members ratio) against the previous size (1.0 = linear)")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
