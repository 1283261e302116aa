"""The audit chain kept with the registry: append, verify, and tampering detected."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from promoter.core import audit
from promoter.registry import AUDIT_PART, MlflowAuditStore, Registry


def _append(store, n, env="prod"):
    return [audit.append(store, kind="gate", environment=env, created_at=f"2026-11-23T10:00:{i:02d}+00:00",
                         candidate_version=i + 1, verdict="PASS", metrics={"roc_auc": 0.7 + i / 100})
            for i in range(n)]


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


def test_a_taken_seq_is_refused(mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    first = _append(store, 1)[0]
    clash = audit.build(seq=0, prev_hash=audit.GENESIS, kind="gate", environment="prod",
                        created_at="2026-11-23T11:00:00+00:00")
    with pytest.raises(audit.ConcurrentAppend):
        store.append(clash)
    assert [r.record_id for r in store.read_all("prod")] == [first.record_id]


def _worker(uri, i, q):
    store = Registry(uri).audit_store()
    rec = audit.append(store, kind="scoring", environment="prod", created_at=f"2026-11-23T12:00:{i:02d}+00:00",
                       details={"worker": i})
    q.put(rec.seq)


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
    seqs = sorted(q.get(timeout=5) for _ in procs)
    assert seqs == [0, 1, 2, 3]
    store = Registry(mlflow_uri).audit_store()
    assert audit.verify(store.read_all("prod"), head=store.head("prod")).ok
