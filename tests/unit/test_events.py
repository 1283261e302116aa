"""Events from real GitHub payloads, Azure DevOps and GitLab variable sets, and local git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promoter.core import events
from promoter.errors import EventError
from tests.conftest import FIXTURES, git

GH = FIXTURES / "github"


def _payload(name: str) -> dict:
    return json.loads((GH / name).read_text())


# file, GITHUB_EVENT_NAME, expected (kind, branch, source, target, nothing-substring)
GITHUB_CASES = [
    ("pull_request.opened.json", "pull_request", ("pull_request", "master", "changes", "master", None)),
    ("pull_request.synchronize.json", "pull_request", ("pull_request", "master", "changes", "master", None)),
    ("pull_request.closed.json", "pull_request", (None, None, None, None, "closed without merging")),
    ("push.with-new-branch.json", "push", ("push", "master", None, None, None)),
    ("push.tag.json", "push", (None, None, None, None, "tag push")),
    ("create.tag.json", "create", (None, None, None, None, "tag")),
    ("workflow_dispatch.json", "workflow_dispatch", ("manual", "master", None, None, None)),
]


@pytest.mark.parametrize("name,event_name,expected", GITHUB_CASES, ids=[c[0] for c in GITHUB_CASES])
def test_every_shared_github_payload(name, event_name, expected, tmp_path):
    payload_path = GH / name
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(payload_path),
               "GITHUB_SHA": "f" * 40}
    ev = events.detect(environ, repo_path=tmp_path)
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
    ev = events.from_github({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": "0" * 40,
                             "GITHUB_REF": "refs/pull/2/merge"}, payload)
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
    ev = events.from_github({"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/heads/release/1.0"},
                            payload)
    assert (ev.kind, ev.branch, ev.action) == ("manual", "release/1.0", "score")
    payload["inputs"] = {"action": "deploy-everything"}
    with pytest.raises(EventError, match="action"):
        events.from_github({"GITHUB_EVENT_NAME": "workflow_dispatch"}, payload)


def test_github_schedule_and_run_url():
    ev = events.from_github({"GITHUB_EVENT_NAME": "schedule", "GITHUB_REF": "refs/heads/main",
                             "GITHUB_RUN_ID": "77", "GITHUB_REPOSITORY": "org/repo",
                             "GITHUB_SERVER_URL": "https://github.example"}, {"schedule": "0 11 * * *"})
    assert (ev.kind, ev.branch) == ("schedule", "main")
    assert ev.run_url == "https://github.example/org/repo/actions/runs/77"


def test_missing_event_path_is_an_event_error():
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH"):
        events.detect({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"})


def test_bad_payload_file_names_file_and_position(tmp_path):
    bad = tmp_path / "event.json"
    bad.write_text('{"ref": "refs/heads/x",\n  oops}')
    with pytest.raises(EventError, match=r"event\.json:2:\d+: invalid JSON"):
        events.read_payload(bad)


# ------------------------------------------------------------------ Azure DevOps

AZ_BASE = {"TF_BUILD": "True", "BUILD_SOURCEVERSION": "c" * 40, "BUILD_REQUESTEDFOR": "Ada"}

AZURE_CASES = [
    ("pr-azure-repos", {"BUILD_REASON": "PullRequest", "BUILD_SOURCEBRANCH": "refs/pull/7/merge",
                        "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/x",
                        "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
                        "SYSTEM_PULLREQUEST_PULLREQUESTID": "7", "SYSTEM_PULLREQUEST_SOURCECOMMITID": "d" * 40},
     ("pull_request", "main", "feature/x", 7, "d" * 40)),
    ("pr-github-hosted", {"BUILD_REASON": "PullRequest", "SYSTEM_PULLREQUEST_SOURCEBRANCH": "feature/x",
                          "SYSTEM_PULLREQUEST_TARGETBRANCH": "main", "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "12",
                          "SYSTEM_PULLREQUEST_PULLREQUESTID": "99999"},
     ("pull_request", "main", "feature/x", 12, None)),
    ("individual-ci-main", {"BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/heads/main",
                            "BUILD_SOURCEBRANCHNAME": "main"},
     ("push", "main", None, None, None)),
    ("push-release-1.2", {"BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/heads/release/1.2",
                          "BUILD_SOURCEBRANCHNAME": "1.2"},
     ("push", "release/1.2", None, None, None)),
    ("batched-ci", {"BUILD_REASON": "BatchedCI", "BUILD_SOURCEBRANCH": "refs/heads/dev/y"},
     ("push", "dev/y", None, None, None)),
    ("manual", {"BUILD_REASON": "Manual", "BUILD_SOURCEBRANCH": "refs/heads/release/1.0"},
     ("manual", "release/1.0", None, None, None)),
    ("schedule", {"BUILD_REASON": "Schedule", "BUILD_SOURCEBRANCH": "refs/heads/main"},
     ("schedule", "main", None, None, None)),
]


@pytest.mark.parametrize("name,variables,expected", AZURE_CASES, ids=[c[0] for c in AZURE_CASES])
def test_azure_variable_sets(name, variables, expected, tmp_path):
    ev = events.detect({**AZ_BASE, **variables}, repo_path=tmp_path)
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


# ------------------------------------------------------------------ GitLab

GL_BASE = {"GITLAB_CI": "true", "CI_COMMIT_SHA": "e" * 40, "CI_DEFAULT_BRANCH": "main",
           "GITLAB_USER_LOGIN": "grace", "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/5"}

GITLAB_CASES = [
    ("merge-request", {"CI_PIPELINE_SOURCE": "merge_request_event",
                       "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/y",
                       "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_MERGE_REQUEST_IID": "3"},
     ("pull_request", "main", "feature/y", 3)),
    ("push-main", {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}, ("push", "main", None, None)),
    ("push-release", {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "release/2.0"},
     ("push", "release/2.0", None, None)),
    ("schedule", {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main"}, ("schedule", "main", None, None)),
    ("web", {"CI_PIPELINE_SOURCE": "web", "CI_COMMIT_BRANCH": "release/2.0"}, ("manual", "release/2.0", None, None)),
]


@pytest.mark.parametrize("name,variables,expected", GITLAB_CASES, ids=[c[0] for c in GITLAB_CASES])
def test_gitlab_variable_sets(name, variables, expected, tmp_path):
    ev = events.detect({**GL_BASE, **variables}, repo_path=tmp_path)
    assert ev.provider == "gitlab"
    assert (ev.kind, ev.branch, ev.source_branch, ev.pr_number) == expected
    assert ev.default_branch == "main"
    assert ev.run_url == GL_BASE["CI_PIPELINE_URL"]


def test_gitlab_tag_pipeline_is_nothing_to_do():
    ev = events.from_gitlab({**GL_BASE, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1"})
    assert ev.kind is None and "tag" in ev.nothing


# ------------------------------------------------------------------ local git

def test_local_push_reads_branch_sha_and_tree(git_repo: Path):
    git(git_repo, "checkout", "-q", "-b", "feature/x")
    (git_repo / "f.txt").write_text("x")
    git(git_repo, "add", "f.txt")
    git(git_repo, "commit", "-q", "-m", "x")
    ev = events.detect({}, repo_path=git_repo)
    assert ev.provider == "local"
    assert (ev.kind, ev.branch) == ("push", "feature/x")
    assert ev.sha == git(git_repo, "rev-parse", "HEAD")
    assert ev.tree_sha == git(git_repo, "rev-parse", "HEAD^{tree}")
    assert ev.actor == "Test Author"


def test_local_pull_request_uses_head_of_source_branch(git_repo: Path):
    git(git_repo, "branch", "feature/y")
    git(git_repo, "checkout", "-q", "feature/y")
    (git_repo / "g.txt").write_text("y")
    git(git_repo, "add", "g.txt")
    git(git_repo, "commit", "-q", "-m", "y")
    head = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-q", "main")
    ev = events.from_local(git_repo, kind="pull_request", source_branch="feature/y", target_branch="main")
    assert (ev.kind, ev.source_branch, ev.target_branch, ev.head_sha) == ("pull_request", "feature/y", "main", head)


def test_local_detached_head_needs_branch(git_repo: Path):
    git(git_repo, "checkout", "-q", "--detach")
    with pytest.raises(EventError, match="detached"):
        events.from_local(git_repo)
    ev = events.from_local(git_repo, branch="release/1.0")
    assert ev.branch == "release/1.0"


def test_local_pull_request_needs_target(git_repo: Path):
    with pytest.raises(EventError, match="--into"):
        events.from_local(git_repo, kind="pull_request", source_branch="main")


def test_local_default_branch_auto_comes_from_the_remote_head(git_repo: Path, tmp_path: Path):
    """`default_branch: auto` on a clone whose remote's HEAD is `trunk`: a push to trunk is
    staging, a push to main (now just another branch) is dev."""
    from promoter import config
    from promoter.core import plan as planning
    from tests.conftest import CONFIGS

    git(git_repo, "branch", "-m", "main", "trunk")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(git_repo), str(clone))
    assert git(clone, "symbolic-ref", "refs/remotes/origin/HEAD") == "refs/remotes/origin/trunk"
    git(clone, "checkout", "-q", "-b", "main")
    settings = config.load(CONFIGS)
    assert settings.promotion.default_branch == "auto"
    on_trunk = events.from_local(clone, branch="trunk")
    assert on_trunk.default_branch == "trunk"
    assert planning.build(on_trunk, settings).environment == "staging"
    assert planning.build(events.from_local(clone, branch="main"), settings).environment == "dev"
