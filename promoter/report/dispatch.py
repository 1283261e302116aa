"""Retrain dispatch: start the promote pipeline of the release branch with ``action: run``.

What the monitoring step calls when the retrain policy asks for one. The dispatched run trains a
candidate on the release branch and meets the normal gate: nothing here promotes anything. The
inputs sent are the ones the shipped CI templates declare (GitHub rejects undeclared
``workflow_dispatch`` inputs, Azure undeclared template parameters):

* GitHub: ``POST /repos/{repo}/actions/workflows/{workflow}/dispatches`` with inputs ``action``,
  ``reason``, ``project`` (the job needs ``actions: write``);
* Azure DevOps: ``POST {project}/_apis/pipelines/{id}/runs`` on ``refs/heads/{ref}`` with template
  parameters ``action``, ``reason``, ``project`` (the build identity needs "Queue builds");
* GitLab: ``POST {CI_API_V4_URL}/projects/{CI_PROJECT_ID}/trigger/pipeline`` with the trigger token
  from ``environ[token_env]`` and variables ``PROMOTE_COMMAND``, ``PROMOTE_ACTION``,
  ``PROMOTE_REASON`` (and ``PROMOTE_PROJECT``).

Like the alerts (:mod:`promoter.report.alerts`): a target that is not enabled is omitted, an
enabled one without its CI variables is ``skipped``, a failure is ``ok=False`` with a token-free
message, and nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from promoter.report.alerts import SinkResult, Skipped, azure_target, github_session, github_target, run_sink
from promoter.report.masking import Masker
from promoter.report.sinks import AZURE_API_VERSION, _call

REASON_MAX = 500  # characters of the reason sent (an input, a parameter, a variable)
ACTION = "run"


@dataclass(frozen=True)
class RetrainRequest:
    """Which model asks for a retrain, and why."""

    model_name: str
    environment: str
    reason: str
    project: str | None = None


def _reason(request: RetrainRequest) -> str:
    text = f"monitoring of {request.model_name} ({request.environment}) asks for a retrain: {request.reason}"
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


def _ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"


def _github(request: RetrainRequest, cfg: Any, environ: Mapping[str, str]) -> SinkResult:
    api, repo, token = github_target(environ, "actions: write")
    url = f"{api}/repos/{repo}/actions/workflows/{quote(cfg.workflow, safe='')}/dispatches"
    body = {"ref": cfg.ref, "inputs": {"action": ACTION, "reason": _reason(request), "project": request.project or ""}}
    with github_session(token, environ) as s:
        _call(s, "POST", url, "retrain dispatch", json=body)
    return SinkResult("github", "dispatched", True, f"workflow {cfg.workflow} dispatched on {cfg.ref}")


def _azure(request: RetrainRequest, cfg: Any, environ: Mapping[str, str]) -> SinkResult:
    from promoter.report import http

    if cfg.pipeline_id is None:
        raise Skipped("retrain.dispatch.azure.pipeline_id is not set")
    base, token = azure_target(environ)
    body = {
        "resources": {"repositories": {"self": {"refName": _ref(cfg.ref)}}},
        # Azure cannot take a blank string parameter: the template's blank default is one space.
        "templateParameters": {"action": ACTION, "reason": _reason(request), "project": request.project or " "},
    }
    url = f"{base}/_apis/pipelines/{int(cfg.pipeline_id)}/runs?api-version={AZURE_API_VERSION}"
    with http.session(token, policy=http.HttpPolicy.from_env(environ)) as s:
        resp = _call(s, "POST", url, "retrain dispatch", json=body)
    run = resp.json().get("id") if resp.content else None
    return SinkResult("azure", "dispatched", True, f"pipeline {cfg.pipeline_id} run {run} queued on {cfg.ref}")


def _gitlab(request: RetrainRequest, cfg: Any, environ: Mapping[str, str]) -> SinkResult:
    from promoter.report import http

    api, project = environ.get("CI_API_V4_URL"), environ.get("CI_PROJECT_ID")
    if not (api and project):
        raise Skipped("CI_API_V4_URL or CI_PROJECT_ID is not set (not a GitLab CI job)")
    token = environ.get(cfg.token_env)
    if not token:
        raise Skipped(f"{cfg.token_env} is not set (a pipeline trigger token of the project, as a masked variable)")
    variables = {"PROMOTE_COMMAND": "run", "PROMOTE_ACTION": ACTION, "PROMOTE_REASON": _reason(request)}
    if request.project:
        variables["PROMOTE_PROJECT"] = request.project
    url = f"{api.rstrip('/')}/projects/{quote(project, safe='')}/trigger/pipeline"
    with http.session(None, policy=http.HttpPolicy.from_env(environ)) as s:
        # the token travels in the body, never in the URL (which an error message may show)
        resp = _call(s, "POST", url, "retrain trigger", json={"token": token, "ref": cfg.ref, "variables": variables})
    pipeline = resp.json().get("id") if resp.content else None
    return SinkResult("gitlab", "dispatched", True, f"pipeline {pipeline} triggered on {cfg.ref}")


def dispatch_retrain(request: RetrainRequest, dispatch_settings: Any, environ: Mapping[str, str]) -> list[SinkResult]:
    """Start the retrain on every enabled target (github, azure, gitlab, in that order); never raises."""
    extra = []
    gitlab = dispatch_settings.gitlab
    if gitlab.enabled and environ.get(gitlab.token_env):
        extra.append(environ[gitlab.token_env])
    masker = Masker.from_env(environ, extra=extra)
    out: list[SinkResult] = []
    for name, cfg, fn in (
        ("github", dispatch_settings.github, _github),
        ("azure", dispatch_settings.azure, _azure),
        ("gitlab", gitlab, _gitlab),
    ):
        if cfg.enabled:
            out.append(run_sink(name, "dispatch", masker, lambda fn=fn, cfg=cfg: fn(request, cfg, environ)))
    return out
