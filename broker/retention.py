"""Retention: erasing a case's payload once its lifecycle is over (crypto-shredding).

A node keeps each case's forms encrypted under a per-case key (:mod:`broker.store.atrest`).
Erasing that key and the ciphertexts (:meth:`~broker.store.base.Store.shred_case`)
erases the case's payload from the store (docs/cases.md says what it does not reach:
old backups, the outbox's envelopes encrypted to their recipients), while its
metadata (message ids, types, digests, lifecycle events, deadlines) and the audit log
stay, and the log still verifies: its entries hold ids, codes and keyed digests, never
payloads. Retention periods are a matter of data protection law (CETS 224 Art 14(5),
LEGAL.md §2.6): this module applies the node's configured period, ``[retention]
closed_case_period``; no period is built in.

The pure decisions come first and read nothing but their arguments:

* :func:`ended_at` — when a case's lifecycle ended: the time of the event that
  brought it into the terminal state(s) it is still in (so a late no-op status on a
  closed case, or a move from one terminal state to another, does not restart the
  period);
* :func:`is_expired` — whether that lies more than the period before ``now``;
* :func:`check_shred` — whether a case may be shredded now (fails closed: a case whose
  lifecycle is not over is refused unless forced);
* :func:`shred_event` — the ``case.shredded`` audit record (reason, instrument, state,
  whether forced: no personal data).

The I/O around them: :func:`shred_target` reads what the store holds about a case,
:func:`shred_case` shreds one case (with its audit record, in the store's
transaction), :func:`expired_cases` lists the cases due for erasure and
:func:`shred_expired` erases them (the node's scheduler calls it every
``[retention] sweep_interval``; ``evb retention sweep`` runs it once).

Shredding is idempotent: shredding a shredded case erases nothing and records nothing,
and reports that it was shredded already (:attr:`ShredResult.already`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

import structlog

from broker import lifecycle
from broker.cases import history_of
from broker.errors import CaseUnknown, StateError
from broker.store.base import AuditEvent, CaseRecord, Store

__all__ = [
    "REASONS",
    "SHREDDED",
    "Reason",
    "ShredResult",
    "ShredTarget",
    "check_shred",
    "ended_at",
    "expired_cases",
    "is_expired",
    "shred_case",
    "shred_event",
    "shred_expired",
    "shred_target",
]

log = structlog.get_logger(__name__)

#: Why a case is shredded: its retention period is over (``retention``), an authority
#: ordered the erasure (``order``), or a party or data subject asked for it (``request``).
Reason = Literal["retention", "order", "request"]
#: The reasons, in the order the CLI lists them.
REASONS: Final[tuple[Reason, ...]] = get_args(Reason)
#: The audit event that records a shredding.
SHREDDED: Final = "case.shredded"

# Cases read per page while looking for expired ones (what case_histories returns).
_PAGE: Final = 1000
# The store protocol has no "is this case shredded" query and no filter on it; the
# case summaries carry the flag, so they are read whole (one small row per case).
_ALL: Final = sys.maxsize


@dataclass(frozen=True)
class ShredTarget:
    """What the store holds about a case that is to be shredded.

    Attributes:
        case_id: the case.
        instrument: the request type of its lifecycle; None for a case that has
            messages but no lifecycle (e.g. only receipts or directory traffic).
        state: its lifecycle state; None without a lifecycle.
        terminal: whether that state is terminal (its lifecycle is over).
        shredded: whether its payload key was erased already.
    """

    case_id: str
    instrument: str | None
    state: str | None
    terminal: bool
    shredded: bool


@dataclass(frozen=True)
class ShredResult:
    """What :func:`shred_case` did.

    Attributes:
        target: the case as it was before the call.
        reason: why it was shredded.
        forced: whether the lifecycle check was overridden (``force``) for a case
            whose lifecycle is not over.
        already: True when the case was shredded before: nothing was erased or recorded.
    """

    target: ShredTarget
    reason: Reason
    forced: bool
    already: bool


# -- pure decisions -------------------------------------------------------------------------


def _is_terminal(instrument: str, state: str) -> bool:
    return state in lifecycle.machine(instrument).terminal_states


def ended_at(instrument: str, history: Sequence[lifecycle.Event]) -> datetime | None:
    """Return when a case's lifecycle ended, or None if it has not ended.

    That is the time of the event from which on every state of the case is terminal.

    Raises:
        StateError: the history is not one the instrument's machine accepts (and the
            other errors of :func:`broker.lifecycle.trace`).
    """
    terminal = lifecycle.machine(instrument).terminal_states
    ended: datetime | None = None
    for step in lifecycle.trace(instrument, history):
        if step.state not in terminal:
            ended = None
        elif ended is None:
            ended = step.event.at
    return ended


def is_expired(ended: datetime | None, now: datetime, period: timedelta) -> bool:
    """Whether a lifecycle that ended at ``ended`` did so more than ``period`` before ``now``."""
    return ended is not None and now - ended > period


def check_shred(target: ShredTarget, *, force: bool) -> None:
    """Refuse to shred a case whose lifecycle is not over, unless ``force``.

    A shredded case passes (shredding it again does nothing).

    Raises:
        StateError: the case has no lifecycle or is not in a terminal state, and
            ``force`` is not set.
    """
    if target.shredded or target.terminal or force:
        return
    if target.state is None:
        raise StateError(f"case {target.case_id} has no lifecycle: only --force shreds it")
    raise StateError(
        f"case {target.case_id} is {target.state!r}, not in a terminal state of"
        f" {target.instrument}: only --force shreds it"
    )


def shred_event(target: ShredTarget, *, at: datetime, reason: Reason, forced: bool) -> AuditEvent:
    """Return the ``case.shredded`` audit record of a shredding (ids and codes only)."""
    return AuditEvent(
        event=SHREDDED,
        at=at,
        case_id=target.case_id,
        details={
            "reason": reason,
            "instrument": target.instrument,
            "state": target.state,
            "forced": forced,
        },
    )


# -- I/O -------------------------------------------------------------------------------------


async def _shredded(store: Store) -> frozenset[str]:
    return frozenset(c.id for c in await store.list_cases(limit=_ALL) if c.shredded)


def _target(case_id: str, record: CaseRecord | None, shredded: bool) -> ShredTarget:
    if record is None:
        return ShredTarget(case_id, None, None, terminal=False, shredded=shredded)
    return ShredTarget(
        case_id,
        record.instrument,
        record.state,
        terminal=_is_terminal(record.instrument, record.state),
        shredded=shredded,
    )


async def shred_target(store: Store, case_id: str) -> ShredTarget:
    """Return what the store holds about ``case_id`` (for a decision or a dry run).

    Raises:
        CaseUnknown: the store holds no such case (no lifecycle and no message).
        StoreError: the store failed.
    """
    found = await store.get_case(case_id)
    if found is None:
        inbound, outbound = await store.case_messages(case_id)
        if not inbound and not outbound:
            raise CaseUnknown(f"no case {case_id} at this node")
    return _target(case_id, found[0] if found else None, case_id in await _shredded(store))


async def shred_case(
    store: Store, case_id: str, *, at: datetime, reason: Reason, force: bool = False
) -> ShredResult:
    """Erase a case's payload key and forms, recording ``case.shredded`` with it.

    The audit record commits in the store's shredding transaction. A case shredded
    before is left alone: nothing is erased or recorded, and the result says so.

    Args:
        store: the node's store.
        case_id: the case.
        at: the time of the audit record.
        reason: why (``retention``, ``order``, ``request``).
        force: shred even though the case's lifecycle is not over (an order to erase
            an open case); the audit record says it was forced.

    Returns:
        What was done.

    Raises:
        CaseUnknown: the store holds no such case (``E_CASE_UNKNOWN``).
        StateError: the case's lifecycle is not over and ``force`` is not set
            (``E_STATE``); nothing is erased.
        StoreError: the store failed; nothing is erased.
        ValueError: ``reason`` is not one of :data:`REASONS` (a programming error).
    """
    if reason not in REASONS:
        raise ValueError(f"{reason!r} is not a shredding reason")
    target = await shred_target(store, case_id)
    check_shred(target, force=force)
    forced = force and not target.terminal
    if target.shredded:
        return ShredResult(target, reason, forced=False, already=True)
    await store.shred_case(case_id, [shred_event(target, at=at, reason=reason, forced=forced)])
    log.info(SHREDDED, case_id=case_id, reason=reason, forced=forced)
    return ShredResult(target, reason, forced=forced, already=False)


async def expired_cases(store: Store, now: datetime, period: timedelta) -> list[str]:
    """Return the cases whose lifecycle ended more than ``period`` before ``now``.

    Shredded cases, cases without a lifecycle and cases not in a terminal state are
    left out. The cases come oldest ending first (then by id).

    Raises:
        StateError: a stored history does not replay (a defect: nothing is shredded
            on doubt).
        StoreError: the store failed.
    """
    shredded = await _shredded(store)
    found: list[tuple[datetime, str]] = []
    after: str | None = None
    while page := await store.case_histories(after=after, limit=_PAGE):
        for record, events in page:
            if record.case_id in shredded or not _is_terminal(record.instrument, record.state):
                continue
            ended = ended_at(record.instrument, history_of(events))
            if ended is not None and is_expired(ended, now, period):
                found.append((ended, record.case_id))
        after = page[-1][0].case_id
    return [case_id for _, case_id in sorted(found)]


async def shred_expired(store: Store, now: datetime, period: timedelta, limit: int) -> int:
    """Shred up to ``limit`` expired cases (reason ``retention``), oldest ending first.

    Returns:
        How many cases were shredded (the rest wait for the next sweep).

    Raises:
        StateError: a stored history does not replay (see :func:`expired_cases`).
        StoreError: the store failed (the cases shredded before stay shredded).
    """
    count = 0
    for case_id in (await expired_cases(store, now, period))[:limit]:
        result = await shred_case(store, case_id, at=now, reason="retention")
        if not result.already:
            count += 1
    return count
