"""Decision records in a tamper-evident hash chain, behind a small storage protocol.

Every decision (gate verdict, approval, alias move, rollback, hold, scoring run, monitoring run,
retrain request, registration) appends one :class:`Record` to its chain, one per (model, environment). A record's ``hash`` is the sha256 of
the canonical JSON of all its other fields, ``prev_hash`` included, so editing any stored
record, deleting one, or re-linking the chain is visible to :func:`verify`.

Storage is anything that implements :class:`AuditStore`: read a chain in ``seq`` order, read
its tail, find a record by id, and append with compare-and-swap on ``seq`` (two writers racing
for the same ``seq``: exactly one wins, the other gets :class:`ConcurrentAppend` and retries on
the new tail). :func:`append` reads only the tail and looks up one record id, so its work does
not grow with the chain. Records are plain JSON, so a store can keep them anywhere:
:class:`FileAuditStore` keeps one file per record; the registry keeps them with the tracking
server. The Delta mirror of the chains is the lake adapter's business (``promoter.lake``): this
module imports neither ``deltalake`` nor ``pyarrow``.

Nothing here reads the clock: callers pass ``created_at``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from promoter.errors import PromoteError

GENESIS = "0" * 64
"""``prev_hash`` of the first record of every chain."""

Kind = Literal[
    "gate",
    "approval",
    "alias_move",
    "rollback",
    "hold",
    "release_hold",
    "scoring",
    "surveillance",
    "retrain_requested",
    "registration",
]
KINDS: tuple[str, ...] = (
    "gate",
    "approval",
    "alias_move",
    "rollback",
    "hold",
    "release_hold",
    "scoring",
    "surveillance",
    "retrain_requested",
    "registration",
)

_CHAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


class AuditError(PromoteError):
    """Raised when a record cannot be built or a store cannot be read (exit 1)."""


class ConcurrentAppend(AuditError):
    """Raised when another writer already appended a record with the same ``seq``."""


class DuplicateRecord(AuditError):
    """Raised by a store's ``append`` when the chain already holds a record with that ``record_id``.

    Attributes:
        existing: the stored record with that id (what :func:`append` returns instead).
    """

    def __init__(self, existing: "Record") -> None:
        self.existing = existing
        super().__init__(f"record {existing.record_id!r} is already in chain {existing.chain!r} at seq {existing.seq}")


class CorruptRecord(AuditError):
    """Raised when a stored record cannot be parsed (truncated or edited into invalid JSON)."""


# --------------------------------------------------------------------------- canonical JSON


def _clean(value: Any) -> Any:
    """Plain JSON data: numpy scalars to Python, tuples to lists, NaN/inf to ``None``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    # numpy scalars and arrays without importing numpy
    item = getattr(value, "tolist", None)
    if callable(item):
        return _clean(item())
    raise AuditError(f"audit records hold JSON data only; got {type(value).__name__}: {value!r}")


def canonical_json(data: Any) -> str:
    """The one serialisation every hash is computed over.

    Keys sorted, no whitespace, ASCII only; NaN and infinities are rejected (records are
    cleaned to ``null`` before this point).

    Args:
        data: JSON data.

    Returns:
        The canonical JSON text.

    Raises:
        ValueError: when ``data`` holds NaN or infinity.
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def record_hash(data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of every field of a record except ``hash``.

    Args:
        data: a record as a dict (``Record.to_dict()`` or a stored record).

    Returns:
        64 hex characters.
    """
    body = {k: v for k, v in data.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class Record:
    """One decision, as stored.

    Attributes:
        seq: position in the chain (:attr:`chain`), from 0.
        record_id: unique id (uuid4 hex, or a deterministic id from the caller).
        kind: one of :data:`KINDS`.
        environment: the environment decided for (``dev``, ``staging``, ``prod``).
        registered_model: e.g. ``churn-prod``.
        actor: who or what caused it (CI actor, approver).
        event: the triggering event (kind, branch, sha, PR, run URL, ...).
        commit: the commit sha the decision was made for.
        candidate_version: the candidate's model version.
        champion_version: the champion's version at decision time.
        metrics: metrics the decision used.
        policy_hash: sha256 of the gate policy applied.
        verdict: ``PASS`` / ``FAIL`` / ``NEEDS_APPROVAL`` or a kind-specific outcome.
        reasons: the gate's reasons (``Reason.to_dict()`` each).
        decision_id: the gate record an approval or alias move acts on.
        details: anything else (ticket, aliases moved, row counts, ...).
        created_at: ISO-8601 time, given by the caller.
        prev_hash: ``hash`` of record ``seq - 1`` (:data:`GENESIS` for ``seq`` 0).
        hash: sha256 of the canonical JSON of every other field.
    """

    seq: int
    record_id: str
    kind: str
    environment: str
    registered_model: str = ""
    actor: str = ""
    event: dict[str, Any] = field(default_factory=dict)
    commit: str | None = None
    candidate_version: int | None = None
    champion_version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    policy_hash: str | None = None
    verdict: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    decision_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    prev_hash: str = GENESIS
    hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON data (what a store writes)."""
        return asdict(self)

    def to_json(self) -> str:
        """The canonical JSON of :meth:`to_dict`."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Record":
        """Rebuild a stored record exactly as stored (nothing is recomputed or checked).

        Args:
            data: a dict with the record's fields.

        Returns:
            The record.

        Raises:
            CorruptRecord: when required fields are missing or unknown fields are present.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        missing = {"seq", "record_id", "kind", "environment"} - set(data)
        if unknown or missing:
            raise CorruptRecord(
                f"not an audit record (unknown fields: {sorted(unknown)}, missing fields: {sorted(missing)})"
            )
        return cls(**dict(data))

    @property
    def chain(self) -> str:
        """The chain this record belongs to: one per (model, environment), named by the registered
        model (``churn-prod``), so models sharing a registry never share a chain; a record
        without a registered model (older callers, tests) is in its environment's chain."""
        return self.registered_model or self.environment

    def computed_hash(self) -> str:
        """The hash this record's content implies (compare with :attr:`hash`)."""
        return record_hash(self.to_dict())


def build(
    *,
    seq: int,
    prev_hash: str,
    kind: str,
    environment: str,
    created_at: str,
    record_id: str | None = None,
    registered_model: str = "",
    actor: str = "",
    event: Mapping[str, Any] | None = None,
    commit: str | None = None,
    candidate_version: int | None = None,
    champion_version: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    policy_hash: str | None = None,
    verdict: str | None = None,
    reasons: Sequence[Mapping[str, Any]] | None = None,
    decision_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Record:
    """A new, hashed record at ``seq`` linked to ``prev_hash`` (pure; nothing is stored).

    Values are cleaned to plain JSON (NaN becomes ``null``) before hashing, so the stored JSON
    and the hash always agree.

    Returns:
        The record with ``hash`` filled in.

    Raises:
        AuditError: for an unknown kind, a bad environment name or non-JSON values.
    """
    if kind not in KINDS:
        raise AuditError(f"unknown audit record kind {kind!r} (known: {', '.join(KINDS)})")
    _check_chain(environment)
    if registered_model:
        _check_chain(registered_model)
    if not created_at:
        raise AuditError("created_at is required (an ISO-8601 time)")
    data: dict[str, Any] = _clean(
        {
            "seq": int(seq),
            "record_id": record_id or uuid.uuid4().hex,
            "kind": kind,
            "environment": environment,
            "registered_model": registered_model,
            "actor": actor,
            "event": dict(event or {}),
            "commit": commit,
            "candidate_version": None if candidate_version is None else int(candidate_version),
            "champion_version": None if champion_version is None else int(champion_version),
            "metrics": dict(metrics or {}),
            "policy_hash": policy_hash,
            "verdict": verdict,
            "reasons": [dict(r) for r in (reasons or [])],
            "decision_id": decision_id,
            "details": dict(details or {}),
            "created_at": created_at,
            "prev_hash": prev_hash,
        }
    )
    data["hash"] = record_hash(data)
    return Record(**data)


def _check_chain(name: str) -> None:
    if not isinstance(name, str) or not _CHAIN.fullmatch(name):
        raise AuditError(f"bad name for an audit chain: {name!r}")


# --------------------------------------------------------------------------- storage


@runtime_checkable
class AuditStore(Protocol):
    """Where chains live: one chain per (model, environment) (:attr:`Record.chain`), records in ``seq`` order.

    Implementations keep each record as its JSON (``Record.to_dict()``) and must make
    ``append`` a compare-and-swap on ``(chain, seq)``. ``tail`` and ``find`` are what
    :func:`append` reads, so they must not read the whole chain: their cost should not grow
    with its length. ``read_all`` is for verification, history and repair.
    """

    def read_all(self, chain: str | None = None) -> list[Record]:
        """Every record of one chain in ``seq`` order; ``None``: all chains, by chain then seq."""

    def tail(self, chain: str) -> Record | None:
        """The record with the highest ``seq`` of the chain, or ``None`` when it is empty."""

    def find(self, chain: str, record_id: str) -> Record | None:
        """The record of the chain with this ``record_id``, or ``None``."""

    def append(self, record: Record) -> None:
        """Store ``record`` at its ``seq``.

        Raises:
            ConcurrentAppend: when its ``seq`` is already taken (the caller retries on the new tail).
            DuplicateRecord: when the chain already holds a record with its ``record_id``
                (checked atomically with the append where the store can; :func:`append`
                returns ``DuplicateRecord.existing``).
        """


class FileAuditStore:
    """One JSON file per record under ``<root>/<chain>/<seq:012d>.json``.

    The file is written in full to a temporary name, fsynced, and then hard-linked to its final
    name; ``link`` fails when the name exists, which makes the append an atomic
    compare-and-swap, and readers never see a half-written record. On a file system without
    hard links it falls back to ``open(O_CREAT | O_EXCL)``.

    Costs: :meth:`tail` reads the hint ``<chain>/.tail`` (the seq of the last append),
    steps forward past any record stored after it was written (a stat each), and parses one
    file; without a usable hint it lists the chain's directory (names only) instead. The hint
    is only a starting point, never trusted beyond an existing file, so a stale or lost one
    costs a few stats or one listing, never a wrong tail. :meth:`find` uses an index of empty files ``<chain>/.ids/<key>/<seq:012d>``
    (``key``: sha256 of the record id, truncated to 32 hex characters), so it lists one small
    directory and parses only the records that claim that id: constant in the chain's length.
    An index entry is created *before* the record's link, so every stored record has one (a
    writer that loses the race or dies leaves an entry for a seq that holds another record;
    :meth:`find` checks the record and skips it). A chain written before the index existed is
    indexed once, on first use (one pass over its records), marked by ``.ids/.complete``;
    delete that file to rebuild the index. All writers of a chain must be this version or later.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _chain_dir(self, chain: str) -> Path:
        _check_chain(chain)
        return self.root / chain

    @staticmethod
    def _name(seq: int) -> str:
        return f"{seq:012d}.json"

    def path_of(self, chain: str, seq: int) -> Path:
        """Where record ``seq`` of ``chain`` is (or would be) stored."""
        return self._chain_dir(chain) / self._name(seq)

    def chains(self) -> list[str]:
        """The chains present, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _CHAIN.fullmatch(p.name))

    def _names(self, chain: str) -> list[str]:
        """File names of the chain's records, unsorted (a directory listing, nothing parsed)."""
        try:
            names = os.listdir(self._chain_dir(chain))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [n for n in names if len(n) == 17 and n.endswith(".json") and n[:12].isascii() and n[:12].isdigit()]

    def _files(self, chain: str) -> list[Path]:
        folder = self._chain_dir(chain)
        return [folder / name for name in sorted(self._names(chain))]

    @staticmethod
    def _load(path: Path) -> Record:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptRecord(f"audit record {path} cannot be read as JSON (edited or truncated): {exc}") from None
        if not isinstance(data, dict):
            raise CorruptRecord(f"audit record {path} is not a JSON object (edited)")
        try:
            return Record.from_dict(data)
        except CorruptRecord as exc:
            raise CorruptRecord(f"audit record {path}: {exc}") from None

    def read_all(self, chain: str | None = None) -> list[Record]:
        """Every record of one chain (or of all chains) in ``seq`` order.

        Raises:
            CorruptRecord: naming the file when a stored record is not valid JSON.
        """
        names = [chain] if chain is not None else self.chains()
        return [self._load(p) for name in names for p in self._files(name)]

    def _hint_path(self, chain: str) -> Path:
        return self._chain_dir(chain) / ".tail"

    def _read_hint(self, chain: str) -> int | None:
        try:
            text = self._hint_path(chain).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isascii() and text.isdigit() else None

    def _write_hint(self, chain: str, seq: int) -> None:
        """Point the tail hint at ``seq`` (best effort: atomic rename, no fsync; it is only a hint)."""
        final = self._hint_path(chain)
        tmp = final.with_name(f".tail.{uuid.uuid4().hex}")
        try:
            tmp.write_text(str(seq), encoding="ascii")
            os.replace(tmp, final)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def tail(self, chain: str) -> Record | None:
        """The last record of the chain (the highest seq), or ``None`` when it is empty.

        From the tail hint: a few stats and one parse; without one, a listing of the chain's
        directory (names only) and one parse.

        Raises:
            CorruptRecord: when the last record is not valid JSON.
        """
        seq = self._read_hint(chain)
        if seq is not None and self.path_of(chain, seq).exists():
            while self.path_of(chain, seq + 1).exists():  # appended after the hint was written
                seq += 1
            return self._load(self.path_of(chain, seq))
        names = self._names(chain)  # zero-padded: the greatest name is the greatest seq
        return self._load(self._chain_dir(chain) / max(names)) if names else None

    @staticmethod
    def _id_key(record_id: str) -> str:
        return hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:32]

    def _index_dir(self, chain: str) -> Path:
        return self._chain_dir(chain) / ".ids"

    def _claim(self, chain: str, record_id: str, seq: int) -> None:
        """Add the index entry ``record_id -> seq`` (idempotent, durable before it returns)."""
        index = self._index_dir(chain)
        entry = index / self._id_key(record_id)
        try:
            entry.mkdir(parents=True)
            _fsync_dir(index)
        except FileExistsError:
            pass
        (entry / f"{seq:012d}").touch(exist_ok=True)
        _fsync_dir(entry)

    def _ensure_index(self, chain: str) -> None:
        """Index a chain written before the index existed (once; a no-op afterwards)."""
        folder = self._chain_dir(chain)
        marker = self._index_dir(chain) / ".complete"
        if marker.exists() or not folder.is_dir():
            return
        for path in self._files(chain):
            rec = self._load(path)
            self._claim(chain, rec.record_id, rec.seq)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch(exist_ok=True)

    def find(self, chain: str, record_id: str) -> Record | None:
        """The record with ``record_id`` in the chain, or ``None``.

        Lists ``.ids/<key>/`` (one entry per attempt to store that id) and parses those
        records only; the first call on a chain without an index builds it.

        Raises:
            CorruptRecord: when a candidate record is not valid JSON.
        """
        self._ensure_index(chain)
        entry = self._index_dir(chain) / self._id_key(record_id)
        try:
            names = sorted(n for n in os.listdir(entry) if re.fullmatch(r"\d{12}", n))
        except (FileNotFoundError, NotADirectoryError):
            return None
        for name in names:
            path = self.path_of(chain, int(name))
            if not path.exists():
                continue  # a writer lost the race (or died) after claiming the id
            rec = self._load(path)
            if rec.record_id == record_id:
                return rec
        return None

    def append(self, record: Record) -> None:
        """Store ``record`` at its ``seq``, atomically; fails if the ``seq`` is taken.

        Raises:
            ConcurrentAppend: when a record with that ``seq`` already exists in the chain.
            DuplicateRecord: when the chain already holds a record with ``record.record_id``.
                (Without a lock this check is not atomic with the link; :func:`append` reads
                the tail before it looks the id up, which closes that gap: see there.)
        """
        folder = self._chain_dir(record.chain)
        folder.mkdir(parents=True, exist_ok=True)
        existing = self.find(record.chain, record.record_id)
        if existing is not None:
            raise DuplicateRecord(existing)
        self._claim(record.chain, record.record_id, record.seq)
        final = folder / self._name(record.seq)
        payload = (
            json.dumps(record.to_dict(), sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False) + "\n"
        ).encode("ascii")
        tmp = folder / f".tmp-{uuid.uuid4().hex}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise ConcurrentAppend(f"record {record.seq} of chain {record.chain!r} already exists") from None
            except OSError:
                self._append_exclusive(final, payload, record)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        _fsync_dir(folder)
        self._write_hint(record.chain, record.seq)

    @staticmethod
    def _append_exclusive(final: Path, payload: bytes, record: Record) -> None:
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ConcurrentAppend(f"record {record.seq} of chain {record.chain!r} already exists") from None
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- append


def append(
    store: AuditStore,
    *,
    kind: str,
    environment: str,
    created_at: str,
    record_id: str | None = None,
    registered_model: str = "",
    actor: str = "",
    event: Mapping[str, Any] | None = None,
    commit: str | None = None,
    candidate_version: int | None = None,
    champion_version: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    policy_hash: str | None = None,
    verdict: str | None = None,
    reasons: Sequence[Mapping[str, Any]] | None = None,
    decision_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    max_tries: int = 20,
    rng: random.Random | None = None,
) -> Record:
    """Append one record to its chain (``registered_model``'s, else ``environment``'s), linked to the tail.

    Reads the tail, builds the record at ``tail.seq + 1`` with ``prev_hash = tail.hash`` and
    appends it; when another writer took that ``seq`` first it reads the new tail and tries
    again (at most ``max_tries`` times, with short jittered sleeps). Each attempt reads
    ``store.tail`` and, with a ``record_id``, ``store.find``: never the whole chain.

    Idempotent for a caller-chosen ``record_id``: when the chain already holds a record with
    that id (a re-run of the same event, or a concurrent run that got there first) that stored
    record is returned and nothing is appended. The tail is read *before* the id is looked up:
    a writer that stores the same id after the look-up takes a seq above that tail, so our
    compare-and-swap fails and the next attempt finds its record. Stores also refuse a
    duplicate id inside ``append`` (:class:`DuplicateRecord`), which is returned the same way.

    Args:
        store: where the chain lives.
        kind: one of :data:`KINDS`.
        environment: the environment decided for.
        created_at: ISO-8601 time of the decision (the caller's clock).
        record_id: a deterministic id for idempotent appends; a uuid4 when omitted.
        registered_model, actor, event, commit, candidate_version, champion_version, metrics,
            policy_hash, verdict, reasons, decision_id, details: the record's fields
            (see :class:`Record`).
        max_tries: bound on compare-and-swap attempts.
        rng: jitter source (tests); a fresh ``random.Random()`` by default.

    Returns:
        The stored record.

    Raises:
        AuditError: for bad field values.
        ConcurrentAppend: when every attempt lost the race.
    """
    rng = rng or random.Random()
    rid = record_id or uuid.uuid4().hex
    chain = registered_model or environment
    last_error: ConcurrentAppend | None = None
    for attempt in range(max(1, max_tries)):
        # tail first, then the id: anyone appending after the tail read takes our seq
        tail = store.tail(chain)
        if record_id is not None:
            found = store.find(chain, record_id)
            if found is not None:
                return found
        record = build(
            seq=0 if tail is None else tail.seq + 1,
            prev_hash=GENESIS if tail is None else tail.hash,
            kind=kind,
            environment=environment,
            created_at=created_at,
            record_id=rid,
            registered_model=registered_model,
            actor=actor,
            event=event,
            commit=commit,
            candidate_version=candidate_version,
            champion_version=champion_version,
            metrics=metrics,
            policy_hash=policy_hash,
            verdict=verdict,
            reasons=reasons,
            decision_id=decision_id,
            details=details,
        )
        try:
            store.append(record)
            return record
        except DuplicateRecord as exc:
            return exc.existing
        except ConcurrentAppend as exc:
            last_error = exc
            time.sleep(rng.uniform(0.001, 0.01) * min(attempt + 1, 5))
    raise ConcurrentAppend(
        f"could not append to the {chain!r} audit chain after {max(1, max_tries)} tries ({last_error})"
    )


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a chain, pointing at a record."""

    seq: int
    record_id: str
    problem: str
    chain: str = ""

    def __str__(self) -> str:
        where = f"{self.chain} " if self.chain else ""
        return f"{where}record {self.seq} ({self.record_id}): {self.problem}"


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found.

    Attributes:
        ok: ``True`` when every record's hash and link check out and no seq is missing.
        checked: how many records were checked.
        first_problem: the first problem found (chains in order, records in seq order).
        problems: every problem found.
    """

    ok: bool
    checked: int
    first_problem: Problem | None = None
    problems: tuple[Problem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON data."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_problem": None if self.first_problem is None else asdict(self.first_problem),
            "problems": [asdict(p) for p in self.problems],
        }


def _verify_chain(records: Sequence[Record], head: tuple[int, str] | None) -> list[Problem]:
    problems: list[Problem] = []
    prev: Record | None = None
    expected = 0
    for rec in records:
        env = rec.chain

        def report(text: str, rec: Record = rec, env: str = env) -> None:
            problems.append(Problem(rec.seq, rec.record_id, text, env))

        if prev is not None and rec.seq == prev.seq:
            report("duplicate seq")
        elif rec.seq > expected:
            report(f"missing record (seq gap {expected}..{rec.seq - 1})")
        elif rec.seq < expected:
            report(f"out of order (seq {rec.seq} after {prev.seq if prev else '-'})")
        try:
            edited = rec.computed_hash() != rec.hash
        except (ValueError, TypeError):
            edited = True
        if edited:
            report("edited (hash mismatch)")
        if prev is None:
            if rec.seq == 0 and rec.prev_hash != GENESIS:
                report("broken link (prev_hash of the first record is not the genesis hash)")
        elif rec.seq == prev.seq + 1 and rec.prev_hash != prev.hash:
            # (after a gap or a duplicate the link is not checked: that problem is already named)
            report(f"broken link (prev_hash does not match record {prev.seq})")
        prev = rec
        expected = max(expected, rec.seq + 1)
    if head is not None:
        head_seq, head_hash = head
        match = [r for r in records if r.seq == head_seq]
        if not match:
            last = records[-1] if records else None
            problems.append(
                Problem(
                    head_seq,
                    "",
                    f"missing record (the chain ends at seq "
                    f"{last.seq if last else -1} but record {head_seq} was recorded "
                    "as its head)",
                    last.chain if last else "",
                )
            )
        elif match[0].hash != head_hash:
            problems.append(
                Problem(head_seq, match[0].record_id, "edited (hash differs from the recorded head)", match[0].chain)
            )
    return problems


def verify(records: Iterable[Record], *, head: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute every hash and link; name the first edited, missing or re-linked record.

    Records of several chains (one per registered model) are checked separately (in order of first
    appearance). Pure: nothing is read or written.

    A hash chain alone cannot tell that records were cut off its *end*; pass ``head``
    (``(seq, hash)`` of the last record, kept somewhere else, e.g. a registered-model tag) to
    check that too.

    Args:
        records: records in ``seq`` order (as ``AuditStore.read_all`` returns them).
        head: optional ``(seq, hash)`` the chain's last record is known to have (single chain).

    Returns:
        A :class:`VerifyResult`.
    """
    chains: dict[str, list[Record]] = {}
    for rec in records:
        chains.setdefault(rec.chain, []).append(rec)
    problems: list[Problem] = []
    for env_records in chains.values():
        problems += _verify_chain(env_records, head if len(chains) == 1 else None)
    if not chains and head is not None:
        problems.append(Problem(head[0], "", "missing record (the chain is empty but has a recorded head)"))
    checked = sum(len(c) for c in chains.values())
    return VerifyResult(
        ok=not problems, checked=checked, first_problem=problems[0] if problems else None, problems=tuple(problems)
    )


# --------------------------------------------------------------------------- anchors
# Someone who can write to the tracking server can rewrite a chain *and* its head tag together
# (recomputing every hash), and `verify` alone cannot tell. At each prod decision the chain's
# head is therefore also written outside the tracking server (a git note on the release commit,
# a row in the lake's anchors table): an :class:`Anchor`. :func:`check_anchors` compares a chain
# with the anchors one store holds. An anchor at seq N pins records 0..N (each record's hash
# covers the previous one's), so a chain rewritten anywhere up to N no longer matches it.

ANCHOR_FIELDS: tuple[str, ...] = ("registered_model", "environment", "seq", "hash", "recorded_at", "kind")


@dataclass(frozen=True)
class Anchor:
    """A chain's head as it was when a prod decision was recorded, kept outside the tracking server.

    Attributes:
        registered_model: the chain's registered model (``hrob-risk-prod``).
        environment: the environment of the chain (the prod environment).
        seq: the seq of the record that was the head.
        hash: that record's hash.
        recorded_at: ISO-8601 time the anchor was written (the caller's clock).
        kind: that record's kind (``gate``, ``alias_move``, ...).
    """

    registered_model: str
    environment: str
    seq: int
    hash: str
    recorded_at: str
    kind: str

    @property
    def chain(self) -> str:
        """The chain anchored (as :attr:`Record.chain`)."""
        return self.registered_model or self.environment

    @property
    def key(self) -> tuple[str, int, str]:
        """``(chain, seq, hash)``: two anchors with the same key say the same thing."""
        return (self.chain, self.seq, self.hash)

    def to_dict(self) -> dict[str, Any]:
        """JSON data."""
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (one line: what a git note holds per anchor)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Anchor":
        """An anchor from stored JSON data.

        Raises:
            CorruptRecord: when fields are missing, unknown or of the wrong type.
        """
        if not isinstance(data, Mapping) or set(data) != set(ANCHOR_FIELDS):
            got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise CorruptRecord(f"not an audit anchor (fields {got}, expected {list(ANCHOR_FIELDS)})")
        seq = data["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise CorruptRecord(f"not an audit anchor (seq {seq!r} is not a whole number >= 0)")
        texts = {k: data[k] for k in ANCHOR_FIELDS if k != "seq"}
        if not all(isinstance(v, str) for v in texts.values()):
            raise CorruptRecord("not an audit anchor (every field but seq is text)")
        return cls(seq=seq, **texts)

    @classmethod
    def from_json(cls, text: str) -> "Anchor":
        """An anchor from one JSON line.

        Raises:
            CorruptRecord: when the line is not an anchor's JSON.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptRecord(f"not an audit anchor (invalid JSON: {exc.msg})") from None
        return cls.from_dict(data)


def anchor_of(record: Record, recorded_at: str) -> Anchor:
    """The anchor of ``record`` as the head of its chain (pure).

    Args:
        record: the record just appended.
        recorded_at: ISO-8601 time, given by the caller.
    """
    return Anchor(
        registered_model=record.registered_model,
        environment=record.environment,
        seq=record.seq,
        hash=record.hash,
        recorded_at=recorded_at,
        kind=record.kind,
    )


@dataclass(frozen=True)
class AnchorProblem:
    """One disagreement between a chain and the anchors of one store.

    Attributes:
        chain: the chain (its registered model).
        environment: the chain's environment.
        seq: the seq concerned (``None`` for the whole chain: no anchors at all).
        store: where the anchors came from (``git``, ``lake``).
        problem: what is wrong, in words.
    """

    chain: str
    environment: str
    seq: int | None
    store: str
    problem: str

    def __str__(self) -> str:
        at = "" if self.seq is None else f" seq {self.seq}"
        return f"{self.chain} ({self.environment}){at} [{self.store or 'anchors'}]: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        """JSON data."""
        return asdict(self)


def check_anchors(
    records: Sequence[Record],
    anchors: Sequence[Anchor] | None,
    *,
    store: str = "",
    chain: str | None = None,
    environment: str = "",
) -> list[AnchorProblem]:
    """Compare one chain with the anchors one store holds for it (pure).

    Problems, in this order:

    * the store is missing (``anchors`` is ``None``) or holds no anchor, for a chain that has
      records (an empty chain with no anchors is fine);
    * anchors out of order (by ``recorded_at``, seqs must increase) or two anchors naming
      different hashes for one seq;
    * an anchor whose seq is beyond the chain's last record: the chain was **truncated**;
    * an anchor whose hash (or kind) differs from the chain's record at that seq: the chain
      was **rewritten** (even when every hash and the head tag were recomputed to match);
    * records after the newest anchor: not anchored (a forged append, or a decision whose
      anchor write failed, which that run reported as a warning).

    Exact duplicates (the same seq and hash twice) are one anchor. Anchors of other chains are
    ignored.

    Args:
        records: the chain in seq order (``AuditStore.read_all(chain)``); verify it with
            :func:`verify` too: anchors pin content, ``verify`` checks the links between them.
        anchors: the anchors of the store (of any chains), or ``None`` when the store is missing.
        store: the store's name, for the messages.
        chain: the chain to check (default: the records' chain).
        environment: its environment (default: the records').

    Returns:
        The problems (empty when the chain agrees with every anchor).
    """
    name = chain or (records[0].chain if records else "")
    env = environment or (records[0].environment if records else "")

    def problem(seq: int | None, text: str) -> AnchorProblem:
        return AnchorProblem(name, env, seq, store, text)

    if anchors is None:
        return [problem(None, "anchors store missing or unreadable")] if records else []
    own = [a for a in anchors if a.chain == name]
    unique = list({a.key: a for a in sorted(own, key=lambda a: (a.recorded_at, a.seq))}.values())
    if not unique:
        if not records:
            return []
        return [problem(None, f"no anchors for a chain of {len(records)} record(s) (store empty, or not fetched)")]
    problems: list[AnchorProblem] = []
    newest: Anchor | None = None
    hashes: dict[int, str] = {}
    for a in unique:
        if a.seq in hashes and hashes[a.seq] != a.hash:
            problems.append(problem(a.seq, "two anchors name different hashes for this seq (the anchors were edited)"))
        hashes.setdefault(a.seq, a.hash)
        if newest is not None and a.seq < newest.seq:
            problems.append(
                problem(
                    a.seq,
                    f"anchors out of order (recorded at {a.recorded_at}, after the anchor of seq {newest.seq} "
                    f"recorded at {newest.recorded_at})",
                )
            )
        if newest is None or a.seq > newest.seq:
            newest = a
    by_seq = {r.seq: r for r in records}
    last = records[-1].seq if records else -1
    for a in sorted(unique, key=lambda a: a.seq):
        rec = by_seq.get(a.seq)
        if rec is None:
            if a.seq > last:
                problems.append(
                    problem(a.seq, f"truncated (the chain ends at seq {last}; the anchor names record {a.seq})")
                )
            else:
                problems.append(problem(a.seq, "missing record (anchored, but the chain has no record at this seq)"))
        elif rec.hash != a.hash:
            problems.append(
                problem(
                    a.seq, f"rewritten (hash {rec.hash[:12]} in the chain, {a.hash[:12]} anchored at {a.recorded_at})"
                )
            )
        elif rec.kind != a.kind:
            problems.append(problem(a.seq, f"rewritten (kind {rec.kind!r} in the chain, {a.kind!r} anchored)"))
    assert newest is not None
    after = [r.seq for r in records if r.seq > newest.seq]
    if after:
        span = str(after[0]) if len(after) == 1 else f"{after[0]}..{after[-1]}"
        problems.append(
            problem(
                after[0],
                f"not anchored: record(s) {span} after the newest anchor (seq {newest.seq}); a forged "
                "append, or a decision whose anchor write failed (its run reported a warning)",
            )
        )
    return problems
