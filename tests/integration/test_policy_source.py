"""Invariant 4: a PR's gate policy comes from the protected target branch, never the PR head."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.core import events
from promoter.app import run as runner
from promoter.errors import GitError
from tests.conftest import git


def _lower_threshold_on(repo: Path, branch: str) -> None:
    git(repo, "checkout", "-q", "-b", branch)
    p = repo / "configs" / "base" / "promotion.yml"
    p.write_text(p.read_text().replace("min_absolute_improvement: 0.005", "min_absolute_improvement: 0.0")
                 .replace("floors: {roc_auc: 0.65}", "floors: {roc_auc: 0.10}"))
    git(repo, "commit", "-qam", "lower the bar")


def test_pr_that_lowers_the_threshold_is_judged_by_the_base_branch(git_repo: Path):
    _lower_threshold_on(git_repo, "feature/lower-bar")
    event = events.from_local(git_repo, kind="pull_request", source_branch="feature/lower-bar", target_branch="main")
    prepared = runner.prepare(event, git_repo / "configs", git_repo)
    # the head's working tree has the lowered values ...
    assert prepared.settings.promotion.policy("prod").min_absolute_improvement == 0.0
    assert prepared.settings.promotion.policy("staging").floors["roc_auc"] == 0.10
    # ... but the policy the run uses is main's
    assert prepared.policy_settings.promotion.policy("prod").min_absolute_improvement == 0.005
    assert prepared.policy_settings.promotion.policy("staging").floors["roc_auc"] == 0.65
    assert any("changes the promotion policy" in n for n in prepared.plan.notes)
    assert any("target branch 'main'" in n for n in prepared.plan.notes)


def test_pr_that_keeps_the_policy_is_not_flagged(git_repo: Path):
    git(git_repo, "checkout", "-q", "-b", "feature/docs")
    (git_repo / "README.md").write_text("docs\n")
    git(git_repo, "commit", "-qam", "docs")
    event = events.from_local(git_repo, kind="pull_request", source_branch="feature/docs", target_branch="main")
    prepared = runner.prepare(event, git_repo / "configs", git_repo)
    assert not any("changes the promotion policy" in n for n in prepared.plan.notes)


def test_unreadable_target_branch_is_a_clear_error(git_repo: Path):
    event = events.Event(kind="pull_request", provider="local", branch="trunk", source_branch="main",
                         target_branch="trunk")
    with pytest.raises(GitError, match="git fetch origin trunk"):
        runner.prepare(event, git_repo / "configs", git_repo)


def test_push_events_use_the_checked_out_policy(git_repo: Path):
    event = events.from_local(git_repo, kind="push", branch="main")
    prepared = runner.prepare(event, git_repo / "configs", git_repo)
    assert prepared.policy_settings is prepared.settings
