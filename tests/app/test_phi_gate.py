"""The PHI gate looks at what a run produced (issue 14, item 6), on a real Spark and a real MLflow store.

One small prod release (contracts, features, train, gate, approval, promote, score, report) runs
clean; then a real bronze member's SSN or name is planted in a logged artifact, in a log line and
in the predictions table, and each is found, named by where, and never printed. The readmission
project (other PHI column names, one flat table) is indexed and scanned too.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest
import yaml

from promoter import config, errors
from promoter.app import demo, prepare, run, steps
from promoter.app import sources as events
from promoter.app.steps import gating, training
from tests.conftest import CONFIGS, ROOT, git
from tests.e2e.helpers import SMALL_DATA_PROD_POLICY, write_yaml

# about 2.5 minutes (Spark, 1,000 members, a prod release in-process): in make test-slow
pytestmark = [pytest.mark.spark, pytest.mark.slow]
MEMBERS = 1000
SCORE_DATE = date(2026, 1, 5)


@pytest.fixture(scope="module")
def released(tmp_path_factory, spark):
    """A prod release of a small HROB repo, run in-process; yields its state, result and bronze."""
    from pipelines import lake, synthetic

    root = tmp_path_factory.mktemp("phi-gate")
    repo = root / "repo"
    repo.mkdir()
    shutil.copytree(CONFIGS, repo / "configs")
    write_yaml(repo / "configs" / "prod" / "training.yml", {"max_evals": 1})
    write_yaml(repo / "configs" / "prod" / "promotion.yml", SMALL_DATA_PROD_POLICY)
    selection = repo / "configs" / "base" / "feature_selection_config.yml"
    chosen = yaml.safe_load(selection.read_text())
    chosen["include_groups"], chosen["exclude_groups"] = demo.CLINICAL_GROUPS, demo.SDOH_GROUPS  # a smaller model
    write_yaml(selection, chosen)
    (repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "model repo")
    git(repo, "branch", "release/1.0")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / '.promote' / 'mlflow.db'}")
        mp.setenv("PROMOTE_LAKE_ROOT", str(repo / ".promote" / "lake"))
        settings = config.load(repo / "configs", "prod")
        synthetic.generate(spark, settings, members=MEMBERS, seed=3, snapshot_date=date.today())
        prepared = prepare.prepare(events.from_local(repo, kind="push", branch="release/1.0"), "configs", repo)
        lines: list[str] = []
        state = run.new_state(
            prepared, repo_path=repo, spark=spark, publish=False, progress=lines.append, score_date=SCORE_DATE
        )
        try:
            result = run.run_steps(state)
        except Exception:
            print("\n".join(state.log_lines))
            raise
        members = pq.read_table(lake.path(settings, "bronze", "members")).slice(0, 3).to_pylist()
        yield state, result, members, mp


def _phi_reason(verdict) -> object:
    (reason,) = [r for r in verdict.reasons if r.rule == "phi"]
    return reason


def _never_printed(text: str, member: dict) -> None:
    for col in ("ssn", "first_name", "last_name", "member_id", "phone", "mrn", "street_address"):
        assert str(member[col]) not in text, col


def test_a_clean_release_passes_and_says_what_was_scanned(released):
    state, result, _, _ = released
    assert result.exit_code == 0 and result.champion_moved
    phi = next(r for r in result.verdict["reasons"] if r["rule"] == "phi")
    assert phi["passed"], phi
    message = phi["message"]
    assert message.startswith("scanned: signature, input example, ") and message.endswith("; no PHI found")
    assert " artifacts (" in message and "plots/roc.png (binary)" in message and " log lines" in message
    assert "distinct bronze PHI values of" in message
    log = "\n".join(state.log_lines)
    assert "PHI scan before registration: no PHI found" in log
    assert "PHI scan of the tables written: 0 finding(s)" in log and "2 tables (predictions, outreach)" in log


def test_a_planted_value_in_a_logged_artifact_fails_the_gate(released):
    state, _, members, _ = released
    member = members[0]
    run_id = state.candidate.run_id
    report = "\n".join([f"line {i}" for i in range(1, 12)] + [f"| member | {member['ssn']} | high |"])
    state.registry.client.log_text(run_id, report, "reports/gate.md")
    try:
        gating.gate_against(state, None)
        verdict = state.gate.verdict
        reason = _phi_reason(verdict)
        assert verdict.status == "FAIL" and not reason.passed
        assert "artifact reports/gate.md line 12: value of PHI column ssn" in reason.message, reason.message
        _never_printed(reason.message + "\n".join(state.log_lines), member)
        # the same file, had the training run logged it, stops the registration (exit 3)
        with pytest.raises(errors.GateRejected, match="was not registered") as exc:
            training._scan_before_register(state, run_id, state.candidate.model_uri)
        assert "artifact reports/gate.md line 12: value of PHI column ssn" in str(exc.value)
        _never_printed(str(exc.value), member)
    finally:
        artifacts = urlparse(state.registry.client.get_run(run_id).info.artifact_uri).path
        os.remove(Path(artifacts) / "reports" / "gate.md")


def test_a_planted_name_in_a_log_line_fails_the_gate(released):
    state, _, members, _ = released
    member = members[1]
    state.progress(f"      calling {member['first_name']} {member['last_name']} about the visit")
    n = len(state.log_lines)
    try:
        gating.gate_against(state, None)
        reason = _phi_reason(state.gate.verdict)
        assert state.gate.verdict.status == "FAIL" and not reason.passed
        assert f"log line {n}: value of PHI column first_name + last_name" in reason.message, reason.message
        _never_printed(reason.message, member)
    finally:
        state.log_lines.pop(n - 1)
    gating.gate_against(state, None)  # clean again: the artifact and the line are gone
    assert _phi_reason(state.gate.verdict).passed


def test_a_planted_value_in_the_predictions_table_fails_the_score_step(released):
    from pyspark.sql import functions as F

    import pipelines.score

    state, _, members, mp = released
    member = members[2]
    real = pipelines.score.score_population
    key = state.settings.project.data.key_column

    def leaky(spark, model, gold_df, **kw):
        first = gold_df.select(key).orderBy(key).first()[0]
        planted = gold_df.withColumn(key, F.when(F.col(key) == first, F.lit(member["ssn"])).otherwise(F.col(key)))
        return real(spark, model, planted, **kw)

    mp.setattr(pipelines.score, "score_population", leaky)
    try:
        with pytest.raises(errors.GateRejected) as exc:
            steps.STEPS["score"](state)
    finally:
        mp.setattr(pipelines.score, "score_population", real)
    message = str(exc.value)
    assert f"table predictions column {key} row " in message and "value of PHI column ssn" in message, message
    assert f"table outreach column {key}" in message or "table outreach" not in message
    assert "no scoring record was written" in message
    _never_printed(message + "\n".join(state.log_lines), member)


def test_a_project_with_other_phi_columns_is_indexed_and_scanned(tmp_path, spark):
    """readmission: PHI columns patient_id, patient_name, mrn, date_of_birth, home_phone."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipelines import phi as guard
    from pipelines import synthetic_readmission as sr

    configs = ROOT / "models" / "readmission" / "configs"
    settings = config.load(configs, "prod", environ={"PROMOTE_DATA_ROOT": str(tmp_path / "data")})
    sr.generate(settings, rows=300, seed=5, as_of=date(2024, 9, 30))
    index = guard.bronze_index(spark, settings, os.urandom(16))
    # every PHI column but date_of_birth: a bare date is too common to match on its own
    assert set(index.columns) == {"patient_id", "patient_name", "mrn", "home_phone"}
    assert "distinct bronze PHI values of 4 column(s)" in index.description
    bronze = pq.read_table(settings.project.data.tables["discharges"].path).slice(0, 1).to_pylist()[0]

    table = tmp_path / "lake" / "predictions"
    rows = {"patient_key": ["k1", "k2", "k3"], "note": ["ok", f"{bronze['patient_name']}, seen", None]}
    write_deltalake(str(table), pa.table(rows))
    found = [f.line() for f in guard.scan_delta_table(index, str(table), "predictions")]
    assert found == ["table predictions column note row 2: value of PHI column patient_name"], found
    assert bronze["patient_name"] not in json.dumps(found)

    renamed = tmp_path / "lake" / "renamed"
    write_deltalake(str(renamed), pa.table({"patient_key": ["k1"], "MRN": [bronze["mrn"]]}))
    found = [f.line() for f in guard.scan_delta_table(index, str(renamed), "renamed")]
    assert "table renamed column MRN: is a PHI column" in found
    assert "table renamed column MRN row 1: value of PHI column mrn" in found
    assert yaml.safe_dump(found).count(str(bronze["mrn"])) == 0
