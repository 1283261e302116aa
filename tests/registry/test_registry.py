"""Registration against a real MLflow store (SQLite in tmp_path) and real local Spark.

Must hold: the same content key never gives a second version; another config hash does.
Lineage is on the run and on the version; artifacts and signature carry no PHI; the
registry lock is exclusive across processes and breaks only stale locks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from promoter import config
from promoter.core import tags
from promoter.errors import NotFound

ROOT = Path(__file__).resolve().parents[2]
FEATURES = [f"f{i:02d}" for i in range(12)]
TINY = "max_evals: 1\nparams: {max_iter: 15}\n"


@dataclass
class Catalog:
    """Stands in for the data layer's catalog entry: the fields training reads."""

    feature_columns: list[str]
    snapshot_id: str
    version: str = "1"
    groups: dict[str, list[str]] = field(default_factory=dict)
    schema_hash: str = "toy"

    def to_dict(self) -> dict:
        return {
            "feature_columns": self.feature_columns,
            "snapshot_id": self.snapshot_id,
            "version": self.version,
            "groups": self.groups,
            "schema_hash": self.schema_hash,
        }


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.org",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.org",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _configs(root: Path, training_yml: str) -> Path:
    shutil.copytree(ROOT / "configs", root)
    (root / "dev" / "training.yml").write_text(training_yml)
    project = root / "base" / "project.yml"
    project.write_text(project.read_text() + "tracking_token: ${TEST_MLFLOW_TOKEN}\n")
    return root


SECRET = "s3cr3t-token-value"


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """Three train_and_register calls: config A, config A again, config B (another hash)."""
    from promoter.app import sources as events
    from promoter.app.training import train_and_register
    from promoter.registry import Lineage, Registry
    from tests.pipelines.test_train import toy_gold

    tmp = tmp_path_factory.mktemp("registry")
    repo = tmp / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "feature/x")
    (repo / "README.md").write_text("model repo\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    event = events.from_local(repo, kind="push")
    environ = {"TEST_MLFLOW_TOKEN": SECRET}
    settings_a = config.load(_configs(tmp / "configs_a", TINY), "dev", environ=environ)
    settings_b = config.load(_configs(tmp / "configs_b", TINY + "seed: 43\n"), "dev", environ=environ)
    assert settings_a.config_hash != settings_b.config_hash

    registry = Registry(f"sqlite:///{tmp / 'mlflow.db'}")
    gold = toy_gold(spark).cache()
    catalog = Catalog(FEATURES, snapshot_id="snap-2024-06-30")
    report = {"ok": True, "version": "0", "violations": []}
    lineage_a = Lineage.from_event(event, settings_a, data_snapshot=catalog.snapshot_id)
    lineage_b = Lineage.from_event(event, settings_b, data_snapshot=catalog.snapshot_id)
    first = train_and_register(spark, settings_a, lineage_a, gold, catalog, registry, contract_report=report)
    again = train_and_register(spark, settings_a, lineage_a, gold, catalog, registry, contract_report=report)
    other = train_and_register(spark, settings_b, lineage_b, gold, catalog, registry)
    # a run that died after logging its model but before registering: the version is not there
    registry.client.delete_model_version(other.model_name, str(other.version))
    resumed = train_and_register(spark, settings_b, lineage_b, gold, catalog, registry)
    yield dict(
        tmp=tmp,
        registry=registry,
        gold=gold,
        settings=settings_a,
        lineage=lineage_a,
        event=event,
        first=first,
        again=again,
        other=other,
        resumed=resumed,
        catalog=catalog,
    )
    gold.unpersist()


pytestmark = pytest.mark.spark


def _versions(registry, name):
    return sorted(int(v.version) for v in registry.client.search_model_versions(f"name = '{name}'"))


def test_same_content_key_gives_one_version(world):
    first, again, registry = world["first"], world["again"], world["registry"]
    assert not first.reused and again.reused
    assert (again.version, again.run_id) == (first.version, first.run_id)
    assert again.metrics == first.metrics and again.best_params == first.best_params
    key_filter = f"name = '{first.model_name}' and tags.`{tags.CONTENT_KEY}` = '{first.content_key}'"
    assert len(registry.client.search_model_versions(key_filter)) == 1
    found = registry.find_version_by_content_key(first.model_name, first.content_key)
    assert found is not None and found.version == first.version and found.status == "READY"


def test_different_config_hash_gives_second_version(world):
    first, other, _registry = world["first"], world["other"], world["registry"]
    assert not other.reused and other.content_key != first.content_key
    assert other.version == first.version + 1 and other.run_id != first.run_id
    assert first.model_name == "hrob-risk-dev"


def test_rerun_registers_the_model_of_a_run_that_died_before_registration(world):
    other, resumed, registry = world["other"], world["resumed"], world["registry"]
    assert resumed.resumed and not resumed.reused and resumed.output is None
    assert resumed.run_id == other.run_id and resumed.version == other.version + 1
    assert resumed.metrics == other.metrics
    assert _versions(registry, other.model_name) == [world["first"].version, resumed.version]
    runs = registry.client.search_runs(
        [registry.client.get_run(other.run_id).info.experiment_id], filter_string="tags.`promote.kind` = 'train'"
    )
    assert len(runs) == 2  # config A once, config B once: nothing trained again
    assert registry.version_info(other.model_name, resumed.version).tags[tags.CONTENT_KEY] == other.content_key


def test_lineage_tags_on_run_and_version(world):
    first, registry, lineage, event = world["first"], world["registry"], world["lineage"], world["event"]
    expected_key = hashlib.sha256(f"{event.tree_sha}\n{lineage.config_hash}\nsnap-2024-06-30".encode()).hexdigest()
    assert first.content_key == expected_key
    info = registry.version_info(first.model_name, first.version)
    run_tags = registry.client.get_run(first.run_id).data.tags
    for where in (info.tags, run_tags):
        assert where[tags.COMMIT] == event.sha and where[tags.TREE] == event.tree_sha
        assert where[tags.BRANCH] == "feature/x" and where[tags.EVENT_KIND] == "push"
        assert where[tags.ENVIRONMENT] == "dev" and where[tags.CONFIG_HASH] == world["settings"].config_hash
        assert where[tags.DATA_SNAPSHOT] == "snap-2024-06-30"
        assert where[tags.CONTRACT_VERSION] == world["settings"].contracts.version
        assert where[tags.CONTENT_KEY] == expected_key and where[tags.ACTOR] == "Test Author"
        assert tags.VERSION in where
    assert info.run_id == first.run_id and info.source.endswith("/model")


def test_run_has_metrics_nested_trials_and_artifacts_without_phi(world):
    first, registry, settings = world["first"], world["registry"], world["settings"]
    client = registry.client
    run = client.get_run(first.run_id)
    assert run.data.metrics["roc_auc"] == pytest.approx(first.metrics["roc_auc"])
    assert "roc_auc.race_ethnicity.A" in run.data.metrics and "n.payer_type.chip" in run.data.metrics
    assert run.data.params["algorithm"] == "logistic_regression" and "best.reg_param" in run.data.params
    children = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first.run_id}'")
    assert len(children) == 1 and all("val_roc_auc" in c.data.metrics for c in children)
    assert all("reg_param" in c.data.params for c in children)

    dst = world["tmp"] / "download"
    local = Path(client.download_artifacts(first.run_id, "", str(dst)))
    for rel in (
        "feature_importance.csv",
        "feature_importance.png",
        "plots/roc.png",
        "plots/pr.png",
        "plots/calibration.png",
        "config/settings.yml",
        "data/catalog.json",
        "data/contract_report.json",
        "evaluation/summary.json",
        "model/MLmodel",
    ):
        assert (local / rel).is_file(), rel
    assert json.loads((local / "data/catalog.json").read_text())["snapshot_id"] == "snap-2024-06-30"
    assert json.loads((local / "data/contract_report.json").read_text())["ok"] is True
    resolved = (local / "config/settings.yml").read_text()
    assert SECRET not in resolved and "tracking_token: '**********'" in resolved
    csv = (local / "feature_importance.csv").read_text().splitlines()
    assert csv[0] == "feature,importance,coefficient" and csv[1].startswith("f00,")

    import mlflow.models

    model = mlflow.models.Model.load(str(local / "model" / "MLmodel"))
    inputs = [c.name for c in model.signature.inputs.inputs]
    assert inputs == FEATURES
    forbidden = {
        "member_key",
        "member_id",
        "hrob_label",
        "snapshot_date",
        *settings.project.data.subgroup_columns,
        *settings.project.data.phi_columns,
    }
    assert not forbidden & set(inputs)
    example = json.loads((local / "model" / "input_example.json").read_text())
    assert example["columns"] == FEATURES and len(example["data"]) == 5


def test_registered_version_loads_and_scores_like_training(world):
    from pipelines.train import evaluate_model

    first, registry = world["first"], world["registry"]
    model = registry.load_model(first.model_name, first.version)
    result, (ids, labels, scores) = evaluate_model(model, world["gold"], world["settings"])
    assert result.metrics["roc_auc"] == pytest.approx(first.metrics["roc_auc"], abs=1e-9)
    assert ids == first.output.paired[0] and list(scores) == pytest.approx(list(first.output.paired[2]))
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == first.evaluation_rows_sha256


def test_artifacts_stay_inside_the_store_folder(world):
    first, registry = world["first"], world["registry"]
    experiment = registry.client.get_experiment(registry.client.get_run(first.run_id).info.experiment_id)
    assert experiment.name == "/promote/hrob-risk-dev"
    assert Path(experiment.artifact_location.replace("file://", "")).is_relative_to(world["tmp"])


# --------------------------------------------------------------------------- registry operations


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """One SQLite store for the registry-operation tests (each uses its own model names):
    creating an MLflow schema takes seconds, so it is made once."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def registry(store_uri):
    from promoter.registry import Registry

    return Registry(store_uri)


def _dummy_version(registry, tmp_path: Path, name: str, key: str | None = None) -> int:
    exp = registry.experiment_id("/promote/test")
    run = registry.client.create_run(exp)
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    registry.client.log_artifacts(run.info.run_id, str(tmp_path / "model"), "model")
    return registry.register(
        run.info.run_id, f"runs:/{run.info.run_id}/model", name, {tags.CONTENT_KEY: key} if key else {}
    )


def test_aliases_tags_and_lookups(registry, tmp_path):
    v1 = _dummy_version(registry, tmp_path, "m-dev", "k1")
    v2 = _dummy_version(registry, tmp_path, "m-dev", "k2")
    assert (v1, v2) == (1, 2)
    assert registry.get_alias("m-dev", "champion") is None
    assert registry.get_alias("no-such-model", "champion") is None
    registry.set_alias("m-dev", "champion", v1)
    registry.set_alias("m-dev", "champion", v2)
    assert registry.get_alias("m-dev", "champion") == v2
    registry.delete_alias("m-dev", "champion")
    registry.delete_alias("m-dev", "champion")  # deleting twice is fine
    assert registry.get_alias("m-dev", "champion") is None
    registry.set_version_tags("m-dev", v1, {tags.VERDICT: "PASS"})
    assert registry.version_info("m-dev", v1).tags[tags.VERDICT] == "PASS"
    assert registry.find_version_by_content_key("m-dev", "k2").version == v2
    assert registry.find_version_by_content_key("m-dev", "k3") is None
    assert registry.find_version_by_content_key("other-model", "k1") is None
    with pytest.raises(NotFound, match="v9"):
        registry.version_info("m-dev", 9)


def test_stages_move_only_when_the_project_opted_in(store_uri, tmp_path):
    from promoter.registry import Registry

    plain, legacy = Registry(store_uri), Registry(store_uri, use_stages=True)
    v = _dummy_version(plain, tmp_path, "m-prod")
    assert plain.transition_stage("m-prod", v, "Production") is False
    assert plain.client.get_model_version("m-prod", str(v)).current_stage == "None"
    assert legacy.transition_stage("m-prod", v, "Production") is True
    assert plain.client.get_model_version("m-prod", str(v)).current_stage == "Production"


# --------------------------------------------------------------------------- lock

_LOCKER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {root!r})
    from promoter.registry import Registry
    registry = Registry(sys.argv[1])
    for _ in range(2):
        with registry.lock("m-procs", poll_seconds=0.05, max_poll_seconds=0.2, timeout_seconds=120):
            start = time.time()
            time.sleep(0.4)
            with open(sys.argv[2], "a") as out:
                out.write(json.dumps([os.getpid(), start, time.time()]) + "\\n")
""")


def test_lock_is_exclusive_across_processes(registry, store_uri, tmp_path):
    registry.client.search_registered_models()  # create the schema before the race
    log = tmp_path / "held.jsonl"
    script = tmp_path / "locker.py"
    script.write_text(_LOCKER.format(root=str(ROOT)))
    procs = [subprocess.Popen([sys.executable, str(script), store_uri, str(log)]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    spans = sorted(json.loads(line)[1:] for line in log.read_text().splitlines())
    assert len(spans) == 4
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # no two holders overlap
    assert registry.lock_holder("m-procs") is None  # released


def test_lock_times_out_naming_the_holder_and_breaks_stale_locks(registry):
    from promoter.registry import LOCK_HEARTBEAT_AT, LockLost, LockTimeout

    with registry.lock("m-dev", holder="ci-job-1", ttl_seconds=3600) as first:
        with pytest.raises(LockTimeout, match="ci-job-1"):
            with registry.lock("m-dev", holder="ci-job-2", timeout_seconds=0.3, poll_seconds=0.05):
                pass
        first.refresh()
        assert first.held()
    assert registry.lock_holder("m-dev") is None

    # a holder that died: its heartbeat is older than its TTL, so the next run breaks the lock
    with registry.lock("m-dev", holder="dead-job", ttl_seconds=1) as dead:
        dead._stop.set()  # it died: no more heartbeats
        registry.client.set_registered_model_tag(dead.lock_name, LOCK_HEARTBEAT_AT, f"{time.time() - 10:.3f}")
        registry.client.set_registered_model_tag(dead.lock_name, "promote.lock.acquired_at", f"{time.time() - 10:.3f}")
        with registry.lock("m-dev", holder="next-job", timeout_seconds=30, poll_seconds=0.05) as nxt:
            assert nxt.broke_stale and registry.lock_holder("m-dev")["promote.lock.holder"] == "next-job"
            assert nxt.broke.startswith("dead-job: no heartbeat for ") and "ttl 1s" in nxt.broke, nxt.broke
            with pytest.raises(LockLost):
                dead.check()
        # the dead holder's release must not delete someone else's lock: next-job released its own
    assert registry.lock_holder("m-dev") is None


def test_the_heartbeat_renews_a_held_lock(registry):
    with registry.lock("m-beat", ttl_seconds=4) as held:  # a beat every second
        first = float(registry.lock_holder("m-beat")["promote.lock.heartbeat_at"])
        deadline = time.monotonic() + 30
        while float(registry.lock_holder("m-beat")["promote.lock.heartbeat_at"]) <= first:
            assert time.monotonic() < deadline, "no heartbeat in 30s"
            time.sleep(0.2)
        assert held.held() and held.lost is None
    assert registry.lock_holder("m-beat") is None


_HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from promoter.cli import cancel_on_sigterm
    from promoter.registry import Registry
    registry = Registry(sys.argv[1])
    with cancel_on_sigterm():
        with registry.lock(sys.argv[2], ttl_seconds=3600) as held:
            print(held.holder, flush=True)
            time.sleep(600)
""")


def _holding(tmp_path: Path, store_uri: str, name: str) -> tuple[subprocess.Popen, str]:
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER.format(root=str(ROOT)))
    proc = subprocess.Popen([sys.executable, str(script), store_uri, name], stdout=subprocess.PIPE, text=True)
    holder = proc.stdout.readline().strip()
    assert holder, "the holder process did not take the lock"
    return proc, holder


def test_a_sigkilled_holder_s_lock_is_taken_over_at_once_naming_it(registry, store_uri, tmp_path):
    proc, holder = _holding(tmp_path, store_uri, "m-killed")
    assert registry.lock_holder("m-killed")["promote.lock.holder"] == holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # its TTL is an hour, but its process is gone from this host: broken on the first look
    with registry.lock("m-killed", timeout_seconds=60, poll_seconds=0.05) as nxt:
        assert nxt.broke == f"{holder}: its process is gone (same host)"
    assert registry.lock_holder("m-killed") is None


def test_sigterm_releases_the_lock_on_the_way_out(registry, store_uri, tmp_path):
    proc, holder = _holding(tmp_path, store_uri, "m-cancelled")
    assert registry.lock_holder("m-cancelled")["promote.lock.holder"] == holder
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0  # cancelled, not finished
    assert registry.lock_holder("m-cancelled") is None


def test_processes_opening_a_fresh_sqlite_store_at_once_all_succeed(tmp_path):
    """MLflow migrates a new SQLite schema on first open; concurrent first opens must not race."""
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from promoter.registry import Registry\n"
        "r = Registry(sys.argv[1]); r.ensure_model('m'); print('opened')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(err[-2000:] for _, err in outs)
    assert all(out.strip() == "opened" for out, _ in outs)
