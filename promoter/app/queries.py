"""Reading the record: history and verification of the audit chains (and of their anchors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import config

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.audit import AnchorProblem, Record


def _store_and_chains(config_dir: str | Path, env: str | None) -> tuple[Any, dict[str, str]]:
    """The audit store and this project's chains: {environment: chain} (one per registered model)."""
    from promoter.app.connect import open_registry

    base = config.load(config_dir, env)
    envs = [env] if env else list(base.promotion.environments)
    return open_registry(base, must_exist=True).audit_store(), {e: base.model_name_for(e) for e in envs}


def history(config_dir: str | Path, env: str | None) -> list["Record"]:
    """Every record of this project's chain in ``env`` (or in every environment), oldest first.

    Other models' chains in the same registry are not read.
    """
    from promoter.registry import local_store_missing

    base = config.load(config_dir, env)
    if local_store_missing(base.project.tracking_uri, base.project.registry_uri):
        return []  # nothing has run here yet; reading must not create an empty store
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


@dataclass(frozen=True)
class AnchorCheck:
    """What ``promote audit verify --anchors`` found for one environment's chain.

    Attributes:
        chain: the chain (its registered model).
        anchored: whether this environment's decisions are anchored (the prod environment).
        checked: how many anchors (of this chain) each store held: ``{"git": 3, "lake": 3}``.
        problems: every disagreement, each naming model, environment, seq and store.
        repo: the git checkout the notes were read from.
        lake: the anchors table read.
    """

    chain: str
    anchored: bool
    checked: dict[str, int] = field(default_factory=dict)
    problems: tuple["AnchorProblem", ...] = ()
    repo: str = ""
    lake: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON data."""
        return {
            "chain": self.chain,
            "anchored": self.anchored,
            "ok": self.ok,
            "checked": dict(self.checked),
            "problems": [p.to_dict() for p in self.problems],
            "repo": self.repo,
            "lake": self.lake,
        }


def verify_anchors(config_dir: str | Path, env: str | None, repo: str | Path | None = None) -> dict[str, AnchorCheck]:
    """Check each of this project's anchored chains against the anchors in git and in the lake.

    Only the prod environment's decisions are anchored; other environments are listed with
    ``anchored=False`` and nothing to check.

    Args:
        config_dir: the project's configs.
        env: one environment, or ``None`` for every environment.
        repo: the git checkout holding ``refs/notes/promote-audit`` (default: the repository of
            ``config_dir``).

    Returns:
        ``{environment: AnchorCheck}``.
    """
    from promoter import lake
    from promoter.app import anchoring
    from promoter.core import audit

    store, chains = _store_and_chains(config_dir, env)
    where = str(repo) if repo is not None else str(config_dir)
    out: dict[str, AnchorCheck] = {}
    for e, chain in chains.items():
        settings = config.load(config_dir, e)
        if not anchoring.is_anchored(settings, e):
            out[e] = AnchorCheck(chain, anchored=False)
            continue
        records = store.read_all(chain)
        found = anchoring.read(settings, where)
        problems: list[audit.AnchorProblem] = []
        checked: dict[str, int] = {}
        for name in anchoring.STORES:
            anchors = found[name]
            checked[name] = len({a.key for a in anchors or () if a.chain == chain})
            problems += audit.check_anchors(records, anchors, store=name, chain=chain, environment=e)
        out[e] = AnchorCheck(
            chain,
            anchored=True,
            checked=checked,
            problems=tuple(problems),
            repo=where,
            lake=lake.anchors_table_path(settings.project.lake),
        )
    return out
