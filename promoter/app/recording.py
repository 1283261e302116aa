"""Appending decision records: the audit chain in the registry, mirrored to the lake.

Every decision a run or a person makes goes through :meth:`Recorder.record`: one record
appended to the (model, environment)'s chain (idempotent for a deterministic id, so a re-run adds
nothing) and the same row appended to the Delta mirror under ``<lake>/audit/decisions``. In the
prod environment the chain's new head is then anchored outside the tracking server
(:mod:`promoter.app.anchoring`: a git note and a lake row); an anchor that cannot be written is
a warning (:attr:`Recorder.warnings`), never a lost decision.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.core import audit

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.core.audit import AuditStore, Record


def decision_id(*parts: Any) -> str:
    """A deterministic id: the same inputs (a re-run of the same event) give the same id."""
    blob = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class Recorder:
    """Appends records for one (model, environment) on behalf of one event or person.

    Attributes:
        settings: the environment's settings (lake root for the mirror).
        store: the audit store of the registry.
        environment: the chain.
        model_name: the registered model the records are about.
        actor: who acts (the CI actor, or the person running the command).
        event: the event as a dict (recorded with each record).
        clock: the time source.
        repo_path: the git checkout prod anchors are noted in (default: the repository of the
            project's config files, else the working directory).
        warnings: what could not be done without losing a decision (anchor writes), in order.
        on_warning: called with each warning (default: a line on stderr); a run adds them to
            its result's notes.
    """

    settings: "Settings"
    store: "AuditStore"
    environment: str
    model_name: str
    actor: str
    event: Mapping[str, Any]
    clock: Callable[[], datetime]
    repo_path: str | Path | None = None
    warnings: list[str] = field(default_factory=list)
    on_warning: Callable[[str], None] | None = None

    def now_iso(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="seconds")

    def record(self, kind: str, *, record_id: str | None = None, actor: str | None = None, **fields: Any) -> "Record":
        """Append one record (returns the stored one when ``record_id`` is already in the chain).

        The mirror skips a record it already holds, so a re-run adds no row there either. A
        record appended by this call in the prod environment is anchored (git note and lake row);
        a record a re-run found already stored is not anchored again (its anchor, written then,
        would come after newer ones).
        """
        from promoter import lake

        created_at = self.now_iso()
        rec = audit.append(
            self.store,
            kind=kind,
            environment=self.environment,
            created_at=created_at,
            record_id=record_id,
            registered_model=self.model_name,
            actor=actor or self.actor,
            event=dict(self.event),
            commit=self.event.get("head_sha") or self.event.get("sha"),
            **fields,
        )
        lake.append_audit([rec], lake.audit_table_path(self.settings.project.lake))
        appended = record_id is None or rec.created_at == created_at
        if appended:
            self._anchor(rec)
        return rec

    def _anchor(self, rec: "Record") -> None:
        """Anchor ``rec`` as the chain's head in every anchors store (prod only); failures are warnings."""
        from promoter.app import anchoring

        if not anchoring.is_anchored(self.settings, self.environment):
            return
        repo = self.repo_path if self.repo_path is not None else anchoring.project_repo(self.settings)
        anchor = audit.anchor_of(rec, self.now_iso())
        for message in anchoring.write(anchor, self.settings, repo, rec.commit):
            self.warn(message)

    def warn(self, message: str) -> None:
        """Keep ``message`` in :attr:`warnings` and pass it on (``on_warning``, else stderr)."""
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def chain(self) -> list["Record"]:
        """This (model, environment)'s whole chain (for the decisions that look back: holds, approvals).

        Keyed by the registered model: another model's holds and approvals are never in it.
        """
        return self.store.read_all(self.model_name)
