"""A one-table model project whose names share nothing with the reference project: id ``person_id``
(pseudonymised to ``person_key``), label ``outcome``, snapshot ``as_of``, subgroups ``sex`` and
``plan_kind``, one PHI column ``full_name``; its data is a Parquet table written here.

Used by the cross-file config tests (a project of ``source: tables``) and by the end-to-end test
of a neutral project (tests/e2e/test_neutral_project.py).
"""

from __future__ import annotations

import math
import random
import shutil
from datetime import date
from pathlib import Path

from tests.conftest import CONFIGS

AS_OF = date(2026, 1, 31)
PSEUDONYM_ENV = "PEOPLE_PSEUDONYM_KEY"
MODEL = "outcome-risk"

PROJECT = """# A neutral one-table project: no name in common with the reference project.
name: people
model_name: {model}
spark:
  master: local[2]
  config:
    spark.sql.shuffle.partitions: 4
    spark.ui.enabled: false
data:
  source: tables
  entity_table: people
  tables:
    people: {{path: "{table}", format: parquet}}
  id_column: person_id
  key_column: person_key
  label_column: outcome
  snapshot_date_column: as_of
  subgroup_columns: [sex, plan_kind]
  phi_columns: [full_name]
  pseudonym_key_env: {pseudonym_env}
scoring:
  top_n: 50
"""
CONTRACTS = """version: "people-1"
tables:
  people:
    owner: analytics
    primary_key: [person_id]
    row_count: {min: 100}
    allow_extra_columns: false
    columns:
      person_id: {type: string, nullable: false}
      full_name: {type: string}
      as_of: {type: date, nullable: false}
      outcome: {type: int, nullable: false, allowed: [0, 1]}
      sex: {type: string, allowed: [F, M]}
      plan_kind: {type: string, allowed: [basic, plus, premium]}
      age: {type: int, min: 0, max: 120}
      visits_12m: {type: int, min: 0}
      bmi: {type: double, max_null_fraction: 0.3}
      lab_score: {type: double}
"""
MAPPINGS = """groups:
  profile: [age, bmi]
  usage: [visits_12m, lab_score]
"""
SELECTION = """include_groups: []
imputation:
  default: {method: median}
"""
TRAINING = """split_config: [0.8, 0.2]
split_salt: people-eval-v1
algorithm: logistic_regression
params:
  max_iter: 50
search_space:
  reg_param: {loguniform: [-9, -3]}
max_evals: 2
seed: 11
"""
# the reference project's promotion.yml with this project's subgroups, loosened for a few hundred
# evaluation rows (no significance test: the bootstrap's power is not what these tests are about)
PROD_POLICY = """gate:
  prod:
    floors: {roc_auc: 0.60}
    ceilings: {brier: 0.25, ece: 0.15}
    min_absolute_improvement: 0.0
    significance: {enabled: false}
    fairness: {max_gap: 0.5, max_regression: 0.2, min_group_size: 30}
  staging:
    floors: {roc_auc: 0.55}
"""


def people(n: int = 1500, seed: int = 5) -> list[dict]:
    """Rows of the ``people`` table: a label with signal in age, visits and the lab score."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        age = rng.randint(18, 90)
        visits = min(int(rng.expovariate(0.5)), 30)
        lab = round(rng.gauss(0.0, 1.0), 4)
        logit = -3.0 + 0.03 * (age - 50) + 0.25 * visits + 0.9 * lab
        rows.append(
            {
                "person_id": f"P{i:06d}",
                "full_name": f"Person {i}",
                "as_of": AS_OF,
                "outcome": int(rng.random() < 1 / (1 + math.exp(-logit))),
                "sex": rng.choice(["F", "M"]),
                "plan_kind": rng.choice(["basic", "plus", "premium"]),
                "age": age,
                "visits_12m": visits,
                "bmi": None if rng.random() < 0.1 else round(rng.uniform(17, 45), 1),
                "lab_score": lab,
            }
        )
    return rows


def write_table(path: Path, rows: list[dict]) -> Path:
    """The rows as one Parquet file (int columns as int32, as the contract's ``int`` says)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("person_id", pa.string()),
            ("full_name", pa.string()),
            ("as_of", pa.date32()),
            ("outcome", pa.int32()),
            ("sex", pa.string()),
            ("plan_kind", pa.string()),
            ("age", pa.int32()),
            ("visits_12m", pa.int32()),
            ("bmi", pa.float64()),
            ("lab_score", pa.float64()),
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_configs(root: Path, table: Path) -> Path:
    """``root/configs`` for the project: the reference project's promotion.yml (its branch rules and
    steps) with this project's fairness subgroups, and the files above. Returns the configs folder."""
    cfg = root / "configs"
    (cfg / "base").mkdir(parents=True)
    (cfg / "prod").mkdir()
    promotion = (CONFIGS / "base" / "promotion.yml").read_text()
    old = "subgroups: [race_ethnicity, payer_type, region, age_band]"
    if old not in promotion:
        raise LookupError(f"{old!r} not in configs/base/promotion.yml")
    (cfg / "base" / "promotion.yml").write_text(promotion.replace(old, "subgroups: [sex, plan_kind]"))
    (cfg / "base" / "project.yml").write_text(PROJECT.format(model=MODEL, table=table, pseudonym_env=PSEUDONYM_ENV))
    (cfg / "base" / "contracts.yml").write_text(CONTRACTS)
    (cfg / "base" / "feature_mappings.yml").write_text(MAPPINGS)
    (cfg / "base" / "feature_selection_config.yml").write_text(SELECTION)
    (cfg / "base" / "training.yml").write_text(TRAINING)
    (cfg / "prod" / "promotion.yml").write_text(PROD_POLICY)
    return cfg


def make_project(root: Path, n: int = 1500) -> tuple[Path, Path]:
    """The project's configs and its table under ``root``: ``(configs folder, table path)``."""
    table = write_table(root / "data" / "people.parquet", people(n))
    return write_configs(root, table), table


def copy_reference_configs(root: Path) -> Path:
    """A copy of the reference project's ``configs/`` under ``root``."""
    cfg = root / "configs"
    shutil.copytree(CONFIGS, cfg)
    return cfg
