"""Where a run result is published: the console, GitHub Actions, Azure DevOps, GitLab CI.

Each sink writes only where its provider's variables exist (``GITHUB_STEP_SUMMARY``,
``GITHUB_OUTPUT``, ``SYSTEM_COLLECTIONURI``, ``CI_API_V4_URL`` ...), so the same call is safe
at a laptop, in a fork's pull request and in a protected release job. A report that cannot be
posted (no token, a fork, the API down) becomes a warning: publishing never raises and
never changes the run's exit code. Every line written is masked (:mod:`promoter.masking`).

Entry point: :func:`publish`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

from promoter.core.events import provider_of
from promoter.report import markdown
from promoter.report.masking import Masker, masked_stream

GITHUB_API_VERSION = "2022-11-28"
AZURE_API_VERSION = "7.1"
MAX_COMMENT_PAGES = 30  # 3,000 comments: enough for any PR, and bounded


class ReportFailed(Exception):
    """Raised inside a sink when one API call cannot be completed; becomes a warning."""


@dataclass
class Context:
    """What every sink gets: the variables, a masked output stream, and where warnings go."""

    environ: Mapping[str, str]
    out: TextIO
    masker: Masker
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(self.masker.mask(message))

    def write_file(self, path: str, text: str) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(self.masker.mask(text))


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _event(result: Mapping[str, Any]) -> Mapping[str, Any]:
    ev = result.get("event")
    return ev if isinstance(ev, Mapping) else {}


def _describe_http_error(exc: Exception) -> str:
    """A short reason for a failed request: no URL query, no headers, no token."""
    import requests

    if isinstance(exc, requests.exceptions.RetryError):
        reason = exc.args[0] if exc.args else exc
        inner = getattr(reason, "reason", None)
        return f"gave up retrying ({inner or 'too many retries'})"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot connect"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    return type(exc).__name__


def _call(
    session: Any,
    method: str,
    url: str,
    what: str,
    *,
    accept: tuple[int, ...] = (),
    denied_hint: str = "check the token's permissions; fork pull requests get a read-only token",
    **kwargs: Any,
) -> Any:
    """One API request; raises :class:`ReportFailed` with a short, token-free reason.

    ``accept``: error statuses returned to the caller instead of raised (it decides);
    ``denied_hint``: what a 401/403/404 tells the reader to check.
    """
    import requests

    path = urlsplit(url).path
    try:
        resp = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise ReportFailed(f"{what}: {method} {path}: {_describe_http_error(exc)}") from None
    if resp.status_code >= 400 and resp.status_code not in accept:
        hint = ""
        if resp.status_code == 429 or resp.status_code >= 500:
            hint = " (still failing after retries)"
        elif resp.status_code in (401, 403, 404):
            hint = f" ({denied_hint})"
        raise ReportFailed(f"{what}: {method} {path} answered HTTP {resp.status_code}{hint}")
    return resp


# --------------------------------------------------------------------------- console


class ConsoleSink:
    """Plain text report on the output stream; always available."""

    name = "console"

    def publish(self, result: Mapping[str, Any], ctx: Context) -> None:
        ctx.out.write(markdown.text(result))

    def warning(self, message: str) -> str:
        return f"warning: {message}"


# --------------------------------------------------------------------------- GitHub


def _gh_escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_prop(s: str) -> str:
    return _gh_escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github_annotations(result: Mapping[str, Any]) -> list[str]:
    """Workflow commands for a config error (pointing at file and line) and a failing gate."""
    lines = []
    error = result.get("error")
    if isinstance(error, Mapping) and error.get("message"):
        props = []
        if error.get("file"):
            props.append(f"file={_gh_escape_prop(str(error['file']))}")
            if error.get("line") is not None:
                props.append(f"line={int(error['line'])}")
                if error.get("column") is not None:
                    props.append(f"col={int(error['column'])}")
        props.append("title=promote")
        lines.append(f"::error {','.join(props)}::{_gh_escape_data(str(error['message']))}")
    verdict = result.get("verdict") if isinstance(result.get("verdict"), Mapping) else {}
    failed = [r for r in verdict.get("reasons") or [] if isinstance(r, Mapping) and not r.get("passed")]
    env = result.get("environment") or ""
    if verdict.get("status") == "FAIL":
        text = "; ".join(f"{r.get('rule')}: {r.get('message')}" for r in failed) or "the gate said no"
        kind = "error" if verdict.get("blocking", True) else "warning"
        lines.append(f"::{kind} title={_gh_escape_prop(f'promote gate ({env}): FAIL')}::{_gh_escape_data(text)}")
    elif verdict.get("status") == "NEEDS_APPROVAL":
        text = "; ".join(f"{r.get('rule')}: {r.get('message')}" for r in failed) or "approval required"
        lines.append(
            f"::warning title={_gh_escape_prop(f'promote gate ({env}): NEEDS_APPROVAL')}::{_gh_escape_data(text)}"
        )
    return lines


def _github_output_lines(values: Mapping[str, str]) -> str:
    out = []
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            delim = "promote_EOF_" + os.urandom(6).hex()
            out.append(f"{key}<<{delim}\n{value}\n{delim}")
        else:
            out.append(f"{key}={value}")
    return "\n".join(out) + "\n"


def _is_fork_pr(environ: Mapping[str, str]) -> bool:
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return False
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        pr = payload.get("pull_request") or {}
        head = (pr.get("head") or {}).get("repo") or {}
        base = (pr.get("base") or {}).get("repo") or {}
    except (OSError, ValueError, AttributeError):
        return False
    if not head or not base:
        return False
    return bool(head.get("fork")) or (
        head.get("full_name") and base.get("full_name") and head["full_name"] != base["full_name"]
    )


class GitHubSink:
    """Job summary, step outputs, annotations, sticky PR comment, commit status."""

    name = "github"

    def publish(self, result: Mapping[str, Any], ctx: Context) -> None:
        env = ctx.environ
        if env.get("GITHUB_STEP_SUMMARY"):
            ctx.write_file(env["GITHUB_STEP_SUMMARY"], markdown.summary(result) + "\n")
        if env.get("GITHUB_OUTPUT"):
            ctx.write_file(env["GITHUB_OUTPUT"], _github_output_lines(markdown.outputs(result)))
        for line in github_annotations(result):
            ctx.out.write(line + "\n")
        self._api(result, ctx)

    def warning(self, message: str) -> str:
        return f"::warning title=promote report::{_gh_escape_data(message)}"

    def _api(self, result: Mapping[str, Any], ctx: Context) -> None:
        from promoter.report import http

        env = ctx.environ
        repo = env.get("GITHUB_REPOSITORY")
        event = _event(result)
        pr = event.get("pr_number") if event.get("kind") == "pull_request" else None
        sha = event.get("head_sha") or event.get("sha")
        if not repo or not (pr or sha):
            return
        token = env.get("GITHUB_TOKEN") or env.get("PROMOTE_GITHUB_TOKEN")
        if not token:
            ctx.warn(
                "GITHUB_TOKEN is not set: no PR comment or commit status was posted "
                "(map `GITHUB_TOKEN: ${{ github.token }}` into the step's env)"
            )
            return
        if pr and _is_fork_pr(env):
            ctx.warn(
                f"pull request #{pr} comes from a fork, whose token is read-only: the report is in the job summary only"
            )
            return
        api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        session = http.session(
            token,
            policy=http.HttpPolicy.from_env(env),
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": GITHUB_API_VERSION},
        )
        with session:
            try:
                if pr:
                    self.upsert_comment(
                        session,
                        api,
                        repo,
                        int(pr),
                        ctx.masker.mask(markdown.comment(result)),
                        markdown.marker(result.get("environment"), result.get("registered_model")),
                    )
                if sha:
                    state, description = markdown.status(result)
                    body = {
                        "state": state,
                        "description": ctx.masker.mask(description),
                        "context": markdown.status_context(result),
                    }
                    if event.get("run_url"):
                        body["target_url"] = event["run_url"]
                    _call(session, "POST", f"{api}/repos/{repo}/statuses/{sha}", "commit status", json=body)
            except ReportFailed as exc:
                # One failure means the API is unhappy with us; stop rather than hammer it.
                ctx.warn(f"GitHub report not posted: {exc}")

    @staticmethod
    def find_comment(session: Any, api: str, repo: str, pr: int, mark: str) -> int | None:
        """The id of the first comment on PR ``pr`` whose body holds ``mark`` (all pages)."""
        url: str | None = f"{api}/repos/{repo}/issues/{pr}/comments?per_page=100"
        for _ in range(MAX_COMMENT_PAGES):
            if not url:
                break
            resp = _call(session, "GET", url, "PR comment")
            for c in resp.json():
                if mark in (c.get("body") or ""):
                    return int(c["id"])
            url = resp.links.get("next", {}).get("url")
        return None

    def upsert_comment(self, session: Any, api: str, repo: str, pr: int, body: str, mark: str) -> int:
        """Update this environment's sticky comment in place, or create it. Returns its id."""
        found = self.find_comment(session, api, repo, pr, mark)
        if found is not None:
            _call(session, "PATCH", f"{api}/repos/{repo}/issues/comments/{found}", "PR comment", json={"body": body})
            return found
        resp = _call(session, "POST", f"{api}/repos/{repo}/issues/{pr}/comments", "PR comment", json={"body": body})
        return int(resp.json()["id"])


# --------------------------------------------------------------------------- Azure DevOps


def _az_escape_data(s: str) -> str:
    return s.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def _az_escape_prop(s: str) -> str:
    return _az_escape_data(s).replace(";", "%3B").replace("]", "%5D")


_AZ_STATE = {"success": "succeeded", "failure": "failed", "pending": "pending", "error": "error"}
_AZ_THREAD = {"success": "fixed", "failure": "active", "pending": "pending", "error": "active"}


def azure_commands(result: Mapping[str, Any]) -> list[str]:
    """Logging commands: output variables, and issues for a config error or a failing gate."""
    lines = [
        f"##vso[task.setvariable variable={k};isoutput=true]{_az_escape_data(v)}"
        for k, v in markdown.outputs(result).items()
    ]
    error = result.get("error")
    if isinstance(error, Mapping) and error.get("message"):
        props = ["type=error"]
        if error.get("file"):
            props.append(f"sourcepath={_az_escape_prop(str(error['file']))}")
            if error.get("line") is not None:
                props.append(f"linenumber={int(error['line'])}")
                if error.get("column") is not None:
                    props.append(f"columnnumber={int(error['column'])}")
        lines.append(f"##vso[task.logissue {';'.join(props)};]{_az_escape_data(str(error['message']))}")
    verdict = result.get("verdict") if isinstance(result.get("verdict"), Mapping) else {}
    if verdict.get("status") in ("FAIL", "NEEDS_APPROVAL"):
        failed = [
            f"{r.get('rule')}: {r.get('message')}"
            for r in verdict.get("reasons") or []
            if isinstance(r, Mapping) and not r.get("passed")
        ]
        kind = "error" if verdict["status"] == "FAIL" and verdict.get("blocking", True) else "warning"
        text = f"promote gate ({result.get('environment')}): {verdict['status']}: " + ("; ".join(failed) or "-")
        lines.append(f"##vso[task.logissue type={kind};]{_az_escape_data(text)}")
    return lines


class AzureSink:
    """Logging commands, uploaded summary, one PR thread per environment, PR status."""

    name = "azure"

    def publish(self, result: Mapping[str, Any], ctx: Context) -> None:
        for line in azure_commands(result):
            ctx.out.write(line + "\n")
        folder = ctx.environ.get("AGENT_TEMPDIRECTORY") or ctx.environ.get("BUILD_ARTIFACTSTAGINGDIRECTORY")
        path = Path(folder or tempfile.gettempdir()) / f"promote-summary-{result.get('environment') or 'none'}.md"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(ctx.masker.mask(markdown.summary(result)), encoding="utf-8")
            ctx.out.write(f"##vso[task.uploadsummary]{path}\n")
        except OSError as exc:
            ctx.warn(f"cannot write the summary file {path}: {exc.strerror}")
        self._api(result, ctx)

    def finish(self, result: Mapping[str, Any], ctx: Context) -> None:
        code = result.get("exit_code")
        if code in (0, None):
            outcome = "SucceededWithIssues" if ctx.warnings else "Succeeded"
        else:
            outcome = "Failed"
        ctx.out.write(f"##vso[task.complete result={outcome};]{_az_escape_data(markdown.headline(result))}\n")

    def warning(self, message: str) -> str:
        return f"##vso[task.logissue type=warning;]{_az_escape_data(message)}"

    def _api(self, result: Mapping[str, Any], ctx: Context) -> None:
        from promoter.report import http

        env = ctx.environ
        event = _event(result)
        pr = env.get("SYSTEM_PULLREQUEST_PULLREQUESTID") or (
            event.get("pr_number") if event.get("kind") == "pull_request" else None
        )
        if event.get("kind") != "pull_request" or not pr:
            return
        if env.get("BUILD_REPOSITORY_PROVIDER", "TfsGit") not in ("TfsGit", ""):
            ctx.warn(
                f"repository provider {env['BUILD_REPOSITORY_PROVIDER']} has no Azure Repos PR threads: "
                f"the report is in the build summary only"
            )
            return
        collection = env.get("SYSTEM_COLLECTIONURI")
        project = env.get("SYSTEM_TEAMPROJECTID") or env.get("SYSTEM_TEAMPROJECT")
        repo = env.get("BUILD_REPOSITORY_ID")
        if not (collection and project and repo):
            ctx.warn(
                "SYSTEM_COLLECTIONURI, SYSTEM_TEAMPROJECT or BUILD_REPOSITORY_ID is not set: no PR thread was posted"
            )
            return
        token = env.get("SYSTEM_ACCESSTOKEN")
        if not token:
            ctx.warn(
                "SYSTEM_ACCESSTOKEN is not set: no PR thread or status was posted "
                "(map `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` into the step's env)"
            )
            return
        if _true(env.get("SYSTEM_PULLREQUEST_ISFORK")):
            ctx.warn(f"pull request {pr} comes from a fork: the report is in the build summary only")
            return
        base = (
            f"{collection.rstrip('/')}/{quote(project, safe='')}/_apis/git/repositories/"
            f"{quote(repo, safe='')}/pullRequests/{int(pr)}"
        )
        state, description = markdown.status(result)
        session = http.session(token, policy=http.HttpPolicy.from_env(env))
        with session:
            try:
                self.upsert_thread(
                    session,
                    base,
                    ctx.masker.mask(markdown.comment(result)),
                    markdown.marker(result.get("environment"), result.get("registered_model")),
                    _AZ_THREAD[state],
                )
                body = {
                    "state": _AZ_STATE[state],
                    "description": ctx.masker.mask(description),
                    "context": {"name": markdown.status_context(result).replace("/", "-"), "genre": "promote"},
                }
                if event.get("run_url"):
                    body["targetUrl"] = event["run_url"]
                _call(session, "POST", f"{base}/statuses?api-version={AZURE_API_VERSION}", "PR status", json=body)
            except ReportFailed as exc:
                ctx.warn(f"Azure DevOps report not posted: {exc}")

    @staticmethod
    def upsert_thread(session: Any, base: str, body: str, mark: str, status: str) -> int:
        """Update this environment's PR thread in place (first comment), or create it."""
        resp = _call(session, "GET", f"{base}/threads?api-version={AZURE_API_VERSION}", "PR thread")
        for thread in resp.json().get("value", []):
            if thread.get("isDeleted"):
                continue
            comments = thread.get("comments") or []
            first = comments[0] if comments else {}
            if mark in (first.get("content") or ""):
                tid, cid = int(thread["id"]), int(first.get("id", 1))
                _call(
                    session,
                    "PATCH",
                    f"{base}/threads/{tid}/comments/{cid}?api-version={AZURE_API_VERSION}",
                    "PR thread",
                    json={"content": body},
                )
                if thread.get("status") != status:
                    _call(
                        session,
                        "PATCH",
                        f"{base}/threads/{tid}?api-version={AZURE_API_VERSION}",
                        "PR thread",
                        json={"status": status},
                    )
                return tid
        resp = _call(
            session,
            "POST",
            f"{base}/threads?api-version={AZURE_API_VERSION}",
            "PR thread",
            json={"comments": [{"parentCommentId": 0, "content": body, "commentType": 1}], "status": status},
        )
        return int(resp.json()["id"])


# --------------------------------------------------------------------------- GitLab


# GitLab's commit status states are pending, running, success, failed, canceled. Only terminal
# ones are posted: the status lands in the job's own pipeline (``pipeline_id``), where a pending
# or running external status would keep that pipeline (and the parent's ``strategy: depend``
# trigger job) running until someone updated it by hand; posting ``pending`` twice is also a
# 400 ("Cannot transition status via :enqueue from :pending"). A run waiting for approval exits
# 4, which fails its job anyway; the description says it is waiting.
_GL_STATE = {"success": "success", "failure": "failed", "pending": "failed", "error": "failed"}
GITLAB_TOKEN_VARIABLES = ("PROMOTE_GITLAB_TOKEN", "GITLAB_TOKEN")
_GL_DENIED = "check PROMOTE_GITLAB_TOKEN: a project access token with the api scope and at least the Developer role"


def _digits(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if text.isdigit() else None


class GitLabSink:
    """One sticky merge-request note per (model, environment), commit status.

    The plain-text report is in the job log (the console sink); GitLab has no job summary.
    """

    name = "gitlab"

    def publish(self, result: Mapping[str, Any], ctx: Context) -> None:
        self._api(result, ctx)

    def warning(self, message: str) -> str:
        return f"warning: {message}"

    def _api(self, result: Mapping[str, Any], ctx: Context) -> None:
        from promoter.report import http

        env = ctx.environ
        event = _event(result)
        api = (env.get("CI_API_V4_URL") or "").rstrip("/")
        project = env.get("CI_PROJECT_ID")
        # A merge request pipeline names its MR; the child pipeline promote's template triggers
        # does not, so the event (the parent's variables) is asked too.
        iid = _digits(env.get("CI_MERGE_REQUEST_IID")) or (
            _digits(event.get("pr_number")) if event.get("kind") == "pull_request" else None
        )
        sha = env.get("CI_COMMIT_SHA") or event.get("head_sha") or event.get("sha")
        if not api or not project or not (iid or sha):
            return
        token = next((env[name] for name in GITLAB_TOKEN_VARIABLES if env.get(name)), None)
        if not token:
            job_token = " (CI_JOB_TOKEN cannot write notes or statuses)" if env.get("CI_JOB_TOKEN") else ""
            ctx.warn(
                f"PROMOTE_GITLAB_TOKEN is not set{job_token}: no merge request note or commit status was posted "
                f"(add a project access token with the api scope as the masked CI/CD variable PROMOTE_GITLAB_TOKEN)"
            )
            return
        ctx.masker.add(token)
        # The MR belongs to the target project (a fork's pipeline runs in the fork).
        mr_project = env.get("CI_MERGE_REQUEST_PROJECT_ID") or project
        session = http.session(policy=http.HttpPolicy.from_env(env), headers={"PRIVATE-TOKEN": token})
        with session:
            try:
                if iid:
                    self.upsert_note(
                        session,
                        f"{api}/projects/{quote(mr_project, safe='')}/merge_requests/{iid}",
                        ctx.masker.mask(markdown.comment(result)),
                        markdown.marker(result.get("environment"), result.get("registered_model")),
                    )
                if sha:
                    self.post_status(session, f"{api}/projects/{quote(project, safe='')}", sha, result, ctx)
            except ReportFailed as exc:
                # One failure means the API is unhappy with us; stop rather than hammer it.
                ctx.warn(f"GitLab report not posted: {exc}")

    @staticmethod
    def post_status(session: Any, base: str, sha: str, result: Mapping[str, Any], ctx: Context) -> None:
        """``POST /projects/:id/statuses/:sha``, in this job's pipeline when it is known."""
        state, description = markdown.status(result)
        body: dict[str, Any] = {
            "state": _GL_STATE[state],
            "name": markdown.status_context(result),
            "description": ctx.masker.mask(description),
        }
        pipeline = _digits(ctx.environ.get("CI_PIPELINE_ID"))
        if pipeline:
            body["pipeline_id"] = int(pipeline)
        run_url = _event(result).get("run_url")
        if run_url:
            body["target_url"] = run_url
        _call(session, "POST", f"{base}/statuses/{sha}", "commit status", json=body, denied_hint=_GL_DENIED)

    @staticmethod
    def find_note(session: Any, base: str, mark: str) -> int | None:
        """The id of the first note on the MR whose body holds ``mark`` (all pages, bounded)."""
        page: str | None = "1"
        for _ in range(MAX_COMMENT_PAGES):
            if not page:
                break
            resp = _call(
                session, "GET", f"{base}/notes?per_page=100&page={page}", "merge request note", denied_hint=_GL_DENIED
            )
            for note in resp.json():
                if not note.get("system") and mark in (note.get("body") or ""):
                    return int(note["id"])
            page = (resp.headers.get("x-next-page") or "").strip() or None
        return None

    def upsert_note(self, session: Any, base: str, body: str, mark: str) -> int:
        """Update this (model, environment)'s sticky note in place, or create it. Returns its id."""
        found = self.find_note(session, base, mark)
        if found is not None:
            resp = _call(
                session,
                "PUT",
                f"{base}/notes/{found}",
                "merge request note",
                accept=(403,),
                denied_hint=_GL_DENIED,
                json={"body": body},
            )
            if resp.status_code != 403:
                return found
            # Only a note's author may edit it: the token was replaced (a new bot user). Post a
            # new note; notes list newest first, so the next run finds and updates that one.
        resp = _call(
            session, "POST", f"{base}/notes", "merge request note", denied_hint=_GL_DENIED, json={"body": body}
        )
        return int(resp.json()["id"])


# --------------------------------------------------------------------------- entry point


def select_sinks(environ: Mapping[str, str], console: bool = True) -> list[Any]:
    """The sinks whose provider this process runs under (console first, when asked)."""
    sinks: list[Any] = [ConsoleSink()] if console else []
    provider = provider_of(environ)
    if provider == "github":
        sinks.append(GitHubSink())
    elif provider == "azure":
        sinks.append(AzureSink())
    elif provider == "gitlab":
        sinks.append(GitLabSink())
    return sinks


def annotate_error(
    error: Mapping[str, Any], environ: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> int:
    """Only the provider's error annotation, for a failure before any run result existed
    (an unreadable event, a bad CLI argument). Returns how many lines were written."""
    environ = os.environ if environ is None else environ
    stream = sys.stdout if stream is None else stream
    provider = provider_of(environ)
    if provider == "github":
        lines = github_annotations({"error": error})
    elif provider == "azure":
        lines = [line for line in azure_commands({"error": error}) if "task.logissue" in line]
    else:
        return 0
    out = masked_stream(stream, Masker.from_env(environ))
    for line in lines:
        out.write(line + "\n")
    out.flush()
    return len(lines)


def publish(
    result: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    *,
    console: bool = True,
) -> list[str]:
    """Publish a run result everywhere this process's CI provider offers, and never fail.

    Args:
        result: the run result dict (event, environment, candidate, champion, verdict, ...).
        environ: CI variables (default ``os.environ``); picks the sinks and their targets.
        stream: where log lines and workflow/logging commands go (default ``sys.stdout``).
        console: also print the plain-text report (turn off when the caller printed it).

    Returns:
        The warnings (masked), e.g. "GITHUB_TOKEN is not set ...". They are also written
        to ``stream`` as provider warnings. Publishing never raises and never changes the
        run's exit code.
    """
    environ = os.environ if environ is None else environ
    stream = sys.stdout if stream is None else stream
    masker = Masker.from_env(environ)
    out = masked_stream(stream, masker)
    ctx = Context(environ=environ, out=out, masker=masker)
    sinks = select_sinks(environ, console)
    for sink in sinks:
        try:
            sink.publish(result, ctx)
        except Exception as exc:  # noqa: BLE001 - a report never fails the promotion
            ctx.warn(f"{sink.name} report failed: {type(exc).__name__}: {exc}")
    provider_sink = sinks[-1] if sinks else ConsoleSink()
    for message in ctx.warnings:
        out.write(provider_sink.warning(message) + "\n")
    for sink in sinks:
        finish = getattr(sink, "finish", None)
        if finish is not None:
            try:
                finish(result, ctx)
            except Exception as exc:  # noqa: BLE001
                ctx.warn(f"{sink.name} report failed: {type(exc).__name__}: {exc}")
    out.flush()
    return list(ctx.warnings)
