"""Building a small model repository with data, for end-to-end runs of the real CLI."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import yaml

from tests.conftest import CONFIGS, git, run_promote

# Small data needs a looser prod policy than the shipped one: the rules are the same, the
# limits fit a few hundred evaluation rows.
SMALL_DATA_PROD_POLICY = {
    "gate": {
        "prod": {
            "floors": {"roc_auc": 0.60},
            "ceilings": {"brier": 0.25, "ece": 0.15},
            "min_absolute_improvement": 0.0,
            # a few hundred evaluation rows cannot make a 0.04 AUC gain significant; the bootstrap
            # rule itself is covered by the gate's table tests and bench/gate_power.py
            "significance": {"enabled": False},
            "fairness": {"max_gap": 0.5, "max_regression": 0.2, "min_group_size": 30},
        },
        "staging": {"floors": {"roc_auc": 0.55}},
    }
}


def write_yaml(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def make_model_repo(
    root: Path,
    *,
    members: int = 2000,
    seed: int = 3,
    max_evals: int = 2,
    exclude_groups: list[str] | None = None,
    env: dict[str, str] | None = None,
    built: bool = True,
) -> Path:
    """A git repo with the project's configs (small search, small-data policy) and bronze data.

    The data of one ``(members, seed)`` is generated once per test session and copied (with its
    files' times, so the lake's reuse keys still hold): with ``built`` the contract check and
    silver/gold come along, as after a first `promote features --check`, so a test's first run
    reuses them where its config allows (the pipelines decide, as for any user). ``built=False``
    copies bronze only, for tests about building.
    """
    repo = root / "model-repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(CONFIGS, repo / "configs")
    for e in ("dev", "staging", "prod"):
        p = repo / "configs" / e / "training.yml"
        data = (yaml.safe_load(p.read_text()) or {}) if p.exists() else {}
        data["max_evals"] = max_evals
        write_yaml(p, data)
    write_yaml(repo / "configs" / "prod" / "promotion.yml", SMALL_DATA_PROD_POLICY)
    if exclude_groups is not None:
        p = repo / "configs" / "base" / "feature_selection_config.yml"
        data = yaml.safe_load(p.read_text()) or {}
        data["include_groups"] = [g for g in data.get("include_groups") or [] if g not in exclude_groups]
        data["exclude_groups"] = exclude_groups
        write_yaml(p, data)
    (repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "model repo")
    lake = repo / ".promote" / "lake"
    shutil.copytree(
        _cached_lake(repo, members, seed, built and tuple(exclude_groups or ()), env), lake, copy_function=shutil.copy2
    )
    return repo


_LAKES: dict[tuple[int, int, "tuple[str, ...] | bool"], Path] = {}


def _cached_lake(
    repo: Path, members: int, seed: int, built: "tuple[str, ...] | bool", env: dict[str, str] | None
) -> Path:
    """The session's copy of the lake for ``(members, seed)``, made in ``repo`` the first time.

    ``built``: ``False`` for bronze only, else the excluded feature groups gold was built under
    (the selection is part of gold's build key).
    """
    key = (members, seed, built)
    if key in _LAKES:
        return _LAKES[key]
    if built is not False:
        bronze = _cached_lake(repo, members, seed, False, env)
        shutil.copytree(bronze, repo / ".promote" / "lake", copy_function=shutil.copy2)
        steps = [("features", "--check")]
    else:
        steps = [("data", "generate", "--members", str(members), "--seed", str(seed))]
    for args in steps:
        proc = run_promote(*args, cwd=repo, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr[-2000:]}")
    cache = Path(tempfile.mkdtemp(prefix=f"promote-test-lake-{members}-{seed}-"))
    atexit.register(shutil.rmtree, cache, True)
    shutil.copytree(repo / ".promote" / "lake", cache / "lake", copy_function=shutil.copy2)
    shutil.rmtree(repo / ".promote" / "lake")
    _LAKES[key] = cache / "lake"
    return _LAKES[key]


def run_json(repo: Path, env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    """``promote <args> --json`` in ``repo``: (exit code, the JSON result, stderr)."""
    proc = run_promote(*args, "--json", cwd=repo, env=env)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON result (exit {proc.returncode}): {proc.stderr[-3000:]}") from None
    return proc.returncode, data, proc.stderr


def planned(repo: Path, env: dict[str, str], *args: str) -> list[str]:
    """The step names ``promote plan <args>`` prints."""
    proc = run_promote("plan", *args, "--json", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    return [s["name"] for s in json.loads(proc.stdout)["steps"]]


def executed(result: dict) -> list[str]:
    """The steps a run's JSON result says ran (anything but 'not run')."""
    return [s["name"] for s in result["steps"] if s["status"] != "not run"]


def cli_env(tracking_uri: str) -> dict[str, str]:
    """The environment of a `promote` subprocess against ``tracking_uri``: no CI provider's
    variables, no ``PROMOTE_*`` overrides and no ``MLFLOW_HTTP_*`` (the project's deadline applies)."""
    import os

    from tests.conftest import ROOT

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TF_BUILD", "BUILD_", "SYSTEM_", "GITLAB_", "CI_", "PROMOTE_", "MLFLOW_HTTP"))
    }
    env.update(MLFLOW_TRACKING_URI=tracking_uri, PYTHONPATH=str(ROOT))
    return env
