"""Pure renderers of a run result: table-driven, no I/O."""

from __future__ import annotations

import re

import pytest

from promoter.report import markdown


def test_summary_shows_event_environment_metrics_ci_fairness_reasons_and_links(result_factory):
    text = markdown.summary(result_factory(status="FAIL", exit_code=3))
    assert text.startswith("## ❌ promote · staging · FAIL\n")
    assert "**Event:** pull request #7 `feature/x` → `main` @ `bbbbbbbbbbbb` (github)" in text
    assert "**Environment:** `staging` · registered model `hrob-risk-staging`" in text
    assert "| roc_auc | 0.8100 | 0.7900 | +0.0200 | [+0.0040, +0.0350] (95%, 500 resamples) |" in text
    assert "| brier | 0.1200 | 0.1300 | -0.0100 |  |" in text
    assert "| race_ethnicity | Black | 1200 | 0.8000 | 0.7900 | +0.0100 |" in text
    assert "| ✅ | `floor.roc_auc` | 0.8100 | 0.7000 | roc_auc 0.8100 >= floor 0.7000 |" in text
    assert "| ❌ | `improvement.roc_auc` |" in text and "below the required +0.0050" in text
    assert "### Verdict: ❌ FAIL (blocking)" in text
    assert "[run abc123de](http://mlflow.example/#/experiments/1/runs/abc)" in text
    assert "[mlflow](http://mlflow.example/)" in text and "[CI run](https://ci.example.org/runs/1)" in text
    assert "**Exit code:** 3 (gate said no)" in text
    assert "**Decision:** `dec-0001`" in text


def test_summary_without_gate_or_champion(result_factory):
    text = markdown.summary(result_factory(status=None, champion=None, steps=[]))
    assert "· no gate" in text.splitlines()[0]
    assert "champion: none" in text
    assert "### Verdict" not in text and "| metric |" not in text


def test_first_version_is_explained(result_factory):
    r = result_factory("prod", kind="push", champion=None)
    r["verdict"].update(
        first_version=True,
        comparison={"roc_auc": {"candidate": 0.8, "champion": None, "difference": None}},
        bootstrap=None,
    )
    text = markdown.summary(r)
    assert "First version in this environment" in text
    assert "| roc_auc | 0.8000 | – | – |  |" in text


def test_pipes_and_newlines_cannot_break_a_table(result_factory):
    r = result_factory()
    r["verdict"]["reasons"][0]["message"] = "a | b\nc"
    text = markdown.summary(r)
    assert "a \\| b c" in text
    row = next(line for line in text.splitlines() if "floor.roc_auc" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 6  # five cells, no extra column


def test_error_names_file_line_and_column(result_factory):
    r = result_factory(
        status=None,
        exit_code=2,
        error={
            "message": "must be a number, got 'high'",
            "file": "configs/base/promotion.yml",
            "line": 14,
            "column": 5,
        },
    )
    text = markdown.summary(r)
    assert "`configs/base/promotion.yml:14:5`: must be a number, got 'high'" in text
    assert markdown.headline(r) == "staging: error: must be a number, got 'high'"
    assert "error:        configs/base/promotion.yml:14:5: must be a number" in markdown.text(r)


def test_comment_starts_with_the_environment_marker(result_factory):
    body = markdown.comment(result_factory("prod"))
    assert body.startswith("<!-- promote:env=prod model=hrob-risk-prod -->\n## ")
    assert markdown.marker("staging") not in body


def test_comment_is_truncated_below_the_api_limit(result_factory):
    r = result_factory()
    r["verdict"]["reasons"] = [{"rule": f"r{i}", "passed": True, "message": "x" * 200} for i in range(600)]
    body = markdown.comment(r)
    assert len(body) < 65_536 and body.endswith("(truncated; the full report is in the job summary)\n")


@pytest.mark.parametrize(
    "status,exit_code,error,state",
    [
        ("PASS", 0, None, "success"),
        (None, 0, None, "success"),
        ("FAIL", 3, None, "failure"),
        ("FAIL", 0, None, "failure"),  # dry-run policy: reported as a failure, exit 0
        ("NEEDS_APPROVAL", 4, None, "pending"),
        (None, 2, {"message": "bad config"}, "error"),
        (None, 1, {"message": "boom"}, "error"),
    ],
)
def test_status_state(result_factory, status, exit_code, error, state):
    got, description = markdown.status(result_factory(status=status, exit_code=exit_code, error=error))
    assert got == state
    assert 0 < len(description) <= 140


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (
            {},
            {
                "environment": "staging",
                "verdict": "PASS",
                "candidate_version": "3",
                "champion_version": "2",
                "decision_id": "dec-0001",
            },
        ),
        (
            {"candidate": None, "champion": None, "decision_id": None, "status": None},
            {
                "environment": "staging",
                "verdict": "",
                "candidate_version": "",
                "champion_version": "",
                "decision_id": "",
            },
        ),
    ],
)
def test_outputs(result_factory, overrides, expected):
    status = overrides.pop("status", "PASS")
    got = markdown.outputs(result_factory(status=status, **overrides))
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    "overrides,headline",
    [
        ({"kind": "push", "environment": "prod"}, "prod: PASS, champion moved to version 3"),
        ({"status": "FAIL", "exit_code": 3}, "staging: FAIL, champion unchanged"),
        ({"status": None, "steps": [], "candidate": None}, "staging: nothing to do"),
        ({"status": None}, "staging: candidate version 3 registered"),
    ],
)
def test_headline(result_factory, overrides, headline):
    env = overrides.pop("environment", "staging")
    assert markdown.headline(result_factory(env, **overrides)) == headline


def test_renderers_tolerate_a_minimal_result():
    r = {"event": None, "environment": None, "exit_code": 0}
    assert markdown.summary(r).startswith("## ℹ️ promote · no environment")
    assert markdown.text(r).startswith("report:")
    assert markdown.outputs(r)["environment"] == ""


def test_a_monitoring_run_shows_its_verdict_alerts_and_retrain():
    from promoter.report import markdown as md

    result = {
        "environment": "prod",
        "registered_model": "m-prod",
        "exit_code": 0,
        "steps": [{"name": "surveillance", "status": "done", "reason": "monitor"}],
        "monitoring": {
            "verdict": "ALERT",
            "model_version": 2,
            "score_date": "2026-11-02",
            "alerts": ["input drift | 3 of 9 features"],
            "input_drift": {"BASELINE": {"tested": 9, "drifted_count": 3, "top": ["bmi", "age"]}},
            "prediction": {"score_psi": {"CONSECUTIVE": 0.31}},
            "performance": [{"score_date": "2026-10-01", "labelled": 40, "metrics": {"roc_auc": 0.7012}}],
            "retrain": {"request": False, "suppressed": "retrain already requested on 2026-11-01, pending"},
        },
    }
    text = md.summary(result)
    assert "### Monitoring: ⚠️ ALERT (version 2, 2026-11-02)" in text
    assert "- input drift \\| 3 of 9 features" in text
    assert "| input drift (baseline) | 3 of 9 features drifted: `bmi`, `age` |" in text
    assert "AUC 0.7012" in text and "retrain already requested on 2026-11-01, pending" in text
    assert "### Monitoring" not in md.summary({**result, "monitoring": None})
