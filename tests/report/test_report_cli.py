"""`promote report RESULT.json`: the real CLI in a subprocess, against the fake API."""

from __future__ import annotations

import json

import pytest

from promoter.report import markdown
from tests.conftest import run_promote

TOKEN = "ghs_s3cr3tT0kenValue0123456789"


@pytest.mark.e2e
def test_report_posts_and_survives_an_api_outage(fake_api, github_env, result_factory, tmp_path):
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(result_factory(status="FAIL", exit_code=3)))
    done = run_promote("report", str(result_file), env=github_env)
    assert done.returncode == 0, done.stderr
    assert "::error title=promote gate (staging)%3A FAIL::improvement.roc_auc" in done.stdout
    assert [markdown.marker("staging") in c["body"] for c in fake_api.comments[7]] == [True]

    fake_api.add_fault("GET", ".", 502, times=-1)
    down = run_promote("report", str(result_file), env={**github_env, "PROMOTE_HTTP_DEADLINE": "2"})
    assert down.returncode == 0, down.stderr        # a report never fails the step
    assert "::warning title=promote report::GitHub report not posted" in down.stdout
    assert "HTTP 502" in down.stdout
    for proc in (done, down):
        assert TOKEN not in proc.stdout + proc.stderr


@pytest.mark.parametrize("content,message", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "not a run result"),
])
def test_report_rejects_a_bad_result_file(tmp_path, content, message):
    bad = tmp_path / "result.json"
    bad.write_text(content)
    proc = run_promote("report", str(bad))
    assert proc.returncode == 2 and message in proc.stderr
