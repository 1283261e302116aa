"""The audit chain's durable store: one MLflow run per record, kept with the registry."""

import json
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:  # pragma: no cover
    pass

from promoter.registry.client import Registry, _quote

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
        from promoter.core.audit import CorruptRecord, Record

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
        from promoter.core.audit import ConcurrentAppend

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
