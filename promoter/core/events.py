"""What happened: an :class:`Event` from GitHub Actions, Azure DevOps, GitLab, or local git.

Each provider is read from its own environment variables (and, for GitHub, the payload
file). Branch refs are normalised (``refs/heads/x`` -> ``x``). Events that can never
need a promotion (tag pushes, branch deletions, PRs closed without merge) come back
as an Event with ``nothing`` set to the reason, never as an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from promoter.core.branches import is_tag_ref, normalize
from promoter.errors import EventError

PROVIDERS = ("github", "azure", "gitlab", "local")
KINDS = ("pull_request", "push", "release", "schedule", "manual")
MANUAL_ACTIONS = ("run", "score", "rollback")


@dataclass(frozen=True)
class Event:
    """A normalised CI (or local) event. Plain data; safe to print and serialise."""

    kind: str | None
    provider: str
    branch: str | None = None          # push/schedule/manual/release: the branch; PR: the target
    source_branch: str | None = None   # PR only: the head branch
    target_branch: str | None = None   # PR only: the base branch
    sha: str | None = None             # the commit CI checked out (a PR's merge commit on GitHub)
    head_sha: str | None = None        # PR: the head commit from the payload
    tree_sha: str | None = None
    pr_number: int | None = None
    actor: str | None = None
    run_url: str | None = None
    default_branch: str | None = None  # as the provider states it, when it does
    action: str | None = None          # manual: run | score | rollback
    nothing: str | None = None         # set when there is nothing to do, with the reason
    raw_name: str | None = None        # the provider's own event name

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
    raise EventError("cannot tell which GitHub event this payload is; set GITHUB_EVENT_NAME "
                     "or pass --event-name")


def from_github(environ: Mapping[str, str], payload: Mapping[str, Any] | None = None,
                event_name: str | None = None) -> Event:
    """Build an Event from GitHub Actions variables and the webhook payload.

    Args:
        environ: ``GITHUB_*`` variables (may be empty when replaying a payload file).
        payload: the JSON that ``GITHUB_EVENT_PATH`` names; read from there when ``None``.
        event_name: overrides ``GITHUB_EVENT_NAME``.

    Raises:
        EventError: when the payload is missing, unreadable or of an unknown shape.
    """
    if payload is None:
        path = environ.get("GITHUB_EVENT_PATH")
        payload = read_payload(path) if path else {}
    name = event_name or environ.get("GITHUB_EVENT_NAME") or _infer_github_event_name(payload)
    repo = payload.get("repository") or {}
    default_branch = repo.get("default_branch") if isinstance(repo, Mapping) else None
    sender = payload.get("sender") or {}
    actor = environ.get("GITHUB_ACTOR") or (sender.get("login") if isinstance(sender, Mapping) else None)
    run_url = None
    if environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        run_url = f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ['GITHUB_RUN_ID']}"
    common = dict(provider="github", actor=actor, run_url=run_url, default_branch=default_branch,
                  raw_name=name)
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
                return Event(kind="push", branch=base, sha=pr.get("merge_commit_sha"), pr_number=number,
                             **common)
            return _nothing("github", f"pull request #{number} was closed without merging", name,
                            default_branch=default_branch, actor=actor, pr_number=number)
        if action not in (None, "opened", "synchronize", "reopened", "ready_for_review", "edited"):
            return _nothing("github", f"pull request action {action!r} does not change code", name,
                            default_branch=default_branch, actor=actor, pr_number=number)
        if not base or not head:
            raise EventError("GitHub pull_request payload lacks pull_request.base.ref or head.ref")
        return Event(kind="pull_request", branch=base, source_branch=head, target_branch=base,
                     sha=environ.get("GITHUB_SHA") or pr.get("merge_commit_sha"),
                     head_sha=(pr.get("head") or {}).get("sha"), pr_number=number, **common)

    if name == "push":
        ref = payload.get("ref") or ref
        if is_tag_ref(ref):
            return _nothing("github", f"tag push ({ref}) is not a branch", name,
                            default_branch=default_branch, actor=actor)
        if payload.get("deleted"):
            return _nothing("github", f"branch deletion ({normalize(ref)})", name,
                            default_branch=default_branch, actor=actor)
        if not ref:
            raise EventError("GitHub push event has no ref (payload 'ref' or GITHUB_REF)")
        sha = payload.get("after") or environ.get("GITHUB_SHA")
        return Event(kind="push", branch=normalize(ref), sha=sha, **common)

    if name == "create":
        if payload.get("ref_type") != "branch":
            return _nothing("github", f"created a {payload.get('ref_type', 'ref')} "
                            f"({payload.get('ref')}), not a branch", name,
                            default_branch=default_branch, actor=actor)
        return Event(kind="push", branch=normalize(payload.get("ref")), sha=environ.get("GITHUB_SHA"), **common)

    if name == "delete":
        return _nothing("github", f"deleted {payload.get('ref_type', 'ref')} {payload.get('ref')}", name,
                        default_branch=default_branch, actor=actor)

    if name in ("workflow_dispatch", "repository_dispatch"):
        inputs = payload.get("inputs") or {}
        action = (inputs.get("action") if isinstance(inputs, Mapping) else None) or "run"
        if action not in MANUAL_ACTIONS:
            raise EventError(f"workflow_dispatch input 'action' must be one of "
                             f"{', '.join(MANUAL_ACTIONS)}, got {action!r}")
        if is_tag_ref(ref):
            return _nothing("github", f"manual run on a tag ({ref})", name, default_branch=default_branch)
        return Event(kind="manual", branch=normalize(ref), sha=environ.get("GITHUB_SHA"), action=action, **common)

    if name == "schedule":
        return Event(kind="schedule", branch=normalize(ref) or default_branch, sha=environ.get("GITHUB_SHA"),
                     **common)

    if name == "release":
        rel = payload.get("release") or {}
        if payload.get("action") not in (None, "published", "released", "created"):
            return _nothing("github", f"release action {payload.get('action')!r}", name,
                            default_branch=default_branch)
        branch = normalize(rel.get("target_commitish")) if isinstance(rel, Mapping) else None
        return Event(kind="release", branch=branch, sha=environ.get("GITHUB_SHA"), **common)

    return _nothing("github", f"GitHub event {name!r} is not one promote acts on", name,
                    default_branch=default_branch, actor=actor)


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a webhook payload file. Raises EventError naming the file when it is bad."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EventError(f"{p}: event file not found") from None
    except json.JSONDecodeError as exc:
        raise EventError(f"{p}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError(f"{p}: cannot read event file: {exc}") from None
    if not isinstance(data, dict):
        raise EventError(f"{p}: an event payload must be a JSON object")
    return data


# --------------------------------------------------------------------------- Azure DevOps

_AZURE_PUSH_REASONS = ("IndividualCI", "BatchedCI", "ResourceTrigger", "BuildCompletion")


def from_azure(environ: Mapping[str, str]) -> Event:
    """Build an Event from Azure DevOps predefined variables.

    ``BUILD_SOURCEBRANCHNAME`` keeps only the last path segment, so the branch is always
    read from ``BUILD_SOURCEBRANCH``. A PR target may be ``refs/heads/main`` (Azure Repos)
    or ``main`` (GitHub-hosted repos); both normalise to ``main``.
    """
    reason = environ.get("BUILD_REASON", "")
    ref = environ.get("BUILD_SOURCEBRANCH")
    run_url = None
    if environ.get("SYSTEM_COLLECTIONURI") and environ.get("BUILD_BUILDID"):
        run_url = (f"{environ['SYSTEM_COLLECTIONURI'].rstrip('/')}/"
                   f"{environ.get('SYSTEM_TEAMPROJECT', '')}/_build/results?buildId={environ['BUILD_BUILDID']}")
    common = dict(provider="azure", actor=environ.get("BUILD_REQUESTEDFOR"), run_url=run_url, raw_name=reason)
    sha = environ.get("BUILD_SOURCEVERSION")
    if reason == "PullRequest":
        source = normalize(environ.get("SYSTEM_PULLREQUEST_SOURCEBRANCH"))
        target = normalize(environ.get("SYSTEM_PULLREQUEST_TARGETBRANCH"))
        if not source or not target:
            raise EventError("Azure DevOps PullRequest build lacks SYSTEM_PULLREQUEST_SOURCEBRANCH "
                             "or SYSTEM_PULLREQUEST_TARGETBRANCH")
        number = _int(environ.get("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")) or \
            _int(environ.get("SYSTEM_PULLREQUEST_PULLREQUESTID"))
        return Event(kind="pull_request", branch=target, source_branch=source, target_branch=target, sha=sha,
                     head_sha=environ.get("SYSTEM_PULLREQUEST_SOURCECOMMITID") or None, pr_number=number,
                     **common)
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
        action = environ.get("PROMOTE_ACTION") or "run"
        if action not in MANUAL_ACTIONS:
            raise EventError(f"PROMOTE_ACTION must be one of {', '.join(MANUAL_ACTIONS)}, got {action!r}")
        return Event(kind="manual", branch=branch, sha=sha, action=action, **common)
    if not reason:
        raise EventError("TF_BUILD is set but BUILD_REASON is empty")
    return _nothing("azure", f"build reason {reason!r} is not one promote acts on", reason)


# --------------------------------------------------------------------------- GitLab

def from_gitlab(environ: Mapping[str, str]) -> Event:
    """Build an Event from GitLab CI predefined variables."""
    source = environ.get("CI_PIPELINE_SOURCE", "")
    common = dict(provider="gitlab", actor=environ.get("GITLAB_USER_LOGIN"), run_url=environ.get("CI_PIPELINE_URL"),
                  default_branch=environ.get("CI_DEFAULT_BRANCH"), raw_name=source)
    sha = environ.get("CI_COMMIT_SHA")
    if source in ("merge_request_event", "external_pull_request_event"):
        src = environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or environ.get("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME")
        dst = environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or environ.get("CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME")
        if not src or not dst:
            raise EventError("GitLab merge request pipeline lacks CI_MERGE_REQUEST_SOURCE_BRANCH_NAME "
                             "or CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
        return Event(kind="pull_request", branch=dst, source_branch=src, target_branch=dst, sha=sha,
                     head_sha=environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or sha,
                     pr_number=_int(environ.get("CI_MERGE_REQUEST_IID")), **common)
    if environ.get("CI_COMMIT_TAG"):
        return _nothing("gitlab", f"tag pipeline ({environ['CI_COMMIT_TAG']}) is not a branch", source,
                        default_branch=common["default_branch"])
    branch = environ.get("CI_COMMIT_BRANCH") or normalize(environ.get("CI_COMMIT_REF_NAME"))
    if source == "push":
        if not branch:
            raise EventError("GitLab push pipeline lacks CI_COMMIT_BRANCH")
        return Event(kind="push", branch=branch, sha=sha, **common)
    if source == "schedule":
        return Event(kind="schedule", branch=branch, sha=sha, **common)
    if source in ("web", "api", "trigger", "pipeline", "chat"):
        action = environ.get("PROMOTE_ACTION") or "run"
        if action not in MANUAL_ACTIONS:
            raise EventError(f"PROMOTE_ACTION must be one of {', '.join(MANUAL_ACTIONS)}, got {action!r}")
        return Event(kind="manual", branch=branch, sha=sha, action=action, **common)
    if not source:
        raise EventError("GITLAB_CI is set but CI_PIPELINE_SOURCE is empty")
    return _nothing("gitlab", f"pipeline source {source!r} is not one promote acts on", source,
                    default_branch=common["default_branch"])


# --------------------------------------------------------------------------- local / by hand

def from_local(repo_path: str | os.PathLike[str] = ".", *, kind: str = "push", branch: str | None = None,
               source_branch: str | None = None, target_branch: str | None = None,
               sha: str | None = None, action: str | None = None, actor: str | None = None,
               pr_number: int | None = None) -> Event:
    """An event stated by hand, filling what is not given from the local git repo.

    ``kind=pull_request`` needs ``source_branch`` (default: current branch) and ``target_branch``.
    """
    from promoter import gitops  # local import: gitpython only when we need the repo

    if kind not in KINDS:
        raise EventError(f"--event must be one of {', '.join(KINDS)}, got {kind!r}")
    head = gitops.head_info(repo_path, allow_missing=bool(branch or source_branch))
    actor = actor or head.author
    if kind == "pull_request":
        src = source_branch or head.branch
        if not src:
            raise EventError("a pull request needs --from BRANCH (HEAD is detached)")
        if not target_branch:
            raise EventError("a pull request needs --into BRANCH")
        commit = sha or gitops.resolve(repo_path, src) or head.sha
        return Event(kind="pull_request", provider="local", branch=normalize(target_branch),
                     source_branch=normalize(src), target_branch=normalize(target_branch), sha=commit,
                     head_sha=commit, tree_sha=gitops.tree_of(repo_path, commit), pr_number=pr_number,
                     actor=actor, default_branch=head.default_branch, raw_name="pull_request")
    name = normalize(branch) or head.branch
    if not name:
        raise EventError("HEAD is detached: pass --branch NAME")
    commit = sha or (gitops.resolve(repo_path, name) if branch else head.sha) or head.sha
    if kind == "manual":
        action = action or "run"
        if action not in MANUAL_ACTIONS:
            raise EventError(f"--action must be one of {', '.join(MANUAL_ACTIONS)}, got {action!r}")
    return Event(kind=kind, provider="local", branch=name, sha=commit, tree_sha=gitops.tree_of(repo_path, commit),
                 actor=actor, action=action if kind == "manual" else None, default_branch=head.default_branch,
                 raw_name=kind)


# --------------------------------------------------------------------------- detection

def provider_of(environ: Mapping[str, str]) -> str:
    """Which CI provider this process runs under, from its marker variable."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("TF_BUILD", "").lower() == "true":
        return "azure"
    if environ.get("GITLAB_CI") == "true":
        return "gitlab"
    return "local"


def detect(environ: Mapping[str, str] | None = None, *, provider: str | None = None,
           event_file: str | None = None, event_name: str | None = None,
           repo_path: str | os.PathLike[str] = ".", with_tree: bool = True) -> Event:
    """Detect the event from the CI environment (or a payload file, or local git).

    Args:
        environ: process variables (default ``os.environ``).
        provider: force ``github``/``azure``/``gitlab``/``local``; detected when ``None``.
        event_file: a GitHub payload to replay (implies ``github`` unless stated).
        event_name: the GitHub event name when it cannot be inferred from the payload.
        repo_path: the git checkout, used to fill the tree sha.
        with_tree: look up the commit's tree sha in the local repo when possible.

    Raises:
        EventError: when the provider is unknown or its variables/payload are inconsistent.
    """
    environ = os.environ if environ is None else environ
    if provider is not None and provider not in PROVIDERS:
        raise EventError(f"--provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    chosen = provider or ("github" if event_file else provider_of(environ))
    if event_file and chosen != "github":
        raise EventError(f"--event-file is a GitHub webhook payload; it cannot be used with --provider {chosen}")
    if chosen == "github":
        payload = read_payload(event_file) if event_file else None
        if event_file is None and not environ.get("GITHUB_EVENT_PATH"):
            raise EventError("GitHub Actions detected but GITHUB_EVENT_PATH is not set")
        event = from_github(environ, payload, event_name=event_name)
    elif chosen == "azure":
        event = from_azure(environ)
    elif chosen == "gitlab":
        event = from_gitlab(environ)
    else:
        return from_local(repo_path)
    if with_tree and event.tree_sha is None and event.commit:
        from promoter import gitops

        tree = gitops.tree_of(repo_path, event.commit, quiet=True)
        if tree:
            event = replace(event, tree_sha=tree)
    return event
