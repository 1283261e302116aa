"""Reading the record: history and verification of the audit chains."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import config

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.audit import Record


def _store_and_chains(config_dir: str | Path, env: str | None) -> tuple[Any, dict[str, str]]:
    """The audit store and this project's chains: {environment: chain} (one per registered model)."""
    from promoter.app.connect import open_registry

    base = config.load(config_dir, env)
    envs = [env] if env else list(base.promotion.environments)
    return open_registry(base).audit_store(), {e: base.model_name_for(e) for e in envs}


def history(config_dir: str | Path, env: str | None) -> list["Record"]:
    """Every record of this project's chain in ``env`` (or in every environment), oldest first.

    Other models' chains in the same registry are not read.
    """
    store, chains = _store_and_chains(config_dir, env)
    out: list["Record"] = []
    for chain in chains.values():
        out.extend(store.read_all(chain))
    return out


def verify(config_dir: str | Path, env: str | None) -> dict[str, Any]:
    """Verify each of this project's chains against its recorded head: {environment: VerifyResult}."""
    from promoter.core import audit

    store, chains = _store_and_chains(config_dir, env)
    return {e: audit.verify(store.read_all(c), head=store.head(c)) for e, c in chains.items()}
