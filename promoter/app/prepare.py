"""From an event to the plan that will run: ``prepare(event) -> Prepared``.

``promote plan``, ``promote run``, ``promote run --dry-run`` and ``promote replay`` all call
this one function, so the plan printed is the plan executed, step for step (invariant 13).

For a pull request the branch rules, the steps, the gate and expectation policy, the
approvals and where results are written come from the protected target branch
(``promoter.core.protection``); the PR head brings only what is under test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from promoter import config, errors
from promoter.app.tickets import Ticket, release_ticket
from promoter.config import Settings
from promoter.core import plan as planning
from promoter.core.events import Event
from promoter.core.plan import Plan
from promoter.core.protection import change_notes, protected_settings


@dataclass(frozen=True)
class Prepared:
    """An event resolved to its plan, with the settings to run it.

    Attributes:
        plan: the steps that will run, each with its reason.
        settings: the environment's settings (``None`` when there is nothing to do).
        protected_from: the branch the protected settings were read from (a PR's target), or ``None``.
        project_dir: the project's folder (the parent of its ``configs/``): its own pipeline
            code, named in ``project.yml`` ``pipelines:``, is imported from there.
        ticket: the change ticket of a plan that can move a champion (``promoter.app.tickets``).
    """

    plan: Plan
    settings: Settings | None
    protected_from: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    project_dir: Path | None = None
    ticket: Ticket | None = None


def target_source(event: Event, config_dir: str | Path, repo_path: str | Path) -> config.MappingSource:
    """``configs/`` as committed on a pull request's target branch.

    Raises:
        GitError: when the target branch (or its configs folder) cannot be read here.
    """
    from promoter import gitops

    target = event.target_branch or ""
    top = gitops.repo_root(repo_path)
    try:
        rel = Path(config_dir).resolve().relative_to(top)
    except ValueError:
        raise errors.GitError(
            f"{config_dir} is outside the git checkout {top}: cannot read the protected "
            f"settings of target branch {target!r}"
        ) from None
    files = gitops.read_tree_files(top, target, rel.as_posix())
    if files is None:
        raise errors.GitError(
            f"cannot read target branch {target!r} to take the branch rules, steps and gate "
            f"policy from it (in CI, fetch it first: git fetch origin {target})"
        )
    if not files:
        raise errors.GitError(f"target branch {target!r} has no {rel.as_posix()}/ folder: no committed policy")
    return config.MappingSource(files, label=f"{target}:{rel.as_posix()}")


def prepare(
    event: Event,
    config_dir: str | Path,
    repo_path: str | Path = ".",
    expected_env: str | None = None,
    *,
    ticket: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Prepared:
    """Resolve the environment, load its settings (protected parts from a PR's target), plan.

    Args:
        event: the normalised event.
        config_dir: the project's ``configs/`` folder (``base/`` plus per-environment overrides).
        repo_path: the git checkout (a PR's target branch is read from it).
        expected_env: ``--env``/``PROMOTE_ENV``: refuse when the event resolves elsewhere.
        ticket: ``--ticket``: the change ticket of a plan that can move a champion.
        environ: the process environment (``PROMOTE_CHANGE_TICKET``); default ``os.environ``.

    Returns:
        The prepared plan.

    Raises:
        ConfigError: invalid config (file:line:column). GitError: a PR's target cannot be read.
        InvalidInput: the event resolves to another environment than ``expected_env``; a
            missing or malformed change ticket where the environment's policy requires one.
    """
    protected = target_source(event, config_dir, repo_path) if event.is_pull_request else None
    rules = config.load(protected or config_dir, None)
    first = planning.build(event, rules)
    planning.check_expected_environment(first, expected_env, rules)
    if first.environment is None:
        return Prepared(first, None)
    settings = config.load(config_dir, first.environment)
    notes: list[str] = []
    if protected is not None:
        settings, changed = protected_settings(settings, config.load(protected, first.environment))
        notes = change_notes(changed, event.target_branch or "")
    the_plan = planning.build(event, settings)
    the_plan = replace(the_plan, notes=tuple(list(the_plan.notes) + notes))
    found = None
    if "promote" in the_plan.step_names():
        found = release_ticket(event, settings, first.environment, repo_path, explicit=ticket, environ=environ)
    return Prepared(
        the_plan,
        settings,
        protected_from=event.target_branch if protected else None,
        notes=tuple(notes),
        project_dir=Path(config_dir).resolve().parent,
        ticket=found,
    )


def manual_event(repo_path: str | Path, action: str) -> Event:
    """The event of a manual action run by hand or by a CI job (``promote score``).

    Inside CI the provider's event is kept (a schedule stays a schedule, with its actor and run
    link); anywhere else, or for a pull request, it becomes a manual ``action``.
    """
    from promoter.app import sources

    try:
        event = sources.detect(repo_path=repo_path)
    except errors.InvalidInput:
        event = Event(kind="manual", provider="local", action=action)
    if event.kind in (None, "pull_request"):
        event = replace(event, kind="manual", action=action, nothing=None)
    return event


def prepare_action(event: Event, config_dir: str | Path, env: str | None, action: str) -> Prepared:
    """A plan for a manual action in a named environment (``promote score``): no branch resolution.

    Args:
        event: the event (kept for the record: a schedule in CI, a local push).
        config_dir: the project's ``configs/``.
        env: the environment (default: ``PROMOTE_ENV``, else the prod environment).
        action: ``score`` (score, report), ``rollback`` or ``run``.

    Raises:
        InvalidInput: an unknown environment.
    """
    base = config.load(config_dir, None)
    env = config.resolve_env(env) or base.promotion.prod_environment
    if env not in base.promotion.environments:
        raise errors.InvalidInput(
            f"--env/PROMOTE_ENV: unknown environment {env!r} "
            f"(configured in promotion.yml: {', '.join(base.promotion.environments)})"
        )
    settings = config.load(config_dir, env)
    return Prepared(
        planning.build_action(event, settings, env, action), settings, project_dir=Path(config_dir).resolve().parent
    )
