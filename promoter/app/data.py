"""Use cases of the data layer outside a run: generate bronze, check contracts, build gold, train."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import config, errors
from promoter.app.steps.data import selected_columns, wide_settings

if TYPE_CHECKING:  # pragma: no cover
    from promoter.app.training import TrainResult


def _spark(settings: Any) -> Any:
    from pipelines import session

    return session.from_settings(settings.project.spark)


def generate(
    config_dir: str | Path,
    env: str | None,
    *,
    members: int,
    seed: int,
    snapshot_date: date,
    shift: float,
    drift_features: tuple[str, ...] = (),
    drift_sd: float | None = None,
    drift_group: str | None = None,
    prevalence_change: float = 0.0,
    miscalibrate: tuple[str, ...] = (),
) -> tuple[str, dict[str, int]]:
    """Write the synthetic population to bronze; returns (lake root, rows per table).

    Args:
        config_dir: the project's config folder.
        env: the environment overlay (``None``: base).
        members: number of members.
        seed: random seed (same seed, same data).
        snapshot_date: the snapshot's as-of date.
        shift: population drift (0 = reference).
        drift_features: feature names, globs or group names to move (``--drift-features``).
        drift_sd: how far, in reference standard deviations (``--drift-sd``).
        drift_group: ``COLUMN=VALUE``: move them only in that subgroup (``--drift-group``).
        prevalence_change: label log-odds offset (``--prevalence-change``).
        miscalibrate: ``COLUMN=VALUE[:OFFSET]`` label log-odds offsets of subgroups.

    Raises:
        InvalidInput: bad arguments, named by their option (before Spark starts).
    """
    from pipelines import lake, synthetic

    settings = config.load(config_dir, env)
    drift = synthetic.Drift(
        features=tuple(drift_features),
        sd=drift_sd,
        group=drift_group,
        prevalence_change=prevalence_change,
        miscalibrate=tuple(miscalibrate),
    )
    if drift.active:  # check the options before a Spark session is started
        synthetic.check_drift(drift, settings.project.data.derive.regions)
    counts = synthetic.generate(
        _spark(settings), settings, members=members, seed=seed, snapshot_date=snapshot_date, shift=shift, drift=drift
    )
    return str(lake.root(settings)), counts


def write_outcomes(
    config_dir: str | Path,
    env: str | None,
    *,
    snapshot_date: date | None = None,
    label_delay_days: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Append the current gold snapshot's outcomes to the configured outcomes table.

    Path, format and column names come from ``monitoring.yml`` ``outcomes``; a relative path is
    under the model's folder of the lake. The key is gold's pseudonymous key (never PHI).

    Args:
        config_dir: the project's config folder.
        env: the environment overlay (``None``: base).
        snapshot_date: the day gold was scored (``None``: gold's snapshot date).
        label_delay_days: the longest recording delay (``None``: ``outcomes.label_delay_days``).
        seed: seed of the per-row delays.

    Returns:
        ``{"path", "rows", "positives", "first_outcome", "last_outcome", "snapshot_date"}``.

    Raises:
        InvalidInput: monitoring.yml has no outcomes section, or a bad argument.
        NotFound: no gold table yet (run ``promote features``).
    """
    from pipelines import lake, synthetic_outcomes

    settings = config.load(config_dir, env)
    cfg = settings.monitoring.outcomes
    if cfg is None:
        raise errors.InvalidInput("monitoring.yml has no outcomes section: configure outcomes.path")
    options = {
        "label_delay_days": cfg.label_delay_days if label_delay_days is None else label_delay_days,
        "format": cfg.format,
        "key_column": cfg.key_column or settings.project.data.key_column,
        "date_column": cfg.date_column,
        "label_column": cfg.label_column,
    }
    synthetic_outcomes.check_arguments(settings, **options)  # before a Spark session is started
    return synthetic_outcomes.write_outcomes(
        _spark(settings),
        settings,
        snapshot_date=snapshot_date,
        seed=seed,
        path=lake.location(settings, cfg.path),
        **options,
    )


def generate_readmission(
    config_dir: str | Path, env: str | None, *, rows: int, seed: int, as_of: date, shift: float
) -> dict[str, Any]:
    """Write the synthetic readmission table (one row per discharge) to the project's entity table."""
    from pipelines import synthetic_readmission

    return synthetic_readmission.generate(config.load(config_dir, env), rows, seed, as_of, shift)


def check(config_dir: str | Path, env: str | None) -> Any:
    """Check every table contract; returns the report (``report.ok`` says whether all hold)."""
    from pipelines import contracts

    settings = config.load(config_dir, env)
    return contracts.check(_spark(settings), settings)


@dataclass
class FeaturesResult:
    catalog: Any
    selected: int
    warnings: list[str] = field(default_factory=list)


def build_features(config_dir: str | Path, env: str | None, *, check_first: bool) -> FeaturesResult:
    """Build silver and gold with every mapped group (the gold ``promote run`` reads).

    Raises:
        DataContractError: ``check_first`` and a contract is broken.
    """
    from pipelines import contracts, features

    settings = config.load(config_dir, env)
    spark = _spark(settings)
    if check_first:
        contracts.enforce(contracts.check(spark, settings))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", features.DevelopmentKeyWarning)
        catalog = features.build(spark, wide_settings(settings))
    return FeaturesResult(catalog, len(selected_columns(catalog, settings)), [str(w.message) for w in caught])


def local_lineage(settings: Any, repo: str | Path, *, data_snapshot: str | None) -> tuple[Any, str | None]:
    """Lineage of a bare ``promote train`` from the local checkout (a manual event).

    Returns:
        (lineage, warning): outside a git repository the lineage has no commit or tree, hence no
        content key (every run trains anew), and the warning says so.
    """
    from promoter.app import sources
    from promoter.registry import Lineage

    try:
        event = sources.from_local(repo, kind="manual", action="run")
    except (errors.GitError, errors.EventError) as exc:
        return (
            Lineage.without_git(settings, data_snapshot=data_snapshot),
            f"no git lineage ({exc}); the model is registered without a content key",
        )
    return Lineage.from_event(event, settings, data_snapshot=data_snapshot), None


def train_only(
    config_dir: str | Path, env: str | None, *, seed: int | None, repo: str | Path
) -> tuple["TrainResult", str | None]:
    """`promote train`: contracts, then train and register from the gold table (no gate, no promotion).

    Returns:
        (the training result, a warning about the local checkout or ``None``).
    """
    from pipelines import contracts, features
    from promoter.app.connect import open_registry
    from promoter.app.training import train_and_register

    if not env:
        raise errors.InvalidInput("promote train needs an environment: pass --env ENV or set PROMOTE_ENV")
    settings = config.load(config_dir, env)
    spark = _spark(settings)
    report = contracts.check(spark, settings)
    contracts.enforce(report)  # nothing trains on data that breaks its contracts
    gold, catalog = features.load_gold(spark, wide_settings(settings))
    lineage, warning = local_lineage(settings, repo, data_snapshot=catalog.snapshot_id)
    result = train_and_register(
        spark,
        settings,
        lineage,
        gold,
        catalog,
        open_registry(settings),
        feature_columns=selected_columns(catalog, settings),
        seed=seed,
        contract_report=report,
    )
    return result, warning
