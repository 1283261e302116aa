"""A tracking server on PostgreSQL, as production runs it: a whole release, and eight `promote run`
processes on one release (exactly one version, one champion move, a verifying chain).

Real parts: a private PostgreSQL cluster on 127.0.0.1 (:mod:`tests.e2e.postgres`), `mlflow server
--backend-store-uri postgresql://...`, the real CLI. ``make test-postgres`` installs PostgreSQL
(Debian package) and psycopg, then runs this tier.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import git
from tests.e2e.conftest import start_mlflow_server, stop_mlflow_server
from tests.e2e.helpers import cli_env, make_model_repo
from tests.e2e.postgres import running_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.postgres]

MODEL = "hrob-risk-prod"


@pytest.fixture
def pg_server(tmp_path: Path):
    """`mlflow server` on a fresh PostgreSQL database; yields its URI."""
    with running_postgres() as backend:
        root = tmp_path / "server"
        root.mkdir()
        proc, uri = start_mlflow_server(root, backend=backend)
        try:
            yield uri
        finally:
            stop_mlflow_server(proc)


def _repo(tmp_path: Path, driver_memory: str | None = None) -> Path:
    repo = make_model_repo(tmp_path, members=1500)
    if driver_memory:
        p = repo / "configs" / "base" / "project.yml"
        data = yaml.safe_load(p.read_text())
        data["spark"].setdefault("config", {})["spark.driver.memory"] = driver_memory
        p.write_text(yaml.safe_dump(data, sort_keys=False))
        git(repo, "commit", "-qam", "eight JVMs on one machine")
    git(repo, "branch", "release/1.0")
    return repo


def _check(uri: str) -> tuple[int, int]:
    registry = Registry(uri)
    versions = registry.client.search_model_versions(f"name = '{MODEL}'")
    store = registry.audit_store()
    records = store.read_all(MODEL)
    moves = [r for r in records if r.kind == "alias_move"]
    assert len(versions) == 1 and registry.get_alias(MODEL, tags.CHAMPION) == 1
    assert len(moves) == 1 and moves[0].candidate_version == 1
    assert audit.verify(records, head=store.head(MODEL)).ok
    assert registry.lock_holder(f"run.{MODEL}") is None and registry.lock_holder(MODEL) is None
    return len(versions), len(moves)


def test_a_whole_release_against_a_postgres_backed_server(pg_server: str, tmp_path: Path):
    repo = _repo(tmp_path)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "promoter", "replay", "push", "release/1.0"],
        cwd=repo,
        env=cli_env(pg_server),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    _check(pg_server)
    print(f"postgres release: {time.monotonic() - started:.1f}s")


def test_eight_runs_of_one_release_move_the_champion_once(pg_server: str, tmp_path: Path):
    repo = _repo(tmp_path, driver_memory="1g")
    cmd = [sys.executable, "-m", "promoter", "replay", "push", "release/1.0", "--json"]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            cmd, cwd=repo, env=cli_env(pg_server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=3600) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * 8, "\n\n".join(err[-2000:] for _, err in outs)
    versions, moves = _check(pg_server)
    print(f"postgres, 8 concurrent runs: {time.monotonic() - started:.1f}s, {versions} version, {moves} move")
