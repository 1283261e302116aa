"""N concurrent prod releases of N distinct models against one tracking server on PostgreSQL.

For each N (default 1, 4, 8, 16): a fresh database on a private PostgreSQL cluster on 127.0.0.1,
an `mlflow server` on it, N model repositories (this project's configs with ``model_name:
bench-<i>``, a one-trial search, the same generated members copied into each model's lake), and
N ``promote replay push release/1.0`` processes started together. Prints per N: the wall time,
the slowest and median run, the tracking-server requests per run (from the server's access log),
the runs that waited for a lock, and whether every model ended with exactly one version, one
champion move and a verifying chain (the invariant that must hold at every N).

Needs PostgreSQL and psycopg (``make test-postgres`` installs both). Run by hand::

    .venv/bin/python bench/concurrency.py                    # N = 1 4 8 16, 1,000 members each
    .venv/bin/python bench/concurrency.py --n 1 4 --members 500
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promoter.core import audit, tags  # noqa: E402
from promoter.registry import Registry  # noqa: E402
from tests.e2e.conftest import start_mlflow_server, stop_mlflow_server  # noqa: E402
from tests.e2e.helpers import SMALL_DATA_PROD_POLICY, cli_env  # noqa: E402
from tests.e2e.postgres import running_postgres  # noqa: E402

REQUEST = re.compile(r'"(GET|POST|PATCH|DELETE|PUT) /(api|ajax-api)/')


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def model_repo(work: Path, i: int, lake: Path | None) -> Path:
    """Repository of model ``bench-<i>``; its lake is a copy of ``lake`` (renamed to the model)."""
    repo = work / f"model-{i}"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "configs", repo / "configs")
    p = repo / "configs" / "base" / "project.yml"
    project = yaml.safe_load(p.read_text())
    project.update(name=f"bench{i}", model_name=f"bench-{i}")
    project["spark"].setdefault("config", {})["spark.driver.memory"] = "1g"  # N JVMs on one machine
    p.write_text(yaml.safe_dump(project, sort_keys=False))
    for env in ("dev", "staging", "prod"):
        t = repo / "configs" / env / "training.yml"
        data = (yaml.safe_load(t.read_text()) or {}) if t.exists() else {}
        data["max_evals"] = 1
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(yaml.safe_dump(data, sort_keys=False))
    # a thousand members cannot meet the shipped prod floors and fairness limits: the small-data
    # policy of the e2e tests (same rules, limits a few hundred evaluation rows can measure)
    (repo / "configs" / "prod" / "promotion.yml").write_text(yaml.safe_dump(SMALL_DATA_PROD_POLICY, sort_keys=False))
    (repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"model bench-{i}")
    git(repo, "branch", "release/1.0")
    if lake is not None:
        shutil.copytree(lake, repo / ".promote" / "lake" / f"bench-{i}", copy_function=shutil.copy2)
    return repo


def generate(work: Path, members: int) -> Path:
    """One generated lake folder (bronze) for every model."""
    repo = model_repo(work / "generate", 0, None)
    proc = subprocess.run(
        [sys.executable, "-m", "promoter", "data", "generate", "--members", str(members)],
        cwd=repo,
        env=cli_env(f"sqlite:///{repo / '.promote' / 'mlflow.db'}"),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return repo / ".promote" / "lake" / "bench-0"


def one_n(n: int, work: Path, lake: Path) -> dict:
    with running_postgres() as backend:
        root = work / f"server-{n}"
        root.mkdir(parents=True)
        server, uri = start_mlflow_server(root, backend=backend)
        try:
            repos = [model_repo(work / f"n{n}", i, lake) for i in range(1, n + 1)]
            log = root / "server.log"
            before = sum(1 for line in log.read_text().splitlines() if REQUEST.search(line))
            started = time.monotonic()
            procs = [
                (
                    subprocess.Popen(
                        [sys.executable, "-m", "promoter", "replay", "push", "release/1.0", "--json"],
                        cwd=repo,
                        env=cli_env(uri),
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                    time.monotonic(),
                )
                for repo in repos
            ]
            runs = []
            for proc, t0 in procs:
                _, err = proc.communicate(timeout=7200)
                runs.append((proc.returncode, time.monotonic() - t0, err))
            wall = time.monotonic() - started
            requests = sum(1 for line in log.read_text().splitlines() if REQUEST.search(line)) - before
            registry = Registry(uri)
            held = True
            for i in range(1, n + 1):
                name = f"bench-{i}-prod"
                versions = registry.client.search_model_versions(f"name = '{name}'")
                store = registry.audit_store()
                records = store.read_all(name)
                moves = [r for r in records if r.kind == "alias_move"]
                ok = audit.verify(records, head=store.head(name)).ok
                held &= len(versions) == 1 and len(moves) == 1 and ok
                held &= registry.get_alias(name, tags.CHAMPION) == 1
            failed = [err[-1500:] for code, _, err in runs if code != 0]
            for err in failed[:2]:
                print(err, file=sys.stderr)
            return {
                "n": n,
                "wall": wall,
                "slowest": max(t for _, t, _ in runs),
                "median": statistics.median(t for _, t, _ in runs),
                "exit": sorted({code for code, _, _ in runs}),
                "requests_per_run": requests / n,
                "lock_waits": sum(1 for _, _, err in runs if "waiting for the" in err or "registry lock" in err),
                "invariant": held and not failed,
            }
        finally:
            stop_mlflow_server(server)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="promote-concurrency-bench-"))
    os.makedirs(work, exist_ok=True)
    lake = generate(work, args.members)
    print(f"{args.members:,} members per model; tracking server on PostgreSQL; {os.cpu_count()} cores", flush=True)
    print(
        "| N | wall s | slowest run s | median run s | exit codes | server requests per run | runs that waited on a lock | one version, one move, chain ok per model |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for n in args.n:
        r = one_n(n, work, lake)
        ok &= r["invariant"]
        print(
            f"| {n} | {r['wall']:.0f} | {r['slowest']:.0f} | {r['median']:.0f} | {r['exit']} | "
            f"{r['requests_per_run']:.0f} | {r['lock_waits']} | {'yes' if r['invariant'] else 'NO'} |",
            flush=True,
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
