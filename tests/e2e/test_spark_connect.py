"""The whole release over Spark Connect (``sc://``, the protocol of Databricks Connect and
serverless compute): contracts, features, train, gate, promote, score, then a scheduled day's
scoring and monitoring, with ``spark.master: sc://127.0.0.1:<port>`` in project.yml only.

The server is pyspark's own ``sbin/start-connect-server.sh``, bound to 127.0.0.1, its logs and
pid file in the test's folder, stopped afterwards. ``make test-connect`` installs the client's
extra packages (``pyspark[connect]``) and runs this tier.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import git
from tests.e2e.conftest import free_port
from tests.e2e.helpers import cli_env, make_model_repo

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.connect]

MODEL = "hrob-risk-prod"


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@pytest.fixture
def connect_server(tmp_path: Path):
    """A Spark Connect server on 127.0.0.1; yields its ``sc://`` URL."""
    port = free_port()
    home = _spark_home()
    run = tmp_path / "connect-server"
    run.mkdir()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOG_DIR": str(run / "logs"),
        "SPARK_PID_DIR": str(run),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    args = [
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.driver.memory=6g",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.session.timeZone=UTC",
    ]
    subprocess.run(["bash", str(home / "sbin" / "start-connect-server.sh"), *args], env=env, check=True, timeout=120)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    logs = "\n".join(p.read_text()[-3000:] for p in (run / "logs").glob("*"))
                    raise TimeoutError(f"Spark Connect did not listen on {port}:\n{logs}") from None
                time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(home / "sbin" / "stop-connect-server.sh")], env=env, timeout=120)


@pytest.mark.xfail(
    strict=True,
    reason="train: mlflow.spark.log_model saves a pyspark.ml model to a DFS temp folder and copies it "
    "through the JVM's Hadoop FileSystem (SparkContext._jvm), which a Spark Connect client does not "
    "have (AttributeError: 'NoneType' object has no attribute 'jvm'); contracts and features run over sc://",
)
def test_a_release_and_a_monitored_day_over_spark_connect(connect_server: str, tmp_path: Path):
    repo = make_model_repo(tmp_path, members=1500, built=False)
    p = repo / "configs" / "base" / "project.yml"
    data = yaml.safe_load(p.read_text())
    data["spark"]["master"] = connect_server
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    git(repo, "commit", "-qam", "Spark Connect")
    git(repo, "branch", "release/1.0")
    uri = f"sqlite:///{repo / '.promote' / 'mlflow.db'}"
    env = cli_env(uri)

    timings = {}
    for name, args in [
        ("release", ["replay", "push", "release/1.0", "--json"]),
        ("monitor", ["monitor", "--env", "prod", "--json"]),
    ]:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "promoter", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=1500
        )
        timings[name] = time.monotonic() - started
        assert proc.returncode == 0, f"{name}:\n{proc.stderr[-5000:]}"
        result = json.loads(proc.stdout)
        ran = [s["name"] for s in result["steps"] if s["status"] != "not run"]
        print(f"{name}: " + ", ".join(f"{s['name']} {s.get('seconds') or 0:.1f}s" for s in result["steps"]))
        if name == "release":
            assert ran == ["contracts", "features", "train", "gate", "approval", "promote", "score", "report"], ran
        else:
            assert "surveillance" in ran, ran

    registry = Registry(uri)
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1
    store = registry.audit_store()
    records = store.read_all(MODEL)
    assert audit.verify(records, head=store.head(MODEL)).ok
    assert [r.kind for r in records if r.kind in ("gate", "alias_move", "scoring", "surveillance")][:3] == [
        "gate",
        "alias_move",
        "scoring",
    ]
    print("spark connect: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
