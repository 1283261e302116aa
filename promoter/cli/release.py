"""Release management: cut-release, and the demo that tells the whole story."""

from __future__ import annotations

import click

from promoter.cli.base import CONTEXT, _Command, cli, examples, load_settings


@cli.command(
    "cut-release",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote cut-release --version 1.2                 # release/1.2 + tag v1.2 from main, local only",
        "promote cut-release --version 1.2 --push          # ... and push both to origin",
        "promote cut-release --from master --name release/2024.06 --push",
        "promote cut-release --version 1.3 --force --reason 'hotfix INC-42, staging down'",
        "promote cut-release --version 1.4 --ticket CHG-1234 --push   # the prod promotion carries the ticket",
    ),
)
@click.option("--from", "source", default="main", show_default=True, help="Branch to release from.")
@click.option("--name", help="Release branch name, e.g. release/1.2 (tag v1.2).")
@click.option("--version", "version", help="Release version: --version 1.2 means --name release/1.2.")
@click.option("--push", is_flag=True, help="Push the branch and tag to the remote (atomically).")
@click.option("--remote", default="origin", show_default=True, help="Remote to compare with and push to.")
@click.option("--force", is_flag=True, help="Skip the readiness check (needs --reason).")
@click.option("--reason", help="Why the release is forced; recorded in the tag message.")
@click.option(
    "--ticket",
    help="Change ticket of the release (e.g. CHG-1234): written in the tag as 'Change-Ticket:', where CI's "
    "promotion finds it; checked against promotion.yml approvals.<prod>.change_ticket.",
)
@click.option(
    "--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="Path inside the git work tree."
)
@click.pass_context
def cut_release_cmd(
    ctx: click.Context,
    source: str,
    name: str | None,
    version: str | None,
    push: bool,
    remote: str,
    force: bool,
    reason: str | None,
    ticket: str | None,
    repo: str,
) -> None:
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
    from promoter.app import projects

    result = release.cut_release(
        repo,
        source=source,
        name=name,
        version=version,
        push=push,
        remote=remote,
        force=force,
        reason=reason,
        ticket=ticket,
        ticket_policy=load_settings(ctx, base.promotion.prod_environment)
        .promotion.approval(base.promotion.prod_environment)
        .change_ticket,
        readiness=readiness,
        settings=base,
        project=projects.models_project(ctx.obj["config_dir"]),
    )
    click.echo(release.render(result), nl=False)


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote demo                                  # two models, one registry: about 5 minutes on 2 cores",
        "promote demo --story short                    # up to the readmission model's first release",
        "promote demo --story monitoring               # readmission's first release, then its monitoring days",
        "promote demo --members 20000 --discharges 20000 --workdir /tmp/promote-demo",
    ),
)
@click.option(
    "--workdir",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Scratch folder; its model-repo/ repository is created anew.",
)
@click.option(
    "--members",
    default=6_000,
    show_default=True,
    type=click.IntRange(500, 2_000_000),
    help="Synthetic HROB population size.",
)
@click.option(
    "--discharges",
    default=10_000,
    show_default=True,
    type=click.IntRange(500, 5_000_000),
    help="Synthetic discharges of the readmission model.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of both synthetic datasets.")
@click.option(
    "--max-evals",
    default=3,
    show_default=True,
    type=click.IntRange(1, 200),
    help="Hyperopt trials per training in the demo.",
)
@click.option(
    "--story",
    type=click.Choice(["full", "short", "monitoring"]),
    default="full",
    show_default=True,
    help="full: every release below; short: stop after the readmission model's first release; "
    "monitoring: only the readmission model's first release and its monitoring days.",
)
def demo(workdir: str, members: int, discharges: int, seed: int, max_evals: int, story: str) -> None:
    """Release two model projects from one repository through one registry and one lake.

    Creates a git repository holding HROB (configs/) and 30-day readmission
    (models/readmission/configs/), generates each one's synthetic data, and replays in
    interleaved order: HROB releases 1.0 (first champion) and 1.1 (social determinants added:
    promoted); a rollback of HROB (its promotion is held); the readmission model's dev push, PR,
    merge and release/readmission/1.0 (promoted: HROB's hold is HROB's alone); HROB 1.2 (clinical
    groups dropped: the gate says no); readmission 1.1 (history added: promoted). Ends with a
    table of every decision and the total time.
    """
    from promoter.app import demo as demo_mod

    demo_mod.run(
        workdir,
        members=members,
        discharges=discharges,
        seed=seed,
        max_evals=max_evals,
        story=story,  # type: ignore[arg-type] - click's choice is the Story literal
    )
