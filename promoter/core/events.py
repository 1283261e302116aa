"""What happened: an :class:`Event` from GitHub Actions, Azure DevOps or GitLab. Pure; no I/O.

Each provider is parsed from values handed in: its variables as a mapping (and, for
GitHub, the webhook payload already read). Nothing here reads ``os.environ``, a file or
git; finding those is :mod:`promoter.app.sources`. Branch refs are normalised
(``refs/heads/x`` -> ``x``). Events that can never need a promotion (tag pushes, branch
deletions, PRs closed without merge) come back as an Event with ``nothing`` set to the
reason, never as an error.

A manual event says what it asks for (``action``: run | score | monitor | rollback), who asked
(``actor``) and why (``reason``); a rollback may name the version to restore
(``to_version``; ``None`` means the ``previous`` alias) and always needs a reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from promoter.core.branches import is_tag_ref, normalize
from promoter.errors import EventError

PROVIDERS = ("github", "azure", "gitlab", "local")
KINDS = ("pull_request", "push", "release", "schedule", "manual")
MANUAL_ACTIONS = ("run", "score", "monitor", "rollback")


@dataclass(frozen=True)
class Event:
    """A normalised CI (or local) event. Plain data; safe to print and serialise."""

    kind: str | None
    provider: str
    branch: str | None = None  # push/schedule/manual/release: the branch; PR: the target
    source_branch: str | None = None  # PR only: the head branch
    target_branch: str | None = None  # PR only: the base branch
    sha: str | None = None  # the commit CI checked out (a PR's merge commit on GitHub)
    head_sha: str | None = None  # PR: the head commit from the payload
    tree_sha: str | None = None
    pr_number: int | None = None
    actor: str | None = None
    run_url: str | None = None
    default_branch: str | None = None  # as the provider states it, when it does
    action: str | None = None  # manual: run | score | monitor | rollback
    reason: str | None = None  # manual: why it was asked for (a rollback always has one)
    to_version: int | None = None  # manual rollback: the version to restore; None = the `previous` alias
    nothing: str | None = None  # set when there is nothing to do, with the reason
    raw_name: str | None = None  # the provider's own event name

    @property
    def is_pull_request(self) -> bool:
        return self.kind == "pull_request"

    @property
    def commit(self) -> str | None:
        """The commit whose code runs: a PR's head, else the checked-out sha."""
        return self.head_sha or self.sha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nothing(provider: str, reason: str, raw_name: str | None = None, **kw: Any) -> Event:
    return Event(kind=None, provider=provider, nothing=reason, raw_name=raw_name, **kw)


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- manual actions

# How each source names the three fields of a manual request: (action, reason, to_version).
GITHUB_INPUTS = (
    "workflow_dispatch input 'action'",
    "workflow_dispatch input 'reason'",
    "workflow_dispatch input 'to_version'",
)
PROMOTE_VARIABLES = ("PROMOTE_ACTION", "PROMOTE_REASON", "PROMOTE_TO_VERSION")
CLI_OPTIONS = ("--action", "--reason", "--to-version")

ROLLBACK_NEEDS_REASON = "a rollback needs a reason (workflow_dispatch input 'reason' / PROMOTE_REASON / --reason)"

_VERSION = re.compile(r"[0-9]+")


def _text(value: Any) -> str | None:
    """A free-text value with surrounding whitespace removed; blank is ``None``.

    (Azure DevOps cannot leave a string parameter empty, so templates default it to ``' '``.)
    """
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _version(value: Any, name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EventError(f"{name} must be a model version number, got {value!r}")
    if isinstance(value, str):
        if not _VERSION.fullmatch(value.strip()):
            raise EventError(f"{name} must be a model version number (an integer), got {value!r}")
        value = int(value.strip())
    if value < 1:
        raise EventError(f"{name} must be a model version number (1 or more), got {value!r}")
    return value


def manual_request(
    action: Any, reason: Any, to_version: Any, names: tuple[str, str, str] = PROMOTE_VARIABLES
) -> tuple[str, str | None, int | None]:
    """Validate what a manual event asks for.

    Args:
        action: ``run`` | ``score`` | ``monitor`` | ``rollback``; blank means ``run``.
        reason: why; required for a rollback.
        to_version: a rollback's target version (an integer, or its decimal string);
            blank means the ``previous`` alias.
        names: how the source calls the three fields, for the error messages
            (:data:`GITHUB_INPUTS`, :data:`PROMOTE_VARIABLES`, :data:`CLI_OPTIONS`).

    Returns:
        ``(action, reason, to_version)``.

    Raises:
        EventError: an unknown action, a version that is not a positive integer, a
            version for an action other than rollback, or a rollback without a reason.
    """
    action_name, _reason_name, version_name = names
    act = _text(action) or "run"
    if act not in MANUAL_ACTIONS:
        raise EventError(f"{action_name} must be one of {', '.join(MANUAL_ACTIONS)}, got {act!r}")
    version = _version(to_version, version_name)
    why = _text(reason)
    if version is not None and act != "rollback":
        raise EventError(f"{version_name} is only for action 'rollback' (the action is {act!r})")
    if act == "rollback" and why is None:
        raise EventError(ROLLBACK_NEEDS_REASON)
    return act, why, version


# --------------------------------------------------------------------------- GitHub


def _infer_github_event_name(payload: Mapping[str, Any]) -> str:
    if "pull_request" in payload:
        return "pull_request"
    if "ref_type" in payload and "ref" in payload:
        return "delete" if "pusher_type" in payload and "master_branch" not in payload else "create"
    if "inputs" in payload and "workflow" in payload:
        return "workflow_dispatch"
    if "schedule" in payload:
        return "schedule"
    if "release" in payload:
        return "release"
    if "ref" in payload and ("before" in payload or "after" in payload or "commits" in payload):
        return "push"
    raise EventError("cannot tell which GitHub event this payload is; set GITHUB_EVENT_NAME or pass --event-name")


def from_github(environ: Mapping[str, str], payload: Mapping[str, Any], event_name: str | None = None) -> Event:
    """Build an Event from GitHub Actions variables and the webhook payload.

    Args:
        environ: ``GITHUB_*`` variables (may be empty when replaying a payload file).
        payload: the JSON object that ``GITHUB_EVENT_PATH`` names, already read by the
            caller (:func:`promoter.app.sources.read_payload`).
        event_name: overrides ``GITHUB_EVENT_NAME``.

    Raises:
        EventError: when the payload is of an unknown shape, or a workflow_dispatch's
            inputs ``action`` / ``reason`` / ``to_version`` are invalid.
    """
    if not isinstance(payload, Mapping):
        raise EventError(f"a GitHub event payload must be a JSON object, got {type(payload).__name__}")
    name = event_name or environ.get("GITHUB_EVENT_NAME") or _infer_github_event_name(payload)
    repo = payload.get("repository") or {}
    default_branch = repo.get("default_branch") if isinstance(repo, Mapping) else None
    sender = payload.get("sender") or {}
    actor = environ.get("GITHUB_ACTOR") or (sender.get("login") if isinstance(sender, Mapping) else None)
    run_url = None
    if environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        run_url = f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ['GITHUB_RUN_ID']}"
    common = dict(provider="github", actor=actor, run_url=run_url, default_branch=default_branch, raw_name=name)
    ref = environ.get("GITHUB_REF") or payload.get("ref")

    if name in ("pull_request", "pull_request_target"):
        pr = payload.get("pull_request")
        if not isinstance(pr, Mapping):
            raise EventError(f"GitHub {name} payload has no 'pull_request' object")
        action = payload.get("action")
        base = normalize((pr.get("base") or {}).get("ref") or environ.get("GITHUB_BASE_REF"))
        head = normalize((pr.get("head") or {}).get("ref") or environ.get("GITHUB_HEAD_REF"))
        number = _int(pr.get("number") or payload.get("number"))
        if action == "closed":
            if pr.get("merged"):
                # A merge is a push to the base branch; GitHub also sends that push.
                return Event(kind="push", branch=base, sha=pr.get("merge_commit_sha"), pr_number=number, **common)
            return _nothing(
                "github",
                f"pull request #{number} was closed without merging",
                name,
                default_branch=default_branch,
                actor=actor,
                pr_number=number,
            )
        if action not in (None, "opened", "synchronize", "reopened", "ready_for_review", "edited"):
            return _nothing(
                "github",
                f"pull request action {action!r} does not change code",
                name,
                default_branch=default_branch,
                actor=actor,
                pr_number=number,
            )
        if not base or not head:
            raise EventError("GitHub pull_request payload lacks pull_request.base.ref or head.ref")
        return Event(
            kind="pull_request",
            branch=base,
            source_branch=head,
            target_branch=base,
            sha=environ.get("GITHUB_SHA") or pr.get("merge_commit_sha"),
            head_sha=(pr.get("head") or {}).get("sha"),
            pr_number=number,
            **common,
        )

    if name == "push":
        ref = payload.get("ref") or ref
        if is_tag_ref(ref):
            return _nothing(
                "github", f"tag push ({ref}) is not a branch", name, default_branch=default_branch, actor=actor
            )
        if payload.get("deleted"):
            return _nothing(
                "github", f"branch deletion ({normalize(ref)})", name, default_branch=default_branch, actor=actor
            )
        if not ref:
            raise EventError("GitHub push event has no ref (payload 'ref' or GITHUB_REF)")
        sha = payload.get("after") or environ.get("GITHUB_SHA")
        return Event(kind="push", branch=normalize(ref), sha=sha, **common)

    if name == "create":
        if payload.get("ref_type") != "branch":
            return _nothing(
                "github",
                f"created a {payload.get('ref_type', 'ref')} ({payload.get('ref')}), not a branch",
                name,
                default_branch=default_branch,
                actor=actor,
            )
        return Event(kind="push", branch=normalize(payload.get("ref")), sha=environ.get("GITHUB_SHA"), **common)

    if name == "delete":
        return _nothing(
            "github",
            f"deleted {payload.get('ref_type', 'ref')} {payload.get('ref')}",
            name,
            default_branch=default_branch,
            actor=actor,
        )

    if name in ("workflow_dispatch", "repository_dispatch"):
        inputs = payload.get("inputs") or {}
        if not isinstance(inputs, Mapping):
            inputs = {}
        action, reason, to_version = manual_request(
            inputs.get("action"), inputs.get("reason"), inputs.get("to_version"), GITHUB_INPUTS
        )
        if is_tag_ref(ref):
            return _nothing("github", f"manual run on a tag ({ref})", name, default_branch=default_branch)
        return Event(
            kind="manual",
            branch=normalize(ref),
            sha=environ.get("GITHUB_SHA"),
            action=action,
            reason=reason,
            to_version=to_version,
            **common,
        )

    if name == "schedule":
        return Event(kind="schedule", branch=normalize(ref) or default_branch, sha=environ.get("GITHUB_SHA"), **common)

    if name == "release":
        rel = payload.get("release") or {}
        if payload.get("action") not in (None, "published", "released", "created"):
            return _nothing("github", f"release action {payload.get('action')!r}", name, default_branch=default_branch)
        branch = normalize(rel.get("target_commitish")) if isinstance(rel, Mapping) else None
        return Event(kind="release", branch=branch, sha=environ.get("GITHUB_SHA"), **common)

    return _nothing(
        "github", f"GitHub event {name!r} is not one promote acts on", name, default_branch=default_branch, actor=actor
    )


# --------------------------------------------------------------------------- Azure DevOps

_AZURE_PUSH_REASONS = ("IndividualCI", "BatchedCI", "ResourceTrigger", "BuildCompletion")


def from_azure(environ: Mapping[str, str]) -> Event:
    """Build an Event from Azure DevOps predefined variables.

    A ``Manual`` build reads ``PROMOTE_ACTION``, ``PROMOTE_REASON`` and ``PROMOTE_TO_VERSION``
    (the template maps its run parameters to them); the actor is ``BUILD_REQUESTEDFOR``.
    ``BUILD_SOURCEBRANCHNAME`` keeps only the last path segment, so the branch is always
    read from ``BUILD_SOURCEBRANCH``. A PR target may be ``refs/heads/main`` (Azure Repos)
    or ``main`` (GitHub-hosted repos); both normalise to ``main``.
    """
    reason = environ.get("BUILD_REASON", "")
    ref = environ.get("BUILD_SOURCEBRANCH")
    run_url = None
    if environ.get("SYSTEM_COLLECTIONURI") and environ.get("BUILD_BUILDID"):
        run_url = (
            f"{environ['SYSTEM_COLLECTIONURI'].rstrip('/')}/"
            f"{environ.get('SYSTEM_TEAMPROJECT', '')}/_build/results?buildId={environ['BUILD_BUILDID']}"
        )
    common = dict(provider="azure", actor=environ.get("BUILD_REQUESTEDFOR"), run_url=run_url, raw_name=reason)
    sha = environ.get("BUILD_SOURCEVERSION")
    if reason == "PullRequest":
        source = normalize(environ.get("SYSTEM_PULLREQUEST_SOURCEBRANCH"))
        target = normalize(environ.get("SYSTEM_PULLREQUEST_TARGETBRANCH"))
        if not source or not target:
            raise EventError(
                "Azure DevOps PullRequest build lacks SYSTEM_PULLREQUEST_SOURCEBRANCH "
                "or SYSTEM_PULLREQUEST_TARGETBRANCH"
            )
        number = _int(environ.get("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")) or _int(
            environ.get("SYSTEM_PULLREQUEST_PULLREQUESTID")
        )
        return Event(
            kind="pull_request",
            branch=target,
            source_branch=source,
            target_branch=target,
            sha=sha,
            head_sha=environ.get("SYSTEM_PULLREQUEST_SOURCECOMMITID") or None,
            pr_number=number,
            **common,
        )
    if is_tag_ref(ref):
        return _nothing("azure", f"tag build ({ref}) is not a branch", reason)
    if not ref and reason:
        raise EventError("Azure DevOps build lacks BUILD_SOURCEBRANCH")
    branch = normalize(ref)
    if reason in _AZURE_PUSH_REASONS:
        return Event(kind="push", branch=branch, sha=sha, **common)
    if reason == "Schedule":
        return Event(kind="schedule", branch=branch, sha=sha, **common)
    if reason == "Manual":
        action, why, to_version = manual_request(
            environ.get("PROMOTE_ACTION"), environ.get("PROMOTE_REASON"), environ.get("PROMOTE_TO_VERSION")
        )
        return Event(kind="manual", branch=branch, sha=sha, action=action, reason=why, to_version=to_version, **common)
    if not reason:
        raise EventError("Azure DevOps build lacks BUILD_REASON")
    return _nothing("azure", f"build reason {reason!r} is not one promote acts on", reason)


# --------------------------------------------------------------------------- GitLab


def from_gitlab(environ: Mapping[str, str]) -> Event:
    """Build an Event from GitLab CI predefined variables.

    Pipelines started by hand (``web``, ``api``, ``trigger``, ...) read ``PROMOTE_ACTION``,
    ``PROMOTE_REASON`` and ``PROMOTE_TO_VERSION``; the actor is ``GITLAB_USER_LOGIN``.
    """
    source = environ.get("CI_PIPELINE_SOURCE", "")
    common = dict(
        provider="gitlab",
        actor=environ.get("GITLAB_USER_LOGIN"),
        run_url=environ.get("CI_PIPELINE_URL"),
        default_branch=environ.get("CI_DEFAULT_BRANCH"),
        raw_name=source,
    )
    sha = environ.get("CI_COMMIT_SHA")
    if source in ("merge_request_event", "external_pull_request_event"):
        src = environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or environ.get(
            "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME"
        )
        dst = environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or environ.get(
            "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME"
        )
        if not src or not dst:
            raise EventError(
                "GitLab merge request pipeline lacks CI_MERGE_REQUEST_SOURCE_BRANCH_NAME "
                "or CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
            )
        return Event(
            kind="pull_request",
            branch=dst,
            source_branch=src,
            target_branch=dst,
            sha=sha,
            head_sha=environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or sha,
            pr_number=_int(environ.get("CI_MERGE_REQUEST_IID")),
            **common,
        )
    if environ.get("CI_COMMIT_TAG"):
        return _nothing(
            "gitlab",
            f"tag pipeline ({environ['CI_COMMIT_TAG']}) is not a branch",
            source,
            default_branch=common["default_branch"],
        )
    branch = environ.get("CI_COMMIT_BRANCH") or normalize(environ.get("CI_COMMIT_REF_NAME"))
    if source == "push":
        if not branch:
            raise EventError("GitLab push pipeline lacks CI_COMMIT_BRANCH")
        return Event(kind="push", branch=branch, sha=sha, **common)
    if source == "schedule":
        return Event(kind="schedule", branch=branch, sha=sha, **common)
    if source in ("web", "api", "trigger", "pipeline", "chat"):
        action, why, to_version = manual_request(
            environ.get("PROMOTE_ACTION"), environ.get("PROMOTE_REASON"), environ.get("PROMOTE_TO_VERSION")
        )
        return Event(kind="manual", branch=branch, sha=sha, action=action, reason=why, to_version=to_version, **common)
    if not source:
        raise EventError("GitLab pipeline lacks CI_PIPELINE_SOURCE")
    return _nothing(
        "gitlab",
        f"pipeline source {source!r} is not one promote acts on",
        source,
        default_branch=common["default_branch"],
    )


# --------------------------------------------------------------------------- which provider


def provider_of(environ: Mapping[str, str]) -> str:
    """Which CI provider this process runs under, from its marker variable."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("TF_BUILD", "").lower() == "true":
        return "azure"
    if environ.get("GITLAB_CI") == "true":
        return "gitlab"
    return "local"
