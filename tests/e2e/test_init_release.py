"""`promote init` on three shapes of data, then a full local release with the configs exactly as written.

Each shape: a real git repository in tmp_path, `promote init ... --yes` through the real CLI, a
commit, `promote plan`, `promote data check`, then the replayed release story of CI: a pull request
into main (staging candidate), the merge (staging champion), and a push of ``release/1.0`` (the
first prod gate, promotion and batch scoring). No file that init wrote is edited.

1. one CSV table (and a push to a feature branch: dev);
2. an entity table (Parquet) plus an event table (CSV) joined by the id;
3. a Delta table whose id, label, snapshot and subgroup columns are named by flags (and share no
   name with the reference project).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promoter import config
from promoter.core import tags
from promoter.registry import Registry
from tests.app.init_tables import one_table, people_and_encounters, write_csv, write_delta, write_parquet
from tests.conftest import git, run_promote

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]
ROWS = 2500


def _tables(shape: str, data: Path) -> tuple[list[str], int]:
    """The `promote init` arguments for a shape, and the entity rows."""
    if shape == "one-csv":
        return [str(write_csv(one_table(ROWS, seed=21), data / "people.csv"))], ROWS
    if shape == "entity-events":
        people, encounters = people_and_encounters(ROWS, seed=22)
        return [
            str(write_parquet(people, data / "people.parquet")),
            "--events",
            str(write_csv(encounters, data / "encounters.csv")),
        ], ROWS
    renamed = one_table(ROWS, seed=23).rename(
        columns={"person_id": "enrollee_no", "outcome": "readmit_30d", "as_of": "index_date", "sex": "gender"}
    )
    return [
        str(write_delta(renamed, data / "enrollees")),
        "--id",
        "enrollee_no",
        "--label",
        "readmit_30d",
        "--snapshot",
        "index_date",
        "--subgroups",
        "gender",
        "--name",
        "readmit",
    ], ROWS


def _ok(proc, what: str) -> str:
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.parametrize("shape", ["one-csv", "entity-events", "delta-by-flags"])
def test_init_then_a_full_release_passes_with_the_configs_as_written(shape: str, tmp_path: Path):
    repo = tmp_path / "model-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    args, rows = _tables(shape, tmp_path / "data")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / '.promote' / 'mlflow.db'}"}

    out = _ok(run_promote("init", *args, "--yes", cwd=repo, env=env), "init")
    assert "PHI, never leaves bronze" in out
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "A new model project")
    written = {p.relative_to(repo): p.read_bytes() for p in (repo / "configs").rglob("*") if p.is_file()}
    settings = config.load(repo / "configs", "prod")
    model = settings.model_name_for("prod")

    plan = json.loads(_ok(run_promote("plan", "--json", cwd=repo, env=env), "plan"))
    assert plan["environment"] == "staging"
    assert "all rules hold" in _ok(run_promote("data", "check", cwd=repo, env=env), "data check")

    git(repo, "checkout", "-q", "-b", "feature/first")
    (repo / "NOTES.md").write_text("First model of the project.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Notes")
    if shape == "one-csv":
        dev = json.loads(_ok(run_promote("replay", "push", "feature/first", "--json", cwd=repo, env=env), "dev push"))
        assert dev["environment"] == "dev" and dev["candidate"]["version"] == 1
    pr = run_promote("replay", "pull-request", "--from", "feature/first", "--into", "main", "--json", cwd=repo, env=env)
    assert json.loads(_ok(pr, "pull request"))["environment"] == "staging"
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "feature/first")
    merged = json.loads(_ok(run_promote("replay", "push", "main", "--json", cwd=repo, env=env), "merge"))
    assert merged["champion_moved"] is True

    git(repo, "branch", "release/1.0")
    proc = run_promote("replay", "push", "release/1.0", "--json", "--score-date", "2026-01-15", cwd=repo, env=env)
    release = json.loads(_ok(proc, "release"))
    assert release["environment"] == "prod" and release["champion_moved"] is True
    assert release["verdict"]["status"] == "PASS"
    assert release["scored_rows"] == rows
    assert Registry(env["MLFLOW_TRACKING_URI"]).get_alias(model, tags.CHAMPION) == 1
    # nothing init wrote was edited along the way
    assert {p.relative_to(repo): p.read_bytes() for p in (repo / "configs").rglob("*") if p.is_file()} == written
