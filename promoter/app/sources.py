"""Where an event comes from: the CI provider's variables and payload, or local git.

The parsers in :mod:`promoter.core.events` are pure; this module does the I/O around
them: it reads ``os.environ`` (when not handed a mapping), the GitHub payload file that
``GITHUB_EVENT_PATH`` names, a replayed event file, and the local git repository (the
branch, commit and tree of a stated event; the tree sha of a CI event).

* :func:`detect`: the event of this process (CI variables, else local git).
* :func:`replay_event`: a CI provider's event re-run elsewhere, from variables or a file.
* :func:`from_local`: an event stated by hand, completed from local git.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from promoter.core.branches import normalize
from promoter.core.events import (
    CLI_OPTIONS,
    KINDS,
    PROVIDERS,
    Event,
    from_azure,
    from_github,
    from_gitlab,
    manual_request,
    provider_of,
)
from promoter.errors import EventError

CI_PROVIDERS = tuple(p for p in PROVIDERS if p != "local")


# --------------------------------------------------------------------------- files


def _read_json(path: str | os.PathLike[str]) -> tuple[Path, Any]:
    p = Path(path)
    try:
        return p, json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EventError(f"{p}: event file not found") from None
    except IsADirectoryError:
        raise EventError(f"{p}: an event file must be a file, not a directory") from None
    except json.JSONDecodeError as exc:
        raise EventError(f"{p}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError(f"{p}: cannot read event file: {exc}") from None


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a GitHub webhook payload file. Raises EventError naming the file when it is bad."""
    p, data = _read_json(path)
    if not isinstance(data, dict):
        raise EventError(f"{p}: an event payload must be a JSON object")
    return data


def read_variables(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a dump of CI variables: a JSON object whose every value is a string.

    ``{"TF_BUILD": "True", "BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/heads/main"}``

    Raises:
        EventError: naming the file (and the first offending variable) when it is not one.
    """
    p, data = _read_json(path)
    if not isinstance(data, dict):
        raise EventError(
            f"{p}: a variables file must be a JSON object of strings "
            f'({{"NAME": "value", ...}}), got a JSON {type(data).__name__}'
        )
    for name, value in data.items():
        if not isinstance(value, str):
            raise EventError(
                f"{p}: a variables file must be a JSON object of strings; {name} is {json.dumps(value)[:60]}"
            )
    return data


# --------------------------------------------------------------------------- local / by hand


def from_local(
    repo_path: str | os.PathLike[str] = ".",
    *,
    kind: str = "push",
    branch: str | None = None,
    source_branch: str | None = None,
    target_branch: str | None = None,
    sha: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    pr_number: int | None = None,
    reason: str | None = None,
    to_version: int | str | None = None,
) -> Event:
    """An event stated by hand, filling what is not given from the local git repo.

    ``kind=pull_request`` needs ``source_branch`` (default: current branch) and ``target_branch``.
    ``reason`` and ``to_version`` belong to a manual event (``kind=manual``); a manual
    ``rollback`` needs a reason.
    """
    from promoter import gitops  # local import: gitpython only when we need the repo

    if kind not in KINDS:
        raise EventError(f"--event must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind != "manual" and (reason is not None or to_version is not None):
        raise EventError("--reason and --to-version go with a manual event (--event manual --action ...)")
    if kind == "manual":
        action, reason, to_version = manual_request(action, reason, to_version, CLI_OPTIONS)
    head = gitops.head_info(repo_path, allow_missing=bool(branch or source_branch))
    actor = actor or head.author
    if kind == "pull_request":
        src = source_branch or head.branch
        if not src:
            raise EventError("a pull request needs --from BRANCH (HEAD is detached)")
        if not target_branch:
            raise EventError("a pull request needs --into BRANCH")
        commit = sha or gitops.resolve(repo_path, src) or head.sha
        return Event(
            kind="pull_request",
            provider="local",
            branch=normalize(target_branch),
            source_branch=normalize(src),
            target_branch=normalize(target_branch),
            sha=commit,
            head_sha=commit,
            tree_sha=gitops.tree_of(repo_path, commit),
            pr_number=pr_number,
            actor=actor,
            default_branch=head.default_branch,
            raw_name="pull_request",
        )
    name = normalize(branch) or head.branch
    if not name:
        raise EventError("HEAD is detached: pass --branch NAME")
    commit = sha or (gitops.resolve(repo_path, name) if branch else head.sha) or head.sha
    manual = kind == "manual"
    return Event(
        kind=kind,
        provider="local",
        branch=name,
        sha=commit,
        tree_sha=gitops.tree_of(repo_path, commit),
        actor=actor,
        action=action if manual else None,
        reason=reason if manual else None,
        to_version=to_version if manual else None,
        default_branch=head.default_branch,
        raw_name=kind,
    )


# --------------------------------------------------------------------------- CI providers


def _ci_event(
    provider: str, environ: Mapping[str, str], event_file: str | os.PathLike[str] | None, event_name: str | None
) -> Event:
    """Parse one CI provider's event; ``event_file`` (when given) replaces what ``environ`` points at.

    GitHub: the file is the webhook payload (``environ`` still supplies ``GITHUB_*``).
    Azure DevOps / GitLab: the file is a JSON object of the provider's variables and
    replaces ``environ`` entirely.
    """
    if provider == "github":
        if event_file is not None:
            payload = read_payload(event_file)
        elif environ.get("GITHUB_EVENT_PATH"):
            payload = read_payload(environ["GITHUB_EVENT_PATH"])
        else:
            raise EventError("GitHub Actions event: GITHUB_EVENT_PATH is not set (or pass --event-file PAYLOAD)")
        return from_github(environ, payload, event_name=event_name)
    if event_name is not None:
        raise EventError(f"--event-name names a GitHub event; {provider} events are read from variables")
    variables = read_variables(event_file) if event_file is not None else environ
    return from_azure(variables) if provider == "azure" else from_gitlab(variables)


def _with_tree(event: Event, repo_path: str | os.PathLike[str]) -> Event:
    """Fill the tree sha of the event's commit from the local repo, when it has that commit."""
    if event.tree_sha is not None or not event.commit:
        return event
    from promoter import gitops

    tree = gitops.tree_of(repo_path, event.commit, quiet=True)
    return replace(event, tree_sha=tree) if tree else event


def detect(
    environ: Mapping[str, str] | None = None,
    *,
    provider: str | None = None,
    event_file: str | os.PathLike[str] | None = None,
    event_name: str | None = None,
    repo_path: str | os.PathLike[str] = ".",
    with_tree: bool = True,
) -> Event:
    """Detect the event from the CI environment (or an event file, or local git).

    Args:
        environ: process variables (default ``os.environ``).
        provider: force ``github``/``azure``/``gitlab``/``local``; detected when ``None``.
        event_file: a GitHub payload (implies ``github`` unless stated), or with
            ``provider`` azure/gitlab a JSON object of that provider's variables.
        event_name: the GitHub event name when it cannot be inferred from the payload.
        repo_path: the git checkout, used to fill the tree sha (and for local events).
        with_tree: look up the commit's tree sha in the local repo when possible.

    Raises:
        EventError: when the provider is unknown or its variables/payload are inconsistent.
    """
    environ = os.environ if environ is None else environ
    if provider is not None and provider not in PROVIDERS:
        raise EventError(f"--provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    chosen = provider or ("github" if event_file else provider_of(environ))
    if chosen == "local":
        if event_file is not None:
            raise EventError(f"--event-file is a CI event; use it with --provider {'/'.join(CI_PROVIDERS)}")
        return from_local(repo_path)
    event = _ci_event(chosen, environ, event_file, event_name)
    return _with_tree(event, repo_path) if with_tree else event


def replay_event(
    provider: str,
    event_file: str | os.PathLike[str] | None,
    event_name: str | None,
    environ: Mapping[str, str],
    repo_path: str | os.PathLike[str] = ".",
) -> Event:
    """A CI provider's event, re-run here (``promote replay --provider P [--event-file F]``).

    Args:
        provider: ``github``, ``azure`` or ``gitlab``.
        event_file: GitHub: the webhook payload (else ``GITHUB_EVENT_PATH`` from ``environ``).
            Azure DevOps / GitLab: a JSON object of the provider's predefined variables,
            which then replaces ``environ`` entirely.
        event_name: the GitHub event name when the payload does not tell (else
            ``GITHUB_EVENT_NAME``, else inferred from the payload's shape).
        environ: the variables to read when there is no event file (the caller passes
            ``os.environ``); with a GitHub payload, the ``GITHUB_*`` variables beside it.
        repo_path: the local checkout, for the tree sha of the event's commit.

    Raises:
        EventError: an unknown provider, an unreadable file or one that is not a JSON object
            (of strings, for Azure/GitLab), or variables that do not make an event (the
            message names the missing variable).
    """
    if provider not in CI_PROVIDERS:
        raise EventError(
            f"replay --provider must be one of {', '.join(CI_PROVIDERS)}, got {provider!r} "
            f"(state a local event instead: promote replay push BRANCH)"
        )
    return _with_tree(_ci_event(provider, environ, event_file, event_name), repo_path)
