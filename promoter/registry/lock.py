"""A cross-process lock on the registry: a registered model only one process can create."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from promoter.errors import PromoteError

if TYPE_CHECKING:  # pragma: no cover
    from promoter.registry.client import Registry

LOCK_PREFIX = "promote-lock."
LOCK_HOLDER = "promote.lock.holder"
LOCK_ACQUIRED_AT = "promote.lock.acquired_at"
LOCK_HEARTBEAT_AT = "promote.lock.heartbeat_at"
LOCK_TTL = "promote.lock.ttl_seconds"
DEFAULT_LOCK_TTL_SECONDS = 300.0
_BREAKER_TTL = 60.0  # a stale-lock breaker only deletes one model; older than this, it died


class LockTimeout(PromoteError):
    """Raised when a registry lock could not be acquired within the timeout (another run holds it)."""


class LockLost(PromoteError):
    """Raised when a held registry lock was broken or taken over before the work finished."""


def default_holder() -> str:
    """``host:pid:random``: unique per process and per lock attempt."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _stale(tags: Mapping[str, str], now: float, default_ttl: float) -> bool:
    return _why_stale(tags, now, default_ttl) is not None


def _why_stale(tags: Mapping[str, str], now: float, default_ttl: float) -> str | None:
    """Why the holder of a lock with these tags is dead, or ``None`` while it may be alive."""
    try:
        beat = max(float(tags.get(LOCK_ACQUIRED_AT, "0")), float(tags.get(LOCK_HEARTBEAT_AT, "0")))
        ttl = float(tags.get(LOCK_TTL, default_ttl))
    except ValueError:
        return "its tags are unreadable"  # nobody can prove they still hold it
    if now - beat > ttl:
        return f"no heartbeat for {now - beat:.0f}s (ttl {ttl:g}s)"
    if _dead_here(tags.get(LOCK_HOLDER, "")):
        return "its process is gone (same host)"
    return None


def _dead_here(holder: str) -> bool:
    """True when ``holder`` (``host:pid:random``) names a process of this host that does not exist."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


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
    broke: str | None = None  # "<holder>: <why it was judged dead>" when this handle broke a lock
    lost: str | None = None  # set by the heartbeat when the lock was found taken over
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _beat: threading.Thread | None = field(default=None, repr=False)

    def _tags(self, now: float) -> dict[str, str]:
        return {
            LOCK_HOLDER: self.holder,
            LOCK_ACQUIRED_AT: f"{now:.3f}",
            LOCK_HEARTBEAT_AT: f"{now:.3f}",
            LOCK_TTL: f"{self.ttl_seconds:g}",
        }

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
                raise LockTimeout(
                    f"registry lock {self.lock_name!r} is held by "
                    f"{tags.get(LOCK_HOLDER, 'another run')}; gave up after {timeout:g}s"
                )
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, max_poll)

    def _break_if_stale(self) -> None:
        reg = self.registry
        seen = reg._lock_tags(self.lock_name)
        why = None if seen is None else _why_stale(seen, time.time(), self.ttl_seconds)
        if why is None:
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
                self.broke = f"{seen.get(LOCK_HOLDER, 'an unnamed holder')}: {why}"
        finally:
            reg._delete_quietly(breaker)

    def held(self) -> bool:
        """True when the lock still exists and names this holder."""
        tags = self.registry._lock_tags(self.lock_name)
        return tags is not None and tags.get(LOCK_HOLDER) == self.holder

    def check(self) -> None:
        """Raise :class:`LockLost` unless this handle still holds the lock."""
        if not self.held():
            raise LockLost(
                f"registry lock {self.lock_name!r} was broken or taken over while "
                f"{self.holder} held it (work took longer than ttl={self.ttl_seconds:g}s?)"
            )

    def refresh(self) -> None:
        """Renew the heartbeat so waiters do not judge the lock stale.

        Raises:
            LockLost: when the lock is no longer ours.
        """
        self.check()
        self._touch()

    def _touch(self) -> None:
        self.registry.client.set_registered_model_tag(self.lock_name, LOCK_HEARTBEAT_AT, f"{time.time():.3f}")

    def _start_heartbeat(self) -> None:
        """Renew the heartbeat every ``ttl/4`` in a daemon thread until the lock is released."""
        interval = max(1.0, self.ttl_seconds / 4)

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    tags = self.registry._lock_tags(self.lock_name)
                    if tags is None or tags.get(LOCK_HOLDER) != self.holder:
                        self.lost = f"taken over by {tags.get(LOCK_HOLDER) if tags else 'nobody (deleted)'}"
                        return
                    self._touch()
                except Exception:  # noqa: BLE001 - a missed beat; the work's own calls report the server
                    continue

        self._beat = threading.Thread(target=beat, name=f"heartbeat {self.lock_name}", daemon=True)
        self._beat.start()

    def _release(self) -> None:
        """Stop the heartbeat and delete the lock if it is still ours; never raises.

        When the server cannot be reached the lock stays behind; its heartbeat has stopped, so
        the next run breaks it after the TTL (at once on this host) and says whose it was.
        """
        self._stop.set()
        try:
            if self.held():
                self.registry._delete_quietly(self.lock_name)
        except Exception as exc:  # noqa: BLE001 - on the way out: the first error is the one to report
            import logging

            logging.getLogger(__name__).warning(
                "could not release registry lock %s (%s): the next run breaks it after %gs",
                self.lock_name,
                exc,
                self.ttl_seconds,
            )
