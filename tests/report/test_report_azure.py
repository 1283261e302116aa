"""Azure DevOps sink against a real HTTP server on 127.0.0.1 standing in for the REST API."""

from __future__ import annotations

import io
import re
from pathlib import Path

from promoter.report import markdown
from promoter.report.sinks import publish

AZ_TOKEN = "azdo-acc3ss-t0ken-9876543210"


def _commands(log: str, name: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith(f"##vso[{name}")]


def test_first_run_creates_the_thread_and_the_second_updates_it(fake_api, azure_env, result_factory, capfd):
    fake_api.threads[7] = [
        {
            "id": 50,
            "status": "active",
            "isDeleted": False,
            "comments": [{"id": 1, "content": "reviewer: please add tests"}],
        }
    ]
    stream = io.StringIO()
    assert publish(result_factory(status="FAIL", exit_code=3), azure_env, stream) == []
    ours = [
        t for t in fake_api.threads[7] if markdown.marker("staging", "hrob-risk-staging") in t["comments"][0]["content"]
    ]
    assert len(ours) == 1 and ours[0]["status"] == "active"
    thread_id = ours[0]["id"]

    assert publish(result_factory(status="PASS"), azure_env, stream) == []
    ours = [
        t for t in fake_api.threads[7] if markdown.marker("staging", "hrob-risk-staging") in t["comments"][0]["content"]
    ]
    assert [t["id"] for t in ours] == [thread_id]
    assert "· PASS" in ours[0]["comments"][0]["content"]
    assert ours[0]["status"] == "fixed"  # a passing report resolves its thread
    assert fake_api.threads[7][0]["comments"][0]["content"] == "reviewer: please add tests"
    assert len(fake_api.requests_to("POST", r"/threads$")) == 1

    assert [(s["state"], s["context"]["name"]) for s in fake_api.pr_statuses] == [
        ("failed", "promote-hrob-risk-staging"),
        ("succeeded", "promote-hrob-risk-staging"),
    ]
    # the project name is URL-quoted into the path; the id is preferred when given
    assert all(s.path.startswith("/acme/proj-1/_apis/git/repositories/repo-1/pullRequests/7/") for s in fake_api.seen)
    assert all(s.auth == f"Bearer {AZ_TOKEN}" for s in fake_api.seen)
    out, err = capfd.readouterr()
    assert AZ_TOKEN not in out + err + stream.getvalue()


def test_logging_commands(fake_api, azure_env, result_factory):
    stream = io.StringIO()
    publish(result_factory("prod", kind="push", status="FAIL", exit_code=3), azure_env, stream)
    log = stream.getvalue()
    setvars = dict(
        re.match(r"##vso\[task\.setvariable variable=(\w+);isoutput=true\](.*)", line).groups()
        for line in _commands(log, "task.setvariable")
    )
    assert setvars["environment"] == "prod" and setvars["verdict"] == "FAIL"
    assert setvars["candidate_version"] == "3" and setvars["champion_version"] == "2"
    assert setvars["decision_id"] == "dec-0001"
    issues = _commands(log, "task.logissue")
    assert any(
        line.startswith("##vso[task.logissue type=error;]promote gate (prod): FAIL: improvement.roc_auc")
        for line in issues
    )
    (upload,) = _commands(log, "task.uploadsummary")
    path = Path(upload.split("]", 1)[1])
    assert path.is_file() and "| roc_auc | 0.8100 | 0.7900 | +0.0200 |" in path.read_text()
    (complete,) = _commands(log, "task.complete")
    assert complete.startswith("##vso[task.complete result=Failed;]prod: FAIL")
    assert log.rstrip().splitlines()[-1] == complete  # the last word of the step
    assert fake_api.seen == []  # a push has no PR thread


def test_config_error_points_at_file_and_line(azure_env, result_factory, fake_api):
    stream = io.StringIO()
    error = {
        "message": "unknown key; did you mean 'floors'?",
        "file": "configs/prod/promotion.yml",
        "line": 3,
        "column": 7,
    }
    publish(result_factory("prod", kind="push", status=None, exit_code=2, error=error), azure_env, stream)
    (issue,) = _commands(stream.getvalue(), "task.logissue")
    assert issue == (
        "##vso[task.logissue type=error;sourcepath=configs/prod/promotion.yml;linenumber=3;"
        "columnnumber=7;]unknown key; did you mean 'floors'?"
    )


def test_502_storm_is_a_warning_and_the_step_still_reports_its_own_result(fake_api, azure_env, result_factory, capfd):
    fake_api.add_fault("GET", r".", 502, times=-1)
    stream = io.StringIO()
    result = result_factory()
    warnings = publish(result, azure_env, stream)
    assert len(warnings) == 1 and "Azure DevOps report not posted" in warnings[0] and "502" in warnings[0]
    log = stream.getvalue()
    assert f"##vso[task.logissue type=warning;]{warnings[0]}" in log
    assert "##vso[task.complete result=SucceededWithIssues;]" in log
    assert result["exit_code"] == 0
    assert fake_api.pr_statuses == [] and fake_api.requests_to("POST", ".") == []
    out, err = capfd.readouterr()
    assert AZ_TOKEN not in out + err + log


def test_429_is_retried(fake_api, azure_env, result_factory):
    fake_api.add_fault("POST", r"/threads$", 429, {"Retry-After": "1"})
    assert publish(result_factory(), azure_env, io.StringIO()) == []
    assert [s.status for s in fake_api.requests_to("POST", r"/threads$")] == [429, 200]
    assert len(fake_api.threads[7]) == 1


def test_without_access_token_or_from_a_fork_nothing_is_posted(fake_api, azure_env, result_factory):
    no_token = {k: v for k, v in azure_env.items() if k != "SYSTEM_ACCESSTOKEN"}
    (w,) = publish(result_factory(), no_token, io.StringIO())
    assert "SYSTEM_ACCESSTOKEN is not set" in w and "$(System.AccessToken)" in w
    (w,) = publish(result_factory(), {**azure_env, "SYSTEM_PULLREQUEST_ISFORK": "True"}, io.StringIO())
    assert "fork" in w
    (w,) = publish(result_factory(), {**azure_env, "BUILD_REPOSITORY_PROVIDER": "GitHub"}, io.StringIO())
    assert "GitHub" in w
    assert fake_api.seen == []
