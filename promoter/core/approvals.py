"""Sign-off by role: who may approve, and whether the recorded approvals satisfy a policy.

A policy (``promotion.yml`` ``approvals.<env>``, recorded with each gate decision) names roles
(``data_science``, ``clinical_safety``, ``compliance``, ...), each with its members and a
required count. Members are identities (``dr.lee``; ``github:dr-lee`` to accept only the
identity GitHub verified), groups defined in the same policy (``@clinical_safety_board``) or
``*`` (any verified identity).

The rules:

* One person counts once, in one role: approvals are assigned to roles by a maximum matching
  (a person in two roles fills whichever role needs them), so two roles of one each are never
  both satisfied by the same person.
* The policy is satisfied when every role has its required count.
* Whether sign-off is needed at all is the gate's business (``sign_off: always`` asks for it on
  every move, ``needs_approval`` only when the gate asks a person, or under a hold); see
  :mod:`promoter.core.promotion`.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import ApprovalPolicy

ANYONE = "*"
VERIFIED = "verified"
ANY = "any"
ALWAYS = "always"
NEEDS_APPROVAL = "needs_approval"


@dataclass(frozen=True)
class Approver:
    """One approval as recorded: who, through which platform, and whether the platform verified it."""

    name: str
    provider: str = "local"
    verified: bool = False


@dataclass(frozen=True)
class Role:
    name: str
    members: tuple[str, ...]
    required: int


@dataclass(frozen=True)
class Policy:
    """An approvals policy as plain data (the form recorded in a gate decision)."""

    roles: tuple[Role, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    identity: str = VERIFIED
    sign_off: str = NEEDS_APPROVAL

    @property
    def required(self) -> int:
        """Approvals needed in all (at least one when sign-off is asked for and no role names a count)."""
        return sum(r.required for r in self.roles)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with sorted keys: what is recorded and hashed."""
        return {
            "identity": self.identity,
            "sign_off": self.sign_off,
            "roles": {r.name: {"members": list(r.members), "required": r.required} for r in self.roles},
            "groups": {k: list(v) for k, v in sorted(self.groups.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Policy":
        """The policy a gate record carries (see :meth:`to_dict`)."""
        roles = tuple(
            Role(str(name), tuple(str(m) for m in spec.get("members", ())), int(spec.get("required", 0)))
            for name, spec in sorted((data.get("roles") or {}).items())
        )
        groups = {str(k): tuple(str(m) for m in v) for k, v in (data.get("groups") or {}).items()}
        return cls(
            roles=roles,
            groups=groups,
            identity=str(data.get("identity", VERIFIED)),
            sign_off=str(data.get("sign_off", NEEDS_APPROVAL)),
        )

    @classmethod
    def legacy(cls, required: int) -> "Policy":
        """A record written before roles: ``required`` approvals from anyone, on every move when > 0."""
        roles = (Role("approver", (ANYONE,), required),) if required else ()
        return cls(roles=roles, identity=ANY, sign_off=ALWAYS if required else NEEDS_APPROVAL)


def policy_of(cfg: "ApprovalPolicy") -> Policy:
    """The plain-data policy of a ``promotion.yml`` ``approvals.<env>`` section."""
    return Policy(
        roles=tuple(Role(name, tuple(r.members), r.required) for name, r in sorted(cfg.roles.items())),
        groups={k: tuple(v) for k, v in cfg.groups.items()},
        identity=cfg.identity,
        sign_off=cfg.sign_off,
    )


def policy_hash(policy: Policy) -> str:
    """SHA-256 of the canonical JSON of the policy: the hash recorded with each gate decision."""
    blob = json.dumps(policy.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _matches(member: str, who: Approver) -> bool:
    if member == ANYONE:
        return True
    provider, sep, name = member.partition(":")
    if sep:
        return provider.lower() == who.provider.lower() and name.lower() == who.name.lower()
    return member.lower() == who.name.lower()


def roles_of(policy: Policy, who: Approver) -> list[str]:
    """The roles ``who`` is a member of (directly, through a group, or as ``*``), in policy order."""
    out = []
    for role in policy.roles:
        for member in role.members:
            entries = policy.groups.get(member[1:], ()) if member.startswith("@") else (member,)
            if any(_matches(m, who) for m in entries):
                out.append(role.name)
                break
    return out


@dataclass(frozen=True)
class SignOff:
    """How far a set of approvals goes towards a policy.

    Attributes:
        satisfied: every role has its required count.
        assigned: role -> the people counted for it (each person in one role only).
        missing: role -> how many more it needs (roles already satisfied left out).
        ineligible: approvers who are in no role of the policy (they do not count).
        counted: how many approvals count, in all.
        needed: how many the policy requires, in all.
    """

    satisfied: bool
    assigned: Mapping[str, tuple[str, ...]]
    missing: Mapping[str, int]
    ineligible: tuple[str, ...]
    counted: int
    needed: int

    def describe_missing(self) -> str:
        """``clinical_safety (1 more), compliance (1 more)``."""
        return ", ".join(f"{role} ({n} more)" for role, n in self.missing.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "satisfied": self.satisfied,
            "assigned": {k: list(v) for k, v in self.assigned.items()},
            "missing": dict(self.missing),
            "ineligible": list(self.ineligible),
            "counted": self.counted,
            "needed": self.needed,
        }


def sign_off(policy: Policy, approvers: Iterable[Approver]) -> SignOff:
    """Assign approvals to roles (maximum matching, one role per person) and say what is missing.

    Args:
        policy: the recorded policy.
        approvers: the approvals recorded for one decision; the same person twice counts once.

    Returns:
        The :class:`SignOff`.
    """
    people: list[Approver] = []
    seen: set[str] = set()
    for who in approvers:
        key = who.name.lower()
        if key not in seen:
            seen.add(key)
            people.append(who)
    slots = [role.name for role in policy.roles for _ in range(role.required)]
    eligible = {p.name: set(roles_of(policy, p)) for p in people}
    slot_of: dict[int, str] = {}  # slot index -> person

    def augment(person: str, visited: set[int]) -> bool:
        for i, role in enumerate(slots):
            if role in eligible[person] and i not in visited:
                visited.add(i)
                if i not in slot_of or augment(slot_of[i], visited):
                    slot_of[i] = person
                    return True
        return False

    for p in people:
        augment(p.name, set())
    assigned: dict[str, list[str]] = {role.name: [] for role in policy.roles}
    for i, person in sorted(slot_of.items()):
        assigned[slots[i]].append(person)
    missing = {
        role.name: role.required - len(assigned[role.name])
        for role in policy.roles
        if len(assigned[role.name]) < role.required
    }
    ineligible = tuple(p.name for p in people if not eligible[p.name]) if policy.roles else ()
    counted = len(slot_of) if policy.required else len(people) - len(ineligible)
    return SignOff(
        satisfied=not missing,
        assigned={k: tuple(v) for k, v in assigned.items()},
        missing=missing,
        ineligible=ineligible,
        counted=counted,
        needed=policy.required,
    )


def approver_of(record_details: Mapping[str, Any], actor: str) -> Approver:
    """The :class:`Approver` an ``approval`` record describes (older records: unverified, local)."""
    ident = record_details.get("identity") or {}
    return Approver(
        name=str(ident.get("name", actor)),
        provider=str(ident.get("provider", "local")),
        verified=bool(ident.get("verified", False)),
    )


def counted_approvers(policy: Policy, approvers: Sequence[Approver]) -> list[Approver]:
    """The approvals that count under ``policy``: all, or only verified ones when it says ``identity: verified``."""
    if policy.identity == VERIFIED:
        return [a for a in approvers if a.verified]
    return list(approvers)


TICKET_TRAILER = "Change-Ticket:"


def find_ticket(pattern: str, sources: Sequence[tuple[str, str]], branch: str | None) -> tuple[str, str] | None:
    """The change ticket a release carries, and where it was found.

    Looked for, in order: a ``Change-Ticket: CHG-123`` line in each of ``sources`` (``(where,
    text)``: tag annotations, then the commit message), then the first match of ``pattern`` in
    the branch name (``release/CHG-123``). A trailer's value is returned as written, so a
    malformed one is reported rather than skipped.
    """
    for where, text in sources:
        for line in text.splitlines():
            if line.strip().lower().startswith(TICKET_TRAILER.lower()):
                value = line.strip()[len(TICKET_TRAILER) :].strip()
                if value:
                    return value, where
    if branch:
        found = re.search(pattern, branch)
        if found:
            return found.group(0), f"branch {branch}"
    return None
