"""`promote init`: write a new model project from a table."""

from __future__ import annotations

from typing import Any

import click

from promoter import errors
from promoter.cli.base import CONTEXT, _Command, cli, examples


def _names(value: str | None) -> list[str] | None:
    """A comma-separated flag value as names; ``none`` (or empty) is an empty list."""
    if value is None:
        return None
    if value.strip().lower() in ("", "none", "-"):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def _asker(question: Any) -> str:
    """Ask one question on the terminal; a wrong answer is explained and asked again."""

    def check(text: str) -> str:
        problem = question.check(text)
        if problem:
            raise click.BadParameter(problem)
        return text

    if question.help:
        click.echo(f"  ({question.help})")
    try:
        default = question.default if question.default is not None or question.required else ""
        return click.prompt(question.prompt, default=default, value_proc=check, show_default=bool(default))
    except click.exceptions.Abort:
        raise errors.InvalidInput(
            f"no answer for {question.key} (input closed); pass --yes to take the proposals, or the flags"
        ) from None


@cli.command(
    "init",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote init data/people.csv                                  # asks for the roles it cannot tell",
        "promote init data/people.parquet --label outcome --id person_id --snapshot as_of --yes",
        "promote init data/people.parquet --events data/encounters.parquet --event-type encounter_type",
        "promote init /lake/patients --format delta --dir models/readmit --name readmit --provider gitlab",
        "promote init data/people.csv --subgroups sex,language --not-phi contact_pref --yes --force",
        "",
        "Then: promote plan; promote data check; promote replay push feature/x; ... (see the README it writes).",
    ),
)
@click.argument("table")
@click.option("--events", help="An event table joined by the id (visits, claims ...): counts and recency features.")
@click.option("--format", "table_format", type=click.Choice(["csv", "parquet", "delta"]), help="TABLE's format.")
@click.option("--events-format", type=click.Choice(["csv", "parquet", "delta"]), help="The event table's format.")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The repository: the project goes to its configs/ or models/NAME/, the CI file to its root.",
)
@click.option("--name", help="Project name (default: from the table's file name).")
@click.option("--model-name", help="Registered models are <model-name>-<env> (default: the project name).")
@click.option("--id", "id_column", help="Id column (one per entity and snapshot; pseudonymised in silver).")
@click.option("--label", help="Label column: 0/1 (or true/false), what the model predicts.")
@click.option("--snapshot", help="Snapshot date column: the as-of date of each row.")
@click.option("--subgroups", help="Subgroup columns for fairness metrics, comma-separated ('none' for none).")
@click.option("--phi", help="More PHI columns (comma-separated), beyond those init flags.")
@click.option("--not-phi", help="Flagged columns that are not PHI (comma-separated); value-flagged ones stay PHI.")
@click.option("--event-id", help="The event table's column holding the id.")
@click.option("--event-date", help="The event table's date column.")
@click.option("--event-type", help="The event table's type column (features per type).")
@click.option("--event-amount", help="The event table's amount column (totals per window).")
@click.option(
    "--provider",
    type=click.Choice(["github", "azure", "gitlab", "none"]),
    default="github",
    show_default=True,
    help="CI provider whose pipeline file is written.",
)
@click.option("--owner", default="unassigned", show_default=True, help="Data owner named in the contracts.")
@click.option(
    "--layout",
    type=click.Choice(["root", "models"]),
    help="root: configs/ (releases from release/*); models: models/NAME/configs (releases from "
    "release/NAME/*). Default: root when the repository has no configs/ yet.",
)
@click.option("-y", "--yes", is_flag=True, help="Take every proposal without asking (non-interactive).")
@click.option("--force", is_flag=True, help="Replace files that exist.")
def init_cmd(
    table: str,
    events: str | None,
    table_format: str | None,
    events_format: str | None,
    directory: str,
    name: str | None,
    model_name: str | None,
    id_column: str | None,
    label: str | None,
    snapshot: str | None,
    subgroups: str | None,
    phi: str | None,
    not_phi: str | None,
    event_id: str | None,
    event_date: str | None,
    event_type: str | None,
    event_amount: str | None,
    provider: str,
    owner: str,
    layout: str | None,
    yes: bool,
    force: bool,
) -> None:
    """Write a new model project from a table (CSV, Parquet or Delta), and an optional event table.

    Profiles the table in Spark (types, nulls, ranges, values of low-cardinality columns, PHI-looking
    names and values) and proposes every config file: contracts, feature groups (by name prefix and
    type), PHI columns (flagged, printed for you to confirm), a gate policy sized to the data, the
    CI file and a short README. It asks for the id, label, snapshot date, subgroup and PHI columns
    unless flags give them (--yes takes the proposals). Nothing is written unless every file can
    be; an existing file is replaced only with --force. `promote plan`, `promote data check` and a
    local release replay work on the result with no edits.
    """
    from promoter.app import scaffold

    opts = scaffold.InitOptions(
        table=table,
        directory=directory,
        events=events,
        table_format=table_format,
        events_format=events_format,
        name=name,
        model_name=model_name,
        id_column=id_column,
        label=label,
        snapshot=snapshot,
        subgroups=_names(subgroups),
        phi=_names(phi) or [],
        not_phi=_names(not_phi) or [],
        event_id=event_id,
        event_date=event_date,
        event_type=event_type,
        event_amount=event_amount,
        provider=provider,
        owner=owner,
        layout=layout,
        yes=yes,
        force=force,
    )
    result = scaffold.init(opts, _asker, say=click.echo)
    a = result.answers
    click.echo("found:")
    for line in result.findings:
        click.echo(f"  {line}")
    click.echo(
        f"  id {a.id_column}, label {a.label_column}, snapshot {a.snapshot_column}, subgroups "
        f"{', '.join(a.subgroup_columns) or 'none'}; primary key {', '.join(a.primary_key) or 'none'}"
    )
    click.echo("PHI, never leaves bronze (confirm data.phi_columns in configs/base/project.yml):")
    for col, why in result.phi.items():
        click.echo(f"  {col}: {why}")
    if result.warnings:
        click.echo("warnings:")
        for line in result.warnings:
            click.echo(f"  {line}")
    click.echo(f"wrote {len(result.written) + len(result.replaced)} file(s) in {result.directory}:")
    for rel in result.written:
        click.echo(f"  {rel}")
    for rel in result.replaced:
        click.echo(f"  {rel} (replaced)")
    for rel in result.kept:
        click.echo(f"  {rel} (kept as it was)")
    cd = "" if str(result.directory) in (".", "") else f"cd {result.directory} && "
    project = f" --project {a.name}" if a.project_dir else ""
    release = a.release_branches[-1].replace("*", "1.0")
    click.echo(f"next (see {a.readme_path}):")
    click.echo(f"  {cd}git add -A && git commit -m 'A new model project: {a.name}'")
    click.echo(f"  promote{project} plan && promote{project} data check")
    click.echo(f"  promote{project} replay push feature/first-run  ...  promote{project} replay push {release}")
