"""Every error `promote` raises on purpose, and the exit code each one maps to.

The CLI converts these to exit codes in exactly one place (``promoter.cli.main``);
nothing else calls ``sys.exit``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INVALID = 2
EXIT_GATE_FAILED = 3
EXIT_AWAITING_APPROVAL = 4


class PromoteError(Exception):
    """Root of every error `promote` raises on purpose.

    Raised directly only for failures that are not the user's input (exit 1).
    """

    exit_code = EXIT_UNEXPECTED


class InvalidInput(PromoteError):
    """Raised when config, an event, data or CLI arguments are wrong (exit 2)."""

    exit_code = EXIT_INVALID


class ConfigError(InvalidInput):
    """Raised when a config file cannot be read, parsed or validated.

    The message always names the file, the key path and, where YAML gives one,
    the line and column: ``configs/base/promotion.yml:14:5: gate.prod.x: ...``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.detail = message
        where = ""
        if file:
            where = file
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        if key:
            where += f"{key}: "
        super().__init__(where + message)


class EventError(InvalidInput):
    """Raised when a CI event (environment variables or payload) cannot be understood."""


class DataContractError(InvalidInput):
    """Raised when input data breaks its contract; the run stops before training."""


class GitError(InvalidInput):
    """Raised when the git repository is not in a state the command can work with."""


class NotFound(InvalidInput):
    """Raised when a named thing (model version, champion, decision) does not exist."""


class GateRejected(PromoteError):
    """Raised when the gate's verdict is FAIL under an enforcing policy (exit 3)."""

    exit_code = EXIT_GATE_FAILED


class AwaitingApproval(PromoteError):
    """Raised when the verdict needs approvals that have not been given yet (exit 4)."""

    exit_code = EXIT_AWAITING_APPROVAL


class StepFailed(PromoteError):
    """Raised when a step died of something outside the promotion (Spark out of memory, a dead JVM).

    The message names the step and, where known, the setting to change; exit code 1.
    """

    exit_code = EXIT_UNEXPECTED


class TrackingUnreachable(PromoteError):
    """Raised when the tracking server did not answer within its deadline (exit 1).

    The message names the server and, once the engine knows it, the step; a re-run of the
    event completes the work (nothing is half-moved: see invariant 5 of the design).
    """

    exit_code = EXIT_UNEXPECTED

    def __init__(self, message: str, *, uri: str = "", step: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri
        self.step = step


class Cancelled(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM (a cancelled CI job), exit 143.

    A ``KeyboardInterrupt``: no ``except Exception`` swallows it, every ``finally`` runs, so
    locks are released on the way out.
    """

    exit_code = 143
