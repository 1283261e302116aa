"""Branch names and the glob patterns that match them. Pure; no I/O.

Patterns match the *whole* branch name. ``*`` and ``?`` never cross a ``/``;
``**`` does. So ``release/*`` matches ``release/1.2`` but not ``release-notes``,
``releases/x`` or ``release/1.2/hotfix``.
"""

from __future__ import annotations

from promoter.config.branch_patterns import GlobError, compile_glob, matches

__all__ = ["GlobError", "compile_glob", "is_tag_ref", "matches", "normalize"]
_HEADS = "refs/heads/"


def normalize(ref: str | None) -> str | None:
    """Return a short branch name: ``refs/heads/main`` -> ``main``; ``None`` stays ``None``."""
    if ref is None:
        return None
    ref = ref.strip()
    if ref.startswith(_HEADS):
        return ref[len(_HEADS) :]
    return ref


def is_tag_ref(ref: str | None) -> bool:
    """True for ``refs/tags/...`` refs, which are never branches."""
    return bool(ref) and ref.startswith("refs/tags/")
