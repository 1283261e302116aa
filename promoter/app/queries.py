"""Reading the record: history and verification of the audit chains."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import config

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.audit import Record


def _store_and_envs(config_dir: str | Path, env: str | None) -> tuple[Any, list[str]]:
    from promoter.app.connect import open_registry

    base = config.load(config_dir, env)
    return open_registry(base).audit_store(), [env] if env else list(base.promotion.environments)


def history(config_dir: str | Path, env: str | None) -> list["Record"]:
    """Every record of one chain (or of all chains), oldest first."""
    store, envs = _store_and_envs(config_dir, env)
    out: list["Record"] = []
    for name in envs:
        out.extend(store.read_all(name))
    return out


def verify(config_dir: str | Path, env: str | None) -> dict[str, Any]:
    """Verify each chain against its recorded head; returns {environment: VerifyResult}."""
    from promoter.core import audit

    store, envs = _store_and_envs(config_dir, env)
    return {name: audit.verify(store.read_all(name), head=store.head(name)) for name in envs}
