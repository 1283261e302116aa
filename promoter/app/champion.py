"""The one function that moves the ``champion`` alias, under the alias lock, and records it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promoter import errors
from promoter.app.recording import Recorder, decision_id
from promoter.core import tags

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.registry import Registry


def move_champion(
    registry: "Registry",
    settings: "Settings",
    recorder: Recorder,
    version: int,
    *,
    decision: str | None,
    approved: bool,
    expected_current: int | None,
    kind: str = "alias_move",
    actor: str | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Move ``champion`` to ``version`` (the old champion becomes ``previous``) and record it.

    Holds the alias lock and re-reads the champion first (invariant 6).

    Returns:
        ``False`` when ``version`` already is champion (a re-run), ``True`` when it moved.

    Raises:
        PromoteError: when the champion is not ``expected_current`` (another run moved it).
    """
    model_name = recorder.model_name
    with registry.lock(f"alias.{model_name}", timeout_seconds=600):
        current = registry.get_alias(model_name, tags.CHAMPION)
        if current == version:
            return False
        if current != expected_current:
            raise errors.PromoteError(
                f"{model_name}: champion is version {current}, expected {expected_current}; "
                "another run moved it: re-run the event"
            )
        if current is not None:
            registry.set_alias(model_name, tags.PREVIOUS, current)
        registry.set_alias(model_name, tags.CHAMPION, version)
        if settings.project.registry.use_stages:
            stage = "Production" if recorder.environment == settings.promotion.prod_environment else "Staging"
            registry.transition_stage(model_name, version, stage, archive_existing=True)
        rid = decision_id(kind, model_name, current, version, decision)
        registry.set_version_tags(model_name, version, {tags.DECISION_ID: decision or rid})
        recorder.record(
            kind,
            record_id=rid,
            candidate_version=version,
            champion_version=current,
            decision_id=decision,
            verdict="MOVED",
            actor=actor,
            details={"alias": tags.CHAMPION, "from": current, "to": version, "approved": approved, **(extra or {})},
        )
    return True
