"""Commands of the data layer: data generate, data check, features, train."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import click

from promoter import errors
from promoter.cli.base import CONTEXT, _Command, _Group, cli, config_dir, examples

ENV_OVERLAY = click.option("--env", "env_flag", help="Environment overlay to load (default: PROMOTE_ENV, else base).")


@cli.group(
    "data",
    cls=_Group,
    context_settings=CONTEXT,
    epilog=examples(
        "promote data generate --members 20000 --seed 7",
        "promote data check",
        "promote data check --format markdown --output contract-report.md",
        "promote data outcomes --snapshot-date 2024-06-30",
    ),
)
def data_group() -> None:
    """Fill bronze with the synthetic population, check the data contracts, write synthetic outcomes."""


@data_group.command(
    "generate",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote data generate                                   # 20,000 members, seed 20240601, today",
        "promote data generate --members 1000000 --seed 7",
        "promote data generate --snapshot-date 2024-06-30 --shift 0.5   # a drifted population",
        "promote data generate --drift-features vl_bmi,vl_sbp,'sdoh_nbhd_*' --drift-sd 0.25",
        "promote data generate --drift-features vitals_labs --drift-sd 0.5 --drift-group payer_type=marketplace",
        "promote data generate --prevalence-change 0.5                 # the outcome gets more common",
        "promote data generate --miscalibrate race_ethnicity=Black:1.5 # that group's scores are miscalibrated",
        "promote --config-dir models/readmission/configs data generate --dataset readmission --rows 10000",
    ),
)
@click.option(
    "--dataset",
    type=click.Choice(["obstetrics", "readmission"]),
    default="obstetrics",
    show_default=True,
    help="obstetrics (the reference project's high-risk obstetrics data): members and claims in the "
    "lake's bronze layer. readmission: one row per discharge, "
    "written to the project's entity table (project.yml data.tables).",
)
@click.option(
    "--members",
    "--rows",
    "members",
    type=click.IntRange(1, 999_999_999),
    default=20_000,
    show_default=True,
    help="Number of members (obstetrics) or discharges (readmission).",
)
@click.option("--seed", type=int, default=20240601, show_default=True, help="Random seed: same seed, same data.")
@click.option("--snapshot-date", type=click.DateTime(["%Y-%m-%d"]), help="As-of date (default: today, UTC).")
@click.option(
    "--shift",
    type=float,
    default=0.0,
    show_default=True,
    help="Population drift: 0 is the reference; 0.5-1 is a markedly sicker, poorer population.",
)
@click.option(
    "--drift-features",
    metavar="PATTERN[,PATTERN]",
    help="Plant drift in these generated features: names, globs (vl_*) or group names (vitals_labs). Needs --drift-sd.",
)
@click.option(
    "--drift-sd",
    type=float,
    help="Move the --drift-features by this many standard deviations of the reference population "
    "(seed 0, no shift: exact for decimal features, in expectation for counts and flags).",
)
@click.option(
    "--drift-group",
    metavar="COLUMN=VALUE",
    help="Move the --drift-features only for this subgroup, e.g. payer_type=marketplace (VALUE may be a glob).",
)
@click.option(
    "--prevalence-change",
    type=float,
    default=0.0,
    show_default=True,
    help="Add this to every label log-odds: positive makes the outcome more common, negative rarer.",
)
@click.option(
    "--miscalibrate",
    metavar="COLUMN=VALUE[:OFFSET]",
    multiple=True,
    help="Move the label log-odds of this subgroup by OFFSET (default 1.0) while its features stay: "
    "a model's scores for it become miscalibrated. Repeatable.",
)
@ENV_OVERLAY
@click.pass_context
def data_generate(
    ctx: click.Context,
    dataset: str,
    members: int,
    seed: int,
    snapshot_date: Any,
    shift: float,
    drift_features: str | None,
    drift_sd: float | None,
    drift_group: str | None,
    prevalence_change: float,
    miscalibrate: tuple[str, ...],
    env_flag: str | None,
) -> None:
    """Write a synthetic dataset: the HROB population (members with PHI, and claims) to the lake's
    bronze layer, or a 30-day readmission table (one row per discharge) to the project's table.

    Deterministic for a seed. HROB is generated in Spark (nothing is collected to the driver);
    readmission with numpy, in memory. The drift options plant controlled changes in the HROB
    population for surveillance work; the label is always drawn from the undrifted features.
    """
    from datetime import datetime

    from promoter import config
    from promoter.app import data

    day = snapshot_date.date() if snapshot_date else datetime.now(UTC).date()
    env = config.resolve_env(env_flag)
    features = tuple(p.strip() for p in (drift_features or "").split(",") if p.strip())
    if drift_features is not None and not features:
        raise click.BadParameter("give at least one feature name, glob or group", param_hint="'--drift-features'")
    planted = bool(features or drift_sd is not None or drift_group or prevalence_change or miscalibrate)
    if dataset == "readmission":
        if planted:
            raise errors.InvalidInput(
                "--drift-features, --drift-sd, --drift-group, --prevalence-change and --miscalibrate "
                "are for --dataset obstetrics; use --shift for readmission"
            )
        info = data.generate_readmission(config_dir(ctx), env, rows=members, seed=seed, as_of=day, shift=shift)
        click.echo(f"{info['table']} written to {info['path']} (as of {day}, seed {seed}, shift {shift:g}):")
        click.echo(f"  {info['rows']:,} discharges, {info['prevalence']:.1%} readmitted within 30 days")
        return
    root, counts = data.generate(
        config_dir(ctx),
        env,
        members=members,
        seed=seed,
        snapshot_date=day,
        shift=shift,
        drift_features=features,
        drift_sd=drift_sd,
        drift_group=drift_group,
        prevalence_change=prevalence_change,
        miscalibrate=miscalibrate,
    )
    click.echo(f"bronze written to {root}/bronze (snapshot {day}, seed {seed}, shift {shift:g}):")
    for table, rows in counts.items():
        click.echo(f"  {table}: {rows:,} rows")
    if planted:
        click.echo("  planted: " + _planted(features, drift_sd, drift_group, prevalence_change, miscalibrate))


def _planted(
    features: tuple[str, ...], sd: float | None, group: str | None, prevalence: float, miscalibrate: tuple[str, ...]
) -> str:
    """One line: what the drift options planted."""
    parts = []
    if features:
        parts.append(f"{', '.join(features)} moved {sd:+g} sd" + (f" in {group}" if group else ""))
    if prevalence:
        parts.append(f"label log-odds {prevalence:+g}")
    parts.extend(f"{m} miscalibrated" for m in miscalibrate)
    return "; ".join(parts)


@data_group.command(
    "outcomes",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote data outcomes                                  # outcomes of the current gold snapshot",
        "promote data outcomes --snapshot-date 2024-06-30 --label-delay-days 30",
        "promote data outcomes --env prod --seed 7",
        "",
        "Path, format and columns come from monitoring.yml outcomes (a relative path is under the",
        "model's lake folder). Re-running a snapshot date replaces that snapshot's outcomes.",
    ),
)
@click.option(
    "--snapshot-date",
    type=click.DateTime(["%Y-%m-%d"]),
    help="The day gold was scored; outcomes are recorded 1..delay days later (default: gold's snapshot date).",
)
@click.option(
    "--label-delay-days",
    type=click.IntRange(1, 3650),
    help="The longest recording delay in days (default: monitoring.yml outcomes.label_delay_days).",
)
@click.option("--seed", type=int, default=20240601, show_default=True, help="Seed of the per-row delays.")
@ENV_OVERLAY
@click.pass_context
def data_outcomes(
    ctx: click.Context, snapshot_date: Any, label_delay_days: int | None, seed: int, env_flag: str | None
) -> None:
    """Write the synthetic outcomes of the current gold snapshot: one row per gold row, some days later.

    Each row has gold's pseudonymous key (the predictions table's key, never PHI), an outcome
    date a deterministic 1..delay days after the snapshot, and gold's label (the generator's
    truth, planted drift and miscalibration included). This is what `promote monitor` joins to
    the predictions to measure realised performance.
    """
    from promoter import config
    from promoter.app import data

    info = data.write_outcomes(
        config_dir(ctx),
        config.resolve_env(env_flag),
        snapshot_date=snapshot_date.date() if snapshot_date else None,
        label_delay_days=label_delay_days,
        seed=seed,
    )
    click.echo(f"outcomes of snapshot {info['snapshot_date']} written to {info['path']}:")
    share = info["positives"] / info["rows"] if info["rows"] else 0.0
    click.echo(f"  {info['rows']:,} rows, {info['positives']:,} positive ({share:.1%})")
    click.echo(f"  recorded {info['first_outcome']} .. {info['last_outcome']}")


@data_group.command(
    "check",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote data check",
        "promote data check --format json --output contracts.json",
        "promote data check --env prod --format markdown",
        "",
        "Exit code 2 when any contract is broken (the report lists every violation).",
    ),
)
@ENV_OVERLAY
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the report to this file.")
@click.pass_context
def data_check(ctx: click.Context, env_flag: str | None, fmt: str, output: str | None) -> None:
    """Check every table in contracts.yml: schema, keys, values, ranges, nulls, volume, references, freshness."""
    from promoter import config
    from promoter.app import data

    report = data.check(config_dir(ctx), config.resolve_env(env_flag))
    text = {"text": report.to_text, "markdown": report.to_markdown, "json": report.to_json}[fmt]()
    click.echo(text, nl=False)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    if not report.ok:
        raise errors.DataContractError(
            f"{len(report.violations)} data contract violation(s) (contracts v{report.version}); see the report above"
        )


@cli.command(
    "features",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote features                       # bronze -> silver -> gold with the current selection",
        "promote features --check               # check the data contracts first",
        "PROMOTE_PSEUDONYM_KEY=... promote features --env prod",
    ),
)
@ENV_OVERLAY
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

    from promoter import config
    from promoter.app import data

    built = data.build_features(config_dir(ctx), config.resolve_env(env_flag), check_first=check_first)
    for message in built.warnings:
        click.echo(f"warning: {message}", err=True)
    catalog = built.catalog
    if as_json:
        click.echo(json.dumps(catalog.to_dict(), indent=2))
        return
    click.echo(f"gold: {catalog.path}")
    click.echo(f"  snapshot {catalog.snapshot_date}  id {catalog.snapshot_id}  version {catalog.version}")
    click.echo(
        f"  {catalog.row_count:,} rows, {len(catalog.feature_columns)} features "
        f"(contracts v{catalog.source_contract_version})"
    )
    for group, cols in catalog.groups.items():
        click.echo(f"    {group:<22} {len(cols):>4}")
    click.echo(f"  selected for training here: {built.selected} feature(s) (feature_selection_config.yml)")


@cli.command(
    "train",
    cls=_Command,
    context_settings=CONTEXT,
    epilog=examples(
        "promote train --env dev                       # train, tune, register into hrob-risk-dev",
        "promote train --env staging --json            # the result as JSON",
        "PROMOTE_ENV=dev promote train --seed 7        # another search seed; same held-out rows",
    ),
)
@click.option("--env", "env_flag", help="Environment whose registered model gets the version (default: PROMOTE_ENV).")
@click.option("--seed", type=int, help="Hyperopt search seed (default: training.seed); never changes the split.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--repo",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The git checkout the lineage (commit, tree, branch) comes from.",
)
@click.pass_context
def train_cmd(ctx: click.Context, env_flag: str | None, seed: int | None, as_json: bool, repo: str) -> None:
    """Train, tune and register a candidate model for one environment.

    Checks the data contracts, loads the gold features, splits by a hash of the key (the
    held-out rows are the same in every run), runs the Hyperopt search on a validation part of
    the training rows, refits, measures the held-out rows, logs everything to MLflow and
    registers the model in the environment's registered model. Re-running with the same
    commit, config and data reuses the version instead of training again.
    """
    from promoter import config
    from promoter.app import data
    from promoter.report import render

    result, warning = data.train_only(config_dir(ctx), config.resolve_env(env_flag), seed=seed, repo=repo)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(render.to_json(result.to_dict()), nl=False)
    else:
        click.echo(result.text(), nl=False)
