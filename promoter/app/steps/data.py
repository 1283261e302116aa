"""Steps ``contracts`` and ``features``: the data the candidate trains on."""

from __future__ import annotations

from typing import Any

from promoter.app.state import Gold, RunState, StepOutcome


def wide_settings(settings: Any) -> Any:
    """``settings`` with every mapped feature group selected: the gold table every model reads."""
    fs = settings.feature_selection
    wide = fs.model_copy(
        update={"include_groups": list(settings.feature_mappings.groups), "exclude_groups": [], "exclude_features": []}
    )
    return settings.model_copy(update={"feature_selection": wide})


def selected_columns(catalog: Any, settings: Any) -> list[str]:
    """The candidate's inputs: the gold columns of the selected groups and features, in gold order.

    A dropped feature takes its missing-indicator column (``<name>__missing``) with it.
    """
    fs = settings.feature_selection
    groups = list(fs.include_groups) or list(catalog.groups)
    chosen = {c for g in groups if g not in set(fs.exclude_groups) for c in catalog.groups.get(g, [])}
    chosen |= {
        c
        for c in catalog.feature_columns
        if c in set(fs.include_features) or c.split("__missing")[0] in set(fs.include_features)
    }
    dropped = set(fs.exclude_features)
    return [
        c
        for c in catalog.feature_columns
        if c in chosen and c not in dropped and c.split("__missing")[0] not in dropped
    ]


def contracts(state: RunState) -> StepOutcome:
    """Check every data contract; a violation stops the run (exit 2) with the full report."""
    from pipelines import contracts as checks
    from promoter.app import plugins

    if not plugins.is_default(state.settings, "contracts"):  # the shipped check does this itself
        checks.check_config_columns(state.spark, state.settings)
    state.contract_report = state.pipeline("contracts")(state.spark, state.settings)
    checks.enforce(state.contract_report)
    c = state.settings.contracts
    return StepOutcome(
        f"{len(c.tables)} table contract(s) hold (version {c.version}, checked {state.contract_report.checked_at})"
    )


def features(state: RunState) -> StepOutcome:
    """Bronze -> silver -> gold with every mapped group; the selection picks the candidate's inputs.

    Gold holds every group so that the champion, trained on another selection, is scored on
    the same rows from the same table.
    """
    wide = wide_settings(state.settings)
    state.pipeline("features")(state.spark, wide)
    gold = load_gold(state)
    cat = gold.catalog
    return StepOutcome(
        f"gold snapshot {cat.snapshot_id[:12]} (built {cat.built_at}): {cat.row_count} rows, "
        f"{len(cat.feature_columns)} features, {len(gold.feature_columns)} selected"
    )


def load_gold(state: RunState) -> Gold:
    """The gold table of this run (read once; the features step builds it first when planned)."""
    if state.gold is None:
        from pipelines import features as feats

        df, catalog = feats.load_gold(state.spark, wide_settings(state.settings))
        state.gold = Gold(df, catalog, selected_columns(catalog, state.settings))
    return state.gold
