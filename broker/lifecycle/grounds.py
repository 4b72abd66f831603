"""Grounds for refusal: whether a refusal may end a case of its instrument.

The grounds themselves, with their articles, are ``schemas/data/refusal_grounds.json``
(read through :func:`broker.forms.responses.refusal_grounds`). A case.refusal form is
already schema-valid when it gets here; this module checks it against the *case*:

1. the refusal names the case's instrument (a refusal copied from another case fails);
2. the refuser is a party of the case, and not the requester;
3. the instrument provides grounds at all, and the ground is one of them;
4. who may give the ground: Annex III rows (Regulation (EU) 2023/1543) are the
   addressee's reasons; where the instrument has a notified authority (the enforcing
   authority of Art 8 and 12, the authority notified under CETS 224 Art 7(5)), every
   other ground is that authority's, not the addressee's;
5. the motivation is not blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.errors import GroundError, NotParty
from broker.forms.responses import Refusal, refusal_grounds
from broker.lifecycle.machines import machine

__all__ = ["check_refusal", "check_refusal_form", "grounds_for"]


def grounds_for(instrument: str, by: str = "requested") -> tuple[str, ...]:
    """Return the ground codes ``by`` may give to refuse a case of ``instrument``.

    Raises:
        UnknownTypeError: ``instrument`` opens no case.
    """
    found = machine(instrument)
    if by not in found.parties or by == "requester":
        return ()
    rows = refusal_grounds().get(instrument, {})
    notified = "notified" in found.parties
    return tuple(
        code
        for code, row in rows.items()
        if not notified or (by == "requested") == (row.get("annex") is not None)
    )


def check_refusal(
    instrument: str, ground: str, motivation: str, *, by: str = "requested"
) -> Mapping[str, Any]:
    """Check that a refusal carries a ground valid for the case and a motivation.

    Args:
        instrument: the request type of the case.
        ground: the ground code given.
        motivation: the motivation given.
        by: the role of the refuser in the case.

    Returns:
        The ground's row of ``refusal_grounds.json`` (with its article).

    Raises:
        UnknownTypeError: ``instrument`` opens no case.
        NotParty: ``by`` is not a party of the instrument.
        GroundError: the requester refuses, the instrument provides no grounds, the
            ground is not one of them or not one ``by`` may give, or the motivation
            is blank.
    """
    found = machine(instrument)
    if by not in found.parties:
        raise NotParty(f"a {by!r} is not a party to a {instrument} case")
    if by == "requester":
        raise GroundError("the requester withdraws its request; it does not refuse it")
    rows = refusal_grounds().get(instrument)
    if not rows:
        raise GroundError(f"{instrument} provides no grounds for refusal")
    row = rows.get(ground)
    if row is None:
        raise GroundError(f"not a ground for refusal of {instrument}")
    if ground not in grounds_for(instrument, by):
        raise GroundError(f"this ground of {instrument} is not the {by} party's to give")
    if not motivation.strip():
        raise GroundError("a refusal must be motivated")
    return row


def check_refusal_form(
    instrument: str, refusal: Refusal, *, by: str = "requested"
) -> Mapping[str, Any]:
    """Check a parsed case.refusal against the case it answers.

    Raises:
        GroundError: the refusal names another instrument than the case's (and the
            errors of :func:`check_refusal`).
    """
    if refusal.instrument != instrument:
        raise GroundError("the refusal names another instrument than the case's")
    return check_refusal(instrument, refusal.ground, refusal.motivation, by=by)
