"""Opening an environment's registry: the MLflow adapter bound to that environment's URIs and token."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.registry import Registry


def open_registry(settings: "Settings") -> "Registry":
    """The registry of ``settings``' environment (its tracking URI, registry URI and token)."""
    from promoter.registry import Registry

    return Registry.from_settings(settings)
