"""The pure event parsers: real GitHub payloads, Azure DevOps and GitLab variable sets.

Reading files, the process environment and local git is promoter.app.sources
(tests/app/test_sources.py).
"""

from __future__ import annotations

import json

import pytest

from promoter.core import events
from promoter.errors import EventError
from tests.conftest import FIXTURES

GH = FIXTURES / "github"


def _payload(name: str) -> dict:
    return json.loads((GH / name).read_text())


def _variables(provider: str, name: str) -> dict[str, str]:
    return json.loads((FIXTURES / provider / name).read_text())


# file, GITHUB_EVENT_NAME, expected (kind, branch, source, target, nothing-substring)
GITHUB_CASES = [
    ("pull_request.opened.json", "pull_request", ("pull_request", "master", "changes", "master", None)),
    ("pull_request.synchronize.json", "pull_request", ("pull_request", "master", "changes", "master", None)),
    ("pull_request.closed.json", "pull_request", (None, None, None, None, "closed without merging")),
    ("push.with-new-branch.json", "push", ("push", "master", None, None, None)),
    ("push.tag.json", "push", (None, None, None, None, "tag push")),
    ("create.tag.json", "create", (None, None, None, None, "tag")),
    ("workflow_dispatch.json", "workflow_dispatch", ("manual", "master", None, None, None)),
    ("workflow_dispatch.rollback.json", "workflow_dispatch", ("manual", "release/1.0", None, None, None)),
]


@pytest.mark.parametrize("name,event_name,expected", GITHUB_CASES, ids=[c[0] for c in GITHUB_CASES])
def test_every_shared_github_payload(name, event_name, expected):
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_SHA": "f" * 40}
    ev = events.from_github(environ, _payload(name))
    kind, branch, source, target, nothing = expected
    assert ev.provider == "github"
    assert ev.kind == kind
    assert ev.branch == branch
    assert ev.source_branch == source
    assert ev.target_branch == target
    if nothing:
        assert nothing in ev.nothing
    else:
        assert ev.nothing is None
    assert ev.default_branch == "master"


@pytest.mark.parametrize("name", [c[0] for c in GITHUB_CASES])
def test_event_name_is_inferred_from_payload_shape(name):
    expected = dict((c[0], c[2]) for c in GITHUB_CASES)[name]
    ev = events.from_github({}, _payload(name))
    assert (ev.kind, ev.branch) == (expected[0], expected[1])


def test_pr_head_sha_comes_from_payload_not_github_sha():
    payload = _payload("pull_request.opened.json")
    ev = events.from_github(
        {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": "0" * 40, "GITHUB_REF": "refs/pull/2/merge"}, payload
    )
    assert ev.head_sha == payload["pull_request"]["head"]["sha"]
    assert ev.sha == "0" * 40
    assert ev.commit == ev.head_sha
    assert ev.pr_number == 2


def test_merged_pr_counts_as_push_to_base():
    payload = _payload("pull_request.closed.json")
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["merge_commit_sha"] = "a" * 40
    ev = events.from_github({"GITHUB_EVENT_NAME": "pull_request"}, payload)
    assert (ev.kind, ev.branch, ev.sha) == ("push", "master", "a" * 40)


def test_branch_deletion_push_is_nothing_to_do():
    payload = _payload("push.with-new-branch.json")
    payload.update(deleted=True, ref="refs/heads/feature/gone")
    ev = events.from_github({"GITHUB_EVENT_NAME": "push"}, payload)
    assert ev.kind is None and "deletion" in ev.nothing


def test_create_of_release_branch_is_a_push():
    payload = _payload("create.tag.json")
    payload.update(ref="release/1.2", ref_type="branch")
    ev = events.from_github({"GITHUB_EVENT_NAME": "create", "GITHUB_SHA": "b" * 40}, payload)
    assert (ev.kind, ev.branch, ev.sha) == ("push", "release/1.2", "b" * 40)


def test_workflow_dispatch_action_input():
    payload = _payload("workflow_dispatch.json")
    payload["inputs"] = {"action": "score"}
    ev = events.from_github({"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/heads/release/1.0"}, payload)
    assert (ev.kind, ev.branch, ev.action) == ("manual", "release/1.0", "score")
    assert (ev.reason, ev.to_version) == (None, None)
    payload["inputs"] = {"action": "deploy-everything"}
    with pytest.raises(EventError, match="workflow_dispatch input 'action' must be one of"):
        events.from_github({"GITHUB_EVENT_NAME": "workflow_dispatch"}, payload)


def test_workflow_dispatch_without_inputs_is_a_run():
    ev = events.from_github({"GITHUB_EVENT_NAME": "workflow_dispatch"}, _payload("workflow_dispatch.json"))
    assert (ev.kind, ev.action, ev.reason, ev.to_version) == ("manual", "run", None, None)


def test_workflow_dispatch_rollback_carries_who_and_why():
    ev = events.from_github(
        {"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_ACTOR": "kim-ops", "GITHUB_SHA": "a" * 40},
        _payload("workflow_dispatch.rollback.json"),
    )
    assert (ev.kind, ev.branch, ev.action) == ("manual", "release/1.0", "rollback")
    assert ev.reason == "INC-991 calibration drift"
    assert ev.to_version is None  # empty input: the `previous` alias
    assert ev.actor == "kim-ops"
    # without GITHUB_ACTOR (a replayed payload) the actor is the payload's sender
    assert events.from_github({}, _payload("workflow_dispatch.rollback.json")).actor == "Codertocat"


@pytest.mark.parametrize("to_version,expected", [("3", 3), (" 12 ", 12), (7, 7), ("", None), (None, None)])
def test_workflow_dispatch_rollback_to_version(to_version, expected):
    payload = _payload("workflow_dispatch.rollback.json")
    payload["inputs"]["to_version"] = to_version
    assert events.from_github({}, payload).to_version == expected


@pytest.mark.parametrize("to_version", ["v3", "3.0", "three", "-1", "0", "1_0", True])
def test_non_integer_to_version_names_the_input(to_version):
    payload = _payload("workflow_dispatch.rollback.json")
    payload["inputs"]["to_version"] = to_version
    with pytest.raises(EventError, match="workflow_dispatch input 'to_version' must be a model version number"):
        events.from_github({}, payload)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_workflow_dispatch_rollback_needs_a_reason(reason):
    payload = _payload("workflow_dispatch.rollback.json")
    payload["inputs"]["reason"] = reason
    with pytest.raises(EventError) as err:
        events.from_github({}, payload)
    assert str(err.value) == (
        "a rollback needs a reason (workflow_dispatch input 'reason' / PROMOTE_REASON / --reason)"
    )


def test_reason_is_kept_for_every_manual_action_and_to_version_only_for_rollback():
    payload = _payload("workflow_dispatch.json")
    payload["inputs"] = {"action": "score", "reason": "  re-score after the backfill  ", "to_version": ""}
    assert events.from_github({}, payload).reason == "re-score after the backfill"
    payload["inputs"]["to_version"] = "4"
    with pytest.raises(EventError, match="workflow_dispatch input 'to_version' is only for action 'rollback'"):
        events.from_github({}, payload)


def test_manual_run_on_a_tag_is_nothing_to_do():
    ev = events.from_github(
        {"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/tags/v1"}, _payload("workflow_dispatch.json")
    )
    assert ev.kind is None and "tag" in ev.nothing


def test_payload_must_be_given_and_be_an_object():
    with pytest.raises(TypeError):
        events.from_github({"GITHUB_EVENT_NAME": "push"})  # the caller reads the payload file
    with pytest.raises(EventError, match="JSON object"):
        events.from_github({"GITHUB_EVENT_NAME": "push"}, ["not", "an", "object"])


def test_from_github_reads_no_payload_file(tmp_path):
    """GITHUB_EVENT_PATH is the caller's business: the parser only sees the payload it is handed."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"ref": "refs/heads/release/9.9", "after": "9" * 40}))
    ev = events.from_github(
        {"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(path)}, {"ref": "refs/heads/main", "after": "1" * 40}
    )
    assert (ev.branch, ev.sha) == ("main", "1" * 40)


def test_github_schedule_and_run_url():
    ev = events.from_github(
        {
            "GITHUB_EVENT_NAME": "schedule",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_RUN_ID": "77",
            "GITHUB_REPOSITORY": "org/repo",
            "GITHUB_SERVER_URL": "https://github.example",
        },
        {"schedule": "0 11 * * *"},
    )
    assert (ev.kind, ev.branch) == ("schedule", "main")
    assert ev.run_url == "https://github.example/org/repo/actions/runs/77"


def test_core_events_does_no_io():
    """The parsers import nothing that reads files, the environment or git."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(events))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"os", "json", "pathlib", "subprocess", "git", "promoter.gitops", "promoter.app"}
    assert not any(hasattr(events, name) for name in ("detect", "from_local", "read_payload"))


# ------------------------------------------------------------------ Azure DevOps

AZ_BASE = {"TF_BUILD": "True", "BUILD_SOURCEVERSION": "c" * 40, "BUILD_REQUESTEDFOR": "Ada"}

AZURE_CASES = [
    (
        "pr-azure-repos",
        {
            "BUILD_REASON": "PullRequest",
            "BUILD_SOURCEBRANCH": "refs/pull/7/merge",
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/x",
            "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": "7",
            "SYSTEM_PULLREQUEST_SOURCECOMMITID": "d" * 40,
        },
        ("pull_request", "main", "feature/x", 7, "d" * 40),
    ),
    (
        "pr-github-hosted",
        {
            "BUILD_REASON": "PullRequest",
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "feature/x",
            "SYSTEM_PULLREQUEST_TARGETBRANCH": "main",
            "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "12",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": "99999",
        },
        ("pull_request", "main", "feature/x", 12, None),
    ),
    (
        "individual-ci-main",
        {"BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/heads/main", "BUILD_SOURCEBRANCHNAME": "main"},
        ("push", "main", None, None, None),
    ),
    (
        "push-release-1.2",
        {
            "BUILD_REASON": "IndividualCI",
            "BUILD_SOURCEBRANCH": "refs/heads/release/1.2",
            "BUILD_SOURCEBRANCHNAME": "1.2",
        },
        ("push", "release/1.2", None, None, None),
    ),
    (
        "batched-ci",
        {"BUILD_REASON": "BatchedCI", "BUILD_SOURCEBRANCH": "refs/heads/dev/y"},
        ("push", "dev/y", None, None, None),
    ),
    (
        "manual",
        {"BUILD_REASON": "Manual", "BUILD_SOURCEBRANCH": "refs/heads/release/1.0"},
        ("manual", "release/1.0", None, None, None),
    ),
    (
        "schedule",
        {"BUILD_REASON": "Schedule", "BUILD_SOURCEBRANCH": "refs/heads/main"},
        ("schedule", "main", None, None, None),
    ),
]


@pytest.mark.parametrize("name,variables,expected", AZURE_CASES, ids=[c[0] for c in AZURE_CASES])
def test_azure_variable_sets(name, variables, expected):
    ev = events.from_azure({**AZ_BASE, **variables})
    kind, branch, source, pr, head = expected
    assert ev.provider == "azure"
    assert (ev.kind, ev.branch, ev.source_branch, ev.pr_number) == (kind, branch, source, pr)
    assert ev.head_sha == head
    assert ev.actor == "Ada"


def test_azure_tag_build_is_nothing_to_do():
    ev = events.from_azure({**AZ_BASE, "BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/tags/v1"})
    assert ev.kind is None and "tag" in ev.nothing


def test_azure_pr_without_target_is_an_error():
    with pytest.raises(EventError, match="SYSTEM_PULLREQUEST"):
        events.from_azure({**AZ_BASE, "BUILD_REASON": "PullRequest"})


@pytest.mark.parametrize(
    "variables,missing",
    [
        ({}, "BUILD_REASON"),
        ({"TF_BUILD": "True", "BUILD_REASON": "IndividualCI"}, "BUILD_SOURCEBRANCH"),
    ],
)
def test_azure_errors_name_the_missing_variable(variables, missing):
    with pytest.raises(EventError, match=missing):
        events.from_azure(variables)


def test_azure_manual_rollback_carries_who_and_why():
    ev = events.from_azure(_variables("azure", "manual.rollback.json"))
    assert (ev.kind, ev.branch, ev.action) == ("manual", "release/1.0", "rollback")
    assert (ev.reason, ev.to_version, ev.actor) == ("INC-991 calibration drift", None, "Kim Ops")
    assert ev.run_url == "https://dev.azure.com/contoso/ml/_build/results?buildId=4105"


def test_azure_manual_variables():
    manual = {**AZ_BASE, "BUILD_REASON": "Manual", "BUILD_SOURCEBRANCH": "refs/heads/release/1.0"}
    ev = events.from_azure(
        {**manual, "PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "pin v3", "PROMOTE_TO_VERSION": "3"}
    )
    assert (ev.action, ev.reason, ev.to_version) == ("rollback", "pin v3", 3)
    # the template's blank parameters arrive as ' ' (Azure cannot leave a string parameter empty)
    ev = events.from_azure({**manual, "PROMOTE_ACTION": "score", "PROMOTE_REASON": " ", "PROMOTE_TO_VERSION": " "})
    assert (ev.action, ev.reason, ev.to_version) == ("score", None, None)
    with pytest.raises(EventError, match="PROMOTE_TO_VERSION must be a model version number"):
        events.from_azure(
            {**manual, "PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "x", "PROMOTE_TO_VERSION": "latest"}
        )
    with pytest.raises(EventError, match="PROMOTE_ACTION must be one of"):
        events.from_azure({**manual, "PROMOTE_ACTION": "retrain"})
    with pytest.raises(EventError, match=r"a rollback needs a reason \(.*PROMOTE_REASON"):
        events.from_azure({**manual, "PROMOTE_ACTION": "rollback"})


def test_azure_non_manual_builds_ignore_the_manual_variables():
    ev = events.from_azure(_variables("azure", "push.main.json"))
    assert (ev.kind, ev.action, ev.reason, ev.to_version) == ("push", None, None, None)


# ------------------------------------------------------------------ GitLab

GL_BASE = {
    "GITLAB_CI": "true",
    "CI_COMMIT_SHA": "e" * 40,
    "CI_DEFAULT_BRANCH": "main",
    "GITLAB_USER_LOGIN": "grace",
    "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/5",
}

GITLAB_CASES = [
    (
        "merge-request",
        {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/y",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_IID": "3",
        },
        ("pull_request", "main", "feature/y", 3),
    ),
    ("push-main", {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}, ("push", "main", None, None)),
    (
        "push-release",
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "release/2.0"},
        ("push", "release/2.0", None, None),
    ),
    ("schedule", {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main"}, ("schedule", "main", None, None)),
    ("web", {"CI_PIPELINE_SOURCE": "web", "CI_COMMIT_BRANCH": "release/2.0"}, ("manual", "release/2.0", None, None)),
]


@pytest.mark.parametrize("name,variables,expected", GITLAB_CASES, ids=[c[0] for c in GITLAB_CASES])
def test_gitlab_variable_sets(name, variables, expected):
    ev = events.from_gitlab({**GL_BASE, **variables})
    assert ev.provider == "gitlab"
    assert (ev.kind, ev.branch, ev.source_branch, ev.pr_number) == expected
    assert ev.default_branch == "main"
    assert ev.run_url == GL_BASE["CI_PIPELINE_URL"]


def test_gitlab_tag_pipeline_is_nothing_to_do():
    ev = events.from_gitlab({**GL_BASE, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1"})
    assert ev.kind is None and "tag" in ev.nothing


@pytest.mark.parametrize(
    "variables,missing",
    [
        ({}, "CI_PIPELINE_SOURCE"),
        ({"GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push"}, "CI_COMMIT_BRANCH"),
        ({"GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "merge_request_event"}, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
    ],
)
def test_gitlab_errors_name_the_missing_variable(variables, missing):
    with pytest.raises(EventError, match=missing):
        events.from_gitlab(variables)


def test_gitlab_manual_rollback_carries_who_and_why():
    ev = events.from_gitlab(_variables("gitlab", "manual.rollback.json"))
    assert (ev.kind, ev.branch, ev.action) == ("manual", "release/1.0", "rollback")
    assert (ev.reason, ev.to_version, ev.actor) == ("INC-991 calibration drift", 3, "kim.ops")


@pytest.mark.parametrize("source", ["web", "api", "trigger"])
def test_gitlab_manual_sources_read_the_promote_variables(source):
    base = {**GL_BASE, "CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": "release/1.0"}
    ev = events.from_gitlab({**base, "PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "INC-1", "PROMOTE_TO_VERSION": ""})
    assert (ev.kind, ev.action, ev.reason, ev.to_version, ev.actor) == ("manual", "rollback", "INC-1", None, "grace")
    with pytest.raises(EventError, match="PROMOTE_TO_VERSION must be a model version number"):
        events.from_gitlab({**base, "PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "x", "PROMOTE_TO_VERSION": "2.5"})
    with pytest.raises(EventError, match="a rollback needs a reason"):
        events.from_gitlab({**base, "PROMOTE_ACTION": "rollback", "PROMOTE_REASON": ""})


def test_gitlab_non_manual_pipelines_ignore_the_manual_variables():
    ev = events.from_gitlab({**_variables("gitlab", "push.release-1.0.json"), "PROMOTE_ACTION": "rollback"})
    assert (ev.kind, ev.action, ev.reason, ev.to_version) == ("push", None, None, None)


# ------------------------------------------------------------------ manual requests, any source


@pytest.mark.parametrize(
    "names,action,version",
    [
        (events.GITHUB_INPUTS, "workflow_dispatch input 'action'", "workflow_dispatch input 'to_version'"),
        (events.PROMOTE_VARIABLES, "PROMOTE_ACTION", "PROMOTE_TO_VERSION"),
        (events.CLI_OPTIONS, "--action", "--to-version"),
    ],
)
def test_manual_request_errors_name_the_source(names, action, version):
    assert events.manual_request(None, None, None, names) == ("run", None, None)
    assert events.manual_request("rollback", " why ", "2", names) == ("rollback", "why", 2)
    with pytest.raises(EventError, match=f"^{action} must be one of"):
        events.manual_request("nope", None, None, names)
    with pytest.raises(EventError, match=f"^{version} must be a model version number"):
        events.manual_request("rollback", "why", "x", names)
    with pytest.raises(EventError, match=f"^{version} is only for action 'rollback'"):
        events.manual_request("run", None, "2", names)
    with pytest.raises(EventError, match="^a rollback needs a reason"):
        events.manual_request("rollback", None, None, names)


def test_event_dict_has_the_manual_fields():
    d = events.Event(kind="manual", provider="local", action="rollback", reason="r", to_version=2).to_dict()
    assert (d["action"], d["reason"], d["to_version"]) == ("rollback", "r", 2)
