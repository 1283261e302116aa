"""Where events come from: CI variables and payload files, variable dumps, and local git (real repos)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promoter.app import sources
from promoter.core import events
from promoter.errors import EventError
from tests.conftest import FIXTURES, git

GH = FIXTURES / "github"


def _vars(provider: str, name: str) -> dict[str, str]:
    return json.loads((FIXTURES / provider / name).read_text())


def _head(repo: Path) -> tuple[str, str]:
    return git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD^{tree}")


# ------------------------------------------------------------------ files


def test_bad_payload_file_names_file_and_position(tmp_path):
    bad = tmp_path / "event.json"
    bad.write_text('{"ref": "refs/heads/x",\n  oops}')
    with pytest.raises(EventError, match=r"event\.json:2:\d+: invalid JSON"):
        sources.read_payload(bad)


@pytest.mark.parametrize("reader", [sources.read_payload, sources.read_variables])
def test_missing_or_non_object_files_are_named(reader, tmp_path):
    with pytest.raises(EventError, match=r"nope\.json: event file not found"):
        reader(tmp_path / "nope.json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(EventError, match=r"list\.json: .*JSON object"):
        reader(listed)


@pytest.mark.parametrize(
    "content,culprit",
    [
        ('{"TF_BUILD": "True", "BUILD_BUILDID": 4101}', "BUILD_BUILDID is 4101"),
        ('{"GITLAB_CI": true}', "GITLAB_CI is true"),
        ('{"PROMOTE_REASON": null}', "PROMOTE_REASON is null"),
        ('{"nested": {"a": "b"}}', "nested is"),
    ],
)
def test_variables_file_must_be_an_object_of_strings(content, culprit, tmp_path):
    path = tmp_path / "vars.json"
    path.write_text(content)
    with pytest.raises(EventError, match=r"vars\.json: a variables file must be a JSON object of strings") as err:
        sources.read_variables(path)
    assert culprit in str(err.value)


# ------------------------------------------------------------------ detect: the process's own CI

GITHUB_CASES = [
    ("pull_request.opened.json", "pull_request", ("pull_request", "master", "changes", "master", None)),
    ("push.with-new-branch.json", "push", ("push", "master", None, None, None)),
    ("push.tag.json", "push", (None, None, None, None, "tag push")),
    ("workflow_dispatch.json", "workflow_dispatch", ("manual", "master", None, None, None)),
    ("workflow_dispatch.rollback.json", "workflow_dispatch", ("manual", "release/1.0", None, None, None)),
]


@pytest.mark.parametrize("name,event_name,expected", GITHUB_CASES, ids=[c[0] for c in GITHUB_CASES])
def test_detect_reads_the_github_event_path(name, event_name, expected, tmp_path):
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(GH / name),
        "GITHUB_SHA": "f" * 40,
    }
    ev = sources.detect(environ, repo_path=tmp_path)
    assert ev.provider == "github"
    assert (ev.kind, ev.branch, ev.source_branch, ev.target_branch) == expected[:4]
    assert (expected[4] in ev.nothing) if expected[4] else ev.nothing is None


def test_detect_missing_event_path_is_an_event_error():
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH"):
        sources.detect({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"})


def test_detect_event_path_to_a_missing_file_names_it(tmp_path):
    with pytest.raises(EventError, match=r"gone\.json: event file not found"):
        sources.detect(
            {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(tmp_path / "gone.json")}
        )


@pytest.mark.parametrize("provider", ["azure", "gitlab"])
def test_detect_reads_azure_and_gitlab_from_the_environment(provider, tmp_path):
    ev = sources.detect(_vars(provider, "push.release-1.0.json"), repo_path=tmp_path)
    assert (ev.provider, ev.kind, ev.branch) == (provider, "push", "release/1.0")


def test_detect_fills_the_tree_of_a_ci_commit_from_the_local_repo(git_repo: Path):
    sha, tree = _head(git_repo)
    ev = sources.detect({**_vars("azure", "push.main.json"), "BUILD_SOURCEVERSION": sha}, repo_path=git_repo)
    assert (ev.sha, ev.tree_sha) == (sha, tree)
    bare = sources.detect(
        {**_vars("azure", "push.main.json"), "BUILD_SOURCEVERSION": sha}, repo_path=git_repo, with_tree=False
    )
    assert bare.tree_sha is None
    # a commit the checkout does not have: no tree, no error
    assert sources.detect(_vars("azure", "push.main.json"), repo_path=git_repo).tree_sha is None


def test_detect_an_event_file_implies_github_unless_told(tmp_path):
    ev = sources.detect({}, event_file=str(GH / "pull_request.opened.json"), repo_path=tmp_path)
    assert (ev.provider, ev.kind) == ("github", "pull_request")
    ev = sources.detect(
        {}, provider="gitlab", event_file=str(FIXTURES / "gitlab" / "schedule.json"), repo_path=tmp_path
    )
    assert (ev.provider, ev.kind, ev.branch) == ("gitlab", "schedule", "main")
    with pytest.raises(EventError, match="--provider must be one of"):
        sources.detect({}, provider="bitbucket")
    with pytest.raises(EventError, match="--event-file is a CI event"):
        sources.detect({}, provider="local", event_file=str(GH / "pull_request.opened.json"))


def test_detect_without_ci_is_local(git_repo: Path):
    git(git_repo, "checkout", "-q", "-b", "feature/x")
    (git_repo / "f.txt").write_text("x")
    git(git_repo, "add", "f.txt")
    git(git_repo, "commit", "-q", "-m", "x")
    ev = sources.detect({}, repo_path=git_repo)
    assert ev.provider == "local"
    assert (ev.kind, ev.branch) == ("push", "feature/x")
    assert (ev.sha, ev.tree_sha) == _head(git_repo)
    assert ev.actor == "Test Author"


# ------------------------------------------------------------------ replay_event: every provider

# fixture -> (kind, branch, source_branch, pr_number, action, reason, to_version, actor)
AZURE_REPLAYS = {
    "pull_request.json": ("pull_request", "main", "feature/recall-boost", 7, None, None, None, "Ada Lovelace"),
    "push.main.json": ("push", "main", None, None, None, None, None, "Ada Lovelace"),
    "push.release-1.0.json": ("push", "release/1.0", None, None, None, None, None, "Ada Lovelace"),
    "schedule.json": ("schedule", "main", None, None, None, None, None, "Microsoft.VisualStudio.Services.TFS"),
    "manual.rollback.json": (
        "manual",
        "release/1.0",
        None,
        None,
        "rollback",
        "INC-991 calibration drift",
        None,
        "Kim Ops",
    ),
}
GITLAB_REPLAYS = {
    "pull_request.json": ("pull_request", "main", "feature/recall-boost", 3, None, None, None, "grace"),
    "push.main.json": ("push", "main", None, None, None, None, None, "grace"),
    "push.release-1.0.json": ("push", "release/1.0", None, None, None, None, None, "grace"),
    "schedule.json": ("schedule", "main", None, None, None, None, None, "scheduler.bot"),
    "manual.rollback.json": (
        "manual",
        "release/1.0",
        None,
        None,
        "rollback",
        "INC-991 calibration drift",
        3,
        "kim.ops",
    ),
}
REPLAYS = [("azure", name, expected) for name, expected in AZURE_REPLAYS.items()] + [
    ("gitlab", name, expected) for name, expected in GITLAB_REPLAYS.items()
]


def _shape(ev: events.Event) -> tuple:
    return (ev.kind, ev.branch, ev.source_branch, ev.pr_number, ev.action, ev.reason, ev.to_version, ev.actor)


def test_every_provider_has_the_five_variable_dumps():
    for provider in ("azure", "gitlab"):
        assert sorted(p.name for p in (FIXTURES / provider).glob("*.json")) == sorted(AZURE_REPLAYS)


@pytest.mark.parametrize("provider,name,expected", REPLAYS, ids=[f"{p}-{n}" for p, n, _ in REPLAYS])
def test_replay_from_variables(provider, name, expected, tmp_path):
    ev = sources.replay_event(provider, None, None, _vars(provider, name), tmp_path)
    assert ev.provider == provider
    assert _shape(ev) == expected


@pytest.mark.parametrize("provider,name,expected", REPLAYS, ids=[f"{p}-{n}" for p, n, _ in REPLAYS])
def test_replay_from_an_event_file_replaces_the_environment(provider, name, expected, tmp_path):
    # whatever the caller's environment says is ignored once a file is given
    noise = {
        "GITHUB_ACTIONS": "true",
        "TF_BUILD": "True",
        "BUILD_REASON": "Manual",
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "web",
        "PROMOTE_ACTION": "score",
        "PROMOTE_REASON": "from the shell",
    }
    ev = sources.replay_event(provider, str(FIXTURES / provider / name), None, noise, tmp_path)
    assert ev.provider == provider
    assert _shape(ev) == expected
    assert ev == sources.replay_event(provider, None, None, _vars(provider, name), tmp_path)


@pytest.mark.parametrize("name,event_name,expected", GITHUB_CASES, ids=[c[0] for c in GITHUB_CASES])
def test_replay_github_from_an_event_file(name, event_name, expected, tmp_path):
    ev = sources.replay_event("github", str(GH / name), None, {}, tmp_path)
    assert (ev.provider, ev.kind, ev.branch, ev.source_branch, ev.target_branch) == ("github", *expected[:4])


@pytest.mark.parametrize("name,event_name,expected", GITHUB_CASES, ids=[c[0] for c in GITHUB_CASES])
def test_replay_github_from_variables(name, event_name, expected, tmp_path):
    environ = {"GITHUB_EVENT_PATH": str(GH / name), "GITHUB_EVENT_NAME": event_name, "GITHUB_ACTOR": "octo"}
    ev = sources.replay_event("github", None, None, environ, tmp_path)
    assert (ev.provider, ev.kind, ev.branch, ev.source_branch, ev.target_branch) == ("github", *expected[:4])
    assert ev.actor == "octo"


def test_replay_github_rollback_payload(tmp_path):
    ev = sources.replay_event("github", str(GH / "workflow_dispatch.rollback.json"), "workflow_dispatch", {}, tmp_path)
    assert (ev.kind, ev.action, ev.reason, ev.to_version, ev.actor) == (
        "manual",
        "rollback",
        "INC-991 calibration drift",
        None,
        "Codertocat",
    )


def test_replay_github_event_name_overrides_the_payload_shape(tmp_path):
    payload = json.loads((GH / "push.with-new-branch.json").read_text())
    payload["ref"] = "refs/heads/release/1.2"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    assert sources.replay_event("github", str(path), "create", {}, tmp_path).kind is None  # not a branch create
    assert sources.replay_event("github", str(path), None, {}, tmp_path).branch == "release/1.2"


def test_replay_github_without_file_or_event_path():
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH is not set"):
        sources.replay_event("github", None, None, {}, ".")


@pytest.mark.parametrize("provider,missing", [("azure", "BUILD_REASON"), ("gitlab", "CI_PIPELINE_SOURCE")])
def test_replay_without_the_providers_variables_names_the_missing_one(provider, missing, tmp_path):
    """A shell without the provider's variables (or an empty dump) says which one is missing."""
    with pytest.raises(EventError, match=missing):
        sources.replay_event(provider, None, None, {"HOME": "/home/me", "PATH": "/usr/bin"}, tmp_path)
    empty = tmp_path / "vars.json"
    empty.write_text("{}")
    with pytest.raises(EventError, match=missing):
        sources.replay_event(provider, str(empty), None, {}, tmp_path)


@pytest.mark.parametrize(
    "provider,name,missing",
    [
        ("azure", "pull_request.json", "SYSTEM_PULLREQUEST_TARGETBRANCH"),
        ("azure", "push.main.json", "BUILD_SOURCEBRANCH"),
        ("gitlab", "push.main.json", "CI_COMMIT_BRANCH"),
        ("gitlab", "pull_request.json", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
    ],
)
def test_replay_of_an_incomplete_dump_names_the_missing_variable(provider, name, missing, tmp_path):
    variables = _vars(provider, name)
    del variables[missing]
    if missing == "CI_COMMIT_BRANCH":
        del variables["CI_COMMIT_REF_NAME"]  # the fallback for the branch name
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(variables))
    with pytest.raises(EventError, match=missing):
        sources.replay_event(provider, str(path), None, {}, tmp_path)


@pytest.mark.parametrize("provider", ["azure", "gitlab"])
def test_replay_file_that_is_not_an_object_of_strings_names_the_file(provider, tmp_path):
    github_payload = str(GH / "push.with-new-branch.json")  # a webhook payload is not a variable dump
    with pytest.raises(EventError, match=r"push\.with-new-branch\.json: a variables file must be a JSON object"):
        sources.replay_event(provider, github_payload, None, {}, tmp_path)
    broken = tmp_path / "vars.json"
    broken.write_text('{"TF_BUILD": "True",}')
    with pytest.raises(EventError, match=r"vars\.json:1:\d+: invalid JSON"):
        sources.replay_event(provider, str(broken), None, {}, tmp_path)


@pytest.mark.parametrize("provider", ["azure", "gitlab"])
def test_replay_rollback_without_reason_is_an_event_error(provider, tmp_path):
    variables = {**_vars(provider, "manual.rollback.json"), "PROMOTE_REASON": ""}
    with pytest.raises(EventError, match=r"a rollback needs a reason \(.*PROMOTE_REASON"):
        sources.replay_event(provider, None, None, variables, tmp_path)


def test_replay_bad_to_version_names_the_variable(tmp_path):
    path = tmp_path / "vars.json"
    path.write_text(json.dumps({**_vars("gitlab", "manual.rollback.json"), "PROMOTE_TO_VERSION": "latest"}))
    with pytest.raises(EventError, match="PROMOTE_TO_VERSION must be a model version number"):
        sources.replay_event("gitlab", str(path), None, {}, tmp_path)


@pytest.mark.parametrize("provider", ["local", "bitbucket"])
def test_replay_needs_a_ci_provider(provider):
    with pytest.raises(EventError, match="replay --provider must be one of github, azure, gitlab"):
        sources.replay_event(provider, None, None, {}, ".")


def test_replay_event_name_is_github_only(tmp_path):
    with pytest.raises(EventError, match="--event-name"):
        sources.replay_event("azure", None, "push", _vars("azure", "push.main.json"), tmp_path)


@pytest.mark.parametrize("provider,sha_variable", [("azure", "BUILD_SOURCEVERSION"), ("gitlab", "CI_COMMIT_SHA")])
def test_replay_fills_the_tree_from_the_local_checkout(provider, sha_variable, git_repo: Path, tmp_path):
    sha, tree = _head(git_repo)
    path = tmp_path / "vars.json"
    path.write_text(json.dumps({**_vars(provider, "push.release-1.0.json"), sha_variable: sha}))
    ev = sources.replay_event(provider, str(path), None, {}, git_repo)
    assert (ev.sha, ev.commit, ev.tree_sha) == (sha, sha, tree)


def test_replay_pr_tree_is_the_head_commits(git_repo: Path, tmp_path):
    git(git_repo, "checkout", "-q", "-b", "feature/recall-boost")
    (git_repo / "g.txt").write_text("y")
    git(git_repo, "add", "g.txt")
    git(git_repo, "commit", "-q", "-m", "y")
    head, tree = _head(git_repo)
    variables = {**_vars("azure", "pull_request.json"), "SYSTEM_PULLREQUEST_SOURCECOMMITID": head}
    ev = sources.replay_event("azure", None, None, variables, git_repo)
    assert (ev.head_sha, ev.commit, ev.tree_sha) == (head, head, tree)


# ------------------------------------------------------------------ local git


def test_local_push_reads_branch_sha_and_tree(git_repo: Path):
    git(git_repo, "checkout", "-q", "-b", "feature/x")
    (git_repo / "f.txt").write_text("x")
    git(git_repo, "add", "f.txt")
    git(git_repo, "commit", "-q", "-m", "x")
    ev = sources.from_local(git_repo)
    assert ev.provider == "local"
    assert (ev.kind, ev.branch) == ("push", "feature/x")
    assert (ev.sha, ev.tree_sha) == _head(git_repo)
    assert ev.actor == "Test Author"
    assert (ev.action, ev.reason, ev.to_version) == (None, None, None)


def test_local_pull_request_uses_head_of_source_branch(git_repo: Path):
    git(git_repo, "branch", "feature/y")
    git(git_repo, "checkout", "-q", "feature/y")
    (git_repo / "g.txt").write_text("y")
    git(git_repo, "add", "g.txt")
    git(git_repo, "commit", "-q", "-m", "y")
    head = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-q", "main")
    ev = sources.from_local(git_repo, kind="pull_request", source_branch="feature/y", target_branch="main")
    assert (ev.kind, ev.source_branch, ev.target_branch, ev.head_sha) == ("pull_request", "feature/y", "main", head)


def test_local_detached_head_needs_branch(git_repo: Path):
    git(git_repo, "checkout", "-q", "--detach")
    with pytest.raises(EventError, match="detached"):
        sources.from_local(git_repo)
    ev = sources.from_local(git_repo, branch="release/1.0")
    assert ev.branch == "release/1.0"


def test_local_pull_request_needs_target(git_repo: Path):
    with pytest.raises(EventError, match="--into"):
        sources.from_local(git_repo, kind="pull_request", source_branch="main")


def test_local_unknown_kind(git_repo: Path):
    with pytest.raises(EventError, match="--event must be one of"):
        sources.from_local(git_repo, kind="deploy")


def test_local_manual_rollback_carries_who_and_why(git_repo: Path):
    ev = sources.from_local(
        git_repo,
        kind="manual",
        branch="main",
        action="rollback",
        actor="kim",
        reason="INC-991 calibration drift",
        to_version=3,
    )
    assert (ev.kind, ev.branch, ev.action, ev.reason, ev.to_version, ev.actor) == (
        "manual",
        "main",
        "rollback",
        "INC-991 calibration drift",
        3,
        "kim",
    )
    assert ev.sha == git(git_repo, "rev-parse", "main")
    previous = sources.from_local(git_repo, kind="manual", action="rollback", reason="back to previous")
    assert (previous.to_version, previous.actor) == (None, "Test Author")
    assert sources.from_local(git_repo, kind="manual", to_version="4", action="rollback", reason="r").to_version == 4


def test_local_manual_defaults_to_run_and_keeps_a_reason(git_repo: Path):
    ev = sources.from_local(git_repo, kind="manual")
    assert (ev.action, ev.reason) == ("run", None)
    assert sources.from_local(git_repo, kind="manual", action="score", reason="re-score").reason == "re-score"


NEEDS_REASON = r"^a rollback needs a reason \(workflow_dispatch input 'reason' / PROMOTE_REASON / --reason\)$"
ROLLBACK = {"kind": "manual", "action": "rollback"}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (ROLLBACK, NEEDS_REASON),
        ({**ROLLBACK, "reason": "   "}, NEEDS_REASON),
        ({**ROLLBACK, "reason": "r", "to_version": "v2"}, r"^--to-version must be a model version"),
        ({**ROLLBACK, "reason": "r", "to_version": 0}, r"^--to-version must be a model version"),
        ({"kind": "manual", "action": "run", "to_version": 2}, r"^--to-version is only for action 'rollback'"),
        ({"kind": "manual", "action": "deploy"}, r"^--action must be one of"),
        ({"kind": "push", "reason": "why"}, r"^--reason and --to-version go with a manual event"),
        ({"kind": "push", "to_version": 2}, r"^--reason and --to-version go with a manual event"),
    ],
)
def test_local_manual_errors(kwargs, message, git_repo: Path):
    with pytest.raises(EventError, match=message):
        sources.from_local(git_repo, **kwargs)


def test_local_manual_errors_come_before_git(tmp_path: Path):
    """An invalid request is reported as such even outside a repository."""
    with pytest.raises(EventError, match="a rollback needs a reason"):
        sources.from_local(tmp_path / "not-a-repo", kind="manual", action="rollback")


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
    on_trunk = sources.from_local(clone, branch="trunk")
    assert on_trunk.default_branch == "trunk"
    assert planning.build(on_trunk, settings).environment == "staging"
    assert planning.build(sources.from_local(clone, branch="main"), settings).environment == "dev"
