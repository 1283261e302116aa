"""Pure: (event, settings) -> Plan. No I/O, no clock, no randomness.

The plan says which environment an event resolves to, which registered model it may
touch, and every step that will run with the reason for it. ``promote plan`` prints it;
``promoter.app.run`` executes exactly those steps, in that order (invariant 13). The plan
does not depend on what the registry holds, so printing it needs no server and the plan
printed is the plan run; what a step finds (the champion, a hold) is in its outcome.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from promoter.config import BranchRule, PromotionSettings, Settings
from promoter.core.branches import matches
from promoter.core.events import Event

STEP_REASONS: dict[str, str] = {
    "contracts": "check the data contracts before anything trains",
    "features": "build silver and gold tables from bronze (PHI stays in bronze)",
    "train": "retrain from this branch's code (deploy code, not models): tune, fit, evaluate on the "
    "held-out rows, register in {model} (or reuse the version with the same code, config and data)",
    "expectations": "check the candidate's absolute floors and ceilings{challenger}",
    "gate": "compare candidate and champion on the same evaluation rows (a first version: floors, ceilings "
    "and fairness only)",
    "approval": "wait for sign-off when the verdict, a rollback hold or the {env} policy asks ({required})",
    "promote": "move the 'champion' alias in {model} when the decision allows",
    "score": "score the population in batch with the champion",
    "surveillance": "monitor the champion: input and prediction drift against its training data and the previous "
    "window, realised performance of windows whose outcomes have matured, alerts to owners, a retrain request when "
    "the retrain policy says so (never a promotion)",
    "rollback": "move 'champion' back (to 'previous' or the version asked) and hold automatic promotion",
    "report": "publish the result where reviewers look (also when a step fails)",
}
STEP_NAMES = tuple(STEP_REASONS)


@dataclass(frozen=True)
class Step:
    name: str
    reason: str


@dataclass(frozen=True)
class Plan:
    event: Event
    environment: str | None
    registered_model: str | None
    steps: tuple[Step, ...] = ()
    nothing: str | None = None
    rule: str | None = None  # which branch rule matched, for the reader
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_empty(self) -> bool:
        return self.nothing is not None

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.to_dict(),
            "environment": self.environment,
            "registered_model": self.registered_model,
            "rule": self.rule,
            "nothing_to_do": self.nothing,
            "steps": [asdict(s) for s in self.steps],
            "notes": list(self.notes),
        }


def effective_default_branch(promotion: PromotionSettings, event: Event) -> tuple[str, str | None]:
    """The default branch and, when it had to be guessed, a note saying so.

    ``auto`` takes it from the event (the payload's ``repository.default_branch``, the GitLab
    variable, or the remote's HEAD) and falls back to ``fallback_default_branch``.
    """
    if promotion.default_branch != "auto":
        return promotion.default_branch, None
    if event.default_branch:
        return event.default_branch, None
    return promotion.fallback_default_branch, (
        f"default_branch is 'auto' and the event does not name one: using {promotion.fallback_default_branch!r}"
    )


def first_rule(promotion: PromotionSettings, branch: str, default_branch: str) -> tuple[int, BranchRule] | None:
    """The rule that decides ``branch``: (its 1-based number, the rule), or ``None``. First match wins."""
    for i, rule in enumerate(promotion.branch_rules, 1):
        if rule.default_branch:
            if branch == default_branch:
                return i, rule
        elif rule.pattern is not None and matches(rule.pattern, branch):
            return i, rule
    return None


def resolve_environment(promotion: PromotionSettings, branch: str, default_branch: str) -> tuple[str | None, str]:
    """First matching rule wins. Returns (environment or None, description of the rule)."""
    found = first_rule(promotion, branch, default_branch)
    if found is None:
        return None, "no rule matched"
    i, rule = found
    if rule.default_branch:
        return rule.environment, f"rule {i}: default branch ({default_branch})"
    return rule.environment, f"rule {i}: {rule.pattern!r}"


def check_expected_environment(plan: Plan, expected: str | None, settings: Settings) -> None:
    """Refuse when --env/PROMOTE_ENV names an unknown environment or one the event does not resolve to.

    Raises:
        InvalidInput: with the rule that failed (a CI job pinned to staging must never act on prod).
    """
    from promoter.errors import InvalidInput

    if not expected:
        return
    known = settings.promotion.environments
    if expected not in known:
        raise InvalidInput(
            f"--env/PROMOTE_ENV: unknown environment {expected!r} (configured in promotion.yml: {', '.join(known)})"
        )
    if plan.environment and expected != plan.environment:
        raise InvalidInput(
            f"the event resolves to {plan.environment!r} but --env/PROMOTE_ENV says "
            f"{expected!r}; refusing to act on another environment"
        )


def build(event: Event, settings: Settings) -> Plan:
    """Decide what an event implies.

    Args:
        event: the normalised event.
        settings: settings (base layer is enough; the environment is decided here).

    Returns:
        A Plan; ``plan.nothing`` holds the reason when there is nothing to do.
    """
    p = settings.promotion
    if event.nothing:
        return Plan(event, None, None, nothing=event.nothing)
    if event.kind is None:
        return Plan(event, None, None, nothing="no event")

    notes: list[str] = []
    default_branch, note = effective_default_branch(p, event)
    if note and event.kind != "schedule":
        notes.append(note)

    if event.kind == "schedule":
        env, rule = p.schedule.environment, "schedule -> schedule.environment"
    else:
        branch = event.target_branch if event.is_pull_request else event.branch
        if not branch:
            return Plan(event, None, None, nothing="the event names no branch")
        env, rule = resolve_environment(p, branch, default_branch)
        if env is None:
            return Plan(event, None, None, nothing=f"branch {branch!r} matches no branch rule", rule=rule)
        if event.is_pull_request and env == p.prod_environment:
            notes.append(
                f"a pull request into {branch!r} is validated in {p.pull_request_fallback}: "
                f"unreviewed code never runs with {env} credentials"
            )
            env = p.pull_request_fallback

    model = settings.model_name_for(env)
    kind = event.kind
    if kind == "manual":
        names = _manual_steps(p, env, event.action or "run")
    else:
        names = list(p.steps.get(env, {}).get(kind, []))
    if not names:
        return Plan(
            event,
            env,
            model,
            rule=rule,
            notes=tuple(notes),
            nothing=f"no steps configured for {kind} in {env} (promotion.yml steps.{env}.{kind})",
        )
    if event.is_pull_request:
        # Invariant: a pull request never moves a champion.
        dropped = [n for n in names if n in ("promote", "approval", "score", "rollback")]
        if dropped:
            notes.append(f"dropped {', '.join(dropped)}: a pull request never moves a champion")
        names = [n for n in names if n not in dropped]

    return Plan(event, env, model, _steps(names, env, model, p), rule=rule, notes=tuple(notes))


def build_action(event: Event, settings: Settings, env: str, action: str) -> Plan:
    """The plan of a manual ``action`` (``score``, ``rollback``, ``run``) in a named environment.

    Used by commands that name the environment themselves (``promote score --env prod``): the
    event (a schedule in CI, a local push) is kept for the record, but no branch is resolved.
    """
    model = settings.model_name_for(env)
    names = _manual_steps(settings.promotion, env, action)
    return Plan(event, env, model, _steps(names, env, model, settings.promotion), rule=f"manual {action} in {env}")


def _steps(names: list[str], env: str, model: str, p: PromotionSettings) -> tuple[Step, ...]:
    steps: list[Step] = []
    policy = p.policy(env)
    for name in names:
        reason = STEP_REASONS[name].format(
            model=model,
            env=env,
            required=p.approval(env).describe(),
            challenger=" (PASS: alias 'challenger')" if env != p.prod_environment else "",
        )
        if name in ("gate", "expectations") and policy.mode != "enforce":
            reason += f" [mode: {policy.mode}]"
        steps.append(Step(name, reason))
    return tuple(steps)


def _manual_steps(p: PromotionSettings, env: str, action: str) -> list[str]:
    if action == "score":
        return ["score", "report"]
    if action == "monitor":
        return ["surveillance", "report"]
    if action == "rollback":
        return ["rollback", "report"]
    by_env = p.steps.get(env, {})
    return list(by_env.get("push") or by_env.get("release") or [])
