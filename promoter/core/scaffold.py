"""A new project from a table's profile, decided purely: propose column roles, size the gate, write configs.

``promote init`` profiles the table(s) in Spark (``pipelines.profile``) into the plain data of this
module (:class:`TableProfile`), then:

1. :func:`propose_roles` / :func:`propose_event_roles` guess the id, label, snapshot date, subgroup
   and event columns by name and shape, and :func:`phi_candidates` flags PHI by column name and by
   value patterns (the same patterns the PHI guard rejects). Guesses are only proposals: the user
   answers or confirms each one (:func:`check_role` says what is wrong with an answer).
2. :func:`size_gate` sizes the gate policy to the data (group sizes, limits that the evaluation rows
   can decide) and says, as warnings, which rules the data is too small for.
3. :func:`render` writes every config file as text, and :func:`validate` loads them through the
   real config loader for every environment, so a project that ``init`` writes always loads.

Nothing here reads files, the clock or the environment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from promoter.config import CONFIG_FILES, ConfigError, MappingSource, load

PROFILE_FORMAT = 1
LISTED_VALUES = 20
"""A column with at most this many distinct values gets an ``allowed`` list in its contract."""
SUBGROUP_MAX_LEVELS = 12
"""A subgroup column proposes itself with 2..this many levels; an answer may have up to 50."""
SUBGROUP_MAX_ANSWER = 50
TEXT_FEATURE_MAX_LEVELS = 50
"""A text column with more distinct values is free text or an identifier, not a feature."""
EVENT_KINDS_MAX = 12
EVAL_FRACTION = 0.2
"""The held-out share of rows (``training.yml`` ``split_config: [0.8, 0.2]``)."""
PAIRED_CORRELATION = 0.8
"""Assumed correlation of two retrained models' AUC estimates on the same rows (for sizing only)."""
SIZING_AUC = 0.75
"""The AUC at which standard errors are sized (Hanley and McNeil 1982)."""
TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
PROVIDERS = ("github", "azure", "gitlab")

# --------------------------------------------------------------------------- the profile (plain data)


@dataclass(frozen=True)
class ColumnProfile:
    """What one pass over the table found about one column.

    Attributes:
        name: the column name.
        type: Spark's ``simpleString`` of the type (``string``, ``int``, ``bigint``, ``double``,
            ``date``, ``timestamp``, ``boolean``, ``decimal(10,2)``, ...).
        nulls: rows where it is null.
        distinct: distinct non-null values (approximate, unless ``values`` is given: then exact).
        min, max: numbers, or ISO text for dates and timestamps; ``None`` for text.
        mean: numeric columns only.
        values: ``(value, rows)`` of every value, most frequent first, for low-cardinality columns
            (at most the profile's limit of distinct values); ``None`` otherwise.
        pattern_hits: for text columns, rows whose value looks like an SSN, a phone number or an
            e-mail address (the PHI guard's patterns), by pattern name.
        iso_dates: for text columns, rows whose value is an ISO date (``YYYY-MM-DD``...).
    """

    name: str
    type: str
    nulls: int = 0
    distinct: int = 0
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    values: tuple[tuple[Any, int], ...] | None = None
    pattern_hits: Mapping[str, int] = field(default_factory=dict)
    iso_dates: int = 0

    @property
    def kind(self) -> str:
        """``numeric``, ``boolean``, ``date``, ``text`` or ``other`` (arrays, maps, binary ...)."""
        t = self.type
        if t == "boolean":
            return "boolean"
        if t in ("tinyint", "smallint", "int", "bigint", "float", "double") or t.startswith("decimal"):
            return "numeric"
        if t in ("date", "timestamp", "timestamp_ntz"):
            return "date"
        if t == "string":
            return "text"
        return "other"

    @property
    def integral(self) -> bool:
        return self.type in ("tinyint", "smallint", "int", "bigint") or bool(
            re.fullmatch(r"decimal\(\d+,0\)", self.type)
        )

    def value_set(self) -> set[Any] | None:
        return None if self.values is None else {v for v, _ in self.values}


@dataclass(frozen=True)
class TableProfile:
    """A profiled source table: where it is, how it is read, its rows and columns."""

    name: str
    path: str
    format: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def non_null(self, col: ColumnProfile) -> int:
        return self.rows - col.nulls

    def date_like(self, col: ColumnProfile) -> bool:
        """A date or timestamp, or text whose every value is an ISO date."""
        return col.kind == "date" or (
            col.kind == "text" and self.non_null(col) > 0 and col.iso_dates == self.non_null(col)
        )


# --------------------------------------------------------------------------- names

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def tokens(name: str) -> list[str]:
    """``"dateOfBirth"`` -> ``["date", "of", "birth"]``; ``"lab_A1c"`` -> ``["lab", "a1c"]``."""
    return [t for t in re.split(r"[^a-z0-9]+", _CAMEL.sub("_", name).lower()) if t]


def _has(name: str, *phrases: str) -> bool:
    """True when ``name``'s tokens contain one of the phrases (each a run of tokens, ``"first name"``)."""
    toks = tokens(name)
    joined = " " + " ".join(toks) + " "
    squashed = "".join(toks)
    for phrase in phrases:
        if " " + phrase + " " in joined or (" " in phrase and phrase.replace(" ", "") == squashed):
            return True
    return False


def slug(text: str) -> str:
    """A lower-case name of letters, digits and ``_`` starting with a letter (``"E.R. visit"`` -> ``e_r_visit``)."""
    s = re.sub(r"[^0-9a-z]+", "_", _CAMEL.sub("_", str(text)).lower()).strip("_")
    if not s:
        return "x"
    return s if s[0].isalpha() else "x_" + s


# Name phrases of PHI (HIPAA's identifiers, as column names go); a hit is a flag for the user, not a verdict.
PHI_NAMES: dict[str, tuple[str, ...]] = {
    "a personal name": ("name", "surname", "firstname", "lastname", "fullname", "maiden", "initials"),
    "a social security or national id number": ("ssn", "social security", "national id", "tax id"),
    "a birth date": ("dob", "date of birth", "birth date", "birthdate", "birthday", "birth dt"),
    "an address": ("address", "addr", "street", "city", "zip", "zipcode", "postal", "postcode"),
    "a phone or fax number": ("phone", "telephone", "mobile", "fax"),
    "an e-mail address": ("email", "e mail"),
    "a record or account number": (
        "mrn",
        "medical record",
        "record number",
        "account number",
        "acct",
        "policy number",
        "license",
        "licence",
        "passport",
        "certificate number",
        "vin",
        "license plate",
    ),
    "a network or device identifier": ("ip address", "url", "device id", "mac address", "imei", "serial number"),
    "a photo or biometric": ("photo", "fingerprint", "biometric"),
}


def phi_candidates(table: TableProfile, id_column: str | None = None) -> dict[str, str]:
    """Columns that look like PHI -> why (by name, or by values that match the PHI guard's patterns).

    The id column is always PHI: silver replaces it by a keyed hash.

    Args:
        table: the profiled table.
        id_column: the table's id column, when known.

    Returns:
        Ordered as the table's columns.
    """
    out: dict[str, str] = {}
    for col in table.columns:
        if col.name == id_column:
            out[col.name] = "the id (silver replaces it by a keyed hash)"
            continue
        hits = {what: n for what, n in col.pattern_hits.items() if n}
        if hits:
            what, n = max(hits.items(), key=lambda kv: kv[1])
            out[col.name] = f"values: {n:,} of {table.non_null(col):,} look like {what}"
            continue
        for what, phrases in PHI_NAMES.items():
            if _has(col.name, *phrases):
                out[col.name] = f"name: looks like {what}"
                break
    return out


def flagged_by_values(table: TableProfile) -> set[str]:
    """Columns whose values match a PHI pattern: the PHI guard would stop a run on them in silver."""
    return {c.name for c in table.columns if any(c.pattern_hits.values())}


def birth_date_column(table: TableProfile, phi: Iterable[str]) -> str | None:
    """A date column flagged as a birth date: silver can turn it into an age and an age band."""
    phi = set(phi)
    for col in table.columns:
        if col.name in phi and table.date_like(col) and _has(col.name, *PHI_NAMES["a birth date"]):
            return col.name
    return None


# --------------------------------------------------------------------------- role proposals


@dataclass(frozen=True)
class Roles:
    """What ``init`` proposes the entity table's columns mean (every one may be ``None``/empty)."""

    id_column: str | None
    label_column: str | None
    snapshot_column: str | None
    subgroup_columns: tuple[str, ...]


_LABEL_NAMES = (
    "label",
    "target",
    "outcome",
    "y",
    "class",
    "response",
    "readmit",
    "readmitted",
    "readmission",
    "churn",
    "event",
)
_SNAPSHOT_NAMES = ("snapshot", "as of", "asof", "snapshot date", "index date", "run date", "observation date", "date")
_SUBGROUP_NAMES = (
    "sex",
    "gender",
    "race",
    "ethnicity",
    "ethnic",
    "age band",
    "age group",
    "agegroup",
    "region",
    "payer",
    "insurance",
    "language",
    "lang",
    "disability",
    "sexual orientation",
)


def is_binary(col: ColumnProfile) -> bool:
    """Holds only 0 and 1 (numbers) or true and false."""
    values = col.value_set()
    if values is None or not values:
        return False
    if col.kind == "boolean":
        return values <= {True, False}
    if col.kind == "numeric":
        return {float(v) for v in values} <= {0.0, 1.0} and len(values) == 2
    return False


def _id_like(table: TableProfile, col: ColumnProfile) -> bool:
    return (
        col.kind in ("text", "numeric")
        and (col.kind == "text" or col.integral)
        and col.nulls == 0
        and table.rows > 0
        and col.distinct >= 0.9 * table.rows
    )


def propose_roles(table: TableProfile) -> Roles:
    """Guess the id, label, snapshot date and subgroup columns from names and shapes.

    Args:
        table: the entity table's profile.

    Returns:
        The proposals; ``None`` where nothing fits well enough to propose.
    """
    ids = [c for c in table.columns if _id_like(table, c)]
    named = [c for c in ids if _has(c.name, "id", "key", "identifier", "number", "no")]
    id_col = max(named or ids, key=lambda c: c.distinct, default=None) if (named or ids) else None
    id_name = id_col.name if id_col else None

    phi = phi_candidates(table, id_name)
    binaries = [c for c in table.columns if is_binary(c) and c.name not in phi]
    label = next((c.name for c in binaries if _has(c.name, *_LABEL_NAMES)), None)
    if label is None and len(binaries) == 1:
        label = binaries[0].name

    dates = [c for c in table.columns if table.date_like(c) and c.name not in phi and c.nulls == 0]
    snap = next((c.name for c in dates if _has(c.name, *_SNAPSHOT_NAMES[:-1])), None)
    if snap is None and dates:
        snap = min(dates, key=lambda c: (c.distinct, not _has(c.name, "date"))).name

    taken = {id_name, label, snap}
    subgroups = tuple(
        c.name
        for c in table.columns
        if c.name not in taken
        and c.name not in phi
        and c.kind in ("text", "numeric", "boolean")
        and c.values is not None
        and 2 <= len(c.values) <= SUBGROUP_MAX_LEVELS
        and _has(c.name, *_SUBGROUP_NAMES)
    )
    return Roles(id_name, label, snap, subgroups)


@dataclass(frozen=True)
class EventRoles:
    """What ``init`` proposes the event table's columns mean."""

    id_column: str | None
    date_column: str | None
    type_column: str | None
    amount_column: str | None


def propose_event_roles(events: TableProfile, entity_id: str | None) -> EventRoles:
    """Guess the event table's id (joins the entity id), date, type and amount columns.

    Args:
        events: the event table's profile.
        entity_id: the entity table's id column (an event column of the same name is the join key).

    Returns:
        The proposals; ``None`` where nothing fits.
    """
    cols = events.columns
    id_col = entity_id if entity_id and events.column(entity_id) is not None else None
    if id_col is None and entity_id:
        id_col = next((c.name for c in cols if c.name.lower() == entity_id.lower()), None)
    dates = [c for c in cols if events.date_like(c)]
    date = next((c.name for c in dates if _has(c.name, "date", "time", "day", "when", "at")), None)
    date = date or (dates[0].name if dates else None)
    types = [
        c
        for c in cols
        if c.kind == "text" and c.values is not None and 2 <= len(c.values) and c.name not in (id_col, date)
    ]
    typ = next((c.name for c in types if _has(c.name, "type", "kind", "category", "class", "code", "setting")), None)
    typ = typ or (min(types, key=lambda c: len(c.values or ())).name if types else None)
    amounts = [c for c in cols if c.kind == "numeric" and not c.integral and c.name not in (id_col,)]
    amount = next(
        (c.name for c in amounts if _has(c.name, "amount", "amt", "paid", "cost", "charge", "price", "value")), None
    )
    return EventRoles(id_col, date, typ, amount)


def event_key(events: TableProfile, roles: EventRoles) -> str | None:
    """A column that looks like the event's own id (unique per row), for the contract's primary key."""
    for col in events.columns:
        if col.name in (roles.id_column, roles.date_column, roles.type_column, roles.amount_column):
            continue
        if _id_like(events, col) and _has(col.name, "id", "key", "number", "no"):
            return col.name
    return None


def check_role(table: TableProfile, role: str, value: str, *, derived: Iterable[str] = ()) -> str | None:
    """What is wrong with ``value`` as the table's ``role`` column, or ``None`` when it fits.

    Args:
        table: the profiled table.
        role: ``id``, ``label``, ``snapshot``, ``subgroup`` (entity table) or ``event_id``,
            ``event_date``, ``event_type``, ``event_amount`` (event table).
        value: the column name given.
        derived: columns silver derives (``age_band``), accepted as subgroups.

    Returns:
        One line saying why it does not fit.
    """
    if role == "subgroup" and value in set(derived):
        return None
    col = table.column(value)
    if col is None:
        return f"no column {value!r} in {table.name} ({_listing(table.names)})"
    if role in ("id", "event_id"):
        if col.kind not in ("text", "numeric") or (col.kind == "numeric" and not col.integral):
            return f"{value!r} is {col.type}; an id is text or a whole number"
        if role == "id" and col.nulls:
            return f"{value!r} has {col.nulls:,} missing value(s); every row needs an id"
    elif role == "label":
        if col.nulls:
            return f"{value!r} has {col.nulls:,} missing value(s); every row needs a 0/1 label"
        if not is_binary(col):
            seen = _listing([repr(v) for v, _ in (col.values or ())[:6]]) if col.values else f"{col.distinct:,} values"
            return f"{value!r} is not a 0/1 (or true/false) label with both classes ({seen})"
    elif role in ("snapshot", "event_date"):
        if not table.date_like(col):
            return f"{value!r} is {col.type}, not a date (a date, a timestamp or ISO text like 2024-06-30)"
        if role == "snapshot" and col.nulls:
            return f"{value!r} has {col.nulls:,} missing value(s); every row needs its as-of date"
    elif role == "subgroup":
        if col.kind not in ("text", "numeric", "boolean"):
            return f"{value!r} is {col.type}; a subgroup is a column of a few levels"
        levels = len(col.values) if col.values is not None else col.distinct
        if col.values is None or levels > SUBGROUP_MAX_ANSWER:
            return f"{value!r} has {levels:,}+ distinct values; a subgroup needs a few levels (at most {SUBGROUP_MAX_ANSWER})"
    elif role == "event_type":
        if col.kind != "text" or col.values is None:
            return f"{value!r} must be a text column of a few event types ({col.type}, {col.distinct:,} values)"
    elif role == "event_amount":
        if col.kind != "numeric":
            return f"{value!r} is {col.type}, not a number"
    else:  # pragma: no cover - callers pass known roles
        raise ValueError(role)
    return None


def _listing(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def key_column_name(id_column: str, taken: Iterable[str]) -> str:
    """The pseudonymous key's name: ``person_id`` -> ``person_key``, ``id`` -> ``id_key``."""
    base = re.sub(r"(?i)_?id$", "", id_column)
    reserved = set(taken) | {"score", "risk_tier", "rank", "model_name", "model_version", "run_id", "scored_at"}
    reserved |= {"score_date"}
    options = [f"{base}_key" if base else f"{id_column}_key", f"{id_column}_key", "pseudo_key"]
    options += [f"pseudo_key_{i}" for i in range(2, 100)]
    return next(o for o in options if o not in reserved and o != id_column)


# --------------------------------------------------------------------------- the answers


@dataclass(frozen=True)
class EventAnswers:
    """The event table, named and explained."""

    table: str
    id_column: str
    date_column: str
    type_column: str
    amount_column: str | None = None
    primary_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answers:
    """Everything ``init`` asked for or took from flags; with the profile it decides the project.

    Attributes:
        name: the project's name (``project.yml`` ``name``).
        model_name: the registered models' stem (``<model_name>-<env>``).
        entity_table: the entity table's name in config.
        id_column, label_column, snapshot_column: the entity table's roles.
        subgroup_columns: kept in gold for fairness metrics; never features.
        phi_columns: confirmed PHI (never leaves bronze).
        primary_key: the entity table's key, as the uniqueness check found it (may be empty).
        events: the event table, when there is one.
        owner: the data owner named in the contracts.
        provider: the CI provider whose file is written (``None``: none).
        version: the ``promote`` version the project pins.
    """

    name: str
    model_name: str
    entity_table: str
    id_column: str
    label_column: str
    snapshot_column: str
    subgroup_columns: tuple[str, ...] = ()
    phi_columns: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    events: EventAnswers | None = None
    owner: str = "unassigned"
    provider: str | None = None
    version: str = "0"
    config_dir: str = "configs"
    project_dir: str = ""
    release_branches: tuple[str, ...] = ("release", "release/*")

    @property
    def readme_path(self) -> str:
        """The project's README: beside its configs (``configs/README.md``, ``models/<name>/README.md``)."""
        return f"{self.project_dir}/README.md" if self.project_dir else f"{self.config_dir}/README.md"


def layout(name: str, in_models: bool) -> tuple[str, str, tuple[str, ...]]:
    """(project folder, config folder, release branch patterns) of a project, relative to the repository.

    The repository's root project lives in ``configs/`` and releases from ``release`` or
    ``release/<version>``; every other project lives in ``models/<name>/`` and releases from
    ``release/<name>/<version>``, so no two projects claim one release branch.
    """
    if in_models:
        return f"models/{name}", f"models/{name}/configs", (f"release/{name}", f"release/{name}/*")
    return "", "configs", ("release", "release/*")


# --------------------------------------------------------------------------- sizing the gate


def auc_standard_error(positives: float, negatives: float, auc: float = SIZING_AUC) -> float:
    """Hanley and McNeil's standard error of an AUC estimate from ``positives`` and ``negatives``."""
    if positives < 1 or negatives < 1:
        return math.inf
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return math.sqrt(max(var, 0.0))


def _ceil_to(x: float, step: float) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 6)


def _floor_to(x: float, step: float) -> float:
    return round(math.floor(x / step + 1e-9) * step, 6)


@dataclass(frozen=True)
class GateSizing:
    """The data-dependent numbers of the gate policy, and what the data is too small to decide."""

    eval_rows: int
    eval_positives: int
    prevalence: float
    min_group_size: int
    fairness_subgroups: tuple[str, ...]
    max_gap: float
    max_regression: float
    detectable_gain: float
    ece_ceiling: float
    ece_bins: int
    warnings: tuple[str, ...]


def size_gate(
    rows: int,
    prevalence: float,
    subgroup_counts: Mapping[str, Mapping[Any, int] | None],
    eval_fraction: float = EVAL_FRACTION,
) -> GateSizing:
    """Size the fairness and significance rules to the evaluation rows the data will have.

    Args:
        rows: entity rows (one per id and snapshot).
        prevalence: the label's share of 1s.
        subgroup_counts: subgroup column -> rows per level (``None``: not known before silver,
            e.g. a derived age band).
        eval_fraction: the held-out share.

    Returns:
        The sizing; ``warnings`` name every rule the data is too small to decide.
    """
    warnings: list[str] = []
    n_eval = int(rows * eval_fraction)
    p = min(max(prevalence, 0.0), 1.0)
    pos, neg = n_eval * p, n_eval * (1 - p)
    q = max(min(p, 1 - p), 1e-6)
    # a group counts for fairness when it can expect 10 of each class
    min_group = int(max(30, _ceil_to(10 / q, 10)))
    se_all = auc_standard_error(pos, neg)
    paired = math.sqrt(2 * (1 - PAIRED_CORRELATION))
    detectable = 1.96 * se_all * paired if math.isfinite(se_all) else math.inf
    if n_eval < 200 or pos < 20 or neg < 20:
        warnings.append(
            f"only ~{n_eval:,} evaluation rows (~{pos:.0f} positives): too few for the gate's significance and "
            f"fairness rules to decide; every later release will need a person's approval (marginal: approval)"
        )
    elif detectable > 0.02:
        warnings.append(
            f"with ~{n_eval:,} evaluation rows (~{pos:.0f} positives) the significance rule can only confirm "
            f"roc_auc gains above ~{detectable:.3f}; smaller gains go to a person (marginal: approval)"
        )
    fair: list[str] = []
    smallest: list[float] = []
    for column, counts in subgroup_counts.items():
        if counts is None:
            warnings.append(
                f"fairness by {column!r}: its group sizes are not known before silver; it is evaluated and "
                f"reported, not gated (add it to gate.prod.fairness.subgroups once the groups are known)"
            )
            continue
        expected = sorted((c * eval_fraction for c in counts.values()), reverse=True)
        eligible = [c for c in expected if c >= min_group]
        if len(eligible) < 2:
            warnings.append(
                f"fairness by {column!r}: only {len(eligible)} group(s) can expect {min_group}+ evaluation rows "
                f"(~{n_eval:,} in all); too few to measure a gap, so it is reported, not gated"
            )
            continue
        fair.append(column)
        smallest += eligible[-2:]
    max_gap, max_regression = 0.10, 0.02
    if fair:
        a, b = sorted(smallest)[:2]
        se_a = auc_standard_error(a * p, a * (1 - p))
        se_b = auc_standard_error(b * p, b * (1 - p))
        gap_noise = 1.96 * math.sqrt(se_a**2 + se_b**2)
        max_gap = max(0.10, _ceil_to(gap_noise, 0.05))
        max_regression = max(0.02, _ceil_to(1.96 * se_a * paired, 0.01))
        if max_gap > 0.15:
            warnings.append(
                f"the smallest gated subgroups expect ~{a:.0f} evaluation rows: the fairness gap rule is set to "
                f"{max_gap:.2f}, the smallest gap these groups can tell from noise"
            )
    bins = 10 if n_eval >= 1000 else 5
    sigma = math.sqrt(p * (1 - p) / max(n_eval / bins, 1.0))
    ece = max(0.05, _ceil_to(2.5 * 0.8 * sigma, 0.01))
    return GateSizing(
        eval_rows=n_eval,
        eval_positives=int(round(pos)),
        prevalence=p,
        min_group_size=min_group,
        fairness_subgroups=tuple(fair),
        max_gap=max_gap,
        max_regression=max_regression,
        detectable_gain=detectable,
        ece_ceiling=ece,
        ece_bins=bins,
        warnings=tuple(warnings),
    )


def prevalence(table: TableProfile, label: str) -> float:
    """The label's share of 1s (from the profile's value counts)."""
    col = table.column(label)
    if col is None or col.values is None:
        return 0.0
    total = sum(n for _, n in col.values) or 1
    return sum(n for v, n in col.values if v in (1, True) or v == 1.0) / total


# --------------------------------------------------------------------------- the files


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` writes (relative path -> text), what it found, and what it warns about."""

    files: dict[str, str]
    findings: tuple[str, ...]
    warnings: tuple[str, ...]
    sizing: GateSizing
    feature_groups: dict[str, list[str]]


class _Dumper(yaml.SafeDumper):
    """Block style at the top and for nested sections; flow style for short leaf collections
    (``{type: string, nullable: false}``, ``[a, b]``); never anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _leaf(v: Any) -> bool:
    return _scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v))


class _Top(dict):
    """The root mapping of a file: always block style."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = not isinstance(data, _Top) and all(_leaf(v) for v in data.values()) and len(repr(data)) <= 90
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=all(_scalar(x) for x in data))


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(_Top, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def _dump(data: Mapping[str, Any]) -> str:
    return yaml.dump(_Top(data), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)


def _doc(*parts: str | Mapping[str, Any]) -> str:
    """A YAML file from comment blocks (text) and mappings (dumped in order)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append("".join(f"# {line}".rstrip() + "\n" for line in part.strip("\n").splitlines()))
        else:
            out.append(_dump(part))
    return "".join(out)


def _number(x: float, integral: bool) -> float | int:
    if integral:
        return int(x)
    return float(f"{x:.4g}")


def _range(col: ColumnProfile) -> dict[str, Any]:
    """Observed min/max widened by a tenth of the range (non-negative data stays non-negative)."""
    lo, hi = col.min, col.max
    if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)) or isinstance(lo, bool):
        return {}
    span = float(hi) - float(lo)
    margin = span * 0.1 if span > 0 else max(abs(float(hi)) * 0.1, 1.0)
    low = float(lo) - margin
    if float(lo) >= 0:
        low = max(0.0, low)
    high = float(hi) + margin
    if col.integral:
        low, high = math.floor(low), math.ceil(high)
    else:
        low, high = _sig_floor(low), _sig_ceil(high)
    return {"min": _number(low, col.integral), "max": _number(high, col.integral)}


def _sig_floor(x: float) -> float:
    if x == 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(abs(x))) - 2)
    return _floor_to(x, step)


def _sig_ceil(x: float) -> float:
    if x == 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(abs(x))) - 2)
    return _ceil_to(x, step)


_CONTRACT_TYPES = {
    "string": "string",
    "int": "int",
    "bigint": "long",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "smallint": "short",
    "tinyint": "byte",
}


def column_contract(table: TableProfile, col: ColumnProfile, *, phi: bool, role: str | None = None) -> dict[str, Any]:
    """The contract rules of one column, from what the profile saw.

    PHI columns get their type and nulls only: their values never reach a config file.
    """
    rule: dict[str, Any] = {}
    if col.type in _CONTRACT_TYPES:
        rule["type"] = _CONTRACT_TYPES[col.type]
    frac = col.nulls / table.rows if table.rows else 0.0
    if col.nulls == 0:
        rule["nullable"] = False
    else:
        rule["max_null_fraction"] = min(1.0, _ceil_to(frac * 1.5 + 0.01, 0.01))
    if phi:
        return rule
    listed = col.values is not None and len(col.values) <= LISTED_VALUES and len(col.values) < max(table.rows, 2)
    if role == "label":
        rule["allowed"] = [True, False] if col.kind == "boolean" else [0, 1]
        p = prevalence(table, col.name)
        rule["mean_min"] = _floor_to(p * 0.5, 0.001)
        rule["mean_max"] = min(1.0, _ceil_to(p * 1.5 + 0.01, 0.001))
        if col.kind == "boolean":
            rule.pop("mean_min")
            rule.pop("mean_max")
        return rule
    if role == "snapshot" or table.date_like(col):
        if col.kind == "date" and isinstance(col.min, str):
            rule["min"] = f"{max(1900, int(col.min[:4]) - 1):04d}-01-01"
        return rule
    if listed and (col.kind == "text" or (col.integral and len(col.values or ()) <= 2)) and role != "id":
        rule["allowed"] = [v for v, _ in sorted(col.values or (), key=lambda vn: str(vn[0]))]
    elif col.kind == "numeric":
        rule.update(_range(col))
    return rule


def _feature_groups(
    table: TableProfile, reserved: set[str], extra_numeric: list[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """Feature groups by name prefix (two or more columns share it), then by type; and the skipped columns."""
    skipped: list[str] = []
    candidates: list[ColumnProfile] = []
    for col in table.columns:
        if col.name in reserved:
            continue
        if col.kind == "other":
            skipped.append(f"{col.name} ({col.type}: not a usable feature type)")
        elif col.distinct <= 1 and col.values is not None and len(col.values) <= 1:
            skipped.append(f"{col.name} (one value only)")
        elif col.kind == "text" and (col.values is None or col.distinct > TEXT_FEATURE_MAX_LEVELS):
            skipped.append(f"{col.name} (text with {col.distinct:,}+ distinct values: free text or an identifier)")
        elif col.kind == "numeric" and col.integral and _id_like(table, col) and _has(col.name, "id", "key"):
            skipped.append(f"{col.name} (a whole number unique per row: an identifier)")
        else:
            candidates.append(col)
    by_prefix: dict[str, list[ColumnProfile]] = {}
    for col in candidates:
        toks = col.name.split("_", 1)
        if len(toks) == 2 and toks[0] and toks[1]:
            by_prefix.setdefault(toks[0], []).append(col)
    groups: dict[str, list[str]] = {}
    placed: set[str] = set()
    cand_names = {c.name for c in candidates}
    for prefix, cols in by_prefix.items():
        if len(cols) < 2:
            continue
        name = slug(prefix)
        if name in ("default", "ungrouped") or name in groups:
            name = f"{name}_group"
        everyone = [c for c in table.names if c.startswith(prefix + "_")]
        glob_safe = not any(ch in prefix for ch in "*?[]")
        if glob_safe and all(c in cand_names for c in everyone):
            groups[name] = [f"{prefix}_*"]
        else:
            groups[name] = [c.name for c in cols]
        placed |= {c.name for c in cols}
    by_type: dict[str, list[str]] = {"numeric": [], "categorical": [], "dates": []}
    for col in candidates:
        if col.name in placed:
            continue
        kind = {"numeric": "numeric", "boolean": "numeric", "text": "categorical", "date": "dates"}[col.kind]
        by_type[kind].append(col.name)
    by_type["numeric"] += extra_numeric
    for kind, names in by_type.items():
        if names:
            name = kind if kind not in groups else f"{kind}_columns"
            groups[name] = names
    return groups, skipped


def _windows(events: TableProfile, date_column: str, snapshot_max: str | None) -> tuple[list[int], int]:
    """Event windows that the event history covers, and the look-back."""
    col = events.column(date_column)
    span = None
    if col is not None and isinstance(col.min, str) and snapshot_max:
        span = _days_between(col.min[:10], snapshot_max[:10])
    if span is None or span <= 0:
        return [30, 90, 180, 365], 730
    windows = [w for w in (30, 90, 180, 365) if w <= span] or [max(1, min(30, span))]
    return windows, max(max(windows), min(730, span + 1))


def _days_between(a: str, b: str) -> int | None:
    """Days from ISO date ``a`` to ``b`` (proleptic Gregorian, no clock)."""
    try:
        ya, ma, da = (int(x) for x in a.split("-"))
        yb, mb, db = (int(x) for x in b.split("-"))
    except ValueError:
        return None

    def ordinal(y: int, m: int, d: int) -> int:  # days since 0000-03-01, Howard Hinnant's algorithm
        y -= m <= 2
        era = y // 400
        yoe = y - era * 400
        doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        return era * 146097 + doe

    return ordinal(yb, mb, db) - ordinal(ya, ma, da)


def _event_kinds(events: TableProfile, type_column: str) -> tuple[dict[str, list[str]], list[str]]:
    col = events.column(type_column)
    kinds: dict[str, list[str]] = {}
    left: list[str] = []
    for value, _ in col.values or ():
        if value is None:
            continue
        if len(kinds) >= EVENT_KINDS_MAX:
            left.append(str(value))
            continue
        kinds.setdefault(slug(str(value)), []).append(str(value))
    return kinds, left


def _age_bands(table: TableProfile, dob: str, snapshot: str) -> list[int]:
    """Ten-year age bands inside the ages the data holds (at least one edge)."""
    b, s = table.column(dob), table.column(snapshot)
    lo, hi = 0, 100
    if b is not None and s is not None and isinstance(b.min, str) and isinstance(b.max, str) and isinstance(s.max, str):
        young = _days_between(b.max[:10], s.max[:10])
        old = _days_between(b.min[:10], s.max[:10])
        if young is not None and old is not None:
            lo, hi = max(0, young // 365), max(1, old // 365)
    edges = [a for a in range(10, 101, 10) if lo < a <= hi]
    if len(edges) > 6:
        edges = [a for a in range(20, 101, 15) if lo < a <= hi] or edges[:6]
    return edges or [max(lo + 1, 18)]


def render(entity: TableProfile, events: TableProfile | None, answers: Answers) -> Scaffold:
    """Every config file of the new project, the project README, what was found and the warnings.

    Args:
        entity: the entity table's profile.
        events: the event table's profile, or ``None``.
        answers: the confirmed roles, PHI columns and names.

    Returns:
        The scaffold; ``files`` maps paths relative to the project folder (``configs/base/...``,
        ``README.md``) to text. :func:`validate` loads them.
    """
    a = answers
    base = f"{a.config_dir}/base"
    phi = list(dict.fromkeys([*a.phi_columns]))
    if a.id_column not in phi:
        phi.insert(0, a.id_column)
    dob = birth_date_column(entity, phi)
    derived: list[str] = []
    age_bands: list[int] = []
    if dob is not None:
        age_bands = _age_bands(entity, dob, a.snapshot_column)
        derived = ["age_years"]
    key = key_column_name(a.id_column, entity.names)
    p = prevalence(entity, a.label_column)
    derived_subgroups = {"age_band"} if dob else set()
    counts = {s: (None if s in derived_subgroups else dict(entity.column(s).values or ())) for s in a.subgroup_columns}
    sizing = size_gate(entity.rows, p, counts)
    warnings = list(sizing.warnings)
    findings: list[str] = []

    reserved = {a.id_column, a.label_column, a.snapshot_column, key, *a.subgroup_columns, *phi}
    groups, skipped = _feature_groups(entity, reserved, derived)
    ev_prefix = None
    if a.events is not None:
        ev_prefix = next(
            pf for pf in ("ev_", "evt_", "events_", "ev2_") if not any(n.startswith(pf) for n in entity.names)
        )
        groups["events"] = [f"{ev_prefix}*"]
    if not groups:
        raise ConfigError(
            f"{entity.name}: no column can be a feature (every column is a role, PHI or unusable"
            f"{': ' + '; '.join(skipped[:3]) if skipped else ''})"
        )
    findings.append(
        f"{entity.name}: {entity.rows:,} rows, {len(entity.columns)} columns; label {a.label_column!r} "
        f"prevalence {p:.3f}; ~{sizing.eval_rows:,} evaluation rows (~{sizing.eval_positives:,} positives)"
    )
    for g, entries in groups.items():
        findings.append(f"feature group {g}: {', '.join(entries)}")
    for s in skipped:
        findings.append(f"not a feature: {s}")
    if entity.rows < 1000:
        warnings.append(f"{entity.name} has only {entity.rows:,} rows: metrics and the gate will be noisy")
    if not a.primary_key:
        warnings.append(
            f"{entity.name}: ({a.id_column}, {a.snapshot_column}) repeats; no primary key in the contract "
            f"(silver keeps one row per id and snapshot)"
        )

    # ---------------------------------------------------------------- contracts.yml
    roles = {a.id_column: "id", a.label_column: "label", a.snapshot_column: "snapshot"}
    ent_cols = {c.name: column_contract(entity, c, phi=c.name in phi, role=roles.get(c.name)) for c in entity.columns}
    tables: dict[str, Any] = {
        a.entity_table: {
            "owner": a.owner,
            "description": f"One row per {a.id_column} and {a.snapshot_column}, with the label (bronze; may hold PHI).",
            **({"primary_key": list(a.primary_key)} if a.primary_key else {}),
            "row_count": {"min": max(1, entity.rows // 2)},
            "allow_extra_columns": False,
            "columns": ent_cols,
        }
    }
    if a.events is not None and events is not None:
        e = a.events
        ev_roles = {e.id_column: "id"}
        tables[e.table] = {
            "owner": a.owner,
            "description": f"Events of each {a.id_column} (one row per event).",
            **({"primary_key": list(e.primary_key)} if e.primary_key else {}),
            "row_count": {"min": max(1, events.rows // 2)},
            "allow_extra_columns": False,
            "foreign_keys": [{"column": e.id_column, "references": f"{a.entity_table}.{a.id_column}"}],
            "columns": {
                c.name: column_contract(
                    events, c, phi=c.name in phi or c.name == e.id_column, role=ev_roles.get(c.name)
                )
                for c in events.columns
            },
        }
    contracts = _doc(
        f"Data contracts of {a.name}, proposed by `promote init` from the data as it was profiled;\n"
        "checked before anything trains (`promote data check`; the `contracts` step). Review them:\n"
        "ranges are the observed ones widened by a tenth, null fractions the observed ones with a margin.\n"
        "PHI columns carry their type and nulls only: their values never appear in config.\n"
        "Freshness (add when the data is refreshed on a schedule):\n"
        f"  freshness: {{column: {a.snapshot_column}, max_age_days: 45}}",
        {"version": "1", "tables": tables},
    )

    # ---------------------------------------------------------------- project.yml
    def source(t: TableProfile) -> dict[str, Any]:
        out: dict[str, Any] = {"path": t.path, "format": t.format}
        if t.options:
            out["options"] = dict(t.options)
        return out

    data: dict[str, Any] = {
        "source": "tables",
        "entity_table": a.entity_table,
        "tables": {a.entity_table: source(entity)},
        "id_column": a.id_column,
        "key_column": key,
        "pseudonym_key_env": "PROMOTE_PSEUDONYM_KEY",
        "label_column": a.label_column,
        "snapshot_date_column": a.snapshot_column,
        "subgroup_columns": list(a.subgroup_columns),
        "phi_columns": phi,
    }
    if dob is not None:
        data["derive"] = {
            "age_from": dob,
            "age_column": "age_years",
            "age_band_column": "age_band",
            "age_bands": age_bands,
        }
    if a.events is not None and events is not None:
        e = a.events
        data["tables"][e.table] = source(events)
        snap = entity.column(a.snapshot_column)
        windows, lookback = _windows(events, e.date_column, snap.max if snap and isinstance(snap.max, str) else None)
        kinds, left = _event_kinds(events, e.type_column)
        if left:
            findings.append(
                f"event types beyond the first {EVENT_KINDS_MAX} count only in the totals: {', '.join(left)}"
            )
        data["events"] = {
            "table": e.table,
            "id_column": e.id_column,
            "date_column": e.date_column,
            "type_column": e.type_column,
            **({"amount_column": e.amount_column} if e.amount_column else {}),
            "prefix": ev_prefix,
            "kinds": kinds,
            "windows_days": windows,
            "lookback_days": lookback,
        }
        findings.append(
            f"{e.table}: {events.rows:,} events; features per kind ({', '.join(kinds)}) over {windows} days"
        )
    top_n = max(1, min(500, entity.rows // 20))
    project = _doc(
        f"The {a.name} project, written by `promote init` (promote {a.version}). Per-environment\n"
        "overrides live in ../<env>/project.yml.",
        {
            "name": a.name,
            "description": f"{a.name}: predicts {a.label_column} per {a.id_column}.",
            "model_name": a.model_name,
        },
        f"Registered models: {a.model_name}-dev, {a.model_name}-staging, {a.model_name}-prod.",
        {"registry": {"model_name_template": "{model}-{env}", "use_stages": False}},
        "Embedded default: MLflow on SQLite. Point at a server with ${MLFLOW_TRACKING_URI}.",
        {
            "tracking_uri": "${MLFLOW_TRACKING_URI:-sqlite:///.promote/mlflow.db}",
            "experiment": "/promote/{model}-{env}",
            "lake_root": "${PROMOTE_LAKE_ROOT:-.promote/lake}",
            "spark": {
                "master": "local[*]",
                "app_name": "promote",
                "driver_memory_fraction": 0.5,
                "config": {
                    "spark.sql.shuffle.partitions": 8,
                    "spark.ui.enabled": False,
                    "spark.sql.session.timeZone": "UTC",
                },
            },
        },
        "Batch scoring: risk tiers (shares of the scored rows, highest risk first) and the outreach list.",
        {
            "scoring": {
                "tiering": "capacity",
                "tiers": [{"name": "high", "percent": 5}, {"name": "medium", "percent": 15}, {"name": "low"}],
                "top_n": top_n,
                "predictions_table": "predictions/scores",
                "outreach_table": "predictions/outreach_list",
            }
        },
        "The data. The id column is replaced in silver by key_column = HMAC-SHA256(id, key); set\n"
        "PROMOTE_PSEUDONYM_KEY to a secret (unset: a development key, with a warning).\n"
        "phi_columns never leave bronze: init flagged them by name and by value; confirm the list.",
        {"data": data},
    )

    # ---------------------------------------------------------------- promotion.yml
    release = ["contracts", "features", "train", "gate", "approval", "promote", "score", "report"]
    pr_auc_floor = max(0.01, _floor_to(p * 1.2, 0.01))
    brier_ceiling = _ceil_to(p * (1 - p), 0.001)
    promotion = _doc(
        "How branches map to environments, what each event runs, and how the gate decides; written by\n"
        f"`promote init` and sized to {entity.rows:,} rows (~{sizing.eval_rows:,} held out, prevalence {p:.3f}).",
        {
            "default_branch": "auto",
            "fallback_default_branch": "main",
            "environments": ["dev", "staging", "prod"],
            "prod_environment": "prod",
            "pull_request_fallback": "staging",
        },
        "Ordered; the first rule that matches the branch wins ('*' stays within one path segment).",
        {
            "branch_rules": [
                *({"pattern": pattern, "environment": "prod"} for pattern in a.release_branches),
                {"default_branch": True, "environment": "staging"},
                {"pattern": "**", "environment": "dev"},
            ],
            "steps": {
                "dev": {
                    "push": ["contracts", "features", "train", "report"],
                    "pull_request": ["contracts", "features", "train", "report"],
                },
                "staging": {
                    "pull_request": ["contracts", "features", "train", "expectations", "report"],
                    "push": ["contracts", "features", "train", "expectations", "promote", "report"],
                },
                "prod": {"push": release, "release": release, "schedule": ["score", "surveillance", "report"]},
            },
            "schedule": {"environment": "prod"},
        },
        "Floors are placeholders to review with the model's owners. Ceilings: brier below always\n"
        f"predicting the prevalence ({p * (1 - p):.3f}); ece what ~{sizing.eval_rows:,} rows can measure.\n"
        f"min_group_size: groups that can expect 10 of each class; max_gap: the gap the smallest gated\n"
        f"groups can tell from noise.",
        {
            "gate": {
                "dev": {"mode": "dry_run", "floors": {"roc_auc": 0.55}},
                "staging": {
                    "mode": "enforce",
                    "primary_metric": "roc_auc",
                    "floors": {"roc_auc": 0.60},
                    "ceilings": {"brier": min(0.25, _ceil_to(p * (1 - p) + 0.01, 0.01))},
                },
                "prod": {
                    "mode": "enforce",
                    "primary_metric": "roc_auc",
                    "direction": "maximize",
                    "min_absolute_improvement": 0.005,
                    "min_relative_improvement": 0.0,
                    "floors": {"roc_auc": 0.65, "pr_auc": pr_auc_floor},
                    "ceilings": {"brier": brier_ceiling, "ece": sizing.ece_ceiling},
                    "significance": {"enabled": True, "confidence": 0.95, "resamples": 500, "seed": 20240601},
                    "fairness": {
                        "subgroups": list(sizing.fairness_subgroups),
                        "metric": "roc_auc",
                        "max_gap": sizing.max_gap,
                        "max_regression": sizing.max_regression,
                        "min_group_size": sizing.min_group_size,
                    },
                    "phi_check": True,
                    "marginal": "approval",
                },
            }
        },
        "Sign-off by role in prod, recorded with each gate decision. Replace '*' (any identity a platform\n"
        "verified: the CI job's actor or the tracking server's user) with the people or '@groups' who\n"
        "sign off; add roles (clinical_safety, compliance, ...). Set change_ticket.required: true to\n"
        "refuse prod promotions without a change ticket.",
        {
            "approvals": {
                "prod": {
                    "identity": "verified",
                    "sign_off": "needs_approval",
                    "roles": {"data_science": {"members": ["*"], "required": 1}},
                    "change_ticket": {"required": False, "pattern": "[A-Z][A-Z0-9]+-[0-9]+"},
                }
            }
        },
    )

    # ---------------------------------------------------------------- features
    mappings = _doc(
        "Column name or glob pattern -> feature group, proposed by `promote init` (by name prefix, then\n"
        "by type). The key, label, snapshot date, subgroup and PHI columns can never be features.",
        {"groups": groups},
    )
    imputation: dict[str, Any] = {"default": {"method": "median"}}
    for g, entries in groups.items():
        if g == "events":
            continue
        cols = [c for c in entity.columns if any(_matches(c.name, e) for e in entries)]
        if any(entity.rows and c.nulls / entity.rows >= 0.05 for c in cols if c.kind != "text"):
            imputation[g] = {"method": "median", "add_indicator": True}
    selection = _doc(
        "Which feature groups the model sees, and how each is imputed (median | mean | constant with value |\n"
        "most_frequent; add_indicator adds a 0/1 <column>__missing feature).",
        {
            "include_groups": list(groups),
            "exclude_groups": [],
            "include_features": [],
            "exclude_features": [],
            "imputation": imputation,
            "max_categories": 20,
        },
    )

    # ---------------------------------------------------------------- training.yml
    training = _doc(
        "How the model is trained and tuned. The split hashes the pseudonymous key (and split_salt): the same\n"
        "rows are held out in every run and environment; the gate compares candidate and champion on them.",
        {
            "split_config": [0.8, 0.2],
            "split_salt": "promote-eval-v1",
            "validation_fraction": 0.2,
            "algorithm": "logistic_regression",
            "scale_features": True,
            "params": {"max_iter": 100},
            "search_space": {"reg_param": {"loguniform": [-9, -2]}, "elastic_net_param": {"uniform": [0.0, 0.3]}},
            "search_metric": "roc_auc",
            "max_evals": 6,
            "early_stop_rounds": 3,
            "timeout_seconds": 600,
            "seed": 42,
            "evaluation": {"top_k_percent": 5.0, "ece_bins": sizing.ece_bins},
        },
    )
    files = {
        f"{base}/project.yml": project,
        f"{base}/promotion.yml": promotion,
        f"{base}/contracts.yml": contracts,
        f"{base}/feature_mappings.yml": mappings,
        f"{base}/feature_selection_config.yml": selection,
        f"{base}/training.yml": training,
        f"{base}/model_card.yml": _doc(
            "The model card: what this model is for and what it is not. Every prod evidence pack (one per\n"
            "gate decision, approval and rollback) opens with it; fill it in before the first release.",
            {
                "title": a.name,
                "summary": "",
                "intended_use": "",
                "population": "",
                "outcome": f"label `{a.label_column}`",
                "clinical_action": "",
                "intended_users": [],
                "out_of_scope_uses": [],
                "contraindications": [],
                "known_limitations": [],
                "risks_and_mitigations": [],
                "owners": [],
                "data_sources": [entity.path],
                "social_determinant_groups": [g for g in groups if re.match(r"(sdoh|social)", g)],
            },
        ),
        f"{a.config_dir}/dev/training.yml": _doc(
            "Dev runs are quick checks of the code: a short tuning run.", {"max_evals": 2}
        ),
        f"{a.config_dir}/prod/training.yml": _doc("Prod retrains with a longer tuning run.", {"max_evals": 8}),
    }
    for col in a.subgroup_columns + (a.label_column, a.snapshot_column):
        why = phi_candidates(entity, a.id_column).get(col)
        if why:
            warnings.append(f"{col!r} looked like PHI ({why}) but is named as a role: check it is not PHI")
    files[a.readme_path] = readme(a, entity, events, sizing, phi, warnings)
    return Scaffold(files, tuple(findings), tuple(warnings), sizing, groups)


def _matches(name: str, entry: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, entry)


def readme(
    a: Answers,
    entity: TableProfile,
    events: TableProfile | None,
    sizing: GateSizing,
    phi: list[str],
    warnings: list[str],
) -> str:
    """The project's short README: what it is, what to review, the commands."""
    cfg = f" --project {a.name}" if a.project_dir else ""
    release = a.release_branches[-1].replace("*", "1.0")
    lines = [
        f"# {a.name}",
        "",
        f"A model project delivered with `promote` {a.version} (written by `promote init`): branches are",
        "environments. Feature branches train in dev, pull requests into main are validated in staging,",
        f"a merge makes the staging champion, and a `{a.release_branches[-1]}` branch gates the candidate against the",
        "prod champion, promotes it when the gate passes, and scores the population.",
        "",
        "## Data",
        "",
        f"- `{a.entity_table}`: `{entity.path}` ({entity.format}), {entity.rows:,} rows when profiled",
    ]
    if events is not None and a.events is not None:
        lines.append(f"- `{a.events.table}`: `{events.path}` ({events.format}), {events.rows:,} events")
    lines += [
        f"- id `{a.id_column}` (pseudonymised in silver), label `{a.label_column}`, snapshot date "
        f"`{a.snapshot_column}`, subgroups {', '.join(f'`{s}`' for s in a.subgroup_columns) or 'none'}",
        "",
        "## Review before the first release",
        "",
        f"- **PHI** (`{a.config_dir}/base/project.yml` `data.phi_columns`): "
        + (", ".join(f"`{c}`" for c in phi))
        + ". `init` flagged them by name and by value; they never leave bronze. Add any it missed.",
        "- **Contracts** (`contracts.yml`): the observed ranges, widened; set the owner and add freshness.",
        "- **Gate floors** (`promotion.yml`): placeholders; agree them with the model's owners. Sign-off:",
        "  `approvals.prod.roles` (who signs off, by role) and `change_ticket`.",
        "- **Model card** (`model_card.yml`): intended use, population, users, out-of-scope uses; every prod",
        "  evidence pack opens with it.",
        f"- The gate is sized to ~{sizing.eval_rows:,} evaluation rows: fairness groups need "
        f"{sizing.min_group_size}+ rows.",
    ]
    if warnings:
        lines += ["", "Warnings when the project was written:", ""] + [f"- {w}" for w in warnings]
    lines += [
        "",
        "## Commands",
        "",
        "```",
        f"pip install 'promote=={a.version}'",
        f"promote{cfg} plan                       # what an event would run (changes nothing)",
        f"promote{cfg} data check                 # the data contracts",
        f"promote{cfg} replay push feature/x      # a local dev run",
        f"promote{cfg} replay pull-request --from feature/x --into main",
        f"promote{cfg} replay push main           # the staging champion",
        f"promote{cfg} replay push {release}    # a prod release: gate, promote, score",
        "```",
        "",
    ]
    return "\n".join(lines)


def validate(files: Mapping[str, str], config_dir: str = "configs", label: str | None = None) -> None:
    """Load the written configs through the real loader, base and every environment.

    Args:
        files: relative path -> text, as :func:`render` gives them.
        config_dir: the folder (within ``files``) that holds ``base/`` and the environments.
        label: how to name the folder in a message.

    Raises:
        ConfigError: naming file, key and line when a file does not load.
    """
    prefix = config_dir.rstrip("/") + "/"
    inner = {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix) and k.endswith(".yml")}
    unknown = [k for k in inner if k.split("/")[-1] not in CONFIG_FILES]
    if unknown:  # pragma: no cover - render writes known names only
        raise ConfigError(f"unknown config file(s): {', '.join(unknown)}")
    source = MappingSource(inner, label=label or config_dir)
    settings = load(source, None, environ={})
    for env in settings.promotion.environments:
        load(source, env, environ={})


__all__ = [
    "Answers",
    "ColumnProfile",
    "EventAnswers",
    "EventRoles",
    "GateSizing",
    "Roles",
    "Scaffold",
    "TableProfile",
    "check_role",
    "event_key",
    "key_column_name",
    "phi_candidates",
    "propose_event_roles",
    "propose_roles",
    "render",
    "size_gate",
    "validate",
]
