"""The sender's delivery state machine: one set of rules for retries and receipts.

Every outbox row carries a :class:`Delivery`; everything that happens to the message
is an event, and :func:`step` is the only way a delivery changes::

    start(Submitted) ─► queued ──Published──► sent ──ReceiptAccepted──► delivered
                         ▲  │                   │  ──ReceiptRejected──► rejected
                         │  └─PublishFailed─┐   │
                         │    (retry later) │   └─Due (receipt overdue)─► queued (re-send)
                         └──────────────────┘
    attempts exhausted:  PublishFailed ─► failed (its code)
                         Due while sent ─► failed (E_NO_RECEIPT)
    failed ──OperatorRetry──► queued (attempts 0)
    failed ──a late receipt──► delivered | rejected

The retry profile (:class:`RetryProfile`) is a list of waits: after the k-th publish
attempt (1-based) the node waits ``intervals[k-1]`` — for the receipt when the broker
confirmed the publish, before the next try when it did not. So a profile allows
``len(intervals)`` attempts, and a message whose receipt never comes fails
``total()`` after its first publish (plus the time the re-sends took to publish).
Every re-send is the *same* signed bytes with the same message id, so the receiver's
age window must be at least the longest ``total()`` of any profile (the receiver would
otherwise refuse a late re-send as ``E_CLOCK_SKEW``).

Rules that make the machine safe against what networks do:

* events never raise: a duplicate, late or out-of-order event leaves the delivery
  unchanged (a late broker confirm after a receipt keeps ``delivered``; a timer that
  fires early changes nothing);
* a receipt always wins over timers and retries: ``ReceiptAccepted`` or
  ``ReceiptRejected`` in ``queued``, ``sent`` or ``failed`` settles the delivery (a
  late receipt still counts), and ``delivered`` and ``rejected`` are final — duplicate
  or contradicting receipts change nothing;
* the node publishes ``queued`` rows whose ``next_attempt_at`` has come, so
  ``Published`` and ``PublishFailed`` act on ``queued`` only (anywhere else they are
  stray reports), and ``Due`` acts on ``sent`` only (the receipt is overdue);
* ``OperatorRetry`` only revives a ``failed`` delivery; anywhere else it returns the
  delivery unchanged, and the caller (``evb outbox retry``) compares and reports;
* a message that expects no receipt (a ``msg.receipt`` itself) is done once the broker
  confirmed it: ``sent`` with no next attempt.

Pure: no I/O, no clock — every event carries its time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal

from broker.errors import ConfigError

__all__ = [
    "MAX_INTERVAL",
    "MAX_INTERVALS",
    "NO_RECEIPT",
    "Delivery",
    "Due",
    "Event",
    "OperatorRetry",
    "PublishFailed",
    "Published",
    "ReceiptAccepted",
    "ReceiptRejected",
    "RetryProfile",
    "State",
    "Submitted",
    "format_duration",
    "is_terminal",
    "parse_duration",
    "start",
    "step",
]

State = Literal["queued", "sent", "delivered", "rejected", "failed"]

#: The code of a delivery that failed because no receipt came within its profile.
NO_RECEIPT: Final = "E_NO_RECEIPT"
#: Most intervals a retry profile may have.
MAX_INTERVALS: Final = 100
#: Longest single interval of a retry profile.
MAX_INTERVAL: Final = timedelta(days=365)

_TERMINAL: frozenset[State] = frozenset({"delivered", "rejected"})
_CODE = re.compile(r"E_[A-Z0-9_]{2,40}")
# PnDTnHnMnS: days, hours, minutes, seconds (seconds with up to three decimals); at
# least one component, and a T only when a time component follows.
_DURATION = re.compile(
    r"P(?:(?P<d>[0-9]{1,6})D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]{1,6})H)?(?:(?P<m>[0-9]{1,6})M)?"
    r"(?:(?P<s>[0-9]{1,6})(?:\.(?P<f>[0-9]{1,3}))?S)?)?"
)


def is_terminal(state: State) -> bool:
    """Tell whether a state is final: ``delivered`` or ``rejected``.

    ``failed`` is not final: a late receipt or an operator's retry still moves it.
    """
    return state in _TERMINAL


# -- retry profiles ------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """Parse a strict ISO 8601 duration of days, hours, minutes and seconds.

    Accepted: ``PnDTnHnMnS`` with any components present in that order, at most six
    digits each, seconds with up to three decimals (``P1D``, ``PT5S``, ``PT0.25S``,
    ``P1DT2H``, ``PT1H30M``). Refused: years, months and weeks (their length depends
    on the calendar), signs, commas, lower case, empty components (``P``, ``PT``,
    ``P1DT``) and zero.

    Raises:
        ConfigError: ``text`` is not such a duration, or is zero.
    """
    match = _DURATION.fullmatch(text)
    if match is None or text == "P":
        raise ConfigError(
            f"{text!r} is not an ISO 8601 duration of days, hours, minutes and seconds (PnDTnHnMnS)"
        )
    parts = match.groupdict(default="0")
    duration = timedelta(
        days=int(parts["d"]),
        hours=int(parts["h"]),
        minutes=int(parts["m"]),
        seconds=int(parts["s"]),
        milliseconds=int(parts["f"].ljust(3, "0")),
    )
    if not duration:
        raise ConfigError(f"{text!r} is zero: a duration must be positive")
    return duration


def format_duration(duration: timedelta) -> str:
    """Write a positive duration as :func:`parse_duration` reads it (``P1DT2H``, ``PT0.5S``).

    Raises:
        ValueError: the duration is not positive or has sub-millisecond digits.
    """
    if duration <= timedelta(0) or duration.microseconds % 1000:
        raise ValueError("only positive durations in whole milliseconds have a form")
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    millis = duration.microseconds // 1000
    text = f"P{duration.days}D" if duration.days else "P"
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or millis:
        fraction = f".{millis:03d}".rstrip("0") if millis else ""
        time += f"{seconds}{fraction}S"
    return text + ("T" + time if time else "")


@dataclass(frozen=True)
class RetryProfile:
    """How often, and how long, a route retries a message.

    Attributes:
        intervals: the wait after the k-th publish attempt (``intervals[k-1]``): for
            the receipt after a confirmed publish, before the next try after a failed
            one. ``len(intervals)`` attempts are allowed.

    Raises:
        ConfigError: no interval, more than :data:`MAX_INTERVALS`, or one that is not
            positive or longer than :data:`MAX_INTERVAL`.
    """

    intervals: tuple[timedelta, ...]

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ConfigError("a retry profile needs at least one interval")
        if len(self.intervals) > MAX_INTERVALS:
            raise ConfigError(f"a retry profile has at most {MAX_INTERVALS} intervals")
        if any(interval <= timedelta(0) for interval in self.intervals):
            raise ConfigError("every retry interval must be positive")
        if any(interval > MAX_INTERVAL for interval in self.intervals):
            raise ConfigError("a retry interval is at most 365 days")

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> RetryProfile:
        """Read a profile: ``"PT5S,PT30S,PT2M"`` (environment) or a list (TOML).

        Whitespace around an item is ignored; an empty item is refused.

        Raises:
            ConfigError: naming the first bad item (1-based) and why.
        """
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        intervals = []
        for number, item in enumerate(items, start=1):
            try:
                intervals.append(parse_duration(item.strip()))
            except ConfigError as exc:
                raise ConfigError(f"retry interval {number}: {exc.message}") from exc
        return cls(tuple(intervals))

    @property
    def attempts(self) -> int:
        """How many publish attempts the profile allows."""
        return len(self.intervals)

    def total(self) -> timedelta:
        """Return the sum of the intervals: from the first publish to ``failed``.

        The receiving node's age window must be at least the longest total of any
        profile, or it would refuse a late re-send of the same bytes.
        """
        return sum(self.intervals, timedelta(0))

    def __str__(self) -> str:
        return ",".join(format_duration(interval) for interval in self.intervals)


# -- deliveries and events -------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """Where one outgoing message stands.

    Attributes:
        state: see the module docstring.
        attempts: publish attempts since the message was submitted (or retried by
            an operator), confirmed or not.
        next_attempt_at: when the node acts next — publish (``queued``) or give up
            waiting for the receipt (``sent``); ``None`` when nothing is scheduled.
        code: why it was ``rejected`` (the receipt's code) or ``failed``.
    """

    state: State
    attempts: int
    next_attempt_at: datetime | None
    code: str | None


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("event times must be timezone-aware")


def _stable_code(code: str) -> None:
    if not _CODE.fullmatch(code):
        raise ValueError("not a stable error code (E_ and 2-40 of A-Z 0-9 _)")


@dataclass(frozen=True)
class Submitted:
    """The message was written to the outbox."""

    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)


@dataclass(frozen=True)
class Published:
    """The broker confirmed a publish of the message."""

    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)


@dataclass(frozen=True)
class PublishFailed:
    """A publish failed: nacked (``E_NACK``), unroutable, or the connection broke."""

    at: datetime
    code: str

    def __post_init__(self) -> None:
        _aware(self.at)
        _stable_code(self.code)


@dataclass(frozen=True)
class ReceiptAccepted:
    """A valid positive receipt arrived."""

    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)


@dataclass(frozen=True)
class ReceiptRejected:
    """A valid negative receipt arrived, with the receiver's error code."""

    at: datetime
    code: str

    def __post_init__(self) -> None:
        _aware(self.at)
        _stable_code(self.code)


@dataclass(frozen=True)
class Due:
    """A timer fired: the delivery's ``next_attempt_at`` may have come."""

    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)


@dataclass(frozen=True)
class OperatorRetry:
    """An operator asked to try a failed message again (``evb outbox retry``)."""

    at: datetime

    def __post_init__(self) -> None:
        _aware(self.at)


Event = (
    Submitted | Published | PublishFailed | ReceiptAccepted | ReceiptRejected | Due | OperatorRetry
)


def start(event: Submitted) -> Delivery:
    """Return the delivery of a newly submitted message: queued, due at once."""
    return Delivery(state="queued", attempts=0, next_attempt_at=event.at, code=None)


def step(
    d: Delivery, event: Event, profile: RetryProfile, expects_receipt: bool = True
) -> Delivery:
    """Apply one event to a delivery and return the new delivery.

    Args:
        d: the delivery as stored.
        event: what happened.
        profile: the route's retry profile.
        expects_receipt: ``False`` for messages that are never receipted (receipts):
            a confirmed publish is then the end.

    Returns:
        the new delivery; ``d`` itself when the event changes nothing (duplicates,
        late or early events, ``Submitted`` for a known message, ``OperatorRetry``
        on anything but ``failed``). Never raises for an event.
    """
    # Receipts first: they settle any unsettled delivery, whatever the timers say.
    if isinstance(event, ReceiptAccepted | ReceiptRejected):
        if is_terminal(d.state):
            return d
        if isinstance(event, ReceiptRejected):
            return replace(d, state="rejected", next_attempt_at=None, code=event.code)
        return replace(d, state="delivered", next_attempt_at=None, code=None)
    if isinstance(event, Published):
        if d.state != "queued":
            return d
        attempts = d.attempts + 1
        wait = _interval(profile, attempts) if expects_receipt else None
        return Delivery(
            state="sent",
            attempts=attempts,
            next_attempt_at=None if wait is None else event.at + wait,
            code=None,
        )
    if isinstance(event, PublishFailed):
        if d.state != "queued":
            return d
        attempts = d.attempts + 1
        if attempts >= profile.attempts:
            return Delivery(
                state="failed", attempts=attempts, next_attempt_at=None, code=event.code
            )
        return Delivery(
            state="queued",
            attempts=attempts,
            next_attempt_at=event.at + _interval(profile, attempts),
            code=None,
        )
    if isinstance(event, Due):
        if d.state != "sent" or d.next_attempt_at is None or event.at < d.next_attempt_at:
            return d
        if d.attempts >= profile.attempts:
            return replace(d, state="failed", next_attempt_at=None, code=NO_RECEIPT)
        # Re-send the same bytes now.
        return replace(d, state="queued", next_attempt_at=event.at, code=None)
    if isinstance(event, OperatorRetry):
        if d.state != "failed":
            return d
        return Delivery(state="queued", attempts=0, next_attempt_at=event.at, code=None)
    # Submitted: a message is submitted once; the outbox row already exists.
    return d


def _interval(profile: RetryProfile, attempts: int) -> timedelta:
    # A delivery restored from an older, longer profile may have more attempts than
    # this profile allows: it then waits the last interval (and fails after it).
    return profile.intervals[min(attempts, profile.attempts) - 1]
