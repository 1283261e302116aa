"""Invariant 6: the champion is re-read just before it moves. When another decision moved it
after this run's gate, the candidate is gated again against the new champion, on the same rows,
and the move names the champion it replaces."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from promoter.app import demo, prepare, run, steps
from promoter.app import sources as events
from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import git, run_promote
from tests.e2e.helpers import make_model_repo

# slow tier (make test-slow): about 4 minutes of releases
pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]


def test_a_champion_moved_after_the_gate_is_gated_again(tmp_path: Path, spark, monkeypatch):
    repo = make_model_repo(tmp_path, members=1500, exclude_groups=demo.SDOH_GROUPS)
    uri = f"sqlite:///{repo / '.promote' / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri}
    git(repo, "branch", "release/1.0")
    first = run_promote("replay", "push", "release/1.0", cwd=repo, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    registry = Registry(uri)
    model = "hrob-risk-prod"
    assert registry.get_alias(model, tags.CHAMPION) == 1

    # another model version, as a concurrent release would have registered (the same artifacts as v1)
    v1 = registry.client.get_model_version(model, "1")
    other = int(registry.client.create_model_version(model, source=v1.source, run_id=v1.run_id).version)

    # release 1.1 adds the social-determinant groups: a clearly better candidate
    selection = repo / "configs" / "base" / "feature_selection_config.yml"
    data = yaml.safe_load(selection.read_text())
    data["include_groups"] = demo.CLINICAL_GROUPS + demo.SDOH_GROUPS
    data["exclude_groups"] = []
    selection.write_text(yaml.safe_dump(data, sort_keys=False))
    git(repo, "commit", "-qam", "Add the social-determinant groups")
    git(repo, "branch", "release/1.1")

    real_gate = steps.STEPS["gate"]
    moved: list[int] = []

    def gate_then_someone_moves_the_champion(state):
        out = real_gate(state)
        if not moved:  # between this run's gate and its promote step, another decision lands
            state.registry.set_alias(model, tags.CHAMPION, other)
            moved.append(other)
        return out

    monkeypatch.setitem(steps.STEPS, "gate", gate_then_someone_moves_the_champion)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    messages: list[str] = []
    prepared = prepare.prepare(events.from_local(repo, kind="push", branch="release/1.1"), "configs", repo)
    result = run.execute(prepared, repo_path=repo, spark=spark, publish=False, progress=messages.append)
    assert result.executed == prepared.plan.step_names()

    candidate = result.candidate["version"]
    assert candidate not in (1, other)
    assert registry.get_alias(model, tags.CHAMPION) == candidate
    assert registry.get_alias(model, tags.PREVIOUS) == other  # the move replaced the champion it re-read
    assert any(f"champion moved to version {other} since the gate" in m for m in messages), messages
    store = registry.audit_store()
    records = store.read_all("hrob-risk-prod")
    assert audit.verify(records, head=store.head("hrob-risk-prod")).ok
    gates = [r for r in records if r.kind == "gate" and r.candidate_version == candidate]
    assert [(r.champion_version, r.verdict) for r in gates] == [(1, "PASS"), (other, "PASS")]
    (move,) = [r for r in records if r.kind == "alias_move" and r.candidate_version == candidate]
    # the move is bound to the second decision, the one against the champion it replaced
    assert move.champion_version == other and move.decision_id == gates[1].record_id
