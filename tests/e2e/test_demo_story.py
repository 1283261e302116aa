"""The two-model demo end to end, on small data: HROB and readmission in one repository, one
registry and one lake, released in interleaved order. A rollback of HROB holds HROB only: the
readmission model's first prod release right after promotes normally, and each model's chain,
champion and predictions are its own.

The default run tells the short story (up to readmission's first release); the whole story
(HROB's refused 1.2, readmission's promoted 1.1) is the slow variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.app import demo, queries
from tests.e2e.helpers import SMALL_DATA_PROD_POLICY

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

HROB_NAMES = {"member_id", "member_key", "hrob_label", "snapshot_date", "race_ethnicity", "payer_type", "region"}
# a few thousand discharges: the same rules, limits that a few hundred held-out rows can measure
SMALL_READMISSION_POLICY = {
    "gate": {
        "prod": {
            "floors": {"roc_auc": 0.65, "pr_auc": 0.10},
            "ceilings": {"brier": 0.12, "ece": 0.08},
            "fairness": {"max_gap": 0.35, "max_regression": 0.15, "min_group_size": 100},
        }
    }
}
OVERRIDES = {
    "configs/prod/promotion.yml": SMALL_DATA_PROD_POLICY,
    "models/readmission/configs/prod/promotion.yml": SMALL_READMISSION_POLICY,
}


def _run(tmp_path: Path, monkeypatch, story: str, **sizes) -> tuple[demo.DemoResult, str]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PROMOTE_LAKE_ROOT", raising=False)
    monkeypatch.delenv("PROMOTE_DATA_ROOT", raising=False)
    lines: list[str] = []
    res = demo.run(tmp_path / "demo", seed=7, max_evals=2, say=lines.append, overrides=OVERRIDES, story=story, **sizes)
    monkeypatch.chdir(res.repo)  # the projects' stores and lake are relative to the repository
    return res, "\n".join(lines)


def _kinds(res: demo.DemoResult, project: demo.Project, env: str) -> list[str]:
    """The kinds of the records in ``project``'s chain of ``env``; every one is that model's."""
    records = queries.history(res.repo / project.config_dir, env)
    assert {r.registered_model for r in records} <= {f"{res.models[project.name]}-{env}"}, records
    return [r.kind for r in records]


def _common(res: demo.DemoResult, text: str, discharges: int) -> None:
    """What both stories show: plans kept, HROB 1.0 and 1.1 promoted, the rollback, readmission's
    dev, staging and first prod release promoted in spite of HROB's hold."""
    # invariant 13: each run executed exactly its plan; a run the gate stopped ran its steps up to
    # the stop, then only the report
    for d in res.decisions:
        if d.exit_code == 0:
            assert d.executed == d.planned, d
        else:
            stop = len(d.executed) - (1 if d.executed[-1:] == ["report"] else 0)
            assert d.executed[:stop] == d.planned[:stop] and set(d.executed) <= set(d.planned), d
    hrob = lambda event: res.decision("hrob", event)  # noqa: E731
    readm = lambda event: res.decision("readmission", event)  # noqa: E731

    pr1, merge1 = hrob("PR #1 feature/hrob-baseline -> main"), hrob("merge #1 into main")
    assert (pr1.model, pr1.environment) == ("hrob-risk", "staging") and pr1.verdict.startswith("PASS")
    assert merge1.candidate == pr1.candidate and merge1.champion_after == pr1.candidate  # reused, promoted
    r10, r11 = hrob("release release/1.0"), hrob("release release/1.1")
    assert (r10.environment, r10.candidate, r10.champion, r10.exit_code, r10.verdict) == (
        "prod",
        1,
        None,
        0,
        "PASS -> champion",
    )
    assert (r11.candidate, r11.champion, r11.exit_code, r11.verdict, r11.champion_after) == (
        2,
        1,
        0,
        "PASS -> champion",
        2,
    )
    assert r11.candidate_metric > r11.champion_metric
    rollback = next(d for d in res.decisions if d.event.startswith("rollback"))
    assert (rollback.model, rollback.champion, rollback.champion_after) == ("hrob-risk", 2, 1)

    # readmission in the same repository and registry, after HROB's rollback
    dev = readm("push feature/readmission-baseline")
    assert (dev.model, dev.environment, dev.exit_code) == ("readmit-30d", "dev", 0)
    assert readm("PR #3 feature/readmission-baseline -> main").verdict.startswith("PASS")
    assert readm("merge #3 into main").champion_after == 1
    first = readm("release release/readmission/1.0")
    # isolation: HROB's hold does not reach it (the regression of the issue: it waited, exit 4)
    assert (first.environment, first.candidate, first.champion, first.exit_code) == ("prod", 1, None, 0), first
    assert first.verdict == "PASS -> champion" and first.champion_after == 1

    # each model's predictions in its own folder of the one lake, scored by its own champion
    hrob_days = sorted(res.scored["hrob"])
    assert [res.scored["hrob"][d] for d in hrob_days][:2] == [
        {"rows": 2000, "model_version": 1},
        {"rows": 2000, "model_version": 2},
    ]
    assert list(res.scored["readmission"].values())[0] == {"rows": discharges, "model_version": 1}
    assert "hrob-risk" in text and "readmit-30d" in text and "finished in" in text
    assert "mlflow ui --backend-store-uri sqlite:///" in text


def _names_are_its_own(repo: Path, spark) -> None:
    """The readmission model went through with its own key, label and subgroups: no HROB name in
    its gold table or its predictions."""
    from deltalake import DeltaTable

    from pipelines import features, lake, score
    from promoter import config

    settings = config.load(repo / demo.READMISSION.config_dir, "prod")
    gold, catalog = features.load_gold(spark, settings)
    assert (catalog.id_column, catalog.label_column) == ("patient_key", "readmitted_30d")
    assert {"patient_key", "as_of_date", "sex", "insurance_type", "age_group"} <= set(gold.columns)
    assert not HROB_NAMES & set(gold.columns)
    assert lake.root(settings).endswith("/readmit-30d")
    predictions, _ = score.table_paths(settings)
    columns = set(DeltaTable(predictions).schema().to_arrow().names)
    assert "patient_key" in columns and not HROB_NAMES & columns, columns


def test_two_models_one_registry_rollback_of_one_leaves_the_other(tmp_path: Path, spark, monkeypatch):
    res, text = _run(tmp_path, monkeypatch, "short", members=2000, discharges=3000)
    _common(res, text, 3000)
    assert res.champions == {"hrob": 1, "readmission": 1}
    repo = res.repo
    # one registry, one chain per (model, environment); HROB's hold is in HROB's chain only
    assert _kinds(res, demo.HROB, "prod") == [
        "gate",
        "alias_move",
        "scoring",
        "gate",
        "alias_move",
        "scoring",
        "rollback",
        "hold",
    ]
    assert _kinds(res, demo.READMISSION, "prod") == ["gate", "alias_move", "scoring"]
    for project in demo.PROJECTS:
        for env, result in queries.verify(repo / project.config_dir, None).items():
            assert result.ok, (project.name, env, result)
    _names_are_its_own(repo, spark)


@pytest.mark.slow
def test_whole_two_model_story(tmp_path: Path, spark, monkeypatch):
    res, text = _run(tmp_path, monkeypatch, "full", members=2000, discharges=6000)
    _common(res, text, 6000)
    # HROB 1.2: the clinical groups dropped, refused against the rolled-back champion
    r12 = res.decision("hrob", "release release/1.2")
    assert (r12.candidate, r12.champion, r12.exit_code, r12.champion_after) == (3, 1, 3, 1)
    assert r12.verdict.startswith("FAIL") and r12.candidate_metric < r12.champion_metric
    # readmission 1.1: prior utilisation and social context added, promoted
    r11 = res.decision("readmission", "release release/readmission/1.1")
    assert (r11.candidate, r11.champion, r11.exit_code, r11.champion_after) == (2, 1, 0, 2)
    assert r11.verdict == "PASS -> champion" and r11.candidate_metric > r11.champion_metric
    assert res.champions == {"hrob": 1, "readmission": 2}
    days = sorted(res.scored["readmission"])
    assert [res.scored["readmission"][d]["model_version"] for d in days] == [1, 2]
    assert (days[1] - days[0]).days == 1
    repo = res.repo
    assert _kinds(res, demo.HROB, "prod")[-3:] == ["rollback", "hold", "gate"]
    assert _kinds(res, demo.READMISSION, "prod") == ["gate", "alias_move", "scoring"] * 2
    for project in demo.PROJECTS:
        for env, result in queries.verify(repo / project.config_dir, None).items():
            assert result.ok, (project.name, env, result)
    _names_are_its_own(repo, spark)
