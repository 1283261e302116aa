"""A project's ML code, found from ``project.yml`` ``pipelines:`` (see ``pipelines/api.py``).

Each part (contracts, features, train, score, monitor) is a ``module:function``. The module is
imported with the project's folder (the parent of its ``configs/``) and the checkout first on
``sys.path``, so a project keeps its code next to its configs; the defaults are the shipped
Spark pipelines. A name that does not import, or does not name a function, is a config error
naming ``project.yml`` ``pipelines.<part>`` (exit 2) before any work starts.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import errors

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings

PARTS = ("contracts", "features", "train", "score", "monitor")


def _where(settings: "Settings") -> str:
    files = [s for s in settings.sources if s.endswith("project.yml")]
    return files[-1] if files else "project.yml"


def entry_point(settings: "Settings", part: str, search_paths: Iterable[Path | None] = ()) -> Callable[..., Any]:
    """The function ``project.yml`` ``pipelines.<part>`` names, imported.

    Args:
        settings: the environment's settings.
        part: one of :data:`PARTS`.
        search_paths: folders put first on ``sys.path`` for the import (project folder, checkout).

    Raises:
        ConfigError: when the module cannot be imported or the name is not a function in it.
    """
    if part not in PARTS:
        raise ValueError(f"unknown pipeline part {part!r} (known: {', '.join(PARTS)})")
    spec: str = getattr(settings.project.pipelines, part)
    module_name, _, attr = spec.partition(":")
    for folder in reversed([str(Path(p).resolve()) for p in search_paths if p is not None]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise errors.ConfigError(
            f"cannot import {module_name!r} ({exc}); the module must be importable from the project's "
            "folder, the checkout or the installed packages",
            file=_where(settings),
            key=f"pipelines.{part}",
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise errors.ConfigError(
            f"{module_name} has no function {attr!r}", file=_where(settings), key=f"pipelines.{part}"
        )
    return fn


def is_default(settings: "Settings", part: str) -> bool:
    """Whether ``part`` is the shipped implementation (its field default)."""
    from promoter.config import PipelineEntryPoints

    return getattr(settings.project.pipelines, part) == PipelineEntryPoints.model_fields[part].default


def resolve_all(settings: "Settings", search_paths: Iterable[Path | None] = ()) -> dict[str, Callable[..., Any]]:
    """Every part the project names, imported (a run checks them all before its first step)."""
    paths = list(search_paths)
    return {part: entry_point(settings, part, paths) for part in PARTS}
