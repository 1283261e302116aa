"""Invariant 4: what a pull request could use to weaken its own checks comes from the target branch.

A PR's head brings what is under test: training, features, contracts, their code and config.
It does not bring what judges it: the branch rules, the steps matrix, the gate and
expectation policy, the approvals (all of ``promotion.yml``), nor where its results go (the
registered model names, the tracking and registry URIs, the experiment). Those are taken
from the protected target branch; a PR that changes them is told so, and the change applies
after merge. Pure: settings in, settings and notes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promoter.config import Settings

# project.yml fields that decide where a run writes: a PR must not point them elsewhere
PROTECTED_PROJECT_FIELDS = ("model_name", "registry", "tracking_uri", "registry_uri", "experiment")


def _changed(head: Any, target: Any, prefix: str) -> list[str]:
    """Dotted keys whose values differ between two plain-data trees (mappings compared key by key)."""
    if isinstance(head, Mapping) and isinstance(target, Mapping):
        out: list[str] = []
        for key in sorted(set(head) | set(target), key=str):
            out += _changed(head.get(key), target.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if head == target else [prefix]


def protected_settings(head: Settings, target: Settings) -> tuple[Settings, list[str]]:
    """The settings a PR runs with: the head's, with the protected parts of the target's.

    Args:
        head: settings as the PR head has them (what is under test).
        target: settings as the target branch has them, for the same environment.

    Returns:
        (settings to run with, the protected keys the PR changes, e.g. ``promotion.steps.staging``).
    """
    changed = _changed(head.promotion.model_dump(mode="json"), target.promotion.model_dump(mode="json"), "promotion")
    head_project = head.project.model_dump(mode="json")
    target_project = target.project.model_dump(mode="json")
    update: dict[str, Any] = {}
    for name in PROTECTED_PROJECT_FIELDS:
        changed += _changed(head_project.get(name), target_project.get(name), f"project.{name}")
        update[name] = getattr(target.project, name)
    project = head.project.model_copy(update=update)
    return head.model_copy(update={"promotion": target.promotion, "project": project}), changed


def change_notes(changed: list[str], target_branch: str) -> list[str]:
    """What to tell the PR's reviewers about the protected settings it changes."""
    notes = [
        f"branch rules, steps, gate policy and approvals are read from the target branch "
        f"{target_branch!r} (never from the pull request head)"
    ]
    if changed:
        shown = ", ".join(_collapse(changed)[:8])
        more = len(_collapse(changed)) - 8
        notes.append(
            f"this pull request changes protected settings ({shown}{f' and {more} more' if more > 0 else ''}): "
            "they apply after merge, not to this run"
        )
    return notes


def _collapse(keys: list[str]) -> list[str]:
    """Shorten ``promotion.gate.staging.floors.roc_auc`` lists to at most three segments each, once."""
    seen: list[str] = []
    for key in keys:
        short = ".".join(key.split(".")[:4])
        if short not in seen:
            seen.append(short)
    return seen
