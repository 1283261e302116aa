"""A tracking server that dies: the run fails fast and clearly, the registry stays consistent, the
re-run completes (invariant 5), and nothing waits on a dead run's locks.

Real parts only: a real `mlflow server` process on 127.0.0.1 (SQLite backend) killed with SIGKILL
at a step boundary and restarted on the same store and port, the real CLI in a subprocess.
``make test`` runs two fault points (during train, right after the alias move) and the closed
port; ``make test-faults`` runs every step boundary and the SIGKILL of `promote` itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import git
from tests.e2e.conftest import start_mlflow_server, stop_mlflow_server
from tests.e2e.helpers import cli_env, make_model_repo

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

MODEL = "hrob-risk-prod"
DEADLINE = 20  # registry.deadline_seconds in these repos: a dead server fails a call in <= 20 s
EXIT_BOUND = 300  # a run that has not exited this long after the kill is hung (the old behaviour)


def _repo(tmp_path: Path) -> Path:
    repo = make_model_repo(tmp_path, members=1500)
    p = repo / "configs" / "base" / "project.yml"
    data = yaml.safe_load(p.read_text())
    data.setdefault("registry", {}).update(deadline_seconds=DEADLINE, request_timeout_seconds=5)
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    git(repo, "commit", "-qam", "a short tracking deadline")
    git(repo, "branch", "release/1.0")
    return repo


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_run_against_an_unreachable_server_exits_1_with_one_line(tmp_path: Path):
    repo = _repo(tmp_path)
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "promoter", "replay", "push", "release/1.0"],
        cwd=repo,
        env=cli_env(uri),
        capture_output=True,
        text=True,
        timeout=DEADLINE + EXIT_BOUND,
    )
    took = time.monotonic() - started
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith(f"error: tracking server unreachable at {uri} after ")
    assert "nothing was run; re-run the event" in errors[0]
    assert not (repo / ".promote" / "mlflow.db").exists()  # nothing local was made instead
    print(f"closed port: exit {proc.returncode} after {took:.1f}s (deadline {DEADLINE}s)")


@dataclass
class Watched:
    """A `promote` process whose progress lines are read as they come."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    step: str | None = None
    done: list[str] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)
    trigger: tuple[str, str] | None = None  # (step, "start" | "done")
    readers: list[threading.Thread] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)

    def drain(self) -> None:
        self.stdout.append(self.proc.stdout.read())

    def finish(self, timeout: float) -> str:
        """Wait for the process; its stdout (the JSON result). Every stderr line is in ``lines``."""
        self.proc.wait(timeout=timeout)
        for t in self.readers:
            t.join(timeout=30)
        return "".join(self.stdout)

    def read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            text = line.strip()
            if text.startswith("[") and "] " in text and ":" in text:
                self.step = text.split("] ", 1)[1].split(":", 1)[0]
                if self.trigger == (self.step, "start"):
                    self.event.set()
            elif self.step and text.split(" ", 1)[0] in ("done", "skipped", "passed"):
                self.done.append(self.step)
                if self.trigger == (self.step, "done"):
                    self.event.set()


def _release(repo: Path, uri: str, trigger: tuple[str, str] | None = None) -> Watched:
    proc = subprocess.Popen(
        [sys.executable, "-m", "promoter", "replay", "push", "release/1.0", "--json"],
        cwd=repo,
        env=cli_env(uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    w = Watched(proc, trigger=trigger)
    w.readers = [threading.Thread(target=f, daemon=True) for f in (w.read, w.drain)]
    for t in w.readers:  # both pipes drained as they fill: a full pipe never stalls the process
        t.start()
    return w


def _predictions_writes(repo: Path, day: str) -> int:
    """Commits of the predictions table that wrote the day's partition."""
    from deltalake import DeltaTable

    from promoter import config

    scoring = config.load(repo / "configs", "prod", environ={}).project.scoring
    path = repo / ".promote" / "lake" / "hrob-risk" / scoring.predictions_table
    return sum(1 for h in DeltaTable(str(path)).history() if h.get("promote.score_date") == day)


FAULT_POINTS = [
    pytest.param(("train", "start"), id="during-train"),
    pytest.param(("promote", "done"), id="after-alias-move"),
]
MORE_FAULT_POINTS = [
    pytest.param(("contracts", "done"), id="after-contracts", marks=pytest.mark.faults),
    pytest.param(("features", "done"), id="after-features", marks=pytest.mark.faults),
    pytest.param(("train", "done"), id="after-train-register", marks=pytest.mark.faults),
    pytest.param(("gate", "done"), id="after-gate-record", marks=pytest.mark.faults),
    pytest.param(("score", "done"), id="after-scoring", marks=pytest.mark.faults),
]


@pytest.mark.parametrize("point", FAULT_POINTS + MORE_FAULT_POINTS)
def test_server_killed_at_a_step_boundary_then_the_rerun_completes(tmp_path: Path, point: tuple[str, str]):
    root = tmp_path / "server"
    root.mkdir()
    server, uri = start_mlflow_server(root)
    port = int(uri.rsplit(":", 1)[1])
    repo = _repo(tmp_path)
    try:
        first = _release(repo, uri, trigger=point)
        assert first.event.wait(900), "\n".join(first.lines[-40:])
        stop_mlflow_server(server, signal.SIGKILL)
        killed = time.monotonic()
        try:
            first.proc.wait(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            os.killpg(first.proc.pid, signal.SIGKILL)
            pytest.fail(f"promote still running {EXIT_BOUND}s after the server died:\n" + "\n".join(first.lines[-40:]))
        to_exit = time.monotonic() - killed
        text = "\n".join(first.lines)
        errors = [line for line in first.lines if line.startswith("error:")]
        if point == ("score", "done") and first.proc.returncode == 0:
            assert not errors, text[-4000:]  # only the report was left, and it needs no server here
        else:
            assert first.proc.returncode == 1, text[-4000:]
            assert len(errors) == 1 and "tracking server unreachable at " in errors[0], text[-4000:]
            assert "re-run the event" in errors[0]

        server, uri = start_mlflow_server(root, port=port)
        again = _release(repo, uri)
        out = again.finish(timeout=1800)
        assert again.proc.returncode == 0, "\n".join(again.lines[-60:])
        assert json.loads(out)["exit_code"] == 0
        registry = Registry(uri)
        versions = registry.client.search_model_versions(f"name = '{MODEL}'")
        store = registry.audit_store()
        records = store.read_all(MODEL)
        moves = [r for r in records if r.kind == "alias_move"]
        gates = [r for r in records if r.kind == "gate"]
        assert len(versions) == 1, [v.version for v in versions]
        assert registry.get_alias(MODEL, tags.CHAMPION) == 1
        assert len(moves) == 1 and len({g.verdict for g in gates}) == 1
        assert audit.verify(records, head=store.head(MODEL)).ok
        assert registry.lock_holder(f"run.{MODEL}") is None and registry.lock_holder(MODEL) is None
        day = datetime.now(UTC).date().isoformat()
        assert _predictions_writes(repo, day) == 1
        print(
            f"{point[0]} {point[1]}: first run exit {first.proc.returncode} {to_exit:.1f}s after the kill; "
            f"re-run exit 0, versions {len(versions)}, alias moves {len(moves)}, chain ok"
        )
    finally:
        stop_mlflow_server(server)


@pytest.mark.faults
@pytest.mark.parametrize("point", [("train", "start"), ("promote", "done")], ids=["during-train", "after-alias-move"])
def test_promote_sigkilled_then_the_rerun_takes_over_its_locks(tmp_path: Path, point: tuple[str, str]):
    root = tmp_path / "server"
    root.mkdir()
    server, uri = start_mlflow_server(root)
    repo = _repo(tmp_path)
    try:
        first = _release(repo, uri, trigger=point)
        assert first.event.wait(900), "\n".join(first.lines[-40:])
        os.killpg(first.proc.pid, signal.SIGKILL)  # no finally runs: its locks stay behind
        first.proc.wait(timeout=60)
        registry = Registry(uri)
        assert registry.lock_holder(f"run.{MODEL}") is not None  # held by the dead run
        started = time.monotonic()
        again = _release(repo, uri)
        again.finish(timeout=1800)
        took = time.monotonic() - started
        assert again.proc.returncode == 0, "\n".join(again.lines[-60:])
        text = "\n".join(again.lines)
        assert f"broke the {MODEL} run lock of a dead run (" in text and "its process is gone" in text, text[-3000:]
        versions = registry.client.search_model_versions(f"name = '{MODEL}'")
        store = registry.audit_store()
        records = store.read_all(MODEL)
        assert len(versions) == 1 and len([r for r in records if r.kind == "alias_move"]) == 1
        assert audit.verify(records, head=store.head(MODEL)).ok
        print(f"promote SIGKILLed {point[0]} {point[1]}: re-run exit 0 in {took:.1f}s, lock of the dead run broken")
    finally:
        stop_mlflow_server(server)
