"""`promote projects`: the model projects of the repository, and which ones an event runs in CI."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from promoter.cli.base import CONTEXT, _Command, cli, detect_event, event_options, examples

FORMATS = ("text", "json", "names", "github", "azure", "gitlab")


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=False)


def _event_line(event: Any) -> str:
    if event.is_pull_request:
        what = f"pull_request {event.source_branch!r} -> {event.target_branch!r}"
    else:
        what = f"{event.kind or 'no event'} {event.branch!r}" if event.branch else str(event.kind or "no event")
    sha = f" @ {event.commit[:12]}" if event.commit else ""
    return f"event:    {what}{sha} [{event.provider}]"


def _changes_text(found: Any) -> str:
    lines = [_event_line(found.event)]
    if found.changed is not None:
        lines.append(f"changes:  {len(found.changed)} file(s), {(found.base or '')[:12]}..{(found.head or '')[:12]}")
    if found.note:
        lines.append(f"note:     {found.note}")
    width = max((len(s.project.name) for s in found.selections), default=0)
    for s in found.selections:
        lines.append(f"{'run ' if s.run else 'skip'}  {s.project.name:<{width}}  {s.environment or '-':<8}  {s.reason}")
    return "\n".join(lines)


def _list_text(projects: list[Any]) -> str:
    width = max(len(p.name) for p in projects)
    model_width = max(len(p.model_name) for p in projects)
    lines = []
    for p in projects:
        lines.append(f"{p.name:<{width}}  {p.model_name:<{model_width}}  {p.config_dir}")
        lines.append(f"{'':<{width}}  own:    {', '.join(p.paths)}")
        lines.append(f"{'':<{width}}  shared: {', '.join(p.shared)}")
    return "\n".join(lines)


@cli.command(
    "projects",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote projects                                   # every project: name, model, config folder, paths",
        "promote projects --json",
        "promote projects --changed                         # which projects this CI event runs, and why",
        "promote projects --changed --event pull_request --from feature/x --into main",
        "promote projects --changed --event push --branch release/claims/1.0 --json",
        'promote projects --changed --format github >> "$GITHUB_OUTPUT"   # the matrix of the GitHub template',
        "promote projects --changed --format azure          # output variables matrix, count, project",
        "promote projects --changed --format gitlab > promote-projects.yml   # the GitLab child pipeline",
    ),
)
@click.option("--changed", is_flag=True, help="Only the projects this event runs in CI (the CI templates' matrix).")
@event_options
@click.option(
    "--base",
    envvar="PROMOTE_DIFF_BASE",
    help="With --changed: the commit to diff from (a push's previous head; default: a pull request's merge "
    "base with its target, a push's first parent). An all-zero sha means unknown: every project runs.",
)
@click.option("--head", help="With --changed: the commit to diff to (default: the event's commit).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with --changed: the matrix; same as --format json).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="text; json; names (one per line); with --changed also github (step output lines), azure "
    "(output variables) or gitlab (a child pipeline). Reasons go to stderr for all but text.",
)
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="The repository root.")
@click.pass_context
def projects_command(
    ctx: click.Context,
    changed: bool,
    base: str | None,
    head: str | None,
    as_json: bool,
    fmt: str | None,
    repo: str,
    **event_opts: Any,
) -> None:
    """List the model projects of this repository, or (--changed) the ones an event runs.

    A project is configs/ (the root project, named by its project.yml `name`) or
    models/NAME/configs/. With --changed, a pull request (or a push to the default branch)
    runs each project whose files changed, shared engine and pipeline code counting for every
    project that uses it; a push to a release branch runs the one project whose branch rules name
    it (release/<project>/<version>); a schedule runs every project. --project (PROMOTE_PROJECT)
    keeps one.
    """
    from promoter.app import projects

    if as_json and fmt not in (None, "json"):
        raise click.UsageError("--json is --format json; give one of them")
    fmt = "json" if as_json else (fmt or "text")
    only = ctx.obj.get("project")
    if not changed:
        if fmt in ("github", "azure", "gitlab"):
            raise click.UsageError(f"--format {fmt} is the CI matrix: it goes with --changed")
        found = [p for p in projects.discover(repo) if not only or p.name == only]
        if fmt == "json":
            click.echo(json.dumps([p.to_dict() for p in found], indent=2))
        elif fmt == "names":
            click.echo("\n".join(p.name for p in found))
        else:
            click.echo(_list_text(found))
        return

    event = detect_event(**event_opts, repo=repo)
    base = (base or "").strip() or None
    head = (head or "").strip() or None
    result = projects.changed_projects(event, repo, base=base, head=head, only=only)
    explanation = _changes_text(result)
    if fmt == "text":
        click.echo(explanation)
        return
    click.echo(explanation, err=True)
    selected = result.selected
    if fmt == "json":
        click.echo(_compact(projects.matrix(selected)))
    elif fmt == "names":
        if selected:
            click.echo("\n".join(s.project.name for s in selected))
    elif fmt == "github":
        click.echo(f"matrix={_compact(projects.matrix(selected))}")
        click.echo(f"count={len(selected)}")
    elif fmt == "azure":
        legs = projects.azure_matrix(selected)
        click.echo(f"##vso[task.setvariable variable=matrix;isOutput=true]{_compact(legs)}")
        click.echo(f"##vso[task.setvariable variable=count;isOutput=true]{len(selected)}")
        first = selected[0].project.name if selected else ""
        click.echo(f"##vso[task.setvariable variable=project;isOutput=true]{first}")
    else:  # gitlab
        from promoter import templates

        variables = _gitlab_variables(event_opts)
        jobs = [
            {
                "project": s.project.name,
                "environment": s.environment,
                "kind": projects.gitlab_job_kind(
                    event,
                    s.environment,
                    s.project.settings.promotion.prod_environment if s.project.settings else "prod",
                ),
            }
            for s in selected
        ]
        click.echo(templates.render_gitlab_child(jobs, variables), nl=False)


def _gitlab_variables(event_opts: dict[str, Any]) -> dict[str, str]:
    """The GitLab variables of the event: the replayed file's (``--provider gitlab --event-file``) or this job's."""
    from promoter.app import sources

    if event_opts.get("event_file") and event_opts.get("provider") == "gitlab":
        return sources.read_variables(event_opts["event_file"])
    return dict(os.environ)
