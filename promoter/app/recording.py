"""Appending decision records: the audit chain in the registry, mirrored to the lake.

Every decision a run or a person makes goes through :meth:`Recorder.record`: one record
appended to the (model, environment)'s chain (idempotent for a deterministic id, so a re-run adds
nothing) and the same row appended to the Delta mirror under ``<lake>/audit/decisions``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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
    """

    settings: "Settings"
    store: "AuditStore"
    environment: str
    model_name: str
    actor: str
    event: Mapping[str, Any]
    clock: Callable[[], datetime]

    def now_iso(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="seconds")

    def record(self, kind: str, *, record_id: str | None = None, actor: str | None = None, **fields: Any) -> "Record":
        """Append one record (returns the stored one when ``record_id`` is already in the chain).

        The mirror skips a record it already holds, so a re-run adds no row there either.
        """
        from promoter import lake

        rec = audit.append(
            self.store,
            kind=kind,
            environment=self.environment,
            created_at=self.now_iso(),
            record_id=record_id,
            registered_model=self.model_name,
            actor=actor or self.actor,
            event=dict(self.event),
            commit=self.event.get("head_sha") or self.event.get("sha"),
            **fields,
        )
        lake.append_audit([rec], lake.audit_table_path(self.settings.project.lake))
        return rec

    def chain(self) -> list["Record"]:
        """This (model, environment)'s whole chain (for the decisions that look back: holds, approvals).

        Keyed by the registered model: another model's holds and approvals are never in it.
        """
        return self.store.read_all(self.model_name)
