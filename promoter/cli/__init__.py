"""The `promote` command line: thin commands over the application layer.

Each module holds one command group: ``events`` (plan, run, replay, score), ``data`` (data,
features, train), ``decisions`` (approve, rollback, release-hold), ``records`` (history, audit,
report), ``release`` (cut-release, demo). :func:`main` is the console script: it masks every
line written and converts errors to exit codes in this one place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

import click

from promoter import errors
from promoter.cli import data, decisions, events, init, projects, records, release  # noqa: F401 - registers the commands
from promoter.cli.base import _state, cli

__all__ = ["cancel_on_sigterm", "cli", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: every line it writes is masked; errors become exit codes here."""
    from promoter.core.events import provider_of
    from promoter.report import masking

    derived = masking.derived_secrets()
    masker = masking.Masker.from_env(extra=derived)
    if derived:  # only GitHub and Azure take mask commands; elsewhere this writes nothing
        masking.announce(derived, provider_of(os.environ), sys.stdout)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = masking.masked_stream(streams[0], masker), masking.masked_stream(streams[1], masker)
    log_filter = masking.MaskingFilter(masker)
    logging.getLogger().addFilter(log_filter)
    try:
        return _main(argv)
    finally:
        logging.getLogger().removeFilter(log_filter)
        for wrapped in (sys.stdout, sys.stderr):
            wrapped.flush()
        sys.stdout, sys.stderr = streams


def _on_sigterm(signum: int, frame: object) -> None:
    raise errors.Cancelled()


@contextlib.contextmanager
def cancel_on_sigterm() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) unwinds the main thread like Ctrl-C: every ``finally`` runs,
    so locks are released on the way out. The previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    with cancel_on_sigterm():
        return _commands(argv)


def _commands(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="promote", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return errors.EXIT_UNEXPECTED
    except click.UsageError as exc:
        exc.show()
        return errors.EXIT_INVALID
    except click.ClickException as exc:
        exc.show()
        return errors.EXIT_INVALID
    except errors.PromoteError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        _print_error(exc)
        if getattr(exc, "result", None) is None:
            _annotate_for_ci(exc)
        return exc.exit_code
    except errors.Cancelled:
        click.echo("cancelled (SIGTERM): locks released, nothing further done; re-run the event", err=True)
        return errors.Cancelled.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted: locks released, nothing further done; re-run the event", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are reported
        if _state["verbose"]:
            traceback.print_exc()
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc}"
            + ("" if _state["verbose"] else " (run with --verbose for the traceback)"),
            err=True,
        )
        return errors.EXIT_UNEXPECTED
    return errors.EXIT_OK


def _annotate_for_ci(exc: errors.PromoteError) -> None:
    """In GitHub Actions / Azure DevOps, the error also becomes an annotation at its file and line."""
    from promoter.app.run import error_dict
    from promoter.report import sinks

    sinks.annotate_error(error_dict(exc))


def _print_error(exc: errors.PromoteError) -> None:
    from promoter.config import ConfigInvalid

    if isinstance(exc, ConfigInvalid) and _state["verbose"]:
        for p in exc.problems:
            click.echo(f"error: {p}", err=True)
        return
    label = {errors.GateRejected: "gate", errors.AwaitingApproval: "waiting"}.get(type(exc), "error")
    click.echo(f"{label}: {exc}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
