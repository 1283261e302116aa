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
    result = release.cut_release(
        repo,
        source=source,
        name=name,
        version=version,
        push=push,
        remote=remote,
        force=force,
        reason=reason,
        readiness=readiness,
        settings=base,
    )
    click.echo(release.render(result), nl=False)


@cli.command(
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote demo                                  # 20,000 members, about 7 minutes on 2 cores",
        "promote demo --members 5000 --workdir /tmp/promote-demo",
    ),
)
@click.option(
    "--workdir",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Scratch folder; its hrob-model/ repository is created anew.",
)
@click.option(
    "--members",
    default=20_000,
    show_default=True,
    type=click.IntRange(500, 2_000_000),
    help="Synthetic population size.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the synthetic population.")
@click.option(
    "--max-evals",
    default=4,
    show_default=True,
    type=click.IntRange(1, 200),
    help="Hyperopt trials per training in the demo.",
)
def demo(workdir: str, members: int, seed: int, max_evals: int) -> None:
    """Tell the whole release story locally: dev, staging, three prod releases, the gate, scoring.

    Creates a git repository with the project's configs, generates the synthetic population and
    replays a feature push, PRs, merges and releases 1.0 (first champion), 1.1 (social
    determinants added: promoted) and 1.2 (clinical groups dropped: the gate says no).
    """
    from promoter.app import demo as demo_mod

    demo_mod.run(workdir, members=members, seed=seed, max_evals=max_evals)
