"""Decisions people make outside a run: approve, roll back, lift a hold.

Each goes through the same pure decision as the run (``promoter.core.promotion``), appends its
records to the (model, environment)'s chain and, when the decision says MOVE, moves the champion with
the one function that does (``promoter.app.champion.move_champion``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import config, errors
from promoter.app.champion import move_champion
from promoter.app.recording import Recorder, decision_id
from promoter.app.state import utc_now
from promoter.core import approvals as signoff
from promoter.core import promotion as rules
from promoter.core import tags

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import Settings
    from promoter.registry import Registry


@dataclass
class Action:
    """The outcome of approve / rollback / release-hold, for the CLI to render."""

    message: str
    records: list[dict[str, Any]] = field(default_factory=list)
    champion_moved: bool = False
    waiting: bool = False
    evidence_url: str | None = None


def _context(
    config_dir: str | Path, env: str, actor: str, clock: Callable[[], datetime]
) -> tuple["Settings", "Registry", Recorder]:
    from promoter.app.connect import open_registry

    base = config.load(config_dir, None)
    if env not in base.promotion.environments:
        raise errors.InvalidInput(
            f"--env: unknown environment {env!r} "
            f"(configured in promotion.yml: {', '.join(base.promotion.environments)})"
        )
    settings = config.load(config_dir, env)
    registry = open_registry(settings, must_exist=True)
    recorder = Recorder(
        settings,
        registry.audit_store(),
        env,
        settings.model_name_for(env),
        actor=actor,
        event={"kind": "manual", "provider": "cli", "actor": actor},
        clock=clock,
    )
    return settings, registry, recorder


def approve(
    config_dir: str | Path,
    env: str,
    version: int,
    by: str | None = None,
    *,
    ticket: str | None = None,
    reason: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    environ: Mapping[str, str] | None = None,
) -> Action:
    """Record an approval bound to the newest gate decision for ``version``; move when the decision allows.

    The approver is the identity the platform verified (:mod:`promoter.app.identity`); the
    policy is the one recorded with the gate decision (roles, members, identity rule, ticket
    rule), never the approvals section of the working tree here.

    Raises:
        InvalidInput: ``--by`` disagreeing with the verified identity; an unverified approval
            where the recorded policy needs a verified one; an approver in no role; a missing or
            malformed ticket where one is required; a FAIL or a dry-run decision.
        NotFound: no gate decision for that version.
        PromoteError: the champion moved since the decision (re-run the release).
    """
    from promoter.app import identity, tickets

    environ = os.environ if environ is None else environ
    settings, registry, recorder = _context(config_dir, env, by or "unknown", clock)
    who = identity.resolve(by, environ, registry)
    recorder.actor = who.name
    model_name = recorder.model_name
    chain = recorder.chain()
    gates = [
        r for r in chain if r.kind == "gate" and r.candidate_version == version and r.registered_model == model_name
    ]
    if not gates:
        raise errors.NotFound(f"no gate decision for {model_name} version {version}: run the release first")
    decision = gates[-1]
    champion_now = registry.get_alias(model_name, tags.CHAMPION)
    outcome = rules.gate_outcome_of(decision, champion_now)
    policy = outcome.policy
    details = decision.details or {}
    recorded_hash = details.get("approvals_policy_hash") or signoff.policy_hash(policy)
    under = f"the policy recorded with decision {decision.record_id[:12]} (sha256 {recorded_hash[:12]})"
    if policy.identity == signoff.VERIFIED and not who.verified:
        raise errors.InvalidInput(f"{who.name!r} is not a verified identity: {identity.how_to_verify(env)}")
    roles = signoff.roles_of(policy, who)
    if policy.roles and not roles:
        listing = "; ".join(f"{r.name}: {', '.join(r.members)}" for r in policy.roles)
        raise errors.InvalidInput(f"{who.name!r} is in no role of approvals.{env} under {under} ({listing})")
    ticket_policy = config.ChangeTicketPolicy.model_validate(details.get("change_ticket_policy") or {})
    release_ticket = (details.get("ticket") or {}).get("id")
    tickets.check(ticket_policy, ticket or release_ticket, env, "--ticket" if ticket else "the release")
    hold = rules.hold_state(chain) is not None
    approvers = rules.approvers_of(chain, decision.record_id)
    ahead = rules.decide_promotion(outcome, [*approvers, who], hold=hold, champion_now=champion_now)
    if ahead.action == rules.REFUSE:
        raise errors.InvalidInput(
            f"{model_name} version {version}: {ahead.reason} (decision {decision.record_id[:12]})"
        )
    if ahead.action == rules.SKIP and champion_now == version:
        return Action(f"{model_name} version {version} is already champion: nothing to approve")
    if ahead.action == rules.SKIP:
        raise errors.InvalidInput(f"{model_name} version {version}: nothing to approve: {ahead.reason}")
    if ahead.action == rules.REGATE:
        raise errors.PromoteError(
            f"{ahead.reason}: re-run the release so the gate compares against the current champion"
        )
    checked = tickets.verified(ticket_policy, env, tickets.Ticket(ticket, "--ticket"), environ) if ticket else None
    rec = recorder.record(
        "approval",
        record_id=decision_id("approval", decision.record_id, who.provider, who.name),
        candidate_version=version,
        champion_version=decision.champion_version,
        decision_id=decision.record_id,
        verdict="APPROVED",
        details={
            "ticket": ticket or release_ticket,
            "ticket_check": checked.to_dict() if checked else None,
            "reason": reason,
            "identity": {"name": who.name, "provider": who.provider, "verified": who.verified},
            "roles": roles,
            "approvals_policy_hash": recorded_hash,
        },
    )
    if ahead.action == rules.WAIT:
        return Action(
            f"approval by {who.name} ({', '.join(roles) or 'no role'}) recorded: {ahead.reason}",
            [rec.to_dict()],
            waiting=True,
            evidence_url=_evidence(registry, settings, env, recorder, rec, version, decision.record_id),
        )
    signed = signoff.sign_off(policy, signoff.counted_approvers(policy, [*approvers, who]))
    moved = move_champion(
        registry,
        settings,
        recorder,
        version,
        decision=decision.record_id,
        approved=True,
        expected_current=champion_now,
        actor=who.name,
        extra={"sign_off": signed.to_dict(), "ticket": ticket or release_ticket},
    )
    url = _evidence(registry, settings, env, recorder, rec, version, decision.record_id)
    return Action(f"approved: {ahead.reason}", [rec.to_dict()], champion_moved=moved, evidence_url=url)


def _evidence(
    registry: "Registry",
    settings: "Settings",
    env: str,
    recorder: Recorder,
    record: Any,
    version: int,
    decision: str | None,
    restores: int | None = None,
) -> str | None:
    """Log the evidence pack of a prod approval or rollback; a pack that cannot be logged is a warning."""
    from promoter.app import evidence

    if env != settings.promotion.prod_environment:
        return None
    try:
        pack = evidence.decision_pack(
            registry,
            settings,
            env,
            record,
            recorder.chain(),
            version=version,
            decision_id=decision,
            champion_after=registry.get_alias(recorder.model_name, tags.CHAMPION),
            restores=restores,
        )
        run_id, url = evidence.log_pack(registry, settings, env, pack)
        return url or f"runs:/{run_id}/evidence/evidence.html"
    except Exception as exc:  # noqa: BLE001 - the decision is recorded; the pack documents it
        recorder.warn(f"the evidence pack could not be logged: {type(exc).__name__}: {exc}")
        return None


def rollback_model(
    settings: "Settings",
    registry: "Registry",
    recorder: Recorder,
    *,
    by: str,
    reason: str,
    to_version: int | None,
    clock: Callable[[], datetime],
) -> Action:
    """Move ``champion`` back, record it, and hold automatic promotion (the rollback use case).

    Raises:
        InvalidInput / NotFound: nothing to roll back to, or the version does not exist.
        PromoteError: the champion moved while rolling back.
    """
    model_name, env = recorder.model_name, recorder.environment
    if not by.strip() or not reason.strip():
        raise errors.InvalidInput("a rollback needs --by NAME and --reason TEXT")
    current = registry.get_alias(model_name, tags.CHAMPION)
    target = to_version if to_version is not None else registry.get_alias(model_name, tags.PREVIOUS)
    verdict = rules.decide_rollback(current, target)
    if verdict.action == rules.REFUSE or target is None or current is None:
        raise errors.NotFound(f"{model_name}: {verdict.reason}")
    registry.version_info(model_name, target)  # raises NotFound for an unknown version
    rid = decision_id("rollback", model_name, current, target, reason, clock().isoformat())
    with registry.lock(f"alias.{model_name}", timeout_seconds=600):
        if registry.get_alias(model_name, tags.CHAMPION) != current:
            raise errors.PromoteError("the champion moved while rolling back; look again and retry")
        registry.set_alias(model_name, tags.CHAMPION, target)
        registry.set_alias(model_name, tags.PREVIOUS, current)
        if settings.project.registry.use_stages:
            registry.transition_stage(
                model_name,
                target,
                "Production" if env == settings.promotion.prod_environment else "Staging",
                archive_existing=True,
            )
        rec = recorder.record(
            "rollback",
            record_id=rid,
            actor=by,
            candidate_version=target,
            champion_version=current,
            verdict="ROLLED_BACK",
            details={"reason": reason, "from": current, "to": target},
        )
        registry.set_version_tags(model_name, target, {tags.DECISION_ID: rec.record_id})
    hold = recorder.record(
        "hold",
        record_id=decision_id("hold", rec.record_id),
        actor=by,
        decision_id=rec.record_id,
        verdict="HOLD",
        details={"reason": f"rollback: {reason}"},
    )
    url = _evidence(registry, settings, env, recorder, rec, target, None, restores=current)
    return Action(
        f"champion of {model_name}: version {current} -> {target}; automatic promotion in {env} is on "
        f"hold until `promote release-hold --env {env} --by NAME` or an approval",
        [rec.to_dict(), hold.to_dict()],
        champion_moved=True,
        evidence_url=url,
    )


def rollback(
    config_dir: str | Path,
    env: str,
    by: str,
    reason: str,
    *,
    to_version: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    environ: Mapping[str, str] | None = None,
) -> Action:
    """``promote rollback``: see :func:`rollback_model`; ``by`` must agree with a platform-verified identity."""
    from promoter.app import identity

    if not reason.strip():
        raise errors.InvalidInput("a rollback needs --reason TEXT")
    settings, registry, recorder = _context(config_dir, env, by or "unknown", clock)
    who = identity.resolve(by, os.environ if environ is None else environ, registry)  # a verified one wins
    recorder.actor = who.name
    return rollback_model(settings, registry, recorder, by=who.name, reason=reason, to_version=to_version, clock=clock)


def release_hold(
    config_dir: str | Path, env: str, by: str, reason: str | None = None, clock: Callable[[], datetime] = utc_now
) -> Action:
    """Lift the hold a rollback put on automatic promotion, and say what the newest decision now allows."""
    settings, registry, recorder = _context(config_dir, env, by, clock)
    chain = recorder.chain()
    state = rules.hold_state(chain)
    if state is None:
        return Action(f"{recorder.model_name} has no hold on promotion in {env}: nothing to do")
    rec = recorder.record(
        "release_hold",
        record_id=decision_id("release_hold", state["record_id"]),
        decision_id=state["record_id"],
        verdict="RELEASED",
        details={"reason": reason},
    )
    message = f"hold released by {by}: automatic promotion of {recorder.model_name} in {env} resumes"
    gates = [r for r in chain if r.kind == "gate" and r.seq > state["seq"]]
    if gates:
        newest = gates[-1]
        champion_now = registry.get_alias(recorder.model_name, tags.CHAMPION)
        now = rules.decide_promotion(
            rules.gate_outcome_of(newest, champion_now),
            rules.approvers_of(chain, newest.record_id),
            hold=False,
            champion_now=champion_now,
        )
        message += f"; version {newest.candidate_version}'s decision is now {now.action}: {now.reason}"
    return Action(message, [rec.to_dict()])
