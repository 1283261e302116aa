"""Reading and publishing the record: history, audit verify, report."""

from __future__ import annotations

import click

from promoter import errors
from promoter.cli.base import CONTEXT, _Command, _Group, cli, examples, model_config_dir, model_option


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote report result.json                        # publish a saved run result from this CI step",
        "promote report result.json --no-console",
    ),
)
@click.argument("result_file", type=click.Path(dir_okay=False))
@click.option("--console/--no-console", default=True, help="Also print the plain-text report.")
def report(result_file: str, console: bool) -> None:
    """Publish a saved run result (JSON) where this CI provider shows it.

    GitHub Actions: job summary, step outputs, annotations, the sticky PR comment for
    the environment and a commit status. Azure DevOps: logging commands, build summary,
    the PR thread and a PR status. Elsewhere: the text report. A report that cannot be
    posted is a warning; this command then still exits 0.
    """
    import json
    from pathlib import Path

    from promoter.report.sinks import publish

    path = Path(result_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise errors.InvalidInput(f"{path}: run result not found") from None
    except json.JSONDecodeError as exc:
        raise errors.InvalidInput(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or "environment" not in data or "exit_code" not in data:
        raise errors.InvalidInput(f"{path}: not a run result (a JSON object with 'environment' and 'exit_code')")
    publish(data, console=console)  # a report of a saved result: nothing else to run


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote history --env prod",
        "promote history --json > decisions.json",
    ),
)
@click.option("--env", "env_name", help="Only this environment's chain (default: every chain).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@model_option
@click.pass_context
def history(ctx: click.Context, model: str | None, env_name: str | None, as_json: bool) -> None:
    """List decision records: gate verdicts, approvals, alias moves, rollbacks, scoring runs."""
    from promoter.app import queries
    from promoter.report import render

    records = queries.history(model_config_dir(ctx, model), env_name)
    if as_json:
        click.echo(render.to_json([r.to_dict() for r in records]), nl=False)
    else:
        click.echo(render.history_text(records), nl=False)


@cli.group(
    cls=_Group,
    context_settings=CONTEXT,
    epilog=examples("promote audit verify", "promote audit verify --env prod", "promote audit verify --anchors"),
)
def audit() -> None:
    """Check the tamper-evident audit trail."""


@audit.command(
    "verify",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote audit verify",
        "promote audit verify --env prod --json",
        "promote audit verify --env prod --anchors      # also against the heads anchored in git and the lake",
    ),
)
@click.option("--env", "env_name", help="Only this environment's chain (default: every chain).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--anchors",
    is_flag=True,
    help="Also check the prod chain against its anchors outside the tracking server "
    "(git notes refs/notes/promote-audit and the lake's audit/anchors table).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False),
    help="With --anchors: the git checkout holding the notes (default: the repository of the configs).",
)
@model_option
@click.pass_context
def audit_verify(
    ctx: click.Context, model: str | None, env_name: str | None, as_json: bool, anchors: bool, repo: str | None
) -> None:
    """Recompute every record's hash and link; name the first edited, broken or missing record.

    With --anchors, also compare the prod chain with the heads anchored at each prod decision
    in git and in the lake: a chain rewritten together with its head tag, or cut short, no
    longer matches them. Exit 0 when everything verifies, 2 when something does not.
    """
    from promoter.app import queries
    from promoter.report import render

    cfg = model_config_dir(ctx, model)
    results = queries.verify(cfg, env_name)
    checks = queries.verify_anchors(cfg, env_name, repo) if anchors else {}
    if as_json:
        data = {env: r.to_dict() for env, r in results.items()}
        for env, check in checks.items():
            data[env]["anchors"] = check.to_dict()
        click.echo(render.to_json(data), nl=False)
    bad = {env: r for env, r in results.items() if not r.ok}
    if not as_json:
        for env, r in results.items():
            click.echo(f"{env}: " + ("ok, " + f"{r.checked} record(s)" if r.ok else f"BROKEN: {r.first_problem}"))
        for env, check in checks.items():
            if not check.anchored:
                click.echo(f"{env}: anchors: none (only the prod environment's decisions are anchored)")
            elif check.ok:
                counts = ", ".join(f"{n} in {store}" for store, n in check.checked.items())
                click.echo(f"{env}: anchors ok, {sum(check.checked.values())} anchor(s) checked ({counts})")
            else:
                for problem in check.problems:
                    click.echo(f"{env}: ANCHOR PROBLEM: {problem}")
    if bad:
        env, r = next(iter(bad.items()))
        raise errors.InvalidInput(f"audit chain {env!r} does not verify: {r.first_problem}")
    broken = {env: c for env, c in checks.items() if not c.ok}
    if broken:
        env, check = next(iter(broken.items()))
        more = len(check.problems) - 1
        raise errors.InvalidInput(
            f"audit chain {env!r} does not match its anchors: {check.problems[0]}"
            + (f" (and {more} more problem(s))" if more else "")
        )
