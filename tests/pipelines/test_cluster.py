"""Training on a real Spark standalone cluster (master + worker on 127.0.0.1), not only local[*].

Selected with ``-m cluster`` (``make test-cluster``); excluded from ``make test``. The master
and worker come from the installed pyspark (``spark-class``), listen on 127.0.0.1 only, and
are stopped afterwards, also when the test fails. The driver runs in its own process, so the
session-wide local Spark of the other tests is never touched.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
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


def _wait_for_alive_worker(ui_port: int, procs: list[subprocess.Popen], logs: list[Path], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs):
            if proc.poll() is not None:
                raise AssertionError(f"{log.name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as resp:
                last = json.load(resp)
            if any(w.get("state") == "ALIVE" for w in last.get("workers", [])):
                return last
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(
        f"no ALIVE worker after {timeout}s: {last}\n" + "\n".join(log.read_text()[-2000:] for log in logs)
    )


@pytest.fixture
def standalone_cluster(tmp_path):
    """A Spark standalone master and one worker (2 cores, 2 GB) on 127.0.0.1; stopped afterwards."""
    home = _spark_home()
    spark_class = home / "bin" / "spark-class"
    port, ui, worker_ui = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_NO_DAEMONIZE": "1",
    }
    logs = [tmp_path / "master.log", tmp_path / "worker.log"]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(spark_class),
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--webui-port",
                    str(ui),
                ],
                env=env,
                stdout=logs[0].open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(spark_class),
                    "org.apache.spark.deploy.worker.Worker",
                    f"spark://127.0.0.1:{port}",
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "2",
                    "--memory",
                    "2g",
                    "--webui-port",
                    str(worker_ui),
                    "--work-dir",
                    str(tmp_path / "work"),
                ],
                env=env,
                stdout=logs[1].open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        state = _wait_for_alive_worker(ui, procs, logs)
        yield {"url": f"spark://127.0.0.1:{port}", "ui": ui, "state": state, "logs": logs}
    finally:
        for proc in reversed(procs):
            _stop(proc)


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
