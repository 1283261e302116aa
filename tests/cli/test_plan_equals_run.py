"""Invariant 13 at the CLI: for every fixture event and every replay form, `promote plan` prints the
steps `promote run` would execute, in the same order, with the same reasons.

Both commands go through one ``prepare(event)``; these tests keep it so by comparing what the two
commands print for the same event (``run --dry-run --json`` reports the plan it would execute).
The end-to-end tests compare the plan with what real runs executed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promoter.cli import main
from tests.conftest import FIXTURES, git

GITHUB = sorted(p.name for p in (FIXTURES / "github").glob("*.json"))
AZURE = sorted(p.name for p in (FIXTURES / "azure").glob("*.json"))
GITLAB = sorted(p.name for p in (FIXTURES / "gitlab").glob("*.json"))
REPLAYS = [
    ["push", "feature/x"],
    ["pull-request", "--from", "feature/x", "--into", "main"],
    ["pull-request", "--from", "feature/x", "--into", "release/1.0"],
    ["push", "main"],
    ["push", "release/1.0"],
    ["schedule"],
    ["manual", "release/1.0", "--action", "score"],
    ["manual", "release/1.0", "--action", "rollback", "--reason", "INC-1"],
    ["manual", "main", "--action", "run"],
]


@pytest.fixture
def repo(payload_repo: Path, monkeypatch) -> Path:
    for branch in ("feature/x", "release/1.0", "feature/recall-boost"):
        git(payload_repo, "branch", branch)
    monkeypatch.chdir(payload_repo)
    for name in [k for k in __import__("os").environ if k.startswith(("GITHUB_", "TF_BUILD", "GITLAB_", "CI_"))]:
        monkeypatch.delenv(name)
    return payload_repo


def _json(capsys, argv: list[str]) -> dict:
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _steps(data: dict) -> list[tuple[str, str]]:
    return [(s["name"], s["reason"]) for s in data["steps"]]


def _assert_same(capsys, plan_argv: list[str], run_argv: list[str]) -> list[tuple[str, str]]:
    planned = _json(capsys, plan_argv)
    would_run = _json(capsys, run_argv)
    assert _steps(would_run) == _steps(planned)
    assert would_run["environment"] == planned["environment"]
    assert all(s["status"] == "not run" for s in would_run["steps"])
    return _steps(planned)


@pytest.mark.parametrize("fixture", GITHUB)
def test_github_payloads(repo, capsys, fixture):
    args = ["--provider", "github", "--event-file", str(FIXTURES / "github" / fixture)]
    _assert_same(capsys, ["plan", "--json", *args], ["run", "--dry-run", "--json", *args])
    _assert_same(capsys, ["plan", "--json", *args], ["replay", "--dry-run", "--json", *args])


@pytest.mark.parametrize("provider,fixture", [("azure", f) for f in AZURE] + [("gitlab", f) for f in GITLAB])
def test_azure_and_gitlab_variables(repo, capsys, provider, fixture):
    args = ["--provider", provider, "--event-file", str(FIXTURES / provider / fixture)]
    steps = _assert_same(capsys, ["plan", "--json", *args], ["replay", "--dry-run", "--json", *args])
    assert steps, f"{provider} {fixture}: an empty plan"


def test_azure_variables_from_the_environment(repo, capsys, monkeypatch):
    for key, value in json.loads((FIXTURES / "azure" / "push.release-1.0.json").read_text()).items():
        monkeypatch.setenv(key, value)
    run_steps = _steps(_json(capsys, ["run", "--dry-run", "--json"]))
    replayed = _steps(_json(capsys, ["replay", "--provider", "azure", "--dry-run", "--json"]))
    assert run_steps == replayed and [n for n, _ in run_steps][:3] == ["contracts", "features", "train"]


@pytest.mark.parametrize("argv", REPLAYS, ids=[" ".join(a) for a in REPLAYS])
def test_replay_forms(repo, capsys, argv):
    kind, rest = argv[0], argv[1:]
    replayed = _json(capsys, ["replay", *argv, "--dry-run", "--json"])
    stated = {
        "push": ["--event", "push", "--branch", rest[0]] if rest else [],
        "schedule": ["--event", "schedule"],
        "manual": ["--event", "manual", "--branch", *rest[:1], *rest[1:]] if rest else [],
        "pull-request": ["--event", "pull_request", *rest],
    }[kind]
    planned = _json(capsys, ["plan", "--json", *stated])
    assert _steps(replayed) == _steps(planned)
