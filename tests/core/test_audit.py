"""The audit trail: hash chain, tamper detection, compare-and-swap appends that read only the tail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from promoter.core import audit
from promoter.core.audit import (
    GENESIS,
    AuditError,
    AuditStore,
    ConcurrentAppend,
    CorruptRecord,
    DuplicateRecord,
    FileAuditStore,
    Record,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = "2026-01-05T10:00:00+00:00"


def _append(store: AuditStore, i: int, env: str = "prod", **kw) -> Record:
    fields = dict(
        kind="gate",
        environment=env,
        created_at=f"2026-01-05T10:00:{i:02d}+00:00",
        actor="ci",
        commit=f"{i:040x}",
        candidate_version=i + 2,
        champion_version=i + 1,
        metrics={"roc_auc": 0.8 + i / 1000},
        policy_hash="ab" * 32,
        verdict="PASS",
        reasons=[{"rule": "floor.roc_auc", "passed": True, "observed": 0.8, "limit": 0.7, "message": "ok"}],
        event={"kind": "release", "branch": "release"},
        details={"i": i},
    )
    fields.update(kw)
    return audit.append(store, **fields)


@pytest.fixture
def store(tmp_path: Path) -> FileAuditStore:
    return FileAuditStore(tmp_path / "audit")


@pytest.fixture
def chain(store: FileAuditStore) -> list[Record]:
    return [_append(store, i) for i in range(5)]


# --------------------------------------------------------------------------- building and appending


def test_appended_records_form_a_valid_chain(store, chain):
    records = store.read_all("prod")
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    assert records == chain
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))
    result = verify(records)
    assert result.ok and result.checked == 5 and result.first_problem is None


def test_hash_is_sha256_of_canonical_json_of_every_other_field(chain):
    import hashlib

    rec = chain[2]
    body = {k: v for k, v in rec.to_dict().items() if k != "hash"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    assert rec.hash == hashlib.sha256(blob.encode()).hexdigest()


def test_nan_and_numpy_values_are_stored_as_plain_json_and_hash_consistently(store):
    import numpy as np

    rec = _append(store, 0, metrics={"roc_auc": float("nan"), "n": np.int64(5), "ece": np.float32(0.5)})
    assert rec.metrics == {"roc_auc": None, "n": 5, "ece": 0.5}
    stored = store.read_all("prod")[0]
    assert stored == rec and verify([stored]).ok


def test_chains_are_per_environment(store):
    _append(store, 0, env="prod")
    _append(store, 0, env="staging")
    _append(store, 1, env="prod")
    assert [r.seq for r in store.read_all("prod")] == [0, 1]
    assert [r.seq for r in store.read_all("staging")] == [0]
    everything = store.read_all(None)
    assert [(r.environment, r.seq) for r in everything] == [("prod", 0), ("prod", 1), ("staging", 0)]
    assert verify(everything).ok


def test_append_with_a_known_record_id_is_idempotent(store):
    first = _append(store, 0, record_id="gate-release-abc123")
    again = _append(store, 0, record_id="gate-release-abc123", verdict="FAIL")
    assert again == first
    assert len(store.read_all("prod")) == 1


def test_store_append_is_compare_and_swap_on_seq(store, chain):
    rival = audit.build(seq=5, prev_hash=chain[-1].hash, kind="approval", environment="prod", created_at=T0)
    store.append(rival)
    loser = audit.build(seq=5, prev_hash=chain[-1].hash, kind="alias_move", environment="prod", created_at=T0)
    with pytest.raises(ConcurrentAppend):
        store.append(loser)
    assert store.read_all("prod")[-1] == rival


def test_append_retries_on_a_lost_race_and_links_to_the_winner(store, chain):
    class RacyStore:
        """Lets another writer slip in a record before our first append lands."""

        def __init__(self, inner: FileAuditStore):
            self.inner, self.raced = inner, False

        def read_all(self, environment=None):
            return self.inner.read_all(environment)

        def tail(self, environment):
            return self.inner.tail(environment)

        def find(self, environment, record_id):
            return self.inner.find(environment, record_id)

        def append(self, record):
            if not self.raced:
                self.raced = True
                _append(self.inner, 99, kind="hold")
            self.inner.append(record)

    racy = RacyStore(store)
    rec = _append(racy, 5, kind="approval")
    records = store.read_all("prod")
    assert [r.kind for r in records[-2:]] == ["hold", "approval"]
    assert rec.seq == 6 and rec.prev_hash == records[5].hash
    assert verify(records).ok


def test_append_gives_up_after_bounded_tries(store, chain):
    class AlwaysLoses:
        def read_all(self, environment=None):
            return store.read_all(environment)

        def tail(self, environment):
            return store.tail(environment)

        def find(self, environment, record_id):
            return store.find(environment, record_id)

        def append(self, record):
            raise ConcurrentAppend("taken")

    with pytest.raises(ConcurrentAppend, match="after 3 tries"):
        _append(AlwaysLoses(), 5, max_tries=3)


def test_two_models_in_one_environment_keep_separate_chains(store):
    a0 = _append(store, 0, registered_model="hie-a-prod")
    b0 = _append(store, 0, registered_model="hie-b-prod")
    a1 = _append(store, 1, registered_model="hie-a-prod")
    assert (a0.seq, b0.seq, a1.seq) == (0, 0, 1)
    assert a1.prev_hash == a0.hash and b0.prev_hash == audit.GENESIS
    assert [r.record_id for r in store.read_all("hie-a-prod")] == [a0.record_id, a1.record_id]
    assert [r.record_id for r in store.read_all("hie-b-prod")] == [b0.record_id]
    assert store.read_all("prod") == []  # the environment alone names no chain any more
    assert store.find("hie-b-prod", a1.record_id) is None
    result = verify(store.read_all(None))
    assert result.ok and result.checked == 3


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"kind": "promote"}, "unknown audit record kind"),
        ({"environment": "../etc"}, "bad name for an audit chain"),
        ({"registered_model": "a/../b"}, "bad name for an audit chain"),
        ({"created_at": ""}, "created_at is required"),
        ({"details": {"x": object()}}, "JSON data only"),
    ],
    ids=["unknown_kind", "path_like_environment", "path_like_model", "no_time", "non_json_value"],
)
def test_bad_records_are_refused(store, kw, message):
    with pytest.raises(AuditError, match=message):
        _append(store, 0, **kw)
    assert store.read_all(None) == []


# --------------------------------------------------------------------------- tail, find and constant work


class Counting:
    """The real store, counting what ``audit.append`` asks of it; reading a whole chain is refused."""

    def __init__(self, inner: FileAuditStore):
        self.inner = inner
        self.calls: list[str] = []

    def read_all(self, environment=None):
        raise AssertionError("audit.append read the whole chain")

    def tail(self, environment):
        self.calls.append("tail")
        return self.inner.tail(environment)

    def find(self, environment, record_id):
        self.calls.append("find")
        return self.inner.find(environment, record_id)

    def append(self, record):
        self.calls.append("append")
        self.inner.append(record)


def test_append_reads_the_tail_and_one_id_never_the_chain(store):
    counting = Counting(store)
    for i in range(3):
        counting.calls.clear()
        _append(counting, i, record_id=f"gate-{i}")
        assert counting.calls == ["tail", "find", "append"]
    counting.calls.clear()
    again = _append(counting, 1, record_id="gate-1")
    assert counting.calls == ["tail", "find"] and again.seq == 1
    counting.calls.clear()
    _append(counting, 3)  # no caller-chosen id: nothing to look up
    assert counting.calls == ["tail", "append"]
    assert [r.seq for r in store.read_all("prod")] == [0, 1, 2, 3] and verify(store.read_all("prod")).ok


def test_tail_and_find_of_the_file_store(store, chain):
    assert store.tail("prod") == chain[-1]
    assert store.tail("staging") is None
    assert store.find("prod", chain[2].record_id) == chain[2]
    assert store.find("prod", "no-such-id") is None
    assert store.find("staging", chain[2].record_id) is None  # ids are looked up per chain


def test_the_tail_hint_is_only_a_starting_point(store, chain):
    hint = store.root / "prod" / ".tail"
    assert hint.read_text() == "4"
    listed = []

    class Listing(FileAuditStore):
        def _names(self, environment):
            listed.append(environment)
            return super()._names(environment)

    lister = Listing(store.root)
    assert lister.tail("prod") == chain[4] and listed == []  # no directory listing
    hint.write_text("1")  # stale: another writer's rename landed last
    assert lister.tail("prod") == chain[4] and listed == []
    for text in ("99", "garbage"):  # ahead of the chain (its tail deleted) or unreadable
        hint.write_text(text)
        assert lister.tail("prod") == chain[4]
    hint.unlink()
    assert lister.tail("prod") == chain[4] and listed == ["prod"] * 3
    assert _append(store, 5).seq == 5 and hint.read_text() == "5"


def test_find_skips_an_id_claimed_by_a_writer_that_lost_the_race(store, chain):
    rival = audit.build(
        seq=5, prev_hash=chain[-1].hash, kind="hold", environment="prod", created_at=T0, record_id="gate-release-abc"
    )
    store.append(rival)
    loser = audit.build(
        seq=5, prev_hash=chain[-1].hash, kind="gate", environment="prod", created_at=T0, record_id="gate-release-xyz"
    )
    with pytest.raises(ConcurrentAppend):
        store.append(loser)
    assert store.find("prod", "gate-release-xyz") is None  # its claim points at seq 5, which holds the rival
    assert store.find("prod", "gate-release-abc") == rival
    rec = _append(store, 6, record_id="gate-release-xyz")
    assert rec.seq == 6 and store.find("prod", "gate-release-xyz") == rec


def test_a_chain_without_an_index_is_indexed_on_first_use(store, chain):
    import shutil

    shutil.rmtree(store.root / "prod" / ".ids")  # as written before the index existed
    assert store.find("prod", chain[3].record_id) == chain[3]
    assert (store.root / "prod" / ".ids" / ".complete").exists()
    again = _append(store, 3, record_id=chain[3].record_id)
    assert again == chain[3] and len(store.read_all("prod")) == 5


def test_store_append_refuses_a_record_id_the_chain_holds(store, chain):
    twin = audit.build(
        seq=5, prev_hash=chain[-1].hash, kind="gate", environment="prod", created_at=T0, record_id=chain[1].record_id
    )
    with pytest.raises(DuplicateRecord) as caught:
        store.append(twin)
    assert caught.value.existing == chain[1]
    assert len(store.read_all("prod")) == 5


def test_append_returns_the_stored_record_when_the_store_refuses_a_duplicate(store, chain):
    class StaleFind:
        """The real store behind a look-up that misses (as a lagging replica would)."""

        def read_all(self, environment=None):
            return store.read_all(environment)

        def tail(self, environment):
            return store.tail(environment)

        def find(self, environment, record_id):
            return None

        def append(self, record):
            store.append(record)

    got = _append(StaleFind(), 9, record_id=chain[2].record_id, verdict="FAIL")
    assert got == chain[2]
    assert len(store.read_all("prod")) == 5


# --------------------------------------------------------------------------- tamper detection


def _rewrite(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_editing_a_stored_field_is_named(store, chain):
    _rewrite(store.path_of("prod", 2), lambda d: d.update(verdict="FAIL"))
    result = verify(store.read_all("prod"))
    assert not result.ok
    assert (result.first_problem.seq, result.first_problem.record_id) == (2, chain[2].record_id)
    assert result.first_problem.problem == "edited (hash mismatch)"
    assert len(result.problems) == 1


def test_editing_a_nested_metric_is_named(store, chain):
    _rewrite(store.path_of("prod", 1), lambda d: d["metrics"].update(roc_auc=0.99))
    result = verify(store.read_all("prod"))
    assert result.first_problem.seq == 1 and result.first_problem.problem == "edited (hash mismatch)"


def test_editing_and_rehashing_a_record_breaks_the_next_link(store, chain):
    def forge(d):
        d["verdict"] = "FAIL"
        d["hash"] = audit.record_hash(d)

    _rewrite(store.path_of("prod", 2), forge)
    result = verify(store.read_all("prod"))
    assert result.first_problem.seq == 3
    assert result.first_problem.problem == "broken link (prev_hash does not match record 2)"


def test_deleting_a_middle_record_names_the_gap(store, chain):
    os.unlink(store.path_of("prod", 2))
    result = verify(store.read_all("prod"))
    assert result.first_problem.seq == 3
    assert result.first_problem.problem == "missing record (seq gap 2..2)"


def test_deleting_the_first_records_names_the_gap(store, chain):
    os.unlink(store.path_of("prod", 0))
    os.unlink(store.path_of("prod", 1))
    result = verify(store.read_all("prod"))
    assert result.first_problem.seq == 2
    assert result.first_problem.problem == "missing record (seq gap 0..1)"


def test_deleting_the_last_record_is_caught_with_a_known_head(store, chain):
    os.unlink(store.path_of("prod", 4))
    records = store.read_all("prod")
    assert verify(records).ok  # a bare hash chain cannot see a cut-off end...
    result = verify(records, head=(4, chain[4].hash))  # ...a head kept elsewhere can
    assert not result.ok and "missing record" in result.first_problem.problem


def test_relinking_prev_hash_is_named(store, chain):
    def relink(d):
        d["prev_hash"] = chain[1].hash  # record 3 claims to follow record 1
        d["hash"] = audit.record_hash(d)

    _rewrite(store.path_of("prod", 3), relink)
    result = verify(store.read_all("prod"))
    assert (result.first_problem.seq, result.first_problem.problem) == (
        3,
        "broken link (prev_hash does not match record 2)",
    )


def test_reordered_records_are_named(chain):
    result = verify([chain[0], chain[2], chain[1], chain[3]])
    assert (result.first_problem.seq, result.first_problem.problem) == (2, "missing record (seq gap 1..1)")
    assert any(p.problem.startswith("out of order") for p in result.problems)


def test_a_duplicated_seq_is_named(chain):
    twin = audit.build(seq=2, prev_hash=chain[1].hash, kind="hold", environment="prod", created_at=T0)
    result = verify([chain[0], chain[1], chain[2], twin, chain[3]])
    assert (result.first_problem.seq, result.first_problem.record_id) == (2, twin.record_id)
    assert result.first_problem.problem == "duplicate seq"


def test_a_first_record_not_linked_to_genesis_is_named(chain):
    forged = audit.build(seq=0, prev_hash="f" * 64, kind="gate", environment="prod", created_at=T0)
    result = verify([forged])
    assert result.first_problem.problem.startswith("broken link")


def test_a_record_edited_into_invalid_json_names_the_file(store, chain):
    path = store.path_of("prod", 1)
    path.write_text(path.read_text()[:40])
    with pytest.raises(CorruptRecord, match=str(path.name)):
        store.read_all("prod")


def test_verify_result_to_dict_is_json(store, chain):
    _rewrite(store.path_of("prod", 2), lambda d: d.update(actor="mallory"))
    data = json.loads(json.dumps(verify(store.read_all("prod")).to_dict()))
    assert data["ok"] is False and data["first_problem"]["seq"] == 2


# --------------------------------------------------------------------------- concurrency


def test_threads_appending_at_once_make_one_valid_chain(store):
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(5):
                _append(store, i, actor=f"thread-{worker}")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = store.read_all("prod")
    assert [r.seq for r in records] == list(range(40))
    assert len({r.record_id for r in records}) == 40
    assert verify(records).ok


_WORKER = """
import sys, time
from pathlib import Path
from promoter.core import audit
root, worker, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = audit.FileAuditStore(root)
while not go.exists():
    time.sleep(0.001)
for i in range(count):
    audit.append(store, kind="scoring", environment="prod", actor="proc-" + worker,
                 created_at="2026-01-05T10:00:00+00:00", details={"worker": worker, "i": i})
# every process also tries to record the same gate decision: exactly one may land
audit.append(store, kind="gate", environment="prod", actor="proc-" + worker, verdict="PASS",
             created_at="2026-01-05T10:00:00+00:00", record_id="gate-release-deadbeef")
"""


def test_processes_appending_at_once_make_one_valid_chain(tmp_path):
    root, go = tmp_path / "audit", tmp_path / "go"
    procs, per_proc = 6, 4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    running = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(root), str(w), str(per_proc), str(go)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(procs)
    ]
    time.sleep(0.5)  # let every interpreter start and wait at the line
    go.touch()
    for p in running:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    records = FileAuditStore(root).read_all("prod")
    assert [r.seq for r in records] == list(range(procs * per_proc + 1))
    assert sum(r.record_id == "gate-release-deadbeef" for r in records) == 1
    assert verify(records).ok
    assert not [p for p in (root / "prod").iterdir() if p.name.startswith(".tmp-")]
