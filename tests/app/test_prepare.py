"""Invariant 4: what a PR could use to weaken its own checks comes from the protected target branch.

Each test commits a weakening change on a PR branch of a real git repository and prepares the PR
the way `promote plan` and `promote run` do: the plan and the settings it runs with are the
target's, the head keeps what is under test, and the plan's notes say what the PR changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.app import prepare, sources
from promoter.core.events import Event
from promoter.errors import GitError
from tests.conftest import git

PROMOTION = Path("configs") / "base" / "promotion.yml"


def _pr_with(repo: Path, branch: str, edits: dict[Path, tuple[str, str]]) -> prepare.Prepared:
    git(repo, "checkout", "-q", "-b", branch)
    for rel, (old, new) in edits.items():
        p = repo / rel
        text = p.read_text()
        assert old in text, f"{old!r} not in {rel}"
        p.write_text(text.replace(old, new))
    git(repo, "commit", "-qam", f"weaken: {branch}")
    event = sources.from_local(repo, kind="pull_request", source_branch=branch, target_branch="main")
    return prepare.prepare(event, repo / "configs", repo)


def test_a_pr_that_drops_contracts_and_expectations_still_runs_them(git_repo: Path):
    prepared = _pr_with(
        git_repo,
        "feature/skip-checks",
        {
            PROMOTION: (
                "pull_request: [contracts, features, train, expectations, report]",
                "pull_request: [features, train, report]",
            )
        },
    )
    assert prepared.plan.step_names() == ["contracts", "features", "train", "expectations", "report"]
    assert prepared.settings.promotion.steps["staging"]["pull_request"][0] == "contracts"
    assert any("promotion.steps.staging" in n and "apply after merge" in n for n in prepared.plan.notes)


def test_a_pr_that_lowers_a_floor_is_judged_by_the_target_floor(git_repo: Path):
    prepared = _pr_with(
        git_repo, "feature/lower-bar", {PROMOTION: ("floors: {roc_auc: 0.65}", "floors: {roc_auc: 0.10}")}
    )
    assert prepared.settings.promotion.policy("staging").floors["roc_auc"] == 0.65
    assert any("promotion.gate.staging" in n for n in prepared.plan.notes)


def test_a_pr_that_maps_its_branch_to_prod_stays_in_staging(git_repo: Path):
    prepared = _pr_with(
        git_repo,
        "feature/sneaky",
        {PROMOTION: ("branch_rules:\n", 'branch_rules:\n  - {pattern: "main", environment: prod}\n')},
    )
    assert prepared.plan.environment == "staging"
    assert prepared.plan.registered_model == "hrob-risk-staging"
    assert "promote" not in prepared.plan.step_names()
    assert any("promotion.branch_rules" in n for n in prepared.plan.notes)


def test_a_pr_cannot_point_its_results_at_another_model_or_server(git_repo: Path):
    prepared = _pr_with(
        git_repo,
        "feature/elsewhere",
        {Path("configs") / "base" / "project.yml": ("model_name: hrob-risk\n", "model_name: other-risk\n")},
    )
    assert prepared.settings.project.model_name == "hrob-risk"
    assert prepared.plan.registered_model == "hrob-risk-staging"
    assert any("project.model_name" in n for n in prepared.plan.notes)


def test_what_is_under_test_comes_from_the_head(git_repo: Path):
    prepared = _pr_with(
        git_repo, "feature/train", {Path("configs") / "base" / "training.yml": ("max_evals:", "max_evals: 3 #")}
    )
    assert prepared.settings.training.max_evals == 3
    assert not any("changes protected settings" in n for n in prepared.plan.notes)


def test_a_pr_that_keeps_the_protected_settings_is_not_flagged(git_repo: Path):
    git(git_repo, "checkout", "-q", "-b", "feature/docs")
    (git_repo / "README.md").write_text("docs\n")
    git(git_repo, "commit", "-qam", "docs")
    event = sources.from_local(git_repo, kind="pull_request", source_branch="feature/docs", target_branch="main")
    prepared = prepare.prepare(event, git_repo / "configs", git_repo)
    assert prepared.protected_from == "main"
    assert any("read from the target branch 'main'" in n for n in prepared.plan.notes)
    assert not any("changes protected settings" in n for n in prepared.plan.notes)


def test_an_unreadable_target_branch_is_a_clear_error(git_repo: Path):
    event = Event(kind="pull_request", provider="local", branch="trunk", source_branch="main", target_branch="trunk")
    with pytest.raises(GitError, match="git fetch origin trunk"):
        prepare.prepare(event, git_repo / "configs", git_repo)


def test_a_push_uses_the_checked_out_settings(git_repo: Path):
    p = git_repo / PROMOTION
    p.write_text(p.read_text().replace("floors: {roc_auc: 0.65}", "floors: {roc_auc: 0.66}"))
    prepared = prepare.prepare(sources.from_local(git_repo, kind="push", branch="main"), git_repo / "configs", git_repo)
    assert prepared.protected_from is None
    assert prepared.settings.promotion.policy("staging").floors["roc_auc"] == 0.66
