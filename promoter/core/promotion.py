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
6. ``NEEDS_APPROVAL``: under ``enforce`` at least one approval (or the policy's count, when
   higher); under ``dry_run`` ``SKIP``, like a FAIL: a shadow gate never moves a champion
   that a real gate would not.
7. ``PASS``: the policy's ``required`` count.
8. A hold (set by a rollback) asks for at least one approval before any move.
9. Enough distinct approvers recorded: ``MOVE``; otherwise ``WAIT`` with how many are missing.

No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
        approvals_required: the approval count of the policy recorded with the decision.
    """

    status: str
    mode: str
    candidate_version: int
    champion_version: int | None
    approvals_required: int = 0

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


def decide_promotion(
    gate: GateOutcome | None, approvers: Iterable[str], *, hold: bool, champion_now: int | None
) -> PromotionDecision:
    """Decide what happens to the champion for one gate decision (see the module rules).

    Args:
        gate: the gate decision, or ``None`` when no gate judged a candidate.
        approvers: identities that approved this decision (duplicates count once).
        hold: a rollback put automatic promotion on hold.
        champion_now: the champion as read just now.

    Returns:
        The decision.
    """
    people = sorted({a for a in approvers if a})
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
        needed = max(1, gate.approvals_required)
        why = "the gate asks a person to decide"
    else:
        needed = gate.approvals_required
        why = "the policy requires approval" if needed else ""
    if hold and needed < 1:
        needed = 1
        why = "promotion is on hold after a rollback"
    elif hold:
        why += " (and promotion is on hold after a rollback)"
    if have >= needed:
        by = f" (approved by {', '.join(people)})" if people else ""
        return PromotionDecision(MOVE, f"champion -> version {cand}{by}", needed=needed, have=have)
    return PromotionDecision(
        WAIT, f"version {cand} needs {needed} approval(s), has {have}: {why}", needed=needed, have=have
    )


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


def approvers_of(records: Sequence[Any], decision_id: str) -> list[str]:
    """Distinct approvers recorded for ``decision_id``, in the order they approved."""
    seen: list[str] = []
    for r in records:
        if r.kind == "approval" and r.decision_id == decision_id and r.actor not in seen:
            seen.append(r.actor)
    return seen


def gate_outcome_of(record: Any, champion_now: int | None = None, default_required: int = 0) -> GateOutcome:
    """The :class:`GateOutcome` a stored gate record carries (with the policy recorded with it).

    An ``expectations`` record judged the candidate alone (staging): it replaces whichever
    version is champion now, so ``champion_now`` stands in for the champion it was judged against.
    ``default_required`` serves records written before the approval count was recorded.
    """
    details: Mapping[str, Any] = record.details or {}
    alone = details.get("check") == "expectations"
    return GateOutcome(
        status=record.verdict,
        mode=details.get("mode", "enforce"),
        candidate_version=record.candidate_version,
        champion_version=champion_now if alone else record.champion_version,
        approvals_required=int(details.get("approvals_required", default_required)),
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
