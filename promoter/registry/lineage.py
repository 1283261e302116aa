"""Lineage: where a version came from (commit, tree, config, data), and its content key."""

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from promoter.core import tags as T
from promoter.errors import PromoteError

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.core.events import Event

# --------------------------------------------------------------------------- lineage


def _promote_version() -> str:
    try:
        from importlib.metadata import version

        return version("promote")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


def content_key(tree: str | None, config_hash: str | None, data_snapshot: str | None) -> str | None:
    """sha256 of tree sha + config hash + data snapshot id; ``None`` when any part is unknown.

    Without all three parts nothing can prove two runs would build the same model, so there
    is no key and every run trains (and registers) afresh.
    """
    if not (tree and config_hash and data_snapshot):
        return None
    return hashlib.sha256(f"{tree}\n{config_hash}\n{data_snapshot}".encode()).hexdigest()


@dataclass(frozen=True)
class Lineage:
    """Where a model came from: written as tags on the training run and on the model version.

    The train step builds it from the Event and the Settings (:meth:`from_event`); a bare
    ``promote train`` builds it from local git.
    """

    environment: str
    config_hash: str
    data_snapshot: str | None = None
    commit: str | None = None
    tree: str | None = None
    branch: str | None = None
    event_kind: str | None = None
    pr_number: int | None = None
    contract_version: str | None = None
    actor: str | None = None
    run_url: str | None = None
    promote_version: str = field(default_factory=_promote_version)

    @property
    def content_key(self) -> str | None:
        """The idempotency key (see :func:`content_key`)."""
        return content_key(self.tree, self.config_hash, self.data_snapshot)

    def tags(self) -> dict[str, str]:
        """Every known lineage field as ``promote.*`` tags (unknown fields are left out)."""
        values = {
            T.COMMIT: self.commit,
            T.TREE: self.tree,
            T.BRANCH: self.branch,
            T.EVENT_KIND: self.event_kind,
            T.PR_NUMBER: self.pr_number,
            T.ENVIRONMENT: self.environment,
            T.CONFIG_HASH: self.config_hash,
            T.DATA_SNAPSHOT: self.data_snapshot,
            T.CONTRACT_VERSION: self.contract_version,
            T.VERSION: self.promote_version,
            T.ACTOR: self.actor,
            T.RUN_URL: self.run_url,
            T.CONTENT_KEY: self.content_key,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "content_key": self.content_key}

    @classmethod
    def from_event(
        cls,
        event: "Event",
        settings: "Settings",
        *,
        data_snapshot: str | None,
        contract_version: str | None = None,
        environment: str | None = None,
    ) -> "Lineage":
        """Lineage of a run for ``event`` under ``settings`` on data snapshot ``data_snapshot``.

        Args:
            event: the CI (or local) event; its ``commit`` (a PR's head) and ``tree_sha`` are used.
            settings: settings loaded for the environment; gives the config hash.
            data_snapshot: ``Catalog.snapshot_id`` of the gold table trained on.
            contract_version: version of the data contracts checked (default: from settings).
            environment: the environment (default: ``settings.env``).

        Raises:
            PromoteError: when no environment is known.
        """
        env = environment or settings.env
        if not env:
            raise PromoteError("lineage needs an environment: load settings for one (--env)")
        return cls(
            environment=env,
            config_hash=settings.config_hash,
            data_snapshot=data_snapshot,
            commit=event.commit,
            tree=event.tree_sha,
            branch=event.source_branch or event.branch,
            event_kind=event.kind,
            pr_number=event.pr_number,
            contract_version=contract_version or settings.contracts.version,
            actor=event.actor,
            run_url=event.run_url,
        )

    @classmethod
    def without_git(
        cls, settings: "Settings", *, data_snapshot: str | None, contract_version: str | None = None
    ) -> "Lineage":
        """Lineage of a manual run outside a git repository: no commit or tree, hence no content key
        (every such run trains anew)."""
        return cls(
            environment=settings.env or "",
            config_hash=settings.config_hash,
            data_snapshot=data_snapshot,
            event_kind="manual",
            contract_version=contract_version or settings.contracts.version,
        )


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class VersionInfo:
    """One model version as plain data (no MLflow objects leak out of this module)."""

    name: str
    version: int
    run_id: str | None
    status: str
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()
    creation_timestamp: int | None = None

    @property
    def content_key(self) -> str | None:
        return self.tags.get(T.CONTENT_KEY)


def _info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id or None,
        status=str(mv.status),
        source=mv.source,
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        creation_timestamp=getattr(mv, "creation_timestamp", None),
    )
