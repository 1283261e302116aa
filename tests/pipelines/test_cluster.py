"""Training on a real Spark standalone cluster (master + worker on 127.0.0.1), not only local[*].

Selected with ``-m cluster`` (``make test-cluster``); excluded from ``make test``. The master
and worker come from the installed pyspark (``spark-class``), listen on 127.0.0.1 only, and
are stopped afterwards, also when the test fails. The driver runs in its own process, so the
session-wide local Spark of the other tests is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.cluster, pytest.mark.spark]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


def _wait_for_alive_workers(
    ui_port: int, procs: list[subprocess.Popen], logs: list[Path], workers: int = 1, timeout: float = 180
) -> dict:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs):
            if proc.poll() is not None:
                raise AssertionError(f"{log.name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as resp:
                last = json.load(resp)
            if sum(w.get("state") == "ALIVE" for w in last.get("workers", [])) >= workers:
                return last
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(
        f"fewer than {workers} ALIVE worker(s) after {timeout}s: {last}\n"
        + "\n".join(log.read_text()[-2000:] for log in logs)
    )


@contextlib.contextmanager
def _cluster(tmp_path: Path, workers: int = 1, cores: int = 2, memory: str = "2g") -> Iterator[dict]:
    """A Spark standalone master and ``workers`` workers on 127.0.0.1; stopped afterwards."""
    home = _spark_home()
    spark_class = home / "bin" / "spark-class"
    port, ui = _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_NO_DAEMONIZE": "1",
    }
    logs = [tmp_path / "master.log"] + [tmp_path / f"worker-{i}.log" for i in range(workers)]
    procs: list[subprocess.Popen] = []
    master = [str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
    try:
        procs.append(
            subprocess.Popen(
                [*master, "--port", str(port), "--webui-port", str(ui)],
                env=env,
                stdout=logs[0].open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        for i in range(workers):
            procs.append(
                subprocess.Popen(
                    [
                        str(spark_class),
                        "org.apache.spark.deploy.worker.Worker",
                        f"spark://127.0.0.1:{port}",
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        str(cores),
                        "--memory",
                        memory,
                        "--webui-port",
                        str(_free_port()),
                        "--work-dir",
                        str(tmp_path / "work" / str(i)),
                    ],
                    env=env,
                    stdout=logs[1 + i].open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        state = _wait_for_alive_workers(ui, procs, logs, workers)
        yield {"url": f"spark://127.0.0.1:{port}", "ui": ui, "state": state, "logs": logs}
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture
def standalone_cluster(tmp_path):
    """A Spark standalone master and one worker (2 cores, 2 GB) on 127.0.0.1; stopped afterwards."""
    with _cluster(tmp_path) as cluster:
        yield cluster


_DRIVER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {root!r})
    from pipelines.session import build_session
    from promoter.app.training import train_and_register
    from promoter.registry import Lineage, Registry
    from tests.pipelines.test_train import FEATURES, tiny_settings, toy_gold

    master, store = sys.argv[1], sys.argv[2]
    spark = build_session(master, "promote-cluster-test", {{
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.executor.memory": "1g", "spark.executor.cores": "2", "spark.cores.max": "2",
        "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
    }})
    started = time.monotonic()
    settings = tiny_settings()

    class Catalog:
        feature_columns = FEATURES
        snapshot_id = "cluster-snapshot"
        def to_dict(self):
            return {{"snapshot_id": self.snapshot_id}}

    gold = toy_gold(spark, members=3000, partitions=4)
    lineage = Lineage(environment="dev", config_hash=settings.config_hash, data_snapshot="cluster-snapshot",
                      commit="c" * 40, tree="d" * 40, branch="feature/cluster", event_kind="push")
    result = train_and_register(spark, settings, lineage, gold, Catalog(), Registry(store))
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
    print("RESULT " + json.dumps({{"master": spark.sparkContext.master, "executors": executors,
                                   "version": result.version, "roc_auc": result.metrics["roc_auc"],
                                   "n": result.metrics["n"], "seconds": time.monotonic() - started}}))
    spark.stop()
""")


def test_training_runs_on_a_standalone_cluster(standalone_cluster, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(root=str(ROOT)))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    proc = subprocess.run(
        [sys.executable, str(script), standalone_cluster["url"], store],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["master"] == standalone_cluster["url"]
    assert result["executors"] >= 1
    assert result["version"] == 1 and result["roc_auc"] > 0.7 and result["n"] > 400
    # the application really ran on the worker: the master lists it as completed or running
    with urllib.request.urlopen(f"http://127.0.0.1:{standalone_cluster['ui']}/json/", timeout=5) as resp:
        state = json.load(resp)
    apps = state.get("completedapps", []) + state.get("activeapps", [])
    assert any(a.get("name") == "promote-cluster-test" for a in apps), state


def test_a_whole_release_and_a_monitored_day_on_two_workers(tmp_path):
    """contracts, features, train, gate, promote, score, then surveillance, with only project.yml's
    ``spark:`` pointing at a standalone master with two workers."""
    import yaml

    from promoter.core import audit, tags
    from promoter.registry import Registry
    from tests.conftest import git
    from tests.e2e.helpers import cli_env, make_model_repo

    (tmp_path / "cluster").mkdir()
    with _cluster(tmp_path / "cluster", workers=2, cores=1, memory="2g") as cluster:
        repo = make_model_repo(tmp_path, members=1500)
        p = repo / "configs" / "base" / "project.yml"
        data = yaml.safe_load(p.read_text())
        data["spark"]["master"] = cluster["url"]
        data["spark"]["app_name"] = "promote-cluster-release"
        data["spark"].setdefault("config", {}).update(
            {
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.driver.memory": "2g",
                "spark.executor.memory": "1g",
                "spark.executor.cores": "1",
                "spark.cores.max": "2",
            }
        )
        p.write_text(yaml.safe_dump(data, sort_keys=False))
        git(repo, "commit", "-qam", "a standalone cluster")
        git(repo, "branch", "release/1.0")
        uri = f"sqlite:///{repo / '.promote' / 'mlflow.db'}"
        timings = {}
        for name, args in [("release", ["replay", "push", "release/1.0"]), ("monitor", ["monitor", "--env", "prod"])]:
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "promoter", *args, "--json"],
                cwd=repo,
                env=cli_env(uri),
                capture_output=True,
                text=True,
                timeout=2400,
            )
            timings[name] = time.monotonic() - started
            assert proc.returncode == 0, f"{name}:\n{proc.stderr[-5000:]}"
            steps = json.loads(proc.stdout)["steps"]
            print(f"{name}: " + ", ".join(f"{s['name']} {s.get('seconds') or 0:.1f}s" for s in steps))
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster['ui']}/json/", timeout=5) as resp:
            state = json.load(resp)
        apps = state.get("completedapps", []) + state.get("activeapps", [])
        assert sum(a.get("name") == "promote-cluster-release" for a in apps) == 2, state  # both commands
        assert sum(w.get("state") == "ALIVE" for w in state.get("workers", [])) == 2
    registry = Registry(uri)
    assert registry.get_alias("hrob-risk-prod", tags.CHAMPION) == 1
    store = registry.audit_store()
    records = store.read_all("hrob-risk-prod")
    assert [r.kind for r in records] == ["gate", "alias_move", "scoring", "surveillance"], [r.kind for r in records]
    assert audit.verify(records, head=store.head("hrob-risk-prod")).ok
    print("standalone cluster, 2 workers: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
