"""GitHub sink against a real HTTP server on 127.0.0.1 standing in for the REST API."""

from __future__ import annotations

import io
import json
import time

from promoter.report import markdown
from promoter.report.sinks import publish

TOKEN = "ghs_s3cr3tT0kenValue0123456789"


def _no_token_anywhere(capfd, *texts: str) -> None:
    out, err = capfd.readouterr()
    for text in (out, err, *texts):
        assert TOKEN not in text


def test_first_run_creates_the_sticky_comment_and_the_second_updates_it(fake_api, github_env, result_factory, capfd):
    # Humans commented first: the marker comment lands on page 2 (page size 2), found by pagination.
    fake_api.comments[7] = [
        {"id": 1, "body": "looks good"},
        {"id": 2, "body": "nit: rename"},
        {"id": 3, "body": "ship it"},
    ]
    stream = io.StringIO()
    first = publish(result_factory(status="FAIL", exit_code=3), github_env, stream)
    assert first == []
    ours = [c for c in fake_api.comments[7] if markdown.marker("staging", "hrob-risk-staging") in c["body"]]
    assert len(ours) == 1 and "FAIL" in ours[0]["body"]
    comment_id = ours[0]["id"]

    second = publish(result_factory(status="PASS", exit_code=0), github_env, stream)
    assert second == []
    ours = [c for c in fake_api.comments[7] if markdown.marker("staging", "hrob-risk-staging") in c["body"]]
    assert [c["id"] for c in ours] == [comment_id]  # updated in place, not a new comment
    assert "PASS" in ours[0]["body"] and "FAIL" not in ours[0]["body"].split("###")[0]
    assert [c["body"] for c in fake_api.comments[7][:3]] == ["looks good", "nit: rename", "ship it"]
    assert len(fake_api.requests_to("PATCH", r"/issues/comments/")) == 1
    # the second run read page 2 to find it
    assert any(s.query.get("page") == ["2"] for s in fake_api.requests_to("GET", r"/issues/7/comments"))

    # one commit status per run, on the PR head, named for the environment
    assert [s["state"] for s in fake_api.statuses] == ["failure", "success"]
    assert {s["sha"] for s in fake_api.statuses} == {"b" * 40}
    assert {s["context"] for s in fake_api.statuses} == {"promote/hrob-risk-staging"}
    assert all(s.auth == f"Bearer {TOKEN}" for s in fake_api.seen)
    _no_token_anywhere(capfd, stream.getvalue())


def test_each_environment_keeps_its_own_comment(fake_api, github_env, result_factory):
    publish(result_factory("staging"), github_env, io.StringIO())
    publish(result_factory("prod"), github_env, io.StringIO())
    publish(result_factory("staging", status="FAIL", exit_code=3), github_env, io.StringIO())
    bodies = [c["body"] for c in fake_api.comments[7]]
    assert len(bodies) == 2
    assert sum(markdown.marker("staging", "hrob-risk-staging") in b for b in bodies) == 1
    assert sum(markdown.marker("prod", "hrob-risk-prod") in b for b in bodies) == 1


def test_step_summary_outputs_and_annotations(fake_api, github_env, result_factory, tmp_path):
    error = {
        "message": "gate.prod.min_absolute_improvement: must be a number, got 'high'",
        "file": "configs/base/promotion.yml",
        "line": 14,
        "column": 5,
    }
    stream = io.StringIO()
    result = result_factory(
        "prod", kind="push", status=None, exit_code=2, error=error, candidate=None, champion=None, decision_id=None
    )
    publish(result, github_env, stream)
    log = stream.getvalue()
    assert (
        "::error file=configs/base/promotion.yml,line=14,col=5,title=promote::"
        "gate.prod.min_absolute_improvement%3A must be a number" not in log
    )  # data part is not prop-escaped
    assert (
        "::error file=configs/base/promotion.yml,line=14,col=5,title=promote::gate.prod.min_absolute_improvement: "
        "must be a number, got 'high'" in log
    )
    summary = open(github_env["GITHUB_STEP_SUMMARY"]).read()
    assert "`configs/base/promotion.yml:14:5`" in summary
    outputs = dict(line.split("=", 1) for line in open(github_env["GITHUB_OUTPUT"]).read().splitlines())
    assert outputs["environment"] == "prod"
    assert outputs["verdict"] == "" and outputs["candidate_version"] == "" and outputs["exit_code"] == "2"
    # a push gets a commit status on its sha, no comment
    assert fake_api.comments == {}
    assert [(s["sha"], s["state"]) for s in fake_api.statuses] == [("a" * 40, "error")]


def test_outputs_for_a_passing_release(github_env, result_factory, fake_api):
    publish(result_factory("prod", kind="push"), github_env, io.StringIO())
    outputs = dict(line.split("=", 1) for line in open(github_env["GITHUB_OUTPUT"]).read().splitlines())
    assert {
        k: outputs[k]
        for k in ("environment", "verdict", "candidate_version", "champion_version", "decision_id", "champion_moved")
    } == {
        "environment": "prod",
        "verdict": "PASS",
        "candidate_version": "3",
        "champion_version": "2",
        "decision_id": "dec-0001",
        "champion_moved": "true",
    }


def test_429_with_retry_after_is_retried_then_succeeds(fake_api, github_env, result_factory, capfd):
    fake_api.add_fault("POST", r"/issues/7/comments$", 429, {"Retry-After": "1"})
    warnings = publish(result_factory(), github_env, io.StringIO())
    assert warnings == []
    posts = fake_api.requests_to("POST", r"/issues/7/comments$")
    assert [p.status for p in posts] == [429, 201]
    assert posts[1].at - posts[0].at >= 0.9  # it waited as the server asked
    assert len(fake_api.comments[7]) == 1
    _no_token_anywhere(capfd)


def test_rate_limit_reset_header_is_honoured(fake_api, github_env, result_factory):
    reset = str(int(time.time()) + 1)
    fake_api.add_fault("POST", r"/statuses/", 429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
    assert publish(result_factory(), github_env, io.StringIO()) == []
    assert [p.status for p in fake_api.requests_to("POST", r"/statuses/")] == [429, 201]


def test_502_storm_ends_in_a_warning_and_the_exit_code_is_unchanged(fake_api, github_env, result_factory, capfd):
    fake_api.add_fault("GET", r".", 502, times=-1)
    fake_api.add_fault("POST", r".", 502, times=-1)
    result = result_factory(status="FAIL", exit_code=3)
    before = json.dumps(result, sort_keys=True)
    stream = io.StringIO()
    started = time.monotonic()
    warnings = publish(result, github_env, stream)
    elapsed = time.monotonic() - started
    assert len(warnings) == 1 and ("502" in warnings[0] or "gave up" in warnings[0])
    assert "GitHub report not posted" in warnings[0]
    assert f"::warning title=promote report::{warnings[0]}" in stream.getvalue()
    assert json.dumps(result, sort_keys=True) == before  # the result (and its exit code) untouched
    assert result["exit_code"] == 3
    # bounded: several tries, then it stopped (no comment or status call after the failing list)
    tries = fake_api.requests_to("GET", r"/issues/7/comments")
    assert 2 <= len(tries) <= 5
    assert fake_api.requests_to("POST", r".") == []
    assert elapsed < 30  # sanity bound only (PROMOTE_HTTP_DEADLINE=4); not a speed target
    # the local outputs were still written
    assert "verdict=FAIL" in open(github_env["GITHUB_OUTPUT"]).read()
    _no_token_anywhere(capfd, stream.getvalue())


def test_no_token_is_a_warning_and_nothing_is_posted(fake_api, github_env, result_factory):
    env = {k: v for k, v in github_env.items() if k != "GITHUB_TOKEN"}
    warnings = publish(result_factory(), env, io.StringIO())
    assert len(warnings) == 1 and "GITHUB_TOKEN is not set" in warnings[0]
    assert fake_api.seen == []
    assert "promote · staging" in open(env["GITHUB_STEP_SUMMARY"]).read()


def test_fork_pull_request_is_a_warning_and_nothing_is_posted(fake_api, github_env, result_factory, tmp_path):
    payload = {
        "pull_request": {
            "number": 7,
            "head": {"repo": {"full_name": "mallory/hrob", "fork": True}},
            "base": {"repo": {"full_name": "acme/hrob", "fork": False}},
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    warnings = publish(result_factory(), {**github_env, "GITHUB_EVENT_PATH": str(path)}, io.StringIO())
    assert len(warnings) == 1 and "fork" in warnings[0]
    assert fake_api.seen == []


def test_bad_token_is_a_warning(fake_api, github_env, result_factory, capfd):
    env = {**github_env, "GITHUB_TOKEN": "ghs_wrongTokenValue12345"}
    warnings = publish(result_factory(), env, io.StringIO())
    assert len(warnings) == 1 and "HTTP 401" in warnings[0]
    out, err = capfd.readouterr()
    assert "ghs_wrongTokenValue12345" not in out + err + "".join(warnings)


def test_secrets_inside_the_result_are_masked_everywhere(fake_api, github_env, result_factory, capfd):
    leaky = result_factory(
        links={"mlflow": f"https://ci:{TOKEN}@mlflow.example/"},
        error={"message": f"cannot reach tracking server with token {TOKEN}"},
        exit_code=1,
    )
    stream = io.StringIO()
    publish(leaky, github_env, stream)
    posted = json.dumps([c["body"] for c in fake_api.comments[7]])
    assert "***" in posted
    _no_token_anywhere(capfd, stream.getvalue(), posted, open(github_env["GITHUB_STEP_SUMMARY"]).read())


def test_outside_ci_only_the_console_report_is_written(fake_api, result_factory, tmp_path):
    stream = io.StringIO()
    assert publish(result_factory(), {}, stream) == []
    assert stream.getvalue().startswith("report:       staging: PASS")
    assert "::" not in stream.getvalue() and "##vso" not in stream.getvalue()
    assert fake_api.seen == []


def test_each_model_keeps_its_own_comment_and_status(fake_api, github_env, result_factory):
    """Two projects of one repository built by the same pull request: one sticky comment each."""
    publish(result_factory("staging"), github_env, io.StringIO())
    publish(result_factory("staging", registered_model="readmit-30d-staging"), github_env, io.StringIO())
    publish(result_factory("staging", status="FAIL", exit_code=3), github_env, io.StringIO())
    bodies = [c["body"] for c in fake_api.comments[7]]
    assert len(bodies) == 2
    assert sum(markdown.marker("staging", "hrob-risk-staging") in b for b in bodies) == 1
    assert sum(markdown.marker("staging", "readmit-30d-staging") in b for b in bodies) == 1
    assert {s["context"] for s in fake_api.statuses} == {"promote/hrob-risk-staging", "promote/readmit-30d-staging"}
