"""Decisions people make: approve, rollback, release-hold."""

from __future__ import annotations

import click

from promoter import errors
from promoter.cli.base import CONTEXT, _Command, cli, examples, model_config_dir, model_option


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote approve --env prod --version 7 --ticket CHG-123   # in the CI approval job: the actor is recorded",
        "MLFLOW_TRACKING_USERNAME=dr.lee MLFLOW_TRACKING_PASSWORD=... promote approve --env prod --version 7",
        "promote approve --model readmit-30d --env prod --version 3 --reason 'reviewed subgroup table'",
        "promote approve --env dev --version 2 --by dr.lee   # only where the policy says identity: any",
    ),
)
@click.option("--env", "env_name", required=True, help="Environment of the decision.")
@click.option("--version", "version", type=int, required=True, help="Model version to approve.")
@click.option(
    "--by",
    "by",
    help="Who approves. Optional where a platform verified the identity (CI actor, tracking-server user); "
    "refused when it disagrees with it. Alone it is an unverified approval, accepted only under identity: any.",
)
@click.option("--ticket", help="Change ticket, e.g. CHG-123 (checked against the recorded policy; recorded).")
@click.option("--reason", help="Why (recorded).")
@model_option
@click.pass_context
def approve(
    ctx: click.Context,
    model: str | None,
    env_name: str,
    version: int,
    by: str | None,
    ticket: str | None,
    reason: str | None,
) -> None:
    """Approve a gate decision; when every role of its policy has signed off, the champion moves.

    The approval is bound to the newest gate decision for that version and counts under the
    approvals policy recorded with it (roles, members, required counts), not the one in this
    checkout. The approver is the identity the platform verified: the CI job's actor
    (GitHub Actions, Azure DevOps, GitLab) or the tracking server's authenticated user. One
    person counts once, in one role. A FAIL cannot be approved. Before moving, the champion is
    re-checked: if it changed since the decision, re-run the release. Exit 4 while roles are
    still missing; exit 2 for a refused identity or a missing or malformed change ticket.
    """
    from promoter.app import decisions

    action = decisions.approve(model_config_dir(ctx, model), env_name, version, by, ticket=ticket, reason=reason)
    click.echo(action.message)
    if action.evidence_url:
        click.echo(f"evidence pack: {action.evidence_url}")
    if action.waiting:
        raise errors.AwaitingApproval(action.message)


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote rollback --env prod --by ops.kim --reason 'calibration drift in region 3'",
        "promote rollback --env prod --to-version 4 --by ops.kim --reason INC-991",
    ),
)
@click.option("--env", "env_name", required=True, help="Environment to roll back.")
@click.option("--to-version", type=int, help="Version to restore (default: the 'previous' alias).")
@click.option("--by", "by", required=True, help="Who rolls back (recorded).")
@click.option("--reason", required=True, help="Why (recorded).")
@model_option
@click.pass_context
def rollback(
    ctx: click.Context, model: str | None, env_name: str, to_version: int | None, by: str, reason: str
) -> None:
    """Move `champion` back and hold automatic promotion until released.

    Records the rollback and a hold; later releases then wait for an approval (exit 4) until
    `promote release-hold`. A rollback is never undone automatically.
    """
    from promoter.app import decisions

    action = decisions.rollback(model_config_dir(ctx, model), env_name, by, reason, to_version=to_version)
    click.echo(action.message)
    if action.evidence_url:
        click.echo(f"evidence pack: {action.evidence_url}")


@cli.command(
    "release-hold",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote release-hold --env prod --by ops.kim --reason 'root cause fixed in 1.3'",
    ),
)
@click.option("--env", "env_name", required=True, help="Environment whose hold to lift.")
@click.option("--by", "by", required=True, help="Who lifts it (recorded).")
@click.option("--reason", help="Why (recorded).")
@model_option
@click.pass_context
def release_hold(ctx: click.Context, model: str | None, env_name: str, by: str, reason: str | None) -> None:
    """Lift the hold a rollback put on automatic promotion."""
    from promoter.app import decisions

    click.echo(decisions.release_hold(model_config_dir(ctx, model), env_name, by, reason).message)
