"""Benchmark of the data layer: generate + contract check + features (bronze -> silver -> gold).

Prints, per member count and phase, the wall time, rows per second and the driver's peak
memory: the Python driver process (``ru_maxrss``), the JVM heap (peak of the heap memory
pools) and the JVM's resident set (``VmHWM``). In ``local[*]`` mode the executors run inside
the driver JVM, so its heap includes task memory; the Python driver figure shows that
nothing is collected (it must not grow with the member count).

Each size runs in its own process so the peaks are per size. Not part of ``make test``.

    .venv/bin/python bench/features.py                      # 100,000 and 1,000,000 members
    .venv/bin/python bench/features.py --members 100000     # one size
    .venv/bin/python bench/features.py --driver-memory 6g --master 'local[*]'
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _jvm_peaks(spark) -> tuple[float, float]:
    """(peak heap MiB since the last reset, peak resident set MiB of the JVM process)."""
    jvm = spark.sparkContext._jvm
    heap = 0
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        if str(pool.getType()) == "Heap memory":
            heap += pool.getPeakUsage().getUsed()
    pid = jvm.java.lang.ProcessHandle.current().pid()
    rss = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return heap / 2**20, rss


def _reset_jvm_peaks(spark) -> None:
    for pool in spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        pool.resetPeakUsage()


def _py_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(members: int, workdir: Path, master: str, driver_memory: str, seed: int) -> dict:
    """Generate, check and build features for one size in this process; return the figures."""
    import logging

    from pipelines import contracts, features, session, synthetic
    from promoter import config

    steps: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            steps.append(record.getMessage())

    logger = logging.getLogger("promote")
    logger.setLevel(logging.INFO)
    logger.addHandler(Collect())

    environ = {
        **os.environ,
        "PROMOTE_LAKE_ROOT": str(workdir / "lake"),
        "PROMOTE_PSEUDONYM_KEY": "bench-key-not-a-secret",
    }
    settings = config.load(ROOT / "configs", environ=environ)
    conf = {**settings.project.spark.config, "spark.driver.memory": driver_memory, "spark.ui.enabled": False}
    spark = session.build_session(master, "promote-bench-features", conf)
    today = datetime.now(UTC).date()
    out = {
        "members": members,
        "master": master,
        "driver_memory": driver_memory,
        "cores": spark.sparkContext.defaultParallelism,
        "phases": [],
    }

    def phase(name: str, fn):
        _reset_jvm_peaks(spark)
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        heap, rss = _jvm_peaks(spark)
        out["phases"].append(
            {
                "phase": name,
                "seconds": seconds,
                "py_peak_mib": _py_peak_mib(),
                "jvm_heap_peak_mib": heap,
                "jvm_rss_peak_mib": rss,
            }
        )
        return result

    counts = phase("generate", lambda: synthetic.generate(spark, settings, members, seed, today))
    out["claims"] = counts["claims"]
    report = phase("check", lambda: contracts.check(spark, settings))
    out["contracts_ok"] = report.ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        catalog = phase("features", lambda: features.build(spark, settings, environ=environ))
    out["features"] = len(catalog.feature_columns)
    out["gold_rows"] = catalog.row_count
    out["steps"] = steps
    spark.stop()
    return out


def _table(results: list[dict]) -> str:
    head = (
        "| members | phase | seconds | members/s | rows/s (members+claims) | py driver peak MiB "
        "| JVM heap peak MiB | JVM RSS peak MiB |"
    )
    lines = [head, "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows = r["members"] + r["claims"]
        total = 0.0
        for p in r["phases"]:
            total += p["seconds"]
            lines.append(
                f"| {r['members']:,} | {p['phase']} | {p['seconds']:.1f} | {r['members'] / p['seconds']:,.0f} "
                f"| {rows / p['seconds']:,.0f} | {p['py_peak_mib']:.0f} | {p['jvm_heap_peak_mib']:.0f} "
                f"| {p['jvm_rss_peak_mib']:.0f} |"
            )
        lines.append(
            f"| {r['members']:,} | **all three** | {total:.1f} | {r['members'] / total:,.0f} "
            f"| {rows / total:,.0f} | {max(p['py_peak_mib'] for p in r['phases']):.0f} "
            f"| {max(p['jvm_heap_peak_mib'] for p in r['phases']):.0f} "
            f"| {max(p['jvm_rss_peak_mib'] for p in r['phases']):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workdir", type=Path, help="Where the lake goes (default: a temporary folder, removed).")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one:
        result = run_one(args.one, args.workdir, args.master, args.driver_memory, args.seed)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    results = []
    for n in args.members:
        with tempfile.TemporaryDirectory(prefix="promote-bench-", dir=args.workdir) as tmp:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--workdir",
                tmp,
                "--master",
                args.master,
                "--driver-memory",
                args.driver_memory,
                "--seed",
                str(args.seed),
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(line[len("RESULT ") :])
            results.append(r)
            print(
                f"{n:,} members: {r['claims']:,} claims, {r['features']} features, contracts ok={r['contracts_ok']}, "
                f"{r['cores']} cores, process {time.perf_counter() - t0:.0f}s",
                flush=True,
            )
    print()
    print(_table(results))
    for r in results:
        print(f"\nsteps at {r['members']:,} members:")
        for step in r.get("steps", []):
            print(f"  {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
