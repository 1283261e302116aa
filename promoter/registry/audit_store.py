"""The audit chain's durable store: one MLflow run per record, kept with the registry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from promoter.registry.search import _code, _quote

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.audit import Record
    from promoter.registry.client import Registry

# =========================================================================== audit storage
# Durable, hash-chained decision records kept with the registry (DESIGN invariant 7), so a
# throw-away CI runner loses nothing: one MLflow run per record in the experiment
# ``promote-audit``, the record's canonical JSON split over tags (MLflow caps a tag value at
# 8,000 characters), and the chain's head (seq, hash and the run holding it) as an experiment
# tag, so deleting the newest record is detected too. Appends are serialised per chain by the
# registry lock and refuse a seq that is already taken (compare-and-swap) and a record id the
# chain already holds.
# ===========================================================================

AUDIT_EXPERIMENT = "promote-audit"
AUDIT_CHAIN = "promote.audit.chain"
AUDIT_SEQ = "promote.audit.seq"
AUDIT_KIND = "promote.audit.kind"
AUDIT_RECORD_ID = "promote.audit.record_id"
AUDIT_PARTS = "promote.audit.parts"
AUDIT_PART = "promote.audit.record."
AUDIT_HEAD = "promote.audit.head."
AUDIT_NEXT = "promote.audit.next."
_PART_SIZE = 7000


def _parse_head(value: str | None) -> tuple[int, str, str | None] | None:
    """``seq:hash`` or ``seq:hash:run_id`` (the run id since appends stopped searching for the tail)."""
    if not value or ":" not in value:
        return None
    parts = value.split(":")
    try:
        seq = int(parts[0])
    except ValueError:
        return None
    return seq, parts[1], (parts[2] or None) if len(parts) > 2 else None


class MlflowAuditStore:
    """An :class:`promoter.core.audit.AuditStore` in the MLflow tracking server of ``registry``.

    What each call costs, in tracking-server requests (none reads the whole chain):

    * :meth:`tail`: ``get_experiment`` (the head tag ``seq:hash:run_id``) and ``get_run``, both
      key lookups; a head tag without a run id (written before run ids were kept) costs one
      search by the seq tag instead.
    * :meth:`find`: one ``search_runs`` on the chain and record-id tags, one page.
    * :meth:`append`: the ``audit.<chain>`` registry lock (create, read and delete of a
      registered model), ``get_experiment``, one :meth:`find`, and four writes (the ``next``
      tag, ``create_run``, ``set_terminated``, the head tag).

    MLflow's SQL store has no index on tag values (the ``tags`` table's key is ``(key,
    run_uuid)``), so the database evaluates a tag search by scanning every run's row for that
    tag key: the request count is constant but a search gets slower as the experiment grows
    (``bench/audit.py``: about 2 ms at 10 records, 15-40 ms at 10,000). That is why :meth:`tail`
    follows the run id in the head tag instead of searching, and why searches name their
    selective tag (record id, seq) before the chain tag.
    """

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
            page = self.registry.client.search_runs(
                [self.experiment_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    @staticmethod
    def _chain_filter(chain: str) -> str:
        return f"tags.`{AUDIT_CHAIN}` = '{_quote(chain)}'"

    def _by_seq(self, chain: str, seq: int) -> list[Any]:
        # the selective tag first: SQLite evaluates the filters' joins in order (2x faster at 10k runs)
        return self._search(f"tags.`{AUDIT_SEQ}` = '{int(seq)}' and {self._chain_filter(chain)}")

    @staticmethod
    def _record_of(run: Any) -> "Record":
        from promoter.core.audit import CorruptRecord, Record

        tags = run.data.tags
        try:
            parts = int(tags.get(AUDIT_PARTS, "0"))
            text = "".join(tags[f"{AUDIT_PART}{i}"] for i in range(parts))
            return Record.from_dict(json.loads(text))
        except (KeyError, ValueError) as exc:
            raise CorruptRecord(f"audit run {run.info.run_id}: unreadable record ({exc})") from None

    def _experiment_tags(self) -> dict[str, str]:
        exp = self.registry.client.get_experiment(self.experiment_id)
        return dict(exp.tags or {})

    def _active_run(self, run_id: str) -> Any | None:
        from mlflow.exceptions import MlflowException

        try:
            run = self.registry.client.get_run(run_id)
        except MlflowException as exc:
            if _code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return run if run.info.lifecycle_stage == "active" else None

    def read_all(self, chain: str | None = None) -> list["Record"]:
        """Every record of one chain in seq order (all chains when ``chain`` is None)."""
        flt = self._chain_filter(chain) if chain else ""
        records = [self._record_of(run) for run in self._search(flt)]
        return sorted(records, key=lambda r: (r.chain, r.seq))

    def head(self, chain: str) -> tuple[int, str] | None:
        """(seq, hash) of the newest record as recorded at append time, or ``None``."""
        parsed = _parse_head(self._experiment_tags().get(AUDIT_HEAD + chain))
        return None if parsed is None else (parsed[0], parsed[1])

    def tail(self, chain: str) -> "Record | None":
        """The chain's newest record, found through the head tag (no search when it names the run).

        Returns:
            The record the head tag points at, or ``None`` for an empty chain.

        Raises:
            AuditError: when the head names a record no run holds any more (deleted: run
                ``promote audit verify``; appending stays refused until it is repaired).
            CorruptRecord: when that run's record cannot be parsed.
        """
        from promoter.core.audit import AuditError

        parsed = _parse_head(self._experiment_tags().get(AUDIT_HEAD + chain))
        if parsed is None:
            return None
        seq, digest, run_id = parsed
        if run_id:
            run = self._active_run(run_id)
            if run is not None and run.data.tags.get(AUDIT_CHAIN) == chain and run.data.tags.get(AUDIT_SEQ) == str(seq):
                return self._record_of(run)
        records = [self._record_of(run) for run in self._by_seq(chain, seq)]
        if not records:
            raise AuditError(
                f"the head of audit chain {chain!r} is record {seq}, but no run in "
                f"experiment {self.experiment!r} holds it (deleted?); `promote audit verify "
                f"--env <environment>` names the problem"
            )
        return next((r for r in records if r.hash == digest), records[0])

    def find(self, chain: str, record_id: str) -> "Record | None":
        """The record of the chain with ``record_id`` (one search by the record-id tag), or ``None``."""
        page = self.registry.client.search_runs(
            [self.experiment_id],
            max_results=50,
            filter_string=f"tags.`{AUDIT_RECORD_ID}` = '{_quote(record_id)}' and {self._chain_filter(chain)}",
        )
        records = [self._record_of(run) for run in page]
        found = [r for r in records if r.record_id == record_id and r.chain == chain]
        return min(found, key=lambda r: r.seq) if found else None

    @staticmethod
    def _run_name(record: "Record") -> str:
        return f"{record.chain}-{record.seq:06d}-{record.kind}"

    @staticmethod
    def _run_tags(record: "Record") -> dict[str, str]:
        """The tags of the run holding ``record``: its JSON split in parts, and the look-up tags."""
        text = record.to_json()
        parts = [text[i : i + _PART_SIZE] for i in range(0, len(text), _PART_SIZE)] or [""]
        return {
            AUDIT_CHAIN: record.chain,
            AUDIT_SEQ: str(record.seq),
            AUDIT_KIND: record.kind,
            AUDIT_RECORD_ID: record.record_id,
            AUDIT_PARTS: str(len(parts)),
            **{f"{AUDIT_PART}{i}": part for i, part in enumerate(parts)},
        }

    def _move_head(self, record: "Record", run_id: str) -> None:
        self.registry.client.set_experiment_tag(
            self.experiment_id, AUDIT_HEAD + record.chain, f"{record.seq}:{record.hash}:{run_id}"
        )

    def append(self, record: "Record") -> None:
        """Store ``record`` under the chain's registry lock.

        Under the lock: the head must be ``record.seq - 1`` (compare-and-swap) and no run of the
        chain may hold ``record.record_id``. The seq about to be written is announced in the
        ``promote.audit.next.<chain>`` tag first, so when a writer stopped after creating its run
        but before moving the head, the next writer finds that run (one search, only then),
        moves the head to it and retries instead of storing a second record at that seq.

        Raises:
            ConcurrentAppend: when ``record.seq`` is not the next seq of the chain.
            DuplicateRecord: when the chain already holds a record with ``record.record_id``.
        """
        from promoter.core.audit import ConcurrentAppend, DuplicateRecord

        env = record.chain
        with self.registry.lock(
            f"audit.{env}", ttl_seconds=120, timeout_seconds=300, poll_seconds=0.1, max_poll_seconds=1.0
        ):
            tags = self._experiment_tags()
            head = _parse_head(tags.get(AUDIT_HEAD + env))
            expected = 0 if head is None else head[0] + 1
            announced = tags.get(AUDIT_NEXT + env)
            if head is None or announced is None or not announced.isdigit() or int(announced) >= expected:
                # first record of the chain, or the last writer may have stopped between its run
                # and the head: a run at `expected` is then already there
                taken = self._by_seq(env, expected)
                if taken:
                    stored = self._record_of(taken[0])
                    self._move_head(stored, taken[0].info.run_id)
                    raise ConcurrentAppend(
                        f"seq {expected} of chain {env!r} is already taken (its writer "
                        "stopped before moving the head; the head now points at it)"
                    )
            if record.seq != expected:
                raise ConcurrentAppend(f"chain {env!r} head is seq {expected - 1}; cannot append seq {record.seq}")
            existing = self.find(env, record.record_id)
            if existing is not None:
                raise DuplicateRecord(existing)
            client = self.registry.client
            client.set_experiment_tag(self.experiment_id, AUDIT_NEXT + env, str(record.seq))
            run = client.create_run(self.experiment_id, run_name=self._run_name(record), tags=self._run_tags(record))
            client.set_terminated(run.info.run_id)
            self._move_head(record, run.info.run_id)

    def run_id_of(self, chain: str, seq: int) -> str | None:
        """The MLflow run holding record ``seq`` (for operators and tests)."""
        runs = self._by_seq(chain, seq)
        return runs[0].info.run_id if runs else None
