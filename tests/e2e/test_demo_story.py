"""The demo's release story end to end, on a smaller population: every verdict, the champion
after each release, the predictions table, and an audit chain that verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.app import demo
from promoter.core import audit
from promoter.registry import Registry
from tests.e2e.helpers import SMALL_DATA_PROD_POLICY

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def test_release_story(tmp_path: Path, spark, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    lines: list[str] = []
    res = demo.run(
        tmp_path / "demo",
        members=2000,
        seed=7,
        max_evals=2,
        say=lines.append,
        overrides={"prod/promotion.yml": SMALL_DATA_PROD_POLICY},
    )
    by_event = {d.event: d for d in res.decisions}

    # invariant 13: each run executed exactly its plan; a run the gate stopped ran its steps up
    # to the stop, then only the report
    for d in res.decisions:
        if d.exit_code == 0:
            assert d.executed == d.planned, d
        else:
            stop = len(d.executed) - (1 if d.executed[-1:] == ["report"] else 0)
            assert d.executed[:stop] == d.planned[:stop] and set(d.executed) <= set(d.planned), d

    # dev and staging
    assert by_event["push feature/baseline"].environment == "dev"
    assert by_event["PR #1 feature/baseline -> main"].environment == "staging"
    assert by_event["PR #1 feature/baseline -> main"].verdict.startswith("PASS")
    merge1 = by_event["merge #1 into main"]
    assert merge1.environment == "staging" and "champion" in merge1.verdict
    # the merge reuses the PR's version (same tree, config and data)
    assert merge1.candidate == by_event["PR #1 feature/baseline -> main"].candidate

    # release 1.0: first prod champion
    r10 = by_event["release release/1.0"]
    assert (r10.environment, r10.candidate, r10.champion, r10.exit_code) == ("prod", 1, None, 0)
    assert r10.verdict == "PASS -> champion"
    # release 1.1: social determinants added, the challenger beats the champion
    r11 = by_event["release release/1.1"]
    assert (r11.candidate, r11.champion, r11.exit_code) == (2, 1, 0)
    assert r11.verdict == "PASS -> champion"
    assert r11.candidate_metric > r11.champion_metric
    # release 1.2: clinical groups dropped, the gate says no and the champion stays
    r12 = by_event["release release/1.2"]
    assert (r12.candidate, r12.champion, r12.exit_code) == (3, 2, 3)
    assert r12.verdict.startswith("FAIL")
    assert r12.candidate_metric < r12.champion_metric
    assert res.champion == 2

    # predictions: one partition per release day (1.0 two days ago, 1.1 yesterday), every member,
    # each scored by the champion of its day; the failed 1.2 scores nothing
    days = sorted(res.scored)
    assert len(days) == 2 and (days[1] - days[0]).days == 1, res.scored
    assert [res.scored[d] for d in days] == [{"rows": 2000, "model_version": 1}, {"rows": 2000, "model_version": 2}]

    # every chain verifies; prod holds the gate, move and scoring records of each release
    registry = Registry(res.mlflow_uri)
    store = registry.audit_store()
    for env in ("dev", "staging", "prod"):
        assert audit.verify(store.read_all(env), head=store.head(env)).ok, env
    prod_kinds = [r.kind for r in store.read_all("prod")]
    assert prod_kinds == ["gate", "alias_move", "scoring", "gate", "alias_move", "scoring", "gate"]
    text = "\n".join(lines)
    assert "mlflow ui --backend-store-uri sqlite:///" in text
    assert "release release/1.2" in text and "FAIL" in text
