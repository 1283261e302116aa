"""`promote report RESULT.json`: the real CLI in a subprocess, against the fake API."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert [markdown.marker("staging", "hrob-risk-staging") in c["body"] for c in fake_api.comments[7]] == [True]

    fake_api.add_fault("GET", ".", 502, times=-1)
    down = run_promote("report", str(result_file), env={**github_env, "PROMOTE_HTTP_DEADLINE": "2"})
    assert down.returncode == 0, down.stderr  # a report never fails the step
    assert "::warning title=promote report::GitHub report not posted" in down.stdout
    assert "HTTP 502" in down.stdout
    for proc in (done, down):
        assert TOKEN not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "not a run result"),
    ],
)
def test_report_rejects_a_bad_result_file(tmp_path, content, message):
    bad = tmp_path / "result.json"
    bad.write_text(content)
    proc = run_promote("report", str(bad))
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.e2e
def test_a_config_error_in_ci_is_an_annotation_at_its_file_and_line(payload_repo, github_env, tmp_path):
    """Before any run result exists, a bad config still reaches the CI: annotation, outputs, summary."""
    git_repo = payload_repo
    promotion = git_repo / "configs" / "base" / "promotion.yml"
    lines = promotion.read_text().splitlines()
    (index,) = [i for i, line in enumerate(lines) if line.strip().startswith("min_absolute_improvement:")][:1]
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = f"{indent}min_absolute_improvement: high"
    promotion.write_text("\n".join(lines) + "\n")
    env = {
        **github_env,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(Path(__file__).parents[1] / "fixtures" / "github" / "pull_request.opened.json"),
    }
    proc = run_promote("run", "--repo", str(git_repo), cwd=git_repo, env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"configs/base/promotion.yml:{index + 1}:" in proc.stderr and "Traceback" not in proc.stderr
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1, proc.stdout
    assert f"file=configs/base/promotion.yml,line={index + 1},col=" in annotations[0]
    assert "must be a number" in annotations[0]
    outputs = Path(github_env["GITHUB_OUTPUT"]).read_text()
    assert "exit_code=2" in outputs or "verdict=" in outputs
    assert "must be a number" in Path(github_env["GITHUB_STEP_SUMMARY"]).read_text()


@pytest.mark.e2e
def test_an_unreadable_event_in_ci_is_an_annotation(git_repo, github_env, tmp_path):
    bad = tmp_path / "event.json"
    bad.write_text("{oops")
    env = {**github_env, "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(bad)}
    proc = run_promote("plan", cwd=git_repo, env=env)
    assert proc.returncode == 2, proc.stderr
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1 and "event.json" in annotations[0], proc.stdout
