"""Pluggable pipelines: a project names its own trainer in project.yml and goes through the gate,
promotion and scoring unchanged; a trainer that does not import stops the run before anything opens."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from promoter.cli import main
from tests.conftest import git

PROJECT = """name: churn
model_name: churn-plug
tracking_uri: sqlite:///{root}/mlflow.db
lake_root: {root}/lake
spark: {{master: "local[2]", config: {{spark.sql.shuffle.partitions: 2, spark.ui.enabled: false}}}}
pipelines:
  train: {trainer}
data:
  source: tables
  entity_table: people
  tables:
    people: {{path: "{data}", format: parquet}}
  id_column: person_id
  key_column: person_key
  label_column: outcome
  snapshot_date_column: as_of
  subgroup_columns: [sex]
  phi_columns: [person_id]
scoring:
  predictions_table: predictions/churn
  outreach_table: predictions/churn_outreach
  top_n: 20
"""
PROMOTION = """branch_rules:
  - {pattern: "release/*", environment: prod}
  - {default_branch: true, environment: staging}
  - {pattern: "**", environment: dev}
gate:
  prod:
    primary_metric: roc_auc
    significance: {enabled: false}
    fairness: {subgroups: []}
"""
MAPPINGS = 'groups:\n  signals: ["x_*"]\n'
TRAINER = '''"""A team's own trainer: a shallow decision tree, nothing of the engine's search."""
from pyspark.ml import Pipeline
from pyspark.ml.classification import DecisionTreeClassifier
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import functions as F

from pipelines.api import Fitted


def fit(inp):
    df = inp.train_df.withColumn("_y", F.col(inp.label_column).cast("double"))
    stages = [
        VectorAssembler(inputCols=list(inp.feature_columns), outputCol="_fv"),
        DecisionTreeClassifier(featuresCol="_fv", labelCol="_y", maxDepth=3, seed=inp.seed),
    ]
    return Fitted(model=Pipeline(stages=stages).fit(df), params={"max_depth": 3}, rows={"train": df.count()})
'''


def _people(path: Path, n: int = 1500, seed: int = 5) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    p = 1 / (1 + np.exp(-(1.6 * x[:, 0] - 1.1 * x[:, 1] - 1.0)))
    pd.DataFrame(
        {
            "person_id": [f"P{i:05d}" for i in range(n)],
            "as_of": pd.Timestamp("2026-11-01").date(),
            "sex": rng.choice(["F", "M"], size=n),
            "outcome": (rng.random(n) < p).astype("int32"),
            **{f"x_{j}": x[:, j] for j in range(4)},
        }
    ).to_parquet(path, index=False)


def _project(tmp_path: Path, trainer: str) -> Path:
    repo = tmp_path / "repo"
    (repo / "configs" / "base").mkdir(parents=True)
    _people(tmp_path / "people.parquet")
    cfg = repo / "configs" / "base"
    (cfg / "project.yml").write_text(PROJECT.format(root=tmp_path, data=tmp_path / "people.parquet", trainer=trainer))
    (cfg / "promotion.yml").write_text(PROMOTION)
    (cfg / "feature_mappings.yml").write_text(MAPPINGS)
    (repo / "churn_trainer.py").write_text(TRAINER)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "churn project")
    git(repo, "branch", "release/1.0")
    return repo


@pytest.fixture
def clean_env(monkeypatch):
    for name in [
        k for k in os.environ if k.startswith(("GITHUB_", "TF_BUILD", "GITLAB_", "CI_", "MLFLOW_", "PROMOTE_"))
    ]:
        monkeypatch.delenv(name)


def test_a_trainer_that_does_not_import_stops_the_run_before_anything_opens(tmp_path, monkeypatch, capsys, clean_env):
    repo = _project(tmp_path, "churn_trainr:fit")
    monkeypatch.chdir(repo)
    code = main(["replay", "push", "main"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "configs/base/project.yml" in err and "pipelines.train" in err and "churn_trainr" in err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "lake").exists()


def test_an_entry_point_that_is_not_module_colon_function_is_a_config_error(tmp_path):
    from promoter import config
    from promoter.errors import ConfigError

    repo = _project(tmp_path, "churn_trainer.fit")
    with pytest.raises(ConfigError) as info:
        config.load(repo / "configs", "prod")
    assert "project.yml:7:" in str(info.value) and "pipelines.train" in str(info.value)
    assert "'package.module:function'" in str(info.value)


@pytest.mark.slow  # a staging push and a prod release in process, with Spark: about 1-2 minutes
def test_a_project_with_its_own_trainer_goes_through_gate_promotion_and_scoring(
    tmp_path, monkeypatch, capsys, clean_env
):
    from promoter.registry import Registry

    repo = _project(tmp_path, "churn_trainer:fit")
    monkeypatch.chdir(repo)
    assert main(["replay", "push", "main", "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["replay", "push", "release/1.0", "--json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    done = {s["name"]: s["status"] for s in result["steps"]}
    assert done["train"] == done["gate"] == done["promote"] == done["score"] == "done", result["steps"]

    registry = Registry(f"sqlite:///{tmp_path}/mlflow.db")
    assert registry.get_alias("churn-plug-prod", "champion") == 1
    version = registry.client.get_model_version("churn-plug-prod", "1")
    run = registry.client.get_run(version.run_id)
    assert run.data.params["trainer"] == "churn_trainer:fit"
    assert run.data.params["best.max_depth"] == "3"
    assert run.data.metrics["roc_auc"] > 0.6  # measured by the engine on the held-out rows
    kinds = [r.kind for r in registry.audit_store().read_all("churn-plug-prod")]
    assert kinds[:1] == ["gate"] and "alias_move" in kinds and "scoring" in kinds

    from deltalake import DeltaTable

    predictions = DeltaTable(str(tmp_path / "lake" / "churn-plug" / "predictions" / "churn")).to_pandas()
    assert "person_key" in predictions.columns and len(predictions) == 1500
    assert predictions["model_version"].astype(int).eq(1).all()
