"""A whole prod release of the shipped configs, at real sizes, through the real CLI.

For each size: a fresh git repository with this project's ``configs/`` exactly as shipped (no
edits), ``promote data generate --members N``, a branch ``release/1.0``, and ``promote run --event
push --branch release/1.0 --json`` in its own process (the first prod release: contracts,
features, train, gate, approval, promote, score, report). Prints seconds per step, the exit
code, and the peak memory of the ``promote`` process tree (the Python driver and the Spark JVM
it starts), sampled from /proc every 0.5 s.

Run by hand (not part of the tests)::

    .venv/bin/python bench/release.py                       # 20,000 and 100,000 members
    .venv/bin/python bench/release.py --members 100000 --workdir /tmp/release-bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree_rss(pid: int) -> tuple[int, int]:
    """(python driver RSS, JVM RSS) in bytes of ``pid`` and its descendants."""
    py = jvm = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        ppid, me = int(fields.get("PPid", "0").strip() or 0), int(status.parent.name)
        if me != pid and not _descends(me, pid, ppid):
            continue
        rss = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        if "java" in fields.get("Name", ""):
            jvm += rss
        else:
            py += rss
    return py, jvm


def _descends(me: int, root: int, ppid: int) -> bool:
    seen = 0
    while ppid > 1 and seen < 20:
        if ppid == root:
            return True
        try:
            stat = Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        ppid, seen = int(stat[1]), seen + 1
    return False


def promote(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "TF_BUILD", "GITLAB_", "CI_"))}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "promoter", *args],
        cwd=repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            py, jvm = _tree_rss(proc.pid)
            peak[0], peak[1] = max(peak[0], py), max(peak[1], jvm)
            time.sleep(0.5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    t.join()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done, time.monotonic() - started, peak[0], peak[1]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="promote-release-bench-"))
    rows = []
    for n in args.members:
        repo = work / f"repo-{n}"
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        shutil.copytree(ROOT / "configs", repo / "configs")
        (repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "shipped configs")
        git(repo, "branch", "release/1.0")
        gen, gen_s, _, _ = promote(repo, "data", "generate", "--members", str(n))
        if gen.returncode != 0:
            print(gen.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"{n:,} members generated in {gen_s:.0f}s; releasing ...", flush=True)
        run, run_s, py_peak, jvm_peak = promote(repo, "run", "--event", "push", "--branch", "release/1.0", "--json")
        try:
            result = json.loads(run.stdout)
        except json.JSONDecodeError:
            print(run.stderr[-3000:], file=sys.stderr)
            return 1
        steps = {s["name"]: s for s in result["steps"]}
        memory_line = next((line for line in run.stderr.splitlines() if "starting Spark" in line), "")
        rows.append((n, run.returncode, run_s, steps, py_peak, jvm_peak, memory_line))
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
    names = ["contracts", "features", "train", "gate", "promote", "score"]
    print()
    print(
        f"{'members':>9} {'exit':>4} "
        + " ".join(f"{n + '_s':>11}" for n in names)
        + f" {'total_s':>8} {'driver_MiB':>10} {'jvm_MiB':>8}"
    )
    for n, code, total, steps, py, jvm, _ in rows:
        cells = " ".join(f"{(steps.get(k, {}).get('seconds') or 0):>11.1f}" for k in names)
        print(f"{n:>9,} {code:>4} {cells} {total:>8.1f} {py / 2**20:>10.0f} {jvm / 2**20:>8.0f}")
    for n, *_, memory_line in rows:
        print(f"  {n:,}: {memory_line.strip()}")
    return 0 if all(r[1] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
