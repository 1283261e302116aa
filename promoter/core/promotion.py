"""The one promotion decision: move the champion, wait for approvals, refuse, skip, or gate again.

``decide_promotion`` is the only place that turns a gate verdict, the recorded approvals, a
hold and the champion as it is now into what happens to the ``champion`` alias. The
``approval`` and ``promote`` steps of a run, ``promote approve`` and ``promote release-hold``
all call it, so a run and a person can never disagree about the same decision.

The rules, in order:

1. No verdict (no gate ran, or the candidate already was champion when gated): ``SKIP``.
2. The candidate is the champion now: ``SKIP`` (a re-run; nothing moves twice).
3. The champion moved since the gate: ``REGATE`` (invariant 6: decide again against it).
4. ``mode: disabled``: the gate did not judge; treated as ``PASS``.
5. ``FAIL``: ``REFUSE`` under ``enforce`` (never approvable); ``SKIP`` under ``dry_run``
   (the verdict is reported, the champion stays, the run does not fail).
6. ``NEEDS_APPROVAL``: under ``enforce`` sign-off is asked for; under ``dry_run`` ``SKIP``,
   like a FAIL: a shadow gate never moves a champion that a real gate would not.
7. ``PASS``: sign-off is asked for only when the recorded policy says ``sign_off: always``.
8. A hold (set by a rollback) asks for sign-off before any move.
9. Sign-off, when asked for, means every role of the policy recorded with the decision has its
   count, one person counting once in one role (:mod:`promoter.core.approvals`), and at least
   one approval in all; under ``identity: verified`` only platform-verified approvals count.
   Then ``MOVE``; otherwise ``WAIT`` naming the roles still missing.

No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from promoter.core.approvals import Approver, Policy, approver_of, counted_approvers, sign_off

Action = Literal["MOVE", "WAIT", "REFUSE", "SKIP", "REGATE"]
MOVE: Action = "MOVE"
WAIT: Action = "WAIT"
REFUSE: Action = "REFUSE"
SKIP: Action = "SKIP"
REGATE: Action = "REGATE"

MODES = ("enforce", "dry_run", "disabled")
STATUSES = ("PASS", "FAIL", "NEEDS_APPROVAL")


@dataclass(frozen=True)
class GateOutcome:
    """The part of a gate decision the promotion depends on (from a Verdict or a stored record).

    Attributes:
        status: ``PASS``, ``FAIL`` or ``NEEDS_APPROVAL``.
        mode: the policy's mode: ``enforce``, ``dry_run`` or ``disabled``.
        candidate_version: the version the gate judged.
        champion_version: the champion it was judged against (``None``: first version).
        approvals_required: the approval count recorded with decisions made before roles
            (used only when ``approval_policy`` is ``None``).
        approval_policy: the approvals policy recorded with the decision.
    """

    status: str
    mode: str
    candidate_version: int
    champion_version: int | None
    approvals_required: int = 0
    approval_policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        """The recorded policy (a count-only policy for decisions recorded before roles)."""
        return self.approval_policy if self.approval_policy is not None else Policy.legacy(self.approvals_required)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"gate status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.mode not in MODES:
            raise ValueError(f"gate mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.approvals_required < 0:
            raise ValueError("approvals_required must be >= 0")


@dataclass(frozen=True)
class PromotionDecision:
    """What happens to the champion, and why.

    Attributes:
        action: ``MOVE``, ``WAIT``, ``REFUSE``, ``SKIP`` or ``REGATE``.
        reason: one sentence for people.
        needed: approvals needed before a move (0 when none).
        have: distinct approvers recorded for this decision.
        blocking: ``True`` when the run must stop with the gate's exit code (a REFUSE).
    """

    action: Action
    reason: str
    needed: int = 0
    have: int = 0
    blocking: bool = False

    @property
    def missing(self) -> int:
        """How many more approvals a ``WAIT`` needs."""
        return max(0, self.needed - self.have)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "action": self.action,
            "reason": self.reason,
            "needed": self.needed,
            "have": self.have,
            "blocking": self.blocking,
        }


def _approver(a: Approver | str) -> Approver:
    return a if isinstance(a, Approver) else Approver(str(a))


def decide_promotion(
    gate: GateOutcome | None, approvers: Iterable[Approver | str], *, hold: bool, champion_now: int | None
) -> PromotionDecision:
    """Decide what happens to the champion for one gate decision (see the module rules).

    Args:
        gate: the gate decision, or ``None`` when no gate judged a candidate.
        approvers: the approvals recorded for this decision (the same person twice counts once);
            a plain name is an unverified local approval.
        hold: a rollback put automatic promotion on hold.
        champion_now: the champion as read just now.

    Returns:
        The decision.
    """
    recorded = [_approver(a) for a in approvers if a]
    people = sorted({a.name for a in recorded})
    have = len(people)
    if gate is None:
        return PromotionDecision(SKIP, "nothing to promote: no gate decision", have=have)
    cand = gate.candidate_version
    if champion_now == cand:
        return PromotionDecision(SKIP, f"version {cand} is already champion", have=have)
    if champion_now != gate.champion_version:
        return PromotionDecision(
            REGATE,
            f"the champion is version {champion_now} but the gate compared against "
            f"{_v(gate.champion_version)}: the gate must run again",
            have=have,
        )
    status = "PASS" if gate.mode == "disabled" else gate.status
    if status == "FAIL":
        if gate.mode == "dry_run":
            return PromotionDecision(SKIP, "FAIL under mode dry_run: reported, champion unchanged", have=have)
        return PromotionDecision(
            REFUSE,
            f"the gate said FAIL for version {cand}: it cannot be promoted, and a FAIL cannot be approved",
            have=have,
            blocking=True,
        )
    if status == "NEEDS_APPROVAL":
        if gate.mode == "dry_run":
            return PromotionDecision(SKIP, "NEEDS_APPROVAL under mode dry_run: reported, champion unchanged", have=have)
        why = "the gate asks a person to decide"
    elif gate.policy.sign_off == "always" and gate.policy.roles:
        why = "the policy requires sign-off"
    else:
        why = ""
    if hold:
        why = f"{why} (and promotion is on hold after a rollback)" if why else "promotion is on hold after a rollback"
    if not why:
        return PromotionDecision(MOVE, f"champion -> version {cand}", have=have)
    policy = gate.policy
    counted = counted_approvers(policy, recorded)
    signed = sign_off(policy, counted)
    needed = max(1, signed.needed)
    have = min(signed.counted, needed)
    if signed.satisfied and have >= 1:
        by = _by(signed.assigned) or ", ".join(sorted({a.name for a in counted}))
        return PromotionDecision(MOVE, f"champion -> version {cand} (approved by {by})", needed=needed, have=have)
    if signed.missing:
        what = f"sign-off from {signed.describe_missing()}"
    else:
        what = "at least one approval"
    unverified = sorted({a.name for a in recorded} - {a.name for a in counted})
    note = f"; not counted (unverified): {', '.join(unverified)}" if unverified else ""
    return PromotionDecision(WAIT, f"version {cand} needs {what}, has {have}: {why}{note}", needed=needed, have=have)


def _by(assigned: Mapping[str, Sequence[str]]) -> str:
    return ", ".join(f"{p} ({role})" for role, people in assigned.items() for p in people)


def _v(version: int | None) -> str:
    return "no champion" if version is None else f"version {version}"


# --------------------------------------------------------------------------- over the audit chain


def hold_state(records: Sequence[Any]) -> dict[str, Any] | None:
    """The active hold of a chain (set by a rollback), or ``None``.

    A ``hold`` record starts one; a ``release_hold`` record or an approved alias move ends it.

    Args:
        records: the chain's records, oldest first (objects with ``kind``, ``seq``, ``actor``,
            ``details``, ``record_id``).

    Returns:
        ``{"seq", "by", "reason", "record_id"}`` of the active hold, or ``None``.
    """
    state = None
    for r in records:
        if r.kind == "hold":
            state = {"seq": r.seq, "by": r.actor, "reason": r.details.get("reason", ""), "record_id": r.record_id}
        elif r.kind == "release_hold":
            state = None
        elif r.kind == "alias_move" and r.details.get("approved") and state is not None:
            state = None
    return state


def approvers_of(records: Sequence[Any], decision_id: str) -> list[Approver]:
    """Distinct approvers recorded for ``decision_id``, in the order they approved."""
    seen: dict[str, Approver] = {}
    for r in records:
        if r.kind == "approval" and r.decision_id == decision_id:
            who = approver_of(r.details or {}, r.actor)
            seen.setdefault(who.name.lower(), who)
    return list(seen.values())


def gate_outcome_of(record: Any, champion_now: int | None = None, default_required: int = 0) -> GateOutcome:
    """The :class:`GateOutcome` a stored gate record carries (with the policy recorded with it).

    An ``expectations`` record judged the candidate alone (staging): it replaces whichever
    version is champion now, so ``champion_now`` stands in for the champion it was judged against.
    ``default_required`` serves records written before the approval count was recorded; the
    approvals policy recorded with the decision (``details.approvals``) is the one in force,
    whatever the approver's working tree says now.
    """
    details: Mapping[str, Any] = record.details or {}
    alone = details.get("check") == "expectations"
    recorded = details.get("approvals")
    return GateOutcome(
        status=record.verdict,
        mode=details.get("mode", "enforce"),
        candidate_version=record.candidate_version,
        champion_version=champion_now if alone else record.champion_version,
        approvals_required=int(details.get("approvals_required", default_required)),
        approval_policy=Policy.from_dict(recorded) if isinstance(recorded, Mapping) else None,
    )


def decide_rollback(champion_now: int | None, target: int | None) -> PromotionDecision:
    """Whether an explicit rollback to ``target`` can move the champion now.

    Args:
        champion_now: the champion as read just now.
        target: the version asked for (``--to-version``, else the ``previous`` alias).

    Returns:
        ``MOVE``, or ``REFUSE`` with the reason.
    """
    if champion_now is None:
        return PromotionDecision(REFUSE, "there is no champion to roll back")
    if target is None:
        return PromotionDecision(REFUSE, "there is no 'previous' version to roll back to; pass --to-version N")
    if target == champion_now:
        return PromotionDecision(REFUSE, f"version {target} is already the champion")
    return PromotionDecision(MOVE, f"champion: version {champion_now} -> {target} (rollback)")
