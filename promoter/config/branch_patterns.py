"""The branch-pattern grammar of ``promotion.yml`` (``branch_rules``): globs over branch names.

Patterns match the *whole* branch name. ``*`` and ``?`` never cross a ``/``; ``**`` does.
So ``release/*`` matches ``release/1.2`` but not ``release-notes``, ``releases/x`` or
``release/1.2/hotfix``. It lives with the config because a pattern is checked when the
config loads (file:line); the planner matches branches with the same functions.
"""

from __future__ import annotations

import functools
import re


class GlobError(ValueError):
    """Raised when a branch pattern cannot be compiled."""


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a branch glob into an anchored regular expression.

    Args:
        pattern: e.g. ``release/*``, ``feature/**``, ``hotfix-[0-9]*``.

    Returns:
        A compiled regex that matches whole branch names.

    Raises:
        GlobError: for an empty pattern, whitespace, an unclosed ``[`` or ``***``.
    """
    if not isinstance(pattern, str) or not pattern:
        raise GlobError("a branch pattern must be a non-empty string")
    if any(ch.isspace() for ch in pattern):
        raise GlobError(f"branch pattern {pattern!r} contains whitespace")
    if "***" in pattern:
        raise GlobError(f"branch pattern {pattern!r} has '***'; use '*' or '**'")
    if pattern.startswith("refs/"):
        raise GlobError(f"branch pattern {pattern!r} must be a short name (drop 'refs/heads/')")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                # '**/' also matches zero segments: 'feature/**' matches 'feature/x/y'.
                if i + 2 < n and pattern[i + 2] == "/":
                    out.append("(?:.*/)?")
                    i += 3
                else:
                    out.append(".*")
                    i += 2
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if end == -1:
                raise GlobError(f"branch pattern {pattern!r} has an unclosed '['")
            body = pattern[i + 1 : end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "]":
            raise GlobError(f"branch pattern {pattern!r} has a ']' without '['")
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as exc:  # e.g. a reversed range [z-a]
        raise GlobError(f"branch pattern {pattern!r} is not a valid glob: {exc}") from None


def matches(pattern: str, branch: str) -> bool:
    """True when ``branch`` (a short name) matches ``pattern`` as a whole."""
    return compile_glob(pattern).match(branch) is not None
