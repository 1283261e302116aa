"""Benchmark of post-market surveillance: input drift over every gold feature, in Spark.

Three tables, printed as markdown:

1. **Speed**: for 100,000 and 1,000,000 rows of a gold-like table (538 features: 500 numeric,
   38 categorical, as the shipped project's gold), the seconds of one full read of the table
   (every column materialised, Spark's ``noop`` sink), of the training-snapshot profile
   (``baseline_profile``), of one monitored window (``window_profile`` on the baseline's bins)
   and of the comparison; the ratio window / full read (goal: <= 2).
2. **False alarms**: on undrifted windows (fresh draws from the reference distribution), the
   share of monitoring runs whose dataset-level rule raises a drift alert (goal: <= 5 %), and
   the share of features flagged (the per-feature rule, Bonferroni-corrected).
3. **Detection**: a planted shift of 0.1 and 0.25 standard deviations in 5 numeric features:
   the share of those features flagged, per run, and the runs where all 5 are among the
   flagged, with the default rule (``monitoring.yml`` ``drift:``).

Not part of ``make test``:

    .venv/bin/python bench/monitor.py                          # all three, 100k and 1M rows
    .venv/bin/python bench/monitor.py --rows 100000 --runs 20  # smaller
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NUMERIC, CATEGORICAL = 500, 38
LEVELS = 6


def _frame(spark, rows: int, seed: int, shifted: tuple[int, ...] = (), shift_sd: float = 0.0, partitions: int = 8):
    """A gold-like frame: numeric features ~ N(0, 1) (a few skewed), categorical ones with LEVELS levels."""
    from pyspark.sql import functions as F

    base = spark.range(0, rows, 1, partitions)
    cols = []
    for i in range(NUMERIC):
        x = F.randn(seed * 1000 + i)
        if i % 10 == 9:  # a skewed, count-like feature
            x = F.floor(F.exp(x))
        if i in shifted:
            x = x + F.lit(shift_sd)
        cols.append(x.alias(f"num_{i:03d}"))
    for j in range(CATEGORICAL):
        u = F.rand(seed * 1000 + NUMERIC + j)
        level = F.floor(F.pow(u, 1.5) * LEVELS).cast("int")
        cols.append(F.concat(F.lit("L"), level.cast("string")).alias(f"cat_{j:02d}"))
    return base.select(*cols)


def _rule():
    from pipelines.surveillance import drift_rule
    from promoter import config

    settings = config.load(ROOT / "configs", "prod", environ={})
    return settings.monitoring.drift, drift_rule(settings)


def speed(spark, rows: int, tmp: Path) -> dict:
    from pipelines import drift

    cfg, rule = _rule()
    ref_path, cur_path = str(tmp / f"ref-{rows}"), str(tmp / f"cur-{rows}")
    _frame(spark, rows, 1).write.mode("overwrite").parquet(ref_path)
    _frame(spark, rows, 2, shifted=(0, 1, 2, 3, 4), shift_sd=0.25).write.mode("overwrite").parquet(cur_path)
    ref, cur = spark.read.parquet(ref_path), spark.read.parquet(cur_path)
    features = list(ref.columns)
    t0 = time.perf_counter()
    cur.write.format("noop").mode("overwrite").save()
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline = drift.baseline_profile(ref, features, fine_bins=cfg.fine_bins, max_levels=cfg.max_levels)
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    window = drift.window_profile(cur, baseline)
    t_window = time.perf_counter() - t0
    t0 = time.perf_counter()
    verdict = drift.compare(window, baseline, rule=rule, bins=cfg.bins)
    t_cmp = time.perf_counter() - t0
    return {
        "rows": rows,
        "features": len(features),
        "full_read_s": full,
        "baseline_s": t_base,
        "window_s": t_window,
        "compare_s": t_cmp,
        "ratio": t_window / full,
        "flagged": sum(1 for f in verdict.features if f.drifted),
    }


def alarms(spark, rows: int, runs: int) -> tuple[dict, list[dict]]:
    """False alarms on undrifted windows, and detection of planted shifts (cached reference)."""
    from pipelines import drift

    cfg, rule = _rule()
    ref = _frame(spark, rows, 11)
    features = list(ref.columns)
    baseline = drift.baseline_profile(ref, features, fine_bins=cfg.fine_bins, max_levels=cfg.max_levels)
    dataset_alarms, flagged_share = 0, []
    for r in range(runs):
        v = drift.compare(
            drift.window_profile(_frame(spark, rows, 100 + r), baseline), baseline, rule=rule, bins=cfg.bins
        )
        dataset_alarms += int(v.drifted)
        flagged_share.append(sum(1 for f in v.features if f.drifted) / len(v.features))
    false_alarm = {
        "rows": rows,
        "runs": runs,
        "dataset_alarm_share": dataset_alarms / runs,
        "mean_feature_flag_share": sum(flagged_share) / runs,
        "max_feature_flag_share": max(flagged_share),
    }
    detection = []
    planted = (3, 47, 128, 256, 401)
    for sd in (0.1, 0.25):
        hits, all5 = [], 0
        for r in range(runs):
            cur = _frame(spark, rows, 500 + r, shifted=planted, shift_sd=sd)
            v = drift.compare(drift.window_profile(cur, baseline), baseline, rule=rule, bins=cfg.bins)
            flagged = {f.column_name for f in v.features if f.drifted}
            names = {f"num_{i:03d}" for i in planted}
            hits.append(len(flagged & names) / len(names))
            all5 += int(names <= flagged)
        detection.append(
            {
                "shift_sd": sd,
                "rows": rows,
                "runs": runs,
                "detected_share": sum(hits) / runs,
                "all_five_share": all5 / runs,
            }
        )
    return false_alarm, detection


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="rows of the speed runs (default 100000 and 1000000)")
    ap.add_argument("--alarm-rows", type=int, default=20_000, help="rows per window of the alarm runs")
    ap.add_argument("--runs", type=int, default=20, help="monitoring runs per alarm/detection figure")
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="8g")
    args = ap.parse_args()
    from pipelines.session import build_session

    spark = build_session(
        args.master,
        "promote-bench-monitor",
        {"spark.driver.memory": args.driver_memory, "spark.ui.enabled": False, "spark.sql.shuffle.partitions": 8},
    )
    _, rule = _rule()
    print(f"rule: {rule}\n")
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        print(
            "| rows | features | full read s | baseline profile s | window profile s | compare s | window / read | flagged |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for rows in args.rows or [100_000, 1_000_000]:
            r = speed(spark, rows, Path(tmp))
            print(
                f"| {r['rows']:,} | {r['features']} | {r['full_read_s']:.1f} | {r['baseline_s']:.1f} | "
                f"{r['window_s']:.1f} | {r['compare_s']:.2f} | {r['ratio']:.2f} | {r['flagged']} |",
                flush=True,
            )
    fa, det = alarms(spark, args.alarm_rows, args.runs)
    print("\n| undrifted windows | rows | dataset alerts | mean share of features flagged | max share |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {fa['runs']} | {fa['rows']:,} | {fa['dataset_alarm_share']:.1%} | {fa['mean_feature_flag_share']:.2%} | "
        f"{fa['max_feature_flag_share']:.2%} |"
    )
    print("\n| planted shift | rows | runs | share of the 5 shifted features flagged | runs with all 5 flagged |")
    print("|---:|---:|---:|---:|---:|")
    for d in det:
        print(
            f"| {d['shift_sd']:g} sd | {d['rows']:,} | {d['runs']} | {d['detected_share']:.1%} | {d['all_five_share']:.1%} |"
        )
    spark.stop()


if __name__ == "__main__":
    main()
