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
        "promote --project claims plan                # models/claims/configs (promote projects lists them)",
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
    help="Folder with base/ and per-environment overrides (wins over --project).",
)
@click.option(
    "--project",
    envvar="PROMOTE_PROJECT",
    metavar="NAME",
    help="Which model project of the repository: models/NAME/configs, or the root configs/ by its "
    "project.yml name (`promote projects` lists them).",
)
@click.version_option(package_name="promote", prog_name="promote")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, config_dir: str, project: str | None) -> None:
    """Git-branch-driven promotion of ML models: plan, train, gate, promote, score, audit.

    Branches are environments (feature branches = dev, the default branch = staging,
    release branches = prod). `promote` reads the CI event (GitHub Actions, Azure DevOps,
    GitLab, or your local git), decides what must run, and records every decision.
    """
    _state["verbose"] = verbose
    # MLflow's INFO lines (database migrations, run links) drown the promotion's own progress
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    project = (project or "").strip() or None
    from click.core import ParameterSource

    ctx.obj = {
        "config_dir": _choose_config_dir(ctx, config_dir, project),
        "project": project,
        # the project was named (flag or variable), not taken as the repository's only one
        "named": bool(project) or ctx.get_parameter_source("config_dir") != ParameterSource.DEFAULT,
    }


def _choose_config_dir(ctx: click.Context, config_dir: str, project: str | None) -> str:
    """--config-dir > --project > PROMOTE_CONFIG_DIR > PROMOTE_PROJECT > configs/ (or the only project).

    A flag wins over a variable; between two of a kind, the config folder wins.
    """
    from click.core import ParameterSource

    from promoter.app import projects

    dir_source = ctx.get_parameter_source("config_dir")
    project_source = ctx.get_parameter_source("project")
    if dir_source == ParameterSource.COMMANDLINE or not project:
        if dir_source == ParameterSource.DEFAULT and not project:
            return projects.default_config_dir() or config_dir
        return config_dir
    if dir_source == ParameterSource.ENVIRONMENT and project_source != ParameterSource.COMMANDLINE:
        return config_dir
    return projects.resolve(project)


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
        click.option(
            "--action", type=click.Choice(["run", "score", "monitor", "rollback"]), help="What a manual event asks for."
        ),
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


def model_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--model NAME``: which model project a decision is about, in a repository with several."""
    return click.option(
        "--model",
        "model",
        metavar="MODEL",
        help="The model the decision is about (its project.yml model_name, or its project name); "
        "needed when the repository holds more than one model project.",
    )(fn)


def model_config_dir(ctx: click.Context, model: str | None) -> str:
    """The config folder of the model a decision is about.

    ``--model`` picks the project by ``model_name`` (or project name). Without it, a repository
    holding several projects must be told which (``--project`` or ``--config-dir``): a decision
    bound to the wrong model is worse than a question.

    Raises:
        InvalidInput: an unknown model, a --model that contradicts --project, or an ambiguous repository.
    """
    from promoter.app import projects

    chosen = ctx.obj["config_dir"]
    if model:
        found = projects.discover(".")
        match = [p for p in found if model in (p.model_name, p.name)]
        if not match:
            known = ", ".join(f"{p.model_name} ({p.name})" for p in found) or "none found"
            raise errors.InvalidInput(f"--model: no model project {model!r} in this repository (known: {known})")
        picked = match[0].config_dir
        if ctx.obj.get("named") and os.path.realpath(picked) != os.path.realpath(chosen):
            raise errors.InvalidInput(
                f"--model {model} is the project in {picked}, but --project/--config-dir chose {chosen}"
            )
        return picked
    if not ctx.obj.get("named"):
        found = projects.discover(".")
        if len(found) > 1:
            raise errors.InvalidInput(
                f"this repository holds {len(found)} model projects "
                f"({', '.join(p.model_name for p in found)}): say which with --model MODEL (or --project NAME)"
            )
    return chosen
