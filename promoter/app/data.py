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
    config_dir: str | Path, env: str | None, *, members: int, seed: int, snapshot_date: date, shift: float
) -> tuple[str, dict[str, int]]:
    """Write the synthetic population to bronze; returns (lake root, rows per table)."""
    from pipelines import lake, synthetic

    settings = config.load(config_dir, env)
    counts = synthetic.generate(
        _spark(settings), settings, members=members, seed=seed, snapshot_date=snapshot_date, shift=shift
    )
    return str(lake.root(settings)), counts


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
