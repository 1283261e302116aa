"""A Spark step that fails for memory is explained in one line naming the setting to raise.

The real failures run in a fresh process each: a JVM that ran out of memory or was killed
would break the shared session of this test run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.session import explain_failure
from promoter.config import SparkSettings
from tests.conftest import CONFIGS, ROOT

# Spark refuses a heap under ~450 MB unless spark.testing.memory stands in for the system memory
TINY_HEAP = """spark:
  master: local[2]
  config:
    spark.driver.memory: 128m
    spark.testing.memory: 536870912
    spark.sql.shuffle.partitions: 2
"""

OOM_PROBE = r"""
import json, sys
from pyspark import SparkContext
from pyspark.sql import functions as F
from promoter import config
from pipelines import session

settings = config.load(sys.argv[1], "dev").project.spark
spark = session.from_settings(settings)
out = {"max_heap": spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()}
if sys.argv[2] == "driver":
    # 3M rows of ~130 bytes decoded on the driver: well over a 128 MiB heap. They compress to small
    # task results, so they reach the driver directly (big ones go through the block manager,
    # which under memory pressure fails as TaskResultLost instead)
    job = spark.range(0, 3_000_000, numPartitions=64).select(F.repeat(F.lit("x"), 100).alias("s"), "id")
else:
    # one group of 150k strings of 1 kB per task: the aggregation buffer outgrows the heap
    job = (spark.range(0, 300_000, numPartitions=2).groupBy(F.lit(0).alias("k"))
           .agg(F.collect_list(F.concat(F.lit("x" * 1000), F.col("id").cast("string")))))
try:
    job.collect()
    out["first"] = None
except Exception as exc:
    out["first_type"] = type(exc).__name__
    out["first"] = session.explain_failure(exc, settings)
if sys.argv[2] == "task":
    # a task's OutOfMemoryError makes Spark exit the JVM (code 52); the next step cannot connect
    out["exit_code"] = SparkContext._gateway.proc.wait(timeout=30)
    try:
        spark.range(10).count()
        out["next"] = None
    except Exception as exc:
        out["next_type"] = type(exc).__name__
        out["next"] = session.explain_failure(exc, settings)
print(json.dumps(out))
"""

KILL_PROBE = r"""
import json, os, signal, sys, threading
from pyspark import SparkContext
from promoter import config
from pipelines import session

settings = config.load(sys.argv[1], "dev").project.spark
spark = session.from_settings(settings)
jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
out = {}
threading.Timer(3.0, os.kill, (jvm_pid, signal.SIGKILL)).start()
try:
    # minutes of work: the JVM is killed while the step runs
    # (sum of id % 7 never overflows: an overflow would end the job before the kill under ANSI mode)
    spark.range(0, 10 ** 11, numPartitions=2).selectExpr("sum(id % 7)").collect()
    out["line"] = None
except Exception as exc:
    out["type"] = type(exc).__name__
    out["line"] = session.explain_failure(exc, settings)
out["describe"] = session.describe(settings)
print(json.dumps(out))
"""


def _probe(tmp_path: Path, script: str, dev_project: str, *args: str) -> dict:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "dev" / "project.yml").write_text(dev_project)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYSPARK_SUBMIT_ARGS", "SPARK_DRIVER_MEMORY", "SPARK_MEM", "SPARK_CONF_DIR", "SPARK_HOME"}
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(configs), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.spark
@pytest.mark.timeout(120)
def test_a_driver_out_of_memory_is_one_line_naming_the_heap_and_the_setting(tmp_path: Path):
    out = _probe(tmp_path, OOM_PROBE, TINY_HEAP, "driver")
    assert out["max_heap"] <= 128 * 1024**2
    assert out["first_type"] == "Py4JJavaError"
    assert out["first"] == (
        "Spark ran out of memory (java.lang.OutOfMemoryError: Java heap space) with "
        "spark.driver.memory=128m; raise spark.driver.memory under spark.config in project.yml"
    )


@pytest.mark.spark
@pytest.mark.timeout(120)
def test_a_task_out_of_memory_kills_the_jvm_and_the_next_step_still_says_memory(tmp_path: Path):
    # what users saw: the task OOM ends the JVM, and the next call is a bare ConnectionRefusedError
    out = _probe(tmp_path, OOM_PROBE, TINY_HEAP, "task")
    # the step itself sees the OOM, or its job cancelled by the JVM's shutdown, or no JVM at all
    # (which one is a race); either way the line says memory
    assert out["first"] is not None and out["first"].startswith("Spark ran out of memory ("), out
    assert out["first"].endswith(
        ") with spark.driver.memory=128m; raise spark.driver.memory under spark.config in project.yml"
    ), out
    assert out["exit_code"] == 52
    assert out["next_type"] in {"ConnectionRefusedError", "Py4JNetworkError", "Py4JError"}, out
    assert out["next"] == (
        "Spark ran out of memory (the JVM exited with code 52, Spark's code for "
        "java.lang.OutOfMemoryError) with spark.driver.memory=128m; raise spark.driver.memory "
        "under spark.config in project.yml"
    )
    assert "\n" not in out["first"] + out["next"]


@pytest.mark.spark
@pytest.mark.timeout(120)
def test_a_jvm_killed_mid_step_is_one_line_pointing_at_memory(tmp_path: Path):
    out = _probe(tmp_path, KILL_PROBE, "spark:\n  master: local[2]\n  driver_memory_fraction: 0.25\n")
    line = out["line"]
    assert line is not None, out
    memory = out["describe"].split(", driver memory ", 1)[1]  # e.g. "5g (25% of 23.5 GiB)"
    assert line.startswith("the Spark JVM died (killed by SIGKILL; "), line
    assert line.endswith(
        f") with spark.driver.memory={memory}; the usual cause is memory: raise "
        "spark.driver_memory_fraction (now 0.25) or set spark.driver.memory under spark.config "
        "in project.yml, and see the JVM's last lines on stderr"
    ), line
    assert "\n" not in line


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:  # noqa: BLE001
        return caught


def test_an_out_of_memory_anywhere_in_the_chain_is_recognised():
    explicit = SparkSettings(config={"spark.driver.memory": "2g"})
    inner = RuntimeError(
        "Job aborted: Lost task 0.0 (10.0.0.1 executor driver): "
        "java.lang.OutOfMemoryError: GC overhead limit exceeded\n\tat scala.Array..."
    )
    assert explain_failure(_raised(ValueError("training failed"), inner), explicit) == (
        "Spark ran out of memory (java.lang.OutOfMemoryError: GC overhead limit exceeded) with "
        "spark.driver.memory=2g; raise spark.driver.memory under spark.config in project.yml"
    )
    assert explain_failure(RuntimeError("Java heap space"), explicit).startswith(
        "Spark ran out of memory (java.lang.OutOfMemoryError: Java heap space) with spark.driver.memory=2g;"
    )

    # on a cluster a task's heap is the executor's
    remote = SparkSettings(master="spark://10.0.0.1:7077")
    assert explain_failure(
        RuntimeError(
            "Lost task 3.0 in stage 2.0 (TID 9) (10.0.0.7 executor 1): java.lang.OutOfMemoryError: Java heap space"
        ),
        remote,
    ) == (
        "Spark ran out of memory (java.lang.OutOfMemoryError: Java heap space) on executor 1; "
        "raise spark.executor.memory under spark.config in project.yml"
    )


def test_anything_else_is_not_explained():
    settings = SparkSettings()
    assert explain_failure(ValueError("column 'age' not found"), settings) is None
    assert explain_failure(KeyError("java"), settings) is None
    # a refused connection that py4j did not raise (an MLflow server, say) is not the JVM
    assert explain_failure(_raised(ConnectionRefusedError(111, "Connection refused")), settings) is None
