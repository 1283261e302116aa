"""Manual actions and waiting, through the real CLI on a small model repository.

One prod story: release 1.0 makes the first champion; a CI dispatch asks for a rollback (who
and why come from its inputs); a re-run of the release waits under the rollback's hold (exit 4);
with the hold lifted, a release whose policy asks for two approvals waits for both (exit 4), and
the second approval moves the champion. Every run executes exactly the steps its plan printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from promoter.app import demo
from promoter.core import audit, tags
from promoter.registry import Registry
from tests.conftest import FIXTURES, git, run_promote
from tests.e2e.helpers import executed, make_model_repo, planned, run_json, write_yaml

# slow tier (make test-slow): seven CLI runs, about 7 minutes; `make test` covers the same
# decisions in-process (tests/app/test_decisions.py, test_approvals.py) and the CLI dispatch
# parsing in tests/cli.
pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]
MODEL = "hrob-risk-prod"


def _release(repo: Path, branch: str, message: str, edit) -> None:
    git(repo, "checkout", "-q", "main")
    edit()
    git(repo, "commit", "-qam", message)
    git(repo, "branch", branch)


def test_dispatch_rollback_hold_and_two_approvals(tmp_path: Path):
    repo = make_model_repo(tmp_path, members=1500, exclude_groups=demo.SDOH_GROUPS)
    uri = f"sqlite:///{repo / '.promote' / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri}
    git(repo, "branch", "release/1.0")
    code, first, err = run_json(repo, env, "run", "--event", "push", "--branch", "release/1.0")
    assert code == 0, err[-3000:]
    assert executed(first) == planned(repo, env, "--event", "push", "--branch", "release/1.0")
    registry = Registry(uri)
    assert registry.get_alias(MODEL, tags.CHAMPION) == 1

    # a CI dispatch asks for scoring: score, report
    scoring = FIXTURES / "github" / "workflow_dispatch.score.json"
    code, scored, err = run_json(
        repo, env, "run", "--provider", "github", "--event-file", str(scoring), "--score-date", "2026-11-30"
    )
    assert code == 0, err[-3000:]
    assert (
        executed(scored)
        == ["score", "report"]
        == planned(repo, env, "--provider", "github", "--event-file", str(scoring))
    )
    assert scored["scored_rows"] == 1500
    # a manual run on the release branch re-runs its push steps: v1 is reused and already champion
    code, rerun, err = run_json(repo, env, "run", "--event", "manual", "--action", "run", "--branch", "release/1.0")
    assert code == 0, err[-3000:]
    assert executed(rerun) == planned(repo, env, "--event", "manual", "--action", "run", "--branch", "release/1.0")
    assert rerun["candidate"]["reused"] is True and rerun["champion_moved"] is False

    # two later versions (as other releases would have registered), v3 champion, v2 previous
    v1 = registry.client.get_model_version(MODEL, "1")
    v2, v3 = (
        int(registry.client.create_model_version(MODEL, source=v1.source, run_id=v1.run_id).version) for _ in range(2)
    )
    registry.set_alias(MODEL, tags.PREVIOUS, v2)
    registry.set_alias(MODEL, tags.CHAMPION, v3)

    # a CI dispatch asks for a rollback: who (the payload's sender) and why (its 'reason' input)
    payload = FIXTURES / "github" / "workflow_dispatch.rollback.json"
    code, rolled, err = run_json(repo, env, "run", "--provider", "github", "--event-file", str(payload))
    assert code == 0, err[-3000:]
    assert (
        executed(rolled)
        == ["rollback", "report"]
        == planned(repo, env, "--provider", "github", "--event-file", str(payload))
    )
    assert registry.get_alias(MODEL, tags.CHAMPION) == v2 and registry.get_alias(MODEL, tags.PREVIOUS) == v3
    records = registry.audit_store().read_all("hrob-risk-prod")
    rollback = next(r for r in records if r.kind == "rollback")
    assert rollback.actor == "Codertocat" and rollback.details["reason"] == "INC-991 calibration drift"
    assert records[-1].kind == "hold"

    # re-running release 1.0 reuses v1 (same code, config, data) and gates it against v2: the
    # gate passes (the same model), and the hold makes the promotion wait for a person: exit 4
    code, held, err = run_json(repo, env, "run", "--event", "push", "--branch", "release/1.0")
    assert code == 4, err[-3000:]
    assert "on hold after a rollback" in err
    assert held["candidate"]["version"] == 1 and held["candidate"]["reused"] is True
    steps = {s["name"]: s for s in held["steps"]}
    assert steps["approval"]["status"] == "waiting" and steps["promote"]["status"] == "not run"
    # under a hold the shipped policy's sign-off applies: one of each of its three roles
    assert held["promotion"]["action"] == "WAIT" and held["promotion"]["needed"] == 3
    assert registry.get_alias(MODEL, tags.CHAMPION) == v2

    # lift the hold; release 1.1 adds the social-determinant groups and asks for two approvals
    selection = repo / "configs" / "base" / "feature_selection_config.yml"
    lifted = run_promote("release-hold", "--env", "prod", "--by", "ops.kim", "--reason", "fixed", cwd=repo, env=env)
    assert lifted.returncode == 0, lifted.stderr

    def sdoh_and_two_approvals() -> None:
        data = yaml.safe_load(selection.read_text())
        data["include_groups"] = demo.CLINICAL_GROUPS + demo.SDOH_GROUPS
        data["exclude_groups"] = []
        selection.write_text(yaml.safe_dump(data, sort_keys=False))
        policy = repo / "configs" / "prod" / "promotion.yml"
        data = yaml.safe_load(policy.read_text())
        # every prod move needs two of the data-science role (the shipped other roles ask for none here)
        data["approvals"] = {
            "prod": {
                "sign_off": "always",
                "roles": {
                    "data_science": {"members": ["dr.lee", "ops.kim"], "required": 2},
                    "clinical_safety": {"members": ["*"], "required": 0},
                    "compliance": {"members": ["*"], "required": 0},
                },
            }
        }
        write_yaml(policy, data)

    _release(repo, "release/1.1", "Add the social-determinant groups; two approvals for prod", sdoh_and_two_approvals)
    code, waiting, err = run_json(repo, env, "run", "--event", "push", "--branch", "release/1.1")
    assert code == 4, err[-3000:]
    assert waiting["promotion"]["needed"] == 2 and waiting["promotion"]["have"] == 0
    candidate = waiting["candidate"]["version"]

    # each approver runs the approval job; GitHub Actions names the actor (a typed --by would not count)
    def as_actor(actor: str) -> dict[str, str]:
        return {**env, "GITHUB_ACTIONS": "true", "GITHUB_ACTOR": actor}

    one = run_promote("approve", "--env", "prod", "--version", str(candidate), cwd=repo, env=as_actor("dr.lee"))
    assert one.returncode == 4 and "data_science (1 more), has 1" in one.stdout, one.stdout + one.stderr
    two = run_promote("approve", "--env", "prod", "--version", str(candidate), cwd=repo, env=as_actor("ops.kim"))
    assert two.returncode == 0, two.stderr
    assert registry.get_alias(MODEL, tags.CHAMPION) == candidate
    # a re-run of the release now finds the candidate already champion: nothing moves twice
    code, again, err = run_json(repo, env, "run", "--event", "push", "--branch", "release/1.1")
    assert code == 0, err[-3000:]
    assert again["champion_moved"] is False
    store = registry.audit_store()
    assert audit.verify(store.read_all("hrob-risk-prod"), head=store.head("hrob-risk-prod")).ok
