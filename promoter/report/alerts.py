"""Monitoring alerts for the model's owners: a GitHub issue, an Azure DevOps work item, a webhook.

One open alert per model and environment, kept current in place: the first ALERT opens it, later
ones rewrite its body (the same issue or work item, found again by its marker or tags), and the
OK that clears it closes it. When to call (open, update, close, or nothing) is the caller's
choice (:func:`promoter.core.monitoring.alert_action`); the sinks only carry it out.

Which sinks run: a sink that is not configured (``enabled: false``, no ``webhook.url_env``) is
omitted from the results; a configured sink whose CI variables are missing (no repository, no
token, the webhook variable unset: e.g. at a laptop) gives ``SinkResult(action="skipped",
ok=True)`` with the reason. Sending never raises: a failing sink gives ``ok=False`` with a short
message that holds no token and no webhook URL, and the other sinks still run. Targets come
from the same variables as the run reports (:mod:`promoter.report.sinks`): ``GITHUB_API_URL``,
``GITHUB_REPOSITORY``, ``GITHUB_TOKEN``; ``SYSTEM_COLLECTIONURI``, ``SYSTEM_TEAMPROJECT``,
``SYSTEM_ACCESSTOKEN``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from promoter.report.masking import Masker
from promoter.report.monitoring import marker
from promoter.report.sinks import (
    AZURE_API_VERSION,
    GITHUB_API_VERSION,
    MAX_COMMENT_PAGES,
    ReportFailed,
    _call,
    _describe_http_error,
)

AZURE_TAG = "promote-monitoring"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class SinkResult:
    """What one sink did: ``action`` opened/updated/closed/none/sent/dispatched/skipped (or what failed)."""

    sink: str
    action: str
    ok: bool
    message: str


@dataclass
class Alert:
    """One model's monitoring verdict, ready to send (``verdict`` ALERT or OK)."""

    model_name: str
    environment: str
    title: str
    body_markdown: str
    alerts: list[str]
    verdict: str
    url: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def alerting(self) -> bool:
        return self.verdict == "ALERT"


class Skipped(Exception):
    """A configured sink without what it needs in this environment (a reason, not a failure)."""


# --------------------------------------------------------------------------- targets (shared with dispatch)


def github_target(environ: Mapping[str, str], permission: str) -> tuple[str, str, str]:
    """``(api, repo, token)`` from the GitHub Actions variables; raises ``Skipped`` when one is missing."""
    repo = environ.get("GITHUB_REPOSITORY")
    if not repo:
        raise Skipped("GITHUB_REPOSITORY is not set (not a GitHub Actions job)")
    token = environ.get("GITHUB_TOKEN") or environ.get("PROMOTE_GITHUB_TOKEN")
    if not token:
        raise Skipped(
            f"GITHUB_TOKEN is not set (map `GITHUB_TOKEN: ${{{{ github.token }}}}` into the step's env, "
            f"with `{permission}` permission)"
        )
    return environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"), repo, token


def azure_target(environ: Mapping[str, str]) -> tuple[str, str]:
    """``(project base URL, token)`` from the Azure DevOps variables; raises ``Skipped`` when one is missing."""
    collection = environ.get("SYSTEM_COLLECTIONURI")
    project = environ.get("SYSTEM_TEAMPROJECTID") or environ.get("SYSTEM_TEAMPROJECT")
    if not (collection and project):
        raise Skipped("SYSTEM_COLLECTIONURI or SYSTEM_TEAMPROJECT is not set (not an Azure Pipelines job)")
    token = environ.get("SYSTEM_ACCESSTOKEN")
    if not token:
        raise Skipped(
            "SYSTEM_ACCESSTOKEN is not set (map `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` into the step's env)"
        )
    return f"{collection.rstrip('/')}/{quote(project, safe='')}", token


def github_session(token: str, environ: Mapping[str, str]) -> Any:
    from promoter.report import http

    return http.session(
        token,
        policy=http.HttpPolicy.from_env(environ),
        headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": GITHUB_API_VERSION},
    )


def run_sink(name: str, attempt: str, masker: Masker, fn: Callable[[], SinkResult]) -> SinkResult:
    """``fn()``, with a skip or any failure turned into a masked :class:`SinkResult`."""
    try:
        result = fn()
    except Skipped as exc:
        return SinkResult(name, "skipped", True, masker.mask(str(exc)))
    except ReportFailed as exc:
        return SinkResult(name, attempt, False, masker.mask(str(exc)))
    except Exception as exc:  # noqa: BLE001 - an alert never fails the run
        return SinkResult(name, attempt, False, masker.mask(f"{type(exc).__name__}: {exc}")[:300])
    return SinkResult(result.sink, result.action, result.ok, masker.mask(result.message))


# --------------------------------------------------------------------------- bodies


def _with_marker(body: str, mark: str) -> str:
    return body if mark in body else f"{mark}\n{body}"


def _cleared(alert: Alert, mark: str) -> str:
    rest = alert.body_markdown.replace(mark, "").lstrip("\n")
    return f"{mark}\n**Cleared**: the latest monitoring run of {alert.model_name} ({alert.environment}) found no alerts.\n\n{rest}"


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_to_html(text: str) -> str:
    """The small markdown subset the monitoring report uses (headings, lists, tables, quotes) as HTML."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if not s or (s.startswith("<!--") and s.endswith("-->")):
            i += 1
        elif m := re.match(r"(#{1,6})\s+(.*)", s):
            out.append(f"<h{len(m.group(1))}>{_inline(m.group(2))}</h{len(m.group(1))}>")
            i += 1
        elif s.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", lines[i].strip())[1:-1]]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            body = "".join(
                "<tr>" + "".join(f"<{t}>{_inline(c)}</{t}>" for c in r) + "</tr>"
                for n, r in enumerate(rows)
                for t in ["th" if n == 0 else "td"]
            )
            out.append(f"<table>{body}</table>")
        elif s.startswith("- "):
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        elif s.startswith(">"):
            out.append(f"<blockquote>{_inline(s.lstrip('> '))}</blockquote>")
            i += 1
        else:
            out.append(f"<p>{_inline(s)}</p>")
            i += 1
    return "\n".join(out)


# --------------------------------------------------------------------------- GitHub issue


def find_issue(session: Any, api: str, repo: str, label: str, mark: str) -> int | None:
    """The number of the open issue labelled ``label`` whose body holds ``mark`` (all pages)."""
    url: str | None = f"{api}/repos/{repo}/issues"
    params: dict[str, Any] | None = {"labels": label, "state": "open", "per_page": 100}
    for _ in range(MAX_COMMENT_PAGES):
        if not url:
            break
        resp = _call(session, "GET", url, "alert issue", params=params)
        for issue in resp.json():
            if "pull_request" not in issue and mark in (issue.get("body") or ""):
                return int(issue["number"])
        url, params = resp.links.get("next", {}).get("url"), None  # the next link carries the query
    return None


def _github(alert: Alert, cfg: Any, environ: Mapping[str, str], masker: Masker) -> SinkResult:
    api, repo, token = github_target(environ, "issues: write")
    mark = marker(alert.model_name, alert.environment)
    labels = list(cfg.labels)
    with github_session(token, environ) as s:
        number = find_issue(s, api, repo, labels[0], mark)
        issues = f"{api}/repos/{repo}/issues"
        if alert.alerting:
            body = _with_marker(masker.mask(alert.body_markdown), mark)
            if number is not None:
                _call(s, "PATCH", f"{issues}/{number}", "alert issue", json={"title": alert.title, "body": body})
                return SinkResult("github", "updated", True, f"issue #{number} updated")
            resp = _call(s, "POST", issues, "alert issue", json={"title": alert.title, "body": body, "labels": labels})
            return SinkResult("github", "opened", True, f"issue #{resp.json().get('number')} opened")
        if number is None:
            return SinkResult("github", "none", True, "no open alert issue to close")
        body = masker.mask(_cleared(alert, mark))
        _call(
            s,
            "PATCH",
            f"{issues}/{number}",
            "alert issue",
            json={"state": "closed", "state_reason": "completed", "body": body},
        )
        return SinkResult("github", "closed", True, f"issue #{number} closed (alert cleared)")


# --------------------------------------------------------------------------- Azure DevOps work item


def _wiql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def find_work_item(session: Any, base: str, work_item_type: str, key: str, closed_state: str) -> int | None:
    """The id of the newest work item tagged ``promote-monitoring`` and ``key`` not in ``closed_state``."""
    query = (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"
        f" AND [System.WorkItemType] = {_wiql_quote(work_item_type)}"
        f" AND [System.Tags] CONTAINS {_wiql_quote(AZURE_TAG)}"
        f" AND [System.Tags] CONTAINS {_wiql_quote(key)}"
        f" AND [System.State] <> {_wiql_quote(closed_state)}"
        " AND [System.State] <> 'Removed'"
        " ORDER BY [System.Id] DESC"
    )
    resp = _call(
        session,
        "POST",
        f"{base}/_apis/wit/wiql?api-version={AZURE_API_VERSION}",
        "alert work item",
        json={"query": query},
    )
    items = resp.json().get("workItems") or []
    return int(items[0]["id"]) if items else None


def _patch(session: Any, method: str, url: str, fields: Mapping[str, Any]) -> Any:
    ops = [{"op": "add", "path": f"/fields/{k}", "value": v} for k, v in fields.items()]
    return _call(session, method, url, "alert work item", data=json.dumps(ops), headers={"Content-Type": JSON_PATCH})


def _azure(alert: Alert, cfg: Any, environ: Mapping[str, str], masker: Masker) -> SinkResult:
    from promoter.report import http

    base, token = azure_target(environ)
    key = f"{alert.model_name}/{alert.environment}"
    items = f"{base}/_apis/wit/workitems"
    with http.session(token, policy=http.HttpPolicy.from_env(environ)) as s:
        found = find_work_item(s, base, cfg.work_item_type, key, cfg.closed_state)
        if alert.alerting:
            description = markdown_to_html(masker.mask(alert.body_markdown))
            if alert.url:
                description += f'\n<p><a href="{html.escape(alert.url)}">the monitoring run</a></p>'
            fields: dict[str, Any] = {"System.Title": alert.title, "System.Description": description}
            if found is not None:
                _patch(s, "PATCH", f"{items}/{found}?api-version={AZURE_API_VERSION}", fields)
                return SinkResult("azure", "updated", True, f"work item {found} updated")
            fields["System.Tags"] = f"{AZURE_TAG}; {key}"
            if cfg.area_path:
                fields["System.AreaPath"] = cfg.area_path
            kind = quote(cfg.work_item_type, safe="")
            resp = _patch(s, "POST", f"{items}/${kind}?api-version={AZURE_API_VERSION}", fields)
            return SinkResult("azure", "opened", True, f"work item {resp.json().get('id')} created")
        if found is None:
            return SinkResult("azure", "none", True, "no open alert work item to close")
        fields = {
            "System.State": cfg.closed_state,
            "System.Description": markdown_to_html(masker.mask(_cleared(alert, ""))),
        }
        _patch(s, "PATCH", f"{items}/{found}?api-version={AZURE_API_VERSION}", fields)
        return SinkResult("azure", "closed", True, f"work item {found} set to {cfg.closed_state} (alert cleared)")


# --------------------------------------------------------------------------- webhook


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The JSON posted: a one-line ``text`` (Slack/Teams-style) plus the verdict's fields."""
    if alert.alerting:
        text = f"{alert.title}: " + ("; ".join(alert.alerts) or "alert")
    else:
        text = f"Cleared: {alert.model_name} ({alert.environment}) has no monitoring alerts"
    if alert.url:
        text += f" ({alert.url})"
    return {
        "text": text,
        "model_name": alert.model_name,
        "environment": alert.environment,
        "verdict": alert.verdict,
        "alerts": list(alert.alerts),
        "url": alert.url,
        **alert.payload,
    }


def _webhook(alert: Alert, url_env: str, environ: Mapping[str, str], masker: Masker) -> SinkResult:
    """POST the body; messages never name the URL (it is the secret)."""
    import requests

    from promoter.report import http

    url = environ.get(url_env)
    if not url:
        raise Skipped(f"{url_env} is not set: no webhook sent")
    body = json.loads(masker.mask(json.dumps(webhook_body(alert), default=str)))
    with http.session(None, policy=http.HttpPolicy.from_env(environ)) as s:
        try:
            resp = s.post(url, json=body)
        except requests.RequestException as exc:
            raise ReportFailed(f"webhook ({url_env}): POST: {_describe_http_error(exc)}") from None
    if resp.status_code >= 400:
        raise ReportFailed(f"webhook ({url_env}): POST answered HTTP {resp.status_code}")
    return SinkResult("webhook", "sent", True, f"posted to ${url_env} (HTTP {resp.status_code})")


# --------------------------------------------------------------------------- entry point


def send_alerts(alert: Alert, settings_alerts: Any, environ: Mapping[str, str]) -> list[SinkResult]:
    """Open/update (ALERT) or close (OK) the alert in every configured sink; never raises.

    Args:
        alert: the verdict to send.
        settings_alerts: ``github.enabled/labels``, ``azure.enabled/work_item_type/closed_state/area_path``,
            ``webhook.url_env``.
        environ: the CI variables (targets and tokens).

    Returns:
        One result per configured sink, in the order github, azure, webhook (see the module docstring).
    """
    url_env = getattr(settings_alerts.webhook, "url_env", None)
    hook_url = environ.get(url_env) if url_env else None
    masker = Masker.from_env(environ, extra=[hook_url] if hook_url else [])
    attempt = "alert" if alert.alerting else "close"
    out: list[SinkResult] = []
    if settings_alerts.github.enabled:
        out.append(run_sink("github", attempt, masker, lambda: _github(alert, settings_alerts.github, environ, masker)))
    if settings_alerts.azure.enabled:
        out.append(run_sink("azure", attempt, masker, lambda: _azure(alert, settings_alerts.azure, environ, masker)))
    if url_env:
        out.append(run_sink("webhook", attempt, masker, lambda: _webhook(alert, url_env, environ, masker)))
    return out
