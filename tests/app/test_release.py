"""`promote cut-release` on real git repos in tmp_path, with a bare repository as the remote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promoter import config, errors
from promoter.app.release import (
    ReleaseRefused,
    cut_release,
    mlflow_readiness,
    release_names,
    render,
    staging_candidate_passed,
)
from tests.conftest import CONFIGS, git, run_promote


def ready(sha: str) -> tuple[bool, str]:
    return True, f"hrob-risk-staging version 4 was built from {sha[:12]} and passed its expectations"


def not_ready(sha: str) -> tuple[bool, str]:
    return False, f"no version of hrob-risk-staging was built from {sha[:12]}"


def must_not_be_called(sha: str) -> tuple[bool, str]:
    raise AssertionError("readiness must not be asked")


@pytest.fixture
def settings():
    return config.load(CONFIGS)


@pytest.fixture
def remote(git_repo: Path, tmp_path: Path) -> Path:
    """A bare repository as ``origin``, holding ``main``."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(git_repo, "remote", "add", "origin", str(bare))
    git(git_repo, "push", "-q", "origin", "main")
    return bare


def refs(repo: Path) -> set[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)")
    return set(out.splitlines())


def head_sha(repo: Path, rev: str = "main") -> str:
    return git(repo, "rev-parse", rev)


def clone_and_push(remote: Path, tmp_path: Path, *, branch: str = "main", new_branch: str | None = None) -> None:
    """Another engineer: clone, commit, push (to ``branch`` or a new branch)."""
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    if new_branch:
        git(other, "checkout", "-q", "-b", new_branch)
    (other / "change.txt").write_text("someone else's change\n")
    git(other, "add", "change.txt")
    git(other, "commit", "-q", "-m", "another change")
    git(other, "push", "-q", "origin", new_branch or branch)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name,version,branch,tag",
    [
        (None, "1.2", "release/1.2", "v1.2"),
        (None, "v1.2", "release/1.2", "v1.2"),
        ("release/1.2", None, "release/1.2", "v1.2"),
        ("release/2024.06", None, "release/2024.06", "v2024.06"),
        ("release/spring", None, "release/spring", "spring"),
        ("release/readmission/1.0", None, "release/readmission/1.0", "readmission-v1.0"),
    ],
)
def test_release_names(name, version, branch, tag):
    names = release_names(name, version)
    assert (names.branch, names.tag) == (branch, tag)


def test_a_project_under_models_releases_from_its_own_branch_and_tag():
    names = release_names(None, "1.0", "readmission")
    assert (names.branch, names.tag) == ("release/readmission/1.0", "readmission-v1.0")
    assert release_names(None, "1.0") != names  # the root project's v1.0 is another tag


@pytest.mark.parametrize(
    "name,version", [(None, None), ("release/1", "1"), ("release", None), (None, "1/2"), (None, "")]
)
def test_bad_names_are_invalid_input(name, version):
    with pytest.raises(errors.InvalidInput):
        release_names(name, version)


# --------------------------------------------------------------------------- happy path and push


def test_happy_path_creates_branch_and_annotated_tag_without_checkout(git_repo, remote, settings):
    sha = head_sha(git_repo)
    result = cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert (result.branch, result.tag, result.sha, result.pushed) == ("release/1.2", "v1.2", sha, False)
    assert head_sha(git_repo, "release/1.2") == sha
    assert head_sha(git_repo, "v1.2^{commit}") == sha
    assert git(git_repo, "cat-file", "-t", "v1.2") == "tag"  # annotated, not lightweight
    message = git(git_repo, "tag", "-l", "--format=%(contents)", "v1.2")
    assert f"Release release/1.2 from main @ {sha}" in message and "Readiness: hrob-risk-staging version 4" in message
    assert git(git_repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # nothing checked out
    assert git(remote, "for-each-ref", "--format=%(refname)").splitlines() == ["refs/heads/main"]
    # what CI will do next: the push of release/1.2 resolves to prod and runs the release steps
    assert result.plan.environment == "prod" and result.plan.registered_model == "hrob-risk-prod"
    assert result.plan.step_names()[:3] == ["contracts", "features", "train"] and "gate" in result.plan.step_names()
    text = render(result)
    assert "once pushed, CI will run in prod" in text and "git push --atomic origin release/1.2 v1.2" in text


def test_push_puts_branch_and_tag_on_the_remote(git_repo, remote, settings):
    sha = head_sha(git_repo)
    result = cut_release(str(git_repo), name="release/1.2", push=True, readiness=ready, settings=settings)
    assert result.pushed and result.remote == "origin"
    remote_refs = git(remote, "for-each-ref", "--format=%(refname) %(objecttype) %(*objectname)%(objectname)")
    lines = dict(line.split(" ", 1) for line in remote_refs.splitlines())
    assert lines["refs/heads/release/1.2"] == f"commit {sha}"
    assert lines["refs/tags/v1.2"].startswith("tag " + sha)  # annotated tag of that commit
    assert "CI will now run in prod" in render(result)


def test_force_with_reason_skips_readiness_and_records_the_reason(git_repo, remote, settings):
    result = cut_release(
        str(git_repo),
        version="1.3",
        force=True,
        reason="hotfix INC-42, staging is down",
        readiness=must_not_be_called,
        settings=settings,
    )
    assert result.forced
    message = git(git_repo, "tag", "-l", "--format=%(contents)", "v1.3")
    assert "Forced: hotfix INC-42, staging is down" in message


def test_force_without_reason_is_refused(git_repo, remote, settings):
    with pytest.raises(errors.InvalidInput, match="--force needs --reason"):
        cut_release(str(git_repo), version="1.3", force=True, reason="  ", settings=settings)
    assert not any(r.startswith(("refs/heads/release", "refs/tags/")) for r in refs(git_repo))


def test_a_rejected_push_leaves_nothing_behind(git_repo, remote, settings):
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'release branches are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(errors.GitError, match="push to 'origin' failed"):
        cut_release(str(git_repo), version="1.2", push=True, readiness=ready, settings=settings)
    assert "refs/heads/release/1.2" not in refs(git_repo) and "refs/tags/v1.2" not in refs(git_repo)


# --------------------------------------------------------------------------- refusals


def assert_nothing_created(repo: Path, remote: Path | None = None) -> None:
    assert not any(r.startswith(("refs/heads/release", "refs/tags/v")) for r in refs(repo))
    if remote is not None:
        assert not any(r.startswith(("refs/heads/release", "refs/tags/v")) for r in refs(remote))


@pytest.mark.parametrize("make_dirty", ["modified", "staged", "untracked"])
def test_refuses_a_dirty_tree(git_repo, remote, settings, make_dirty):
    if make_dirty == "modified":
        (git_repo / "README.md").write_text("edited\n")
    elif make_dirty == "staged":
        (git_repo / "new.txt").write_text("x\n")
        git(git_repo, "add", "new.txt")
    else:
        (git_repo / "scratch.py").write_text("x = 1\n")
    with pytest.raises(ReleaseRefused, match="uncommitted or untracked changes"):
        cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert_nothing_created(git_repo)


def test_refuses_a_missing_source_branch(git_repo, remote, settings):
    with pytest.raises(ReleaseRefused, match="source branch 'develop' does not exist"):
        cut_release(str(git_repo), source="develop", version="1.2", readiness=ready, settings=settings)
    assert_nothing_created(git_repo)


def test_refuses_a_source_behind_its_remote(git_repo, remote, settings, tmp_path):
    clone_and_push(remote, tmp_path)
    with pytest.raises(ReleaseRefused, match=r"'main' is 1 commit\(s\) behind origin/main"):
        cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert_nothing_created(git_repo, remote)


def test_a_source_ahead_of_its_remote_is_noted(git_repo, remote, settings):
    (git_repo / "more.txt").write_text("x\n")
    git(git_repo, "add", "more.txt")
    git(git_repo, "commit", "-q", "-m", "local only")
    result = cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert any("1 commit(s) ahead of origin/main" in n for n in result.notes)


def test_refuses_a_branch_that_exists_locally(git_repo, remote, settings):
    git(git_repo, "branch", "release/1.2")
    with pytest.raises(ReleaseRefused, match="branch 'release/1.2' already exists locally"):
        cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert "refs/tags/v1.2" not in refs(git_repo)


def test_refuses_a_tag_that_exists_locally(git_repo, remote, settings):
    git(git_repo, "tag", "v1.2")
    with pytest.raises(ReleaseRefused, match="tag 'v1.2' already exists locally"):
        cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert "refs/heads/release/1.2" not in refs(git_repo)


def test_refuses_a_branch_that_exists_on_the_remote(git_repo, remote, settings, tmp_path):
    clone_and_push(remote, tmp_path, new_branch="release/1.2")
    with pytest.raises(ReleaseRefused, match="branch 'release/1.2' already exists on origin"):
        cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert_nothing_created(git_repo)


def test_refuses_when_the_source_commit_is_not_ready(git_repo, remote, settings):
    sha = head_sha(git_repo)
    with pytest.raises(
        ReleaseRefused,
        match=rf"main @ {sha[:12]} is not ready for release: no version of "
        r"hrob-risk-staging.*--force --reason",
    ):
        cut_release(str(git_repo), version="1.2", readiness=not_ready, settings=settings)
    assert_nothing_created(git_repo, remote)


def test_refuses_a_name_outside_the_prod_rules(git_repo, remote, settings):
    with pytest.raises(ReleaseRefused, match="'hotfix/1.2' resolves to dev"):
        cut_release(str(git_repo), name="hotfix/1.2", readiness=must_not_be_called, settings=settings)
    assert_nothing_created(git_repo)


def test_refuses_push_without_the_remote(git_repo, settings):
    with pytest.raises(ReleaseRefused, match="no remote called 'origin'"):
        cut_release(str(git_repo), version="1.2", push=True, readiness=ready, settings=settings)


def test_without_a_remote_a_local_release_is_still_possible(git_repo, settings):
    result = cut_release(str(git_repo), version="1.2", readiness=ready, settings=settings)
    assert result.remote is None and any("no remote 'origin'" in n for n in result.notes)


# --------------------------------------------------------------------------- readiness from a real MLflow store


def _register(uri: str, model: str, sha: str, expectations: str) -> int:
    from mlflow import MlflowClient

    source = Path(uri.removeprefix("sqlite:///")).parent / "artifacts" / "model"
    source.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        client.create_registered_model(model)
    except Exception:  # already there
        pass
    mv = client.create_model_version(
        model, source=source.as_uri(), tags={"promote.commit": sha, "promote.expectations": expectations}
    )
    return int(mv.version)


@pytest.mark.e2e
def test_readiness_from_mlflow_and_the_cli_end_to_end(git_repo, remote, mlflow_uri, tmp_path):
    sha = head_sha(git_repo)
    # a failing candidate for this commit, and a passing one for another commit: not ready
    _register(mlflow_uri, "hrob-risk-staging", sha, "FAIL")
    _register(mlflow_uri, "hrob-risk-staging", "f" * 40, "PASS")
    ok, why = staging_candidate_passed(mlflow_uri, None, "hrob-risk-staging", sha)
    assert not ok and "none passed its expectations (v1: FAIL)" in why
    ok, why = staging_candidate_passed(mlflow_uri, None, "hrob-risk-nope", sha)
    assert not ok and "no version of hrob-risk-nope" in why

    # the default readiness check, wired from the staging settings (their tracking URI)
    staging = config.load(CONFIGS, "staging", environ={"MLFLOW_TRACKING_URI": mlflow_uri})
    with pytest.raises(ReleaseRefused, match=r"is not ready for release: .*\(v1: FAIL\)"):
        cut_release(
            str(git_repo), version="1.2", push=True, readiness=mlflow_readiness(staging), settings=config.load(CONFIGS)
        )
    assert_nothing_created(git_repo, remote)

    env = {"MLFLOW_TRACKING_URI": mlflow_uri}

    version = _register(mlflow_uri, "hrob-risk-staging", sha, "PASS")
    done = run_promote("cut-release", "--version", "1.2", "--push", cwd=git_repo, env=env)
    assert done.returncode == 0, done.stderr
    assert f"hrob-risk-staging version {version} was built from {sha[:12]}" in done.stdout
    assert "pushed:       release/1.2 and v1.2 to origin" in done.stdout
    assert "CI will now run in prod" in done.stdout and "gate" in done.stdout
    assert {"refs/heads/release/1.2", "refs/tags/v1.2"} <= refs(remote)


@pytest.mark.e2e
def test_cli_force_and_repo_option(git_repo, remote, tmp_path):
    shutil.copytree(CONFIGS, tmp_path / "elsewhere-configs")
    done = run_promote(
        "cut-release",
        "--repo",
        str(git_repo),
        "--name",
        "release/2.0",
        "--force",
        "--reason",
        "first release, staging registry not set up yet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "readiness check skipped (--force): first release" in done.stdout
    assert "refs/heads/release/2.0" in refs(git_repo)
    bad = run_promote("cut-release", "--repo", str(git_repo), "--version", "2.1", "--force", cwd=tmp_path)
    assert bad.returncode == 2 and "--force needs --reason" in bad.stderr
