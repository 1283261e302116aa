"""Secret masking: no token or password is ever printed, in CI or at a laptop.

Two layers, as CI systems expect:

* :class:`Masker` replaces every known secret value (and the password part of any
  ``scheme://user:password@host`` URL) with ``***`` in text before it is written.
  :func:`masked_stream` wraps a stream so every write goes through it, and
  :class:`MaskingFilter` does the same for :mod:`logging` records.
* :func:`mask_commands` renders the provider's own masking command
  (``::add-mask::`` on GitHub Actions, ``##vso[task.setsecret]`` on Azure DevOps) for
  values the runner cannot know about, e.g. a token read from a file or a derived
  ``Authorization`` header. Values that arrive through ``secrets.*`` (GitHub) or secret
  variables (Azure DevOps) are masked by the runner already; announcing them again
  would only print them once more, so callers announce derived values only.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import TextIO

MASK = "***"
MIN_SECRET_LENGTH = 6

# Variables that hold secrets whatever their names say.
KNOWN_SECRET_VARIABLES = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "PROMOTE_GITHUB_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "SYSTEM_ACCESSTOKEN",
    "AZURE_DEVOPS_EXT_PAT",
    "CI_JOB_TOKEN",
    "CI_JOB_JWT",
    "GITLAB_TOKEN",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "DATABRICKS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|_PAT$)", re.IGNORECASE
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:)(?P<pw>[^@\s/]+)(?P<at>@)")
_AUTH_HEADER = re.compile(r"(?i)(authorization\s*[:=]\s*(?:bearer|basic|token)\s+)\S+")


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name says it holds a secret."""
    return name in KNOWN_SECRET_VARIABLES or bool(_SECRET_NAME.search(name))


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of every variable that holds a secret (by known name or by name pattern).

    Short values (fewer than 6 characters, e.g. ``true``) are left out: masking them
    would garble ordinary text without protecting anything.
    """
    environ = os.environ if environ is None else environ
    out = []
    for name, value in environ.items():
        if value and len(value) >= MIN_SECRET_LENGTH and is_secret_name(name):
            out.append(value)
    return out


class Masker:
    """Replaces known secret values with ``***`` in any text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> "Masker":
        """A masker for every secret in ``environ`` plus ``extra`` values."""
        return cls([*secrets_from_env(environ), *extra])

    def add(self, value: str | None) -> None:
        """Start masking ``value`` (ignored when empty or shorter than 6 characters)."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        for v in {value, value.strip()}:
            if len(v) >= MIN_SECRET_LENGTH:
                self._secrets.add(v)
        # longest first, so a secret that contains another is masked whole
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def mask(self, text: str) -> str:
        """``text`` with every secret, URL password and auth header value replaced by ``***``."""
        if not text:
            return text
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("at"), text)
        return _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)


class _MaskedStream(io.TextIOBase):
    """A text stream that masks each write before passing it on."""

    def __init__(self, stream: TextIO, masker: Masker) -> None:
        self._stream = stream
        self._masker = masker
        self._pending = ""

    def write(self, s: str) -> int:  # type: ignore[override]
        # Mask whole lines, so a secret split across two writes is still caught.
        self._pending += s
        if "\n" in self._pending:
            head, self._pending = self._pending.rsplit("\n", 1)
            self._stream.write(self._masker.mask(head + "\n"))
        return len(s)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._masker.mask(self._pending))
            self._pending = ""
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def masked_stream(stream: TextIO, masker: Masker) -> TextIO:
    """Wrap ``stream`` so that everything written to it is masked line by line.

    Call ``flush()`` on the wrapper to write a trailing partial line.
    """
    return _MaskedStream(stream, masker)  # type: ignore[return-value]


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message and its arguments."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.mask(record.getMessage())
        record.args = None
        return True


def mask_commands(values: Iterable[str], provider: str) -> list[str]:
    """The provider's commands that tell the runner to mask ``values`` in its log.

    Args:
        values: secret values the runner does not know yet (derived tokens, headers).
        provider: ``github`` (``::add-mask::``) or ``azure`` (``##vso[task.setsecret]``);
            other providers mask through project settings and get no commands.

    Returns:
        One line per value (without newline), empty for other providers.
    """
    lines = []
    for v in values:
        if not v or len(v) < MIN_SECRET_LENGTH:
            continue
        for part in v.splitlines() or [v]:
            if provider == "github":
                lines.append(f"::add-mask::{part}")
            elif provider == "azure":
                lines.append(f"##vso[task.setsecret]{part}")
    return lines


def announce(values: Iterable[str], provider: str, stream: TextIO) -> int:
    """Write :func:`mask_commands` for ``values`` to ``stream``; returns how many were written.

    Only for values the runner cannot know (see the module docstring): the command line
    itself carries the value, which the runner hides but a plain terminal would show,
    so nothing is written outside GitHub Actions and Azure DevOps.
    """
    lines = mask_commands(values, provider)
    for line in lines:
        stream.write(line + "\n")
    if lines:
        stream.flush()
    return len(lines)


def derived_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret values this process derives from others, which no runner masks by itself:
    the HTTP Basic credential MLflow builds from ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``."""
    import base64

    environ = os.environ if environ is None else environ
    user, password = environ.get("MLFLOW_TRACKING_USERNAME"), environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user and password):
        return []
    return [base64.standard_b64encode(f"{user}:{password}".encode()).decode("ascii")]
