"""The audit chain kept with the registry: append, verify, tampering detected, constant-work appends."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from promoter.core import audit
from promoter.registry import AUDIT_HEAD, AUDIT_PART, MlflowAuditStore, Registry
from promoter.registry import audit_store as S


def _append(store, n, env="prod"):
    return [
        audit.append(
            store,
            kind="gate",
            environment=env,
            created_at=f"2026-11-23T10:00:{i:02d}+00:00",
            candidate_version=i + 1,
            verdict="PASS",
            metrics={"roc_auc": 0.7 + i / 100},
        )
        for i in range(n)
    ]


def test_records_round_trip_and_verify(mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    written = _append(store, 3)
    _append(store, 1, env="staging")
    read = store.read_all("prod")
    assert [r.to_dict() for r in read] == [r.to_dict() for r in written]
    assert audit.verify(read, head=store.head("prod")).ok
    assert [r.environment for r in store.read_all(None)] == ["prod"] * 3 + ["staging"]


def test_an_edited_record_is_named(mlflow_uri):
    registry = Registry(mlflow_uri)
    store = registry.audit_store()
    _append(store, 3)
    run_id = store.run_id_of("prod", 1)
    text = registry.client.get_run(run_id).data.tags[AUDIT_PART + "0"]
    edited = json.loads(text)
    edited["verdict"] = "FAIL"
    registry.client.set_tag(run_id, AUDIT_PART + "0", json.dumps(edited, sort_keys=True, separators=(",", ":")))
    result = audit.verify(store.read_all("prod"), head=store.head("prod"))
    assert not result.ok
    assert result.first_problem.seq == 1 and "edited" in result.first_problem.problem


def test_a_deleted_record_is_a_gap_and_a_deleted_tail_is_caught_by_the_head(mlflow_uri):
    registry = Registry(mlflow_uri)
    store = registry.audit_store()
    _append(store, 4)
    registry.client.delete_run(store.run_id_of("prod", 1))
    result = audit.verify(store.read_all("prod"), head=store.head("prod"))
    assert not result.ok and "missing" in result.first_problem.problem
    registry2 = Registry(mlflow_uri)
    store2 = registry2.audit_store()
    _append(store2, 2, env="dev")
    registry2.client.delete_run(store2.run_id_of("dev", 1))
    tail = audit.verify(store2.read_all("dev"), head=store2.head("dev"))
    assert not tail.ok and "missing" in tail.first_problem.problem
    with pytest.raises(audit.AuditError, match="audit verify"):  # no appending past a deleted head
        _append(store2, 1, env="dev")


def test_a_taken_seq_is_refused(mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    first = _append(store, 1)[0]
    clash = audit.build(
        seq=0, prev_hash=audit.GENESIS, kind="gate", environment="prod", created_at="2026-11-23T11:00:00+00:00"
    )
    with pytest.raises(audit.ConcurrentAppend):
        store.append(clash)
    assert [r.record_id for r in store.read_all("prod")] == [first.record_id]


def _worker(uri, i, q):
    store = Registry(uri).audit_store()
    rec = audit.append(
        store, kind="scoring", environment="prod", created_at=f"2026-11-23T12:00:{i:02d}+00:00", details={"worker": i}
    )
    # every process also records the same gate decision: exactly one may land
    same = audit.append(
        store,
        kind="gate",
        environment="prod",
        created_at=f"2026-11-23T12:01:{i:02d}+00:00",
        record_id="gate-release-deadbeef",
        verdict="PASS",
        details={"worker": i},
    )
    q.put((rec.seq, same.seq))


def test_concurrent_appends_from_processes_make_one_valid_chain(mlflow_uri):
    MlflowAuditStore(Registry(mlflow_uri))  # nothing created until first use
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(mlflow_uri, i, q)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert all(p.exitcode == 0 for p in procs)
    got = [q.get(timeout=5) for _ in procs]
    store = Registry(mlflow_uri).audit_store()
    records = store.read_all("prod")
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    assert sorted(seq for seq, _ in got) == sorted(r.seq for r in records if r.kind == "scoring")
    gates = [r for r in records if r.record_id == "gate-release-deadbeef"]
    assert len(gates) == 1 and {same for _, same in got} == {gates[0].seq}
    assert audit.verify(records, head=store.head("prod")).ok


# --------------------------------------------------------------------------- tail, find, constant work


class CountingClient:
    """The real MLflow client, counting the calls made through it."""

    def __init__(self, client):
        self._client, self.calls = client, []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


def test_tail_and_find_follow_the_head_and_the_record_id_tag(mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    assert store.tail("prod") is None and store.find("prod", "gate-x") is None
    written = [
        audit.append(
            store,
            kind="gate",
            environment="prod",
            created_at=f"2026-11-23T10:00:0{i}+00:00",
            record_id=f"gate-{i}",
            verdict="PASS",
        )
        for i in range(3)
    ]
    _append(store, 1, env="staging")
    assert store.tail("prod") == written[-1]
    assert store.find("prod", "gate-1") == written[1]
    assert store.find("staging", "gate-1") is None and store.find("prod", "gate-9") is None
    # a head tag written before it named its run: the tail is found by its seq tag
    store.registry.client.set_experiment_tag(store.experiment_id, AUDIT_HEAD + "prod", f"2:{written[2].hash}")
    assert store.head("prod") == (2, written[2].hash)
    assert store.tail("prod") == written[-1]
    assert _append(store, 1)[0].seq == 3


def test_an_idempotent_append_adds_nothing_and_the_store_refuses_a_duplicate_id(mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    first = audit.append(
        store,
        kind="gate",
        environment="prod",
        created_at="2026-11-23T10:00:00+00:00",
        record_id="gate-release-abc",
        verdict="PASS",
    )
    again = audit.append(
        store,
        kind="gate",
        environment="prod",
        created_at="2026-11-23T11:00:00+00:00",
        record_id="gate-release-abc",
        verdict="FAIL",
    )
    assert again == first and len(store.read_all("prod")) == 1
    twin = audit.build(
        seq=1,
        prev_hash=first.hash,
        kind="gate",
        environment="prod",
        created_at="2026-11-23T12:00:00+00:00",
        record_id="gate-release-abc",
    )
    with pytest.raises(audit.DuplicateRecord) as caught:  # checked under the chain's lock
        store.append(twin)
    assert caught.value.existing == first
    assert len(store.read_all("prod")) == 1 and store.head("prod") == (0, first.hash)


def test_the_client_calls_of_an_append_do_not_grow_with_the_chain(mlflow_uri):
    registry = Registry(mlflow_uri)
    store = registry.audit_store()
    counting = CountingClient(registry.client)
    registry.client = counting
    per_append = []
    for i in range(6):
        counting.calls.clear()
        audit.append(
            store, kind="gate", environment="prod", created_at=f"2026-11-23T10:00:0{i}+00:00", record_id=f"gate-{i}"
        )
        per_append.append(sorted(counting.calls))
    assert per_append[2:] == [per_append[1]] * 4  # the first append of a chain also checks seq 0 is free
    assert per_append[1].count("search_runs") == 2  # find, then find again under the lock
    counting.calls.clear()
    audit.append(store, kind="gate", environment="prod", created_at="2026-11-23T11:00:00+00:00", record_id="gate-3")
    assert sorted(counting.calls) == ["get_experiment", "get_run", "search_runs"]  # tail and find only
    assert audit.verify(store.read_all("prod"), head=store.head("prod")).ok


def test_a_writer_that_stopped_before_moving_the_head_is_recovered(mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    done = _append(store, 2)
    # a writer announces seq 2, creates its run, and dies before moving the head
    orphan = audit.build(
        seq=2, prev_hash=done[-1].hash, kind="alias_move", environment="prod", created_at="2026-11-23T10:05:00+00:00"
    )
    client = store.registry.client
    client.set_experiment_tag(store.experiment_id, S.AUDIT_NEXT + "prod", "2")
    client.create_run(store.experiment_id, tags=store._run_tags(orphan))
    assert store.head("prod") == (1, done[-1].hash)
    rec = _append(store, 1)[0]
    assert rec.seq == 3 and rec.prev_hash == orphan.hash
    records = store.read_all("prod")
    assert [r.seq for r in records] == [0, 1, 2, 3] and records[2] == orphan
    assert audit.verify(records, head=store.head("prod")).ok
