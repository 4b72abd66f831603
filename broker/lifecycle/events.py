"""What happened in a case: the events a case history is made of.

A case history is the ordered list of :class:`Event` values a node recorded for one
case: the request that opened it, every reply, and the node's own record that a period
ran out (``deadline.lapsed``). An event says what travelled (the catalogue type, and for
``case.status`` / ``case.extension`` the status code or kind), who sent it (a
:data:`Party` *role* in the case, not a participant id) and when the node recorded it.
Everything the state machines and the deadline rules need is here; the forms
themselves stay with the inbox.

The ``at`` of an event is the node's own time of record (sent, or received), so a
history is ordered by one clock; a peer's ``sent_at`` is never used for deadlines.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from broker.errors import StateError

__all__ = [
    "LAPSED",
    "PARTIES",
    "Event",
    "Party",
    "Priority",
    "check_order",
    "counterpart",
]

#: Who sent an event, as a role in the case (see ``schemas/data/case_states.json``):
#: the requester, the requested party, an authority notified of the order with the
#: power to object, or the node's scheduler (``clock``) recording that a period ran out.
Party = Literal["requester", "requested", "notified", "clock"]
#: The priority of a case: the envelope priority of its request.
Priority = Literal["normal", "emergency"]

PARTIES: Final[tuple[Party, ...]] = ("requester", "requested", "notified", "clock")
#: The type of the event the scheduler records when a period runs out.
LAPSED: Final = "deadline.lapsed"

_COUNTERPART: Final[dict[str, Party]] = {
    "requester": "requested",
    "requested": "requester",
    "notified": "requester",
}


def counterpart(party: str) -> Party | None:
    """Return to whom ``party`` writes unless an event says otherwise.

    The requester writes to the requested party, the requested party and a notified
    authority write to the requester; the clock writes to nobody.
    """
    return _COUNTERPART.get(party)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event of a case history.

    Attributes:
        type: the catalogue message type (``eu.eio.a``, ``case.status`` …), or
            :data:`LAPSED` for the scheduler's record that a period ran out.
        by: the role of the sender in the case.
        at: when the node recorded the event (timezone-aware).
        to: the role of the recipient, where it is not the sender's counterpart
            (e.g. an EPOC sent to the enforcing authority: ``to="notified"``).
        status: the ``case.status`` code.
        kind: the ``case.extension`` kind (``request`` or ``grant``).
        rule: for :data:`LAPSED`, the id of the deadline rule whose period ran out.
        until: an end date the event states (``preserved_until``, ``new_until``,
            ``expected_by``).
        period: a relative extension the event states (ISO 8601 duration, ``P30D``).
        clock_suspended: for ``case.clarification_request``, whether the sender
            says the clock stops (it only does where the rule allows it).
    """

    type: str
    by: str
    at: datetime
    to: str | None = None
    status: str | None = None
    kind: str | None = None
    rule: str | None = None
    until: datetime | None = None
    period: str | None = None
    clock_suspended: bool | None = None

    def __post_init__(self) -> None:
        # Naive times are a programming error, not a peer's: refuse them at once.
        if self.at.tzinfo is None:
            raise ValueError("an event time must be timezone-aware")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("an event's until must be timezone-aware")

    @property
    def recipient(self) -> str | None:
        """The role the event is addressed to (``to``, or the sender's counterpart)."""
        return self.to if self.to is not None else counterpart(self.by)

    @classmethod
    def lapsed(cls, rule: str, at: datetime) -> Event:
        """Build the scheduler's record that the period of ``rule`` ran out at ``at``."""
        return cls(type=LAPSED, by="clock", rule=rule, at=at)


def check_order(history: Sequence[Event]) -> None:
    """Check that a history is in the order it happened.

    Raises:
        StateError: an event is recorded before the one preceding it.
    """
    for before, after in itertools.pairwise(history):
        if after.at < before.at:
            raise StateError("the case history is not in time order")
