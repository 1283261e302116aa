"""Audit anchors: each prod decision notes the chain's head in git and in the lake, and
`promote audit verify --anchors` catches a chain rewritten together with its head tag."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promoter import config, gitops, lake
from promoter.app import queries
from promoter.app.connect import open_registry
from promoter.app.recording import Recorder
from promoter.cli import main
from promoter.core import audit
from promoter.registry import AUDIT_HEAD
from tests.conftest import git

MODEL = "hrob-risk-prod"


class Clock:
    """A clock that ticks one second per reading (records and anchors in a known order)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@pytest.fixture
def project(git_repo: Path, tmp_path: Path, monkeypatch):
    """The reference project in a real git repo, a SQLite registry and a lake, all in tmp_path."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'reg.db'}")
    monkeypatch.setenv("PROMOTE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.delenv("PROMOTE_AUDIT_ANCHOR_PUSH", raising=False)
    monkeypatch.chdir(git_repo)
    return git_repo


def _recorder(repo: Path, env: str = "prod", clock: Clock | None = None, repo_path: Path | None = None) -> Recorder:
    cfg = repo / "configs"
    settings = config.load(cfg, env)
    return Recorder(
        settings,
        open_registry(settings).audit_store(),
        env,
        settings.model_name_for(env),
        actor="ci",
        event={"kind": "release", "branch": "release/1.0", "sha": git(repo, "rev-parse", "HEAD")},
        clock=clock or Clock(),
        repo_path=repo if repo_path is None else repo_path,
    )


def _decide(rec: Recorder) -> list[audit.Record]:
    """A release's prod decisions: gate PASS, the alias move, the first scoring run."""
    gate = rec.record("gate", record_id="g1", candidate_version=2, champion_version=1, verdict="PASS")
    move = rec.record("alias_move", record_id="m1", candidate_version=2, champion_version=1, decision_id=gate.record_id)
    score = rec.record("scoring", details={"rows": 100})
    return [gate, move, score]


def _lake_anchors(repo: Path, env: str = "prod") -> list[audit.Anchor] | None:
    settings = config.load(repo / "configs", env)
    return lake.read_anchors(lake.anchors_table_path(settings.project.lake))


def _rewrite_chain_and_head(repo: Path, chain: str, from_seq: int) -> None:
    """What someone with write access to the tracking server can do: edit a record, recompute
    every later hash and link, rewrite each run's tags and move the head tag to match."""
    settings = config.load(repo / "configs", "prod")
    store = open_registry(settings).audit_store()
    client = store.registry.client
    records = store.read_all(chain)
    prev = records[from_seq - 1].hash if from_seq else audit.GENESIS
    for old in records[from_seq:]:
        data = old.to_dict()
        if old.seq == from_seq:
            data["candidate_version"] = 99  # "version 99 passed the gate"
        data["prev_hash"] = prev
        data["hash"] = audit.record_hash(data)
        new = audit.Record.from_dict(data)
        run_id = store.run_id_of(chain, old.seq)
        for key, value in store._run_tags(new).items():
            client.set_tag(run_id, key, value)
        prev = new.hash
    client.set_experiment_tag(store.experiment_id, AUDIT_HEAD + chain, f"{new.seq}:{new.hash}:{run_id}")


def _cli(*args: str, capsys) -> tuple[int, str, str]:
    code = main(["--config-dir", "configs", "audit", "verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prod_decisions_are_anchored_in_git_and_in_the_lake(project: Path, capsys):
    rec = _recorder(project)
    records = _decide(rec)
    assert rec.warnings == []
    head = git(project, "rev-parse", "HEAD")
    lines = git(project, "notes", "--ref", gitops.AUDIT_NOTES_REF, "show", head).splitlines()
    anchors = [audit.Anchor.from_json(line) for line in lines]
    assert [(a.registered_model, a.environment, a.seq, a.hash, a.kind) for a in anchors] == [
        (MODEL, "prod", r.seq, r.hash, r.kind) for r in records
    ]
    assert all(a.recorded_at >= r.created_at for a, r in zip(anchors, records, strict=True))
    assert sorted(_lake_anchors(project), key=lambda a: a.seq) == anchors

    # a re-run of the same decisions adds no record and no anchor
    again = _recorder(project)
    again.record("gate", record_id="g1", candidate_version=2, champion_version=1, verdict="PASS")
    assert len(git(project, "notes", "--ref", gitops.AUDIT_NOTES_REF, "show", head).splitlines()) == 3
    assert len(_lake_anchors(project)) == 3

    checks = queries.verify_anchors(project / "configs", "prod")
    assert checks["prod"].ok and checks["prod"].checked == {"git": 3, "lake": 3}
    code, out, err = _cli("--env", "prod", "--anchors", capsys=capsys)
    assert code == 0, err
    assert "prod: ok, 3 record(s)" in out
    assert "prod: anchors ok, 6 anchor(s) checked (3 in git, 3 in lake)" in out
    # without --anchors: as before
    code, out, _ = _cli("--env", "prod", capsys=capsys)
    assert code == 0 and "anchors" not in out


def test_dev_and_staging_decisions_write_no_anchors(project: Path, capsys):
    for env in ("dev", "staging"):
        rec = _recorder(project, env)
        rec.record("gate", candidate_version=1, verdict="PASS")
        assert rec.warnings == []
        assert _lake_anchors(project, env) is None
    assert gitops.note_lines(project) == []
    code, out, err = _cli("--anchors", capsys=capsys)
    assert "staging: anchors: none (only the prod environment's decisions are anchored)" in out
    assert "dev: anchors: none" in out
    # prod has no chain yet: nothing to check, nothing wrong
    assert code == 0, err


@pytest.mark.parametrize("kept", ["git", "lake"])
def test_verify_anchors_detects_a_chain_and_head_rewritten_together(project: Path, capsys, kept: str):
    _decide(_recorder(project))
    _rewrite_chain_and_head(project, MODEL, from_seq=1)
    # the forgery is consistent: plain verify passes
    code, out, err = _cli("--env", "prod", capsys=capsys)
    assert code == 0, err
    assert "prod: ok, 3 record(s)" in out
    # one store alone is enough: lose the other
    if kept == "git":
        shutil.rmtree(lake.anchors_table_path(config.load(project / "configs", "prod").project.lake))
    else:
        git(project, "update-ref", "-d", gitops.AUDIT_NOTES_REF)
    code, out, err = _cli("--env", "prod", "--anchors", capsys=capsys)
    assert code == 2
    lost = "lake" if kept == "git" else "git"
    problems = [line for line in out.splitlines() if "ANCHOR PROBLEM" in line]
    assert f"prod: ANCHOR PROBLEM: {MODEL} (prod) seq 1 [{kept}]: rewritten" in out
    assert f"{MODEL} (prod) seq 2 [{kept}]: rewritten" in out
    assert not any(f"seq 0 [{kept}]" in line for line in problems)  # seq 0 was not touched
    assert any(f"[{lost}]" in line for line in problems)  # the lost store is named too
    assert "does not match its anchors" in err


def test_verify_anchors_detects_a_truncated_chain(project: Path, capsys):
    _decide(_recorder(project))
    settings = config.load(project / "configs", "prod")
    store = open_registry(settings).audit_store()
    client = store.registry.client
    # delete the newest record and point the head at the one before: plain verify is content
    client.delete_run(store.run_id_of(MODEL, 2))
    tail = store.read_all(MODEL)[-1]
    client.set_experiment_tag(
        store.experiment_id, AUDIT_HEAD + MODEL, f"{tail.seq}:{tail.hash}:{store.run_id_of(MODEL, tail.seq)}"
    )
    assert queries.verify(project / "configs", "prod")["prod"].ok
    checks = queries.verify_anchors(project / "configs", "prod")["prod"]
    assert {(p.store, p.seq, p.problem.split(" (")[0]) for p in checks.problems} == {
        ("git", 2, "truncated"),
        ("lake", 2, "truncated"),
    }
    code, out, _ = _cli("--env", "prod", "--anchors", "--json", capsys=capsys)
    assert code == 2
    data = json.loads(out)
    assert data["prod"]["ok"] is True and data["prod"]["anchors"]["ok"] is False


def test_an_anchor_that_cannot_be_written_is_a_warning_not_a_lost_decision(project: Path, tmp_path: Path):
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    rec = _recorder(project, repo_path=elsewhere)
    warned: list[str] = []
    rec.on_warning = warned.append
    gate = rec.record("gate", candidate_version=2, verdict="PASS")
    assert [r.record_id for r in rec.chain()] == [gate.record_id]
    assert len(warned) == 1 and "not written to git" in warned[0] and f"{MODEL} seq 0" in warned[0]
    assert rec.warnings == warned
    assert [a.seq for a in _lake_anchors(project)] == [0]  # the other store still has it


def test_anchors_are_pushed_to_origin_and_merged_with_another_runners(project: Path, tmp_path: Path):
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "origin", "main")
    # another runner (another model's release) pushed its anchor first
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(remote), str(other))
    theirs = audit.Anchor("other-prod", "prod", 0, "a" * 64, "2026-11-23T08:00:00+00:00", "gate")
    gitops.add_note_line(other, theirs.to_json())
    gitops.push_notes(other)

    rec = _recorder(project)
    _decide(rec)
    assert rec.warnings == []
    mirror = tmp_path / "check"
    git(tmp_path, "clone", "-q", "-b", "main", str(remote), str(mirror))
    git(mirror, "fetch", "-q", "origin", f"{gitops.AUDIT_NOTES_REF}:{gitops.AUDIT_NOTES_REF}")
    pushed = [audit.Anchor.from_json(line) for line in gitops.note_lines(mirror)]
    assert {(a.chain, a.seq) for a in pushed} == {("other-prod", 0), (MODEL, 0), (MODEL, 1), (MODEL, 2)}
    # the project's checks read the merged notes from the other clone too
    assert queries.verify_anchors(project / "configs", "prod", repo=mirror)["prod"].ok


def test_a_failed_push_is_a_warning_that_says_how_to_push(project: Path, tmp_path: Path):
    git(project, "remote", "add", "origin", str(tmp_path / "no-such-remote.git"))
    rec = _recorder(project)
    rec.on_warning = lambda _m: None
    rec.record("gate", candidate_version=2, verdict="PASS")
    assert len(rec.warnings) == 1
    assert "was not pushed" in rec.warnings[0]
    assert f"git push origin {gitops.AUDIT_NOTES_REF}" in rec.warnings[0]
    assert len(gitops.note_lines(project)) == 1  # kept locally
