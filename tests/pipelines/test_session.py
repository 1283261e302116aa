"""The Spark session comes from config alone: master, app name and settings of the environment.

Under ``local[...]`` the driver heap is sized to the machine unless config sets it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import session
from promoter import config
from promoter.config import ConfigError, SparkSettings
from tests.conftest import CONFIGS, ROOT

GiB = 1024**3

PROBE = """
import sys
from promoter import config
from pipelines import session
s = config.load(sys.argv[1], "dev")
spark = session.from_settings(s.project.spark)
sc = spark.sparkContext
print(sc.master, sc.appName, spark.conf.get("spark.sql.shuffle.partitions"))
spark.stop()
"""

MEMORY_PROBE = """
import json, sys
from promoter import config
from pipelines import session
s = config.load(sys.argv[1], "dev")
spark = session.from_settings(s.project.spark)
jvm = spark.sparkContext._jvm
print(json.dumps({"max_heap": jvm.java.lang.Runtime.getRuntime().maxMemory(),
                  "conf": spark.conf.get("spark.driver.memory", None),
                  "describe": session.describe(s.project.spark)}))
spark.stop()
"""


def _configs(tmp_path: Path, dev_project: str) -> Path:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "dev" / "project.yml").write_text(dev_project)
    return configs


def _clean_env() -> dict[str, str]:
    """This process's environment without the Spark settings that would override config."""
    drop = {"PYSPARK_SUBMIT_ARGS", "SPARK_DRIVER_MEMORY", "SPARK_MEM", "SPARK_CONF_DIR", "SPARK_HOME"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.mark.spark
def test_the_session_is_built_from_the_environments_spark_settings(tmp_path: Path):
    configs = _configs(
        tmp_path,
        "spark:\n  master: local[1]\n  app_name: promote-dev-probe\n  config:\n    spark.sql.shuffle.partitions: 3\n",
    )
    # a fresh process: a session built earlier in this one would be returned as it is
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(configs)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["local[1]", "promote-dev-probe", "3"]


@pytest.mark.spark
@pytest.mark.parametrize("explicit", [False, True], ids=["machine-sized-default", "explicit-config-wins"])
def test_the_driver_heap_reaches_the_jvm(tmp_path: Path, explicit: bool):
    # spark.driver.memory only counts when the JVM starts: a fresh process, and the JVM's own -Xmx
    extra = "  config:\n    spark.driver.memory: 768m\n" if explicit else ""
    configs = _configs(tmp_path, f"spark:\n  master: local[1]\n  driver_memory_fraction: 0.25\n{extra}")
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(configs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])

    total = session.machine_memory()
    assert total is not None and total > 2 * GiB, "this machine's memory could not be read from /proc/meminfo"
    expected = "768m" if explicit else session.default_driver_memory(total, 0.25)
    assert probe["conf"] == expected
    expected_bytes = int(expected[:-1]) * (GiB if expected.endswith("g") else 1024**2)
    # the JVM reports -Xmx less at most a survivor space
    assert 0.85 * expected_bytes <= probe["max_heap"] <= expected_bytes, probe
    if explicit:
        assert probe["describe"] == "local[1], driver memory 768m (spark.driver.memory in config)"
    else:
        assert probe["describe"].startswith(f"local[1], driver memory {expected} (")


def test_the_machine_share_is_whole_gibibytes_at_least_1g_and_leaves_2_gib_for_python():
    assert session.default_driver_memory(24 * GiB, 0.5) == "12g"
    assert session.default_driver_memory(int(23.5 * GiB), 0.5) == "11g"  # rounded down
    assert session.default_driver_memory(64 * GiB, 0.25) == "16g"
    assert session.default_driver_memory(8 * GiB, 0.9) == "6g"  # 8 GiB less 2 for Python
    assert session.default_driver_memory(int(3.5 * GiB), 0.5) == "1536m"  # 3.5 GiB less 2
    assert session.default_driver_memory(2 * GiB, 0.5) == "1g"  # never below 1g
    assert session.default_driver_memory(1 * GiB, 0.05) == "1g"


def test_only_a_local_master_without_explicit_memory_gets_the_machine_sized_default(monkeypatch):
    for name in ("PYSPARK_SUBMIT_ARGS", "SPARK_DRIVER_MEMORY", "SPARK_MEM", "SPARK_CONF_DIR", "SPARK_HOME"):
        monkeypatch.delenv(name, raising=False)
    total = session.machine_memory()
    assert total is not None and total > 0

    local = SparkSettings(master="local[*]", driver_memory_fraction=0.5)
    chosen = session.default_driver_memory(total, 0.5)
    assert session.session_config(local)["spark.driver.memory"] == chosen
    assert session.describe(local).startswith(f"local[*], driver memory {chosen} (")

    explicit = SparkSettings(master="local[2]", config={"spark.driver.memory": "8g"})
    assert session.session_config(explicit)["spark.driver.memory"] == "8g"
    assert session.describe(explicit) == "local[2], driver memory 8g (spark.driver.memory in config)"

    for master in ("spark://127.0.0.1:7077", "yarn", "k8s://https://k8s:6443", "sc://localhost:15002"):
        remote = SparkSettings(master=master)
        assert "spark.driver.memory" not in session.session_config(remote), master
    assert session.describe(SparkSettings(master="yarn")) == "yarn, driver memory 1g (Spark's default)"
    assert (
        session.describe(SparkSettings(master="sc://h:15002"))
        == "sc://h:15002, driver memory set on the Spark Connect server"
    )

    # Spark's own environment is explicit too: nothing invented over it
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "6g")
    assert "spark.driver.memory" not in session.session_config(local)
    assert session.describe(local) == "local[*], driver memory 6g (from SPARK_DRIVER_MEMORY)"


def test_the_base_config_ships_the_fraction_and_bad_values_are_config_errors(tmp_path: Path):
    assert config.load(CONFIGS, "dev", environ={}).project.spark.driver_memory_fraction == 0.5
    for i, (bad, needle) in enumerate(
        (
            ("driver_memory_fraction: 0.95", "driver_memory_fraction"),
            ("driver_memory_fraction: 0.01", "driver_memory_fraction"),
            ("config:\n    spark.driver.memory: 8 GB", "not a JVM size"),
        )
    ):
        configs = _configs(tmp_path / str(i), f"spark:\n  {bad}\n")
        with pytest.raises(ConfigError) as info:
            config.load(configs, "dev", environ={})
        assert needle in str(info.value) and "dev/project.yml" in str(info.value), str(info.value)
