"""A bounded wait for the tracking server: MLflow's own HTTP retries, sized from one deadline.

MLflow retries every HTTP call to a tracking server (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default
7, backoff factor 2: about four minutes per call when the server is gone) and waits up to
``MLFLOW_HTTP_REQUEST_TIMEOUT`` (120 s) per attempt. A run that meets a dead server makes many
calls (the step's, then the lock release, the failure record, the report), so with those defaults
it "hangs" for tens of minutes. Here:

* :func:`retry_settings` turns ``registry.deadline_seconds`` into MLflow's variables (the retry
  count whose backoff sum fits the deadline); :func:`apply` sets them for the process unless the
  user set them (an explicit ``MLFLOW_HTTP_*`` wins).
* :class:`GuardedClient` wraps the adapter's ``MlflowClient``: a call that fails because the
  server cannot be reached raises :class:`~promoter.errors.TrackingUnreachable` naming the
  server, and marks the registry down; from then on each call gets one quick attempt (the way
  out: lock release, the failure record), so the process exits within about one deadline.
* :func:`is_unreachable` recognises "cannot reach the server" in any exception chain (the
  fluent API used by training raises MLflow's own exceptions), for the engine to name the step.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from promoter.errors import TrackingUnreachable

DEFAULT_DEADLINE_SECONDS = 120
DEFAULT_REQUEST_TIMEOUT_SECONDS = 20
QUICK_TIMEOUT_SECONDS = 5  # one attempt per call once the server is known to be down

RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
BACKOFF = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
JITTER = "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"
TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"
_OURS: dict[str, str] = {}  # what this process set, so a later registry may set it again
_env_lock = threading.Lock()


def retry_settings(deadline_seconds: float, request_timeout_seconds: float) -> dict[str, str]:
    """MLflow's retry variables that keep one call within ``deadline_seconds``, whatever the failure.

    urllib3 sleeps ``0, 2, 4, ...`` seconds between attempts (backoff factor 1, no jitter), so
    ``r`` retries sleep ``2**r - 2`` seconds; each of the ``r + 1`` attempts may wait up to the
    request timeout (a server that accepts and never answers). The retry count is the largest
    ``r`` (MLflow allows at most 10) with ``2**r - 2 + (r + 1) * timeout <= deadline``; the
    timeout is capped at the deadline, so one attempt always fits.
    """
    deadline = max(1, int(deadline_seconds))
    timeout = max(1, min(int(request_timeout_seconds), deadline))
    retries = 0
    while retries < 10 and 2 ** (retries + 1) - 2 + (retries + 2) * timeout <= deadline:
        retries += 1
    return {RETRIES: str(retries), BACKOFF: "1", JITTER: "0", TIMEOUT: str(timeout)}


def apply(deadline_seconds: float, request_timeout_seconds: float) -> dict[str, str]:
    """Set MLflow's retry variables for this process (an explicit user setting is kept)."""
    wanted = retry_settings(deadline_seconds, request_timeout_seconds)
    with _env_lock:
        for key, value in wanted.items():
            current = os.environ.get(key)
            if current is None or current == _OURS.get(key):
                os.environ[key] = value
                _OURS[key] = value
    return {k: os.environ[k] for k in wanted}


@contextlib.contextmanager
def quick_attempts() -> Iterator[None]:
    """One attempt, short timeout, for the calls made after the server was found down."""
    keys = {RETRIES: "0", TIMEOUT: str(QUICK_TIMEOUT_SECONDS)}
    with _env_lock:
        old = {k: os.environ.get(k) for k in keys}
        os.environ.update(keys)
    try:
        yield
    finally:
        with _env_lock:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


_MARKERS = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Read timed out",
    "Connection aborted",
    "RemoteDisconnected",
    "Name or service not known",
    "too many 5",  # urllib3: "too many 502 error responses"
)


_TRANSPORT = {
    "ConnectionError",  # requests.ConnectionError is not the builtin
    "MaxRetryError",
    "NewConnectionError",
    "ProtocolError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
}


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the server could not be reached or kept failing."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TrackingUnreachable | ConnectionError | TimeoutError):
            return True
        # requests' and urllib3's own classes, by name: HTTP libraries stay out of this adapter
        if _TRANSPORT.intersection(t.__name__ for t in type(e).__mro__):
            return True
        if type(e).__name__ in ("MlflowException", "RestException") and any(m in str(e) for m in _MARKERS):
            return True
        e = e.__cause__ or e.__context__
    return False


def unreachable(uri: str, exc: BaseException | None, waited: float | None = None) -> TrackingUnreachable:
    """The one error for a server that did not answer (``waited``: seconds spent on the call)."""
    took = f" after {waited:.0f}s" if waited is not None else ""
    err = TrackingUnreachable(f"tracking server unreachable at {uri}{took}", uri=uri)
    if exc is not None:
        err.__cause__ = exc
    return err


class GuardedClient:
    """An ``MlflowClient`` whose calls fail as :class:`TrackingUnreachable` when the server is gone.

    Args:
        client: the wrapped ``MlflowClient``.
        uri: the tracking server's URI (named in the error).
    """

    def __init__(self, client: Any, uri: str) -> None:
        self._client = client
        self._uri = uri
        self.down_since: float | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def mark_down(self) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                if self.down:
                    with quick_attempts():
                        return attr(*args, **kwargs)
                return attr(*args, **kwargs)
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                self.mark_down()
                raise unreachable(self._uri, exc, time.monotonic() - started) from exc

        call.__name__ = name
        return call
