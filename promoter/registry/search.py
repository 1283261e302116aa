"""MLflow search-filter quoting and error codes, shared by the registry's modules."""

from __future__ import annotations


def _code(exc: BaseException) -> str | None:
    return getattr(exc, "error_code", None)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
