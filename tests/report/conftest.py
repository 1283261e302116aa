"""A real HTTP server on 127.0.0.1 standing in for the GitHub, Azure DevOps and GitLab REST APIs.

It keeps comments, threads, statuses, issues, work items, workflow dispatches, pipeline runs,
GitLab triggers, merge request notes and webhook bodies in memory, checks the bearer token
(GitLab: the ``PRIVATE-TOKEN`` header), paginates comment and issue lists with a ``Link`` header
like GitHub (GitLab notes with ``x-next-page``), and can be told to answer some requests with
faults (429 with ``Retry-After``, 502 storms) before it answers properly.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

TOKEN = "ghs_s3cr3tT0kenValue0123456789"
AZ_TOKEN = "azdo-acc3ss-t0ken-9876543210"
GITLAB_TRIGGER_TOKEN = "glptt-tr1gg3r-t0ken-5555"
GL_TOKEN = "glpat-pr0jectAcc3ssT0ken-4242"  # a project access token, sent as PRIVATE-TOKEN
GL_JOB_TOKEN = "glcbt-j0bT0kenValue-7777"  # CI_JOB_TOKEN: the fake (like GitLab) refuses it for notes


@dataclass
class Fault:
    method: str
    path_regex: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1  # how many matching requests get the fault (-1: all)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    auth: str | None
    body: Any
    at: float
    status: int = 0
    content_type: str | None = None
    private_token: str | None = None  # GitLab's PRIVATE-TOKEN header


class FakeApi:
    """State of the fake GitHub + Azure DevOps service."""

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.tokens = {f"Bearer {TOKEN}", f"Bearer {AZ_TOKEN}"}
        self.comments: dict[int, list[dict[str, Any]]] = {}  # GitHub: PR -> comments
        self.statuses: list[dict[str, Any]] = []  # GitHub commit statuses
        self.threads: dict[int, list[dict[str, Any]]] = {}  # Azure: PR -> threads
        self.pr_statuses: list[dict[str, Any]] = []  # Azure PR statuses
        self.issues: dict[str, list[dict[str, Any]]] = {}  # GitHub: "owner/repo" -> issues
        self.dispatches: list[dict[str, Any]] = []  # GitHub workflow_dispatch requests
        self.work_items: dict[int, dict[str, Any]] = {}  # Azure: id -> {"id", "fields"}
        self.pipeline_runs: list[dict[str, Any]] = []  # Azure pipeline runs queued
        self.triggers: list[dict[str, Any]] = []  # GitLab pipeline triggers
        self.hooks: dict[str, list[Any]] = {}  # webhook name -> bodies
        self.changes: dict[str, dict[str, Any]] = {}  # ticket system: change id -> {"state": ...}
        self.notes: dict[int, list[dict[str, Any]]] = {}  # GitLab: MR iid -> notes, oldest first
        self.gl_statuses: list[dict[str, Any]] = []  # GitLab commit statuses
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._next_id = 1000
        self.lock = threading.Lock()
        self.base_url = ""

    def add_fault(
        self, method: str, path_regex: str, status: int, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` matching requests (``-1``: all) with ``status``."""
        self.faults.append(Fault(method, path_regex, status, dict(headers or {}), times))

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def requests_to(self, method: str, pattern: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.search(pattern, s.path)]

    # ------------------------------------------------------------------ routing
    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        auth: str | None,
        content_type: str | None = None,
        private_token: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        for f in self.faults:
            if f.method == method and re.search(f.path_regex, path) and f.times != 0:
                if f.times > 0:
                    f.times -= 1
                return f.status, {"message": "fault"}, f.headers
        # A change-ticket system: GET /itsm/changes/<id> -> {"result": {"state": ...}} (bearer token)
        m = re.fullmatch(r"/itsm/changes/([^/]+)", path)
        if m and method == "GET":
            if auth != "Bearer itsm-token":
                return 401, {"message": "Bad credentials"}, {}
            change = self.changes.get(m.group(1))
            return (404, {"message": "no such change"}, {}) if change is None else (200, {"result": change}, {})
        # Unauthenticated routes: a webhook (its URL is the secret), a GitLab trigger (token in the body).
        m = re.fullmatch(r"/hooks/([^/]+)", path)
        if m and method == "POST":
            self.hooks.setdefault(m.group(1), []).append(body)
            return 200, {"ok": True}, {}
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/trigger/pipeline", path)
        if m and method == "POST":
            return self._gitlab_trigger(unquote(m.group(1)), body or {})
        if path.startswith("/api/v4/"):
            return self._gitlab(method, path, query, body, private_token)
        if auth not in self.tokens:
            return 401, {"message": "Bad credentials"}, {}
        routed = self._issues(method, path, query, body)
        if routed is None:
            routed = self._azure_boards(method, path, query, body, content_type)
        if routed is not None:
            return routed
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path)
        if m and method == "GET":
            items = self.comments.get(int(m.group(3)), [])
            page = int(query.get("page", ["1"])[0])
            per = min(int(query.get("per_page", ["30"])[0]), self.page_size)
            chunk = items[(page - 1) * per : page * per]
            headers = {}
            if page * per < len(items):
                nxt = f"{self.base_url}{path}?per_page={per}&page={page + 1}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            return 200, chunk, headers
        if m and method == "POST":
            c = {"id": self.next_id(), "body": body["body"], "user": {"login": "github-actions[bot]"}}
            self.comments.setdefault(int(m.group(3)), []).append(c)
            return 201, c, {}
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)", path)
        if m and method == "PATCH":
            for items in self.comments.values():
                for c in items:
                    if c["id"] == int(m.group(3)):
                        c["body"] = body["body"]
                        return 200, c, {}
            return 404, {"message": "Not Found"}, {}
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]+)", path)
        if m and method == "POST":
            self.statuses.append({"sha": m.group(3), **body})
            return 201, {"id": self.next_id(), **body}, {}

        m = re.fullmatch(r"/([^/]+)/([^/]+)/_apis/git/repositories/([^/]+)/pullRequests/(\d+)/(.*)", path)
        if m:
            if query.get("api-version") != ["7.1"]:
                return 400, {"message": "api-version 7.1 required"}, {}
            pr, rest = int(m.group(4)), m.group(5)
            threads = self.threads.setdefault(pr, [])
            if rest == "threads" and method == "GET":
                return 200, {"value": threads, "count": len(threads)}, {}
            if rest == "threads" and method == "POST":
                t = {
                    "id": self.next_id(),
                    "status": body.get("status"),
                    "isDeleted": False,
                    "comments": [{"id": 1, "parentCommentId": 0, "content": c["content"]} for c in body["comments"]],
                }
                threads.append(t)
                return 200, t, {}
            mt = re.fullmatch(r"threads/(\d+)(?:/comments/(\d+))?", rest)
            if mt and method == "PATCH":
                thread = next((t for t in threads if t["id"] == int(mt.group(1))), None)
                if thread is None:
                    return 404, {"message": "no thread"}, {}
                if mt.group(2):
                    comment = next((c for c in thread["comments"] if c["id"] == int(mt.group(2))), None)
                    if comment is None:
                        return 404, {"message": "no comment"}, {}
                    comment["content"] = body["content"]
                    return 200, comment, {}
                thread.update({k: v for k, v in body.items() if k == "status"})
                return 200, thread, {}
            if rest == "statuses" and method == "POST":
                self.pr_statuses.append({"pr": pr, **body})
                return 200, {"id": self.next_id(), **body}, {}
        return 404, {"message": f"no route {method} {path}"}, {}

    # ------------------------------------------------------------------ issues, dispatches (GitHub)
    def _issues(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]] | None:
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues", path)
        if m and method == "GET":
            wanted = [x for x in query.get("labels", [""])[0].split(",") if x]
            state = query.get("state", ["open"])[0]
            items = [
                i
                for i in self.issues.get(m.group(1), [])
                if (state == "all" or i["state"] == state)
                and all(x in [lb["name"] for lb in i["labels"]] for x in wanted)
            ]
            page = int(query.get("page", ["1"])[0])
            per = min(int(query.get("per_page", ["30"])[0]), self.page_size)
            headers = {}
            if page * per < len(items):
                nxt = f"{self.base_url}{path}?{urlencode({'labels': ','.join(wanted), 'state': state})}"
                headers["Link"] = f'<{nxt}&per_page={per}&page={page + 1}>; rel="next"'
            return 200, items[(page - 1) * per : page * per], headers
        if m and method == "POST":
            issues = self.issues.setdefault(m.group(1), [])
            issue = {
                "number": len(issues) + 1,
                "title": body["title"],
                "body": body.get("body"),
                "state": "open",
                "labels": [{"name": x} for x in body.get("labels", [])],
            }
            issues.append(issue)
            return 201, issue, {}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)", path)
        if m and method == "PATCH":
            issue = next((i for i in self.issues.get(m.group(1), []) if i["number"] == int(m.group(2))), None)
            if issue is None:
                return 404, {"message": "Not Found"}, {}
            issue.update({k: v for k, v in body.items() if k in ("title", "body", "state", "state_reason")})
            return 200, issue, {}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/dispatches", path)
        if m and method == "POST":
            if not isinstance(body, dict) or not body.get("ref"):
                return 422, {"message": "ref is required"}, {}
            self.dispatches.append({"repo": m.group(1), "workflow": unquote(m.group(2)), **body})
            return 204, None, {}
        return None

    # ------------------------------------------------------------------ boards, pipelines (Azure DevOps)
    def _azure_boards(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, content_type: str | None
    ) -> tuple[int, Any, dict[str, str]] | None:
        m = re.fullmatch(r"/([^/]+)/([^/]+)/_apis/(wit/wiql|wit/workitems/.+|pipelines/\d+/runs)", path)
        if not m:
            return None
        if query.get("api-version") != ["7.1"]:
            return 400, {"message": "api-version 7.1 required"}, {}
        rest = m.group(3)
        if rest == "wit/wiql" and method == "POST":
            q = body["query"]
            tags = re.findall(r"\[System\.Tags\] CONTAINS '((?:[^']|'')*)'", q)
            not_states = re.findall(r"\[System\.State\] <> '((?:[^']|'')*)'", q)
            types = re.findall(r"\[System\.WorkItemType\] = '((?:[^']|'')*)'", q)
            hits = []
            for wid, item in sorted(self.work_items.items(), reverse="DESC" in q):
                f = item["fields"]
                have = [t.strip() for t in f.get("System.Tags", "").split(";")]
                if (
                    all(t.replace("''", "'") in have for t in tags)
                    and f.get("System.State") not in [s.replace("''", "'") for s in not_states]
                    and all(f.get("System.WorkItemType") == t.replace("''", "'") for t in types)
                ):
                    hits.append({"id": wid, "url": f"{self.base_url}/_apis/wit/workItems/{wid}"})
            return 200, {"queryType": "flat", "workItems": hits}, {}
        mw = re.fullmatch(r"wit/workitems/(\$[^/]+|\d+)", rest)
        if mw and method in ("POST", "PATCH"):
            if content_type != "application/json-patch+json":
                return 415, {"message": "json-patch content type required"}, {}
            if method == "POST" and mw.group(1).startswith("$"):
                wid = self.next_id()
                item = {"id": wid, "fields": {"System.WorkItemType": unquote(mw.group(1)[1:]), "System.State": "To Do"}}
                self.work_items[wid] = item
            elif method == "PATCH" and mw.group(1).isdigit() and int(mw.group(1)) in self.work_items:
                item = self.work_items[int(mw.group(1))]
            else:
                return 404, {"message": "no work item"}, {}
            for op in body:
                if op["op"] in ("add", "replace") and op["path"].startswith("/fields/"):
                    item["fields"][op["path"][len("/fields/") :]] = op["value"]
                else:
                    return 400, {"message": f"unsupported op {op}"}, {}
            return 200, item, {}
        mp = re.fullmatch(r"pipelines/(\d+)/runs", rest)
        if mp and method == "POST":
            run = {"id": self.next_id(), "pipeline": int(mp.group(1)), "project": unquote(m.group(2)), **body}
            self.pipeline_runs.append(run)
            return 200, {"id": run["id"], "state": "inProgress"}, {}
        return None

    # ------------------------------------------------------------------ MR notes, statuses (GitLab)
    def _gitlab(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, private_token: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        if private_token != GL_TOKEN:
            return 401, {"message": "401 Unauthorized"}, {}
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?", path)
        if m:
            notes = self.notes.setdefault(int(m.group(2)), [])
            if m.group(3) is None and method == "GET":
                # GitLab's default order: newest first; page size 20, at most 100; x-next-page empty on the last
                ordered = notes if query.get("sort") == ["asc"] else notes[::-1]
                page = int(query.get("page", ["1"])[0])
                per = min(int(query.get("per_page", ["20"])[0]), 100)
                pages = max(1, -(-len(ordered) // per))
                headers = {
                    "x-page": str(page),
                    "x-per-page": str(per),
                    "x-total": str(len(ordered)),
                    "x-total-pages": str(pages),
                    "x-next-page": str(page + 1) if page < pages else "",
                }
                return 200, ordered[(page - 1) * per : page * per], headers
            if not isinstance(body, dict) or not body.get("body"):
                return 400, {"message": '400 (Bad request) "body" not given'}, {}
            if m.group(3) is None and method == "POST":
                note = {"id": self.next_id(), "body": body["body"], "system": False, "author": {"username": "bot"}}
                notes.append(note)
                return 201, note, {}
            if method == "PUT":
                note = next((n for n in notes if n["id"] == int(m.group(3))), None)
                if note is None:
                    return 404, {"message": "404 Not found"}, {}
                if note.get("author", {}).get("username") != "bot":
                    return 403, {"message": "403 Forbidden"}, {}  # only the author edits a note
                note["body"] = body["body"]
                return 200, note, {}
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/statuses/([0-9a-f]{40})", path)
        if m and method == "POST":
            if body.get("state") not in ("pending", "running", "success", "failed", "canceled"):
                return 400, {"message": "state does not have a valid value"}, {}
            if not body.get("name"):
                return 400, {"message": "name is missing"}, {}
            status = {"id": self.next_id(), "project": unquote(m.group(1)), "sha": m.group(2), **body}
            self.gl_statuses.append(status)
            return 201, status, {}
        return 404, {"message": f"no route {method} {path}"}, {}

    # ------------------------------------------------------------------ pipeline triggers (GitLab)
    def _gitlab_trigger(self, project: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if body.get("token") != GITLAB_TRIGGER_TOKEN:
            return 404, {"message": "404 Not Found"}, {}
        if not body.get("ref"):
            return 400, {"message": "ref is missing"}, {}
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return 400, {"message": "variables must be a hash"}, {}
        trigger = {"id": self.next_id(), "project": project, "ref": body["ref"], "variables": variables}
        self.triggers.append(trigger)
        return 201, {"id": trigger["id"], "ref": body["ref"], "status": "created"}, {}


def _form(raw: bytes) -> dict[str, Any]:
    """A form body as GitLab reads it: ``variables[KEY]=value`` becomes ``{"variables": {KEY: value}}``."""
    out: dict[str, Any] = {}
    for key, values in parse_qs(raw.decode(), keep_blank_values=True).items():
        m = re.fullmatch(r"(\w+)\[(\w+)\]", key)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = values[-1]
        else:
            out[key] = values[-1]
    return out


class _Handler(BaseHTTPRequestHandler):
    api: FakeApi

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip() or None
        if raw and content_type == "application/x-www-form-urlencoded":
            body = _form(raw)
        else:
            body = json.loads(raw) if raw else None
        auth = self.headers.get("Authorization")
        private_token = self.headers.get("PRIVATE-TOKEN")
        seen = Seen(
            method,
            split.path,
            parse_qs(split.query),
            auth,
            body,
            time.monotonic(),
            content_type=content_type,
            private_token=private_token,
        )
        with self.api.lock:
            self.api.seen.append(seen)
            status, payload, headers = self.api.handle(
                method, split.path, parse_qs(split.query), body, auth, content_type, private_token
            )
            seen.status = status
        data = b"" if payload is None else json.dumps(payload).encode()  # None: no body (a 204)
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")


@pytest.fixture
def fake_api():
    """A running fake API; ``fake_api.base_url`` is its address on 127.0.0.1."""
    api = FakeApi()
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def make_result(
    environment: str = "staging",
    *,
    kind: str = "pull_request",
    status: str | None = "PASS",
    exit_code: int = 0,
    pr_number: int | None = 7,
    error: dict | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A run result as ``promote run`` produces it, built by hand."""
    event = {
        "kind": kind,
        "provider": "github",
        "branch": "main",
        "source_branch": "feature/x" if kind == "pull_request" else None,
        "target_branch": "main" if kind == "pull_request" else None,
        "sha": "a" * 40,
        "head_sha": "b" * 40 if kind == "pull_request" else None,
        "tree_sha": None,
        "pr_number": pr_number if kind == "pull_request" else None,
        "actor": "octocat",
        "run_url": "https://ci.example.org/runs/1",
        "default_branch": "main",
        "action": None,
        "nothing": None,
        "raw_name": kind,
    }
    verdict = None
    if status is not None:
        verdict = {
            "status": status,
            "blocking": True,
            "first_version": False,
            "comparison": {
                "roc_auc": {"candidate": 0.81, "champion": 0.79, "difference": 0.02},
                "brier": {"candidate": 0.12, "champion": 0.13, "difference": -0.01},
            },
            "bootstrap": {
                "metric": "roc_auc",
                "difference": 0.02,
                "ci_low": 0.004,
                "ci_high": 0.035,
                "confidence": 0.95,
                "resamples": 500,
            },
            "fairness": [
                {
                    "subgroup": "race_ethnicity",
                    "group": "Black",
                    "n": 1200,
                    "candidate": 0.80,
                    "champion": 0.79,
                    "difference": 0.01,
                }
            ],
            "reasons": [
                {
                    "rule": "floor.roc_auc",
                    "passed": True,
                    "observed": 0.81,
                    "limit": 0.70,
                    "message": "roc_auc 0.8100 >= floor 0.7000",
                },
                {
                    "rule": "improvement.roc_auc",
                    "passed": status == "PASS",
                    "observed": 0.02,
                    "limit": 0.005,
                    "message": "improvement +0.0200 vs required +0.0050"
                    if status == "PASS"
                    else "improvement +0.0010 is below the required +0.0050",
                },
            ],
        }
    result = {
        "event": event,
        "environment": environment,
        "registered_model": f"hrob-risk-{environment}",
        "steps": [
            {"name": "train", "reason": "retrain from this branch's code", "status": "done"},
            {"name": "gate", "reason": "compare candidate and champion", "status": "done"},
        ],
        "candidate": {"version": 3, "run_id": "abc123def", "run_url": "http://mlflow.example/#/experiments/1/runs/abc"},
        "champion": {"version": 2, "run_id": "def456abc", "run_url": "http://mlflow.example/#/experiments/1/runs/def"},
        "verdict": verdict,
        "decision_id": "dec-0001",
        "champion_moved": status == "PASS" and kind != "pull_request",
        "exit_code": exit_code,
        "error": error,
        "links": {"mlflow": "http://mlflow.example/"},
        "scored_rows": None,
    }
    result.update(overrides)
    return result


@pytest.fixture
def result_factory():
    """``make_result`` as a fixture, so test modules need not import this conftest."""
    return make_result


@pytest.fixture
def github_env(tmp_path, fake_api):
    """GitHub Actions variables pointing the API at the fake server; files in tmp_path."""
    summary = tmp_path / "step_summary.md"
    output = tmp_path / "github_output"
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "acme/hrob",
        "GITHUB_API_URL": fake_api.base_url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
        "PROMOTE_HTTP_DEADLINE": "4",
    }


@pytest.fixture
def azure_env(tmp_path, fake_api):
    """Azure DevOps variables pointing the API at the fake server."""
    return {
        "TF_BUILD": "True",
        "SYSTEM_COLLECTIONURI": fake_api.base_url + "/acme/",
        "SYSTEM_TEAMPROJECT": "Risk Models",
        "SYSTEM_TEAMPROJECTID": "proj-1",
        "BUILD_REPOSITORY_ID": "repo-1",
        "BUILD_REPOSITORY_PROVIDER": "TfsGit",
        "SYSTEM_PULLREQUEST_PULLREQUESTID": "7",
        "SYSTEM_ACCESSTOKEN": AZ_TOKEN,
        "AGENT_TEMPDIRECTORY": str(tmp_path / "agent-tmp"),
        "PROMOTE_HTTP_DEADLINE": "4",
    }


@pytest.fixture
def gitlab_env(fake_api):
    """GitLab CI variables of a merge request pipeline pointing the API at the fake server."""
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": fake_api.base_url + "/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_PIPELINE_ID": "9001",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_COMMIT_SHA": "b" * 40,
        "CI_JOB_TOKEN": GL_JOB_TOKEN,
        "PROMOTE_GITLAB_TOKEN": GL_TOKEN,
        "PROMOTE_HTTP_DEADLINE": "4",
    }
