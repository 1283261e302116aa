"""The model projects of a repository, and which of them an event must run in CI.

A repository holds a *root* project (``configs/``, named by its ``project.yml`` ``name``) and/or
projects under ``models/<name>/configs/`` (named by their folder). Each one is a model: its
own configs, its own registered models, audit chain and lake folder; one tracking server
serves them all.

* :func:`discover` lists them; :func:`resolve` turns ``--project NAME`` into a config folder.
* :func:`select` decides, per project, whether an event runs it (pure, over plain data);
  :func:`changed_projects` gathers what it needs (the diff from git, each project's branch
  rules) and calls it. ``promote projects --changed --json`` prints the result as the matrix
  the CI templates run.

Selection rules (see ``ci/README.md``):

* schedule: every project (daily scoring of each champion).
* push to, or a manual run on, a branch that a project's rules map to its prod environment by
  a rule that is not the catch-all (``release/<project>/<version>``): that project, whatever
  changed. Two projects claiming one release branch is an error.
* pull request, or push to another branch a rule names (the default branch): the projects
  whose files changed (for a pull request, since the merge base with its target). Files of the
  engine (``promoter/``, the packaging, the CI files) count for every project, the shipped
  pipelines (``pipelines/``) for every project that uses them, a project's own pipeline code for
  every project whose config names it. When the change cannot be computed (a new branch, a
  shallow clone), every project runs.
* a branch only a catch-all rule matches (``**`` -> dev) runs nothing in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promoter import config, errors
from promoter.config import BranchRule, Settings
from promoter.core import plan as planning
from promoter.core.branches import matches
from promoter.core.events import Event

ROOT_CONFIGS = "configs"
MODELS = "models"
# Files whose change can alter every project's result: the engine, its packaging, the CI files.
ENGINE_GLOBS: tuple[str, ...] = (
    "promoter/**",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "requirements*.txt",
    "constraints*.txt",
    ".github/workflows/**",
    "azure-pipelines.yml",
    ".gitlab-ci.yml",
    ".gitlab/**",
)


@dataclass(frozen=True)
class Project:
    """One model project of a repository.

    Attributes:
        name: what ``--project`` takes (the folder under ``models/``, or the root project's ``name``).
        config_dir: its config folder, relative to the repository root (``models/<name>/configs``).
        model_name: ``project.yml`` ``model_name`` (registered models are named from it).
        root: True for the repository's top-level ``configs/`` project.
        paths: globs of the files that are the project's own (its folder, its own pipeline code).
        shared: globs of shared code it uses; a change there runs it too (and every other user).
    """

    name: str
    config_dir: str
    model_name: str
    root: bool = False
    paths: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    settings: Settings | None = field(default=None, repr=False, compare=False)

    @property
    def globs(self) -> tuple[str, ...]:
        return self.paths + self.shared

    def owns(self, path: str) -> bool:
        """True when a change to ``path`` (repository-relative, ``/``-separated) concerns this project."""
        return any(matches(g, path) for g in self.globs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.name,
            "config_dir": self.config_dir,
            "model": self.model_name,
            "root": self.root,
            "paths": list(self.paths),
            "shared": list(self.shared),
        }


@dataclass(frozen=True)
class Selection:
    """Whether one project runs for an event, in which environment, and why."""

    project: Project
    run: bool
    environment: str | None
    reason: str
    why: str = "skip"  # what decided it: release | changes | schedule | manual | skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project.name,
            "config_dir": self.project.config_dir,
            "model": self.project.model_name,
            "environment": self.environment,
            "run": self.run,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Changes:
    """What ``promote projects --changed`` found: the event, the diff it used, each project's selection."""

    event: Event
    base: str | None
    head: str | None
    changed: tuple[str, ...] | None  # None: could not be computed (every project runs)
    selections: tuple[Selection, ...]
    note: str | None = None

    @property
    def selected(self) -> list[Selection]:
        return [s for s in self.selections if s.run]


# --------------------------------------------------------------------------- discovery


def _has_project(folder: Path) -> bool:
    return (folder / "base" / "project.yml").is_file()


def _models_dirs(repo: Path) -> list[Path]:
    models = repo / MODELS
    if not models.is_dir():
        return []
    return sorted(d for d in models.iterdir() if d.is_dir() and _has_project(d / "configs"))


def _entry_modules(settings: Settings) -> list[str]:
    """The modules ``project.yml`` ``pipelines:`` names (``module:function`` per part; the shipped
    pipelines by default)."""
    named = settings.project.pipelines.model_dump()
    return list(dict.fromkeys(str(v).split(":", 1)[0] for v in named.values() if v))


def _module_glob(base: Path, module: str, prefix: str = "") -> str | None:
    """The files of ``module`` under ``base``, as a repository glob (``prefix`` is ``base`` relative to it).

    A module in a package counts as its whole package folder (``a.b.c`` -> ``a/b/**``): code
    there imports its siblings. A package not checked in here (an installed one) gives ``None``.
    """
    parts = [p for p in module.split(".") if p]
    if not parts:
        return None
    if base.joinpath(*parts).is_dir():
        return prefix + "/".join(parts) + "/**"
    if base.joinpath(*parts).with_suffix(".py").is_file():
        return prefix + ("/".join(parts[:-1]) + "/**" if len(parts) > 1 else parts[0] + ".py")
    for i in range(len(parts) - 1, 0, -1):  # the module is not there (yet): its package is
        if base.joinpath(*parts[:i]).is_dir():
            return prefix + "/".join(parts[:i]) + "/**"
    return None


def _code_globs(repo: Path, settings: Settings, own: str, folder: str) -> tuple[list[str], list[str]]:
    """(own, shared) globs of the pipeline code a project's config names.

    A module is looked for where the runner imports it from: the project's folder (``folder``,
    the parent of its ``configs/``) first, then the checkout. Code inside the project's own folder
    is its own; code elsewhere (the shipped ``pipelines/``, a shared package) is shared: a change
    there runs every project that names it.
    """
    own_globs: list[str] = []
    shared: list[str] = []
    own_prefix = own.removesuffix("**")
    for module in _entry_modules(settings):
        glob = None
        if folder:
            glob = _module_glob(repo / folder, module, folder.rstrip("/") + "/")
        glob = glob or _module_glob(repo, module)
        if glob is None:
            continue
        (own_globs if glob.startswith(own_prefix) else shared).append(glob)
    return own_globs, shared


def _project(repo: Path, config_dir: str, name: str | None, root: bool) -> Project:
    settings = config.load(repo / config_dir, None)
    own = f"{config_dir}/**" if root else f"{MODELS}/{name}/**"
    own_code, shared_code = _code_globs(repo, settings, own, "" if root else f"{MODELS}/{name}")
    paths = tuple(dict.fromkeys([own, *own_code]))
    shared = tuple(dict.fromkeys([*shared_code, *ENGINE_GLOBS]))
    return Project(
        name=name or settings.project.name,
        config_dir=config_dir,
        model_name=settings.project.model_name,
        root=root,
        paths=paths,
        shared=shared,
        settings=settings,
    )


def discover(repo_root: str | os.PathLike[str] = ".") -> list[Project]:
    """Every model project of the repository at ``repo_root``: the root ``configs/`` first, then ``models/*``.

    Args:
        repo_root: the top of the repository (where ``configs/`` and ``models/`` are).

    Returns:
        The projects, each with its loaded base settings.

    Raises:
        ConfigError: a project's config does not load (file:line), or two projects share a
            name or a ``model_name`` (they would share registered models and audit chains).
        InvalidInput: there is no project here.
    """
    repo = Path(repo_root)
    found: list[Project] = []
    if _has_project(repo / ROOT_CONFIGS):
        found.append(_project(repo, ROOT_CONFIGS, None, root=True))
    for folder in _models_dirs(repo):
        found.append(_project(repo, f"{MODELS}/{folder.name}/configs", folder.name, root=False))
    if not found:
        raise errors.InvalidInput(
            f"{repo.resolve()}: no model project here (looked for {ROOT_CONFIGS}/base/project.yml and "
            f"{MODELS}/<name>/configs/base/project.yml; `promote init` writes one)"
        )
    _check_unique(found)
    return found


def _check_unique(projects: Sequence[Project]) -> None:
    for attr, what in (("name", "project name"), ("model_name", "model_name")):
        seen: dict[str, Project] = {}
        for p in projects:
            key = getattr(p, attr)
            if key in seen:
                raise errors.ConfigError(
                    f"{what} {key!r} is taken by the project in {seen[key].config_dir}/: every project needs its own "
                    f"(registered models, audit chains and lake folders are keyed by it)",
                    file=f"{p.config_dir}/base/project.yml",
                    key="model_name" if attr == "model_name" else "name",
                )
            seen[key] = p


def names(repo_root: str | os.PathLike[str] = ".") -> list[str]:
    """The project names of the repository, without loading more than the root project's name."""
    repo = Path(repo_root)
    out = [_root_name(repo)] if _has_project(repo / ROOT_CONFIGS) else []
    return out + [d.name for d in _models_dirs(repo)]


def _root_name(repo: Path) -> str:
    return config.load(repo / ROOT_CONFIGS, None).project.name


def resolve(name: str, repo_root: str | os.PathLike[str] = ".") -> str:
    """The config folder of project ``name`` (``--project`` / ``PROMOTE_PROJECT``).

    ``models/<name>/configs`` when it exists, else the root ``configs/`` when its ``project.yml``
    ``name`` is ``name``. The path is ``repo_root`` joined with the folder.

    Raises:
        InvalidInput: no such project; the message names the known ones.
    """
    repo = Path(repo_root)
    name = name.strip()
    if name and "/" not in name and name not in (".", "..") and _has_project(repo / MODELS / name / "configs"):
        return str(repo / MODELS / name / "configs")
    if _has_project(repo / ROOT_CONFIGS) and _root_name(repo) == name:
        return str(repo / ROOT_CONFIGS)
    known = names(repo)
    raise errors.InvalidInput(
        f"--project/PROMOTE_PROJECT: no project {name!r} here "
        + (f"(known: {', '.join(known)})" if known else f"(none found in {repo.resolve()})")
    )


def models_project(config_dir: str | os.PathLike[str]) -> str | None:
    """The project name of a config folder ``.../models/<name>/configs``; ``None`` for the root project."""
    folder = Path(config_dir).resolve()
    if folder.name == "configs" and folder.parent.parent.name == MODELS:
        return folder.parent.name
    return None


def default_config_dir(repo_root: str | os.PathLike[str] = ".") -> str | None:
    """The project to use when none is named and there is no root ``configs/``: the only one under
    ``models/``, or ``None`` (zero or several)."""
    repo = Path(repo_root)
    if _has_project(repo / ROOT_CONFIGS):
        return None
    found = _models_dirs(repo)
    if len(found) != 1:
        return None
    return str(repo / MODELS / found[0].name / "configs")


# --------------------------------------------------------------------------- selection (pure)


def is_catch_all(rule: BranchRule) -> bool:
    """A rule whose pattern has no literal character (``**``, ``*``): it names no branch in particular."""
    return rule.pattern is not None and set(rule.pattern) <= set("*?/")


def _describe(i: int, rule: BranchRule) -> str:
    return f"rule {i}: default branch" if rule.default_branch else f"rule {i}: {rule.pattern!r}"


def decide(project: Project, settings: Settings, event: Event, changed: Sequence[str] | None) -> Selection:
    """Whether ``event`` runs ``project`` in CI (see the module docstring). Pure.

    Args:
        project: the project (its globs decide which changed files are its own).
        settings: the project's settings whose branch rules apply (a pull request's: its target's).
        event: the event.
        changed: repository-relative paths changed by the event, or ``None`` when unknown.
    """
    the_plan = planning.build(event, settings)
    if the_plan.is_empty:
        return Selection(project, False, the_plan.environment, the_plan.nothing or "nothing to do")
    env = the_plan.environment
    if event.kind == "schedule":
        return Selection(project, True, env, "schedule: every project scores with its champion", "schedule")
    branch = (event.target_branch if event.is_pull_request else event.branch) or ""
    default_branch, _ = planning.effective_default_branch(settings.promotion, event)
    found = planning.first_rule(settings.promotion, branch, default_branch)
    if found is None or is_catch_all(found[1]):
        where = f" ({_describe(*found)} -> {found[1].environment})" if found else ""
        return Selection(project, False, env, f"{branch!r} is no branch of this project's rules{where}: not run in CI")
    rule_text = _describe(*found)
    if event.kind in ("push", "release", "manual") and env == settings.promotion.prod_environment:
        return Selection(project, True, env, f"{branch!r} is a release branch of this project ({rule_text})", "release")
    if event.kind == "manual":
        return Selection(project, True, env, f"manual {event.action or 'run'} on {branch!r} ({rule_text})", "manual")
    if changed is None:
        return Selection(project, True, env, "the change cannot be computed here: every project runs", "changes")
    hits = [p for p in changed if project.owns(p)]
    if not hits:
        return Selection(project, False, env, "no file of this project changed")
    more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
    return Selection(project, True, env, f"changed: {hits[0]}{more}", "changes")


def select(
    projects: Sequence[tuple[Project, Settings]],
    event: Event,
    changed: Sequence[str] | None,
    only: str | None = None,
) -> list[Selection]:
    """:func:`decide` for every project; ``only`` keeps one project (``--project``). Pure.

    Raises:
        ConfigError: two projects claim the same release branch (each needs its own pattern).
    """
    out: list[Selection] = []
    for project, settings in projects:
        if only and project.name != only:
            out.append(Selection(project, False, None, f"--project/PROMOTE_PROJECT is {only!r}"))
            continue
        out.append(decide(project, settings, event, changed))
    releases = [s for s in out if s.run and s.why == "release"]
    if len(releases) > 1:
        claims = ", ".join(f"{s.project.name} ({s.reason.rsplit('(', 1)[1].rstrip(')')})" for s in releases)
        raise errors.ConfigError(
            f"branch {event.branch!r} is a release branch of several projects: {claims}; give each project "
            f"its own release branches (release/<project>/<version>)",
            file=f"{releases[1].project.config_dir}/base/promotion.yml",
            key="branch_rules",
        )
    return out


# --------------------------------------------------------------------------- selection (with git)


def diff_range(
    event: Event, repo_path: str | os.PathLike[str] = ".", base: str | None = None, head: str | None = None
) -> tuple[str | None, str | None, bool]:
    """(base, head, since_merge_base) of the change an event brings.

    A pull request: from the merge base with its target branch (or ``base``) to its head. A push:
    from ``base`` (the provider's "before": ``github.event.before``, ``CI_COMMIT_BEFORE_SHA``) or,
    when not given, the head's first parent (what a merge was made onto).
    """
    from promoter import gitops

    head = head or event.commit or gitops.head_info(repo_path, allow_missing=True).sha
    if event.is_pull_request:
        return base or event.target_branch, head, True
    if base is None and head:
        base = gitops.first_parent(repo_path, head)
    return base, head, False


def _branch_rules_for(project: Project, event: Event, repo: Path) -> tuple[Settings, str | None]:
    """The settings whose branch rules select ``project``: a pull request's come from its target branch
    (a PR cannot deselect its own checks); ``None`` settings when the project is new on the PR."""
    from promoter.app import prepare

    head_settings = project.settings or config.load(repo / project.config_dir, None)
    if not event.is_pull_request:
        return head_settings, None
    try:
        source = prepare.target_source(event, repo / project.config_dir, repo)
    except errors.GitError as exc:
        if "no committed policy" in str(exc):
            return head_settings, (
                f"new in this pull request: {event.target_branch!r} has no committed policy for it yet "
                f"(it first runs on the merge)"
            )
        raise
    return config.load(source, None), None


def changed_projects(
    event: Event,
    repo_root: str | os.PathLike[str] = ".",
    *,
    base: str | None = None,
    head: str | None = None,
    only: str | None = None,
) -> Changes:
    """Which projects of the repository ``event`` runs in CI, and why each of the others does not.

    Args:
        event: the CI (or stated) event.
        repo_root: the top of the checkout.
        base: the commit to diff from (default: see :func:`diff_range`); an all-zero sha means unknown.
        head: the commit to diff to (default: the event's commit).
        only: keep one project (``--project`` / ``PROMOTE_PROJECT``, e.g. a manual run's input).

    Raises:
        ConfigError: a project's config does not load, or two projects claim one release branch.
        GitError: a pull request's target branch cannot be read here.
    """
    from promoter import gitops

    repo = Path(repo_root)
    projects = discover(repo)
    changed: list[str] | None = None
    note = None
    b = h = None
    if event.kind in ("pull_request", "push", "release") and not event.nothing:
        b, h, since_merge_base = diff_range(event, repo, base, head)
        changed = gitops.changed_files(repo, b, h, since_merge_base=since_merge_base) if b and h else None
    pairs: list[tuple[Project, Settings]] = []
    new: dict[str, str] = {}
    for p in projects:
        settings, why = _branch_rules_for(p, event, repo)
        pairs.append((p, settings))
        if why:
            new[p.name] = why
    selections = select(pairs, event, changed, only)
    selections = [replace(s, run=False, reason=new[s.project.name]) if s.project.name in new else s for s in selections]
    if changed is None and any(s.why == "changes" for s in selections):
        note = f"cannot diff {b or '?'}..{h or '?'} here (a new branch or a shallow clone): every project runs"
    return Changes(event, b, h, tuple(changed) if changed is not None else None, tuple(selections), note)


# --------------------------------------------------------------------------- renderings for CI


def matrix(selections: Iterable[Selection]) -> dict[str, list[dict[str, Any]]]:
    """The GitHub Actions matrix: ``{"include": [{"project", "config_dir", "model", "environment"}]}``."""
    return {
        "include": [
            {
                "project": s.project.name,
                "config_dir": s.project.config_dir,
                "model": s.project.model_name,
                "environment": s.environment,
            }
            for s in selections
            if s.run
        ]
    }


def leg_name(project: str) -> str:
    """An Azure Pipelines matrix leg name (letters, digits and ``_``) for a project."""
    return "".join(c if c.isalnum() else "_" for c in project)


def azure_matrix(selections: Iterable[Selection]) -> dict[str, dict[str, str]]:
    """The Azure Pipelines matrix: ``{leg: {"PROMOTE_PROJECT": name}}``."""
    return {leg_name(s.project.name): {"PROMOTE_PROJECT": s.project.name} for s in selections if s.run}


def gitlab_job_kind(event: Event, environment: str | None, prod_environment: str = "prod") -> str:
    """Which hidden job of ``.gitlab/promote-jobs.yml`` a selected project's child job extends."""
    if event.is_pull_request:
        return "merge-request"
    if event.kind == "schedule":
        return "score"
    return "prod" if environment == prod_environment else "staging"
