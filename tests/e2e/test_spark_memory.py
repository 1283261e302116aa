"""A run that exhausts Spark's memory says so in one line naming the step and the setting, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import git, run_promote
from tests.e2e.helpers import make_model_repo, write_yaml

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def test_a_tiny_driver_heap_is_one_line_naming_the_step_and_the_setting(tmp_path: Path):
    repo = make_model_repo(tmp_path, members=1500, built=False)  # the features step builds, in 128 MiB
    project = repo / "configs" / "dev" / "project.yml"
    data = (yaml.safe_load(project.read_text()) or {}) if project.exists() else {}
    # 128 MiB of heap for 538 features; spark.testing.memory lets Spark start with so little
    data["spark"] = {"config": {"spark.driver.memory": "128m", "spark.testing.memory": 536870912}}
    write_yaml(project, data)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a tiny heap")
    proc = run_promote(
        "run",
        "--event",
        "push",
        "--branch",
        "feature/tiny",
        cwd=repo,
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{repo / '.promote' / 'mlflow.db'}"},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    line = errors[0]
    assert line.startswith("error: step ") and "Spark ran out of memory" in line, line
    assert "spark.driver.memory=128m" in line and "raise spark.driver.memory" in line, line
    assert "Traceback" not in proc.stderr and "unexpected" not in line
