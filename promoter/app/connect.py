"""Opening an environment's registry: the MLflow adapter bound to that environment's URIs and token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promoter import errors

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.registry import Registry


def open_registry(settings: "Settings", *, must_exist: bool = False) -> "Registry":
    """The registry of ``settings``' environment (its tracking URI, registry URI and token).

    ``must_exist``: for commands that only read or decide on what earlier runs recorded
    (approve, rollback, history, audit): a local store that is not there is bad input (exit 2),
    and opening it must not create an empty one.
    """
    from promoter.registry import Registry, local_store_missing

    if must_exist:
        missing = local_store_missing(settings.project.tracking_uri, settings.project.registry_uri)
        if missing is not None:
            raise errors.NotFound(
                f"no registry at {missing} (tracking_uri {settings.project.tracking_uri}): nothing has run "
                "here yet, so there is nothing to approve, roll back or read; run the event first"
            )
    try:
        return Registry.from_settings(settings)
    except errors.TrackingUnreachable as exc:
        raise errors.TrackingUnreachable(
            f"{exc} while opening the registry; nothing was run; re-run the event when it is back",
            uri=exc.uri,
        ) from exc
