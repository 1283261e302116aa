"""Loading the config: file sources, YAML with positions, the base + environment merge, messages.

``load(root, env)`` reads ``base/`` and ``<env>/`` from a folder (or a git tree, or a mapping),
merges them (mappings merge, lists and scalars replace, a duplicate key is an error), validates
them into :class:`~promoter.config.models.Settings`, and turns every problem into one line with
file, line, column and key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import (
    ValidationError,
)

from promoter.config.models import BASE, REQUIRED_FILES, PromotionSettings, Settings, _CrossRefError
from promoter.errors import ConfigError

# file name -> settings section
CONFIG_FILES: dict[str, str] = {
    "project.yml": "project",
    "promotion.yml": "promotion",
    "feature_mappings.yml": "feature_mappings",
    "feature_selection_config.yml": "feature_selection",
    "contracts.yml": "contracts",
    "training.yml": "training",
    "monitoring.yml": "monitoring",
    "model_card.yml": "model_card",
}

# --------------------------------------------------------------------------- file sources


class FileSource(Protocol):
    """Where config files come from: the working tree or a committed git tree."""

    def read(self, relpath: str) -> str | None:
        """Return the file's text, or ``None`` when it does not exist."""

    def listdir(self, relpath: str) -> list[str] | None:
        """Return file names in a folder, or ``None`` when it does not exist."""

    def display(self, relpath: str) -> str:
        """How to name the file in a message."""


@dataclass(frozen=True)
class DirSource:
    """Config files on disk, under ``root`` (usually ``./configs``)."""

    root: Path

    def read(self, relpath: str) -> str | None:
        p = self.root / relpath
        if not p.is_file():
            return None
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read file: {exc}", file=self.display(relpath)) from None

    def listdir(self, relpath: str) -> list[str] | None:
        p = self.root / relpath
        if not p.is_dir():
            return None
        return sorted(x.name for x in p.iterdir() if x.is_file())

    def display(self, relpath: str) -> str:
        p = self.root / relpath
        try:
            return str(p.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(p)


@dataclass(frozen=True)
class MappingSource:
    """Config files held in memory (relpath -> text), e.g. read from a git tree."""

    files: Mapping[str, str]
    label: str = "configs"

    def read(self, relpath: str) -> str | None:
        return self.files.get(relpath)

    def listdir(self, relpath: str) -> list[str] | None:
        prefix = relpath.rstrip("/") + "/"
        names = sorted(k[len(prefix) :] for k in self.files if k.startswith(prefix) and "/" not in k[len(prefix) :])
        return names or None

    def display(self, relpath: str) -> str:
        return f"{self.label}/{relpath}"


# --------------------------------------------------------------------------- YAML with positions

Path_ = tuple[Any, ...]


@dataclass
class _Doc:
    data: Any
    positions: dict[Path_, tuple[str, int, int]] = field(default_factory=dict)


def _parse(text: str, display: str) -> _Doc:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"invalid YAML: {problem}",
            file=display,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None
    doc = _Doc(data=None)
    if root is None:
        doc.data = {}
        return doc
    constructor = yaml.SafeLoader("")

    def build(node: yaml.Node, path: Path_) -> Any:
        doc.positions[path] = (display, node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(
                        "YAML merge keys ('<<') are not supported; write the keys out",
                        file=display,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                    )
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(
                        "a mapping key must be a plain value",
                        file=display,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                    )
                key = constructor.construct_object(key_node)
                if key in seen:
                    raise ConfigError(
                        f"duplicate key {key!r} (first defined on line {seen[key]})",
                        file=display,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                        key=_dotted(path + (key,)),
                    )
                seen[key] = key_node.start_mark.line + 1
                out[key] = build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(node.value)]
        return constructor.construct_object(node, deep=True)

    doc.data = build(root, ())
    if not isinstance(doc.data, dict):
        raise ConfigError("the top level must be a mapping of keys to values", file=display, line=1, column=1)
    return doc


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _merge(base: _Doc, over: _Doc) -> _Doc:
    """Deep-merge ``over`` onto ``base`` (mappings merge; lists and scalars replace)."""
    positions = dict(base.positions)

    def drop_under(path: Path_) -> None:
        for p in [p for p in positions if p[: len(path)] == path and len(p) > len(path)]:
            del positions[p]

    def merge(a: Any, b: Any, path: Path_) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(a[k], v, path + (k,)) if k in a else _take(v, path + (k,))
            return out
        return _take(b, path)

    def _take(v: Any, path: Path_) -> Any:
        drop_under(path)
        for p, pos in over.positions.items():
            if p[: len(path)] == path:
                positions[p] = pos
        return v

    data = merge(base.data, over.data, ())
    return _Doc(data=data, positions=positions)


# --------------------------------------------------------------------------- errors from pydantic

_MESSAGES: dict[str, str] = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "missing": "is required",
    "extra_forbidden": "unknown key",
}


def _describe(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("ctx", {}).get("error", err.get("msg", "")))
        return msg
    msg = _MESSAGES.get(kind, err.get("msg", "invalid value"))
    if kind == "literal_error":
        msg = "must be one of " + err.get("ctx", {}).get("expected", "")
    elif kind.startswith(("greater", "less")):
        msg = err.get("msg", msg).replace("Input should be", "must be")
    value = err.get("input")
    if (
        kind not in ("missing", "extra_forbidden")
        and isinstance(value, (str, int, float, bool))
        and not isinstance(err.get("input"), dict)
    ):
        msg += f", got {value!r}"
    return msg


def _position(doc: _Doc, loc: Path_, fallback: str) -> tuple[str, int | None, int | None]:
    for cut in range(len(loc), -1, -1):
        pos = doc.positions.get(loc[:cut])
        if pos is not None:
            return pos
    return fallback, None, None


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    column: int | None
    key: str
    message: str

    def __str__(self) -> str:
        return str(ConfigError(self.message, file=self.file, line=self.line, column=self.column, key=self.key))


class ConfigInvalid(ConfigError):
    """Raised when settings fail validation; carries every problem, the first one in the message."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        first = problems[0]
        super().__init__(first.message, file=first.file, line=first.line, column=first.column, key=first.key)
        if len(problems) > 1:
            self.args = (str(self) + f" (and {len(problems) - 1} more problem(s))",)


def _read_layer(source: FileSource, folder: str, required: tuple[str, ...]) -> dict[str, _Doc]:
    names = source.listdir(folder)
    if names is None:
        if required:
            raise ConfigError(
                f"config folder not found (expected {folder}/ with {', '.join(required)})", file=source.display(folder)
            )
        return {}
    docs: dict[str, _Doc] = {}
    for name in names:
        if name.startswith(".") or not name.endswith((".yml", ".yaml")):
            continue
        if name not in CONFIG_FILES:
            raise ConfigError(
                f"unknown config file (expected one of: {', '.join(CONFIG_FILES)})",
                file=source.display(f"{folder}/{name}"),
            )
        text = source.read(f"{folder}/{name}")
        docs[name] = _parse(text or "", source.display(f"{folder}/{name}"))
    for name in required:
        if name not in docs:
            raise ConfigError("required config file is missing", file=source.display(f"{folder}/{name}"))
    return docs


def _environments(base_docs: dict[str, _Doc]) -> list[str]:
    doc = base_docs.get("promotion.yml")
    envs = doc.data.get("environments") if doc else None
    if isinstance(envs, list) and all(isinstance(e, str) for e in envs) and envs:
        return list(envs)
    return list(PromotionSettings.model_fields["environments"].default_factory())  # type: ignore[misc]


def config_hash(data: Mapping[str, Any]) -> str:
    """sha256 of the merged, un-interpolated config: the same YAML gives the same hash."""
    blob = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_env(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """``--env`` wins over ``PROMOTE_ENV``; neither gives ``None`` (base only)."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("PROMOTE_ENV") or None


def load(
    root: str | Path | FileSource = "configs", env: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load ``base`` plus one environment into validated :class:`Settings`.

    Args:
        root: the config folder (``configs``) or a :class:`FileSource`.
        env: environment overlay to apply (``dev``, ``staging``, ``prod``); ``None`` for base only.
        environ: variables for ``${VAR}`` interpolation (default ``os.environ``).

    Returns:
        Settings, with ``env``, ``config_hash`` and ``sources`` filled in.

    Raises:
        ConfigError: naming file, key and line/column for any problem.
    """
    source: FileSource = DirSource(Path(root)) if isinstance(root, (str, Path)) else root
    environ = os.environ if environ is None else environ
    base_docs = _read_layer(source, BASE, REQUIRED_FILES)
    if env is not None:
        known = _environments(base_docs)
        if env not in known:
            raise ConfigError(
                f"unknown environment {env!r} (known: {', '.join(known)})",
                file=source.display(f"{BASE}/promotion.yml"),
                key="environments",
            )
        over_docs = _read_layer(source, env, ())
    else:
        over_docs = {}

    merged: dict[str, _Doc] = {}
    for name, section in CONFIG_FILES.items():
        doc = base_docs.get(name)
        if name in over_docs:
            doc = _merge(doc, over_docs[name]) if doc else over_docs[name]
        if doc is not None:
            merged[section] = doc

    data = {section: doc.data for section, doc in merged.items()}
    sources = tuple(
        source.display(f"{layer}/{n}") for layer, docs in ((BASE, base_docs), (env, over_docs)) for n in docs
    )
    try:
        settings = Settings.model_validate(
            {**data, "env": env, "config_hash": config_hash(data), "sources": sources},
            context={"environ": environ},
        )
    except ValidationError as exc:
        raise _problems_from(exc, merged, source) from None
    settings._positions = {section: dict(doc.positions) for section, doc in merged.items()}
    return settings


def locate(settings: Settings, loc: Path_) -> tuple[str, int | None, int | None]:
    """Where a key of the loaded settings was written: ``(file, line, column)``.

    Args:
        settings: settings from :func:`load` (they keep every key's position, from the
            environment overlay when it set the key, else from ``base``).
        loc: the section then the key path, e.g. ``("project", "data", "label_column")`` or
            ``("promotion", "gate", "prod", "fairness", "subgroups", 0)``.

    Returns:
        The file as shown in messages and the 1-based line and column of the nearest key
        written in it (a parent's when the key itself was left to its default); line and
        column are ``None`` when the section's file is absent or the settings were not loaded.
    """
    file_of = {section: name for name, section in CONFIG_FILES.items()}
    section = loc[0] if loc else "project"
    name = file_of.get(section, "project.yml")
    shown = [s for s in settings.sources if s.endswith("/" + name)]
    fallback = shown[0] if shown else f"configs/{BASE}/{name}"
    positions = settings._positions.get(section)
    if not positions:
        return fallback, None, None
    return _position(_Doc(data=None, positions=positions), tuple(loc[1:]), fallback)


def error_at(settings: Settings, loc: Path_, message: str) -> ConfigError:
    """A :class:`ConfigError` naming the file, line, column and key of ``loc`` (see :func:`locate`).

    Use it for a problem found after loading (e.g. a configured column missing from the data):
    the message is the same one line ``file:line:col: key: message`` a load-time problem gets.
    """
    file, line, column = locate(settings, loc)
    return ConfigError(message, file=file, line=line, column=column, key=_dotted(tuple(loc[1:])))


def errors_at(settings: Settings, problems: list[tuple[Path_, str]]) -> ConfigInvalid:
    """Several post-load problems (``(loc, message)`` pairs, see :func:`error_at`) as one error:
    the first (by file and line) is its message, :func:`describe_problems` lists them all."""
    found = []
    for loc, message in problems:
        file, line, column = locate(settings, loc)
        found.append(ConfigProblem(file, line, column, _dotted(tuple(loc[1:])), message))
    found.sort(key=lambda p: (p.file, p.line or 0, p.column or 0))
    return ConfigInvalid(found)


def _problems_from(exc: ValidationError, merged: dict[str, _Doc], source: FileSource) -> ConfigInvalid:
    problems: list[ConfigProblem] = []
    file_of = {section: name for name, section in CONFIG_FILES.items()}
    for err in exc.errors():
        ctx_error = err.get("ctx", {}).get("error")
        if isinstance(ctx_error, _CrossRefError):
            for loc, msg in ctx_error.problems:
                problems.append(_problem(loc, msg, merged, source, file_of))
            continue
        loc = tuple(err["loc"])
        problems.append(_problem(loc, _describe(err), merged, source, file_of))
    problems.sort(key=lambda p: (p.file, p.line or 0, p.column or 0))
    return ConfigInvalid(problems)


def _problem(
    loc: Path_, message: str, merged: dict[str, _Doc], source: FileSource, file_of: dict[str, str]
) -> ConfigProblem:

    section = loc[0] if loc else "project"
    inner = tuple(loc[1:])
    # pydantic puts a model-level error of a list item under the item; tagged unions add names
    doc = merged.get(section)
    fallback = source.display(f"{BASE}/{file_of.get(section, 'project.yml')}")
    if doc is None:
        return ConfigProblem(fallback, None, None, _dotted(inner), message)
    file, line, col = _position(doc, inner, fallback)
    return ConfigProblem(file, line, col, _dotted(inner), message)


def describe_problems(exc: ConfigError) -> list[str]:
    """Every problem in ``exc`` as one line each."""
    if isinstance(exc, ConfigInvalid):
        return [str(p) for p in exc.problems]
    return [str(exc)]
