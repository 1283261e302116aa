"""`promote data check` through the real CLI: a report in every format, exit 2 on any violation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_promote

pytestmark = pytest.mark.spark


def test_data_check_reports_every_violation_and_exits_2(git_repo: Path, tmp_path: Path):
    env = {"PROMOTE_LAKE_ROOT": str(tmp_path / "lake")}
    gen = run_promote("data", "generate", "--members", "1000", "--seed", "4", cwd=git_repo, env=env)
    assert gen.returncode == 0, gen.stderr[-2000:]

    ok_file = tmp_path / "ok.json"
    ok = run_promote("data", "check", "--format", "json", "--output", str(ok_file), cwd=git_repo, env=env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    report = json.loads(ok_file.read_text())
    assert report["ok"] is True and report["violations"] == [] and set(report["tables"]) == {"members", "claims"}

    # the dev overlay tightens two rules: both are reported, in one run, with observed and limit
    (git_repo / "configs" / "dev" / "contracts.yml").write_text(
        "tables:\n  members:\n    row_count: {min: 5000}\n"
        "    columns:\n      member_id: {type: string, nullable: false, regex: 'X[0-9]{9}'}\n"
    )
    md = tmp_path / "bad.md"
    bad = run_promote(
        "data", "check", "--env", "dev", "--format", "markdown", "--output", str(md), cwd=git_repo, env=env
    )
    assert bad.returncode == 2, bad.stderr[-2000:]
    text = md.read_text()
    assert "row_count_min" in text and "5000" in text
    assert "regex" in text and "member_id" in text
    assert "Traceback" not in bad.stderr
