"""Data contracts (``contracts.yml``), checked in Spark before anything trains.

Per table: owner, schema (names, types, nullability, unexpected columns), uniqueness of
keys, allowed values, numeric/date ranges, mean bounds (e.g. label prevalence), regular
expressions, maximum null fraction, row-count bounds, referential integrity and freshness.

Spark passes per table: one aggregation computes every value rule at once; each unique key
adds one narrow pass over the key columns; each foreign key one narrow anti-join. The
report lists **every** violation (table, column, rule, observed, limit) as text, markdown or
JSON; :func:`enforce` turns a failed report into exit code 2. Values of PHI columns are
never shown, only counts.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import sqltext
from promoter.errors import DataContractError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import ColumnContract, ContractsSettings, Settings, TableContract

log = logging.getLogger("promote.contracts")

# Every rule name a violation can carry.
RULES = (
    "table_exists",
    "row_count_min",
    "row_count_max",
    "column_missing",
    "column_type",
    "unexpected_column",
    "pattern_columns",
    "not_null",
    "max_null_fraction",
    "unique",
    "primary_key",
    "allowed_values",
    "min",
    "max",
    "mean_min",
    "mean_max",
    "regex",
    "foreign_key",
    "freshness",
    "freshness_future",
)


@dataclass(frozen=True)
class Violation:
    """One broken rule: where, which rule, what was seen and what the contract allows."""

    table: str
    column: str | None
    rule: str
    observed: Any
    limit: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    def __str__(self) -> str:
        return f"{self.where}: {self.rule}: observed {_show(self.observed)}, limit {_show(self.limit)}"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


@dataclass
class TableResult:
    owner: str
    rows: int | None
    location: str
    checked_rules: int = 0


@dataclass
class ContractReport:
    """The outcome of checking every contract: ``ok`` when nothing is violated."""

    version: str
    checked_at: str
    tables: dict[str, TableResult] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "checked_at": self.checked_at,
            "ok": self.ok,
            "tables": {name: asdict(t) for name, t in self.tables.items()},
            "violations": [v.to_dict() for v in self.violations],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def to_text(self) -> str:
        head = (
            f"data contracts v{self.version}: {len(self.tables)} table(s), "
            f"{'all rules hold' if self.ok else f'{len(self.violations)} violation(s)'}"
        )
        lines = [head]
        for name, t in self.tables.items():
            n = sum(1 for v in self.violations if v.table == name)
            rows = "missing" if t.rows is None else f"{t.rows:,} rows"
            lines.append(
                f"  {name} (owner {t.owner}, {rows}, {t.checked_rules} rules): "
                + ("ok" if n == 0 else f"{n} violation(s)")
            )
            for v in self.violations:
                if v.table == name:
                    lines.append(f"    {v.where}: {v.rule}: observed {_show(v.observed)}; limit {_show(v.limit)}")
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        verdict = "all rules hold" if self.ok else f"**{len(self.violations)} violation(s)**"
        out = [
            f"### Data contracts v{self.version}: {verdict}",
            "",
            "| table | owner | rows | rules | violations |",
            "|---|---|---:|---:|---:|",
        ]
        for name, t in self.tables.items():
            n = sum(1 for v in self.violations if v.table == name)
            out.append(
                f"| {name} | {_md(t.owner)} | {'missing' if t.rows is None else f'{t.rows:,}'} | "
                f"{t.checked_rules} | {n} |"
            )
        if self.violations:
            out += ["", "| table | column | rule | observed | limit |", "|---|---|---|---|---|"]
            for v in self.violations:
                out.append(
                    f"| {v.table} | {_md(v.column or '')} | {v.rule} | {_md(_show(v.observed))} | "
                    f"{_md(_show(v.limit))} |"
                )
        return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def enforce(report: ContractReport) -> None:
    """Stop the run when any contract is broken.

    Raises:
        DataContractError: (exit 2) listing every violation, one per line.
    """
    if report.ok:
        return
    lines = "\n  ".join(str(v) for v in report.violations)
    raise DataContractError(
        f"{len(report.violations)} data contract violation(s) (contracts v{report.version}); "
        f"nothing was trained:\n  {lines}"
    )


# --------------------------------------------------------------------------- checking


def check(spark: "SparkSession", settings: "Settings", today: date | None = None) -> ContractReport:
    """Check every table in ``contracts.yml`` against its source table.

    Args:
        spark: the session.
        settings: loaded settings (``contracts``, the source tables of ``project.data``).
        today: the date freshness is measured against (default: today, UTC).

    Returns:
        The report (``.ok``, ``.violations``, ``.to_text()``, ``.to_markdown()``, ``.to_json()``).

    Raises:
        ConfigError: (exit 2, naming the config file, line and key) when a contract, the entity
            table or the event table is not a source table, or a column the config names (id,
            label, snapshot date, subgroups, PHI, event columns) is not in the table it names;
            nothing is checked or written then.
    """
    from pipelines import lake
    from promoter import config

    sources = lake.source_tables(settings)
    problems = config_table_problems(settings, sources)
    if problems:
        raise config.errors_at(settings, problems)
    today = today or datetime.now(UTC).date()
    key = _pass_key(settings, sources, today)
    passed = _load_pass(settings, key) if key is not None else None
    if passed is not None:
        return passed
    frames: dict[str, DataFrame | None] = {}
    locations: dict[str, str] = {}
    for name in settings.contracts.tables:
        locations[name] = sources[name].path
        try:
            frames[name] = lake.read_table(spark, name, sources[name])
        except DataContractError:
            frames[name] = None
    check_config_columns(spark, settings, frames)
    data = settings.project.data
    phi = [*data.phi_columns, data.id_column]
    report = check_frames(frames, settings.contracts, today=today, phi_columns=phi, locations=locations)
    if key is not None and report.ok:
        _save_pass(settings, key, report)
    return report


def check_config_columns(
    spark: "SparkSession", settings: "Settings", frames: "dict[str, DataFrame | None] | None" = None
) -> None:
    """Stop when a table the config names, or a column it names, is not in the data (schemas only).

    :func:`check` calls it first; a project whose contracts step is its own code can call it too.

    Args:
        spark: the session.
        settings: loaded settings (their key positions name the file and line).
        frames: tables already read (name -> DataFrame, ``None`` when missing); others are read here.

    Raises:
        ConfigError: one line per problem, ``file:line:col: key: message`` of the key naming it.
    """
    from pipelines import lake
    from promoter import config

    sources = lake.source_tables(settings)
    problems = config_table_problems(settings, sources)
    if problems:
        raise config.errors_at(settings, problems)
    frames = frames or {}
    data = settings.project.data
    columns: dict[str, list[str] | None] = {}
    for name in [data.entity_table] + ([data.events.table] if data.events is not None else []):
        frame = frames.get(name)
        if frame is None and name not in frames:
            try:
                frame = lake.read_table(spark, name, sources[name])
            except DataContractError:
                frame = None  # a missing table is the features step's (or the report's) to name
        columns[name] = None if frame is None else list(frame.columns)
    problems = config_column_problems(settings, columns)
    if problems:
        raise config.errors_at(settings, problems)


def config_table_problems(settings: "Settings", sources: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """The tables the config names that are not source tables (pure; ``(config key, message)`` pairs).

    Args:
        settings: loaded settings.
        sources: the source tables (``pipelines.lake.source_tables``).
    """
    data = settings.project.data
    known = ", ".join(sources) or "none"
    out: list[tuple[tuple[Any, ...], str]] = []
    if data.entity_table not in sources:
        out.append((("project", "data", "entity_table"), f"{data.entity_table!r} is not a source table ({known})"))
    if data.events is not None and data.events.table not in sources:
        out.append((("project", "data", "events", "table"), f"{data.events.table!r} is not a source table ({known})"))
    for name in settings.contracts.tables:
        if name not in sources:
            out.append((("contracts", "tables", name), f"no source table {name!r} (source tables: {known})"))
    return out


def config_column_problems(
    settings: "Settings", columns: dict[str, list[str] | None]
) -> list[tuple[tuple[Any, ...], str]]:
    """The columns the config names that the data lacks (pure; ``(config key, message)`` pairs).

    The entity table must have the id, label and snapshot date columns, the subgroup columns
    (except those ``derive`` makes) and the columns ``derive`` reads; the event table its id,
    date, type and amount columns; every PHI column must be in one of the two. Each problem is
    located at the key of ``project.yml`` that names the column.

    Args:
        settings: loaded settings.
        columns: table name -> its columns (``None``: not readable, not checked).
    """
    data = settings.project.data
    out: list[tuple[tuple[Any, ...], str]] = []

    def missing(table: str, named: dict[str, tuple[Any, ...]], what: str) -> None:
        have = columns.get(table)
        if have is None:
            return
        for col, loc in named.items():
            if col not in have:
                out.append((("project",) + loc, f"column {col!r} is not in the {what} {table!r}{_near(col, have)}"))

    missing(data.entity_table, data.named_columns(), "entity table")
    if data.events is not None:
        missing(data.events.table, data.event_columns(), "event table")
    readable = [t for t in [data.entity_table] + ([data.events.table] if data.events else []) if columns.get(t)]
    if readable:
        present = {c for t in readable for c in columns[t] or []}
        for i, col in enumerate(data.phi_columns):
            if col not in present:
                out.append(
                    (
                        ("project", "data", "phi_columns", i),
                        f"PHI column {col!r} is in none of the tables ({', '.join(readable)}){_near(col, present)}",
                    )
                )
    return out


def _near(name: str, names: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


_PASS_FILE = "_checks/contracts_passed.json"


def _pass_key(settings: "Settings", sources: dict[str, Any], today: date) -> str | None:
    """Identifies the very same check: the same source files (name, size, mtime), contracts,
    PHI columns and code, on the same day (freshness). ``None`` when the tables are not local."""
    import sys

    from pipelines import lake

    data = settings.project.data
    names = [*settings.contracts.tables, data.entity_table, *([data.events.table] if data.events else [])]
    tables = {n: sources[n] for n in names if n in sources}
    parts = [
        settings.contracts.model_dump(),
        data.phi_columns,
        data.id_column,
        # the columns the config names are checked against the same files
        sorted(data.named_columns()),
        sorted(data.event_columns()),
        data.entity_table,
        data.events.table if data.events else None,
        today.isoformat(),
    ]
    return lake.inputs_key(tables, parts, [sys.modules[__name__]])


def _pass_file(settings: "Settings") -> Path | None:
    from pipelines import lake

    root = lake.root(settings)
    return None if "://" in root else Path(root) / _PASS_FILE


def _load_pass(settings: "Settings", key: str) -> "ContractReport | None":
    """The passing report saved under ``key``, if the last passing check had that key."""
    path = _pass_file(settings)
    try:
        saved = json.loads(path.read_text()) if path is not None else {}
    except (OSError, ValueError):
        return None
    r = saved.get("report")
    if saved.get("key") != key or not isinstance(r, dict):
        return None
    return ContractReport(
        version=r["version"], checked_at=r["checked_at"], tables={n: TableResult(**t) for n, t in r["tables"].items()}
    )


def _save_pass(settings: "Settings", key: str, report: ContractReport) -> None:
    path = _pass_file(settings)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "report": report.to_dict()}, default=str))
    os.replace(tmp, path)


def check_frames(
    frames: dict[str, "DataFrame | None"],
    contracts: "ContractsSettings",
    today: date | None = None,
    phi_columns: list[str] | None = None,
    locations: dict[str, str] | None = None,
) -> ContractReport:
    """Check DataFrames against contracts (``None`` = the table is missing).

    Args:
        frames: table name -> DataFrame, for every table in ``contracts``.
        contracts: the ``contracts.yml`` settings.
        today: the date freshness is measured against (default: today, UTC).
        phi_columns: columns whose values must never appear in the report.
        locations: table name -> where it was read from (shown in the report).

    Returns:
        The report with every violation.
    """
    today = today or datetime.now(UTC).date()
    phi = {c.lower() for c in (phi_columns or [])}
    report = ContractReport(version=contracts.version, checked_at=datetime.now(UTC).isoformat(timespec="seconds"))
    for name, contract in contracts.tables.items():
        df = frames.get(name)
        result = TableResult(owner=contract.owner, rows=None, location=(locations or {}).get(name, ""))
        report.tables[name] = result
        if df is None:
            report.violations.append(Violation(name, None, "table_exists", "missing", "must exist"))
            continue
        violations, rows, n_rules = _check_table(name, df, contract, today, phi)
        result.rows, result.checked_rules = rows, n_rules
        report.violations.extend(violations)
    for name, contract in contracts.tables.items():
        df = frames.get(name)
        for fk in contract.foreign_keys:
            ref_table, ref_col = fk.references.split(".", 1)
            ref = frames.get(ref_table)
            report.tables[name].checked_rules += 1
            if df is None or ref is None or fk.column not in df.columns or ref_col not in ref.columns:
                if df is not None and ref is not None:
                    missing = fk.column if fk.column not in df.columns else fk.references
                    report.violations.append(
                        Violation(
                            name, fk.column, "foreign_key", f"column {missing} missing", f"references {fk.references}"
                        )
                    )
                continue
            t0 = time.perf_counter()
            orphans = _orphans(df, fk.column, ref, ref_col)
            log.info("%s: foreign key %s -> %s: %.1fs", name, fk.column, fk.references, time.perf_counter() - t0)
            if orphans:
                report.violations.append(
                    Violation(
                        name,
                        fk.column,
                        "foreign_key",
                        f"{orphans} row(s) with no match",
                        f"every value in {fk.references}",
                    )
                )
    return report


def _orphans(child: "DataFrame", col: str, parent: "DataFrame", ref_col: str) -> int:
    """Rows of ``child`` whose non-null ``col`` has no ``ref_col`` in ``parent`` (one anti-join)."""
    from pyspark.sql import functions as F

    keys = parent.select(F.col(f"`{ref_col}`").alias("__ref")).distinct()
    return (
        child.select(F.col(f"`{col}`").alias("__fk"))
        .where(F.col("__fk").isNotNull())
        .join(keys, F.col("__fk") == F.col("__ref"), "left_anti")
        .count()
    )


def _duplicates(df: "DataFrame", keys: list[str]) -> int:
    """Key values that occur more than once (one narrow aggregation over the key columns)."""
    from pyspark.sql import functions as F

    return df.groupBy(*[F.col(f"`{k}`") for k in keys]).count().where(F.col("count") > 1).count()


def _rules_for(df: "DataFrame", contract: "TableContract") -> dict[str, "ColumnContract"]:
    """Column -> its rules: an exact entry wins over patterns; the first matching pattern applies."""
    rules: dict[str, ColumnContract] = {}
    for col in df.columns:
        if col in contract.columns:
            rules[col] = contract.columns[col]
            continue
        for pattern, rule in contract.column_patterns.items():
            if fnmatch.fnmatchcase(col, pattern):
                rules[col] = rule
                break
    return rules


def _check_table(
    name: str, df: "DataFrame", contract: "TableContract", today: date, phi: set[str]
) -> tuple[list[Violation], int, int]:

    out: list[Violation] = []
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    n_rules = 0
    # schema: no Spark job
    for col, rule in contract.columns.items():
        if col not in types:
            n_rules += 1
            if rule.required:
                out.append(Violation(name, col, "column_missing", "absent", "required"))
    for pattern, rule in contract.column_patterns.items():
        n_rules += 1
        matched = [c for c in types if fnmatch.fnmatchcase(c, pattern)]
        if len(matched) < rule.min_columns:
            out.append(
                Violation(
                    name, pattern, "pattern_columns", f"{len(matched)} column(s) match", f"at least {rule.min_columns}"
                )
            )
    if not contract.allow_extra_columns:
        n_rules += 1
        for col in types:
            if col not in contract.columns and not any(fnmatch.fnmatchcase(col, p) for p in contract.column_patterns):
                out.append(Violation(name, col, "unexpected_column", types[col], "not in the contract"))
    rules = _rules_for(df, contract)
    checkable: dict[str, ColumnContract] = {}
    for col, rule in rules.items():
        if rule.spark_type:
            n_rules += 1
            if types[col] != rule.spark_type:
                out.append(Violation(name, col, "column_type", types[col], rule.spark_type))
                continue  # values of a mistyped column are not compared
        checkable[col] = rule
    for k in contract.primary_key:
        if k not in types and k not in contract.columns:
            out.append(Violation(name, k, "column_missing", "absent", "primary key column"))

    # values: one aggregation for the whole table, written as SQL text (one JVM call for every
    # rule, see pipelines.sqltext)
    exprs = ["count(1) AS __rows"]
    checks: list[tuple[str, str, Any, str]] = []  # (alias, column, limit, rule)

    def add(expr: str, col: str, rule: str, limit: Any) -> None:
        alias = f"c{len(checks)}"
        exprs.append(f"{expr} AS {alias}")
        checks.append((alias, col, limit, rule))

    for col, rule in checkable.items():
        c = sqltext.name(col)
        is_date = types[col] in ("date", "timestamp", "timestamp_ntz")
        if not rule.nullable or rule.max_null_fraction is not None:
            add(f"sum(CAST({c} IS NULL AS BIGINT))", col, "nulls", rule)
        if rule.allowed is not None:
            allowed = ", ".join(sqltext.literal(v) for v in rule.allowed)
            add(
                f"sum(CAST({c} IS NOT NULL AND NOT ({c} IN ({allowed})) AS BIGINT))",
                col,
                "allowed_values",
                rule.allowed,
            )
        for bound in ("min", "max"):
            limit = getattr(rule, bound)
            if limit is None:
                continue
            add(f"CAST({bound}({c}) AS {'STRING' if is_date else 'DOUBLE'})", col, bound, limit)
        if rule.mean_min is not None or rule.mean_max is not None:
            add(f"avg(CAST({c} AS DOUBLE))", col, "mean", rule)
        if rule.regex is not None:
            pattern = sqltext.literal(f"^(?:{rule.regex})$")
            add(
                f"sum(CAST({c} IS NOT NULL AND NOT (CAST({c} AS STRING) RLIKE {pattern}) AS BIGINT))",
                col,
                "regex",
                rule.regex,
            )
    if contract.freshness is not None:
        n_rules += 1
        fcol = contract.freshness.column
        if fcol in types:
            add(
                f"CAST(max(to_date({sqltext.name(fcol)})) AS STRING)",
                fcol,
                "freshness",
                contract.freshness.max_age_days,
            )
        else:
            out.append(Violation(name, fcol, "column_missing", "absent", "freshness column"))
    t0 = time.perf_counter()
    row = df.selectExpr(*exprs).first()
    log.info("%s: one aggregation, %d expressions: %.1fs", name, len(exprs), time.perf_counter() - t0)
    rows = int(row["__rows"])
    n_rules += len(checks)

    rc = contract.row_count
    if rc.min is not None:
        n_rules += 1
        if rows < rc.min:
            out.append(Violation(name, None, "row_count_min", rows, rc.min))
    if rc.max is not None:
        n_rules += 1
        if rows > rc.max:
            out.append(Violation(name, None, "row_count_max", rows, rc.max))

    # an example of a value outside the allowed set, only for the (rare) columns that have one
    bad_allowed = [
        col for alias, col, _, kind in checks if kind == "allowed_values" and row[alias] and col.lower() not in phi
    ]
    examples = _examples(df, {col: checkable[col].allowed for col in bad_allowed}) if bad_allowed else {}
    for alias, col, limit, kind in checks:
        value = row[alias]
        if kind == "nulls":
            rule = limit
            nulls = int(value or 0)
            if not rule.nullable and nulls:
                out.append(Violation(name, col, "not_null", f"{nulls} null(s)", "no nulls"))
            if rule.max_null_fraction is not None and rows:
                frac = nulls / rows
                if frac > rule.max_null_fraction:
                    out.append(Violation(name, col, "max_null_fraction", round(frac, 6), rule.max_null_fraction))
        elif kind == "allowed_values":
            if value:
                ex = examples.get(col)
                seen = f"{value} row(s) outside" + (f", e.g. {ex!r}" if ex is not None else "")
                out.append(Violation(name, col, "allowed_values", seen, limit))
        elif kind in ("min", "max"):
            if value is None:
                continue
            lo_hi = _compare(value, limit)
            if (kind == "min" and lo_hi < 0) or (kind == "max" and lo_hi > 0):
                out.append(Violation(name, col, kind, value if col.lower() not in phi else "out of range", limit))
        elif kind == "mean":
            rule = limit
            if value is None:
                continue
            if rule.mean_min is not None and value < rule.mean_min:
                out.append(Violation(name, col, "mean_min", round(float(value), 6), rule.mean_min))
            if rule.mean_max is not None and value > rule.mean_max:
                out.append(Violation(name, col, "mean_max", round(float(value), 6), rule.mean_max))
        elif kind == "regex":
            if value:
                out.append(Violation(name, col, "regex", f"{value} value(s) do not match", limit))
        elif kind == "freshness":
            if value is None:
                out.append(Violation(name, col, "freshness", "no dates", f"at most {limit} day(s) old"))
                continue
            newest = date.fromisoformat(str(value)[:10])
            age = (today - newest).days
            if age > limit:
                out.append(
                    Violation(
                        name, col, "freshness", f"newest {newest} is {age} day(s) old", f"at most {limit} day(s) old"
                    )
                )
            elif age < 0:
                out.append(
                    Violation(name, col, "freshness_future", f"newest {newest} is after {today}", "not in the future")
                )

    # keys: one narrow pass per unique key set
    key_sets: list[tuple[list[str], str]] = []
    if contract.primary_key and all(k in types for k in contract.primary_key):
        key_sets.append((list(contract.primary_key), "primary_key"))
    for col, rule in checkable.items():
        if rule.unique and [col] != list(contract.primary_key):
            key_sets.append(([col], "unique"))
    for keys, kind in key_sets:
        n_rules += 1
        t0 = time.perf_counter()
        dupes = _duplicates(df, keys)
        log.info("%s: duplicate check of %s: %.1fs", name, ", ".join(keys), time.perf_counter() - t0)
        if dupes:
            out.append(Violation(name, ", ".join(keys), kind, f"{dupes} duplicated key value(s)", "unique"))
    return out, rows, n_rules


def _examples(df: "DataFrame", allowed: dict[str, list[Any]]) -> dict[str, Any]:
    """One value outside ``allowed`` per column (a second, narrow query, run only when some are)."""
    from pyspark.sql import functions as F

    exprs = [
        F.first(
            F.when(F.col(f"`{c}`").isNotNull() & ~F.col(f"`{c}`").isin(*vals), F.col(f"`{c}`").cast("string")),
            ignorenulls=True,
        ).alias(f"e{i}")
        for i, (c, vals) in enumerate(allowed.items())
    ]
    row = df.agg(*exprs).first()
    return {c: row[f"e{i}"] for i, c in enumerate(allowed)}


def _compare(observed: Any, limit: Any) -> int:
    """-1, 0 or 1 comparing an observed min/max with a limit (numbers or ISO dates)."""
    if isinstance(limit, str):
        a, b = str(observed)[:10], limit[:10]
    else:
        a, b = float(observed), float(limit)
    return (a > b) - (a < b)
