"""`promote projects` and `--project`: several model projects in one repository, from the command line.

Most cases call the console entry point in this process (``promoter.cli.main``) inside a real git
repository in tmp_path; one runs it as a subprocess, as CI does.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from promoter.cli import main
from tests.app.test_projects import add_other_project, commit, make_repo
from tests.conftest import git, run_promote

CI_PREFIXES = ("GITHUB_", "TF_BUILD", "BUILD_", "SYSTEM_", "GITLAB_", "CI_", "PROMOTE_")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """hrob (configs/) and other (models/other/configs) on main; feature/other changes only the latter."""
    r = make_repo(tmp_path_factory.mktemp("cli"))
    git(r, "checkout", "-q", "-b", "feature/other")
    commit(r, "models/other/configs/base/training.yml", "# tuned\n")
    git(r, "checkout", "-q", "main")
    return r


@pytest.fixture
def promote(monkeypatch, capsys):
    """Run ``promote ARGS`` in ``cwd`` with exactly the CI variables given: (exit code, stdout, stderr)."""

    def _run(*args: str, cwd, env: dict[str, str] | None = None):
        for name in list(os.environ):
            if name.startswith(CI_PREFIXES):
                monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


def test_projects_lists_every_project(promote, repo):
    rc, out, _ = promote("projects", "--json", cwd=repo)
    assert rc == 0
    listed = json.loads(out)
    assert [(p["project"], p["config_dir"], p["model"]) for p in listed] == [
        ("hrob", "configs", "hrob-risk"),
        ("other", "models/other/configs", "other-risk"),
    ]
    rc, out, _ = promote("projects", "--format", "names", cwd=repo)
    assert (rc, out) == (0, "hrob\nother\n")
    rc, out, _ = promote("projects", cwd=repo)
    assert out.splitlines()[0].split() == ["hrob", "hrob-risk", "configs"]
    assert "own:    models/other/**" in out


@pytest.mark.parametrize(
    "args,env,model",
    [
        (["--project", "other"], {}, "other-risk-staging"),
        ([], {"PROMOTE_PROJECT": "other"}, "other-risk-staging"),
        (["--project", "hrob"], {}, "hrob-risk-staging"),  # the root project, by its project.yml name
        ([], {"PROMOTE_PROJECT": " "}, "hrob-risk-staging"),  # blank (an Azure default): not given
        (["--config-dir", "configs", "--project", "other"], {}, "hrob-risk-staging"),  # --config-dir wins
        (["--project", "other"], {"PROMOTE_CONFIG_DIR": "configs"}, "other-risk-staging"),  # a flag beats a variable
        ([], {"PROMOTE_CONFIG_DIR": "configs", "PROMOTE_PROJECT": "other"}, "hrob-risk-staging"),
    ],
)
def test_project_selects_the_config_folder(promote, repo, args, env, model):
    rc, out, err = promote(*args, "plan", "--json", "--event", "push", "--branch", "main", cwd=repo, env=env)
    assert rc == 0, err
    assert json.loads(out)["registered_model"] == model


def test_an_unknown_project_is_one_line_naming_the_known_ones(promote, repo):
    rc, out, err = promote("--project", "readmit", "plan", cwd=repo)
    assert rc == 2 and out == ""
    assert err == "error: --project/PROMOTE_PROJECT: no project 'readmit' here (known: hrob, other)\n"


def test_the_only_project_is_found_without_naming_it(promote, tmp_path):
    solo = make_repo(tmp_path, root=False, others=("solo",))
    rc, out, err = promote("plan", "--json", "--event", "push", "--branch", "release/solo/1.0", cwd=solo)
    assert rc == 0, err
    assert json.loads(out)["registered_model"] == "solo-risk-prod"


def test_changed_prints_the_matrix_of_a_pull_request(promote, repo):
    rc, out, err = promote(
        "projects",
        "--changed",
        "--json",
        "--event",
        "pull_request",
        "--from",
        "feature/other",
        "--into",
        "main",
        cwd=repo,
    )
    assert rc == 0, err
    assert json.loads(out) == {
        "include": [
            {"project": "other", "config_dir": "models/other/configs", "model": "other-risk", "environment": "staging"}
        ]
    }
    assert "\n" not in out.rstrip("\n")  # one line: it goes into $GITHUB_OUTPUT
    assert "skip  hrob   staging   no file of this project changed" in err
    assert "run   other  staging   changed: models/other/configs/base/training.yml" in err


def test_changed_github_and_azure_outputs(promote, repo):
    rc, out, _ = promote(
        "projects", "--changed", "--format", "github", "--event", "schedule", "--branch", "main", cwd=repo
    )
    lines = out.splitlines()
    assert rc == 0 and lines[1] == "count=2" and lines[0].startswith("matrix=")
    assert [e["project"] for e in json.loads(lines[0].removeprefix("matrix="))["include"]] == ["hrob", "other"]
    rc, out, _ = promote(
        "projects", "--changed", "--format", "azure", "--event", "push", "--branch", "release/other/2.0", cwd=repo
    )
    assert rc == 0
    assert out.splitlines() == [
        '##vso[task.setvariable variable=matrix;isOutput=true]{"other":{"PROMOTE_PROJECT":"other"}}',
        "##vso[task.setvariable variable=count;isOutput=true]1",
        "##vso[task.setvariable variable=project;isOutput=true]other",
    ]


def test_changed_under_github_actions_reads_the_event(promote, repo, tmp_path):
    """In the template's `projects` job: the payload, PROMOTE_DIFF_BASE from github.event.before."""
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    payload = tmp_path / "event.json"
    head = git(repo, "rev-parse", "feature/other")
    payload.write_text(
        json.dumps({"ref": "refs/heads/main", "before": first, "after": head, "repository": {"default_branch": "main"}})
    )
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(payload),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": head,
        "PROMOTE_DIFF_BASE": first,
        "PROMOTE_PROJECT": "",  # `inputs.project` outside a dispatch
    }
    rc, out, err = promote("projects", "--changed", "--format", "github", cwd=repo, env=env)
    assert rc == 0, err
    assert out.splitlines()[1] == "count=1" and '"project":"other"' in out


def test_changed_format_gitlab_writes_a_child_pipeline_that_plans_the_parents_event(promote, repo, tmp_path):
    head = git(repo, "rev-parse", "feature/other")
    gitlab = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/other",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": head,
        "CI_MERGE_REQUEST_IID": "7",
        "CI_COMMIT_SHA": head,
        "CI_DEFAULT_BRANCH": "main",
        "CI_JOB_TOKEN": "glcbt-secret-token",  # must never reach the child pipeline
        "GITLAB_USER_LOGIN": "kim",
    }
    rc, out, err = promote("projects", "--changed", "--format", "gitlab", cwd=repo, env=gitlab)
    assert rc == 0, err
    child = yaml.safe_load(out)
    assert child["include"] == [{"local": ".gitlab/promote-jobs.yml"}]
    assert list(child) == ["include", "other:merge-request"]
    job = child["other:merge-request"]
    assert job["extends"] == ".promote-merge-request" and job["resource_group"] == "promote-other-staging-mr-7"
    assert job["variables"]["PROMOTE_PROJECT"] == "other"
    event_json = job["variables"]["PROMOTE_EVENT_JSON"]
    assert event_json["expand"] is False and "glcbt-secret-token" not in out
    # what the child job does with it: promote --event-file, with the project from the matrix
    event_file = tmp_path / "promote-event.json"
    event_file.write_text(event_json["value"])
    rc, out, err = promote(
        "plan", "--json", "--provider", "gitlab", "--event-file", str(event_file),
        cwd=repo, env={"PROMOTE_PROJECT": "other", "PROMOTE_ENV": "staging"},
    )  # fmt: skip
    assert rc == 0, err
    planned = json.loads(out)
    assert (planned["environment"], planned["registered_model"]) == ("staging", "other-risk-staging")
    assert planned["event"]["pr_number"] == 7 and planned["event"]["actor"] == "kim"


def test_changed_format_gitlab_with_nothing_to_run_is_still_a_valid_pipeline(promote, repo):
    rc, out, _ = promote(
        "projects", "--changed", "--format", "gitlab", "--event", "push", "--branch", "feature/x", cwd=repo
    )
    child = yaml.safe_load(out)
    assert rc == 0 and list(child) == ["no-project"] and child["no-project"]["script"]


def test_ci_formats_need_changed(promote, repo):
    rc, _, err = promote("projects", "--format", "github", cwd=repo)
    assert rc == 2 and "--format github is the CI matrix: it goes with --changed" in err


def test_a_release_branch_two_projects_claim_is_exit_2(promote, tmp_path):
    r = make_repo(tmp_path, others=())
    target = add_other_project(r, "twin", "twin-risk")
    (target / "base" / "promotion.yml").write_text((r / "configs" / "base" / "promotion.yml").read_text())
    rc, out, err = promote("projects", "--changed", "--event", "push", "--branch", "release/1.2", cwd=r)
    assert rc == 2 and out == ""
    assert err.startswith("error: models/twin/configs/base/promotion.yml: branch_rules: branch 'release/1.2'")
    assert err.count("\n") == 1


def test_the_console_script_lists_projects(repo):
    proc = run_promote("projects", "--format", "names", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hrob\nother\n"
