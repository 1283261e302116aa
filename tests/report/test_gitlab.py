"""GitLab sink against a real HTTP server on 127.0.0.1 standing in for the REST API (API v4)."""

from __future__ import annotations

import io
import json
import socket

from promoter.report import markdown
from promoter.report.sinks import ConsoleSink, GitLabSink, publish, select_sinks

GL_TOKEN = "glpat-pr0jectAcc3ssT0ken-4242"
GL_JOB_TOKEN = "glcbt-j0bT0kenValue-7777"
STAGING = markdown.marker("staging", "hrob-risk-staging")


def _ours(fake_api, mark: str = STAGING, iid: int = 7) -> list[dict]:
    return [n for n in fake_api.notes.get(iid, []) if mark in n["body"]]


def _no_token_anywhere(capfd, *texts: str) -> None:
    out, err = capfd.readouterr()
    for text in (out, err, *texts):
        assert GL_TOKEN not in text and GL_JOB_TOKEN not in text


def test_select_sinks_picks_gitlab_from_gitlab_ci_variables(gitlab_env):
    assert [type(s) for s in select_sinks(gitlab_env)] == [ConsoleSink, GitLabSink]
    assert [type(s) for s in select_sinks({"GITLAB_CI": "true"}, console=False)] == [GitLabSink]
    assert [type(s) for s in select_sinks({"GITLAB_CI": "false"})] == [ConsoleSink]


def test_first_run_creates_the_sticky_note_and_the_second_updates_it(fake_api, gitlab_env, result_factory, capfd):
    fake_api.notes[7] = [
        {"id": 1, "body": "looks good", "system": False, "author": {"username": "alice"}},
        {"id": 2, "body": "added 1 commit", "system": True, "author": {"username": "alice"}},
    ]
    stream = io.StringIO()
    assert publish(result_factory(status="FAIL", exit_code=3), gitlab_env, stream) == []
    ours = _ours(fake_api)
    assert len(ours) == 1 and "FAIL" in ours[0]["body"]
    note_id = ours[0]["id"]

    assert publish(result_factory(status="PASS", exit_code=0), gitlab_env, stream) == []
    ours = _ours(fake_api)
    assert [n["id"] for n in ours] == [note_id]  # updated in place, not a new note
    assert "PASS" in ours[0]["body"] and "FAIL" not in ours[0]["body"].split("###")[0]
    assert [n["body"] for n in fake_api.notes[7][:2]] == ["looks good", "added 1 commit"]
    assert len(fake_api.requests_to("POST", r"/notes$")) == 1
    assert [s.path for s in fake_api.requests_to("PUT", r"/notes/")] == [
        f"/api/v4/projects/42/merge_requests/7/notes/{note_id}"
    ]

    # one commit status per run, in this job's pipeline, named for the model
    assert [(s["state"], s["sha"], s["pipeline_id"]) for s in fake_api.gl_statuses] == [
        ("failed", "b" * 40, 9001),
        ("success", "b" * 40, 9001),
    ]
    assert {s["name"] for s in fake_api.gl_statuses} == {"promote/hrob-risk-staging"}
    assert {s["target_url"] for s in fake_api.gl_statuses} == {"https://ci.example.org/runs/1"}
    # the project access token, as PRIVATE-TOKEN; never the job token, never a bearer header
    assert all(s.private_token == GL_TOKEN and s.auth is None for s in fake_api.seen)
    _no_token_anywhere(capfd, stream.getvalue())


def test_two_models_in_one_merge_request_keep_two_notes(fake_api, gitlab_env, result_factory):
    publish(result_factory("staging"), gitlab_env, io.StringIO())
    publish(result_factory("staging", registered_model="readmit-30d-staging"), gitlab_env, io.StringIO())
    publish(result_factory("staging", status="FAIL", exit_code=3), gitlab_env, io.StringIO())
    publish(result_factory("staging", registered_model="readmit-30d-staging"), gitlab_env, io.StringIO())
    assert len(fake_api.notes[7]) == 2
    assert len(_ours(fake_api)) == 1 and "FAIL" in _ours(fake_api)[0]["body"]
    assert len(_ours(fake_api, markdown.marker("staging", "readmit-30d-staging"))) == 1
    assert {s["name"] for s in fake_api.gl_statuses} == {"promote/hrob-risk-staging", "promote/readmit-30d-staging"}


def test_the_note_on_page_two_is_found(fake_api, gitlab_env, result_factory):
    # GitLab lists notes newest first: our old note sits behind 120 newer human ones.
    fake_api.notes[7] = [{"id": 1, "body": STAGING + "\nold report", "system": False, "author": {"username": "bot"}}]
    fake_api.notes[7] += [
        {"id": 100 + i, "body": f"review comment {i}", "system": False, "author": {"username": "alice"}}
        for i in range(120)
    ]
    assert publish(result_factory(), gitlab_env, io.StringIO()) == []
    assert [n["id"] for n in _ours(fake_api)] == [1] and "old report" not in _ours(fake_api)[0]["body"]
    pages = [s.query.get("page") for s in fake_api.requests_to("GET", r"/merge_requests/7/notes$")]
    assert pages == [["1"], ["2"]]
    assert fake_api.requests_to("POST", r"/notes$") == []


def test_a_replaced_token_posts_a_new_note_instead_of_failing(fake_api, gitlab_env, result_factory):
    """Only a note's author may edit it; after the token (its bot user) is replaced, the old note is left."""
    fake_api.notes[7] = [{"id": 1, "body": STAGING + "\nold", "system": False, "author": {"username": "old-bot"}}]
    assert publish(result_factory(), gitlab_env, io.StringIO()) == []
    assert [n["id"] for n in _ours(fake_api)] == [1, fake_api.notes[7][1]["id"]]
    # the next run finds the new note first (newest first) and updates it
    assert publish(result_factory(status="FAIL", exit_code=3), gitlab_env, io.StringIO()) == []
    assert len(_ours(fake_api)) == 2 and "FAIL" in fake_api.notes[7][1]["body"]


def test_500_storm_is_a_warning_and_the_exit_code_is_unchanged(fake_api, gitlab_env, result_factory, capfd):
    fake_api.add_fault("GET", r".", 500, times=-1)
    fake_api.add_fault("POST", r".", 500, times=-1)
    result = result_factory(status="FAIL", exit_code=3)
    before = json.dumps(result, sort_keys=True)
    stream = io.StringIO()
    warnings = publish(result, gitlab_env, stream)
    assert len(warnings) == 1 and warnings[0].startswith("GitLab report not posted: merge request note: GET ")
    assert "500" in warnings[0] or "gave up" in warnings[0]
    assert f"warning: {warnings[0]}" in stream.getvalue()
    assert json.dumps(result, sort_keys=True) == before and result["exit_code"] == 3
    assert 2 <= len(fake_api.requests_to("GET", r"/notes")) <= 5  # retried, bounded
    assert fake_api.requests_to("POST", r".") == []  # then stopped
    _no_token_anywhere(capfd, stream.getvalue())


def test_refused_connection_is_a_warning(gitlab_env, result_factory, capfd):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**gitlab_env, "CI_API_V4_URL": f"http://127.0.0.1:{port}/api/v4", "PROMOTE_HTTP_TRIES": "1"}
    stream = io.StringIO()
    warnings = publish(result_factory(), env, stream)
    assert len(warnings) == 1
    assert "GitLab report not posted" in warnings[0] and ("cannot connect" in warnings[0] or "gave up" in warnings[0])
    _no_token_anywhere(capfd, stream.getvalue())


def test_only_the_job_token_skips_the_note_with_one_message(fake_api, gitlab_env, result_factory):
    env = {k: v for k, v in gitlab_env.items() if k != "PROMOTE_GITLAB_TOKEN"}
    stream = io.StringIO()
    warnings = publish(result_factory(), env, stream)
    assert len(warnings) == 1
    assert "PROMOTE_GITLAB_TOKEN is not set" in warnings[0] and "CI_JOB_TOKEN cannot write" in warnings[0]
    assert "masked CI/CD variable PROMOTE_GITLAB_TOKEN" in warnings[0]
    assert fake_api.seen == []  # the job token is never tried
    assert stream.getvalue().startswith("report:")  # the job log still has the report
    assert GL_JOB_TOKEN not in stream.getvalue()


def test_gitlab_token_is_the_fallback(fake_api, gitlab_env, result_factory):
    env = {k: v for k, v in gitlab_env.items() if k != "PROMOTE_GITLAB_TOKEN"}
    assert publish(result_factory(), {**env, "GITLAB_TOKEN": GL_TOKEN}, io.StringIO()) == []
    assert len(_ours(fake_api)) == 1


def test_a_bad_token_is_a_warning_naming_what_to_check(fake_api, gitlab_env, result_factory, capfd):
    env = {**gitlab_env, "PROMOTE_GITLAB_TOKEN": "glpat-wrongTokenValue-000"}
    warnings = publish(result_factory(), env, io.StringIO())
    assert len(warnings) == 1 and "HTTP 401" in warnings[0] and "check PROMOTE_GITLAB_TOKEN" in warnings[0]
    out, err = capfd.readouterr()
    assert "glpat-wrongTokenValue-000" not in out + err + "".join(warnings)


def test_secrets_inside_the_result_are_masked_everywhere(fake_api, gitlab_env, result_factory, capfd):
    leaky = result_factory(
        links={"mlflow": f"https://ci:{GL_TOKEN}@mlflow.example/"},
        error={"message": f"cannot reach tracking server with token {GL_TOKEN} (job {GL_JOB_TOKEN})"},
        exit_code=1,
    )
    stream = io.StringIO()
    publish(leaky, gitlab_env, stream)
    posted = json.dumps([n["body"] for n in fake_api.notes[7]] + [s["description"] for s in fake_api.gl_statuses])
    assert "***" in posted
    assert [s["state"] for s in fake_api.gl_statuses] == ["failed"]
    _no_token_anywhere(capfd, stream.getvalue(), posted)


def test_non_merge_request_pipeline_posts_no_note_only_the_status(fake_api, gitlab_env, result_factory):
    env = {k: v for k, v in gitlab_env.items() if not k.startswith("CI_MERGE_REQUEST_")}
    env.update(CI_PIPELINE_SOURCE="push", CI_COMMIT_SHA="a" * 40)
    assert publish(result_factory("prod", kind="push"), env, io.StringIO()) == []
    assert fake_api.notes == {}
    assert fake_api.requests_to("GET", r"/notes") == []
    assert [(s["sha"], s["state"], s["name"]) for s in fake_api.gl_statuses] == [
        ("a" * 40, "success", "promote/hrob-risk-prod")
    ]


def test_waiting_for_approval_posts_a_terminal_status(fake_api, gitlab_env, result_factory):
    """A pending external status would keep the job's pipeline running; exit 4 fails the job anyway."""
    env = {k: v for k, v in gitlab_env.items() if not k.startswith("CI_MERGE_REQUEST_")}
    assert publish(result_factory("prod", kind="push", status="NEEDS_APPROVAL", exit_code=4), env, io.StringIO()) == []
    assert [s["state"] for s in fake_api.gl_statuses] == ["failed"]
    assert "NEEDS_APPROVAL" in fake_api.gl_statuses[0]["description"]


def test_child_pipeline_takes_the_merge_request_from_the_event(fake_api, gitlab_env, result_factory):
    """promote's template runs the jobs in a child pipeline, whose own variables name no merge request."""
    env = {k: v for k, v in gitlab_env.items() if k != "CI_MERGE_REQUEST_IID"}
    env["CI_PIPELINE_SOURCE"] = "parent_pipeline"
    assert publish(result_factory(pr_number=7), env, io.StringIO()) == []
    assert len(_ours(fake_api)) == 1


def test_fork_merge_request_notes_go_to_the_target_project(fake_api, gitlab_env, result_factory):
    env = {**gitlab_env, "CI_PROJECT_ID": "77", "CI_MERGE_REQUEST_PROJECT_ID": "42"}
    assert publish(result_factory(), env, io.StringIO()) == []
    assert all(s.path.startswith("/api/v4/projects/42/merge_requests/7/notes") for s in fake_api.seen[:-1])
    assert [s["project"] for s in fake_api.gl_statuses] == ["77"]  # the pipeline's own project
