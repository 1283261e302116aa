"""Bronze -> silver -> gold: pseudonymise, drop PHI, engineer, select, impute, catalog.

* **silver** (one folder per source table): typed per the contract, de-duplicated, the id
  replaced by a keyed hash (HMAC-SHA256, key from ``$PROMOTE_PSEUDONYM_KEY``; a clearly
  labelled development key with a warning when unset), date of birth turned into age and
  age band at the snapshot, the street address into a coarse region, every other PHI
  column dropped.
* **gold** (``gold/features``): one row per pseudonymous id and snapshot date with the
  label, the subgroup columns (for fairness metrics, never features) and the selected
  feature columns as doubles with no nulls (imputed per group; optional ``<col>__missing``
  indicators), plus utilisation features from the event table (counts and recency over
  windows). ``gold/features/_catalog.json`` describes it.

Which columns are features, and how each group is imputed, comes from
``feature_mappings.yml`` and ``feature_selection_config.yml``; an unknown group or column
is a config error naming the file and key. The PHI guard runs on silver and gold before
anything is published; all tables are written to staging folders and swapped in together.

Public API: :func:`build`, :func:`load_gold`, :func:`load_catalog`, :class:`Catalog`,
:func:`resolve_features` (pure), :func:`pseudonymize`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines import sqltext
from promoter.config.models import UNGROUPED
from promoter.errors import ConfigError, DataContractError, InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

    from promoter.config import Settings

CATALOG_FORMAT = 1
DEV_PSEUDONYM_KEY = "promote-DEVELOPMENT-pseudonym-key-not-for-real-PHI"
INDICATOR_SUFFIX = "__missing"
MEDIAN_ACCURACY = 1_000  # percentile_approx: rank error 1/1000, ~3x faster than 10,000
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "boolean")


log = logging.getLogger("promote.features")


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Log how long one Spark step took (INFO on the ``promote.features`` logger)."""
    t0 = time.perf_counter()
    yield
    log.info("%s: %.1fs", name, time.perf_counter() - t0)


class DevelopmentKeyWarning(UserWarning):
    """Issued when ids are pseudonymised with the development key (``$PROMOTE_PSEUDONYM_KEY`` unset)."""


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Catalog:
    """The catalog entry of one gold feature table (``gold/features/_catalog.json``).

    Attributes:
        feature_columns: the model's inputs, in order (indicator columns included).
        snapshot_id: a stable id of the data snapshot (same data and config -> same id);
            training uses it for idempotent registration.
        groups: group -> its feature columns (in ``feature_columns`` order).
        id_column: the pseudonymous key column (``data.key_column``).
        label_column, subgroup_columns, snapshot_date_column: what the other gold columns mean.
    """

    feature_columns: list[str] = field(default_factory=list)
    snapshot_id: str = ""
    version: int = 1
    snapshot_date: str = ""
    row_count: int = 0
    groups: dict[str, list[str]] = field(default_factory=dict)
    schema_hash: str = ""
    source_contract_version: str = ""
    id_column: str = "key"
    label_column: str = "label"
    subgroup_columns: list[str] = field(default_factory=list)
    snapshot_date_column: str = "snapshot_date"
    imputation: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "synthetic"
    feature_config_hash: str = ""
    pseudonym_key: str = "environment"
    build_key: str = ""
    path: str = ""
    built_at: str = ""
    format: int = CATALOG_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Catalog":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_catalog(spark: "SparkSession", settings: "Settings") -> Catalog:
    """Read the gold catalog.

    Raises:
        NotFound: when no gold table has been built yet.
    """
    from pipelines import lake

    location = lake.gold_path(settings) + "/" + lake.CATALOG_FILE
    text = lake.read_text(spark, location)
    if text is None:
        raise NotFound(f"no gold feature table at {lake.gold_path(settings)}: run `promote features` first")
    try:
        return Catalog.from_dict(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{location}: unreadable catalog ({exc}); rebuild with `promote features`") from None


def load_gold(spark: "SparkSession", settings: "Settings") -> tuple["DataFrame", Catalog]:
    """The gold feature table and its catalog entry.

    Args:
        spark: the session.
        settings: loaded settings (``project.lake_root``).

    Returns:
        ``(gold DataFrame, Catalog)``; the DataFrame has the key, snapshot date, label,
        subgroup and feature columns.

    Raises:
        NotFound: when no gold table has been built yet.
    """
    from pipelines import lake

    catalog = load_catalog(spark, settings)
    df = spark.read.parquet(lake.gold_path(settings))
    missing = [c for c in catalog.feature_columns if c not in df.columns]
    if missing:
        raise InvalidInput(
            f"gold table and catalog disagree (missing {', '.join(missing[:5])}); rebuild with `promote features`"
        )
    return df, catalog


# --------------------------------------------------------------------------- config errors


def _config_error(settings: "Settings", filename: str, key: tuple[Any, ...], message: str) -> ConfigError:
    """A ConfigError naming the file (the environment overlay when it set the key), line and column."""
    from promoter import config

    return config.error_at(settings, (config.CONFIG_FILES[filename], *key), message)


# --------------------------------------------------------------------------- feature plan (pure)


@dataclass(frozen=True)
class FeatureSpec:
    """One selected source column and how it becomes gold feature(s)."""

    column: str
    group: str
    kind: str  # numeric | date | text
    method: str  # median | mean | constant | most_frequent
    value: float | None
    indicator: bool


@dataclass(frozen=True)
class FeaturePlan:
    specs: list[FeatureSpec]
    mapped: dict[str, list[str]]  # group -> every candidate column it maps (selected or not)


def _kind(dtype: str) -> str | None:
    if dtype in _NUMERIC or dtype.startswith("decimal"):
        return "numeric"
    if dtype in ("date", "timestamp", "timestamp_ntz"):
        return "date"
    if dtype == "string":
        return "text"
    return None


def resolve_features(columns: list[tuple[str, str]], settings: "Settings") -> FeaturePlan:
    """Decide the gold features from the candidate columns and the two YAML files (pure).

    Args:
        columns: candidate ``(name, spark type)`` pairs: silver entity columns (without key,
            label, snapshot date and subgroups) plus the engineered event columns.
        settings: ``feature_mappings`` and ``feature_selection``.

    Returns:
        The ordered feature specs (mapping group order, then column order).

    Raises:
        ConfigError: naming file and key for an unknown group or column, a column mapped
            by two groups, a reserved column mapped by name, or an unusable column type.
    """
    data = settings.project.data
    mappings, sel = settings.feature_mappings.groups, settings.feature_selection
    reserved = {
        data.key_column: "the pseudonymous key",
        data.label_column: "the label",
        data.snapshot_date_column: "the snapshot date",
        data.id_column: "the id",
        **{c: "a subgroup column" for c in data.subgroup_columns},
        **{c: "a PHI column" for c in data.phi_columns},
    }
    names = [c for c, _ in columns]
    types = dict(columns)
    if not mappings:
        raise _config_error(
            settings,
            "feature_mappings.yml",
            ("groups",),
            "no feature groups: map columns (names or patterns) to groups",
        )
    owner: dict[str, tuple[str, bool]] = {}  # column -> (group, by exact name)
    for group, entries in mappings.items():
        for i, entry in enumerate(entries):
            key = ("groups", group, i)
            is_glob = any(ch in entry for ch in "*?[")
            if not is_glob:
                if entry in reserved:
                    raise _config_error(
                        settings, "feature_mappings.yml", key, f"{entry!r} is {reserved[entry]} and cannot be a feature"
                    )
                if entry not in types:
                    raise _config_error(
                        settings,
                        "feature_mappings.yml",
                        key,
                        f"column {entry!r} not found in the data{_near(entry, names)}",
                    )
                prev = owner.get(entry)
                if prev and prev[1] and prev[0] != group:
                    raise _config_error(
                        settings, "feature_mappings.yml", key, f"column {entry!r} is already in group {prev[0]!r}"
                    )
                owner[entry] = (group, True)
                continue
            matched = [c for c in names if fnmatch.fnmatchcase(c, entry) and c not in reserved]
            if not matched:
                raise _config_error(
                    settings, "feature_mappings.yml", key, f"pattern {entry!r} matches no column in the data"
                )
            for col in matched:
                prev = owner.get(col)
                if prev is None:
                    owner[col] = (group, False)
                elif not prev[1] and prev[0] != group:
                    raise _config_error(
                        settings,
                        "feature_mappings.yml",
                        key,
                        f"pattern {entry!r} also matches {col!r}, already in group {prev[0]!r} "
                        f"(narrow a pattern or name the column)",
                    )
    mapped: dict[str, list[str]] = {g: [] for g in mappings}
    for col in names:
        if col in owner:
            mapped[owner[col][0]].append(col)

    known_groups = list(mappings)
    for listname in ("include_groups", "exclude_groups"):
        for i, g in enumerate(getattr(sel, listname)):
            if g not in mappings:
                raise _config_error(
                    settings,
                    "feature_selection_config.yml",
                    (listname, i),
                    f"unknown group {g!r} (groups in feature_mappings.yml: {', '.join(known_groups)})",
                )
    for g in sel.imputation:
        if g != "default" and g not in mappings and g != UNGROUPED:
            raise _config_error(
                settings,
                "feature_selection_config.yml",
                ("imputation", g),
                f"unknown group {g!r} (groups: {', '.join(known_groups)}, or 'default')",
            )
    for listname in ("include_features", "exclude_features"):
        for i, col in enumerate(getattr(sel, listname)):
            if col in reserved:
                raise _config_error(
                    settings,
                    "feature_selection_config.yml",
                    (listname, i),
                    f"{col!r} is {reserved[col]} and cannot be a feature",
                )
            if col not in types:
                raise _config_error(
                    settings,
                    "feature_selection_config.yml",
                    (listname, i),
                    f"column {col!r} not found in the data{_near(col, names)}",
                )

    groups = [g for g in (sel.include_groups or known_groups) if g not in sel.exclude_groups]
    chosen: dict[str, str] = {}
    for g in known_groups:
        if g in groups:
            for col in mapped[g]:
                chosen[col] = g
    for col in sel.include_features:
        chosen.setdefault(col, owner[col][0] if col in owner else UNGROUPED)
    for col in sel.exclude_features:
        chosen.pop(col, None)

    from promoter.config import Imputation

    specs: list[FeatureSpec] = []
    order = {c: i for i, c in enumerate(names)}
    group_rank = {g: i for i, g in enumerate([*known_groups, UNGROUPED])}
    for col in sorted(chosen, key=lambda c: (group_rank[chosen[c]], order[c])):
        g = chosen[col]
        kind = _kind(types[col])
        if kind is None:
            where = (
                ("include_features", sel.include_features.index(col)) if col in sel.include_features else ("groups", g)
            )
            raise _config_error(
                settings,
                "feature_selection_config.yml" if where[0] == "include_features" else "feature_mappings.yml",
                where,
                f"column {col!r} has type {types[col]}, which cannot be a feature "
                "(numbers, true/false, dates and text can)",
            )
        imp = sel.imputation.get(g) or sel.imputation.get("default") or Imputation()
        method = imp.method
        if kind == "text":
            method = "constant"  # one-hot levels: a missing value is 0 in every level
        specs.append(
            FeatureSpec(
                col,
                g,
                kind,
                method,
                imp.value if imp.method == "constant" else (0.0 if kind == "text" else None),
                imp.add_indicator,
            )
        )
    if not specs:
        raise _config_error(
            settings, "feature_selection_config.yml", ("include_groups",), "the selection leaves no features"
        )
    return FeaturePlan(specs, mapped)


def _near(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def feature_config_hash(settings: "Settings") -> str:
    """sha256 over the mappings, the selection and the event feature config."""
    blob = json.dumps(
        {
            "mappings": settings.feature_mappings.model_dump(),
            "selection": settings.feature_selection.model_dump(),
            "events": settings.project.data.events.model_dump() if settings.project.data.events else None,
            "derive": settings.project.data.derive.model_dump(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------- pseudonymisation


def pseudonym_key(settings: "Settings", environ: dict[str, str] | None = None) -> tuple[bytes, str]:
    """The HMAC key and where it came from (``environment`` or ``development``).

    Warns (:class:`DevelopmentKeyWarning`) when the variable is unset.
    """
    env = os.environ if environ is None else environ
    name = settings.project.data.pseudonym_key_env
    value = env.get(name, "")
    if value:
        return value.encode("utf-8"), "environment"
    warnings.warn(
        f"{name} is not set: ids are pseudonymised with the DEVELOPMENT key. "
        f"Never use it with real PHI; set {name} to a secret key.",
        DevelopmentKeyWarning,
        stacklevel=2,
    )
    return DEV_PSEUDONYM_KEY.encode("utf-8"), "development"


def pseudonymize(col: "Column", key: bytes) -> "Column":
    """HMAC-SHA256(key, value) as 64 hex characters, computed in Spark (no Python UDF).

    ``HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m))`` with ``K'`` the key padded to
    the 64-byte block (hashed first when longer), exactly as :func:`hmac.new`.
    """
    from pyspark.sql import functions as F

    block = 64
    k = hashlib.sha256(key).digest() if len(key) > block else key
    k = k.ljust(block, b"\0")
    ipad = bytes(b ^ 0x36 for b in k)
    opad = bytes(b ^ 0x5C for b in k)
    msg = col.cast("string").cast("binary")
    inner = F.unhex(F.sha2(F.concat(F.lit(bytearray(ipad)), msg), 256))
    return F.sha2(F.concat(F.lit(bytearray(opad)), inner), 256)


def pseudonymize_value(value: str, key: bytes) -> str:
    """The same HMAC in Python (for tests and for looking one id up)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- silver


def _contract_types(settings: "Settings", table: str, columns: list[str]) -> dict[str, str]:
    """Column -> Spark type the contract of ``table`` asks for."""
    contract = settings.contracts.tables.get(table)
    if contract is None:
        return {}
    out: dict[str, str] = {}
    for pattern, rule in contract.column_patterns.items():
        if rule.spark_type:
            for c in columns:
                if fnmatch.fnmatchcase(c, pattern):
                    out[c] = rule.spark_type
    for c, rule in contract.columns.items():
        if rule.spark_type and c in columns:
            out[c] = rule.spark_type
    return out


def _typed(df: "DataFrame", settings: "Settings", table: str) -> "DataFrame":
    from pyspark.sql import functions as F

    want = _contract_types(settings, table, df.columns)
    have = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    if not any(have[c] != t for c, t in want.items()):
        return df
    return df.select(
        *[
            F.col(f"`{c}`").cast(want[c]).alias(c) if c in want and have[c] != want[c] else F.col(f"`{c}`")
            for c in df.columns
        ]
    )


def _dedupe(df: "DataFrame", keys: list[str]) -> "DataFrame":
    """Drop duplicate rows by ``keys``, keeping a deterministic one (only when there are any).

    One narrow pass over the key columns first: the common, clean case costs no wide shuffle.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    dupes = df.groupBy(*keys).count().where(F.col("count") > 1).limit(1).count()
    if not dupes:
        return df
    w = Window.partitionBy(*keys).orderBy(F.xxhash64(*[F.col(f"`{c}`") for c in df.columns]))
    return df.withColumn("__rn", F.row_number().over(w)).where(F.col("__rn") == 1).drop("__rn")


def silver_entity(df: "DataFrame", settings: "Settings", key: bytes) -> "DataFrame":
    """The entity table in silver: typed, de-duplicated, pseudonymised, PHI derived then dropped.

    Args:
        df: the bronze entity table (``data.entity_table``).
        settings: loaded settings (``project.data``, the table's contract for types).
        key: the HMAC key.

    Returns:
        A lazy DataFrame: ``key_column``, the snapshot date, the label, subgroup and
        derived columns, and every non-PHI column of the source.

    Raises:
        InvalidInput: when a configured column is missing from the table.
    """
    from pyspark.sql import functions as F

    from pipelines import lake

    data = settings.project.data
    derive = data.derive
    needed = [data.id_column, data.label_column, data.snapshot_date_column]
    needed += [c for c in (derive.age_from, derive.region_from) if c]
    lake.ensure_readable_columns(df, needed, f"entity table {data.entity_table!r} (project.yml data)")
    df = _typed(df, settings, data.entity_table)
    snap = F.to_date(F.col(data.snapshot_date_column))
    derived: list[Column] = []
    if derive.age_from:
        dob = F.to_date(F.col(derive.age_from))
        age = F.floor(F.months_between(snap, dob) / 12).cast("int")
        edges = derive.age_bands
        band = F.when(age.isNull(), F.lit("Unknown"))
        band = band.when(age < edges[0], F.lit(f"<{edges[0]}"))
        for lo, hi in zip(edges, edges[1:]):
            band = band.when(age < hi, F.lit(f"{lo}-{hi - 1}"))
        band = band.otherwise(F.lit(f"{edges[-1]}+"))
        derived += [age.alias(derive.age_column), band.alias(derive.age_band_column)]
    if derive.region_from:
        zip3 = F.substring(F.regexp_extract(F.col(derive.region_from), r"(\d{5})(-\d{4})?\s*$", 1), 1, 3)
        region = F.lit("Unknown")
        expr = None
        for name, prefixes in derive.regions.items():
            cond = zip3.isin(*prefixes)
            expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
        derived.append((expr.otherwise(region) if expr is not None else region).alias(derive.region_column))
    # the PHI columns, the id, and whatever a coarse column was derived from never leave bronze
    drop = {c.lower() for c in [*data.phi_columns, data.id_column, derive.age_from, derive.region_from] if c}
    made = ({derive.age_column, derive.age_band_column} if derive.age_from else set()) | (
        {derive.region_column} if derive.region_from else set()
    )
    keep = [c for c in df.columns if c.lower() not in drop and c != data.snapshot_date_column and c not in made]
    out = df.select(
        pseudonymize(F.col(data.id_column), key).alias(data.key_column),
        snap.alias(data.snapshot_date_column),
        *derived,
        *[F.col(f"`{c}`") for c in keep],
    )
    return _dedupe(out, [data.key_column, data.snapshot_date_column])


def silver_events(df: "DataFrame", settings: "Settings", key: bytes) -> "DataFrame":
    """The event table (``data.events.table``) in silver: typed, de-duplicated, pseudonymised, PHI dropped."""
    from pyspark.sql import functions as F

    from pipelines import lake

    data = settings.project.data
    ev = data.events
    if ev is None:  # pragma: no cover - callers check
        raise InvalidInput("no event table configured")
    needed = [ev.id_column, ev.date_column, ev.type_column] + ([ev.amount_column] if ev.amount_column else [])
    lake.ensure_readable_columns(df, needed, f"event table {ev.table!r} (project.yml data.events)")
    df = _typed(df, settings, ev.table)
    contract = settings.contracts.tables.get(ev.table)
    pk = [c for c in (contract.primary_key if contract else []) if c in df.columns]
    drop = {c.lower() for c in [*data.phi_columns, ev.id_column]}
    keep = [c for c in df.columns if c.lower() not in drop and c != ev.date_column]
    out = df.select(
        pseudonymize(F.col(ev.id_column), key).alias(data.key_column),
        F.to_date(F.col(ev.date_column)).alias(ev.date_column),
        *[F.col(f"`{c}`") for c in keep],
    )
    return _dedupe(out, pk or out.columns)


# --------------------------------------------------------------------------- gold


def event_feature_names(settings: "Settings") -> list[str]:
    """The engineered event columns gold will have, in order (no Spark needed)."""
    ev = settings.project.data.events
    if ev is None:
        return []
    names: list[str] = []
    for kind in ev.kinds:
        names += [f"{ev.prefix}{kind}_{w}d" for w in ev.windows_days]
        names.append(f"{ev.prefix}{kind}_days_since")
    names += [f"{ev.prefix}events_{w}d" for w in ev.windows_days]
    if ev.amount_column:
        names += [f"{ev.prefix}{ev.amount_column}_{w}d" for w in ev.windows_days]
    return names


def event_features(events: "DataFrame", entities: "DataFrame", settings: "Settings") -> "DataFrame":
    """Counts, recency and totals per (key, snapshot) from the silver event table.

    Only events on or before each row's snapshot date and within ``lookback_days`` count.
    Entities without events are not in the result (the gold join fills 0 / lookback).
    """
    from pyspark.sql import functions as F

    data = settings.project.data
    ev = data.events
    k, s = data.key_column, data.snapshot_date_column
    cols = [k, ev.date_column, ev.type_column] + ([ev.amount_column] if ev.amount_column else [])
    joined = events.select(*cols).join(entities.select(k, s), on=k, how="inner")
    days = F.datediff(F.col(s), F.col(ev.date_column))
    joined = joined.where((days >= 0) & (days < ev.lookback_days)).withColumn("__days", days)
    d = F.col("__days")
    aggs = []
    for kind, values in ev.kinds.items():
        is_kind = F.col(ev.type_column).isin(*values)
        for w in ev.windows_days:
            aggs.append(F.sum((is_kind & (d < w)).cast("int")).cast("double").alias(f"{ev.prefix}{kind}_{w}d"))
        aggs.append(F.min(F.when(is_kind, d)).cast("double").alias(f"{ev.prefix}{kind}_days_since"))
    for w in ev.windows_days:
        aggs.append(F.sum((d < w).cast("int")).cast("double").alias(f"{ev.prefix}events_{w}d"))
    if ev.amount_column:
        for w in ev.windows_days:
            aggs.append(
                F.round(F.sum(F.when(d < w, F.col(ev.amount_column)).otherwise(0.0)), 2)
                .cast("double")
                .alias(f"{ev.prefix}{ev.amount_column}_{w}d")
            )
    return joined.groupBy(k, s).agg(*aggs)


def _event_fill(name: str, settings: "Settings") -> float:
    ev = settings.project.data.events
    return float(ev.lookback_days) if name.endswith("_days_since") else 0.0


def _source_sql(spec: FeatureSpec, settings: "Settings") -> str:
    """The feature's raw value as a double (dates -> days before the snapshot), as SQL text."""
    col = sqltext.name(spec.column)
    if spec.kind == "date":
        snap = sqltext.name(settings.project.data.snapshot_date_column)
        return f"CAST(datediff({snap}, to_date({col})) AS DOUBLE)"
    return f"CAST({col} AS DOUBLE)"


def _statistics(
    df: "DataFrame", specs: list[FeatureSpec], settings: "Settings"
) -> tuple[dict[str, float], dict[str, Any]]:
    """One aggregation: the fill value of every numeric feature, the row count and a content fingerprint."""

    data = settings.project.data
    # SQL text: one JVM call for every column (see pipelines.sqltext)
    every = ", ".join(sqltext.name(c) for c in df.columns)
    exprs = [
        "count(1) AS __rows",
        f"CAST(max({sqltext.name(data.snapshot_date_column)}) AS STRING) AS __snapshot",
        f"sum(pmod(xxhash64({every}), {1 << 40})) AS __fingerprint",
    ]
    wanted: list[FeatureSpec] = []
    for i, spec in enumerate(specs):
        if spec.kind == "text" or spec.method == "constant":
            continue
        x = _source_sql(spec, settings)
        if spec.method == "median":
            e = f"percentile_approx({x}, 0.5, {MEDIAN_ACCURACY})"
        elif spec.method == "mean":
            e = f"avg({x})"
        else:
            e = f"mode({x})"
        exprs.append(f"{e} AS s{i}")
        wanted.append(spec)
    row = df.selectExpr(*exprs).first()
    fills: dict[str, float] = {}
    for i, spec in enumerate(specs):
        if spec.kind == "text":
            continue
        if spec.method == "constant":
            fills[spec.column] = float(spec.value if spec.value is not None else 0.0)
        else:
            v = row[f"s{i}"]
            fills[spec.column] = float(v) if v is not None else 0.0
    meta = {
        "rows": int(row["__rows"]),
        "snapshot": row["__snapshot"] or "",
        "fingerprint": int(row["__fingerprint"] or 0),
    }
    return fills, meta


def _levels(df: "DataFrame", spec: FeatureSpec, limit: int) -> list[str]:
    """The ``limit`` most frequent values of a text feature (ties by value)."""
    from pyspark.sql import functions as F

    rows = (
        df.where(F.col(f"`{spec.column}`").isNotNull())
        .groupBy(spec.column)
        .count()
        .orderBy(F.col("count").desc(), F.col(spec.column))
        .limit(limit)
        .collect()
    )
    return [r[spec.column] for r in rows]


def _slug(value: str) -> str:
    import re

    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(value)).strip("_").lower()
    return s or "blank"


def _schema_hash(df: "DataFrame") -> str:
    blob = json.dumps([(f.name, f.dataType.simpleString()) for f in df.schema.fields])
    return hashlib.sha256(blob.encode()).hexdigest()


def build(spark: "SparkSession", settings: "Settings", environ: dict[str, str] | None = None) -> Catalog:
    """Build silver and gold from the source tables, run the PHI guard, write the catalog.

    Everything is written to staging folders first; only when every table is written and
    the PHI guard passes are they swapped in (a failure leaves the lake as it was).

    Args:
        spark: the session (built once at the edge from config).
        settings: loaded settings: ``project.data`` (sources, columns, derive, events),
            ``feature_mappings``, ``feature_selection``, ``contracts`` (types, version).
        environ: environment for the pseudonym key (default ``os.environ``).

    Returns:
        The new gold :class:`Catalog`.

    Raises:
        ConfigError: an unknown group or column in the feature config (before anything is written).
        DataContractError: a missing source table, or PHI found by the guard.
        InvalidInput: a configured column missing from a source table.
    """
    from pyspark.sql import functions as F

    from pipelines import lake, phi

    data = settings.project.data
    sources = lake.source_tables(settings)
    if data.entity_table not in sources:
        raise _config_error(
            settings,
            "project.yml",
            ("data", "entity_table"),
            f"{data.entity_table!r} is not a source table ({', '.join(sources)})",
        )
    key, key_source = pseudonym_key(settings, environ)
    build_key = _build_key(settings, sources, key)
    if build_key is not None:
        previous = _previous_catalog(spark, settings)
        if previous is not None and previous.build_key == build_key:
            log.info("gold is current: the same source files, feature config, key and code built it")
            return previous
    bronze = lake.read_table(spark, data.entity_table, sources[data.entity_table])
    with _step("silver entity plan (duplicate check)"):
        silver = silver_entity(bronze, settings, key)
    events = None
    if data.events is not None:
        if data.events.table not in sources:
            raise _config_error(
                settings,
                "project.yml",
                ("data", "events", "table"),
                f"{data.events.table!r} is not a source table ({', '.join(sources)})",
            )
        with _step("silver events plan (duplicate check)"):
            events = silver_events(lake.read_table(spark, data.events.table, sources[data.events.table]), settings, key)

    # Decide the features from the schema before anything is written.
    reserved = {data.key_column, data.snapshot_date_column, data.label_column, *data.subgroup_columns}
    missing_sub = [c for c in data.subgroup_columns if c not in silver.columns]
    if missing_sub:
        raise _config_error(
            settings,
            "project.yml",
            ("data", "subgroup_columns"),
            f"subgroup column(s) {', '.join(missing_sub)} not in the entity table {data.entity_table!r} (nor derived)",
        )
    candidates = [(f.name, f.dataType.simpleString()) for f in silver.schema.fields if f.name not in reserved]
    event_names = event_feature_names(settings)
    clash = [n for n in event_names if n in dict(candidates)]
    if clash:
        raise _config_error(
            settings,
            "project.yml",
            ("data", "events", "prefix"),
            f"engineered column(s) {', '.join(clash[:3])} clash with source columns; change the prefix",
        )
    candidates += [(n, "double") for n in event_names]
    plan = resolve_features(candidates, settings)

    silver_paths = {data.entity_table: lake.path(settings, lake.SILVER, data.entity_table)}
    if events is not None:
        silver_paths[data.events.table] = lake.path(settings, lake.SILVER, data.events.table)
    gold_target = lake.gold_path(settings)
    with lake.Staging(spark) as stage:
        with _step("silver entity write"):
            silver.write.mode("overwrite").parquet(stage.path(silver_paths[data.entity_table]))
        s_entity = spark.read.parquet(stage.pending[silver_paths[data.entity_table]])
        with _step("PHI guard silver entity"):
            phi.check(s_entity, settings, f"silver/{data.entity_table}")
        s_events = None
        if events is not None:
            with _step("silver events write"):
                events.write.mode("overwrite").parquet(stage.path(silver_paths[data.events.table]))
            s_events = spark.read.parquet(stage.pending[silver_paths[data.events.table]])
            with _step("PHI guard silver events"):
                phi.check(s_events, settings, f"silver/{data.events.table}")

        source_specs = [s for s in plan.specs if s.column not in event_names]
        with _step("imputation statistics"):
            fills, meta = _statistics(s_entity, source_specs, settings)
        if s_events is not None:
            meta["events_fingerprint"] = s_events.agg(
                F.count(F.lit(1)),
                F.sum(F.pmod(F.xxhash64(*[F.col(f"`{c}`") for c in s_events.columns]), F.lit(1 << 40))),
            ).first()[:]
        levels = {
            s.column: _levels(s_entity, s, settings.feature_selection.max_categories)
            for s in source_specs
            if s.kind == "text"
        }

        k, snap = data.key_column, data.snapshot_date_column
        q = sqltext.name
        # the gold projection as SQL text: one JVM call for 500+ columns (see pipelines.sqltext)
        head = [q(k), q(snap), f"CAST({q(data.label_column)} AS INT) AS {q(data.label_column)}"]
        head += [f"coalesce(CAST({q(c)} AS STRING), 'Unknown') AS {q(c)}" for c in data.subgroup_columns]
        feature_cols: list[str] = []
        feature_names: list[str] = []
        groups: dict[str, list[str]] = {}
        imputation: dict[str, dict[str, Any]] = {}
        base = s_entity
        if s_events is not None and any(s.column in event_names for s in plan.specs):
            agg = event_features(s_events, s_entity, settings)
            # hash the narrow side: the wide entity rows are shuffled once but never sorted
            base = s_entity.join(agg.hint("shuffle_hash"), on=[k, snap], how="left")
        for spec in plan.specs:
            outs: list[tuple[str, str]] = []
            c = q(spec.column)
            if spec.kind == "text":
                for level in levels.get(spec.column, []):
                    outs.append(
                        (
                            f"{spec.column}__{_slug(level)}",
                            f"coalesce(CAST({c} = {sqltext.literal(level)} AS DOUBLE), 0.0D)",
                        )
                    )
                imputation[spec.column] = {"method": "one_hot", "levels": levels.get(spec.column, [])}
            elif spec.column in event_names:
                fill = _event_fill(spec.column, settings)
                outs.append((spec.column, f"coalesce({c}, {sqltext.literal(float(fill))})"))
                imputation[spec.column] = {"method": "constant", "value": fill}
            else:
                fill = fills[spec.column]
                outs.append((spec.column, f"coalesce({_source_sql(spec, settings)}, {sqltext.literal(float(fill))})"))
                imputation[spec.column] = {"method": spec.method, "value": fill}
            if spec.indicator:
                ind = f"{spec.column}{INDICATOR_SUFFIX}"
                outs.append((ind, f"CAST({c} IS NULL AS DOUBLE)"))
                imputation[spec.column]["indicator"] = ind
            for name, expr in outs:
                feature_cols.append(f"{expr} AS {q(name)}")
                feature_names.append(name)
                groups.setdefault(spec.group, []).append(name)
        dup = {n for n in feature_names if feature_names.count(n) > 1 or n in reserved}
        if dup:
            raise InvalidInput(f"gold column name(s) collide: {', '.join(sorted(dup))} (rename the source columns)")
        gold = base.selectExpr(*head, *feature_cols)
        gold_tmp = stage.path(gold_target)
        with _step("gold write (join with event features, impute)"):
            gold.write.mode("overwrite").parquet(gold_tmp)
        written = spark.read.parquet(gold_tmp)
        with _step("PHI guard gold"):
            phi.check(written, settings, "gold/features")
        schema_hash = _schema_hash(written)
        fch = feature_config_hash(settings)
        snapshot_id = hashlib.sha256(
            json.dumps(
                [
                    meta["snapshot"],
                    meta["rows"],
                    schema_hash,
                    meta["fingerprint"],
                    meta.get("events_fingerprint"),
                    fch,
                    key_source,
                    sorted(fills.items()),
                    data.source,
                ],
                default=str,
            ).encode()
        ).hexdigest()[:32]
        previous = _previous_catalog(spark, settings)
        version = 1 if previous is None else previous.version + (previous.snapshot_id != snapshot_id)
        catalog = Catalog(
            feature_columns=feature_names,
            snapshot_id=snapshot_id,
            version=version,
            snapshot_date=meta["snapshot"],
            row_count=meta["rows"],
            groups=groups,
            schema_hash=schema_hash,
            source_contract_version=settings.contracts.version,
            id_column=k,
            label_column=data.label_column,
            subgroup_columns=list(data.subgroup_columns),
            snapshot_date_column=snap,
            imputation=imputation,
            source=data.source,
            feature_config_hash=fch,
            pseudonym_key=key_source,
            build_key=build_key or "",
            path=gold_target,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        lake.write_text(spark, gold_tmp + "/" + lake.CATALOG_FILE, catalog.to_json())
    return catalog


def _build_key(settings: "Settings", sources: dict[str, Any], key: bytes) -> str | None:
    """What gold depends on, cheaply: every source file (name, size, mtime), the feature and data
    config, the contract version, the pseudonym key and this code. ``None`` (always rebuild) when a
    source is not on a local file system, where listing is no cheaper than building."""
    import sys

    from pipelines import lake, phi

    parts = [
        feature_config_hash(settings),
        settings.project.data.model_dump(),
        settings.contracts.version,
        hashlib.sha256(key).hexdigest(),
        CATALOG_FORMAT,
    ]
    return lake.inputs_key(sources, parts, [sys.modules[__name__], lake, phi])


def _previous_catalog(spark: "SparkSession", settings: "Settings") -> Catalog | None:
    try:
        return load_catalog(spark, settings)
    except (NotFound, InvalidInput):
        return None


__all__ = [
    "Catalog",
    "FeaturePlan",
    "FeatureSpec",
    "build",
    "load_gold",
    "load_catalog",
    "resolve_features",
    "pseudonymize",
    "pseudonymize_value",
    "pseudonym_key",
    "event_feature_names",
    "DataContractError",
]
