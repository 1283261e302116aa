"""HTTP for CI APIs: a ``requests`` session with bounded urllib3 retries.

Retries 429 and 5xx on every method (a duplicated comment is harmless: the next run
finds the first one by its marker and updates it). Waits as the server asks
(``Retry-After``, or GitHub's ``x-ratelimit-reset`` when the rate limit is spent), with
exponential backoff otherwise, and never beyond a total time budget: when the next wait
would cross the deadline, the request gives up at once instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "promote-report"


@dataclass(frozen=True)
class HttpPolicy:
    """How hard to try. Defaults suit a CI step: at most ~20 s spent on one report."""

    tries: int = 5  # attempts per request, the first included
    backoff_factor: float = 0.5  # waits 0, 1, 2, 4 ... seconds between tries
    backoff_max: float = 8.0
    retry_after_max: float = 15.0  # a longer Retry-After means: give up, do not sleep
    deadline: float = 20.0  # seconds for all requests of one session together
    connect_timeout: float = 5.0
    read_timeout: float = 15.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "HttpPolicy":
        """Defaults, overridden by ``PROMOTE_HTTP_TRIES`` and ``PROMOTE_HTTP_DEADLINE`` when set."""
        kw: dict[str, Any] = {}
        try:
            if environ.get("PROMOTE_HTTP_TRIES"):
                kw["tries"] = max(1, int(environ["PROMOTE_HTTP_TRIES"]))
            if environ.get("PROMOTE_HTTP_DEADLINE"):
                kw["deadline"] = max(0.1, float(environ["PROMOTE_HTTP_DEADLINE"]))
        except ValueError:
            pass  # a bad tuning variable never fails a report; keep the defaults
        return cls(**kw)


class BoundedRetry(Retry):
    """urllib3 ``Retry`` with a wall-clock deadline and GitHub's rate-limit reset header."""

    def __init__(self, *args: Any, deadline: float | None = None, max_wait: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline  # time.monotonic() value after which no retry starts
        self.max_wait = max_wait  # a longer server-requested wait means: give up now

    def new(self, **kw: Any) -> "BoundedRetry":
        kw.setdefault("deadline", self.deadline)
        kw.setdefault("max_wait", self.max_wait)
        return super().new(**kw)  # type: ignore[return-value]

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is not None:
            return seconds
        reset = response.headers.get("x-ratelimit-reset")
        limited = response.status == 429 or response.headers.get("x-ratelimit-remaining") == "0"
        if reset and limited:
            try:
                seconds = max(0.0, float(reset) - time.time())
            except ValueError:
                return None
            return seconds
        return None

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> "BoundedRetry":
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = None
        if response is not None and self.respect_retry_after_header:
            wait = new.get_retry_after(response)
            if wait is not None and self.max_wait is not None and wait > self.max_wait:
                raise MaxRetryError(
                    _pool,
                    url,
                    ResponseError(f"server asked to wait {wait:.0f}s, more than the {self.max_wait:.0f}s allowed"),
                )
        if wait is None:
            wait = new.get_backoff_time()
        if self.deadline is not None and time.monotonic() + wait > self.deadline:
            status = getattr(response, "status", None)
            raise MaxRetryError(
                _pool,
                url,
                ResponseError(f"gave up after {len(new.history)} tries (last: {status or error}); retry budget spent"),
            )
        return new  # type: ignore[return-value]


class _Session(requests.Session):
    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, **kwargs)


def session(
    token: str | None = None,
    *,
    policy: HttpPolicy | None = None,
    scheme: str = "Bearer",
    headers: Mapping[str, str] | None = None,
) -> requests.Session:
    """A ``requests.Session`` with bounded retries, timeouts and (optionally) an auth header.

    Args:
        token: sent as ``Authorization: <scheme> <token>``; never logged.
        policy: tries, backoff and deadline (default :class:`HttpPolicy`).
        scheme: ``Bearer`` (GitHub, Azure DevOps ``System.AccessToken``) or ``token``.
        headers: extra default headers (``Accept``, API version).

    Returns:
        A session whose requests retry 429 and 5xx until the tries run out or the next
        wait would end more than ``policy.deadline`` seconds after this call; then the
        last error response is returned (its status tells what went wrong). Connection
        failures raise ``requests.exceptions.ConnectionError`` or ``RetryError``.
    """
    policy = policy or HttpPolicy()
    retry = BoundedRetry(
        total=max(0, policy.tries - 1),
        connect=max(0, policy.tries - 1),
        read=max(0, policy.tries - 1),
        status=max(0, policy.tries - 1),
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # every method: see the module docstring
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        retry_after_max=max(policy.retry_after_max * 10, 3600),  # parse long waits; increment() refuses them
        max_wait=policy.retry_after_max,
        respect_retry_after_header=True,
        raise_on_status=False,
        deadline=time.monotonic() + policy.deadline,
    )
    s = _Session((policy.connect_timeout, policy.read_timeout))
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    if headers:
        s.headers.update(headers)
    if token:
        s.headers["Authorization"] = f"{scheme} {token}"
    return s
