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

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from promoter.core import tags as T
from promoter.errors import NotFound, PromoteError
from promoter.registry import deadline
from promoter.registry.lineage import VersionInfo, _info
from promoter.registry.lock import DEFAULT_LOCK_TTL_SECONDS, LOCK_PREFIX, LockHandle, default_holder
from promoter.registry.search import _code, _quote

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.registry.audit_store import MlflowAuditStore

MODEL_URI_TAG = "promote.model_uri"  # on a training run once its model is logged


def local_artifact_root(tracking_uri: str) -> str | None:
    """Where artifacts go for a local store: ``mlartifacts/`` next to the SQLite file.

    ``None`` for servers (they choose). Keeps artifacts out of the working directory
    (MLflow's own default, ``./mlruns``, would land wherever the command runs).
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        path = unquote(tracking_uri[len("sqlite:///") :]) if tracking_uri.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            return None
        return str(Path(path).resolve().parent / "mlartifacts")
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else tracking_uri
        return str(Path(path).resolve() / "artifacts")
    return None


def _sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI (``None`` for other stores and in-memory SQLite)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///") :]).split("?")[0]
    return None if not path or path == ":memory:" else str(Path(path).resolve())


def local_store_missing(*uris: str | None) -> str | None:
    """The file of the first local (SQLite) store among ``uris`` that does not exist yet, else ``None``."""
    for uri in uris:
        path = _sqlite_path(uri) if uri else None
        if path is not None and not Path(path).exists():
            return path
    return None


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
        deadline_seconds: how long one call may wait on a server that is down
            (:mod:`promoter.registry.deadline`).
        request_timeout_seconds: one HTTP attempt's timeout.
        lock_ttl_seconds: the default TTL of :meth:`lock`.
    """

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        use_stages: bool = False,
        deadline_seconds: float = deadline.DEFAULT_DEADLINE_SECONDS,
        request_timeout_seconds: float = deadline.DEFAULT_REQUEST_TIMEOUT_SECONDS,
        lock_ttl_seconds: float = DEFAULT_LOCK_TTL_SECONDS,
    ) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.use_stages = use_stages
        self.deadline_seconds = float(deadline_seconds)
        self.lock_ttl_seconds = float(lock_ttl_seconds)
        if any(u.startswith(("http://", "https://")) for u in (self.tracking_uri, self.registry_uri)):
            deadline.apply(deadline_seconds, request_timeout_seconds)
            # MLflow writes "View run ... at <url>" to stdout for each run ended on a server;
            # stdout is the command's result (--json), so those lines stay out of it
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        with _local_store_lock(self.tracking_uri, self.registry_uri):
            # MLflow creates (migrates) a SQLite schema when the client opens the store
            self.client = deadline.GuardedClient(
                MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri), self.registry_uri
            )
            try:
                self.client.search_registered_models(max_results=1)
            except MlflowException as exc:
                if exc.get_http_status_code() in (401, 403):
                    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
                    raise PromoteError(
                        f"the tracking server at {tracking_uri} refused the credentials"
                        + (f" of user {user!r}" if user else " (none given)")
                        + " (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"
                    ) from None
                raise

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Registry":
        """The registry ``settings.project`` names; a configured token goes to MLflow's variable."""
        project = settings.project
        if project.tracking_token is not None:
            os.environ["MLFLOW_TRACKING_TOKEN"] = project.tracking_token.get_secret_value()
        return cls(
            project.tracking_uri,
            project.registry_uri,
            use_stages=project.registry.use_stages,
            deadline_seconds=project.registry.deadline_seconds,
            request_timeout_seconds=project.registry.request_timeout_seconds,
            lock_ttl_seconds=project.registry.lock_ttl_seconds,
        )

    @property
    def reachable(self) -> bool:
        """False once a call found the tracking server unreachable (later calls get one quick attempt)."""
        return not self.client.down

    def mark_unreachable(self) -> None:
        """Record that the server is down (a failure seen outside this adapter, e.g. MLflow's fluent API)."""
        self.client.mark_down()

    def authenticated_user(self) -> str | None:
        """The user the tracking server authenticated for this client, or ``None`` when it does not authenticate.

        Asks the server's own user endpoint (``mlflow server --app-name basic-auth``) with the
        client's credentials (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``). A
        local store, a server without authentication or no username set give ``None``.

        Raises:
            PromoteError: the server refused the credentials (HTTP 401/403).
        """
        if not self.tracking_uri.startswith(("http://", "https://")):
            return None
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        creds = get_default_host_creds(self.tracking_uri)
        if not creds.username:
            return None
        response = http_request(
            creds, "/api/2.0/mlflow/users/get", "GET", params={"username": creds.username}, max_retries=1
        )
        if response.status_code in (401, 403):
            raise PromoteError(
                f"the tracking server at {self.tracking_uri} refused the credentials of user {creds.username!r} "
                "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"
            )
        if response.status_code != 200:
            return None  # no authentication app on this server: nothing verified
        user = (response.json().get("user") or {}).get("username")
        return str(user) if user else None

    # -- names and experiments ---------------------------------------------------------------

    @staticmethod
    def model_name(settings: "Settings", env: str | None = None) -> str:
        """The registered model of ``env`` (default ``settings.env``), e.g. ``churn-staging`` (model ``churn``).

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
        flt = (
            f"tags.`{T.CONTENT_KEY}` = '{_quote(content_key)}' and tags.`{MODEL_URI_TAG}` != '' "
            f"and attributes.status = 'FINISHED'"
        )
        runs = self.client.search_runs(
            [experiment_id], filter_string=flt, order_by=["attributes.start_time ASC"], max_results=1
        )
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

    def register(
        self,
        run_id: str,
        model_uri: str,
        model_name: str,
        tags: Mapping[str, str] | None = None,
        *,
        await_seconds: int = 300,
        description: str | None = None,
    ) -> int:
        """Register ``model_uri`` (from ``log_model``) as a new version of ``model_name``.

        Returns:
            The version number ``create_model_version`` returned (never a "latest" lookup).

        Raises:
            PromoteError: when the version does not become READY within ``await_seconds``.
        """
        self.ensure_model(model_name)
        mv = self.client.create_model_version(
            name=model_name,
            source=model_uri,
            run_id=run_id,
            tags={k: str(v) for k, v in (tags or {}).items()},
            description=description,
            await_creation_for=await_seconds,
        )
        version = int(mv.version)
        status = str(self.client.get_model_version(model_name, str(version)).status)
        if status != "READY":
            raise PromoteError(f"model version {model_name} v{version} is {status}, not READY after {await_seconds}s")
        return version

    def versions_built_from(self, model_name: str, commit: str, tree: str | None = None) -> list[VersionInfo]:
        """Versions of ``model_name`` tagged with ``commit`` (or, when given, with ``tree``), oldest first.

        A merge that kept a pull request's tree reuses the PR's version, which carries the PR
        head's commit: the tree finds it. A model that does not exist has no versions.
        """
        from mlflow.exceptions import MlflowException

        filters = [f"name = '{_quote(model_name)}' and tags.`{T.COMMIT}` = '{_quote(commit)}'"]
        if tree:
            filters.append(f"name = '{_quote(model_name)}' and tags.`{T.TREE}` = '{_quote(tree)}'")
        found: dict[int, VersionInfo] = {}
        for flt in filters:
            try:
                page = list(self.client.search_model_versions(flt, max_results=200))
            except MlflowException as exc:
                if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                    continue
                raise
            for mv in page:
                found.setdefault(int(mv.version), _info(mv))
        return [found[v] for v in sorted(found)]

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
                return mlflow.spark.load_model(f"models:/{model_name}/{version}", dfs_tmpdir=dfs_tmpdir, dst_path=dst)

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

    def transition_stage(self, model_name: str, version: int, stage: str, archive_existing: bool = True) -> bool:
        """Move a version to a legacy stage (``Staging``/``Production``/``Archived``).

        Only when the project opted in (``registry.use_stages``); MLflow 3 deprecates stages
        in favour of aliases. Returns True when a transition was made.
        """
        if not self.use_stages:
            return False
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(
                model_name, str(version), stage, archive_existing_versions=archive_existing
            )
        return True

    # -- cross-process lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(
        self,
        name: str,
        holder: str | None = None,
        ttl_seconds: float | None = None,
        timeout_seconds: float = 3600,
        poll_seconds: float = 0.5,
        max_poll_seconds: float = 10.0,
    ) -> Iterator["LockHandle"]:
        """Hold the registry-wide lock ``name`` for a block.

        The lock is the registered model ``promote-lock.<name>``: creating it succeeds for exactly
        one process. Its tags say who holds it and since when. While the block runs, a
        background heartbeat renews ``heartbeat_at`` every ``ttl/4``. A lock whose last heartbeat
        is older than the holder's TTL is broken (the holder died), and so at once is a lock whose
        holder is a process of this host that no longer exists (SIGKILLed); breaking is itself
        serialised by a short-lived ``promote-lock.<name>.break`` so two waiters never both break
        it, and ``handle.broke`` says whose lock was broken. The lock is released on the way out
        of the block, however it is left (an error, Ctrl-C, SIGTERM via the CLI's handler).
        Call ``handle.check()`` right before a write that needs the lock.

        Args:
            name: what is locked, usually the registered model name.
            holder: who holds it (default ``host:pid:random``).
            ttl_seconds: after this long without a heartbeat, others may break the lock
                (default ``registry.lock_ttl_seconds``, 300).
            timeout_seconds: give up waiting after this long.
            poll_seconds: first wait between attempts; grows by half each time (with jitter).
            max_poll_seconds: longest wait between attempts.

        Raises:
            LockTimeout: when the lock stays taken for ``timeout_seconds``.
        """
        ttl = float(self.lock_ttl_seconds if ttl_seconds is None else ttl_seconds)
        handle = LockHandle(self, LOCK_PREFIX + name, holder or default_holder(), ttl)
        handle._acquire(timeout_seconds, poll_seconds, max_poll_seconds)
        handle._start_heartbeat()
        try:
            yield handle
        finally:
            handle._release()

    def audit_store(self) -> "MlflowAuditStore":
        """The hash-chained decision records kept with this registry (see MlflowAuditStore)."""
        from promoter.registry.audit_store import MlflowAuditStore

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
                lock_name,
                tags=dict(tags),
                description="promote lock: serialises registration and alias moves; deleted on release",
            )
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
