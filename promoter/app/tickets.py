"""The change ticket of a promotion: found on the release, checked against the policy, verified.

``promotion.yml`` ``approvals.<env>.change_ticket`` says whether promotions in ``env`` need a
ticket (``required``), what one looks like (``pattern``) and, optionally, which ticket system
to ask (``verify``). An automatic promotion takes its ticket from, in order: ``--ticket`` or
``PROMOTE_CHANGE_TICKET``; a ``Change-Ticket: CHG-123`` line in the release tag's annotation
(``promote cut-release --ticket``) or the commit message; the release branch's name
(``release/CHG-123``). A missing or malformed ticket where one is required is bad input (exit 2),
found before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter import errors
from promoter.core.approvals import find_ticket

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import ChangeTicketPolicy, Settings
    from promoter.core.events import Event

ENV_VAR = "PROMOTE_CHANGE_TICKET"


@dataclass(frozen=True)
class Ticket:
    """A change ticket and where it came from (``--ticket``, ``tag v1.2``, ``branch release/CHG-1``)."""

    id: str
    source: str
    state: str | None = None  # what the ticket system said, once verified

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "state": self.state}


def where(env: str) -> str:
    return f"promotion.yml approvals.{env}.change_ticket"


def check(policy: "ChangeTicketPolicy", ticket: str | None, env: str, source: str = "") -> None:
    """Raise ``InvalidInput`` naming the rule when ``ticket`` does not satisfy ``policy``."""
    problem = policy.problem(ticket)
    if problem is None:
        return
    if ticket:
        raise errors.InvalidInput(f"{where(env)}: {problem} (from {source})" if source else f"{where(env)}: {problem}")
    raise errors.InvalidInput(
        f"{where(env)}: {problem} for a promotion in {env}: pass --ticket, set {ENV_VAR}, or cut the "
        "release with `promote cut-release --ticket CHG-123`"
    )


def release_ticket(
    event: "Event",
    settings: "Settings",
    env: str,
    repo_path: str | Path,
    *,
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Ticket | None:
    """The ticket this release carries, checked against the environment's policy.

    Raises:
        InvalidInput: none where one is required, or one that does not match the pattern.
    """
    from promoter import gitops

    environ = os.environ if environ is None else environ
    policy = settings.promotion.approval(env).change_ticket
    given = (explicit or environ.get(ENV_VAR) or "").strip()
    if given:
        found: tuple[str, str] | None = (given, "--ticket" if explicit else ENV_VAR)
    else:
        texts: list[tuple[str, str]] = []
        if event.sha:
            messages = gitops.messages_at(repo_path, event.sha)
            texts = [("release tag", m) for m in messages[:-1]] + [("commit message", m) for m in messages[-1:]]
        found = find_ticket(policy.pattern, texts, event.branch)
    ticket, source = found if found else (None, "")
    check(policy, ticket, env, source)
    return Ticket(ticket, source) if ticket else None


def verified(
    policy: "ChangeTicketPolicy", env: str, ticket: Ticket | None, environ: Mapping[str, str]
) -> Ticket | None:
    """``ticket`` with the ticket system's state, when the policy names a system to ask."""
    cfg = policy.verify
    if ticket is None or cfg is None:
        return ticket
    from promoter.report import tickets

    answer = tickets.verify(cfg, ticket.id, environ, where(env))
    return Ticket(ticket.id, ticket.source, answer.state)
