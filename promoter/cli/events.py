"""Commands that act on an event: plan, run, replay, score."""

from __future__ import annotations

from typing import Any

import click

from promoter import errors
from promoter.cli.base import CONTEXT, _Command, cli, config_dir, detect_event, event_options, examples

ENV_OPTION = click.option(
    "--env", "env_flag", help="Expected environment; refuse when the event resolves elsewhere (default: PROMOTE_ENV)."
)


def _prepare(
    ctx: click.Context, event: Any, env_flag: str | None, repo: str, *, publish_errors: bool, ticket: str | None = None
) -> Any:
    """prepare(event); a config or event error is still a CI result (annotation at file and line)."""
    from promoter import config
    from promoter.app import prepare, run

    expected = config.resolve_env(env_flag)
    try:
        return prepare.prepare(event, config_dir(ctx), repo, expected, ticket=ticket)
    except errors.PromoteError as exc:
        if publish_errors:
            run.publish_failure(event, expected, exc)
        raise


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote plan",
        "promote plan --json",
        "promote plan --provider github --event-file tests/fixtures/github/pull_request.opened.json",
        "promote plan --event pull_request --from feature/x --into main",
        "promote plan --event manual --action score --branch release/1.0",
    ),
)
@event_options
@ENV_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan(ctx: click.Context, env_flag: str | None, as_json: bool, **event_opts: Any) -> None:
    """Print what an event implies, and change nothing.

    Shows the event, the environment it resolves to (first matching branch rule wins),
    the registered model it may touch, and each step with its reason: exactly the steps
    `promote run` executes for the same event, in the same order. An event that needs
    nothing (a tag push, a PR closed without merge) prints "nothing to do: <reason>".
    For a pull request, the branch rules, steps and gate policy come from its target branch.
    """
    from promoter.report import render

    prepared = _prepare(ctx, detect_event(**event_opts), env_flag, ".", publish_errors=False)
    if as_json:
        click.echo(render.to_json(prepared.plan.to_dict()), nl=False)
    else:
        click.echo(render.plan_text(prepared.plan), nl=False)


def _show(result: Any, as_json: bool) -> None:
    from promoter.report import markdown, render

    if as_json:
        click.echo(render.to_json(result.to_dict()), nl=False)
    else:
        click.echo(markdown.text(result.to_dict()), nl=False)


def _run_prepared(prepared: Any, *, dry_run: bool, as_json: bool, score_date: Any, repo: str) -> None:
    from promoter.app import run
    from promoter.report import render

    if not as_json:
        click.echo(render.plan_text(prepared.plan), nl=False)
        if dry_run and not prepared.plan.is_empty:
            click.echo("dry run: stopping after the plan; nothing was changed")
    if dry_run or prepared.plan.is_empty:
        if as_json:
            _show(run.dry_result(prepared), as_json)
        return
    try:
        result = run.execute(prepared, repo_path=repo, score_date=score_date.date() if score_date else None)
    except errors.PromoteError as exc:
        if getattr(exc, "result", None) is not None:
            _show(exc.result, as_json)  # type: ignore[attr-defined]
        raise
    _show(result, as_json)


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote run                                   # in CI: the event comes from the provider",
        "promote run --dry-run                         # print the plan, change nothing",
        "promote run --event pull_request --from feature/x --into main",
        "promote run --event push --branch release/1.1 --json",
        "promote run --event manual --action rollback --branch release/1.1 --reason INC-991",
    ),
)
@event_options
@ENV_OPTION
@click.option("--dry-run", is_flag=True, help="Stop after printing the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON on stdout.")
@click.option(
    "--score-date", type=click.DateTime(["%Y-%m-%d"]), help="Partition date for scoring (default: today, UTC)."
)
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.option(
    "--ticket",
    help="Change ticket of a promotion (else PROMOTE_CHANGE_TICKET, a 'Change-Ticket:' line in the release "
    "tag or commit, or the branch name); required where promotion.yml approvals.<env>.change_ticket says so.",
)
@click.pass_context
def run(
    ctx: click.Context,
    env_flag: str | None,
    dry_run: bool,
    as_json: bool,
    score_date: Any,
    repo: str,
    ticket: str | None,
    **event_opts: Any,
) -> None:
    """Carry out what the event implies: exactly the steps `promote plan` prints, in order.

    Exit 0 when done (or nothing to do), 2 for invalid input (config, event, data contract),
    3 when the gate says no, 4 when the promotion waits for approval, 1 when a step died
    (the line names the step; for Spark memory, the setting to raise). Re-running the same
    event is safe: the registered version, the decision and the alias move are reused.
    """
    event = detect_event(**event_opts, repo=repo)
    prepared = _prepare(ctx, event, env_flag, repo, publish_errors=not dry_run, ticket=ticket)
    _run_prepared(prepared, dry_run=dry_run, as_json=as_json, score_date=score_date, repo=repo)


_REPLAY_KINDS = {
    "push": "push",
    "pull-request": "pull_request",
    "pr": "pull_request",
    "release": "release",
    "schedule": "schedule",
    "manual": "manual",
}


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote replay push feature/sdoh                 # a push to a feature branch (dev)",
        "promote replay pull-request --from feature/x --into main",
        "promote replay push main                         # the merge (staging champion)",
        "promote replay push release/1.1                  # a release (prod gate)",
        "promote replay manual release/1.1 --action score",
        "promote replay manual release/1.1 --action rollback --reason 'INC-991 drift'",
        "promote replay --provider github --event-file payload.json --dry-run",
        "promote replay --provider azure --event-file azure-variables.json",
        "promote replay --provider gitlab                 # GitLab's CI_* variables from this shell",
    ),
)
@click.argument("kind", required=False, type=click.Choice(sorted(_REPLAY_KINDS)))
@click.argument("branch", required=False)
@click.option("--from", "source_branch", help="Head branch of a pull request.")
@click.option("--into", "target_branch", help="Target branch of a pull request.")
@click.option("--sha", help="Commit to replay (default: the branch's head in this repo).")
@click.option("--pr", "pr_number", type=int, help="Pull request number.")
@click.option(
    "--action", type=click.Choice(["run", "score", "monitor", "rollback"]), help="What a manual event asks for."
)
@click.option("--reason", help="Why a manual action is asked for (a rollback needs one).")
@click.option("--to-version", type=int, help="Version a manual rollback restores (default: 'previous').")
@click.option(
    "--provider",
    type=click.Choice(["github", "azure", "gitlab"]),
    help="Replay a CI provider's event: its variables from this shell, or --event-file.",
)
@click.option(
    "--event-file",
    type=click.Path(dir_okay=False),
    help="GitHub: a webhook payload. Azure DevOps / GitLab: a JSON object of the provider's variables.",
)
@click.option("--event-name", help="GitHub event name when the payload does not tell.")
@click.option("--dry-run", is_flag=True, help="Stop after printing the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON on stdout.")
@click.option("--score-date", type=click.DateTime(["%Y-%m-%d"]), help="Partition date for scoring.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.pass_context
def replay(
    ctx: click.Context,
    kind: str | None,
    branch: str | None,
    source_branch: str | None,
    target_branch: str | None,
    sha: str | None,
    pr_number: int | None,
    action: str | None,
    reason: str | None,
    to_version: int | None,
    provider: str | None,
    event_file: str | None,
    event_name: str | None,
    dry_run: bool,
    as_json: bool,
    score_date: Any,
    repo: str,
) -> None:
    """Run any event locally, through the same code path CI uses.

    State the event (`push BRANCH`, `pull-request --from A --into B`, `schedule`, `manual BRANCH`),
    or replay a CI provider's event with --provider (GitHub: a payload; Azure DevOps and GitLab:
    their predefined variables, from this shell or from --event-file). A stated event ignores
    the CI variables in your shell.
    """
    import os

    from promoter.app import sources

    if provider or event_file:
        if kind or branch:
            raise errors.InvalidInput(
                "replay either a stated event (KIND BRANCH) or a provider's event (--provider/--event-file), not both"
            )
        event = sources.replay_event(provider or "github", event_file, event_name, os.environ, repo)
    else:
        if kind is None:
            raise errors.InvalidInput(
                "say what to replay: promote replay push BRANCH | pull-request --from A "
                "--into B | schedule | manual BRANCH (or --provider P [--event-file F])"
            )
        the_kind = _REPLAY_KINDS[kind]
        if the_kind == "pull_request":
            if branch and not target_branch:
                target_branch = branch
            event = sources.from_local(
                repo,
                kind=the_kind,
                source_branch=source_branch,
                target_branch=target_branch,
                sha=sha,
                pr_number=pr_number,
            )
        else:
            event = sources.from_local(
                repo, kind=the_kind, branch=branch, sha=sha, action=action, reason=reason, to_version=to_version
            )
    prepared = _prepare(ctx, event, None, repo, publish_errors=False)
    _run_prepared(prepared, dry_run=dry_run, as_json=as_json, score_date=score_date, repo=repo)


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote score                                 # the daily run: prod champion, today's partition",
        "promote score --env prod --date 2026-11-23    # re-score a day (replaces that partition)",
    ),
)
@click.option("--env", "env_flag", help="Environment whose champion scores (default: PROMOTE_ENV, else prod).")
@click.option("--date", "score_date", type=click.DateTime(["%Y-%m-%d"]), help="Partition date (default: today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON.")
@click.option("--dry-run", is_flag=True, help="Print the plan (what would run) and stop.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.pass_context
def score(ctx: click.Context, env_flag: str | None, score_date: Any, as_json: bool, dry_run: bool, repo: str) -> None:
    """Score the population with the champion into the Delta predictions table.

    Runs the plan of a manual `score` action in the environment (score, report): resolves the
    champion by alias and pins its version on every row; writes the day's partition of the
    predictions and outreach tables atomically; records an audit entry. Exit 2 when the
    environment has no champion yet.
    """
    from promoter.app import prepare

    prepared = prepare.prepare_action(prepare.manual_event(repo, "score"), config_dir(ctx), env_flag, "score")
    _run_prepared(prepared, dry_run=dry_run, as_json=as_json, score_date=score_date, repo=repo)


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote monitor                               # the daily run, after `promote score`: prod, today",
        "promote monitor --date 2026-11-23 --json      # monitor a scored day again (replaces its rows)",
        "promote monitor --dry-run                     # the plan only (surveillance, report)",
        "promote --project readmission monitor         # one project of a repository with several",
    ),
)
@click.option("--env", "env_flag", help="Environment whose champion is monitored (default: PROMOTE_ENV, else prod).")
@click.option(
    "--date", "score_date", type=click.DateTime(["%Y-%m-%d"]), help="Scored day to monitor (default: today, UTC)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON.")
@click.option("--dry-run", is_flag=True, help="Print the plan (what would run) and stop.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.pass_context
def monitor(ctx: click.Context, env_flag: str | None, score_date: Any, as_json: bool, dry_run: bool, repo: str) -> None:
    """Post-market surveillance of the champion for one scored day (monitoring.yml).

    Runs the plan of a manual `monitor` action (surveillance, report). Input drift of every model
    feature against the champion's training snapshot (BASELINE) and the previous scored day
    (CONSECUTIVE); prediction drift, overall and per subgroup; realised performance of the days
    whose outcomes have matured (label delay), per subgroup, by the values the rows had when
    scored (kept in monitoring/scored_slices). Writes the lake's
    monitoring/profile_metrics and monitoring/drift_metrics Delta tables, logs a report to MLflow
    with the champion's version, records one audit entry, alerts the owners and, when the retrain
    policy says so, dispatches a retrain from the release branch (never a promotion).
    Exit 2 on a bad monitoring.yml or outcomes table; nothing is written then.
    """
    from promoter.app import prepare

    prepared = prepare.prepare_action(prepare.manual_event(repo, "monitor"), config_dir(ctx), env_flag, "monitor")
    _run_prepared(prepared, dry_run=dry_run, as_json=as_json, score_date=score_date, repo=repo)
