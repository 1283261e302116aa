"""The `promote` group, shared options and helpers of the command modules.

Commands stay thin: parse, call one application function, render. Heavy libraries (pyspark,
mlflow, pandas) are imported inside the functions that need them, never at module level, so
`promote --help` and `promote plan` start fast in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from promoter import errors

CONTEXT = dict(help_option_names=["-h", "--help"], max_content_width=100)
_state = {"verbose": False}


class _Group(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            formatter.write_paragraph()
            formatter.write(self.epilog + "\n")


class _Command(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            formatter.write_paragraph()
            formatter.write(self.epilog + "\n")


def examples(*lines: str) -> str:
    """An ``Examples:`` epilog, printed verbatim under a command's help."""
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


@click.group(
    cls=_Group,
    context_settings=CONTEXT,
    epilog=examples(
        "promote plan                                 # what would run for this checkout",
        "promote plan --provider github --event-file event.json --json",
        "promote plan --event pull_request --from feature/x --into main",
        "PROMOTE_ENV=prod promote plan --branch release/1.2",
        "",
        "Exit codes: 0 done (or nothing to do), 1 unexpected failure, 2 invalid input,",
        "3 gate said no, 4 waiting for approval.",
    ),
)
@click.option("-v", "--verbose", is_flag=True, help="Show full tracebacks and debug detail.")
@click.option(
    "--config-dir",
    envvar="PROMOTE_CONFIG_DIR",
    default="configs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder with base/ and per-environment overrides.",
)
@click.version_option(package_name="promote", prog_name="promote")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, config_dir: str) -> None:
    """Git-branch-driven promotion of ML models: plan, train, gate, promote, score, audit.

    Branches are environments (feature branches = dev, the default branch = staging,
    release branches = prod). `promote` reads the CI event (GitHub Actions, Azure DevOps,
    GitLab, or your local git), decides what must run, and records every decision.
    """
    _state["verbose"] = verbose
    # MLflow's INFO lines (database migrations, run links) drown the promotion's own progress
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ctx.obj = {"config_dir": config_dir}


def event_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options that say which event to act on; detected from CI variables when omitted."""
    opts = [
        click.option(
            "--provider",
            type=click.Choice(["github", "azure", "gitlab", "local"]),
            help="CI provider to read the event from (default: detected from the environment).",
        ),
        click.option(
            "--event-file",
            type=click.Path(dir_okay=False),
            help="Replay a GitHub webhook payload (JSON) instead of reading GITHUB_EVENT_PATH.",
        ),
        click.option("--event-name", help="GitHub event name for --event-file when it cannot be inferred."),
        click.option(
            "--event",
            "event_kind",
            type=click.Choice(["push", "pull_request", "release", "schedule", "manual"]),
            help="State the event by hand (local git fills the rest).",
        ),
        click.option("--branch", help="Branch of a stated push/schedule/manual event (default: current)."),
        click.option("--from", "source_branch", help="Head branch of a stated pull request."),
        click.option("--into", "target_branch", help="Target branch of a stated pull request."),
        click.option("--sha", help="Commit of a stated event (default: the branch's head)."),
        click.option("--action", type=click.Choice(["run", "score", "rollback"]), help="What a manual event asks for."),
        click.option("--pr", "pr_number", type=int, help="Pull request number of a stated pull request."),
        click.option("--reason", help="Why a stated manual action is asked for (a rollback needs one)."),
        click.option(
            "--to-version", type=int, help="Version a stated manual rollback restores (default: the 'previous' alias)."
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def detect_event(
    provider: str | None,
    event_file: str | None,
    event_name: str | None,
    event_kind: str | None,
    branch: str | None,
    source_branch: str | None,
    target_branch: str | None,
    sha: str | None,
    action: str | None,
    pr_number: int | None,
    reason: str | None = None,
    to_version: int | None = None,
    repo: str = ".",
):
    """Turn the event options into an Event (by hand, from a payload, or detected)."""
    from promoter.app import sources

    stated = any(
        v is not None for v in (event_kind, branch, source_branch, target_branch, sha, action, reason, to_version)
    )
    if stated and (event_file or provider not in (None, "local")):
        raise errors.InvalidInput(
            "state an event by hand (--event/--branch/--from/--into) or read one (--provider/--event-file), not both"
        )
    if stated or provider == "local":
        kind = event_kind or ("pull_request" if (source_branch or target_branch) else "manual" if action else "push")
        return sources.from_local(
            repo,
            kind=kind,
            branch=branch,
            source_branch=source_branch,
            target_branch=target_branch,
            sha=sha,
            action=action,
            pr_number=pr_number,
            reason=reason,
            to_version=to_version,
        )
    return sources.detect(provider=provider, event_file=event_file, event_name=event_name, repo_path=repo)


def load_settings(ctx: click.Context, env: str | None):
    from promoter import config

    return config.load(ctx.obj["config_dir"], env)


def config_dir(ctx: click.Context) -> str:
    return ctx.obj["config_dir"]
