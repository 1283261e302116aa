"""`promote init`: a new project from a table. Profile it, ask (or take flags), propose, write all or nothing.

:func:`init` reads the entity table (and an optional event table) through ``pipelines.profile``,
asks for the roles it cannot be sure of through a callback (the CLI prompts; tests answer), has
:mod:`promoter.core.scaffold` decide every file, checks that the files load for every
environment, and writes them together: either every file is in place or none is. It never
overwrites an existing file without ``force``, and it checks that before Spark starts.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promoter import errors
from promoter.core import scaffold as core

CONFIG_DIR = "configs"
GITIGNORE = ".gitignore"
GITIGNORE_LINES = (".promote/", "spark-warehouse/")
_FORMATS = ("csv", "parquet", "delta")


@dataclass(frozen=True)
class Question:
    """One question ``init`` asks.

    Attributes:
        key: what it is about (``label``, ``id``, ``snapshot``, ``phi``, ``subgroups``, ``event_id`` ...).
        prompt: the text to show.
        default: the proposal (the answer when the user just presses enter); ``None``: no proposal.
        check: the answer's problem in one line, or ``None`` when it is fine; an asker asks again.
        help: a line of context printed before the prompt (candidates, why).
        required: ``False`` when an empty answer means "none".
    """

    key: str
    prompt: str
    default: str | None
    check: Callable[[str], str | None]
    help: str = ""
    required: bool = True


Ask = Callable[[Question], str]


@dataclass
class InitOptions:
    """What ``promote init`` was given (flags); ``None`` means "propose it" (and ask, interactively)."""

    table: str
    directory: str = "."
    events: str | None = None
    table_format: str | None = None
    events_format: str | None = None
    name: str | None = None
    model_name: str | None = None
    id_column: str | None = None
    label: str | None = None
    snapshot: str | None = None
    subgroups: list[str] | None = None
    phi: list[str] = field(default_factory=list)
    not_phi: list[str] = field(default_factory=list)
    event_id: str | None = None
    event_date: str | None = None
    event_type: str | None = None
    event_amount: str | None = None
    provider: str | None = "github"
    owner: str = "unassigned"
    layout: str | None = None  # root | models; None: root when the repository has no configs/ yet
    yes: bool = False
    force: bool = False


@dataclass
class InitResult:
    """What ``init`` found, asked and wrote."""

    directory: Path
    written: list[str]
    replaced: list[str]
    kept: list[str]
    findings: list[str]
    warnings: list[str]
    phi: dict[str, str]
    answers: core.Answers
    asked: list[str]
    feature_groups: dict[str, list[str]]


def tool_version() -> str:
    """The installed ``promote`` version (the generated project and its CI file pin it).

    Raises:
        PromoteError: ``promote`` runs from a folder that was never installed (no version to pin).
    """
    from promoter import templates

    return templates.installed_version()


# --------------------------------------------------------------------------- tables


def detect_format(path: str, given: str | None, flag: str) -> str:
    """``csv``, ``parquet`` or ``delta`` from ``given`` or the path (a folder with ``_delta_log`` is Delta).

    Raises:
        InvalidInput: when the format cannot be told.
    """
    if given:
        if given not in _FORMATS:
            raise errors.InvalidInput(f"{flag}-format: {given!r} is not one of {', '.join(_FORMATS)}")
        return given
    lower = path.lower().rstrip("/")
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    p = Path(path)
    if "://" not in path and p.is_dir():
        if (p / "_delta_log").is_dir():
            return "delta"
        names = [f.name.lower() for f in p.rglob("*") if f.is_file() and not f.name.startswith(("_", "."))]
        if names and all(n.endswith((".parquet", ".snappy.parquet")) for n in names):
            return "parquet"
        if names and all(n.endswith((".csv", ".csv.gz")) for n in names):
            return "csv"
    raise errors.InvalidInput(
        f"{path}: cannot tell the table's format from its name; pass {flag}-format csv|parquet|delta"
    )


def _location(path: str, flag: str) -> str:
    """The table's location as written into project.yml: an absolute path, or a URI as given.

    Raises:
        InvalidInput: a local path that does not exist.
    """
    if "://" in path:
        return path
    p = Path(path).expanduser()
    if not p.exists():
        raise errors.InvalidInput(f"{flag + ': ' if flag.startswith('-') else ''}table not found: {path}")
    return str(p.resolve())


def _table_name(location: str, taken: Iterable[str] = ()) -> str:
    stem = location.rstrip("/").split("/")[-1]
    for ext in (".csv.gz", ".csv", ".tsv", ".parquet", ".pq"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    name = core.slug(stem)
    taken = set(taken)
    return name if name not in taken else f"{name}_events"


# --------------------------------------------------------------------------- answers


def _required(*args: Any, **kwargs: Any) -> str:
    """:func:`_choose` for an answer that must be given (it raises when there is none)."""
    value = _choose(*args, **kwargs)
    if value is None:  # pragma: no cover - _choose raises first
        raise errors.InvalidInput(f"{args[1]}: an answer is needed")
    return value


def _choose(
    key: str,
    flag: str,
    given: str | None,
    proposal: str | None,
    check: Callable[[str], str | None],
    ask: Ask | None,
    asked: list[str],
    prompt: str,
    help: str = "",
    required: bool = True,
) -> str | None:
    """A flag (checked), else the proposal (``--yes``/no asker), else the user's answer."""
    if given is not None:
        problem = check(given)
        if problem:
            raise errors.InvalidInput(f"{flag}: {problem}")
        return given
    if ask is None:
        if proposal is None and required:
            raise errors.InvalidInput(f"cannot tell the {prompt.lower()}; pass {flag}" + (f" ({help})" if help else ""))
        return proposal
    asked.append(key)
    if not required:
        check = (lambda inner: lambda v: None if not v.strip() else inner(v))(check)
    answer = ask(Question(key, prompt, proposal, check, help, required)).strip()
    if not answer and not required:
        return None
    problem = check(answer)
    if problem:  # an asker that does not re-ask: the answer is still checked
        raise errors.InvalidInput(f"{key}: {problem}")
    return answer


def _named_columns_exist(table: str, columns: list[str], opts: InitOptions) -> None:
    """Column names given by flags must be in the entity table (checked on the schema, before any pass)."""
    listing = ", ".join(columns[:12]) + (f", ... ({len(columns)} in all)" if len(columns) > 12 else "")
    for flag, value in (("--id", opts.id_column), ("--label", opts.label), ("--snapshot", opts.snapshot)):
        if value is not None and value not in columns:
            raise errors.InvalidInput(f"{flag}: no column {value!r} in {table} ({listing})")


def _split(text: str) -> list[str]:
    if text.strip().lower() in ("", "none", "-"):
        return []
    return [x.strip() for x in re.split(r"[,\s]+", text) if x.strip()]


def _check_list(check_one: Callable[[str], str | None]) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        names = _split(text)
        for n in names:
            problem = check_one(n)
            if problem:
                return problem
        if len(set(names)) != len(names):
            return "a column is listed twice"
        return None

    return check


def init(
    opts: InitOptions, ask: Ask | None = None, *, spark: Any = None, say: Callable[[str], None] | None = None
) -> InitResult:
    """Write a new project from a table.

    Args:
        opts: the flags; ``None`` fields are proposed (and asked when ``ask`` is given and not ``opts.yes``).
        ask: asks one question and returns the answer (the CLI prompts); ``None``: take every proposal.
        spark: a running SparkSession (default: a local one).
        say: progress lines (default: none).

    Returns:
        What was found, asked and written.

    Raises:
        InvalidInput: a missing table, an unknown column given, a column that cannot have the role,
            a proposal that is needed but cannot be made, or a file that exists (without ``force``);
            nothing is written then.
    """
    say = say or (lambda _m: None)
    ask = None if opts.yes else ask
    directory = Path(opts.directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise errors.InvalidInput(f"--dir: {opts.directory} is a file, not a folder")
    version = tool_version()
    entity_location = _location(opts.table, "TABLE")
    entity_format = detect_format(entity_location, opts.table_format, "--table")
    events_location = _location(opts.events, "--events") if opts.events else None
    events_format = detect_format(events_location, opts.events_format, "--events") if events_location else None
    name = opts.name or core.slug(_table_name(entity_location))
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise errors.InvalidInput(f"--name: {name!r} must be lower-case letters, digits, '_' or '-'")
    model_name = opts.model_name or name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", model_name):
        raise errors.InvalidInput(f"--model-name: {model_name!r} must be letters, digits, '.', '_' or '-'")
    provider = None if opts.provider in (None, "none") else opts.provider
    if provider is not None and provider not in core.PROVIDERS:
        raise errors.InvalidInput(f"--provider: {provider!r} is not one of {', '.join(core.PROVIDERS)}, none")

    if opts.layout not in (None, "root", "models"):
        raise errors.InvalidInput(f"--layout: {opts.layout!r} is not one of root, models")
    in_models = opts.layout == "models" or (opts.layout is None and (directory / CONFIG_DIR).exists())
    project_dir, config_dir, release_branches = core.layout(name, in_models)

    # every path init writes is known before the data is read: refuse to overwrite first. The CI
    # file and .gitignore serve every project of the repository: kept when present.
    ci_files = _ci_files(provider, name, config_dir, version)
    readme = f"{project_dir}/README.md" if project_dir else f"{config_dir}/README.md"
    targets = [*_config_paths(config_dir), readme]
    existing = [t for t in targets if (directory / t).exists()]
    if existing and not opts.force:
        shown = ", ".join(existing[:4]) + (f" (and {len(existing) - 4} more)" if len(existing) > 4 else "")
        raise errors.InvalidInput(f"{directory.resolve()}: would overwrite {shown}; pass --force to replace them")

    if spark is None:
        from pipelines import session
        from promoter.config import SparkSettings

        spark = session.from_settings(
            SparkSettings(
                app_name="promote-init",
                config={
                    "spark.ui.enabled": False,
                    "spark.sql.shuffle.partitions": 8,
                    "spark.sql.session.timeZone": "UTC",
                },
            )
        )
    from pipelines import profile as prof
    from promoter.config import TableSource

    entity_table = _table_name(entity_location)
    entity_source = TableSource(
        path=entity_location, format=entity_format, options={"header": True} if entity_format == "csv" else {}
    )
    say(f"profiling {entity_table} ({entity_format}, {entity_location})")
    entity_df = prof.read(spark, entity_table, entity_source)
    _named_columns_exist(entity_table, entity_df.columns, opts)
    entity = prof.profile(
        entity_df, entity_table, path=entity_location, format=entity_format, options=dict(entity_source.options)
    )
    if entity.rows == 0:
        raise errors.InvalidInput(f"{entity_location}: the table has no rows")
    asked: list[str] = []

    roles = core.propose_roles(entity)
    binaries = [c.name for c in entity.columns if core.is_binary(c)]
    id_column = _required(
        "id",
        "--id",
        opts.id_column,
        roles.id_column,
        lambda v: core.check_role(entity, "id", v),
        ask,
        asked,
        "Id column (one per entity; replaced by a keyed hash in silver)",
        help="columns unique per row: "
        + (
            ", ".join(
                c.name
                for c in entity.columns
                if core.check_role(entity, "id", c.name) is None and c.distinct >= 0.9 * entity.rows
            )
            or "none"
        ),
    )
    label = _required(
        "label",
        "--label",
        opts.label,
        roles.label_column,
        lambda v: core.check_role(entity, "label", v) or (f"{v!r} is the id column" if v == id_column else None),
        ask,
        asked,
        "Label column (0/1: what the model predicts)",
        help="0/1 columns: " + (", ".join(binaries) or "none"),
    )
    dates = [c.name for c in entity.columns if entity.date_like(c)]
    snapshot = _required(
        "snapshot",
        "--snapshot",
        opts.snapshot,
        roles.snapshot_column,
        lambda v: (
            core.check_role(entity, "snapshot", v) or (f"{v!r} already has a role" if v in (id_column, label) else None)
        ),
        ask,
        asked,
        "Snapshot date column (the as-of date of each row)",
        help="date columns: " + (", ".join(dates) or "none: add an as-of date column to the table"),
    )

    events = None
    ev_answers: core.EventAnswers | None = None
    ev_df = None
    if events_location:
        ev_table = _table_name(events_location, [entity_table])
        ev_source = TableSource(
            path=events_location, format=events_format, options={"header": True} if events_format == "csv" else {}
        )
        say(f"profiling {ev_table} ({events_format}, {events_location})")
        ev_df = prof.read(spark, ev_table, ev_source)
        events = prof.profile(
            ev_df, ev_table, path=events_location, format=events_format or "parquet", options=dict(ev_source.options)
        )
        er = core.propose_event_roles(events, id_column)
        ev_id = _required(
            "event_id",
            "--event-id",
            opts.event_id,
            er.id_column,
            lambda v: core.check_role(events, "event_id", v),
            ask,
            asked,
            f"Event column that holds the {id_column} of each event",
        )
        ev_date = _required(
            "event_date",
            "--event-date",
            opts.event_date,
            er.date_column,
            lambda v: core.check_role(events, "event_date", v),
            ask,
            asked,
            "Event date column",
        )
        ev_type = _required(
            "event_type",
            "--event-type",
            opts.event_type,
            er.type_column,
            lambda v: core.check_role(events, "event_type", v),
            ask,
            asked,
            "Event type column (features are counted per type)",
        )
        ev_amount = _choose(
            "event_amount",
            "--event-amount",
            opts.event_amount,
            er.amount_column,
            lambda v: core.check_role(events, "event_amount", v),
            ask,
            asked,
            "Event amount column (totals per window; empty for none)",
            required=False,
        )
        names = [ev_id, ev_date, ev_type, ev_amount]
        if len({n for n in names if n}) != len([n for n in names if n]):
            raise errors.InvalidInput("the event table's id, date, type and amount columns must be different columns")
        own_key = core.event_key(events, core.EventRoles(ev_id, ev_date, ev_type, ev_amount))
        ev_pk: tuple[str, ...] = ()
        if own_key is not None and prof.repeated_keys(ev_df, [own_key]) == 0:
            ev_pk = (own_key,)
        ev_answers = core.EventAnswers(ev_table, ev_id, ev_date, ev_type, ev_amount, ev_pk)

    # PHI: flagged by name and value, then confirmed (or changed by flags); never silently accepted
    flagged = core.phi_candidates(entity, id_column)
    by_value = core.flagged_by_values(entity)
    if events is not None and ev_answers is not None:
        for col, why in core.phi_candidates(events, ev_answers.id_column).items():
            if col != ev_answers.id_column:
                flagged.setdefault(col, f"{events.name}: {why}")
        by_value |= core.flagged_by_values(events)
    role_cols = {label, snapshot}
    if ev_answers is not None:
        role_cols |= {ev_answers.date_column, ev_answers.type_column, ev_answers.amount_column or ""}
    notes: list[str] = []
    for col in sorted(role_cols & set(flagged)):
        if col in by_value:
            raise errors.InvalidInput(
                f"{col!r}: {flagged[col]}; PHI-looking values cannot be a label, date or type column"
            )
        notes.append(f"{col!r} looked like PHI ({flagged.pop(col)}) but has a role: check it is not PHI")
    all_columns = set(entity.names) | (set(events.names) if events is not None else set())

    def phi_problem(text: str) -> str | None:
        names = _split(text)
        for n in names:
            if n not in all_columns:
                return f"no column {n!r} ({', '.join(sorted(all_columns))})"
            if n in role_cols:
                return f"{n!r} is the label, snapshot date or an event column; it cannot be PHI"
        missing = [c for c in sorted(by_value) if c not in names]
        if missing:
            return f"{missing[0]!r} must stay PHI: {flagged.get(missing[0], 'its values look like PHI')}"
        if id_column not in names:
            return f"{id_column!r} is the id; it is always PHI (silver replaces it by a keyed hash)"
        return None

    for flag, names in (("--phi", opts.phi), ("--not-phi", opts.not_phi)):
        for n in names:
            if n not in all_columns:
                raise errors.InvalidInput(f"{flag}: no column {n!r} ({', '.join(sorted(all_columns))})")
    for n in opts.not_phi:
        if n == id_column or n in by_value:
            raise errors.InvalidInput(
                f"--not-phi: {n!r} must stay PHI: "
                + ("it is the id" if n == id_column else flagged.get(n, "its values look like PHI"))
            )
    proposal = [c for c in flagged if c not in set(opts.not_phi)] + [c for c in opts.phi if c not in flagged]
    if ask is not None:
        asked.append("phi")
        reasons = "; ".join(f"{c}: {flagged.get(c, 'given by --phi')}" for c in proposal)
        answer = ask(
            Question(
                "phi",
                "PHI columns (never leave bronze; comma-separated)",
                ", ".join(proposal),
                phi_problem,
                help=f"flagged: {reasons}" if reasons else "nothing flagged",
            )
        )
        problem = phi_problem(answer)
        if problem:
            raise errors.InvalidInput(f"phi: {problem}")
        phi_cols = _split(answer)
    else:
        problem = phi_problem(", ".join(proposal))
        if problem:
            raise errors.InvalidInput(f"--phi: {problem}")
        phi_cols = proposal
    phi_why = {c: flagged.get(c, "confirmed by the user") for c in phi_cols}

    dob = core.birth_date_column(entity, phi_cols)
    derived = ["age_band"] if dob else []

    def subgroup_problem(v: str) -> str | None:
        if v in (id_column, label, snapshot):
            return f"{v!r} already has a role"
        if v in phi_cols:
            return f"{v!r} is PHI ({phi_why[v]}); PHI never leaves bronze"
        return core.check_role(entity, "subgroup", v, derived=derived)

    proposal_sub = [s for s in roles.subgroup_columns if s not in phi_cols and s not in (label, snapshot)]
    sub_help = ", ".join(
        c.name
        for c in entity.columns
        if c.values is not None
        and 2 <= len(c.values) <= core.SUBGROUP_MAX_LEVELS
        and c.name not in phi_cols
        and c.name not in (id_column, label, snapshot)
    )
    if opts.subgroups is not None:
        for s in opts.subgroups:
            problem = subgroup_problem(s)
            if problem:
                raise errors.InvalidInput(f"--subgroups: {problem}")
        if len(set(opts.subgroups)) != len(opts.subgroups):
            raise errors.InvalidInput("--subgroups: a column is listed twice")
        subgroups = list(opts.subgroups)
    elif ask is None:
        subgroups = proposal_sub
    else:
        asked.append("subgroups")
        answer = ask(
            Question(
                "subgroups",
                "Subgroup columns for fairness (comma-separated; 'none' for none)",
                ", ".join(proposal_sub) or "none",
                _check_list(subgroup_problem),
                help="columns with a few levels: "
                + (sub_help + (", age_band (from " + dob + ")" if dob else "") or "none"),
            )
        )
        problem = _check_list(subgroup_problem)(answer)
        if problem:
            raise errors.InvalidInput(f"subgroups: {problem}")
        subgroups = _split(answer)

    primary_key: tuple[str, ...] = ()
    if prof.repeated_keys(entity_df, [id_column]) == 0:
        primary_key = (id_column,)
    elif prof.repeated_keys(entity_df, [id_column, snapshot]) == 0:
        primary_key = (id_column, snapshot)

    answers = core.Answers(
        name=name,
        model_name=model_name,
        entity_table=entity_table,
        id_column=id_column,
        label_column=label,
        snapshot_column=snapshot,
        subgroup_columns=tuple(subgroups),
        phi_columns=tuple(phi_cols),
        primary_key=primary_key,
        events=ev_answers,
        owner=opts.owner,
        provider=provider,
        version=version,
        config_dir=config_dir,
        project_dir=project_dir,
        release_branches=release_branches,
    )
    result = core.render(entity, events, answers)
    core.validate(result.files, config_dir, label=str(directory / config_dir))
    files = dict(result.files)
    kept: list[str] = []
    for rel, text in ci_files.items():
        if (directory / rel).exists() and not opts.force:
            kept.append(rel)
        else:
            files[rel] = text
    gitignore = directory / GITIGNORE
    if gitignore.exists():
        kept.append(GITIGNORE)
        missing = [line for line in GITIGNORE_LINES if line not in gitignore.read_text(encoding="utf-8").split()]
        if missing:
            notes.append(f"{GITIGNORE} is kept as it is; add {', '.join(missing)} to it")
    else:
        files[GITIGNORE] = "".join(line + "\n" for line in GITIGNORE_LINES)
    written, replaced = write_all(directory, files, force=opts.force)
    return InitResult(
        directory=directory,
        written=written,
        replaced=replaced,
        kept=kept,
        findings=list(result.findings),
        warnings=notes + list(result.warnings),
        phi=phi_why,
        answers=answers,
        asked=asked,
        feature_groups=result.feature_groups,
    )


def _config_paths(config_dir: str) -> list[str]:
    base = f"{config_dir}/base"
    names = ("project", "promotion", "contracts", "feature_mappings", "feature_selection_config", "training")
    return [f"{base}/{n}.yml" for n in names] + [f"{config_dir}/dev/training.yml", f"{config_dir}/prod/training.yml"]


def _ci_files(provider: str | None, project: str, config_dir: str, version: str) -> dict[str, str]:
    """The CI file(s) of ``provider`` (``promoter.templates``), pinning this ``promote`` version."""
    if provider is None:
        return {}
    from promoter import templates

    return dict(templates.render_ci(provider, project=project, config_dir=config_dir, version=version))


# --------------------------------------------------------------------------- all-or-nothing writes


def write_all(directory: Path, files: dict[str, str], *, force: bool) -> tuple[list[str], list[str]]:
    """Write every file or none: each is staged beside its target, then all are swapped in.

    An existing target is only replaced with ``force``; if any step fails, the targets written so
    far are restored (or removed) and the staged files deleted.

    Returns:
        (files written that did not exist, files replaced).

    Raises:
        InvalidInput: a target exists and ``force`` is false.
    """
    token = uuid.uuid4().hex[:8]
    targets = {rel: directory / rel for rel in files}
    existing = [rel for rel, p in targets.items() if p.exists()]
    if existing and not force:
        raise errors.InvalidInput(
            f"{directory.resolve()}: would overwrite {', '.join(existing)}; pass --force to replace them"
        )
    created_dirs: list[Path] = []
    staged: dict[str, Path] = {}
    backups: dict[str, Path] = {}
    done: list[str] = []
    try:
        for rel, target in targets.items():
            parent = target.parent
            missing = []
            while not parent.exists():
                missing.append(parent)
                parent = parent.parent
            for d in reversed(missing):
                d.mkdir()
                created_dirs.append(d)
            tmp = target.with_name(f".{target.name}.init-{token}")
            tmp.write_text(files[rel], encoding="utf-8")
            staged[rel] = tmp
        for rel, target in targets.items():
            if target.exists():
                backup = target.with_name(f".{target.name}.old-{token}")
                os.replace(target, backup)
                backups[rel] = backup
            os.replace(staged.pop(rel), target)
            done.append(rel)
    except BaseException:
        for rel in done:
            targets[rel].unlink(missing_ok=True)
        for rel, backup in backups.items():
            os.replace(backup, targets[rel])
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        for d in reversed(created_dirs):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    for backup in backups.values():
        backup.unlink(missing_ok=True)
    written = [rel for rel in files if rel not in backups]
    return written, list(backups)


__all__ = ["Ask", "InitOptions", "InitResult", "Question", "detect_format", "init", "tool_version", "write_all"]
