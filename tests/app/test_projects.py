"""Several model projects in one repository: discovery, --project resolution, and which projects an
event runs in CI (real git repositories in tmp_path, the real config loader)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promoter import config, errors, gitops
from promoter.app import projects
from promoter.core.events import Event
from tests.conftest import CONFIGS, git

OTHER_RULES = '  - {pattern: "release/other/*", environment: prod}\n'


def add_other_project(repo: Path, name: str = "other", model: str = "other-risk") -> Path:
    """``models/<name>/configs``: a copy of the reference configs with its own name, model and release branches."""
    target = repo / "models" / name / "configs"
    shutil.copytree(CONFIGS, target)
    project_yml = target / "base" / "project.yml"
    text = project_yml.read_text()
    text = text.replace("name: hrob\n", f"name: {name}\n", 1).replace(
        "model_name: hrob-risk", f"model_name: {model}", 1
    )
    project_yml.write_text(text)
    promotion = target / "base" / "promotion.yml"
    text = promotion.read_text()
    old = '  - {pattern: release, environment: prod}\n  - {pattern: "release/*", environment: prod}\n'
    assert old in text, "the reference promotion.yml changed its release rules"
    promotion.write_text(text.replace(old, OTHER_RULES.replace("other", name), 1))
    return target


def make_repo(tmp_path: Path, *, root: bool = True, others: tuple[str, ...] = ("other",)) -> Path:
    """A git repository on ``main`` with the root project (configs/) and ``models/<name>`` projects."""
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    if root:
        shutil.copytree(CONFIGS, repo / "configs")
    for name in others:
        add_other_project(repo, name, f"{name}-risk")
    (repo / "pipelines").mkdir()
    (repo / "pipelines" / "train.py").write_text("# the shipped pipelines\n")
    (repo / "README.md").write_text("models\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def commit(repo: Path, path: str, text: str, message: str = "change") -> str:
    f = repo / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("two"))


@pytest.fixture(scope="module")
def loaded(two) -> list[tuple[projects.Project, config.Settings]]:
    return [(p, p.settings) for p in projects.discover(two)]


# --------------------------------------------------------------------------- discovery


def test_discover_finds_the_root_project_first_then_models(two):
    found = projects.discover(two)
    assert [(p.name, p.config_dir, p.model_name, p.root) for p in found] == [
        ("hrob", "configs", "hrob-risk", True),
        ("other", "models/other/configs", "other-risk", False),
    ]
    hrob, other = found
    assert hrob.paths == ("configs/**",) and other.paths == ("models/other/**",)
    for p in found:  # the engine and the shipped pipelines are everybody's
        assert {"pipelines/**", "promoter/**", "pyproject.toml", ".github/workflows/**"} <= set(p.shared)
    assert other.owns("models/other/configs/base/training.yml") and not hrob.owns("models/other/x.py")
    assert hrob.owns("configs/prod/project.yml") and not other.owns("configs/prod/project.yml")
    assert hrob.owns("pipelines/train.py") and other.owns("pipelines/train.py")
    assert not hrob.owns("README.md") and not other.owns("docs/pipelines/x.md")


def test_two_projects_with_one_model_name_are_refused(tmp_path):
    repo = make_repo(tmp_path, others=())
    add_other_project(repo, "other", "hrob-risk")
    with pytest.raises(errors.ConfigError) as exc:
        projects.discover(repo)
    msg = str(exc.value)
    assert msg.startswith(
        "models/other/configs/base/project.yml: model_name: model_name 'hrob-risk' is taken by the project in configs/"
    )
    assert "\n" not in msg


def test_a_folder_without_a_project_is_not_one_and_none_at_all_is_an_error(tmp_path):
    (tmp_path / "models" / "notes").mkdir(parents=True)
    (tmp_path / "models" / "notes" / "README.md").write_text("x")
    with pytest.raises(errors.InvalidInput, match=r"no model project here \(looked for configs/base/project.yml"):
        projects.discover(tmp_path)


def test_resolve_names_models_folders_and_the_root_project_by_its_name(two):
    assert projects.resolve("other", two) == str(two / "models/other/configs")
    assert projects.resolve("hrob", two) == str(two / "configs")
    with pytest.raises(errors.InvalidInput) as exc:
        projects.resolve("readmit", two)
    assert str(exc.value) == "--project/PROMOTE_PROJECT: no project 'readmit' here (known: hrob, other)"
    for bad in ("../other", "configs", ""):
        with pytest.raises(errors.InvalidInput):
            projects.resolve(bad, two)


def test_default_config_dir_is_the_only_project_when_there_is_no_root(tmp_path, two):
    assert projects.default_config_dir(two) is None  # the root project is the default
    solo = make_repo(tmp_path / "solo", root=False, others=("solo",))
    assert projects.default_config_dir(solo) == str(solo / "models/solo/configs")
    many = make_repo(tmp_path / "many", root=False, others=("a", "b"))
    assert projects.default_config_dir(many) is None


# --------------------------------------------------------------------------- selection (pure)


def _ev(kind: str, branch: str | None = None, *, into: str | None = None, **kw) -> Event:
    if kind == "pull_request":
        return Event(
            kind=kind, provider="github", branch=into, source_branch=branch, target_branch=into, default_branch="main"
        )
    return Event(kind=kind, provider="github", branch=branch, default_branch="main", **kw)


PR = "pull_request"
CASES = [
    # event, changed files, expected {project: environment} of the projects that run
    (_ev(PR, "feature/x", into="main"), ["configs/base/training.yml"], {"hrob": "staging"}),
    (_ev(PR, "feature/x", into="main"), ["models/other/configs/base/training.yml"], {"other": "staging"}),
    (_ev(PR, "feature/x", into="main"), ["pipelines/train.py"], {"hrob": "staging", "other": "staging"}),
    (_ev(PR, "feature/x", into="main"), ["promoter/app/run.py"], {"hrob": "staging", "other": "staging"}),
    (_ev(PR, "feature/x", into="main"), ["README.md", "docs/x.md"], {}),
    (_ev(PR, "feature/x", into="main"), None, {"hrob": "staging", "other": "staging"}),
    # a PR into a release branch is validated in staging, and only by the project that owns the branch
    (_ev(PR, "fix/y", into="release/other/1.0"), ["pipelines/train.py"], {"other": "staging"}),
    (_ev(PR, "fix/y", into="release/1.2"), ["pipelines/train.py"], {"hrob": "staging"}),
    (_ev("push", "main"), ["models/other/configs/base/training.yml"], {"other": "staging"}),
    (_ev("push", "main"), [], {}),
    # a release branch runs its project whatever changed (creating the branch changes nothing)
    (_ev("push", "release/1.2"), [], {"hrob": "prod"}),
    (_ev("push", "release"), [], {"hrob": "prod"}),
    (_ev("push", "release/other/1.0"), [], {"other": "prod"}),
    (_ev("push", "release/1.2/hotfix"), ["pipelines/train.py"], {}),
    (_ev("push", "feature/x"), ["pipelines/train.py"], {}),  # the catch-all: dev runs locally
    (_ev("schedule", "main"), None, {"hrob": "prod", "other": "prod"}),
    (_ev("manual", "release/other/1.0", action="rollback", reason="INC-1"), None, {"other": "prod"}),
    (_ev("manual", "main", action="score"), None, {"hrob": "staging", "other": "staging"}),
]


@pytest.mark.parametrize("event,changed,expected", CASES)
def test_select_runs_the_projects_the_event_concerns(loaded, event, changed, expected):
    chosen = projects.select(loaded, event, changed)
    assert {s.project.name: s.environment for s in chosen if s.run} == expected
    assert all(s.reason for s in chosen)


def test_select_says_why_a_project_does_not_run(loaded):
    by = {s.project.name: s for s in projects.select(loaded, _ev("push", "release/other/1.0"), [])}
    assert (
        by["hrob"].reason
        == "'release/other/1.0' is no branch of this project's rules (rule 4: '**' -> dev): not run in CI"
    )
    assert by["other"].reason == "'release/other/1.0' is a release branch of this project (rule 1: 'release/other/*')"
    pr = {s.project.name: s for s in projects.select(loaded, _ev(PR, "f", into="main"), ["models/other/a.py"] * 3)}
    assert pr["hrob"].reason == "no file of this project changed"
    assert pr["other"].reason == "changed: models/other/a.py and 2 more"


def test_only_keeps_one_project(loaded):
    chosen = projects.select(loaded, _ev("schedule", "main"), None, only="other")
    assert [s.project.name for s in chosen if s.run] == ["other"]
    assert next(s for s in chosen if s.project.name == "hrob").reason == "--project/PROMOTE_PROJECT is 'other'"


def test_two_projects_claiming_one_release_branch_is_a_config_error(loaded):
    hrob, other = loaded
    both = [hrob, (other[0], hrob[1])]  # the second project with the root project's rules
    with pytest.raises(errors.ConfigError) as exc:
        projects.select(both, _ev("push", "release/1.2"), [])
    msg = str(exc.value)
    assert msg.startswith("models/other/configs/base/promotion.yml: branch_rules: branch 'release/1.2' is a release")
    assert "hrob (rule 2: 'release/*'), other (rule 2: 'release/*')" in msg
    assert "release/<project>/<version>" in msg
    # a schedule runs both in prod without a conflict
    assert len([s for s in projects.select(both, _ev("schedule", "main"), None) if s.run]) == 2


def test_renderings_for_ci(loaded):
    chosen = projects.select(loaded, _ev("schedule", "main"), None)
    assert projects.matrix(chosen) == {
        "include": [
            {"project": "hrob", "config_dir": "configs", "model": "hrob-risk", "environment": "prod"},
            {"project": "other", "config_dir": "models/other/configs", "model": "other-risk", "environment": "prod"},
        ]
    }
    assert projects.matrix([]) == {"include": []}
    assert projects.azure_matrix(chosen) == {
        "hrob": {"PROMOTE_PROJECT": "hrob"},
        "other": {"PROMOTE_PROJECT": "other"},
    }
    assert projects.leg_name("my-model.v2") == "my_model_v2"
    kinds = [
        projects.gitlab_job_kind(_ev(PR, "f", into="main"), "staging"),
        projects.gitlab_job_kind(_ev("push", "main"), "staging"),
        projects.gitlab_job_kind(_ev("push", "release/1"), "prod"),
        projects.gitlab_job_kind(_ev("schedule", "main"), "prod"),
    ]
    assert kinds == ["merge-request", "staging", "prod", "score"]


def test_module_globs_name_a_projects_own_code(tmp_path):
    (tmp_path / "models" / "x" / "trainer").mkdir(parents=True)
    (tmp_path / "models" / "x" / "trainer" / "fit.py").write_text("")
    (tmp_path / "shared_ml.py").write_text("")
    assert projects._module_glob(tmp_path, "models.x.trainer.fit") == "models/x/trainer/**"
    assert projects._module_glob(tmp_path, "models.x.trainer") == "models/x/trainer/**"
    assert projects._module_glob(tmp_path / "models" / "x", "trainer.fit", "models/x/") == "models/x/trainer/**"
    assert projects._module_glob(tmp_path, "shared_ml") == "shared_ml.py"
    assert projects._module_glob(tmp_path, "models.x.trainer.not_yet") == "models/x/trainer/**"
    assert projects._module_glob(tmp_path, "sklearn.linear_model") is None  # installed, not in the repo


def test_pipeline_code_named_in_project_yml_selects_the_projects_that_use_it(tmp_path):
    """A project's own trainer is its own; a package two projects name is shared by those two only."""
    repo = make_repo(tmp_path, others=("a", "b", "c"))
    (repo / "shared_ml").mkdir()
    (repo / "shared_ml" / "fit.py").write_text("def train(**kw): ...\n")
    (repo / "models" / "c" / "mytrain.py").write_text("def fit(**kw): ...\n")
    uses = {"a": "shared_ml.fit:train", "b": "shared_ml.fit:train", "c": "mytrain:fit"}
    for name, entry in uses.items():
        yml = repo / "models" / name / "configs" / "base" / "project.yml"
        yml.write_text(yml.read_text() + f'pipelines:\n  train: "{entry}"\n')
    found = {p.name: p for p in projects.discover(repo)}
    assert "shared_ml/**" in found["a"].shared and "shared_ml/**" in found["b"].shared
    assert "shared_ml/**" not in found["c"].globs and "shared_ml/**" not in found["hrob"].globs
    assert found["c"].paths == ("models/c/**", "models/c/mytrain.py")
    assert "pipelines/**" in found["c"].shared  # the parts it does not name are the shipped ones
    pairs = [(p, p.settings) for p in found.values()]
    pr = _ev(PR, "feature/x", into="main")
    assert [s.project.name for s in projects.select(pairs, pr, ["shared_ml/fit.py"]) if s.run] == ["a", "b"]
    assert [s.project.name for s in projects.select(pairs, pr, ["models/c/mytrain.py"]) if s.run] == ["c"]


# --------------------------------------------------------------------------- with git


def test_changed_files_and_first_parent(tmp_path):
    repo = make_repo(tmp_path)
    first = git(repo, "rev-parse", "HEAD")
    second = commit(repo, "models/other/configs/base/training.yml", "# tuned\n")
    assert gitops.changed_files(repo, first, second) == ["models/other/configs/base/training.yml"]
    assert gitops.first_parent(repo, second) == first and gitops.first_parent(repo, first) is None
    assert gitops.changed_files(repo, "0" * 40, second) is None  # a new branch's "before"
    assert gitops.changed_files(repo, "deadbeef" * 5, second) is None  # not in this clone
    git(repo, "mv", "pipelines/train.py", "pipelines/fit.py")
    git(repo, "commit", "-q", "-m", "rename")
    assert gitops.changed_files(repo, second, "HEAD") == ["pipelines/fit.py", "pipelines/train.py"]


def test_a_pull_request_runs_what_changed_since_its_merge_base(tmp_path):
    repo = make_repo(tmp_path)
    git(repo, "checkout", "-q", "-b", "feature/other")
    commit(repo, "models/other/configs/base/training.yml", "# tuned\n")
    git(repo, "checkout", "-q", "main")
    commit(repo, "configs/base/training.yml", "# main moved on\n")  # not the PR's change
    event = _local_pr(repo, "feature/other", "main")
    found = projects.changed_projects(event, repo)
    assert found.changed == ("models/other/configs/base/training.yml",)
    assert [(s.project.name, s.environment) for s in found.selected] == [("other", "staging")]


def test_a_pull_request_cannot_deselect_its_own_project(tmp_path):
    """The branch rules that select a PR's projects are its target's (invariant 4)."""
    repo = make_repo(tmp_path)
    git(repo, "checkout", "-q", "-b", "feature/sneaky")
    promotion = repo / "models/other/configs/base/promotion.yml"
    text = promotion.read_text().replace("  - {default_branch: true, environment: staging}\n", "", 1)
    commit(repo, "models/other/configs/base/promotion.yml", text)
    found = projects.changed_projects(_local_pr(repo, "feature/sneaky", "main"), repo)
    assert [(s.project.name, s.environment) for s in found.selected] == [("other", "staging")]


def test_a_project_new_in_a_pull_request_waits_for_the_merge(tmp_path):
    repo = make_repo(tmp_path, others=())
    git(repo, "checkout", "-q", "-b", "feature/new-model")
    add_other_project(repo, "fresh", "fresh-risk")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a new project")
    found = projects.changed_projects(_local_pr(repo, "feature/new-model", "main"), repo)
    by = {s.project.name: s for s in found.selections}
    assert not by["fresh"].run and "'main' has no committed policy for it yet" in by["fresh"].reason
    assert not by["hrob"].run


def test_a_push_diffs_from_its_before_or_first_parent(tmp_path):
    repo = make_repo(tmp_path)
    before = git(repo, "rev-parse", "HEAD")
    commit(repo, "models/other/configs/base/training.yml", "# one\n")
    head = commit(repo, "README.md", "# two\n")
    event = Event(kind="push", provider="local", branch="main", sha=head, default_branch="main")
    # default: the first parent only (a merge commit's parent): README.md changed, no project
    assert projects.changed_projects(event, repo).selected == []
    # the provider's "before" covers the whole push
    pushed = projects.changed_projects(event, repo, base=before)
    assert [s.project.name for s in pushed.selected] == ["other"]
    # an all-zero before (a new branch): unknown, every project the rules name runs
    fresh = projects.changed_projects(event, repo, base="0" * 40)
    assert fresh.changed is None and "every project runs" in (fresh.note or "")
    assert [s.project.name for s in fresh.selected] == ["hrob", "other"]


def _local_pr(repo: Path, head: str, into: str) -> Event:
    from promoter.app import sources

    return sources.from_local(repo, kind="pull_request", source_branch=head, target_branch=into)


def test_models_project_names_a_project_under_models_only(tmp_path):
    from promoter.app.projects import models_project

    assert models_project(tmp_path / "models" / "readmission" / "configs") == "readmission"
    assert models_project(tmp_path / "configs") is None
    assert models_project(tmp_path / "elsewhere" / "readmission" / "configs") is None
