"""The `promote` command line: parse, call the core, render, map errors to exit codes.

Commands stay thin. Heavy libraries (pyspark, mlflow, pandas) are imported inside the
commands that need them, never at module level, so `promote --help` and `promote plan`
start fast in CI.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any, Callable

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


@click.group(cls=_Group, context_settings=CONTEXT, epilog=examples(
    "promote plan                                 # what would run for this checkout",
    "promote plan --provider github --event-file event.json --json",
    "promote plan --event pull_request --from feature/x --into main",
    "PROMOTE_ENV=prod promote plan --branch release/1.2",
    "",
    "Exit codes: 0 done (or nothing to do), 1 unexpected failure, 2 invalid input,",
    "3 gate said no, 4 waiting for approval.",
))
@click.option("-v", "--verbose", is_flag=True, help="Show full tracebacks and debug detail.")
@click.option("--config-dir", envvar="PROMOTE_CONFIG_DIR", default="configs", show_default=True,
              type=click.Path(file_okay=False), help="Folder with base/ and per-environment overrides.")
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
        click.option("--provider", type=click.Choice(["github", "azure", "gitlab", "local"]),
                     help="CI provider to read the event from (default: detected from the environment)."),
        click.option("--event-file", type=click.Path(dir_okay=False),
                     help="Replay a GitHub webhook payload (JSON) instead of reading GITHUB_EVENT_PATH."),
        click.option("--event-name", help="GitHub event name for --event-file when it cannot be inferred."),
        click.option("--event", "event_kind",
                     type=click.Choice(["push", "pull_request", "release", "schedule", "manual"]),
                     help="State the event by hand (local git fills the rest)."),
        click.option("--branch", help="Branch of a stated push/schedule/manual event (default: current)."),
        click.option("--from", "source_branch", help="Head branch of a stated pull request."),
        click.option("--into", "target_branch", help="Target branch of a stated pull request."),
        click.option("--sha", help="Commit of a stated event (default: the branch's head)."),
        click.option("--action", type=click.Choice(["run", "score", "rollback"]),
                     help="What a manual event asks for."),
        click.option("--pr", "pr_number", type=int, help="Pull request number of a stated pull request."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def detect_event(provider: str | None, event_file: str | None, event_name: str | None, event_kind: str | None,
                 branch: str | None, source_branch: str | None, target_branch: str | None, sha: str | None,
                 action: str | None, pr_number: int | None, repo: str = "."):
    """Turn the event options into an Event (by hand, from a payload, or detected)."""
    from promoter.core import events

    stated = any(v is not None for v in (event_kind, branch, source_branch, target_branch, sha, action))
    if stated and (event_file or provider not in (None, "local")):
        raise errors.InvalidInput("state an event by hand (--event/--branch/--from/--into) or read one "
                                  "(--provider/--event-file), not both")
    if stated or provider == "local":
        kind = event_kind or ("pull_request" if (source_branch or target_branch) else
                              "manual" if action else "push")
        return events.from_local(repo, kind=kind, branch=branch, source_branch=source_branch,
                                 target_branch=target_branch, sha=sha, action=action, pr_number=pr_number)
    return events.detect(provider=provider, event_file=event_file, event_name=event_name, repo_path=repo)


def load_settings(ctx: click.Context, env: str | None):
    from promoter import config

    return config.load(ctx.obj["config_dir"], env)


@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote plan",
    "promote plan --json",
    "promote plan --provider github --event-file tests/fixtures/github/pull_request.opened.json",
    "promote plan --event pull_request --from feature/x --into main",
    "promote plan --event manual --action score --branch release/1.0",
))
@event_options
@click.option("--env", "env_flag", help="Expected environment; refuse when the event resolves elsewhere "
              "(default: PROMOTE_ENV).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan(ctx: click.Context, env_flag: str | None, as_json: bool, **event_opts: Any) -> None:
    """Print what an event implies, and change nothing.

    Shows the event, the environment it resolves to (first matching branch rule wins),
    the registered model it may touch, and each step with its reason. An event that needs
    nothing (a tag push, a PR closed without merge) prints "nothing to do: <reason>".
    """
    from promoter import config
    from promoter.core import plan as planning
    from promoter.report import render

    event = detect_event(**event_opts)
    base = load_settings(ctx, None)
    the_plan = planning.build(event, base)
    expected = config.resolve_env(env_flag)
    planning.check_expected_environment(the_plan, expected, base)
    if the_plan.environment:
        # The environment layer may change steps or policy: plan again with it applied.
        the_plan = planning.build(event, load_settings(ctx, the_plan.environment))
    if as_json:
        click.echo(render.to_json(the_plan.to_dict()), nl=False)
    else:
        click.echo(render.plan_text(the_plan), nl=False)


@cli.command("cut-release", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote cut-release --version 1.2                 # release/1.2 + tag v1.2 from main, local only",
    "promote cut-release --version 1.2 --push          # ... and push both to origin",
    "promote cut-release --from master --name release/2024.06 --push",
    "promote cut-release --version 1.3 --force --reason 'hotfix INC-42, staging down'",
))
@click.option("--from", "source", default="main", show_default=True, help="Branch to release from.")
@click.option("--name", help="Release branch name, e.g. release/1.2 (tag v1.2).")
@click.option("--version", "version", help="Release version: --version 1.2 means --name release/1.2.")
@click.option("--push", is_flag=True, help="Push the branch and tag to the remote (atomically).")
@click.option("--remote", default="origin", show_default=True, help="Remote to compare with and push to.")
@click.option("--force", is_flag=True, help="Skip the readiness check (needs --reason).")
@click.option("--reason", help="Why the release is forced; recorded in the tag message.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Path inside the git work tree.")
@click.pass_context
def cut_release_cmd(ctx: click.Context, source: str, name: str | None, version: str | None, push: bool,
                    remote: str, force: bool, reason: str | None, repo: str) -> None:
    """Cut a release branch and annotated tag from a commit that passed in staging.

    Refuses a dirty work tree, a missing source branch or one behind its remote, and a
    branch or tag that exists (here or on the remote). Unless --force, the source commit
    must have a staging candidate whose expectations passed (asked of MLflow). Prints
    what CI will do when the branch arrives.
    """
    from pathlib import Path

    from promoter.app import release

    config_dir = Path(ctx.obj["config_dir"])
    if not config_dir.is_absolute() and repo != "." and (Path(repo) / config_dir).is_dir():
        ctx.obj["config_dir"] = str(Path(repo) / config_dir)
    base = load_settings(ctx, None)
    readiness = None
    if not force:
        readiness = release.mlflow_readiness(load_settings(ctx, base.promotion.pull_request_fallback), repo=repo)
    result = release.cut_release(repo, source=source, name=name, version=version, push=push, remote=remote,
                                 force=force, reason=reason, readiness=readiness, settings=base)
    click.echo(release.render(result), nl=False)


@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote report result.json                        # publish a saved run result from this CI step",
    "promote report result.json --no-console",
))
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
    publish(data, console=console)


# --------------------------------------------------------------------------- run, replay, score

def _render_result(result: Any, as_json: bool) -> None:
    from promoter.report import render

    if as_json:
        click.echo(render.to_json(result.to_dict()), nl=False)


def _run_event(ctx: click.Context, event: Any, *, env_flag: str | None, dry_run: bool, as_json: bool,
               score_date: Any, repo: str) -> None:
    from promoter import config
    from promoter.app import run as runner
    from promoter.report import render

    def show_plan(p: Any) -> None:
        if not as_json:
            click.echo(render.plan_text(p), nl=False)
            if dry_run and not p.is_empty:
                click.echo("dry run: stopping after the plan; nothing was changed")

    result = runner.execute(event, config_dir=ctx.obj["config_dir"], repo_path=repo,
                            expected_env=config.resolve_env(env_flag), dry_run=dry_run,
                            score_date=score_date.date() if score_date else None, render_plan=show_plan,
                            console=not as_json)
    _render_result(result, as_json)


@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote run                                   # in CI: the event comes from the provider",
    "promote run --dry-run                         # print the plan, change nothing",
    "promote run --event pull_request --from feature/x --into main",
    "promote run --event push --branch release/1.1 --json",
))
@event_options
@click.option("--env", "env_flag", help="Expected environment; refuse when the event resolves elsewhere "
              "(default: PROMOTE_ENV).")
@click.option("--dry-run", is_flag=True, help="Stop after printing the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON on stdout.")
@click.option("--score-date", type=click.DateTime(["%Y-%m-%d"]), help="Partition date for scoring (default: today, UTC).")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.pass_context
def run(ctx: click.Context, env_flag: str | None, dry_run: bool, as_json: bool, score_date: Any, repo: str,
        **event_opts: Any) -> None:
    """Carry out what the event implies: contracts, features, train, gate, promote, score.

    Exit 0 when done (or nothing to do), 2 for invalid input (config, event, data contract),
    3 when the gate says no, 4 when the promotion waits for approval. Re-running the same
    event is safe: the registered version, the decision and the alias move are reused.
    """
    event = detect_event(**event_opts, repo=repo)
    _run_event(ctx, event, env_flag=env_flag, dry_run=dry_run, as_json=as_json, score_date=score_date, repo=repo)


_REPLAY_KINDS = {"push": "push", "pull-request": "pull_request", "pr": "pull_request", "release": "release",
                 "schedule": "schedule", "manual": "manual"}


@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote replay push feature/sdoh                 # a push to a feature branch (dev)",
    "promote replay pull-request --from feature/x --into main",
    "promote replay push main                         # the merge (staging champion)",
    "promote replay push release/1.1                  # a release (prod gate)",
    "promote replay --provider github --event-file payload.json --dry-run",
    "promote replay manual release/1.1 --action score",
))
@click.argument("kind", required=False, type=click.Choice(sorted(_REPLAY_KINDS)))
@click.argument("branch", required=False)
@click.option("--from", "source_branch", help="Head branch of a pull request.")
@click.option("--into", "target_branch", help="Target branch of a pull request.")
@click.option("--sha", help="Commit to replay (default: the branch's head in this repo).")
@click.option("--pr", "pr_number", type=int, help="Pull request number.")
@click.option("--action", type=click.Choice(["run", "score", "rollback"]), help="What a manual event asks for.")
@click.option("--provider", type=click.Choice(["github", "azure", "gitlab"]),
              help="Replay a CI provider's event (GitHub: with --event-file).")
@click.option("--event-file", type=click.Path(dir_okay=False), help="A GitHub webhook payload to replay.")
@click.option("--event-name", help="GitHub event name when the payload does not tell.")
@click.option("--dry-run", is_flag=True, help="Stop after printing the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON on stdout.")
@click.option("--score-date", type=click.DateTime(["%Y-%m-%d"]), help="Partition date for scoring.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.pass_context
def replay(ctx: click.Context, kind: str | None, branch: str | None, source_branch: str | None,
           target_branch: str | None, sha: str | None, pr_number: int | None, action: str | None,
           provider: str | None, event_file: str | None, event_name: str | None, dry_run: bool, as_json: bool,
           score_date: Any, repo: str) -> None:
    """Run any event locally, through the same code path CI uses.

    State the event (`push BRANCH`, `pull-request --from A --into B`, `schedule`, `manual BRANCH`)
    or hand over a CI payload. CI variables in your shell are ignored: a replay is always local.
    """
    from promoter.core import events

    if provider or event_file:
        if kind or branch:
            raise errors.InvalidInput("replay either a stated event (KIND BRANCH) or a payload (--event-file), not both")
        event = events.detect({}, provider=provider or "github", event_file=event_file, event_name=event_name,
                              repo_path=repo)
    else:
        if kind is None:
            raise errors.InvalidInput("say what to replay: promote replay push BRANCH | pull-request --from A "
                                      "--into B | schedule | manual BRANCH (or --event-file)")
        the_kind = _REPLAY_KINDS[kind]
        if the_kind == "pull_request":
            if branch and not target_branch:
                target_branch = branch
            event = events.from_local(repo, kind=the_kind, source_branch=source_branch,
                                      target_branch=target_branch, sha=sha, pr_number=pr_number)
        else:
            event = events.from_local(repo, kind=the_kind, branch=branch, sha=sha, action=action)
    _run_event(ctx, event, env_flag=None, dry_run=dry_run, as_json=as_json, score_date=score_date, repo=repo)


@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote score                                 # the daily run: prod champion, today's partition",
    "promote score --env prod --date 2026-11-23    # re-score a day (replaces that partition)",
))
@click.option("--env", "env_flag", help="Environment whose champion scores (default: PROMOTE_ENV, else prod).")
@click.option("--date", "score_date", type=click.DateTime(["%Y-%m-%d"]), help="Partition date (default: today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The git checkout.")
@click.pass_context
def score(ctx: click.Context, env_flag: str | None, score_date: Any, as_json: bool, repo: str) -> None:
    """Score the population with the champion into the Delta predictions table.

    Resolves the champion by alias and pins its version on every row; writes the day's
    partition of the predictions and outreach tables atomically; records an audit entry.
    Exit 2 when the environment has no champion yet.
    """
    from promoter import config
    from promoter.app import run as runner

    env = config.resolve_env(env_flag) or load_settings(ctx, None).promotion.prod_environment
    result = runner.score_only(ctx.obj["config_dir"], env, repo_path=repo,
                               score_date=score_date.date() if score_date else None, console=not as_json)
    _render_result(result, as_json)


# --------------------------------------------------------------------------- data layer

@cli.group("data", cls=_Group, context_settings=CONTEXT, epilog=examples(
    "promote data generate --members 20000 --seed 7",
    "promote data check",
    "promote data check --format markdown --output contract-report.md",
))
def data_group() -> None:
    """Fill bronze with the synthetic population, and check the data contracts."""


@data_group.command("generate", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote data generate                                   # 20,000 members, seed 20240601, today",
    "promote data generate --members 1000000 --seed 7",
    "promote data generate --snapshot-date 2024-06-30 --shift 0.5   # a drifted population",
))
@click.option("--members", type=click.IntRange(1, 999_999_999), default=20_000, show_default=True,
              help="Number of members.")
@click.option("--seed", type=int, default=20240601, show_default=True, help="Random seed: same seed, same data.")
@click.option("--snapshot-date", type=click.DateTime(["%Y-%m-%d"]), help="As-of date (default: today, UTC).")
@click.option("--shift", type=float, default=0.0, show_default=True,
              help="Population drift: 0 is the reference; 0.5-1 is a markedly sicker, poorer population.")
@click.option("--env", "env_flag", help="Environment overlay to load (default: PROMOTE_ENV, else base).")
@click.pass_context
def data_generate(ctx: click.Context, members: int, seed: int, snapshot_date: Any, shift: float,
                  env_flag: str | None) -> None:
    """Write the synthetic HROB population (members with PHI, and claims) to the lake's bronze layer.

    Generated in Spark and deterministic for a seed; nothing is collected to the driver.
    """
    from datetime import datetime, timezone

    from pipelines import lake, session, synthetic
    from promoter import config

    settings = load_settings(ctx, config.resolve_env(env_flag))
    day = snapshot_date.date() if snapshot_date else datetime.now(timezone.utc).date()
    spark = session.from_settings(settings.project.spark)
    counts = synthetic.generate(spark, settings, members=members, seed=seed, snapshot_date=day, shift=shift)
    click.echo(f"bronze written to {lake.root(settings)}/bronze (snapshot {day}, seed {seed}, shift {shift:g}):")
    for table, rows in counts.items():
        click.echo(f"  {table}: {rows:,} rows")


@data_group.command("check", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote data check",
    "promote data check --format json --output contracts.json",
    "promote data check --env prod --format markdown",
    "",
    "Exit code 2 when any contract is broken (the report lists every violation).",
))
@click.option("--env", "env_flag", help="Environment overlay to load (default: PROMOTE_ENV, else base).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the report to this file.")
@click.pass_context
def data_check(ctx: click.Context, env_flag: str | None, fmt: str, output: str | None) -> None:
    """Check every table in contracts.yml: schema, keys, values, ranges, nulls, volume, references, freshness."""
    from pipelines import contracts, session
    from promoter import config

    settings = load_settings(ctx, config.resolve_env(env_flag))
    spark = session.from_settings(settings.project.spark)
    report = contracts.check(spark, settings)
    text = {"text": report.to_text, "markdown": report.to_markdown, "json": report.to_json}[fmt]()
    click.echo(text, nl=False)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    if not report.ok:
        raise errors.DataContractError(f"{len(report.violations)} data contract violation(s) "
                                       f"(contracts v{report.version}); see the report above")


@cli.command("features", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote features                       # bronze -> silver -> gold with the current selection",
    "promote features --check               # check the data contracts first",
    "PROMOTE_PSEUDONYM_KEY=... promote features --env prod",
))
@click.option("--env", "env_flag", help="Environment overlay to load (default: PROMOTE_ENV, else base).")
@click.option("--check", "check_first", is_flag=True, help="Check the data contracts first; stop on a violation.")
@click.option("--json", "as_json", is_flag=True, help="Print the gold catalog entry as JSON.")
@click.pass_context
def features_cmd(ctx: click.Context, env_flag: str | None, check_first: bool, as_json: bool) -> None:
    """Build silver and gold: pseudonymise, drop PHI, engineer, select, impute, and catalog.

    feature_mappings.yml decides which columns form which group; feature_selection_config.yml
    which groups and features the model sees and how each group is imputed. The PHI guard
    runs on silver and gold; nothing is published when it finds PHI.
    """
    import json
    import warnings

    from pipelines import contracts, features, session
    from promoter import config
    from promoter.app import run as runner

    settings = load_settings(ctx, config.resolve_env(env_flag))
    spark = session.from_settings(settings.project.spark)
    if check_first:
        contracts.enforce(contracts.check(spark, settings))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", features.DevelopmentKeyWarning)
        # the same gold `promote run` builds: every mapped group; the selection picks inputs at training
        catalog = features.build(spark, runner.wide_settings(settings))
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    if as_json:
        click.echo(json.dumps(catalog.to_dict(), indent=2))
        return
    click.echo(f"gold: {catalog.path}")
    click.echo(f"  snapshot {catalog.snapshot_date}  id {catalog.snapshot_id}  version {catalog.version}")
    click.echo(f"  {catalog.row_count:,} rows, {len(catalog.feature_columns)} features "
               f"(contracts v{catalog.source_contract_version})")
    for group, cols in catalog.groups.items():
        click.echo(f"    {group:<22} {len(cols):>4}")
    click.echo(f"  selected for training here: {len(runner.selected_columns(catalog, settings))} feature(s) "
               "(feature_selection_config.yml)")


@cli.command("train", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote train --env dev                       # train, tune, register into hrob-risk-dev",
    "promote train --env staging --json            # the result as JSON",
    "PROMOTE_ENV=dev promote train --seed 7        # another search seed; same held-out rows",
))
@click.option("--env", "env_flag", help="Environment whose registered model gets the version (default: PROMOTE_ENV).")
@click.option("--seed", type=int, help="Hyperopt search seed (default: training.seed); never changes the split.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False),
              help="The git checkout the lineage (commit, tree, branch) comes from.")
@click.pass_context
def train_cmd(ctx: click.Context, env_flag: str | None, seed: int | None, as_json: bool, repo: str) -> None:
    """Train, tune and register a candidate model for one environment.

    Loads the gold features, splits by a hash of the member key (the held-out rows are the
    same in every run), runs the Hyperopt search on a validation part of the training rows,
    refits, measures the held-out rows, logs everything to MLflow and registers the model
    in the environment's registered model. Re-running with the same commit, config and data
    reuses the version instead of training again.
    """
    from pipelines import contracts, features, session
    from pipelines import train as training
    from promoter import config
    from promoter.app import run as runner
    from promoter.registry import Lineage, Registry
    from promoter.report import render

    env = config.resolve_env(env_flag)
    if not env:
        raise errors.InvalidInput("promote train needs an environment: pass --env ENV or set PROMOTE_ENV")
    settings = load_settings(ctx, env)
    spark = session.from_settings(settings.project.spark)
    # nothing trains on data that breaks its contracts; the report is logged with the run
    report = contracts.check(spark, settings)
    contracts.enforce(report)
    # gold holds every feature group; this environment's selection picks the inputs (as `promote run`)
    gold, catalog = features.load_gold(spark, runner.wide_settings(settings))
    lineage, warning = Lineage.from_local(settings, repo, data_snapshot=catalog.snapshot_id)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    result = training.train_and_register(spark, settings, lineage, gold, catalog, Registry.from_settings(settings),
                                         feature_columns=runner.selected_columns(catalog, settings), seed=seed,
                                         contract_report=report)
    if as_json:
        click.echo(render.to_json(result.to_dict()), nl=False)
    else:
        click.echo(result.text(), nl=False)


# --------------------------------------------------------------------------- decisions by people

@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote approve --env prod --version 7 --by dr.lee --ticket CHG-123",
    "promote approve --env prod --version 7 --by ops.kim --reason 'reviewed subgroup table'",
))
@click.option("--env", "env_name", required=True, help="Environment of the decision.")
@click.option("--version", "version", type=int, required=True, help="Model version to approve.")
@click.option("--by", "by", required=True, help="Who approves (recorded).")
@click.option("--ticket", help="Change ticket, e.g. CHG-123 (recorded).")
@click.option("--reason", help="Why (recorded).")
@click.pass_context
def approve(ctx: click.Context, env_name: str, version: int, by: str, ticket: str | None, reason: str | None) -> None:
    """Approve a gate decision; when the policy's count is met, the champion moves.

    The approval is bound to the newest gate decision for that version. A FAIL cannot be
    approved. Before moving, the champion is re-checked: if it changed since the decision,
    re-run the release. Exit 4 while more approvals are needed.
    """
    from promoter.app import run as runner

    action = runner.approve(ctx.obj["config_dir"], env_name, version, by, ticket=ticket, reason=reason)
    click.echo(action.message)
    if action.waiting:
        raise errors.AwaitingApproval(action.message)


@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote rollback --env prod --by ops.kim --reason 'calibration drift in region 3'",
    "promote rollback --env prod --to-version 4 --by ops.kim --reason INC-991",
))
@click.option("--env", "env_name", required=True, help="Environment to roll back.")
@click.option("--to-version", type=int, help="Version to restore (default: the 'previous' alias).")
@click.option("--by", "by", required=True, help="Who rolls back (recorded).")
@click.option("--reason", required=True, help="Why (recorded).")
@click.pass_context
def rollback(ctx: click.Context, env_name: str, to_version: int | None, by: str, reason: str) -> None:
    """Move `champion` back and hold automatic promotion until released.

    Records the rollback and a hold; later releases then wait for an approval (exit 4) until
    `promote release-hold`. A rollback is never undone automatically.
    """
    from promoter.app import run as runner

    click.echo(runner.rollback(ctx.obj["config_dir"], env_name, by, reason, to_version=to_version).message)


@cli.command("release-hold", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote release-hold --env prod --by ops.kim --reason 'root cause fixed in 1.3'",
))
@click.option("--env", "env_name", required=True, help="Environment whose hold to lift.")
@click.option("--by", "by", required=True, help="Who lifts it (recorded).")
@click.option("--reason", help="Why (recorded).")
@click.pass_context
def release_hold(ctx: click.Context, env_name: str, by: str, reason: str | None) -> None:
    """Lift the hold a rollback put on automatic promotion."""
    from promoter.app import run as runner

    click.echo(runner.release_hold(ctx.obj["config_dir"], env_name, by, reason).message)


# --------------------------------------------------------------------------- the record

@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote history --env prod",
    "promote history --json > decisions.json",
))
@click.option("--env", "env_name", help="Only this environment's chain (default: every chain).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.pass_context
def history(ctx: click.Context, env_name: str | None, as_json: bool) -> None:
    """List decision records: gate verdicts, approvals, alias moves, rollbacks, scoring runs."""
    from promoter.app import run as runner
    from promoter.report import render

    records = runner.read_history(ctx.obj["config_dir"], env_name)
    if as_json:
        click.echo(render.to_json([r.to_dict() for r in records]), nl=False)
    else:
        click.echo(render.history_text(records), nl=False)


@cli.group(cls=_Group, context_settings=CONTEXT, epilog=examples("promote audit verify", "promote audit verify --env prod"))
def audit() -> None:
    """Check the tamper-evident audit trail."""


@audit.command("verify", cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote audit verify",
    "promote audit verify --env prod --json",
))
@click.option("--env", "env_name", help="Only this environment's chain (default: every chain).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def audit_verify(ctx: click.Context, env_name: str | None, as_json: bool) -> None:
    """Recompute every record's hash and link; name the first edited, broken or missing record.

    Exit 0 when every chain verifies, 2 when one does not.
    """
    from promoter.app import run as runner
    from promoter.report import render

    results = runner.verify_audit(ctx.obj["config_dir"], env_name)
    if as_json:
        click.echo(render.to_json({env: r.to_dict() for env, r in results.items()}), nl=False)
    bad = {env: r for env, r in results.items() if not r.ok}
    if not as_json:
        for env, r in results.items():
            click.echo(f"{env}: " + ("ok, " + f"{r.checked} record(s)" if r.ok else f"BROKEN: {r.first_problem}"))
    if bad:
        env, r = next(iter(bad.items()))
        raise errors.InvalidInput(f"audit chain {env!r} does not verify: {r.first_problem}")


# --------------------------------------------------------------------------- demo

@cli.command(cls=_Command, context_settings=CONTEXT, epilog=examples(
    "promote demo                                  # 20,000 members, about 7 minutes on 2 cores",
    "promote demo --members 5000 --workdir /tmp/promote-demo",
))
@click.option("--workdir", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Scratch folder; its hrob-model/ repository is created anew.")
@click.option("--members", default=20_000, show_default=True, type=click.IntRange(500, 2_000_000),
              help="Synthetic population size.")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the synthetic population.")
@click.option("--max-evals", default=4, show_default=True, type=click.IntRange(1, 200),
              help="Hyperopt trials per training in the demo.")
def demo(workdir: str, members: int, seed: int, max_evals: int) -> None:
    """Tell the whole release story locally: dev, staging, three prod releases, the gate, scoring.

    Creates a git repository with the project's configs, generates the synthetic population and
    replays a feature push, PRs, merges and releases 1.0 (first champion), 1.1 (social
    determinants added: promoted) and 1.2 (clinical groups dropped: the gate says no).
    """
    from promoter.app import demo as demo_mod

    demo_mod.run(workdir, members=members, seed=seed, max_evals=max_evals)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: every line it writes is masked; errors become exit codes here."""
    from promoter.core import events
    from promoter.report import masking

    derived = masking.derived_secrets()
    masker = masking.Masker.from_env(extra=derived)
    if derived:  # only GitHub and Azure take mask commands; elsewhere this writes nothing
        masking.announce(derived, events.provider_of(os.environ), sys.stdout)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = masking.masked_stream(streams[0], masker), masking.masked_stream(streams[1], masker)
    log_filter = masking.MaskingFilter(masker)
    logging.getLogger().addFilter(log_filter)
    try:
        return _main(argv)
    finally:
        logging.getLogger().removeFilter(log_filter)
        for wrapped in (sys.stdout, sys.stderr):
            wrapped.flush()
        sys.stdout, sys.stderr = streams


def _main(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="promote", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return errors.EXIT_UNEXPECTED
    except click.UsageError as exc:
        exc.show()
        return errors.EXIT_INVALID
    except click.ClickException as exc:
        exc.show()
        return errors.EXIT_INVALID
    except errors.PromoteError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        _print_error(exc)
        if getattr(exc, "result", None) is None:
            _annotate_for_ci(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are reported
        if _state["verbose"]:
            traceback.print_exc()
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}"
                   + ("" if _state["verbose"] else " (run with --verbose for the traceback)"), err=True)
        return errors.EXIT_UNEXPECTED
    return errors.EXIT_OK


def _annotate_for_ci(exc: errors.PromoteError) -> None:
    """In GitHub Actions / Azure DevOps, the error also becomes an annotation at its file and line."""
    from promoter.report import sinks
    from promoter.app.run import error_dict

    sinks.annotate_error(error_dict(exc))


def _print_error(exc: errors.PromoteError) -> None:
    from promoter.config import ConfigInvalid

    if isinstance(exc, ConfigInvalid) and _state["verbose"]:
        for p in exc.problems:
            click.echo(f"error: {p}", err=True)
        return
    label = {errors.GateRejected: "gate", errors.AwaitingApproval: "waiting"}.get(type(exc), "error")
    click.echo(f"{label}: {exc}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
