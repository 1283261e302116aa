"""The settings models: one pydantic model per config file section, validated once, immutable.

``project.yml`` (project, spark, registry, data, scoring), ``promotion.yml`` (branch rules,
steps, gate policy, approvals), ``feature_mappings.yml``, ``feature_selection_config.yml``,
``contracts.yml`` and ``training.yml``; :class:`Settings` is the whole of them for one
environment, with the cross-file checks. Loading (files, merge, positions) is ``loader``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from promoter.config.branch_patterns import GlobError, compile_glob

REQUIRED_FILES = ("project.yml", "promotion.yml")
BASE = "base"

# The metrics the shipped evaluation computes on the held-out rows, overall and per subgroup
# (pipelines/evaluate.py takes its list from here). Plain data so config validation needs no Spark:
# a gate's primary_metric, floors, ceilings and fairness.metric must be one of them.
EVALUATION_METRICS: tuple[str, ...] = (
    "n",
    "positives",
    "prevalence",
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "precision_at_k",
    "recall_at_k",
    "selected",
)
# The columns of the prediction and outreach tables besides the key (pipelines/score.py): the
# project's key column must not take one of these names.
SCORE_TABLE_COLUMNS: tuple[str, ...] = (
    "score",
    "risk_tier",
    "rank",
    "model_name",
    "model_version",
    "run_id",
    "scored_at",
    "score_date",
)
# An imputation entry may name a feature group, ``default`` (the fallback) or this pseudo-group
# (columns the selection adds with include_features that no group maps).
UNGROUPED = "ungrouped"

# --------------------------------------------------------------------------- interpolation

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: str, info: ValidationInfo) -> str:
    environ: Mapping[str, str] = (info.context or {}).get("environ", os.environ)

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise ValueError(f"environment variable {name} is not set (referenced as ${{{name}}})")

    return _VAR.sub(sub, value)


def _interpolate_secret(value: SecretStr, info: ValidationInfo) -> SecretStr:
    return SecretStr(_interpolate(value.get_secret_value(), info))


Uri = Annotated[str, AfterValidator(_interpolate)]
"""A location (tracking URI, lake root): ``${VAR}`` is expanded."""
Secret = Annotated[SecretStr, AfterValidator(_interpolate_secret)]
"""A token or password: ``${VAR}`` is expanded; never printed."""


class Strict(BaseModel):
    """Base of every settings model: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- project.yml


class SparkSettings(Strict):
    master: str = "local[*]"
    app_name: str = "promote"
    config: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # local[...] masters without spark.driver.memory in config: the driver JVM's heap is this share of
    # the machine's memory (at least 1g, leaving 2 GiB for Python). Cluster and sc:// masters: unused.
    driver_memory_fraction: float = Field(0.5, ge=0.05, le=0.9)

    @field_validator("config")
    @classmethod
    def _jvm_sizes(cls, v: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
        problems = [
            (("project", "spark", "config", key), f"{v[key]!r} is not a JVM size, e.g. 8g or 4096m")
            for key in ("spark.driver.memory", "spark.executor.memory")
            if key in v
            and (
                isinstance(v[key], (bool, float))
                or not re.fullmatch(r"\d+[kmgtp]?b?", str(v[key]).strip(), re.IGNORECASE)
            )
        ]
        if problems:  # located at the key itself, in whichever file set it
            raise _CrossRefError(problems)
        return v


class RegistrySettings(Strict):
    model_name_template: str = "{model}-{env}"
    use_stages: bool = False
    # how long one call may wait on a tracking server that is down (retries and backoff included),
    # and one HTTP attempt; a run that meets a dead server exits 1 within about one deadline
    deadline_seconds: int = Field(120, ge=5, le=3600)
    request_timeout_seconds: int = Field(20, ge=1, le=3600)
    # a run's locks are refreshed every ttl/4; a holder silent for the TTL died and is broken
    lock_ttl_seconds: int = Field(300, ge=30, le=24 * 3600)

    @field_validator("model_name_template")
    @classmethod
    def _has_env(cls, v: str) -> str:
        if "{env}" not in v or "{model}" not in v:
            raise ValueError("must contain both {model} and {env}, so each environment has its own registered model")
        return v


class TableSource(Strict):
    """One source table: where it is and how Spark reads it."""

    path: Uri
    format: Literal["delta", "parquet", "csv"] = "parquet"
    # passed to the Spark reader, e.g. {header: true, sep: ";"} for CSV
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)


class EventFeatures(Strict):
    """Engineered features from an event table (visits, orders, payments ...): counts and recency per
    kind, over windows.

    For each ``kinds`` entry ``name: [type values]`` gold gets ``<prefix><name>_<w>d`` (events in the
    last ``w`` days before the snapshot) for every window, and ``<prefix><name>_days_since`` (capped
    at ``lookback_days``); plus ``<prefix>events_<w>d`` and, with ``amount_column``,
    ``<prefix><amount>_<w>d`` totals. ``id_column`` defaults to the project's ``data.id_column``.
    """

    table: str = "events"
    id_column: str = "id"  # filled from data.id_column when the file leaves it out
    date_column: str = "event_date"
    type_column: str = "event_type"
    amount_column: str | None = None
    prefix: str = "ev_"
    kinds: dict[str, list[str]] = Field(default_factory=dict)
    windows_days: list[int] = Field(default_factory=lambda: [30, 90, 180, 365])
    lookback_days: int = Field(730, ge=1)

    @field_validator("windows_days")
    @classmethod
    def _windows(cls, v: list[int]) -> list[int]:
        if not v or any(w <= 0 for w in v) or len(set(v)) != len(v):
            raise ValueError("must be distinct positive day counts, e.g. [30, 90, 365]")
        return sorted(v)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, values in v.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"{name!r}: a kind names columns: lower-case letters, digits and '_'")
            if not values:
                raise ValueError(f"{name!r}: list at least one event type value")
        return v

    @model_validator(mode="after")
    def _lookback(self) -> "EventFeatures":
        if self.lookback_days < max(self.windows_days):
            raise ValueError(
                f"lookback_days ({self.lookback_days}) must cover the longest window ({max(self.windows_days)})"
            )
        return self


class DeriveSettings(Strict):
    """Coarse, non-identifying columns made from PHI in silver (the PHI column itself is dropped)."""

    age_from: str | None = None  # date-of-birth column -> age (years) and age band
    age_column: str = "age_years"
    age_band_column: str = "age_band"
    age_bands: list[int] = Field(default_factory=lambda: [20, 25, 30, 35, 40])
    region_from: str | None = None  # street-address column ending in a ZIP code -> region
    region_column: str = "region"
    regions: dict[str, list[str]] = Field(default_factory=dict)  # region -> ZIP3 prefixes

    @field_validator("age_bands")
    @classmethod
    def _bands(cls, v: list[int]) -> list[int]:
        if not v or any(b >= a for b, a in zip(v, v[1:])) or any(x <= 0 for x in v):
            raise ValueError("must be increasing positive ages, e.g. [20, 25, 30, 35, 40]")
        return v

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for region, prefixes in v.items():
            for p in prefixes:
                if not re.fullmatch(r"\d{3}", str(p)):
                    raise ValueError(f'{region}: {p!r} is not a 3-digit ZIP prefix (quote it: "430")')
                if p in seen:
                    raise ValueError(f"ZIP prefix {p!r} is in both {seen[p]!r} and {region!r}")
                seen[p] = region
        return v


class DataSettings(Strict):
    """Where the source tables are and which columns mean what (issue: any table, not only ours).

    ``source: synthetic`` reads the tables ``promote data generate`` writes to the lake's bronze
    layer; ``source: tables`` reads ``tables`` (Parquet, CSV or Delta), one of which is the
    ``entity_table`` (one row per id and snapshot, with the label).
    """

    source: Literal["synthetic", "tables"] = "synthetic"
    entity_table: str = "entities"
    tables: dict[str, TableSource] = Field(default_factory=dict)
    id_column: str = "id"
    key_column: str = "key"  # the pseudonymous id in silver and gold, and the key of the prediction tables
    label_column: str = "label"
    snapshot_date_column: str = "snapshot_date"
    subgroup_columns: list[str] = Field(default_factory=list)
    phi_columns: list[str] = Field(default_factory=list)
    pseudonym_key_env: str = "PROMOTE_PSEUDONYM_KEY"
    derive: DeriveSettings = Field(default_factory=DeriveSettings)
    events: EventFeatures | None = None

    @model_validator(mode="before")
    @classmethod
    def _events_id(cls, v: Any) -> Any:
        """The event table's id column is the entity id unless ``events.id_column`` says otherwise."""
        if isinstance(v, dict) and isinstance(v.get("events"), dict) and "id_column" not in v["events"]:
            return {**v, "events": {**v["events"], "id_column": v.get("id_column", "id")}}
        return v

    def derived_columns(self) -> dict[str, str]:
        """Columns silver makes from PHI (``derive``): column -> the PHI column it comes from."""
        d = self.derive
        out: dict[str, str] = {}
        if d.age_from:
            out[d.age_column] = d.age_from
            out[d.age_band_column] = d.age_from
        if d.region_from:
            out[d.region_column] = d.region_from
        return out

    def named_columns(self) -> dict[str, tuple[Any, ...]]:
        """Every column of the entity table this section names -> the key path that names it
        (``("data", "label_column")``, ``("data", "subgroup_columns", 1)``, ...). Derived subgroup
        columns are left out: silver makes them."""
        out: dict[str, tuple[Any, ...]] = {}
        for key in ("id_column", "label_column", "snapshot_date_column"):
            out.setdefault(getattr(self, key), ("data", key))
        derived = self.derived_columns()
        for i, col in enumerate(self.subgroup_columns):
            if col not in derived:
                out.setdefault(col, ("data", "subgroup_columns", i))
        for key in ("age_from", "region_from"):
            col = getattr(self.derive, key)
            if col:
                out.setdefault(col, ("data", "derive", key))
        return out

    def event_columns(self) -> dict[str, tuple[Any, ...]]:
        """The event table's columns this section names -> the key path that names each."""
        ev = self.events
        if ev is None:
            return {}
        out: dict[str, tuple[Any, ...]] = {}
        for key in ("id_column", "date_column", "type_column", "amount_column"):
            col = getattr(ev, key)
            if col:
                out.setdefault(col, ("data", "events", key))
        return out

    @model_validator(mode="after")
    def _consistent(self) -> "DataSettings":
        problems: list[tuple[tuple[Any, ...], str]] = []
        where = ("project", "data")
        if self.source == "tables":
            if self.entity_table not in self.tables:
                problems.append(
                    (
                        where + ("entity_table",),
                        f"{self.entity_table!r} is not one of the tables "
                        f"({', '.join(self.tables) or 'none configured'})",
                    )
                )
            if self.events is not None and self.events.table not in self.tables:
                problems.append(
                    (
                        where + ("events", "table"),
                        f"{self.events.table!r} is not one of the tables "
                        f"({', '.join(self.tables) or 'none configured'})",
                    )
                )
        elif self.tables:
            problems.append(
                (
                    where + ("tables",),
                    "is only read with 'source: tables'; synthetic data lives in the lake's bronze layer",
                )
            )
        phi = set(self.phi_columns)
        for i, col in enumerate(self.subgroup_columns):
            if col in phi:
                problems.append((where + ("subgroup_columns", i), f"{col!r} is a PHI column"))
        for key in ("label_column", "snapshot_date_column", "key_column"):
            if getattr(self, key) in phi:
                problems.append((where + (key,), f"{getattr(self, key)!r} is a PHI column"))
        if self.key_column == self.id_column:
            problems.append((where + ("key_column",), "must differ from id_column: the id is replaced"))
        if self.key_column in SCORE_TABLE_COLUMNS:
            problems.append(
                (
                    where + ("key_column",),
                    f"{self.key_column!r} is a column the prediction tables already have "
                    f"({', '.join(SCORE_TABLE_COLUMNS)}); name the key otherwise",
                )
            )
        if self.label_column == self.snapshot_date_column:
            problems.append((where + ("label_column",), "must differ from snapshot_date_column"))
        roles = {
            self.id_column: "the id column",
            self.key_column: "the key column",
            self.label_column: "the label column",
            self.snapshot_date_column: "the snapshot date column",
        }
        for i, col in enumerate(self.subgroup_columns):
            if col in roles:
                problems.append((where + ("subgroup_columns", i), f"{col!r} is {roles[col]}, not a subgroup"))
            elif col in self.subgroup_columns[:i]:
                problems.append((where + ("subgroup_columns", i), f"{col!r} is listed twice"))
        if problems:
            raise _CrossRefError(problems)
        return self


class RiskTier(Strict):
    """One risk tier: a share of the scored rows (``percent``) or a score floor (``min_score``).

    The last tier of a list has neither: it takes everyone left.
    """

    name: str
    percent: float | None = Field(None, gt=0, le=100)
    min_score: float | None = Field(None, ge=0, le=1)

    @field_validator("name")
    @classmethod
    def _tier_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", v):
            raise ValueError(f"{v!r} is not a valid tier name (letters, digits, '_' or '-')")
        return v


def _default_tiers() -> list[RiskTier]:
    return [RiskTier(name="high", percent=5), RiskTier(name="medium", percent=15), RiskTier(name="low")]


class ScoringSettings(Strict):
    """``project.yml`` ``scoring:``: risk tiers, outreach list size and the prediction tables.

    ``tiering: capacity`` gives each tier (highest risk first) a ``percent`` of the scored rows:
    the outreach capacity. ``tiering: cut_points`` gives each tier a ``min_score``
    (score >= min_score). Either way the last tier names everyone else.
    Table paths are relative to the model's folder of the lake (``<lake_root>/<model_name>``).
    """

    tiering: Literal["capacity", "cut_points"] = "capacity"
    tiers: list[RiskTier] = Field(default_factory=_default_tiers)
    top_n: int = Field(500, ge=1, le=10_000_000)
    predictions_table: str = "predictions/scores"
    outreach_table: str = "predictions/outreach_list"
    # capacity tiers: bracket of Spark's approxQuantile (in ranks / rows) that one more pass refines
    # to the exact cut point; 0 asks Spark for exact quantiles directly (costly at scale)
    quantile_relative_error: float = Field(1e-4, ge=0, lt=0.1)
    max_rows_per_file: int = Field(1_000_000, ge=1_000)

    @field_validator("predictions_table", "outreach_table")
    @classmethod
    def _relative(cls, v: str) -> str:
        parts = v.strip("/").split("/")
        if not v or v.startswith("/") or "://" in v or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"must be a folder path relative to lake_root, like 'predictions/scores', got {v!r}")
        return v.strip("/")

    @model_validator(mode="after")
    def _tiers_ok(self) -> "ScoringSettings":
        where = ("project", "scoring")
        problems: list[tuple[tuple[Any, ...], str]] = []
        tiers = self.tiers
        if len(tiers) < 2:
            problems.append((where + ("tiers",), "needs at least two tiers (the last one takes everyone left)"))
        names = [t.name for t in tiers]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append((where + ("tiers", i, "name"), f"tier {name!r} is listed twice"))
        field, other = ("percent", "min_score") if self.tiering == "capacity" else ("min_score", "percent")
        for i, tier in enumerate(tiers):
            last = i == len(tiers) - 1
            if getattr(tier, other) is not None:
                problems.append(
                    (
                        where + ("tiers", i, other),
                        f"tier {tier.name!r}: '{other}' is not used with tiering: {self.tiering} (give '{field}')",
                    )
                )
            if last and getattr(tier, field) is not None:
                problems.append(
                    (
                        where + ("tiers", i, field),
                        f"tier {tier.name!r}: the last tier takes everyone left; drop '{field}'",
                    )
                )
            if not last and getattr(tier, field) is None:
                problems.append(
                    (where + ("tiers", i), f"tier {tier.name!r}: needs '{field}' (tiering: {self.tiering})")
                )
        bounded = [getattr(t, field) for t in tiers[:-1] if getattr(t, field) is not None]
        if self.tiering == "capacity" and sum(bounded) > 100 + 1e-9:
            problems.append((where + ("tiers",), f"percents add up to {sum(bounded):g}, more than 100"))
        if self.tiering == "cut_points" and any(b >= a for a, b in zip(bounded, bounded[1:])):
            problems.append((where + ("tiers",), "min_score must decrease from the highest-risk tier down"))
        if (
            self.predictions_table == self.outreach_table
            or self.outreach_table.startswith(self.predictions_table + "/")
            or self.predictions_table.startswith(self.outreach_table + "/")
        ):
            problems.append(
                (
                    where + ("outreach_table",),
                    "must be a different folder from predictions_table, and neither inside the other",
                )
            )
        if problems:
            raise _CrossRefError(problems)
        return self


_ENTRY_POINT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


class PipelineEntryPoints(Strict):
    """``project.yml`` ``pipelines:``: the project's ML code, one ``module:function`` per part.

    The defaults are the shipped Spark pipelines; see ``pipelines/api.py`` for what each entry
    point gets and returns. Modules are imported with the project's folder first on the path.
    """

    contracts: str = "pipelines.contracts:check"
    features: str = "pipelines.features:build"
    train: str = "pipelines.train:default_fit"
    score: str = "pipelines.score:score_population"
    monitor: str = "pipelines.surveillance:surveil"

    @field_validator("*")
    @classmethod
    def _entry_point(cls, v: str) -> str:
        if not _ENTRY_POINT.fullmatch(v):
            raise ValueError(f"must be 'package.module:function', got {v!r}")
        return v


class ProjectSettings(Strict):
    name: str
    model_name: str
    description: str = ""
    tracking_uri: Uri = "sqlite:///.promote/mlflow.db"
    registry_uri: Uri | None = None
    tracking_token: Secret | None = None
    experiment: str = "/promote/{model}-{env}"
    lake_root: Uri = ".promote/lake"
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    pipelines: PipelineEntryPoints = Field(default_factory=PipelineEntryPoints)

    @property
    def lake(self) -> str:
        """This model's own folder of the lake, ``<lake_root>/<model_name>``: every table the engine
        writes or reads (bronze to gold, predictions, the audit mirror) is under it, so models that
        share a lake root never share a table."""
        return self.lake_root.rstrip("/") + "/" + self.model_name

    @field_validator("model_name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", v):
            raise ValueError("must be letters, digits, '.', '_' or '-' (it names a registered model)")
        return v


# --------------------------------------------------------------------------- promotion.yml

EventKind = Literal["pull_request", "push", "release", "schedule", "manual"]
StepName = Literal[
    "contracts",
    "features",
    "train",
    "expectations",
    "gate",
    "approval",
    "promote",
    "score",
    "surveillance",
    "report",
    "rollback",
]
# step names of earlier versions, folded into ``train`` (which evaluates and registers)
FOLDED_STEPS = {"evaluate": "train", "register": "train"}


class BranchRule(Strict):
    """One ordered rule: a glob ``pattern`` (or ``default_branch: true``) -> environment."""

    pattern: str | None = None
    default_branch: bool = False
    environment: str

    @model_validator(mode="after")
    def _one_matcher(self) -> "BranchRule":
        if (self.pattern is None) == (not self.default_branch):
            raise ValueError("give exactly one of 'pattern' or 'default_branch: true'")
        if self.pattern is not None:
            try:
                compile_glob(self.pattern)
            except GlobError as exc:
                raise ValueError(str(exc)) from None
        return self


class SignificanceRule(Strict):
    enabled: bool = True
    method: Literal["paired_bootstrap"] = "paired_bootstrap"
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    resamples: int = Field(1000, ge=100, le=100_000)
    seed: int = 20240601


class FairnessRule(Strict):
    """``gate.<env>.fairness``: judged on bootstrap intervals over the evaluation rows.

    A rule FAILs only when its interval lies wholly over the limit. ``undecided_when`` says when
    it asks a person (NEEDS_APPROVAL) instead: ``estimate_over_limit`` (default) when the point
    estimate is over the limit but the interval reaches within it; ``interval_straddles``
    whenever the interval crosses the limit (also with the estimate within it: stricter, and at
    a few hundred rows per group nearly every release waits for a person; see bench/gate_power.py).
    """

    subgroups: list[str] = Field(default_factory=list)
    metric: str = "roc_auc"
    max_gap: float | None = Field(0.10, ge=0)
    max_regression: float | None = Field(0.02, ge=0)
    min_group_size: int = Field(50, ge=1)
    undecided_when: Literal["estimate_over_limit", "interval_straddles"] = "estimate_over_limit"


class GatePolicy(Strict):
    mode: Literal["enforce", "dry_run", "disabled"] = "enforce"
    primary_metric: str = "roc_auc"
    direction: Literal["maximize", "minimize"] = "maximize"
    min_absolute_improvement: float = 0.0
    min_relative_improvement: float = 0.0
    floors: dict[str, float] = Field(default_factory=dict)
    ceilings: dict[str, float] = Field(default_factory=dict)
    significance: SignificanceRule = Field(default_factory=SignificanceRule)
    fairness: FairnessRule = Field(default_factory=FairnessRule)
    phi_check: bool = True
    marginal: Literal["reject", "approval"] = "reject"


_ROLE = r"[a-z][a-z0-9_]*"
_MEMBER = r"\*|@[a-z][a-z0-9_]*|([a-z]+:)?[^\s:@*][^\s]*"


class ApprovalRole(Strict):
    """One role of a sign-off: who belongs to it and how many of them must approve."""

    members: list[str]
    required: int = Field(1, ge=0, le=10)

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("lists no members (identities, '@group' or '*')")
        for m in v:
            if not re.fullmatch(_MEMBER, str(m)):
                raise ValueError(
                    f"member {m!r}: use an identity ('dr.lee', 'github:dr-lee'), a group ('@board') or '*'"
                )
        return v


class TicketVerification(Strict):
    """Check a change ticket against the ticket system's REST API before promoting."""

    url: str  # ``{ticket}`` is replaced by the ticket id, e.g. https://itsm.example.org/api/changes/{ticket}
    token_env: str | None = None  # environment variable holding a bearer token
    state_field: str = "state"  # dotted path into the JSON answer
    accepted_states: list[str] = Field(default_factory=lambda: ["approved", "scheduled", "implement"])
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"https?://", v) or "{ticket}" not in v:
            raise ValueError("must be an http(s) URL containing '{ticket}'")
        return v


class ChangeTicketPolicy(Strict):
    """Whether promotions in an environment need a change ticket, and what one looks like."""

    required: bool = False
    pattern: str = r"[A-Z][A-Z0-9]+-[0-9]+"
    verify: TicketVerification | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return v

    def problem(self, ticket: str | None) -> str | None:
        """Why ``ticket`` does not do (``None``: it does, or none is required and none was given)."""
        if not ticket:
            return "a change ticket is required" if self.required else None
        if not re.fullmatch(self.pattern, ticket):
            return f"change ticket {ticket!r} does not match the pattern {self.pattern!r}"
        return None


class ApprovalPolicy(Strict):
    """``approvals.<env>``: sign-off by role, the identity it needs, and change tickets.

    ``required``/``approvers`` (the form before roles) still load: they become one role
    ``approver`` (anyone, or the listed people) with that count, asked on every move.
    """

    identity: Literal["verified", "any"] = "verified"
    sign_off: Literal["always", "needs_approval"] = "needs_approval"
    roles: dict[str, ApprovalRole] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    change_ticket: ChangeTicketPolicy = Field(default_factory=ChangeTicketPolicy)
    required: int | None = Field(None, ge=0, le=10)
    approvers: list[str] | None = None

    @model_validator(mode="after")
    def _roles(self) -> "ApprovalPolicy":
        legacy = self.required is not None or self.approvers is not None
        if legacy and self.roles:
            raise ValueError("use 'roles' or the older 'required'/'approvers', not both")
        for name, role in self.roles.items():
            if not re.fullmatch(_ROLE, str(name)):
                raise ValueError(f"role {name!r}: use lower-case letters, digits and '_'")
            for m in role.members:
                if m.startswith("@") and m[1:] not in self.groups:
                    raise ValueError(f"roles.{name}: group {m!r} is not defined under 'groups'")
        for name, members in self.groups.items():
            if not re.fullmatch(_ROLE, str(name)):
                raise ValueError(f"group {name!r}: use lower-case letters, digits and '_'")
            if not members:
                raise ValueError(f"group {name!r} lists no members")
        if legacy and self.required:
            object.__setattr__(
                self, "roles", {"approver": ApprovalRole(members=self.approvers or ["*"], required=self.required)}
            )
            object.__setattr__(self, "sign_off", "always")
        elif legacy and self.approvers:
            object.__setattr__(self, "roles", {"approver": ApprovalRole(members=self.approvers, required=0)})
        return self

    @property
    def count(self) -> int:
        """Approvals the roles ask for, in all."""
        return sum(r.required for r in self.roles.values())

    def describe(self) -> str:
        """``roles data_science 1, compliance 1; sign-off needs_approval; identity verified``."""
        roles = ", ".join(f"{name} {r.required}" for name, r in self.roles.items()) or "any one person"
        return f"roles {roles}; sign-off {self.sign_off}; identity {self.identity}"


class ScheduleSettings(Strict):
    environment: str = "prod"


def _default_steps() -> dict[str, dict[str, list[str]]]:
    build = ["contracts", "features", "train"]
    release = build + ["gate", "approval", "promote", "score", "report"]
    return {
        "dev": {"push": build + ["report"], "pull_request": build + ["report"]},
        "staging": {
            "pull_request": build + ["expectations", "report"],
            "push": build + ["expectations", "promote", "report"],
        },
        "prod": {"push": release, "release": release, "schedule": ["score", "surveillance", "report"]},
    }


class PromotionSettings(Strict):
    # a branch name, or "auto": the CI payload's / remote HEAD's default branch, else the fallback
    default_branch: str = "auto"
    fallback_default_branch: str = "main"
    environments: list[str] = Field(default_factory=lambda: ["dev", "staging", "prod"])
    prod_environment: str = "prod"
    pull_request_fallback: str = "staging"
    branch_rules: list[BranchRule]
    steps: dict[str, dict[EventKind, list[StepName]]] = Field(default_factory=_default_steps)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    gate: dict[str, GatePolicy] = Field(default_factory=dict)
    approvals: dict[str, ApprovalPolicy] = Field(default_factory=dict)

    @field_validator("steps", mode="before")
    @classmethod
    def _folded_steps(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for env, kinds in v.items():
                for kind, names in (kinds or {}).items() if isinstance(kinds, dict) else ():
                    for name in names or () if isinstance(names, list) else ():
                        if name in FOLDED_STEPS:
                            raise ValueError(
                                f"{env}.{kind}: step {name!r} is part of {FOLDED_STEPS[name]!r} now "
                                f"(it evaluates on the held-out rows and registers); remove it"
                            )
        return v

    @field_validator("branch_rules")
    @classmethod
    def _rules_nonempty(cls, v: list[BranchRule]) -> list[BranchRule]:
        if not v:
            raise ValueError("needs at least one rule (e.g. '- {pattern: \"**\", environment: dev}')")
        return v

    @field_validator("environments")
    @classmethod
    def _envs_ok(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one environment")
        if len(set(v)) != len(v):
            raise ValueError("lists an environment twice")
        for name in v:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
                raise ValueError(f"{name!r} is not a valid environment name")
        return v

    def policy(self, env: str) -> GatePolicy:
        return self.gate.get(env) or GatePolicy()

    def approval(self, env: str) -> ApprovalPolicy:
        return self.approvals.get(env) or ApprovalPolicy()


# --------------------------------------------------------------------------- ML sections


class FeatureMappings(Strict):
    """``feature_mappings.yml``: group name -> column names or glob patterns (``sdoh_food_*``).

    An exact name wins over a pattern; a column matched by patterns of two groups is an error.
    Columns that no group maps are not features.
    """

    groups: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, entries in v.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
                raise ValueError(f"group {name!r}: use lower-case letters, digits and '_'")
            if name == "default":
                raise ValueError("'default' is reserved (it names the fallback imputation)")
            if not entries:
                raise ValueError(f"group {name!r} lists no columns or patterns")
            if len(set(entries)) != len(entries):
                raise ValueError(f"group {name!r} lists an entry twice")
        return v


class Imputation(Strict):
    """How one feature group's missing values are filled (statistics computed in Spark)."""

    method: Literal["median", "mean", "constant", "most_frequent"] = "median"
    value: float | None = None  # for method: constant
    add_indicator: bool = False  # also add a 0/1 ``<column>__missing`` feature

    @model_validator(mode="after")
    def _value(self) -> "Imputation":
        if self.method == "constant" and self.value is None:
            raise ValueError("method 'constant' needs a numeric 'value'")
        if self.method != "constant" and self.value is not None:
            raise ValueError(f"'value' is only used with method 'constant', not {self.method!r}")
        return self


class FeatureSelection(Strict):
    """``feature_selection_config.yml``: which groups and features the model sees.

    ``include_groups`` empty means every mapped group. Single features are added with
    ``include_features`` and removed with ``exclude_features``. ``imputation`` maps a group
    (or ``default``) to its method. Names are checked against the mappings and the data when
    features are built: an unknown group or column is a config error.
    """

    include_groups: list[str] = Field(default_factory=list)
    exclude_groups: list[str] = Field(default_factory=list)
    include_features: list[str] = Field(default_factory=list)
    exclude_features: list[str] = Field(default_factory=list)
    imputation: dict[str, Imputation] = Field(default_factory=dict)
    max_categories: int = Field(20, ge=1, le=1000)  # one-hot levels kept for a text feature

    @model_validator(mode="after")
    def _no_overlap(self) -> "FeatureSelection":
        both = [g for g in self.include_groups if g in self.exclude_groups]
        if both:
            raise ValueError(f"group(s) both included and excluded: {', '.join(both)}")
        both = [f for f in self.include_features if f in self.exclude_features]
        if both:
            raise ValueError(f"feature(s) both included and excluded: {', '.join(both)}")
        return self


_SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "integer": "int",
    "long": "bigint",
    "bigint": "bigint",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "short": "smallint",
    "byte": "tinyint",
}
Scalar = str | int | float | bool


class ColumnContract(Strict):
    """Rules for one column (or every column a pattern matches)."""

    type: str | None = None  # string, int, long, double, float, boolean, date, timestamp
    nullable: bool = True
    max_null_fraction: float | None = Field(None, ge=0, le=1)
    unique: bool = False
    allowed: list[Scalar] | None = None
    min: float | str | None = None  # a number, or an ISO date for date columns
    max: float | str | None = None
    mean_min: float | None = None  # e.g. label prevalence bounds
    mean_max: float | None = None
    regex: str | None = None  # every non-null value must match (whole value)
    required: bool = True  # the column must exist
    min_columns: int = Field(1, ge=0)  # for patterns: at least this many columns must match

    @field_validator("type")
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        if v is not None and v not in _SPARK_TYPES:
            raise ValueError(f"unknown type {v!r} (known: {', '.join(sorted(_SPARK_TYPES))})")
        return v

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return v

    @property
    def spark_type(self) -> str | None:
        """The Spark ``simpleString`` of ``type`` (``long`` -> ``bigint``)."""
        return _SPARK_TYPES[self.type] if self.type else None


class RowCountContract(Strict):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class FreshnessContract(Strict):
    """The newest value of ``column`` (a date) must be at most ``max_age_days`` old, and not in the future."""

    column: str
    max_age_days: int = Field(ge=0)


class ForeignKey(Strict):
    column: str
    references: str  # "<table>.<column>"

    @field_validator("references")
    @classmethod
    def _ref(cls, v: str) -> str:
        if not re.fullmatch(r"[^.\s]+\.[^.\s]+", v):
            raise ValueError(f"must be '<table>.<column>', got {v!r}")
        return v


class TableContract(Strict):
    """The contract of one table: owner, schema, keys, values, volume and freshness."""

    owner: str
    description: str = ""
    primary_key: list[str] = Field(default_factory=list)
    row_count: RowCountContract = Field(default_factory=RowCountContract)
    freshness: FreshnessContract | None = None
    allow_extra_columns: bool = True
    columns: dict[str, ColumnContract] = Field(default_factory=dict)
    column_patterns: dict[str, ColumnContract] = Field(default_factory=dict)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)


class ContractsSettings(Strict):
    """``contracts.yml``: a version and one contract per source table (checked before training)."""

    version: str = "0"
    tables: dict[str, TableContract] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _refs(self) -> "ContractsSettings":
        problems: list[tuple[tuple[Any, ...], str]] = []
        for name, table in self.tables.items():
            for i, fk in enumerate(table.foreign_keys):
                ref_table, ref_col = fk.references.split(".", 1)
                if ref_table not in self.tables:
                    problems.append(
                        (
                            ("contracts", "tables", name, "foreign_keys", i, "references"),
                            f"unknown table {ref_table!r} (known: {', '.join(self.tables)})",
                        )
                    )
        if problems:
            raise _CrossRefError(problems)
        return self


# Hyperparameters the shipped pipelines understand, per algorithm: YAML name -> (Spark ML param, kind).
# Plain data here so config validation needs no Spark; pipelines/train.py maps them onto estimators.
HYPERPARAMS: dict[str, dict[str, tuple[str, str]]] = {
    "logistic_regression": {
        "reg_param": ("regParam", "float"),
        "elastic_net_param": ("elasticNetParam", "float"),
        "max_iter": ("maxIter", "int"),
        "tol": ("tol", "float"),
        "fit_intercept": ("fitIntercept", "bool"),
    },
    "gbt": {
        "max_depth": ("maxDepth", "int"),
        "max_iter": ("maxIter", "int"),
        "step_size": ("stepSize", "float"),
        "subsampling_rate": ("subsamplingRate", "float"),
        "min_instances_per_node": ("minInstancesPerNode", "int"),
        "min_info_gain": ("minInfoGain", "float"),
        "max_bins": ("maxBins", "int"),
        "feature_subset_strategy": ("featureSubsetStrategy", "str"),
    },
    "random_forest": {
        "num_trees": ("numTrees", "int"),
        "max_depth": ("maxDepth", "int"),
        "subsampling_rate": ("subsamplingRate", "float"),
        "min_instances_per_node": ("minInstancesPerNode", "int"),
        "min_info_gain": ("minInfoGain", "float"),
        "max_bins": ("maxBins", "int"),
        "feature_subset_strategy": ("featureSubsetStrategy", "str"),
        "bootstrap": ("bootstrap", "bool"),
    },
}
SEARCH_KINDS = ("uniform", "loguniform", "quniform", "randint", "choice")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_dim(param: str, kind: str, spec: Any) -> str | None:
    """Why one search dimension ``{kind: args}`` is wrong for a parameter of ``kind``; ``None`` if fine."""
    if isinstance(spec, dict) and len(spec) > 1 and set(spec) <= set(SEARCH_KINDS):
        return (
            f"has {len(spec)} distributions ({', '.join(spec)}); give exactly one. An environment "
            f"file merges into base key by key: to switch distribution there, set the base one "
            f"to null, e.g. {{{next(iter(spec))}: null, ...}}"
        )
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SEARCH_KINDS:
        return (
            f"must be one of {{uniform: [low, high]}}, {{loguniform: [low, high]}}, "
            f"{{quniform: [low, high, q]}}, {{randint: [low, high]}}, {{choice: [a, b, ...]}}, "
            f"got {spec!r}"
        )
    dist, args = next(iter(spec.items()))
    if not isinstance(args, list):
        return f"{dist} takes a list, got {args!r}"
    if dist == "choice":
        if not args:
            return "choice needs at least one value"
        for value in args:
            problem = _check_value(kind, value)
            if problem:
                return f"choice value {value!r}: {problem}"
        return None
    if kind in ("str", "bool"):
        return f"{param} takes {'text' if kind == 'str' else 'true/false'}: use {{choice: [...]}}, not {dist}"
    want = 3 if dist == "quniform" else 2
    if len(args) != want or not all(_is_number(a) for a in args):
        shape = "[low, high, q]" if dist == "quniform" else "[low, high]"
        return f"{dist} takes {want} numbers {shape}, got {args!r}"
    low, high = args[0], args[1]
    if low >= high:
        return f"{dist} needs low < high, got {args!r}"
    if dist == "quniform" and args[2] <= 0:
        return f"quniform needs a step q > 0, got {args[2]!r}"
    if dist == "randint" and not all(isinstance(a, int) for a in args):
        return f"randint takes whole numbers [low, high), got {args!r}"
    if kind == "int" and dist in ("uniform", "loguniform"):
        return f"{param} is a whole number: use quniform, randint or choice, not {dist}"
    return None


def _check_value(kind: str, value: Any) -> str | None:
    if kind == "float" and not _is_number(value):
        return "must be a number"
    if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        return "must be a whole number"
    if kind == "bool" and not isinstance(value, bool):
        return "must be true or false"
    if kind == "str" and not isinstance(value, str):
        return "must be text"
    return None


class EvaluationSettings(Strict):
    """``training.yml`` ``evaluation:``: how the held-out rows are scored."""

    top_k_percent: float = Field(5.0, gt=0, le=100)  # care-management outreach capacity
    ece_bins: int = Field(10, ge=2, le=1000)
    subgroups: list[str] | None = None  # None: project.data.subgroup_columns


class TrainingSettings(Strict):
    split_config: list[float] = Field(default_factory=lambda: [0.8, 0.2])
    split_salt: str = Field("promote-eval-v1", min_length=1)
    validation_fraction: float = Field(0.2, gt=0, lt=0.5)
    algorithm: Literal["logistic_regression", "gbt", "random_forest"] = "logistic_regression"
    scale_features: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, Any] = Field(default_factory=dict)
    search_metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    max_evals: int = Field(10, ge=1, le=10_000)
    startup_trials: int | None = Field(None, ge=1)
    early_stop_rounds: int | None = Field(None, ge=1)
    timeout_seconds: int | None = Field(None, ge=1)
    seed: int = 42
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)

    @field_validator("split_config")
    @classmethod
    def _split(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or any(x <= 0 for x in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError("must be two positive fractions that add up to 1, e.g. [0.8, 0.2]")
        return v

    @model_validator(mode="after")
    def _hyperparams(self) -> "TrainingSettings":
        known = HYPERPARAMS[self.algorithm]
        names = ", ".join(sorted(known))
        problems: list[tuple[tuple[Any, ...], str]] = []
        for name, value in self.params.items():
            if name not in known:
                problems.append(
                    (("training", "params", name), f"unknown parameter for {self.algorithm} (known: {names})")
                )
                continue
            problem = _check_value(known[name][1], value)
            if problem:
                problems.append((("training", "params", name), f"{problem}, got {value!r}"))
        for name, spec in self.search_space.items():
            if spec is None:  # an override drops a base parameter with `name: null`
                continue
            if isinstance(spec, dict):  # ... or a base distribution with `kind: null`
                spec = {k: v for k, v in spec.items() if v is not None}
            if name not in known:
                problems.append(
                    (
                        ("training", "search_space", name),
                        f"unknown parameter for {self.algorithm} (known: {names}); an environment "
                        f"file that switches algorithm drops it with '{name}: null'",
                    )
                )
                continue
            if name in self.params:
                problems.append(
                    (("training", "search_space", name), "is also fixed under 'params'; give it in one place")
                )
                continue
            problem = _check_dim(name, known[name][1], spec)
            if problem:
                key = next(iter(spec)) if isinstance(spec, dict) and len(spec) == 1 else None
                loc = ("training", "search_space", name) + ((key,) if key in SEARCH_KINDS else ())
                problems.append((loc, problem))
        if problems:
            raise _CrossRefError(problems)
        return self

    def space(self) -> dict[str, dict[str, list[Any]]]:
        """The search space with overrides applied: parameter -> {distribution: arguments}."""
        return {
            name: {k: v for k, v in spec.items() if v is not None}
            for name, spec in self.search_space.items()
            if spec is not None
        }

    def subgroups(self, data: "DataSettings") -> list[str]:
        """Subgroup columns to evaluate: ``evaluation.subgroups``, else the project's."""
        groups = self.evaluation.subgroups
        return list(data.subgroup_columns if groups is None else groups)

    def spark_params(self) -> dict[str, tuple[str, str]]:
        """YAML parameter name -> (Spark ML param name, kind) for the chosen algorithm."""
        return dict(HYPERPARAMS[self.algorithm])


# --------------------------------------------------------------------------- monitoring.yml

# What realised performance computes for a matured window (pipelines/outcomes.py): monitoring
# floors and ceilings must name one of them.
MONITORING_METRICS: tuple[str, ...] = (
    "n",
    "positives",
    "prevalence",
    "mean_score",
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "log_loss",
    "calibration_slope",
    "calibration_intercept",
    "precision_at_k",
    "recall_at_k",
)
DRIFT_METRICS: tuple[str, ...] = ("js_distance", "population_stability_index", "tv_distance", "wasserstein_distance")


class DriftSettings(Strict):
    """``drift:``: input-feature drift, per feature and for the dataset.

    A feature drifts when its test is significant after correcting for the number of features
    tested (``correction``) AND its effect (``metric``) exceeds ``threshold``; the dataset drifts
    when more than ``max_drifted_share`` of the tested features drift.
    """

    fine_bins: int = Field(100, ge=10, le=1000)  # histogram kept in the profile
    bins: int = Field(10, ge=2, le=100)  # bins the tests and distances use (merged from fine bins)
    max_levels: int = Field(20, ge=2, le=1000)  # categorical levels kept; the rest are "other"
    metric: Literal["js_distance", "population_stability_index", "tv_distance", "wasserstein_distance"] = "js_distance"
    threshold: float = Field(0.1, gt=0)
    alpha: float = Field(0.01, gt=0, lt=1)
    correction: Literal["bonferroni", "holm", "none"] = "bonferroni"
    max_drifted_share: float = Field(0.1, ge=0, lt=1)
    min_rows: int = Field(100, ge=1)
    top_features: int = Field(20, ge=1, le=1000)  # shown in the report and plot


class PredictionDriftSettings(Strict):
    """``prediction:``: the score distribution and the top tier's share per subgroup."""

    psi_threshold: float = Field(0.2, gt=0)
    tier_share_change: float = Field(0.1, gt=0, le=1)
    min_group_size: int = Field(50, ge=1)
    subgroups: list[str] = Field(default_factory=list)  # empty: project.yml data.subgroup_columns


class OutcomesSettings(Strict):
    """``outcomes:``: the table of observed labels, joined to past predictions by key and date."""

    path: str = Field(min_length=1)  # relative: under the model's lake folder
    format: Literal["delta", "parquet", "csv"] = "delta"
    key_column: str | None = None  # None: project.yml data.key_column
    date_column: str = "outcome_date"
    label_column: str = "label"
    label_delay_days: int = Field(ge=1, le=3650)
    floors: dict[str, float] = Field(default_factory=dict)
    ceilings: dict[str, float] = Field(default_factory=dict)
    small_group: int = Field(200, ge=1)  # groups smaller than this get bootstrap intervals
    resamples: int = Field(500, ge=50, le=100_000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _metrics(self) -> "OutcomesSettings":
        known = ", ".join(MONITORING_METRICS)
        problems = [
            (("monitoring", "outcomes", kind, name), f"unknown metric {name!r} (realised performance gives: {known})")
            for kind in ("floors", "ceilings")
            for name in getattr(self, kind)
            if name not in MONITORING_METRICS
        ]
        if problems:
            raise _CrossRefError(problems)
        return self


class GitHubAlerts(Strict):
    enabled: bool = False
    labels: list[str] = Field(default_factory=lambda: ["promote-monitoring"], min_length=1)


class AzureAlerts(Strict):
    enabled: bool = False
    work_item_type: str = "Issue"
    closed_state: str = "Done"
    area_path: str | None = None


class WebhookAlerts(Strict):
    url_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the variable holding the URL


class AlertSettings(Strict):
    """``alerts:``: where owners hear of a breach (a failing sink is a warning)."""

    github: GitHubAlerts = Field(default_factory=GitHubAlerts)
    azure: AzureAlerts = Field(default_factory=AzureAlerts)
    webhook: WebhookAlerts = Field(default_factory=WebhookAlerts)


class GitHubDispatch(Strict):
    enabled: bool = False
    workflow: str = Field("promote.yml", min_length=1)
    ref: str = Field("release", min_length=1)


class AzureDispatch(Strict):
    enabled: bool = False
    pipeline_id: int | None = Field(None, ge=1)
    ref: str = Field("release", min_length=1)

    @model_validator(mode="after")
    def _id(self) -> "AzureDispatch":
        if self.enabled and self.pipeline_id is None:
            raise ValueError("pipeline_id is required when enabled (the pipeline that retrains)")
        return self


class GitLabDispatch(Strict):
    enabled: bool = False
    ref: str = Field("release", min_length=1)
    token_env: str = Field("PROMOTE_GITLAB_TRIGGER_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class DispatchSettings(Strict):
    github: GitHubDispatch = Field(default_factory=GitHubDispatch)
    azure: AzureDispatch = Field(default_factory=AzureDispatch)
    gitlab: GitLabDispatch = Field(default_factory=GitLabDispatch)


class RetrainPolicy(Strict):
    """``retrain:``: when breaches ask for a retrain of the release branch (never a promotion).

    A request is made on a breached day when ``breached_windows`` of the last ``of_last``
    monitored days of the champion breached, or realised performance breached on each of the
    last ``performance_windows``; while one is pending (the champion has not changed and fewer
    than ``pending_days`` passed) no second request is made.
    """

    enabled: bool = True
    breached_windows: int = Field(2, ge=1)
    of_last: int = Field(5, ge=1)
    performance_windows: int = Field(3, ge=1)
    pending_days: int = Field(30, ge=1)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)

    @model_validator(mode="after")
    def _window(self) -> "RetrainPolicy":
        if self.breached_windows > self.of_last:
            raise _CrossRefError(
                [
                    (
                        ("monitoring", "retrain", "breached_windows"),
                        f"{self.breached_windows} breached windows can never happen in the last {self.of_last} "
                        "(of_last): make breached_windows <= of_last",
                    )
                ]
            )
        return self


class MonitoringSettings(Strict):
    """``monitoring.yml`` (optional): post-market surveillance of the champion (``promote monitor``)."""

    enabled: bool = True
    drift: DriftSettings = Field(default_factory=DriftSettings)
    prediction: PredictionDriftSettings = Field(default_factory=PredictionDriftSettings)
    outcomes: OutcomesSettings | None = None
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy)


# --------------------------------------------------------------------------- root


class ModelCard(Strict):
    """``model_card.yml``: what the team says the model is for, written once, shown in every evidence pack.

    The evidence pack of each prod decision opens with it (intended use, population, users,
    out-of-scope uses, limitations); ``social_determinant_groups`` names the feature groups of
    ``feature_mappings.yml`` that carry social-determinant inputs, so the pack names them as such.
    """

    title: str = ""
    summary: str = ""
    intended_use: str = ""
    population: str = ""
    intended_users: list[str] = Field(default_factory=list)
    out_of_scope_uses: list[str] = Field(default_factory=list)
    contraindications: list[str] = Field(default_factory=list)
    known_limitations: list[str] = Field(default_factory=list)
    risks_and_mitigations: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)
    data_sources: list[str] = Field(default_factory=list)
    social_determinant_groups: list[str] = Field(default_factory=list)
    outcome: str = ""
    clinical_action: str = ""

    @property
    def written(self) -> bool:
        """The team wrote one (an intended use at least)."""
        return bool(self.intended_use.strip())


class Settings(Strict):
    """Everything one command needs, for one environment."""

    project: ProjectSettings
    promotion: PromotionSettings
    feature_mappings: FeatureMappings = Field(default_factory=FeatureMappings)
    feature_selection: FeatureSelection = Field(default_factory=FeatureSelection)
    contracts: ContractsSettings = Field(default_factory=ContractsSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    model_card: ModelCard = Field(default_factory=ModelCard)

    # filled by the loader, not by YAML
    env: str | None = None
    config_hash: str = ""
    sources: tuple[str, ...] = ()
    # section -> key path -> (file, line, column), kept by the loader for config.locate()
    _positions: dict[str, dict[tuple[Any, ...], tuple[str, int, int]]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_refs(self) -> "Settings":
        p = self.promotion
        envs = set(p.environments)
        problems: list[tuple[tuple[Any, ...], str]] = []
        for i, rule in enumerate(p.branch_rules):
            if rule.environment not in envs:
                problems.append(
                    (
                        ("promotion", "branch_rules", i, "environment"),
                        f"unknown environment {rule.environment!r} (known: {', '.join(p.environments)})",
                    )
                )
        for key, loc in (
            ("prod_environment", p.prod_environment),
            ("pull_request_fallback", p.pull_request_fallback),
            ("schedule", p.schedule.environment),
        ):
            if loc not in envs:
                path = ("promotion", key) if key != "schedule" else ("promotion", "schedule", "environment")
                problems.append((path, f"unknown environment {loc!r} (known: {', '.join(p.environments)})"))
        if p.pull_request_fallback == p.prod_environment:
            problems.append(
                (
                    ("promotion", "pull_request_fallback"),
                    "must not be the prod environment: a pull request never runs in prod",
                )
            )
        for section in ("steps", "gate", "approvals"):
            for env in getattr(p, section):
                if env not in envs:
                    problems.append(
                        (
                            ("promotion", section, env),
                            f"unknown environment {env!r} (known: {', '.join(p.environments)})",
                        )
                    )
        problems += _cross_file(self)
        if problems:
            raise _CrossRefError(problems)
        return self

    def model_name_for(self, env: str) -> str:
        """The registered model for ``env``, e.g. ``<model_name>-staging``."""
        return self.project.registry.model_name_template.format(model=self.project.model_name, env=env)

    @property
    def policy(self) -> GatePolicy:
        if self.env is None:
            raise ValueError("settings were loaded without an environment")
        return self.promotion.policy(self.env)


def _listed(names: Any) -> str:
    return ", ".join(str(n) for n in names) or "none"


def _cross_file(s: "Settings") -> list[tuple[tuple[Any, ...], str]]:
    """Every column or name one file uses that another file defines, checked against it.

    Each problem is located at the key that names the column (in whichever file names it).
    Checks that need the data itself (a column missing from the actual table) run at the
    ``contracts`` step instead (``pipelines.contracts.check_config_columns``).
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    data = s.project.data
    subgroups = list(data.subgroup_columns)
    evaluated = s.training.subgroups(data)
    own = s.training.evaluation.subgroups

    # training.yml evaluation.subgroups: only columns gold keeps (project.yml data.subgroup_columns)
    for i, col in enumerate(own or ()):
        if col not in subgroups:
            problems.append(
                (
                    ("training", "evaluation", "subgroups", i),
                    f"{col!r} is not one of project.yml data.subgroup_columns ({_listed(subgroups)}); "
                    "gold keeps only those",
                )
            )

    # promotion.yml gate policies: metrics the evaluation produces, subgroups it measures
    metrics = ", ".join(EVALUATION_METRICS)
    where_groups = "training.yml evaluation.subgroups" if own is not None else "project.yml data.subgroup_columns"
    # loaded for one environment: only its policy applies (another environment's overlay may
    # change the subgroups); base only: every policy
    gates = s.promotion.gate if s.env is None else {k: v for k, v in s.promotion.gate.items() if k == s.env}
    for env, policy in gates.items():
        at = ("promotion", "gate", env)
        if policy.primary_metric not in EVALUATION_METRICS:
            problems.append(
                (
                    at + ("primary_metric",),
                    f"unknown metric {policy.primary_metric!r} (the evaluation gives: {metrics})",
                )
            )
        for kind in ("floors", "ceilings"):
            for metric in getattr(policy, kind):
                if metric not in EVALUATION_METRICS:
                    problems.append(
                        (at + (kind, metric), f"unknown metric {metric!r} (the evaluation gives: {metrics})")
                    )
        if policy.fairness.metric not in EVALUATION_METRICS:
            problems.append(
                (
                    at + ("fairness", "metric"),
                    f"unknown metric {policy.fairness.metric!r} (the evaluation gives: {metrics})",
                )
            )
        for i, col in enumerate(policy.fairness.subgroups):
            if col not in evaluated:
                problems.append(
                    (
                        at + ("fairness", "subgroups", i),
                        f"{col!r} is not a measured subgroup: not in {where_groups} ({_listed(evaluated)})",
                    )
                )

    # monitoring.yml: prediction-drift subgroups are columns gold keeps
    for i, col in enumerate(s.monitoring.prediction.subgroups):
        if col not in subgroups:
            problems.append(
                (
                    ("monitoring", "prediction", "subgroups", i),
                    f"{col!r} is not one of project.yml data.subgroup_columns ({_listed(subgroups)}); gold keeps only those",
                )
            )

    # feature_mappings.yml / feature_selection_config.yml: the project's special columns are never features
    reserved = {
        data.key_column: "the key column",
        data.id_column: "the id column",
        data.label_column: "the label column",
        data.snapshot_date_column: "the snapshot date column",
        **{c: "a subgroup column" for c in data.subgroup_columns},
        **{c: "a PHI column" for c in data.phi_columns},
    }
    groups = s.feature_mappings.groups
    for group, entries in groups.items():
        for i, entry in enumerate(entries):
            if entry in reserved:
                problems.append(
                    (
                        ("feature_mappings", "groups", group, i),
                        f"{entry!r} is {reserved[entry]} in project.yml data and can never be a feature",
                    )
                )
    sel = s.feature_selection
    for listname in ("include_features", "exclude_features"):
        for i, col in enumerate(getattr(sel, listname)):
            if col in reserved:
                problems.append(
                    (
                        ("feature_selection", listname, i),
                        f"{col!r} is {reserved[col]} in project.yml data and can never be a feature",
                    )
                )
    for listname in ("include_groups", "exclude_groups"):
        for i, group in enumerate(getattr(sel, listname)):
            if group not in groups:
                problems.append(
                    (
                        ("feature_selection", listname, i),
                        f"unknown group {group!r} (groups in feature_mappings.yml: {_listed(groups)})",
                    )
                )
    for group in sel.imputation:
        if group not in groups and group not in ("default", UNGROUPED):
            problems.append(
                (
                    ("feature_selection", "imputation", group),
                    f"unknown group {group!r} (groups in feature_mappings.yml: {_listed(groups)}, "
                    f"or 'default', or '{UNGROUPED}')",
                )
            )

    # contracts.yml: its tables are the source tables; closed contracts list every column there is
    tables = s.contracts.tables
    if data.source == "tables":
        for name in tables:
            if name not in data.tables:
                problems.append(
                    (
                        ("contracts", "tables", name),
                        f"no source table {name!r} in project.yml data.tables ({_listed(data.tables)})",
                    )
                )

    def closed(table: str) -> TableContract | None:
        contract = tables.get(table)
        return contract if contract is not None and not contract.allow_extra_columns else None

    def lists(contract: TableContract, col: str) -> bool:
        return col in contract.columns or any(fnmatch.fnmatchcase(col, pat) for pat in contract.column_patterns)

    def absent(table: str, named: dict[str, tuple[Any, ...]]) -> None:
        contract = closed(table)
        if contract is None:
            return
        for col, loc in named.items():
            if not lists(contract, col):
                problems.append(
                    (
                        ("project",) + loc,
                        f"{col!r} is not a column of table {table!r}: its contract in contracts.yml "
                        f"(allow_extra_columns: false) lists every column, and not this one",
                    )
                )

    absent(data.entity_table, data.named_columns())
    if data.events is not None:
        absent(data.events.table, data.event_columns())
    homes = [data.entity_table] + ([data.events.table] if data.events is not None else [])
    contracts_of_homes = [closed(t) for t in homes]
    if all(c is not None for c in contracts_of_homes):
        for i, col in enumerate(data.phi_columns):
            if not any(lists(c, col) for c in contracts_of_homes if c is not None):
                problems.append(
                    (
                        ("project", "data", "phi_columns", i),
                        f"{col!r} is in no table's contract in contracts.yml ({_listed(homes)} list every "
                        "column they have, with allow_extra_columns: false)",
                    )
                )
    return problems


class _CrossRefError(ValueError):
    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]):
        self.problems = problems
        super().__init__(problems[0][1])
