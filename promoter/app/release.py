"""``promote cut-release``: cut a release branch and annotated tag from a commit that is ready.

Plan first, then act: every refusal is checked before anything is created, and a push
that fails removes the local branch and tag again, so a refused or failed cut leaves
the repository as it was.

Refuses: a dirty work tree; a missing source branch; a source branch behind its remote;
a release branch or tag that exists (locally or on the remote); a name that would not
resolve to the prod environment; a source commit without a passing staging candidate
(unless ``force`` with a ``reason``, which is recorded in the tag message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promoter import gitops
from promoter.core.approvals import TICKET_TRAILER
from promoter.errors import InvalidInput

if TYPE_CHECKING:
    from promoter.config import ChangeTicketPolicy, Settings
    from promoter.core.plan import Plan

Readiness = Callable[[str], "tuple[bool, str]"]
"""``readiness(commit_sha) -> (ready, why)``: does this commit have a passing staging candidate?"""


class ReleaseRefused(InvalidInput):
    """Raised when a release cannot be cut: dirty tree, missing or behind source, name taken,
    name outside the prod branch rules, or the source commit not ready."""


@dataclass(frozen=True)
class ReleaseNames:
    branch: str
    tag: str


@dataclass(frozen=True)
class ReleaseResult:
    """What ``cut_release`` did (or, for a dry run, would do)."""

    branch: str
    tag: str
    source: str
    sha: str
    remote: str | None
    pushed: bool
    forced: bool
    reason: str | None
    readiness: str
    tag_message: str
    plan: "Plan | None" = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "tag": self.tag,
            "source": self.source,
            "sha": self.sha,
            "remote": self.remote,
            "pushed": self.pushed,
            "forced": self.forced,
            "reason": self.reason,
            "readiness": self.readiness,
            "tag_message": self.tag_message,
            "notes": list(self.notes),
            "plan": self.plan.to_dict() if self.plan is not None else None,
        }


def release_names(name: str | None = None, version: str | None = None, project: str | None = None) -> ReleaseNames:
    """The branch and tag for ``--name release/X`` or ``--version X``.

    ``--version 1.2`` and ``--name release/1.2`` both give branch ``release/1.2`` and
    tag ``v1.2``; a name without a ``/`` (``release``) gets the tag ``<name>-<version>``
    only with ``--version``. A project under ``models/`` (``project``) releases from
    ``release/<project>/<version>`` with the tag ``<project>-v<version>``, so two projects of one
    repository never claim the same tag; ``--name release/readmission/1.0`` gives that tag too.

    Raises:
        InvalidInput: for neither or both of ``name`` and ``version``, or a bad name.
    """
    if (name is None) == (version is None):
        raise InvalidInput("give exactly one of --name release/X or --version X")
    if version is not None:
        v = version.strip()
        v = v[1:] if v[:1] in ("v", "V") and v[1:2].isdigit() else v
        if not v or "/" in v or v.startswith("-"):
            raise InvalidInput(f"--version {version!r} is not a version (e.g. 1.2 or 2024.06)")
        if project:
            return ReleaseNames(branch=f"release/{project}/{v}", tag=f"{project}-v{v}")
        return ReleaseNames(branch=f"release/{v}", tag=f"v{v}")
    stripped = name.strip() if name else ""
    if not stripped or stripped != name:
        raise InvalidInput(f"--name {name!r} is not a branch name")
    if "/" in stripped:
        parts = stripped.split("/")
        last = parts[-1]
        tag = f"v{last}" if last[:1].isdigit() else last
        middle = "-".join(p for p in parts[1:-1] if p)  # release/<project>/<version>
        return ReleaseNames(branch=stripped, tag=f"{middle}-{tag}" if middle else tag)
    raise InvalidInput(f"--name {name!r} has no version part to name the tag after; use --name {name}/X or --version X")


def staging_candidate_passed(
    tracking_uri: str, registry_uri: str | None, model_name: str, sha: str, tree: str | None = None
) -> tuple[bool, str]:
    """Is there a version of ``model_name`` built from commit ``sha`` whose expectations passed?

    Looks for model versions tagged ``promote.commit = sha`` (or, when ``tree`` is given,
    ``promote.tree = tree``: a merge that kept the PR's tree reuses the PR's version, which
    carries the PR head's commit) and ``promote.expectations = PASS``.

    Args:
        tracking_uri: the MLflow tracking server (or SQLite store).
        registry_uri: the model registry, when it is not the tracking server.
        model_name: the staging registered model, e.g. ``churn-staging``.
        sha: the full commit sha.

    Returns:
        ``(ready, why)`` with a sentence a release manager can act on.
    """
    from promoter.core import tags
    from promoter.registry import Registry

    versions = Registry(tracking_uri, registry_uri).versions_built_from(model_name, sha, tree)
    passing = sorted(int(v.version) for v in versions if (v.tags or {}).get(tags.EXPECTATIONS) == "PASS")
    if passing:
        return True, (f"{model_name} version {passing[-1]} was built from {sha[:12]} and passed its expectations")
    if versions:
        seen = ", ".join(
            f"v{v.version}: {(v.tags or {}).get(tags.EXPECTATIONS, 'not checked')}"
            for v in sorted(versions, key=lambda v: int(v.version))
        )
        return False, f"{model_name} has versions from {sha[:12]} but none passed its expectations ({seen})"
    return False, (f"no version of {model_name} was built from {sha[:12]}: let CI run on the source branch first")


def mlflow_readiness(settings: "Settings", environment: str | None = None, repo: str = ".") -> Readiness:
    """The default readiness check: a passing candidate in the staging registered model.

    Args:
        settings: settings loaded for the staging environment (its tracking URI and token).
        environment: the environment whose model to ask (default: the pull-request
            environment, ``staging``).
    """
    import os

    env = environment or settings.env or settings.promotion.pull_request_fallback
    model = settings.model_name_for(env)
    project = settings.project

    def readiness(sha: str) -> tuple[bool, str]:
        if project.tracking_token is not None:
            os.environ.setdefault("MLFLOW_TRACKING_TOKEN", project.tracking_token.get_secret_value())
        return staging_candidate_passed(
            project.tracking_uri, project.registry_uri, model, sha, gitops.tree_of(repo, sha)
        )

    return readiness


def _would_be_plan(settings: "Settings", branch: str, sha: str, source: str) -> "Plan":
    from promoter.core import plan as planning
    from promoter.core.events import Event

    event = Event(kind="push", provider="local", branch=branch, sha=sha, default_branch=source, raw_name="push")
    return planning.build(event, settings)


def cut_release(
    repo: str = ".",
    *,
    source: str = "main",
    name: str | None = None,
    version: str | None = None,
    push: bool = False,
    remote: str = "origin",
    force: bool = False,
    reason: str | None = None,
    readiness: Readiness | None = None,
    settings: "Settings | None" = None,
    project: str | None = None,
    ticket: str | None = None,
    ticket_policy: "ChangeTicketPolicy | None" = None,
) -> ReleaseResult:
    """Cut release branch ``name`` (or ``release/<version>``) and its annotated tag from ``source``.

    Args:
        repo: any path inside the git work tree.
        source: the branch to release from (its head commit is released).
        name: the release branch, e.g. ``release/1.2``; or give ``version``.
        version: ``1.2`` -> branch ``release/1.2``, tag ``v1.2``.
        project: a project under ``models/``: ``--version 1.2`` -> ``release/<project>/1.2``,
            tag ``<project>-v1.2``.
        push: push the branch and tag to ``remote`` (atomically).
        remote: the remote to compare with and push to.
        force: skip the readiness check; needs ``reason``, which goes into the tag message.
        reason: why the release is forced.
        ticket: the change ticket, written in the tag as ``Change-Ticket: <ticket>``.
        ticket_policy: the prod environment's ``change_ticket`` policy: a ticket it requires
            must be given, and match its pattern.
        readiness: ``readiness(sha) -> (ready, why)``; required unless ``force``.
        settings: when given, the branch must resolve to the prod environment, and the
            result carries the plan CI will follow for the push.

    Returns:
        A :class:`ReleaseResult`.

    Raises:
        ReleaseRefused: for each refusal listed in the module docstring (exit code 2).
        InvalidInput: for bad arguments (both or neither of name/version, force without reason).
        GitError: when git itself fails (not a repository, remote unreachable, push rejected).
    """
    names = release_names(name, version, project)
    reason = reason.strip() if reason else None
    if force and not reason:
        raise InvalidInput("--force needs --reason TEXT: the reason is recorded in the release tag")
    if not force and readiness is None:
        raise InvalidInput("no readiness check given (pass one, or --force with --reason)")
    root = gitops.repo_root(repo)
    if not gitops.valid_branch_name(root, names.branch):
        raise ReleaseRefused(f"{names.branch!r} is not a valid git branch name")
    if not gitops.valid_tag_name(root, names.tag):
        raise ReleaseRefused(f"{names.tag!r} is not a valid git tag name")
    if not gitops.valid_branch_name(root, source):
        raise ReleaseRefused(f"--from {source!r} is not a valid git branch name")

    plan = None
    ticket = ticket.strip() if ticket else None
    if ticket_policy is not None or ticket:
        from promoter.app import tickets
        from promoter.config import ChangeTicketPolicy

        prod = settings.promotion.prod_environment if settings is not None else "prod"
        tickets.check(ticket_policy or ChangeTicketPolicy(), ticket, prod, "--ticket")
    if settings is not None:
        prod = settings.promotion.prod_environment
        plan = _would_be_plan(settings, names.branch, "0" * 40, source)
        if plan.environment != prod:
            where = plan.environment or "no environment"
            raise ReleaseRefused(
                f"{names.branch!r} resolves to {where} ({plan.rule or plan.nothing}), not {prod}: "
                f"a release branch must match a {prod} branch rule in promotion.yml"
            )

    notes: list[str] = []
    if gitops.is_dirty(root):
        raise ReleaseRefused(
            f"the work tree at {root} has uncommitted or untracked changes: commit or "
            f"remove them first (a release is cut from committed code only)"
        )
    if not gitops.local_branch_exists(root, source):
        raise ReleaseRefused(f"source branch {source!r} does not exist here (fetch it, or name another with --from)")
    with_remote = gitops.has_remote(root, remote)
    if push and not with_remote:
        raise ReleaseRefused(f"--push: no remote called {remote!r} (see `git remote -v`)")
    if with_remote:
        remote_has = gitops.remote_refs(
            root, remote, f"refs/heads/{source}", f"refs/heads/{names.branch}", f"refs/tags/{names.tag}"
        )
        if f"refs/heads/{source}" in remote_has:
            gitops.fetch(root, remote, source)
            counts = gitops.ahead_behind(root, source, remote)
            if counts and counts[1] > 0:
                raise ReleaseRefused(
                    f"{source!r} is {counts[1]} commit(s) behind {remote}/{source}: pull first, "
                    f"so the release holds what CI tested"
                )
            if counts and counts[0] > 0:
                notes.append(
                    f"{source!r} is {counts[0]} commit(s) ahead of {remote}/{source}: those commits have not run in CI"
                )
        else:
            notes.append(f"{remote} has no branch {source!r}")
        if f"refs/heads/{names.branch}" in remote_has:
            raise ReleaseRefused(f"branch {names.branch!r} already exists on {remote}")
        if f"refs/tags/{names.tag}" in remote_has:
            raise ReleaseRefused(f"tag {names.tag!r} already exists on {remote}")
    else:
        notes.append(f"no remote {remote!r}: not compared with a remote")
    if gitops.local_branch_exists(root, names.branch):
        raise ReleaseRefused(f"branch {names.branch!r} already exists locally")
    if gitops.local_tag_exists(root, names.tag):
        raise ReleaseRefused(f"tag {names.tag!r} already exists locally")

    sha = gitops.resolve(root, f"refs/heads/{source}")
    if sha is None:
        raise ReleaseRefused(f"source branch {source!r} has no commits")
    if force:
        why = f"readiness check skipped (--force): {reason}"
    else:
        ready, why = readiness(sha)  # type: ignore[misc]
        if not ready:
            raise ReleaseRefused(
                f"{source} @ {sha[:12]} is not ready for release: {why} (override with --force --reason TEXT)"
            )

    message = f"Release {names.branch} from {source} @ {sha}\n\n" + (
        f"Forced: {reason}\n" if force else f"Readiness: {why}\n"
    )
    if ticket:
        message += f"{TICKET_TRAILER} {ticket}\n"
    gitops.create_branch_and_tag(root, names.branch, sha, names.tag, message)
    pushed = False
    if push:
        try:
            gitops.push(root, remote, f"refs/heads/{names.branch}", f"refs/tags/{names.tag}")
        except Exception:
            gitops.delete_branch_and_tag(root, names.branch, names.tag)
            raise
        pushed = True
    if settings is not None:
        plan = _would_be_plan(settings, names.branch, sha, source)
    return ReleaseResult(
        branch=names.branch,
        tag=names.tag,
        source=source,
        sha=sha,
        remote=remote if with_remote else None,
        pushed=pushed,
        forced=force,
        reason=reason,
        readiness=why,
        tag_message=message,
        plan=plan,
        notes=tuple(notes),
    )


def render(result: ReleaseResult) -> str:
    """What was cut, and what CI will do next."""
    lines = [
        f"created branch {result.branch} and tag {result.tag} at {result.source} @ {result.sha[:12]}",
        f"readiness:    {result.readiness}",
    ]
    for note in result.notes:
        lines.append(f"note:         {note}")
    if result.pushed:
        lines.append(f"pushed:       {result.branch} and {result.tag} to {result.remote}")
        lead = "CI will now run"
    else:
        push_cmd = f"git push --atomic {result.remote or 'origin'} {result.branch} {result.tag}"
        lines.append(f"not pushed:   run `{push_cmd}` (or cut again with --push)")
        lead = "once pushed, CI will run"
    p = result.plan
    if p is not None:
        if p.is_empty:
            lines.append(f"{lead}: nothing ({p.nothing})")
        else:
            lines.append(f"{lead} in {p.environment} ({p.rule}) on {p.registered_model}:")
            for i, step in enumerate(p.steps, 1):
                lines.append(f"  {i:>2}. {step.name:<12} {step.reason}")
    return "\n".join(lines) + "\n"
