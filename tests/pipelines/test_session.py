"""The Spark session comes from config alone: master, app name and settings of the environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT

pytestmark = pytest.mark.spark

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


def test_the_session_is_built_from_the_environments_spark_settings(tmp_path: Path):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "dev" / "project.yml").write_text(
        "spark:\n  master: local[1]\n  app_name: promote-dev-probe\n  config:\n    spark.sql.shuffle.partitions: 3\n")
    # a fresh process: a session built earlier in this one would be returned as it is
    done = subprocess.run([sys.executable, "-c", PROBE, str(configs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["local[1]", "promote-dev-probe", "3"]
