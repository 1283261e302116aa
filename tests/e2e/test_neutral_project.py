"""A project whose key, label and subgroup columns share no name with the reference project goes
through staging and a prod release end to end, through the real CLI as a CI job would run it.

The project (tests/config/neutral_project.py) is one Parquet table: id ``person_id``, pseudonymised
to ``person_key``; label ``outcome``; snapshot ``as_of``; subgroups ``sex`` and ``plan_kind``. Its
config names every column; the engine's defaults are never the reference project's.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from promoter.core import tags
from promoter.registry import Registry
from tests.config import neutral_project as neutral
from tests.conftest import git, run_promote
from tests.e2e.helpers import executed, planned, run_json

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]
ROWS = 1500
SCORE_DATE = "2026-02-02"
REFERENCE_NAMES = ("member", "hrob", "race_ethnicity", "payer_type", "claim")


def test_a_project_of_other_names_goes_through_staging_and_prod(tmp_path: Path):
    from deltalake import DeltaTable

    repo = tmp_path / "people-model"
    repo.mkdir()
    table = neutral.write_table(tmp_path / "data" / "people.parquet", neutral.people(ROWS))
    neutral.write_configs(repo, table)
    (repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "people model")
    uri = f"sqlite:///{repo / '.promote' / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, neutral.PSEUDONYM_ENV: "people-test-key"}

    # data contracts hold as written
    check = run_promote("data", "check", cwd=repo, env=env)
    assert check.returncode == 0, check.stderr[-3000:]

    # a push to main (the merge): staging candidate, expectations, staging champion
    code, staging, err = run_json(repo, env, "replay", "push", "main")
    assert code == 0, err[-3000:]
    assert staging["environment"] == "staging" and staging["registered_model"] == f"{neutral.MODEL}-staging"
    assert executed(staging) == planned(repo, env, "--event", "push", "--branch", "main")
    assert staging["candidate"]["version"] == 1

    # a release: prod trains, gates (floors, fairness over sex and plan_kind), promotes and scores
    git(repo, "branch", "release/1.0")
    code, prod, err = run_json(repo, env, "replay", "push", "release/1.0", "--score-date", SCORE_DATE)
    assert code == 0, err[-3000:]
    assert prod["environment"] == "prod" and prod["registered_model"] == f"{neutral.MODEL}-prod"
    assert executed(prod) == planned(repo, env, "--event", "push", "--branch", "release/1.0")
    assert prod["candidate"]["version"] == 1 and prod["champion_moved"] is True
    assert prod["verdict"]["status"] == "PASS", prod["verdict"]
    rules = {r["rule"] for r in prod["verdict"]["reasons"]}
    assert {"fairness.gap.sex", "fairness.gap.plan_kind"} <= rules, rules
    assert prod["scored_rows"] == ROWS

    # the registry: one version per environment, the champion alias on each
    registry = Registry(uri)
    for env_name in ("staging", "prod"):
        name = f"{neutral.MODEL}-{env_name}"
        versions = registry.client.search_model_versions(f"name='{name}'")
        assert [int(v.version) for v in versions] == [1], (name, versions)
        assert registry.get_alias(name, tags.CHAMPION) == 1

    # the predictions: keyed by the project's own key column, every row of the table scored once
    lake = repo / ".promote" / "lake" / neutral.MODEL
    preds = DeltaTable(str(lake / "predictions" / "scores")).to_pyarrow_table()
    assert preds.column_names[0] == "person_key" and "score" in preds.column_names
    assert preds.num_rows == ROWS and len(set(preds.column("person_key").to_pylist())) == ROWS
    assert set(preds.column("score_date").to_pylist()) == {date.fromisoformat(SCORE_DATE)}
    outreach = DeltaTable(str(lake / "predictions" / "outreach_list")).to_pyarrow_table()
    assert outreach.column_names[0] == "person_key" and outreach.num_rows == 50
    # the gold table, too: key, snapshot, label and subgroups under the project's names
    catalog = json.loads((lake / "gold" / "features" / "_catalog.json").read_text())
    assert (catalog["id_column"], catalog["label_column"], catalog["snapshot_date_column"]) == (
        "person_key",
        "outcome",
        "as_of",
    )
    assert catalog["subgroup_columns"] == ["sex", "plan_kind"]
    # no name of the reference project in what the engine decided and built for this project
    written = json.dumps([prod["candidate"], prod["verdict"], staging["candidate"], catalog, preds.column_names])
    leaked = [n for n in REFERENCE_NAMES if n in written.lower()]
    assert not leaked, leaked
