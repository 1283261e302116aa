"""The audit chain's Delta mirror: appended per decision, rebuilt for repair, read back and verified."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

from promoter import lake
from promoter.core.audit import FileAuditStore, Record, verify
from promoter.registry import Registry
from tests.core.test_audit import _append  # one way to build a test chain


def _rows(path) -> list[dict]:
    table = DeltaTable(str(path)).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda r: (r["environment"], r["seq"]))


@pytest.fixture
def store(tmp_path: Path) -> FileAuditStore:
    return FileAuditStore(tmp_path / "audit")


@pytest.fixture
def chain(store: FileAuditStore) -> list[Record]:
    return [_append(store, i) for i in range(5)]


def test_rebuild_round_trips(tmp_path, store, chain):
    _append(store, 0, env="staging", metrics={"roc_auc": float("nan")})
    records = store.read_all(None)
    written = lake.rebuild_audit(records, tmp_path / "lake" / "audit")
    table = DeltaTable(str(tmp_path / "lake" / "audit")).to_pyarrow_table()
    assert written == table.num_rows == 6
    assert table.column_names == list(lake.DELTA_COLUMNS)
    back = [lake.from_delta_row(r) for r in _rows(tmp_path / "lake" / "audit")]
    assert back == records
    assert verify(back).ok
    assert lake.read_audit(tmp_path / "lake" / "audit") == records


def test_rebuild_overwrites_with_the_current_chain(tmp_path, store, chain):
    target = tmp_path / "audit_table"
    lake.rebuild_audit(chain[:2], target)
    lake.rebuild_audit(store.read_all("prod"), target)
    assert DeltaTable(str(target)).to_pyarrow_table().num_rows == 5


def test_appending_one_by_one_gives_the_rows_of_one_rebuild(tmp_path, store, chain):
    chain = chain + [_append(store, 0, env="staging"), _append(store, 5)]
    appended, rebuilt = tmp_path / "appended", tmp_path / "rebuilt"
    assert [lake.append_audit([r], appended) for r in chain] == [1] * len(chain)
    lake.rebuild_audit(store.read_all(None), rebuilt)
    assert _rows(appended) == _rows(rebuilt)
    assert DeltaTable(str(appended)).schema() == DeltaTable(str(rebuilt)).schema()
    assert DeltaTable(str(appended)).version() == len(chain) - 1  # one commit per append
    assert lake.read_audit(appended) == store.read_all(None)


def test_appending_continues_a_rebuilt_mirror(tmp_path, store, chain):
    target = tmp_path / "mirror"
    lake.rebuild_audit(chain[:3], target)
    assert lake.append_audit(chain[3:], target) == 2
    assert lake.read_audit(target) == chain and verify(lake.read_audit(target)).ok


def test_records_already_mirrored_are_not_written_twice(tmp_path, store, chain):
    target = tmp_path / "mirror"
    lake.append_audit(chain[:3], target)
    version = DeltaTable(str(target)).version()
    assert lake.append_audit([chain[1]], target) == 0
    assert lake.append_audit(chain[:3], target) == 0
    assert DeltaTable(str(target)).version() == version  # nothing committed
    assert lake.append_audit(chain, target) == 2  # only the new ones
    assert len(_rows(target)) == 5 and lake.read_audit(target) == chain
    assert lake.append_audit([], target) == 0


def test_an_idempotent_re_append_adds_nothing_to_the_store_or_the_mirror(tmp_path, mlflow_uri):
    store = Registry(mlflow_uri).audit_store()
    target = lake.audit_table_path(str(tmp_path / "lake"))
    first = _append(store, 0, record_id="gate-release-abc123")
    lake.append_audit([first], target)
    again = _append(store, 1, record_id="gate-release-abc123", verdict="FAIL")  # a re-run of the same event
    assert again == first
    assert lake.append_audit([again], target) == 0
    assert store.read_all("prod") == [first]
    assert lake.read_audit(target) == [first] and len(_rows(target)) == 1


def test_a_mirror_shared_with_another_chain_keeps_both_rows_and_is_repaired_by_a_rebuild(tmp_path, store, chain):
    other = FileAuditStore(tmp_path / "other")
    foreign = [_append(other, i, actor="elsewhere") for i in range(2)]
    target = tmp_path / "mirror"
    lake.append_audit(foreign, target)
    assert lake.append_audit(chain[:1], target) == 1  # the decision is recorded; the mirror never fails it
    result = verify(lake.read_audit(target))
    assert not result.ok and result.first_problem.problem == "duplicate seq"
    assert lake.rebuild_audit(chain, target) == 5  # the repair
    assert lake.read_audit(target) == chain


def test_read_audit_of_a_missing_table_and_of_duplicated_rows(tmp_path, chain):
    assert lake.read_audit(tmp_path / "nothing") == []
    target = tmp_path / "mirror"
    lake.rebuild_audit([chain[0], chain[1], chain[1]], target)  # two writers mirrored record 1 at once
    assert lake.read_audit(target) == chain[:2]


@pytest.mark.parametrize(
    "root,expected",
    [
        ("/data/lake", "/data/lake/audit/decisions"),
        ("relative/lake/", "relative/lake/audit/decisions"),
        ("s3://bucket/lake", "s3://bucket/lake/audit/decisions"),
        ("abfss://c@acct.dfs.core.windows.net/lake/", "abfss://c@acct.dfs.core.windows.net/lake/audit/decisions"),
    ],
    ids=["absolute", "relative", "s3", "abfss"],
)
def test_audit_table_path(root, expected):
    assert lake.audit_table_path(root) == expected


def test_the_core_does_not_import_the_lake_libraries():
    import subprocess
    import sys

    code = (
        "import sys; import promoter.core.audit; print(sorted(m for m in ('deltalake', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"
