"""Anchoring the audit chain outside the tracking server, and reading the anchors back.

At each prod decision (:meth:`promoter.app.recording.Recorder.record`) the chain's new head
(:class:`promoter.core.audit.Anchor`) is written to two stores the tracking server cannot
rewrite:

* ``git``: one JSON line in a note on the release commit under ``refs/notes/promote-audit``
  (:mod:`promoter.gitops`), pushed to ``origin`` when the clone has one (best effort: CI);
* ``lake``: a row of the Delta table ``<lake>/audit/anchors``, beside the audit mirror
  (:mod:`promoter.lake`).

A store that cannot be written is a warning, never a lost decision: the record is already in
the chain. ``promote audit verify --anchors`` reads both and checks each chain against each
store with :func:`promoter.core.audit.check_anchors`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from promoter import errors

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.core.audit import Anchor

STORES: tuple[str, ...] = ("git", "lake")
PUSH_REMOTE = "origin"
NO_PUSH_ENV = "PROMOTE_AUDIT_ANCHOR_PUSH"
"""Set to ``0`` to keep the git anchors local (no push to ``origin``)."""


def is_anchored(settings: "Settings", environment: str) -> bool:
    """True when decisions of ``environment`` are anchored (the prod environment only)."""
    return environment == settings.promotion.prod_environment


def project_repo(settings: "Settings") -> str:
    """The git checkout the project's config files are in (its repository), else the working directory."""
    for source in settings.sources:
        path = Path(source)
        if path.is_file():
            return str(path.resolve().parent)
    return "."


def write(anchor: "Anchor", settings: "Settings", repo: str | os.PathLike[str], commit: str | None) -> list[str]:
    """Write ``anchor`` to every store; returns one warning per store that failed (nothing raises).

    Args:
        anchor: the chain's new head.
        settings: the environment's settings (its lake).
        repo: the git checkout (the note goes on ``commit``, or on HEAD when it is not in this clone).
        commit: the release commit the decision was made for.
    """
    from promoter import gitops, lake

    warnings: list[str] = []
    where = f"{anchor.chain} seq {anchor.seq}"
    try:
        written = gitops.add_note_line(repo, anchor.to_json(), commit)
    except Exception as exc:  # noqa: BLE001 - an anchor that cannot be written is a warning
        warnings.append(f"audit anchor of {where} not written to git: {exc}")
        written = None
    if written is not None and os.environ.get(NO_PUSH_ENV, "1") != "0" and gitops.has_remote(repo, PUSH_REMOTE):
        try:
            gitops.push_notes(repo, PUSH_REMOTE, gitops.AUDIT_NOTES_REF)
        except Exception as exc:  # noqa: BLE001
            warnings.append(
                f"audit anchor of {where} is in the local git notes but was not pushed ({exc}); push it with "
                f"`git push {PUSH_REMOTE} {gitops.AUDIT_NOTES_REF}` (the job needs write access to the repository)"
            )
    try:
        lake.append_anchor(anchor, lake.anchors_table_path(settings.project.lake))
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"audit anchor of {where} not written to the lake: {type(exc).__name__}: {exc}")
    return warnings


def read(settings: "Settings", repo: str | os.PathLike[str]) -> dict[str, "list[Anchor] | None"]:
    """The anchors each store holds: ``{"git": [...], "lake": [...]}`` (``None``: store missing).

    Lines of a note that are not anchors are skipped (a note someone else wrote on the commit).

    Raises:
        InvalidInput: when a row of the lake's anchors table is not an anchor.
    """
    from promoter import gitops, lake
    from promoter.core.audit import Anchor, CorruptRecord

    lines = gitops.note_lines(repo, gitops.AUDIT_NOTES_REF)
    git_anchors: list[Anchor] | None = None
    if lines is not None:
        git_anchors = []
        for line in lines:
            try:
                git_anchors.append(Anchor.from_json(line))
            except CorruptRecord:
                continue
    try:
        lake_anchors = lake.read_anchors(lake.anchors_table_path(settings.project.lake))
    except CorruptRecord as exc:
        raise errors.InvalidInput(f"{lake.anchors_table_path(settings.project.lake)}: {exc}") from None
    return {"git": git_anchors, "lake": lake_anchors}
