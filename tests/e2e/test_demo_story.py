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
from promoter.cli import main
from tests.e2e.helpers import SMALL_DATA_PROD_POLICY
from tests.report.conftest import TOKEN, FakeApi

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
# monitoring in prod: owners hear of alerts on a GitHub issue and a webhook; a retrain request
# dispatches the release branch's workflow (all against the local fake API)
READMISSION_MONITORING = {
    "alerts": {"github": {"enabled": True, "labels": ["model-monitoring"]}, "webhook": {"url_env": "CARE_ALERTS_URL"}},
    "retrain": {"dispatch": {"github": {"enabled": True}}},
}
OVERRIDES = {
    "configs/prod/promotion.yml": SMALL_DATA_PROD_POLICY,
    "models/readmission/configs/prod/promotion.yml": SMALL_READMISSION_POLICY,
    "models/readmission/configs/prod/monitoring.yml": READMISSION_MONITORING,
}
MONITORING_KINDS = (
    ["scoring", "surveillance"] * 2
    + ["scoring", "surveillance", "retrain_requested"]
    + [
        "scoring",
        "surveillance",
    ]
)


def _run(tmp_path: Path, monkeypatch, story: str, api: FakeApi, **sizes) -> tuple[demo.DemoResult, str]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PROMOTE_LAKE_ROOT", raising=False)
    monkeypatch.delenv("PROMOTE_DATA_ROOT", raising=False)
    for name in ("GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI"):  # no CI provider: only the alert sinks talk
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/care-models")
    monkeypatch.setenv("GITHUB_API_URL", api.base_url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("CARE_ALERTS_URL", api.base_url + "/hooks/care-team")
    monkeypatch.setenv("PROMOTE_HTTP_DEADLINE", "4")
    lines: list[str] = []
    res = demo.run(tmp_path / "demo", seed=7, max_evals=2, say=lines.append, overrides=OVERRIDES, story=story, **sizes)
    monkeypatch.chdir(res.repo)  # the projects' stores and lake are relative to the repository
    return res, "\n".join(lines)


def _kinds(res: demo.DemoResult, project: demo.Project, env: str) -> list[str]:
    """The kinds of the records in ``project``'s chain of ``env``; every one is that model's."""
    records = queries.history(res.repo / project.config_dir, env)
    assert {r.registered_model for r in records} <= {f"{res.models[project.name]}-{env}"}, records
    return [r.kind for r in records]


def _evidence_packs(res: demo.DemoResult) -> None:
    """Each HROB prod version carries the evidence pack of its newest decision: v1 and v2 their
    PASS gate packs (v1 restored by the rollback: the rollback's pack), all with every section."""
    import json

    from promoter import config
    from promoter.app.connect import open_registry
    from promoter.app.evidence import EVIDENCE_RUN_TAG
    from promoter.registry.tracking import read_run_text
    from promoter.report.evidence import section_titles

    settings = config.load(res.repo / demo.HROB.config_dir, "prod")
    registry = open_registry(settings)
    model = settings.model_name_for("prod")
    kinds = {}
    for version in (1, 2):
        run_id = registry.version_info(model, version).tags[EVIDENCE_RUN_TAG]
        pack = json.loads(read_run_text(registry, run_id, "evidence/evidence.json"))
        md = read_run_text(registry, run_id, "evidence/evidence.md")
        assert all(f"## {t}" in md for t in section_titles())
        kinds[version] = (pack["decision"]["kind"], pack["decision"]["verdict"])
        assert "CHG-2026" in md  # the release's change ticket, from the release tag
    assert kinds == {1: ("rollback", "ROLLED_BACK"), 2: ("gate", "PASS")}


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


def _monitoring(res: demo.DemoResult, text: str, api: FakeApi) -> None:
    """Readmission's four daily runs: a stable day that is not flagged, a planted drift that is,
    outcomes that mature into realised performance per subgroup, one retrain request."""
    days = [m for m in res.monitoring if m.project == "readmission"]
    assert [m.verdict for m in days] == ["OK", "ALERT", "ALERT", "ALERT"], [(m.verdict, m.alerts) for m in days]
    for m in days:  # the schedule's plan, executed as planned
        assert m.planned == m.executed == ["score", "surveillance", "report"], m
    stable, drifted, matured, pending = days
    assert stable.alerts == [] and not stable.retrain["request"]
    assert any(a.startswith("input drift vs the training snapshot") for a in drifted.alerts), drifted.alerts
    assert not drifted.retrain["request"]  # one breached window of the last five is not enough
    # realised performance: the first day's outcomes matured after the label delay
    assert matured.realised is not None and matured.realised["score_date"] == stable.score_date.isoformat()
    m = matured.realised["metrics"]
    assert 0.5 < m["roc_auc"] <= 1 and m["positives"] > 0 and m["n"] == matured.realised["labelled"] > 0
    groups = matured.realised["subgroups"]
    assert set(groups) >= {"sex", "insurance_type", "age_group"}, groups
    assert sum(g["n"] for g in groups["sex"].values()) == m["n"]
    # sliced by the values the encounters had when scored (they are gone from today's data)
    assert "(missing)" not in groups["sex"] and len(groups["sex"]) >= 2, groups["sex"]
    assert "realised AUC by " in text and f"{stable.score_date}'s outcomes have matured" in text
    # the retrain: requested once, then suppressed while it is pending
    assert matured.retrain["request"] and "of the last" in matured.retrain["reason"], matured.retrain
    assert not pending.retrain["request"] and "pending since" in pending.retrain["suppressed"]
    dispatches = api.requests_to("POST", r"/repos/acme/care-models/actions/workflows/promote\.yml/dispatches")
    assert len(dispatches) == 1, dispatches
    assert dispatches[0].body["ref"] == "release" and dispatches[0].body["inputs"]["action"] == "run"
    assert dispatches[0].body["inputs"]["project"] == "readmission"
    # one issue for readmit-30d-prod, opened on the first alert and updated in place since
    issues = api.requests_to("POST", r"/repos/acme/care-models/issues$")
    assert len(issues) == 1 and issues[0].body["labels"] == ["model-monitoring"], issues
    updates = api.requests_to("PATCH", r"/repos/acme/care-models/issues/\d+$")
    assert len(updates) == 2 and pending.score_date.isoformat() in updates[-1].body["body"], updates
    hooks = api.requests_to("POST", r"/hooks/care-team$")
    assert [h.body["verdict"] for h in hooks] == ["ALERT"] * 3 and hooks[0].body["model_name"] == "readmit-30d-prod"
    assert TOKEN not in text


def _monitor_refuses_bad_input(res: demo.DemoResult, capsys, tmp_path: Path) -> None:
    """A bad monitoring.yml and a bad outcomes table each stop `promote monitor` with exit 2, one
    line naming the file and key or the rule, and nothing written to the monitoring tables."""
    repo = res.repo
    overlay = repo / demo.READMISSION.config_dir / "prod" / "monitoring.yml"
    lake_monitoring = repo / ".promote" / "lake" / "readmit-30d" / "monitoring"
    before = sorted(str(p) for p in lake_monitoring.rglob("*"))
    assert any("profile_metrics" in p for p in before) and any("drift_metrics" in p for p in before)
    day = res.monitoring[-1].score_date.isoformat()
    argv = ["--project", "readmission", "monitor", "--date", day]
    kept = overlay.read_text()
    overlay.write_text(kept + "drift:\n  max_drifted_share: 1.5\n")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prod/monitoring.yml" in err[0] and "drift.max_drifted_share" in err[0], err
    bad = tmp_path / "outcomes.csv"
    bad.write_text("patient_key,readmitted_on,readmitted\nP1,2026-01-05,2\n")
    overlay.write_text(
        kept + f"outcomes:\n  path: {bad}\n  format: csv\n  date_column: readmitted_on\n  label_column: readmitted\n"
    )
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()  # the steps' progress, then the one error line
    failures = [line for line in err if line.startswith("error:")]
    assert failures == err[-1:], err
    assert "monitoring.yml outcomes" in failures[0] and "readmitted: allowed_values [0, 1]" in failures[0], err
    overlay.write_text(kept)
    assert sorted(str(p) for p in lake_monitoring.rglob("*")) == before


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


@pytest.mark.slow  # about 8 minutes on 2 cores: make test-slow
def test_two_models_one_registry_rollback_of_one_leaves_the_other(tmp_path: Path, spark, monkeypatch, fake_api, capsys):
    res, text = _run(tmp_path, monkeypatch, "short", fake_api, members=2000, discharges=3000)
    print(text)  # the story as the demo tells it (pytest -rP shows it)
    (tmp_path / "story.txt").write_text(text)  # kept with the test's tmp_path to read afterwards
    _common(res, text, 3000)
    _monitoring(res, text, fake_api)
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
    assert _kinds(res, demo.READMISSION, "prod") == ["gate", "alias_move", "scoring"] + MONITORING_KINDS
    for project in demo.PROJECTS:
        for env, result in queries.verify(repo / project.config_dir, None).items():
            assert result.ok, (project.name, env, result)
    _evidence_packs(res)
    _names_are_its_own(repo, spark)
    _monitor_refuses_bad_input(res, capsys, tmp_path)


@pytest.mark.slow
def test_whole_two_model_story(tmp_path: Path, spark, monkeypatch, fake_api):
    res, text = _run(tmp_path, monkeypatch, "full", fake_api, members=2000, discharges=6000)
    _common(res, text, 6000)
    _monitoring(res, text, fake_api)
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
    assert [res.scored["readmission"][d]["model_version"] for d in days] == [1] * 5 + [2]  # release, 4 daily runs
    assert (days[-1] - days[-2]).days == 1
    repo = res.repo
    assert _kinds(res, demo.HROB, "prod")[-3:] == ["rollback", "hold", "gate"]
    assert _kinds(res, demo.READMISSION, "prod") == ["gate", "alias_move", "scoring", *MONITORING_KINDS] + [
        "gate",
        "alias_move",
        "scoring",
    ]
    for project in demo.PROJECTS:
        for env, result in queries.verify(repo / project.config_dir, None).items():
            assert result.ok, (project.name, env, result)
    _names_are_its_own(repo, spark)


def test_monitoring_story_alerts_matures_outcomes_and_asks_for_one_retrain(
    tmp_path: Path, spark, monkeypatch, fake_api, capsys
):
    """`promote monitor` end to end in make test: readmission's first champion, then a stable day
    (not flagged), a planted drift (flagged), outcomes maturing into realised performance per
    subgroup with the label delay, one retrain request; bad monitoring input refused (exit 2)."""
    res, text = _run(tmp_path, monkeypatch, "monitoring", fake_api, members=500, discharges=3000)
    print(text)
    first = res.decision("readmission", "release release/readmission/1.0")
    assert (first.environment, first.candidate, first.exit_code, first.champion_after) == ("prod", 1, 0, 1), first
    _monitoring(res, text, fake_api)
    assert _kinds(res, demo.READMISSION, "prod") == ["gate", "alias_move", "scoring"] + MONITORING_KINDS
    _monitor_refuses_bad_input(res, capsys, tmp_path)
