"""MLflow adapter: registered models, versions, aliases, tags, lineage and a cross-process lock.

Nothing else in ``promoter/`` talks to MLflow. Everything here goes through one
``mlflow.MlflowClient`` bound to explicit URIs, so two registries (say staging and prod
with their own credentials) never share hidden global state.

Rules the rest of the project relies on:

* A version number always comes from the call that created it (``create_model_version``),
  never from a "latest version" lookup, which races with other writers.
* A version is found again by its **content key** (tree sha + config hash + data snapshot
  id, see :class:`Lineage`); ``find_version_by_content_key`` only returns READY versions.
* :meth:`Registry.lock` serialises "check key -> train -> register" and alias moves across
  processes and machines that share the registry. It is built on the one write every
  MLflow store makes atomic: creating a registered model whose name is taken fails with
  ``RESOURCE_ALREADY_EXISTS`` for everyone but the first.

``mlflow`` is imported inside methods only: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import unquote, urlparse

from promoter import tags as T
from promoter.errors import NotFound, PromoteError

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.events import Event

LOCK_PREFIX = "promote-lock."
LOCK_HOLDER = "promote.lock.holder"
LOCK_ACQUIRED_AT = "promote.lock.acquired_at"
LOCK_HEARTBEAT_AT = "promote.lock.heartbeat_at"
LOCK_TTL = "promote.lock.ttl_seconds"
MODEL_URI_TAG = "promote.model_uri"   # on a training run once its model is logged
_BREAKER_TTL = 60.0  # a stale-lock breaker only deletes one model; older than this, it died


class LockTimeout(PromoteError):
    """Raised when a registry lock could not be acquired within the timeout (another run holds it)."""


class LockLost(PromoteError):
    """Raised when a held registry lock was broken or taken over before the work finished."""


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

    The runner builds it from the Event and the Settings (:meth:`from_event`); a bare
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
            T.COMMIT: self.commit, T.TREE: self.tree, T.BRANCH: self.branch, T.EVENT_KIND: self.event_kind,
            T.PR_NUMBER: self.pr_number, T.ENVIRONMENT: self.environment, T.CONFIG_HASH: self.config_hash,
            T.DATA_SNAPSHOT: self.data_snapshot, T.CONTRACT_VERSION: self.contract_version,
            T.VERSION: self.promote_version, T.ACTOR: self.actor, T.RUN_URL: self.run_url,
            T.CONTENT_KEY: self.content_key,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "content_key": self.content_key}

    @classmethod
    def from_event(cls, event: "Event", settings: "Settings", *, data_snapshot: str | None,
                   contract_version: str | None = None, environment: str | None = None) -> "Lineage":
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
        return cls(environment=env, config_hash=settings.config_hash, data_snapshot=data_snapshot,
                   commit=event.commit, tree=event.tree_sha, branch=event.source_branch or event.branch,
                   event_kind=event.kind, pr_number=event.pr_number,
                   contract_version=contract_version or settings.contracts.version, actor=event.actor,
                   run_url=event.run_url)

    @classmethod
    def from_local(cls, settings: "Settings", repo: str | os.PathLike[str] = ".", *, data_snapshot: str | None,
                   contract_version: str | None = None) -> tuple["Lineage", str | None]:
        """Lineage of a bare ``promote train`` from the local checkout (a manual event).

        Returns:
            (lineage, warning): outside a git repository the lineage has no commit or tree,
            hence no content key (every run trains anew), and the warning says so.
        """
        from promoter import events
        from promoter.errors import EventError, GitError

        try:
            event = events.from_local(repo, kind="manual", action="run")
        except (GitError, EventError) as exc:
            env = settings.env or ""
            lineage = cls(environment=env, config_hash=settings.config_hash, data_snapshot=data_snapshot,
                          event_kind="manual", contract_version=contract_version or settings.contracts.version)
            return lineage, f"no git lineage ({exc}); the model is registered without a content key"
        return cls.from_event(event, settings, data_snapshot=data_snapshot,
                              contract_version=contract_version), None


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
    return VersionInfo(name=mv.name, version=int(mv.version), run_id=mv.run_id or None, status=str(mv.status),
                       source=mv.source, tags=dict(mv.tags or {}), aliases=tuple(getattr(mv, "aliases", None) or ()),
                       creation_timestamp=getattr(mv, "creation_timestamp", None))


def _code(exc: BaseException) -> str | None:
    return getattr(exc, "error_code", None)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def default_holder() -> str:
    """``host:pid:random``: unique per process and per lock attempt."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def local_artifact_root(tracking_uri: str) -> str | None:
    """Where artifacts go for a local store: ``mlartifacts/`` next to the SQLite file.

    ``None`` for servers (they choose). Keeps artifacts out of the working directory
    (MLflow's own default, ``./mlruns``, would land wherever the command runs).
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        path = unquote(tracking_uri[len("sqlite:///"):]) if tracking_uri.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            return None
        return str((Path(path).resolve().parent / "mlartifacts"))
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else tracking_uri
        return str(Path(path).resolve() / "artifacts")
    return None


def _sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI (``None`` for other stores and in-memory SQLite)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):]).split("?")[0]
    return None if not path or path == ":memory:" else str(Path(path).resolve())


@contextlib.contextmanager
def _local_store_lock(*uris: str) -> Iterator[None]:
    """Hold an OS file lock next to each local SQLite store while it is opened.

    Two processes opening a fresh SQLite file at once race on MLflow's schema migrations
    ("Online migration expected to match one row ..."). SQLite lives on one machine, so a
    file lock beside it serialises the first open; other stores need nothing.
    """
    import fcntl

    paths = sorted({p for p in (_sqlite_path(u) for u in uris) if p})
    handles = []
    try:
        for path in paths:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fh = open(f"{path}.init-lock", "a")
            handles.append(fh)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        for fh in reversed(handles):
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


@contextlib.contextmanager
def mlflow_uris(tracking_uri: str, registry_uri: str | None = None) -> Iterator[None]:
    """Point MLflow's module-level (fluent) API at these URIs for a block, then restore.

    ``mlflow.spark.log_model`` and ``load_model`` only use the global URIs; this keeps that
    global state scoped. Restores the previous values and ``MLFLOW_*_URI`` variables.
    """
    import mlflow
    from mlflow.tracking import _model_registry, _tracking_service

    old_t = _tracking_service.utils._tracking_uri
    old_r = _model_registry.utils._registry_uri
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_t)
        mlflow.set_registry_uri(old_r)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- the adapter

class Registry:
    """The project's view of one MLflow tracking server + model registry.

    Args:
        tracking_uri: e.g. ``sqlite:///.promote/mlflow.db`` or ``http://127.0.0.1:5000``.
        registry_uri: the model registry, when it is not the tracking server.
        use_stages: also move legacy stages (``settings.project.registry.use_stages``).
    """

    def __init__(self, tracking_uri: str, registry_uri: str | None = None, *, use_stages: bool = False) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.use_stages = use_stages
        with _local_store_lock(self.tracking_uri, self.registry_uri):
            # MLflow creates (migrates) a SQLite schema when the client opens the store
            self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)
            self.client.search_registered_models(max_results=1)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Registry":
        """The registry ``settings.project`` names; a configured token goes to MLflow's variable."""
        project = settings.project
        if project.tracking_token is not None:
            os.environ["MLFLOW_TRACKING_TOKEN"] = project.tracking_token.get_secret_value()
        return cls(project.tracking_uri, project.registry_uri, use_stages=project.registry.use_stages)

    # -- names and experiments ---------------------------------------------------------------

    @staticmethod
    def model_name(settings: "Settings", env: str | None = None) -> str:
        """The registered model of ``env`` (default ``settings.env``), e.g. ``hrob-risk-staging``.

        Raises:
            PromoteError: when no environment is given or loaded.
        """
        env = env or settings.env
        if not env:
            raise PromoteError("no environment: pass --env or set PROMOTE_ENV")
        return settings.model_name_for(env)

    @staticmethod
    def experiment_name(settings: "Settings", env: str | None = None) -> str:
        """The tracking experiment of ``env``, from ``project.experiment`` (``{model}``, ``{env}``)."""
        env = env or settings.env or "base"
        return settings.project.experiment.format(model=settings.project.model_name, env=env)

    def experiment_id(self, name: str, artifact_location: str | None = None) -> str:
        """Id of experiment ``name``, created when missing.

        Args:
            name: experiment name.
            artifact_location: where its artifacts go; default :func:`local_artifact_root` of
                the tracking URI (next to the SQLite file) for local stores, the server's choice
                otherwise.
        """
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return found.experiment_id
        location = artifact_location
        if location is None:
            root = local_artifact_root(self.tracking_uri)
            if root is not None:
                location = str(Path(root) / hashlib.sha256(name.encode()).hexdigest()[:16])
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if _code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id  # created meanwhile

    def run_url(self, run_id: str | None) -> str | None:
        """A browser link to a run on an MLflow server; ``None`` for local stores (nothing to open)."""
        if not run_id or urlparse(self.tracking_uri).scheme not in ("http", "https"):
            return None
        try:
            experiment = self.client.get_run(run_id).info.experiment_id
        except Exception:  # a link is a courtesy; never fail a run over it
            return None
        return f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"

    # -- runs --------------------------------------------------------------------------------

    def find_finished_run(self, experiment_id: str, content_key: str) -> tuple[str, str] | None:
        """(run id, model URI) of the oldest FINISHED training run with ``content_key`` whose model
        was logged (tag ``promote.model_uri``), or ``None``.

        Lets a re-run register the model of a run that finished but died before registration,
        instead of training again.
        """
        flt = (f"tags.`{T.CONTENT_KEY}` = '{_quote(content_key)}' and tags.`{MODEL_URI_TAG}` != '' "
               f"and attributes.status = 'FINISHED'")
        runs = self.client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time ASC"],
                                       max_results=1)
        if not runs:
            return None
        run = runs[0]
        return run.info.run_id, run.data.tags[MODEL_URI_TAG]

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of a run."""
        return dict(self.client.get_run(run_id).data.metrics)

    # -- versions ----------------------------------------------------------------------------

    def ensure_model(self, model_name: str, description: str | None = None) -> None:
        """Create registered model ``model_name`` unless it exists (safe under races)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(model_name, description=description)
        except MlflowException as exc:
            if _code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise

    def find_version_by_content_key(self, model_name: str, key: str) -> VersionInfo | None:
        """The READY version of ``model_name`` tagged with content key ``key``, or ``None``.

        If (against the rules) several carry the key, the oldest wins, so the answer is stable.
        """
        from mlflow.exceptions import MlflowException

        flt = f"name = '{_quote(model_name)}' and tags.`{T.CONTENT_KEY}` = '{_quote(key)}'"
        try:
            found = list(self.client.search_model_versions(flt, max_results=100))
        except MlflowException as exc:
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        ready = sorted((_info(mv) for mv in found if str(mv.status) == "READY"), key=lambda v: v.version)
        return ready[0] if ready else None

    def register(self, run_id: str, model_uri: str, model_name: str, tags: Mapping[str, str] | None = None,
                 *, await_seconds: int = 300, description: str | None = None) -> int:
        """Register ``model_uri`` (from ``log_model``) as a new version of ``model_name``.

        Returns:
            The version number ``create_model_version`` returned (never a "latest" lookup).

        Raises:
            PromoteError: when the version does not become READY within ``await_seconds``.
        """
        self.ensure_model(model_name)
        mv = self.client.create_model_version(name=model_name, source=model_uri, run_id=run_id,
                                              tags={k: str(v) for k, v in (tags or {}).items()},
                                              description=description, await_creation_for=await_seconds)
        version = int(mv.version)
        status = str(self.client.get_model_version(model_name, str(version)).status)
        if status != "READY":
            raise PromoteError(f"model version {model_name} v{version} is {status}, not READY "
                               f"after {await_seconds}s")
        return version

    def version_info(self, model_name: str, version: int) -> VersionInfo:
        """Run id, tags, status, source and aliases of one version.

        Raises:
            NotFound: when the version does not exist.
        """
        from mlflow.exceptions import MlflowException

        try:
            return _info(self.client.get_model_version(model_name, str(version)))
        except MlflowException as exc:
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(f"model version {model_name} v{version} does not exist") from None
            raise

    def set_version_tags(self, model_name: str, version: int, tags: Mapping[str, Any]) -> None:
        """Set (overwrite) tags on one version."""
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, str(version), key, str(value))

    def load_model(self, model_name: str, version: int, dfs_tmpdir: str | None = None) -> Any:
        """The Spark ``PipelineModel`` of ``models:/<model_name>/<version>``.

        Needs an active SparkSession (the model is read through Spark, so it works on a cluster).
        """
        import mlflow.spark

        with mlflow_uris(self.tracking_uri, self.registry_uri):
            with tempfile.TemporaryDirectory(prefix="promote-model-") as dst:
                return mlflow.spark.load_model(f"models:/{model_name}/{version}", dfs_tmpdir=dfs_tmpdir,
                                               dst_path=dst)

    # -- aliases and stages --------------------------------------------------------------------

    def get_alias(self, model_name: str, alias: str) -> int | None:
        """The version holding ``alias``, or ``None`` (also when the model does not exist)."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if _code(exc) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def set_alias(self, model_name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (moves it when another version holds it)."""
        self.client.set_registered_model_alias(model_name, alias, str(version))

    def delete_alias(self, model_name: str, alias: str) -> None:
        """Remove ``alias``; nothing happens when it is not set."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model_alias(model_name, alias)
        except MlflowException as exc:
            if _code(exc) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise

    def transition_stage(self, model_name: str, version: int, stage: str,
                         archive_existing: bool = True) -> bool:
        """Move a version to a legacy stage (``Staging``/``Production``/``Archived``).

        Only when the project opted in (``registry.use_stages``); MLflow 3 deprecates stages
        in favour of aliases. Returns True when a transition was made.
        """
        if not self.use_stages:
            return False
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(model_name, str(version), stage,
                                                       archive_existing_versions=archive_existing)
        return True

    # -- cross-process lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, holder: str | None = None, ttl_seconds: float = 3 * 3600,
             timeout_seconds: float = 3600, poll_seconds: float = 0.5,
             max_poll_seconds: float = 10.0) -> Iterator["LockHandle"]:
        """Hold the registry-wide lock ``name`` for a block.

        The lock is the registered model ``promote-lock.<name>``: creating it succeeds for exactly
        one process. Its tags say who holds it and since when. A lock whose last heartbeat is
        older than the holder's TTL is broken (the holder died); breaking is itself serialised
        by a short-lived ``promote-lock.<name>.break`` so two waiters never both break it.
        Call ``handle.refresh()`` during long work to renew the heartbeat, and
        ``handle.check()`` right before a write that needs the lock.

        Args:
            name: what is locked, usually the registered model name.
            holder: who holds it (default ``host:pid:random``).
            ttl_seconds: after this long without a heartbeat, others may break the lock.
            timeout_seconds: give up waiting after this long.
            poll_seconds: first wait between attempts; grows by half each time (with jitter).
            max_poll_seconds: longest wait between attempts.

        Raises:
            LockTimeout: when the lock stays taken for ``timeout_seconds``.
        """
        handle = LockHandle(self, LOCK_PREFIX + name, holder or default_holder(), float(ttl_seconds))
        handle._acquire(timeout_seconds, poll_seconds, max_poll_seconds)
        try:
            yield handle
        finally:
            handle._release()

    def audit_store(self) -> "MlflowAuditStore":
        """The hash-chained decision records kept with this registry (see MlflowAuditStore)."""
        return MlflowAuditStore(self)

    def lock_holder(self, name: str) -> dict[str, str] | None:
        """Tags of lock ``name`` (holder, acquired_at, heartbeat_at, ttl), or ``None`` when free."""
        return self._lock_tags(LOCK_PREFIX + name)

    def _lock_tags(self, lock_name: str) -> dict[str, str] | None:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(lock_name).tags or {})
        except MlflowException as exc:
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _try_create(self, lock_name: str, tags: Mapping[str, str]) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(
                lock_name, tags=dict(tags),
                description="promote lock: serialises registration and alias moves; deleted on release")
            return True
        except MlflowException as exc:
            if _code(exc) == "RESOURCE_ALREADY_EXISTS":
                return False
            raise

    def _delete_quietly(self, lock_name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(lock_name)
        except MlflowException as exc:
            if _code(exc) != "RESOURCE_DOES_NOT_EXIST":
                raise


def _stale(tags: Mapping[str, str], now: float, default_ttl: float) -> bool:
    try:
        beat = max(float(tags.get(LOCK_ACQUIRED_AT, "0")), float(tags.get(LOCK_HEARTBEAT_AT, "0")))
        ttl = float(tags.get(LOCK_TTL, default_ttl))
    except ValueError:
        return True  # unreadable tags: nobody can prove they still hold it
    return now - beat > ttl


@dataclass
class LockHandle:
    """A held lock (see :meth:`Registry.lock`)."""

    registry: Registry
    lock_name: str
    holder: str
    ttl_seconds: float
    acquired_at: float = 0.0
    waited_seconds: float = 0.0
    broke_stale: bool = False

    def _tags(self, now: float) -> dict[str, str]:
        return {LOCK_HOLDER: self.holder, LOCK_ACQUIRED_AT: f"{now:.3f}", LOCK_HEARTBEAT_AT: f"{now:.3f}",
                LOCK_TTL: f"{self.ttl_seconds:g}"}

    def _acquire(self, timeout: float, poll: float, max_poll: float) -> None:
        start = time.monotonic()
        delay = poll
        while True:
            now = time.time()
            if self.registry._try_create(self.lock_name, self._tags(now)):
                self.acquired_at = now
                self.waited_seconds = time.monotonic() - start
                return
            self._break_if_stale()
            if time.monotonic() - start >= timeout:
                tags = self.registry._lock_tags(self.lock_name) or {}
                raise LockTimeout(f"registry lock {self.lock_name!r} is held by "
                                  f"{tags.get(LOCK_HOLDER, 'another run')}; gave up after {timeout:g}s")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, max_poll)

    def _break_if_stale(self) -> None:
        reg = self.registry
        seen = reg._lock_tags(self.lock_name)
        if seen is None or not _stale(seen, time.time(), self.ttl_seconds):
            return
        breaker = self.lock_name + ".break"
        if not reg._try_create(breaker, self._tags(time.time())):
            other = reg._lock_tags(breaker)
            if other is not None and _stale(other, time.time(), _BREAKER_TTL):
                reg._delete_quietly(breaker)  # a breaker died half-way
            return
        try:
            # Re-read under the breaker: only the very lock judged stale is deleted, never a
            # fresh one another waiter created in between.
            now_tags = reg._lock_tags(self.lock_name)
            if now_tags is not None and now_tags == seen and _stale(now_tags, time.time(), self.ttl_seconds):
                reg._delete_quietly(self.lock_name)
                self.broke_stale = True
        finally:
            reg._delete_quietly(breaker)

    def held(self) -> bool:
        """True when the lock still exists and names this holder."""
        tags = self.registry._lock_tags(self.lock_name)
        return tags is not None and tags.get(LOCK_HOLDER) == self.holder

    def check(self) -> None:
        """Raise :class:`LockLost` unless this handle still holds the lock."""
        if not self.held():
            raise LockLost(f"registry lock {self.lock_name!r} was broken or taken over while "
                           f"{self.holder} held it (work took longer than ttl={self.ttl_seconds:g}s?)")

    def refresh(self) -> None:
        """Renew the heartbeat so waiters do not judge the lock stale.

        Raises:
            LockLost: when the lock is no longer ours.
        """
        self.check()
        self.registry.client.set_registered_model_tag(self.lock_name, LOCK_HEARTBEAT_AT, f"{time.time():.3f}")

    def _release(self) -> None:
        if self.held():
            self.registry._delete_quietly(self.lock_name)


# =========================================================================== audit storage
# Durable, hash-chained decision records kept with the registry (DESIGN invariant 7), so a
# throw-away CI runner loses nothing: one MLflow run per record in the experiment
# ``promote-audit``, the record's canonical JSON split over tags (MLflow caps a tag value at
# 8,000 characters), and the chain's head (seq and hash) as an experiment tag, so deleting the
# newest record is detected too. Appends are serialised per chain by the registry lock and
# refuse a seq that is already taken (compare-and-swap).
# ===========================================================================

AUDIT_EXPERIMENT = "promote-audit"
AUDIT_CHAIN = "promote.audit.chain"
AUDIT_SEQ = "promote.audit.seq"
AUDIT_KIND = "promote.audit.kind"
AUDIT_RECORD_ID = "promote.audit.record_id"
AUDIT_PARTS = "promote.audit.parts"
AUDIT_PART = "promote.audit.record."
AUDIT_HEAD = "promote.audit.head."
_PART_SIZE = 7000


class MlflowAuditStore:
    """An :class:`promoter.audit.AuditStore` in the MLflow tracking server of ``registry``."""

    def __init__(self, registry: Registry, experiment: str = AUDIT_EXPERIMENT) -> None:
        self.registry = registry
        self.experiment = experiment
        self._experiment_id: str | None = None

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self.registry.experiment_id(self.experiment)
        return self._experiment_id

    def _search(self, filter_string: str) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self.registry.client.search_runs([self.experiment_id], filter_string=filter_string,
                                                    max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    @staticmethod
    def _record_of(run: Any) -> "Any":
        from promoter.audit import CorruptRecord, Record

        tags = run.data.tags
        try:
            parts = int(tags.get(AUDIT_PARTS, "0"))
            text = "".join(tags[f"{AUDIT_PART}{i}"] for i in range(parts))
            return Record.from_dict(json.loads(text))
        except (KeyError, ValueError) as exc:
            raise CorruptRecord(f"audit run {run.info.run_id}: unreadable record ({exc})") from None

    def read_all(self, environment: str | None = None) -> list[Any]:
        """Every record of one chain in seq order (all chains when ``environment`` is None)."""
        flt = f"tags.`{AUDIT_CHAIN}` = '{_quote(environment)}'" if environment else ""
        records = [self._record_of(run) for run in self._search(flt)]
        return sorted(records, key=lambda r: (r.environment, r.seq))

    def head(self, environment: str) -> tuple[int, str] | None:
        """(seq, hash) of the newest record as recorded at append time, or ``None``."""
        exp = self.registry.client.get_experiment(self.experiment_id)
        value = (exp.tags or {}).get(AUDIT_HEAD + environment)
        if not value or ":" not in value:
            return None
        seq, digest = value.split(":", 1)
        return int(seq), digest

    def append(self, record: Any) -> None:
        """Store ``record``; raise ConcurrentAppend when its seq is taken (serialised per chain)."""
        from promoter.audit import ConcurrentAppend

        env = record.environment
        with self.registry.lock(f"audit.{env}", ttl_seconds=120, timeout_seconds=300, poll_seconds=0.1,
                                max_poll_seconds=1.0):
            taken = self._search(f"tags.`{AUDIT_CHAIN}` = '{_quote(env)}' and tags.`{AUDIT_SEQ}` = '{record.seq}'")
            if taken:
                raise ConcurrentAppend(f"seq {record.seq} of chain {env!r} is already taken")
            head = self.head(env)
            expected = -1 if head is None else head[0]
            if record.seq != expected + 1:
                raise ConcurrentAppend(f"chain {env!r} head is seq {expected}; cannot append seq {record.seq}")
            text = record.to_json()
            parts = [text[i:i + _PART_SIZE] for i in range(0, len(text), _PART_SIZE)] or [""]
            tags = {AUDIT_CHAIN: env, AUDIT_SEQ: str(record.seq), AUDIT_KIND: record.kind,
                    AUDIT_RECORD_ID: record.record_id, AUDIT_PARTS: str(len(parts)),
                    **{f"{AUDIT_PART}{i}": part for i, part in enumerate(parts)}}
            run = self.registry.client.create_run(self.experiment_id, run_name=f"{env}-{record.seq:06d}-{record.kind}",
                                                  tags=tags)
            self.registry.client.set_terminated(run.info.run_id)
            self.registry.client.set_experiment_tag(self.experiment_id, AUDIT_HEAD + env,
                                                    f"{record.seq}:{record.hash}")

    def run_id_of(self, environment: str, seq: int) -> str | None:
        """The MLflow run holding record ``seq`` (for operators and tests)."""
        runs = self._search(f"tags.`{AUDIT_CHAIN}` = '{_quote(environment)}' and tags.`{AUDIT_SEQ}` = '{seq}'")
        return runs[0].info.run_id if runs else None
