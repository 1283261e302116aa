"""Change tickets: ask the ticket system whether a change may go ahead.

``promotion.yml`` ``approvals.<env>.change_ticket.verify`` names the REST endpoint
(``url`` with ``{ticket}``), the JSON field holding the ticket's state and the states that allow
the change. A ticket the system does not know (404) or whose state is not accepted is bad input;
a system that cannot be reached is an error of its own (the change is not verified, so nothing
is promoted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from promoter import errors
from promoter.report.http import HttpPolicy, session

if TYPE_CHECKING:  # pragma: no cover
    from promoter.config import TicketVerification


@dataclass(frozen=True)
class TicketCheck:
    """What the ticket system said: the ticket, its state and the URL asked."""

    ticket: str
    state: str
    url: str

    def to_dict(self) -> dict[str, str]:
        return {"ticket": self.ticket, "state": self.state, "url": self.url}


def _field(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def verify(cfg: "TicketVerification", ticket: str, environ: Mapping[str, str], where: str) -> TicketCheck:
    """Ask the ticket system about ``ticket``.

    Args:
        cfg: the ``verify`` section.
        ticket: a ticket that matched the pattern.
        environ: for the token variable.
        where: the config key, for messages (``promotion.yml approvals.prod.change_ticket``).

    Raises:
        InvalidInput: unknown ticket, or a state the policy does not accept.
        PromoteError: the system cannot be reached or answers with an error.
    """
    url = cfg.url.replace("{ticket}", quote(ticket, safe=""))
    token = environ.get(cfg.token_env) if cfg.token_env else None
    policy = HttpPolicy(tries=3, deadline=cfg.timeout_seconds, read_timeout=cfg.timeout_seconds)
    try:
        response = session(token, policy=policy, headers={"Accept": "application/json"}).get(url)
    except requests.RequestException as exc:
        raise errors.PromoteError(
            f"change ticket {ticket}: the ticket system at {url} cannot be reached "
            f"({type(exc).__name__}); nothing was promoted, re-run when it is back"
        ) from None
    if response.status_code == 404:
        raise errors.InvalidInput(f"{where}: change ticket {ticket} is not known to the ticket system ({url}: 404)")
    if response.status_code >= 400:
        raise errors.PromoteError(
            f"change ticket {ticket}: the ticket system at {url} answered HTTP {response.status_code}; "
            "nothing was promoted"
        )
    try:
        state = _field(response.json(), cfg.state_field)
    except ValueError:
        state = None
    if state is None:
        raise errors.PromoteError(f"change ticket {ticket}: {url} gave no '{cfg.state_field}' in its answer")
    accepted = [s.lower() for s in cfg.accepted_states]
    if str(state).lower() not in accepted:
        raise errors.InvalidInput(
            f"{where}: change ticket {ticket} is {state!r} in the ticket system; "
            f"a change may go ahead only when it is {' or '.join(cfg.accepted_states)}"
        )
    return TicketCheck(ticket, str(state), url)
