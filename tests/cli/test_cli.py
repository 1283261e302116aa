"""The CLI shell: help teaches, exit codes are mapped in one place, planning stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from promoter.cli import cli
from tests.conftest import FIXTURES, ROOT, git, run_promote

HEAVY = ("pyspark", "mlflow", "pandas")


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, prefix + (name,))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["plan", "--provider", "github", "--event-file", str(FIXTURES / "github" / "pull_request.opened.json")],
        ["plan", "--json", "--event", "push", "--branch", "release/1.0"],
    ],
)
def test_help_and_plan_never_import_heavy_libraries(argv, payload_repo):
    code = (
        "import sys\n"
        "from promoter.cli import main\n"
        f"rc = main({argv!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=payload_repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stderr or proc.stderr.rstrip().endswith("HEAVY="), proc.stderr


def test_every_command_has_examples_in_help():
    commands = list(_all_commands(cli))
    assert commands, "no commands registered"
    for path, cmd in commands:
        if isinstance(cmd, click.Group) and not cmd.epilog:
            continue  # a group may only list its subcommands
        ctx = click.Context(cmd, info_name=" ".join(path))
        text = cmd.get_help(ctx)
        assert "Examples:" in text, f"'promote {' '.join(path)} --help' has no Examples: block"
    root_help = cli.get_help(click.Context(cli, info_name="promote"))
    assert "Examples:" in root_help and "Exit codes" in root_help


def test_plan_of_a_github_pr_payload_is_staging(payload_repo):
    proc = run_promote(
        "plan",
        "--provider",
        "github",
        "--event-file",
        str(FIXTURES / "github" / "pull_request.opened.json"),
        cwd=payload_repo,
    )
    assert proc.returncode == 0, proc.stderr
    assert "environment:  staging" in proc.stdout
    assert "hrob-risk-staging" in proc.stdout
    assert "'changes' -> 'master'" in proc.stdout


def test_plan_json_is_machine_readable(payload_repo):
    proc = run_promote(
        "plan",
        "--json",
        "--provider",
        "github",
        "--event-file",
        str(FIXTURES / "github" / "pull_request.opened.json"),
        cwd=payload_repo,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["environment"] == "staging"
    assert data["event"]["head_sha"] == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert [s["name"] for s in data["steps"]][:3] == ["contracts", "features", "train"]


@pytest.mark.parametrize("payload", ["push.tag.json", "pull_request.closed.json", "create.tag.json"])
def test_nothing_to_do_exits_zero_with_reason(payload):
    proc = run_promote("plan", "--provider", "github", "--event-file", str(FIXTURES / "github" / payload))
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do: " in proc.stdout


@pytest.mark.parametrize("branch", ["feature/$(touch pwned)", "feat;rm -rf x", "dev/`id`", "x' || true #"])
def test_branch_names_are_data_never_code(tmp_path: Path, branch: str):
    proc = run_promote("plan", "--event", "push", "--branch", branch, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert repr(branch) in proc.stdout or branch in proc.stdout
    proc_json = run_promote(
        "plan",
        "--json",
        "--event",
        "push",
        "--branch",
        branch,
        cwd=tmp_path,
        env={"PROMOTE_CONFIG_DIR": str(ROOT / "configs")},
    )
    assert json.loads(proc_json.stdout)["event"]["branch"] == branch
    assert not (ROOT / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_git_branch_with_shell_characters_from_a_real_repo(git_repo: Path):
    name = "feature/$(touch${IFS}pwned);x"
    git(git_repo, "checkout", "-q", "-b", name)
    proc = run_promote("--config-dir", str(git_repo / "configs"), "plan", "--json", cwd=git_repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["event"]["branch"] == name and data["environment"] == "dev"
    assert not (git_repo / "pwned").exists()


def test_env_mismatch_is_refused_with_exit_2():
    proc = run_promote("plan", "--env", "prod", "--event", "push", "--branch", "feature/x")
    assert proc.returncode == 2
    assert "resolves to 'dev'" in proc.stderr


def test_usage_errors_exit_2():
    proc = run_promote("plan", "--provider", "bitbucket")
    assert proc.returncode == 2
    proc = run_promote("plan", "--event", "push", "--provider", "github", "--event-file", "x.json")
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_missing_event_file_exits_2_naming_it():
    proc = run_promote("plan", "--provider", "github", "--event-file", "does-not-exist.json")
    assert proc.returncode == 2
    assert "does-not-exist.json: event file not found" in proc.stderr


def test_verbose_shows_traceback_for_errors():
    proc = run_promote("--verbose", "plan", "--provider", "github", "--event-file", "does-not-exist.json")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_github_actions_environment_is_detected():
    payload = FIXTURES / "github" / "push.with-new-branch.json"
    proc = run_promote(
        "plan",
        "--json",
        env={
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(payload),
            "GITHUB_SHA": "1" * 40,
        },
    )
    data = json.loads(proc.stdout)
    assert data["event"]["provider"] == "github"
    assert data["environment"] == "staging"  # master is the payload's default branch


def test_every_line_the_cli_writes_is_masked(tmp_path):
    """A secret in the environment never reaches stdout or stderr, even inside an error message."""
    secret = "s3cr3t-Value-42xyz"
    env = {"MLFLOW_TRACKING_TOKEN": secret}
    out = run_promote("plan", "--event", "push", "--branch", f"feature/{secret}", env=env)
    assert out.returncode == 0 and "feature/***" in out.stdout and secret not in out.stdout + out.stderr
    err = run_promote("report", str(tmp_path / f"{secret}.json"), env=env)
    assert err.returncode == 2 and "***.json: run result not found" in err.stderr
    assert secret not in err.stdout + err.stderr


def test_the_derived_basic_credential_is_announced_to_the_runner_only_in_ci():
    import base64

    env = {"MLFLOW_TRACKING_USERNAME": "svc-promote", "MLFLOW_TRACKING_PASSWORD": "pa55-word-xyz"}
    basic = base64.b64encode(b"svc-promote:pa55-word-xyz").decode()
    in_ci = run_promote("plan", "--event", "push", "--branch", "feature/x", env={**env, "GITHUB_ACTIONS": "true"})
    assert in_ci.returncode == 0, in_ci.stderr
    assert in_ci.stdout.splitlines()[0] == f"::add-mask::{basic}"
    local = run_promote("plan", "--event", "push", "--branch", "feature/x", env=env)
    assert basic not in local.stdout + local.stderr


def test_an_unknown_environment_is_named_as_such():
    proc = run_promote("plan", "--event", "push", "--branch", "main", "--env", "qa")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --env/PROMOTE_ENV: unknown environment 'qa' (configured in promotion.yml: dev, staging, prod)"
    )
    other = run_promote("plan", "--event", "push", "--branch", "main", "--env", "prod")
    assert other.returncode == 2 and "resolves to 'staging'" in other.stderr
