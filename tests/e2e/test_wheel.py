"""The installable tool: `python -m build` makes a wheel that works in a clean venv, outside this repository.

The wheel is built from a copy of the sources (so the checkout gets no build/ folder), installed
with pip into a plain venv in tmp_path (no system site-packages: its dependencies come from the
package index, which is why this is slow), and then, in a folder outside the repository:
``promote --help``, ``promote plan`` on a copy of a project, and ``promote init`` on a small
Parquet table followed by ``promote plan`` and ``promote projects`` on what it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT, git

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(3600)]

SOURCES = ("promoter", "pipelines", "pyproject.toml", "README.md")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _clean_env(venv: Path) -> dict[str, str]:
    """No trace of this checkout or its venv: no PYTHONPATH, the new venv first on PATH, no CI variables."""
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    proxies = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    env = {k: v for k, v in os.environ.items() if k in keep + proxies or k.startswith("PIP_")}
    system_path = [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(sys.executable).parent != Path(p)
    ]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *system_path])
    env["VIRTUAL_ENV"] = str(venv)
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "Wheel Test"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "wheel@example.org"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, float]]:
    """(venv, environment, seconds per phase): the wheel built and installed in a clean venv."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    times: dict[str, float] = {}
    t0 = time.monotonic()
    _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(src)],
        cwd=base,
        env=dict(os.environ),
    )
    times["build"] = time.monotonic() - t0
    wheels = list((base / "dist").glob("promote-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for member in (
        "promoter/cli/__init__.py",
        "promoter/templates/ci/github/promote.yml",
        "promoter/templates/ci/azure/azure-pipelines.yml",
        "promoter/templates/ci/gitlab/gitlab-ci.yml",
        "promoter/templates/ci/gitlab/promote-jobs.yml",
        "pipelines/train.py",
    ):
        assert member in names, member
    assert not [n for n in names if n.startswith(("tests/", "configs/", "models/", "ci/"))]  # the tool, not the project

    venv = base / "venv"
    t0 = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=dict(os.environ))  # plain: no system site-packages
    env = _clean_env(venv)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheels[0])], cwd=base, env=env)
    times["install"] = time.monotonic() - t0
    return venv, env, times


def test_the_installed_tool_runs_outside_the_repository(installed, tmp_path):
    venv, env, times = installed
    promote = str(venv / "bin" / "promote")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert ROOT not in outside.parents

    where = _run(
        [str(venv / "bin" / "python"), "-c", "import promoter, pipelines; print(promoter.__file__)"],
        cwd=outside,
        env=env,
    )
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout  # the wheel, not this checkout
    helped = _run([promote, "--help"], cwd=outside, env=env)
    for command in ("plan", "run", "projects", "init"):
        assert f"  {command} " in helped.stdout, command
    version = _run([promote, "--version"], cwd=outside, env=env).stdout.split()[-1]

    # a copy of a project in a repository of its own
    repo = outside / "model-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(CONFIGS, repo / "configs")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a model project")
    t0 = time.monotonic()
    planned = json.loads(
        _run([promote, "plan", "--json", "--event", "push", "--branch", "release/1.0"], cwd=repo, env=env).stdout
    )
    times["plan"] = time.monotonic() - t0
    assert planned["environment"] == "prod" and "gate" in [s["name"] for s in planned["steps"]]
    listed = json.loads(_run([promote, "projects", "--json"], cwd=repo, env=env).stdout)
    assert [p["config_dir"] for p in listed] == ["configs"]
    print(
        f"\nwheel: build {times['build']:.0f} s, clean venv + pip install {times['install']:.0f} s, plan {times['plan']:.1f} s"
    )

    assert "  init " in helped.stdout, helped.stdout
    _init_then_plan(promote, env, outside / "new-repo", version, times)


def _init_then_plan(promote: str, env: dict[str, str], repo: Path, version: str, times: dict[str, float]) -> None:
    from tests.app.init_tables import one_table, write_parquet

    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    table = write_parquet(one_table(n=600), repo / "data" / "people.parquet")
    t0 = time.monotonic()
    _run(
        [promote, "init", str(table), "--label", "outcome", "--id", "person_id", "--snapshot", "as_of", "--yes"],
        cwd=repo,
        env=env,
    )
    times["init"] = time.monotonic() - t0
    workflow = (repo / ".github" / "workflows" / "promote.yml").read_text()
    assert f'PROMOTE_REQUIREMENT: "promote=={version}"' in workflow  # the project pins the tool that wrote it
    assert 'PROMOTE_REQUIREMENT: "."' not in workflow
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "promote init")
    planned = json.loads(
        _run([promote, "plan", "--json", "--event", "push", "--branch", "main"], cwd=repo, env=env).stdout
    )
    assert planned["environment"] == "staging" and planned["registered_model"].endswith("-staging")
    listed = json.loads(_run([promote, "projects", "--json"], cwd=repo, env=env).stdout)
    assert len(listed) == 1 and listed[0]["project"] == "people"
    print(f"wheel: promote init on a 600-row Parquet table {times['init']:.0f} s")
