"""What one audit append costs as the chain grows: the store append and the Delta mirror append.

For each store (the MLflow store the CLI uses, on SQLite under a temporary directory, and
:class:`~promoter.core.audit.FileAuditStore`) and each chain length N, it

1. builds a chain of N records (not timed). MLflow: one run per record written straight into
   the experiment with the store's own tag layout, then the head tag set once (the store's
   ``append`` takes the chain lock for every record, which would make a 10,000-record setup
   slow); file store: through ``FileAuditStore.append``. The Delta mirror of those N records
   is written once with ``lake.rebuild_audit``;
2. after one untimed decision (warm-up), times ``--appends`` further decisions, each ``audit.append(store, ..., record_id=...)``
   then ``lake.append_audit([record], mirror)``, and counts what the store was asked for;
3. times ``store.find`` alone, and with ``--baseline N`` (default 1) also what a decision
   cost before this change: ``store.read_all`` of the chain (the idempotency check) plus an overwrite of the
   mirror with every record (``lake.rebuild_audit(store.read_all(None))``).

Columns: ``append ms`` is ``audit.append`` (median and p90); ``mirror ms`` is
``lake.append_audit`` of one record; ``reads/append`` is, for MLflow, the tracking-client read
calls (``get_*``/``search_*``) per append out of all client calls, and for the file store the
records parsed and directories listed; ``find ms`` is one ``store.find`` of an id the chain
does not hold (median); ``before ms`` is the baseline above.

Notes on reading the figures: MLflow's SQL store has no index on tag values, so each
``search_runs`` by tag (two per append: the record-id look-up, before and under the lock)
scans one tag row per run in the database, a cost the client cannot avoid: that is the
``find ms`` column, and what remains of the growth; the other calls are key look-ups. The
file store's tail comes from a hint file (no listing) and its find from an id index. A mirror appended once per decision also gains one small file and one commit per
decision: Delta replays the JSON commits since the last checkpoint (one every 100 commits),
so over time single appends cost between a few ms and a few tens of ms in a saw-tooth,
whatever the chain's length; the runs here start right after a rebuild.

Run by hand (never part of ``make test``)::

    .venv/bin/python bench/audit.py                          # lengths 10, 1,000 and 10,000
    .venv/bin/python bench/audit.py --lengths 10 1000 --appends 10 --stores file
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promoter import lake  # noqa: E402
from promoter.core import audit  # noqa: E402
from promoter.core.audit import FileAuditStore, Record  # noqa: E402

ENV = "prod"
T0 = "2026-01-05T10:00:00+00:00"


def _fields(i: int) -> dict[str, Any]:
    """A gate decision's fields, about the size of a real one."""
    return dict(
        kind="gate",
        registered_model="hrob-risk-prod",
        actor="ci",
        commit=f"{i:040x}",
        candidate_version=i + 2,
        champion_version=i + 1,
        metrics={"roc_auc": 0.81, "brier": 0.12, "ece": 0.02, "roc_auc_delta": 0.004},
        policy_hash="ab" * 32,
        verdict="PASS",
        reasons=[
            {"rule": f"floor.m{k}", "passed": True, "observed": 0.8, "limit": 0.7, "message": "ok"} for k in range(6)
        ],
        event={"kind": "release", "branch": "release", "sha": f"{i:040x}", "actor": "ci"},
        details={"i": i},
    )


def _records(n: int) -> list[Record]:
    out: list[Record] = []
    prev = audit.GENESIS
    for i in range(n):
        rec = audit.build(seq=i, prev_hash=prev, environment=ENV, created_at=T0, record_id=f"seed-{i}", **_fields(i))
        out.append(rec)
        prev = rec.hash
    return out


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]
    return statistics.median(ordered) * 1000, p90 * 1000


class CountingClient:
    """The real MLflow client, counting calls by name."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


class CountingFileStore(FileAuditStore):
    """The file store, counting records parsed and chain directories listed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.parsed = 0
        self.listed = 0

    def _load(self, path: Path) -> Record:  # type: ignore[override]
        self.parsed += 1
        return FileAuditStore._load(path)

    def _names(self, environment: str) -> list[str]:
        self.listed += 1
        return super()._names(environment)


# --------------------------------------------------------------------------- the stores


class MlflowCase:
    name = "mlflow"

    def __init__(self, workdir: Path, n: int) -> None:
        from promoter.registry import Registry

        self.registry = Registry(f"sqlite:///{workdir / 'mlflow.db'}")
        self.store = self.registry.audit_store()
        self.counter = CountingClient(self.registry.client)

    def seed(self, records: list[Record]) -> None:
        from promoter.registry.audit_store import AUDIT_NEXT

        client, store = self.registry.client, self.store
        run_id = ""
        for rec in records:
            run_id = client.create_run(
                store.experiment_id, run_name=store._run_name(rec), tags=store._run_tags(rec)
            ).info.run_id
        if records:
            client.set_experiment_tag(store.experiment_id, AUDIT_NEXT + ENV, str(records[-1].seq))
            store._move_head(records[-1], run_id)

    def measure(self, fn: Callable[[], Record]) -> tuple[Record, str]:
        self.registry.client = self.counter
        self.counter.calls.clear()
        try:
            rec = fn()
        finally:
            self.registry.client = self.counter._client
        reads = sum(c.startswith(("get_", "search_")) for c in self.counter.calls)
        return rec, f"{reads} of {len(self.counter.calls)} calls"


class FileCase:
    name = "file"

    def __init__(self, workdir: Path, n: int) -> None:
        self.store = CountingFileStore(workdir / "audit")

    def seed(self, records: list[Record]) -> None:
        for rec in records:
            self.store.append(rec)

    def measure(self, fn: Callable[[], Record]) -> tuple[Record, str]:
        self.store.parsed = self.store.listed = 0
        rec = fn()
        return rec, f"{self.store.parsed} parsed, {self.store.listed} listed"


CASES = {"mlflow": MlflowCase, "file": FileCase}


# --------------------------------------------------------------------------- one length


def run_case(kind: str, n: int, appends: int, baseline: int, root: Path) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-{n}-", dir=root))
    case = CASES[kind](workdir, n)
    mirror = lake.audit_table_path(str(workdir / "lake"))
    t0 = time.perf_counter()
    records = _records(n)
    case.seed(records)
    lake.rebuild_audit(records, mirror)
    setup = time.perf_counter() - t0
    print(
        f"  {kind}: built a chain of {n:,} records and its mirror in {setup:.1f} s (not timed)",
        file=sys.stderr,
        flush=True,
    )

    # one untimed decision first: imports, connection pools and caches warm up
    warm = audit.append(case.store, environment=ENV, created_at=T0, record_id=f"warm-{n}", **_fields(n))
    lake.append_audit([warm], mirror)

    append_s: list[float] = []
    mirror_s: list[float] = []
    reads: list[str] = []
    for j in range(appends):
        i = n + 1 + j
        start = time.perf_counter()
        rec, counted = case.measure(
            lambda i=i: audit.append(case.store, environment=ENV, created_at=T0, record_id=f"bench-{i}", **_fields(i))
        )
        middle = time.perf_counter()
        written = lake.append_audit([rec], mirror)
        end = time.perf_counter()
        if rec.seq != i or written != 1:
            raise SystemExit(f"bench: append {j} stored seq {rec.seq} and mirrored {written} rows")
        append_s.append(middle - start)
        mirror_s.append(end - middle)
        reads.append(counted)

    find_s: list[float] = []
    for j in range(appends):  # the id look-up alone (a miss), twice per append in the MLflow store
        start = time.perf_counter()
        case.store.find(ENV, f"missing-{j}")
        find_s.append(time.perf_counter() - start)

    before_s: list[float] = []
    for _ in range(baseline):
        start = time.perf_counter()
        case.store.read_all(ENV)
        lake.rebuild_audit(case.store.read_all(None), mirror)
        before_s.append(time.perf_counter() - start)

    chain = case.store.read_all(ENV)
    result = audit.verify(chain, head=case.store.head(ENV) if kind == "mlflow" else None)
    if not result.ok or len(chain) != n + 1 + appends or len(lake.read_audit(mirror)) != n + 1 + appends:
        raise SystemExit(f"bench: the {kind} chain of {n} does not verify: {result.first_problem}")
    shutil.rmtree(workdir, ignore_errors=True)
    common = max(set(reads), key=reads.count)
    return {
        "store": kind,
        "n": n,
        "append": _ms(append_s),
        "mirror": _ms(mirror_s),
        "find": _ms(find_s)[0],
        "reads": common if len(set(reads)) == 1 else f"{common} (mostly)",
        "before": statistics.median(before_s) * 1000 if before_s else None,
    }


def print_table(rows: list[dict[str, Any]], appends: int) -> None:
    head = (
        "store",
        "chain length",
        "append ms (median, p90)",
        "mirror append ms (median, p90)",
        "store reads / append",
        "find ms",
        "before ms (read_all + overwrite)",
    )
    body = [
        (
            r["store"],
            f"{r['n']:,}",
            f"{r['append'][0]:.1f}, {r['append'][1]:.1f}",
            f"{r['mirror'][0]:.1f}, {r['mirror'][1]:.1f}",
            r["reads"],
            f"{r['find']:.1f}",
            "-" if r["before"] is None else f"{r['before']:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[k]) for b in body)) for k, h in enumerate(head)]
    line = " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(f"\n{appends} appends per row, each with a record_id; chain grows from its length\n")
    print(line)
    print("-+-".join("-" * w for w in widths))
    for b in body:
        print(" | ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[10, 1000, 10000],
        help="chain lengths to measure at (default: 10 1000 10000; building the "
        "10,000-record chains takes 2-4 minutes on 2 cores, the whole default run "
        "5-8; --lengths 10 1000 takes about one)",
    )
    parser.add_argument("--appends", type=int, default=20, help="timed appends per length (default 20)")
    parser.add_argument("--stores", nargs="+", choices=sorted(CASES), default=["mlflow", "file"])
    parser.add_argument(
        "--baseline",
        type=int,
        default=1,
        help="times to measure the old per-decision cost (read_all + overwrite); 0 skips",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary stores go")
    args = parser.parse_args(argv)

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore")
    if "mlflow" in args.stores:
        import mlflow  # noqa: F401  (configures its loggers; quiet them after)

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=args.workdir))
    rows = []
    try:
        for kind in args.stores:
            for n in args.lengths:
                rows.append(run_case(kind, n, args.appends, args.baseline, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows, args.appends)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
