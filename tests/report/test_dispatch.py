"""Retrain dispatch against the fake GitHub / Azure DevOps / GitLab server, checked against the CI templates."""

from __future__ import annotations

import socket

import pytest
import yaml

from promoter.config.models import DispatchSettings
from promoter.core.events import PROMOTE_VARIABLES
from promoter.report.dispatch import REASON_MAX, RetrainRequest, dispatch_retrain
from tests.conftest import ROOT
from tests.report.conftest import AZ_TOKEN, GITLAB_TRIGGER_TOKEN, TOKEN

TEMPLATES = ROOT / "promoter" / "templates" / "ci"
REQUEST = RetrainRequest(
    model_name="hrob-risk", environment="prod", reason="breached_windows: 2 of the last 5", project="hrob"
)


@pytest.fixture
def env(github_env, azure_env, fake_api):
    return {
        **github_env,
        **azure_env,
        "CI_API_V4_URL": f"{fake_api.base_url}/api/v4",
        "CI_PROJECT_ID": "42",
        "PROMOTE_GITLAB_TRIGGER_TOKEN": GITLAB_TRIGGER_TOKEN,
    }


def all_three(**gitlab) -> DispatchSettings:
    return DispatchSettings(
        github={"enabled": True},
        azure={"enabled": True, "pipeline_id": 17},
        gitlab={"enabled": True, **gitlab},
    )


def _clean(results) -> None:
    for r in results:
        for secret in (TOKEN, AZ_TOKEN, GITLAB_TRIGGER_TOKEN):
            assert secret not in r.message


def _github_inputs() -> dict:
    doc = yaml.safe_load((TEMPLATES / "github" / "promote.yml").read_text())
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as true
    return on["workflow_dispatch"]["inputs"]


def _azure_parameters() -> dict:
    doc = yaml.safe_load((TEMPLATES / "azure" / "azure-pipelines.yml").read_text())
    return {p["name"]: p for p in doc["parameters"]}


def test_dispatch_on_all_three_sends_only_what_the_templates_declare(fake_api, env):
    results = dispatch_retrain(REQUEST, all_three(), env)
    assert [(r.sink, r.action, r.ok) for r in results] == [
        ("github", "dispatched", True),
        ("azure", "dispatched", True),
        ("gitlab", "dispatched", True),
    ], results

    (gh,) = fake_api.dispatches
    assert gh["repo"] == "acme/hrob" and gh["workflow"] == "promote.yml" and gh["ref"] == "release"
    assert gh["inputs"]["action"] == "run" and gh["inputs"]["project"] == "hrob"
    assert "hrob-risk (prod)" in gh["inputs"]["reason"] and "2 of the last 5" in gh["inputs"]["reason"]
    declared = _github_inputs()
    assert set(gh["inputs"]) <= set(declared)  # GitHub answers 422 to an undeclared input
    assert gh["inputs"]["action"] in declared["action"]["options"]
    (call,) = fake_api.requests_to("POST", r"/dispatches$")
    assert call.status == 204 and call.auth == f"Bearer {TOKEN}"

    (run,) = fake_api.pipeline_runs
    assert run["pipeline"] == 17 and run["project"] == "proj-1"
    assert run["resources"] == {"repositories": {"self": {"refName": "refs/heads/release"}}}
    params = _azure_parameters()
    assert set(run["templateParameters"]) <= set(params)
    assert run["templateParameters"]["action"] in params["action"]["values"]
    assert run["templateParameters"]["project"] == "hrob"
    assert results[1].message == f"pipeline 17 run {run['id']} queued on release"

    (trigger,) = fake_api.triggers
    assert trigger["project"] == "42" and trigger["ref"] == "release"
    assert trigger["variables"]["PROMOTE_COMMAND"] == "run" and trigger["variables"]["PROMOTE_PROJECT"] == "hrob"
    assert trigger["variables"]["PROMOTE_ACTION"] == "run"
    assert trigger["variables"]["PROMOTE_REASON"] == gh["inputs"]["reason"]
    assert set(trigger["variables"]) - {"PROMOTE_COMMAND", "PROMOTE_PROJECT"} <= set(PROMOTE_VARIABLES)
    (tcall,) = fake_api.requests_to("POST", r"/trigger/pipeline$")
    assert tcall.auth is None and "token" not in tcall.query  # the token is in the body only
    _clean(results)


def test_no_project_and_a_long_reason(fake_api, env):
    long = RetrainRequest(model_name="m", environment="prod", reason="x" * 5000)
    results = dispatch_retrain(
        long, DispatchSettings(github={"enabled": True}, azure={"enabled": True, "pipeline_id": 3}), env
    )
    assert [r.ok for r in results] == [True, True]
    inputs = fake_api.dispatches[0]["inputs"]
    assert inputs["project"] == "" and len(inputs["reason"]) == REASON_MAX
    # Azure cannot take a blank string parameter: the template's one-space default
    assert fake_api.pipeline_runs[0]["templateParameters"]["project"] == " "


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_failures_are_results_and_the_other_targets_still_run(fake_api, env):
    fake_api.add_fault("POST", r"/dispatches$", 500, times=-1)
    env = {
        **env,
        "PROMOTE_GITLAB_TRIGGER_TOKEN": "glptt-wrong-token-0000",
        "PROMOTE_HTTP_TRIES": "2",
        "PROMOTE_HTTP_DEADLINE": "2",
    }
    results = dispatch_retrain(REQUEST, all_three(), env)
    by = {r.sink: r for r in results}
    assert not by["github"].ok and by["github"].action == "dispatch" and "HTTP 500" in by["github"].message
    assert len(fake_api.requests_to("POST", r"/dispatches$")) == 2
    assert by["azure"].ok and len(fake_api.pipeline_runs) == 1
    assert not by["gitlab"].ok and "HTTP 404" in by["gitlab"].message and not fake_api.triggers
    assert "glptt-wrong-token-0000" not in by["gitlab"].message
    refused = {**env, "SYSTEM_COLLECTIONURI": f"http://127.0.0.1:{_closed_port()}/acme/"}
    (azure,) = dispatch_retrain(REQUEST, DispatchSettings(azure={"enabled": True, "pipeline_id": 17}), refused)
    assert not azure.ok and "cannot connect" in azure.message
    _clean([*results, azure])


def test_targets_without_their_ci_variables_are_skipped_and_disabled_ones_omitted():
    results = dispatch_retrain(REQUEST, all_three(), {"GITHUB_REPOSITORY": "acme/hrob"})
    assert [(r.sink, r.action, r.ok) for r in results] == [
        ("github", "skipped", True),
        ("azure", "skipped", True),
        ("gitlab", "skipped", True),
    ]
    assert "GITHUB_TOKEN is not set" in results[0].message and "actions: write" in results[0].message
    assert "SYSTEM_ACCESSTOKEN" not in results[1].message and "SYSTEM_COLLECTIONURI" in results[1].message
    assert "CI_API_V4_URL" in results[2].message
    gitlab_only = dispatch_retrain(
        REQUEST, DispatchSettings(gitlab={"enabled": True}), {"CI_API_V4_URL": "http://x", "CI_PROJECT_ID": "1"}
    )
    assert [r.message for r in gitlab_only] == [
        "PROMOTE_GITLAB_TRIGGER_TOKEN is not set (a pipeline trigger token of the project, as a masked variable)"
    ]
    assert dispatch_retrain(REQUEST, DispatchSettings(), {}) == []
