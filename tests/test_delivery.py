"""broker.delivery: the sender's state machine for retries and receipts, and retry profiles.

Also the receipt builders of broker.forms.receipt, which produce what the machine
consumes on the other side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.canonical import canonical
from broker.delivery import (
    MAX_INTERVAL,
    MAX_INTERVALS,
    NO_RECEIPT,
    Delivery,
    Due,
    Event,
    OperatorRetry,
    Published,
    PublishFailed,
    ReceiptAccepted,
    ReceiptRejected,
    RetryProfile,
    State,
    Submitted,
    format_duration,
    is_terminal,
    parse_duration,
    start,
    step,
)
from broker.errors import ConfigError, SchemaError
from broker.forms.receipt import Proof, Receipt, envelope_digest
from broker.schema import catalogue

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
PROFILE = RetryProfile.parse("PT5S,PT30S,PT2M")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def d(
    state: State, attempts: int, next_in: float | None = None, code: str | None = None
) -> Delivery:
    """A delivery whose next attempt is ``next_in`` seconds after T0."""
    return Delivery(state, attempts, None if next_in is None else at(next_in), code)


# -- transitions ---------------------------------------------------------------------------------

UNCHANGED = None
# name, delivery before, event, expects_receipt, delivery after (UNCHANGED: the same object)
TRANSITIONS: list[tuple[str, Delivery, Event, bool, Delivery | None]] = [
    # A confirmed publish starts the wait for the receipt: intervals[attempts - 1].
    ("confirm-1", d("queued", 0, 0), Published(at(1)), True, d("sent", 1, 6)),
    ("confirm-2", d("queued", 1, 40), Published(at(40)), True, d("sent", 2, 70)),
    ("confirm-3", d("queued", 2, 100), Published(at(100)), True, d("sent", 3, 220)),
    ("confirm-no-receipt-expected", d("queued", 0, 0), Published(at(1)), False, d("sent", 1)),
    ("confirm-while-sent", d("sent", 1, 6), Published(at(2)), True, UNCHANGED),
    ("confirm-after-receipt", d("delivered", 1), Published(at(2)), True, UNCHANGED),
    (
        "confirm-after-rejection",
        d("rejected", 1, code="E_SCHEMA"),
        Published(at(2)),
        True,
        UNCHANGED,
    ),
    ("confirm-after-failure", d("failed", 3, code="E_NACK"), Published(at(2)), True, UNCHANGED),
    # A failed publish waits the same profile's interval, then tries again.
    ("nack-1", d("queued", 0, 0), PublishFailed(at(1), "E_NACK"), True, d("queued", 1, 6)),
    (
        "unroutable-2",
        d("queued", 1, 6),
        PublishFailed(at(6), "E_UNROUTABLE"),
        True,
        d("queued", 2, 36),
    ),
    (
        "broken-last",
        d("queued", 2, 36),
        PublishFailed(at(36), "E_TRANSPORT_BROKEN"),
        True,
        d("failed", 3, code="E_TRANSPORT_BROKEN"),
    ),
    (
        "nack-receipt-message",
        d("queued", 0, 0),
        PublishFailed(at(1), "E_NACK"),
        False,
        d("queued", 1, 6),
    ),
    ("nack-while-sent", d("sent", 1, 6), PublishFailed(at(2), "E_NACK"), True, UNCHANGED),
    ("nack-after-receipt", d("delivered", 1), PublishFailed(at(2), "E_NACK"), True, UNCHANGED),
    # Timers: early ones change nothing; an overdue receipt re-queues or fails.
    ("due-early", d("sent", 1, 6), Due(at(5.999)), True, UNCHANGED),
    ("due-on-time", d("sent", 1, 6), Due(at(6)), True, d("queued", 1, 6)),
    ("due-late", d("sent", 2, 36), Due(at(50)), True, d("queued", 2, 50)),
    ("due-exhausted", d("sent", 3, 155), Due(at(155)), True, d("failed", 3, code=NO_RECEIPT)),
    ("due-while-queued", d("queued", 1, 6), Due(at(7)), True, UNCHANGED),
    ("due-sent-no-receipt-expected", d("sent", 1), Due(at(500)), False, UNCHANGED),
    ("due-after-failure", d("failed", 3, code=NO_RECEIPT), Due(at(500)), True, UNCHANGED),
    ("due-after-receipt", d("delivered", 1), Due(at(500)), True, UNCHANGED),
    # Receipts settle whatever the timers say, a late one too.
    ("accepted-while-sent", d("sent", 1, 6), ReceiptAccepted(at(2)), True, d("delivered", 1)),
    ("accepted-while-queued", d("queued", 2, 36), ReceiptAccepted(at(7)), True, d("delivered", 2)),
    (
        "accepted-after-failure",
        d("failed", 3, code=NO_RECEIPT),
        ReceiptAccepted(at(900)),
        True,
        d("delivered", 3),
    ),
    (
        "rejected-while-sent",
        d("sent", 1, 6),
        ReceiptRejected(at(2), "E_POLICY_FORBIDDEN"),
        True,
        d("rejected", 1, code="E_POLICY_FORBIDDEN"),
    ),
    (
        "rejected-after-failure",
        d("failed", 3, code="E_NACK"),
        ReceiptRejected(at(900), "E_SIG_INVALID"),
        True,
        d("rejected", 3, code="E_SIG_INVALID"),
    ),
    ("accepted-twice", d("delivered", 1), ReceiptAccepted(at(3)), True, UNCHANGED),
    (
        "rejected-after-accepted",
        d("delivered", 1),
        ReceiptRejected(at(3), "E_REPLAY"),
        True,
        UNCHANGED,
    ),
    (
        "accepted-after-rejected",
        d("rejected", 1, code="E_SCHEMA"),
        ReceiptAccepted(at(3)),
        True,
        UNCHANGED,
    ),
    # Operators revive failed deliveries only.
    (
        "retry-failed",
        d("failed", 3, code=NO_RECEIPT),
        OperatorRetry(at(999)),
        True,
        d("queued", 0, 999),
    ),
    ("retry-queued", d("queued", 1, 6), OperatorRetry(at(2)), True, UNCHANGED),
    ("retry-sent", d("sent", 1, 6), OperatorRetry(at(2)), True, UNCHANGED),
    ("retry-delivered", d("delivered", 1), OperatorRetry(at(2)), True, UNCHANGED),
    ("retry-rejected", d("rejected", 1, code="E_SCHEMA"), OperatorRetry(at(2)), True, UNCHANGED),
    # A message is submitted once.
    ("submitted-again", d("sent", 1, 6), Submitted(at(2)), True, UNCHANGED),
]


@pytest.mark.parametrize(
    ("before", "event", "expects_receipt", "after"),
    [row[1:] for row in TRANSITIONS],
    ids=[row[0] for row in TRANSITIONS],
)
def test_transition(
    before: Delivery, event: Event, expects_receipt: bool, after: Delivery | None
) -> None:
    result = step(before, event, PROFILE, expects_receipt)
    if after is UNCHANGED:
        assert result is before
    else:
        assert result == after


def test_start() -> None:
    assert start(Submitted(T0)) == Delivery("queued", 0, T0, None)


def test_a_receipt_that_never_comes_fails_after_the_total() -> None:
    delivery = start(Submitted(T0))
    now = T0
    for attempt in range(1, PROFILE.attempts + 1):
        delivery = step(delivery, Published(now), PROFILE)
        assert (delivery.state, delivery.attempts) == ("sent", attempt)
        assert delivery.next_attempt_at is not None
        now = delivery.next_attempt_at
        delivery = step(delivery, Due(now), PROFILE)
    assert delivery == Delivery("failed", 3, None, "E_NO_RECEIPT")
    assert now == T0 + PROFILE.total() == at(155)
    # The receipt was only late: it still counts.
    assert step(delivery, ReceiptAccepted(at(156)), PROFILE) == Delivery("delivered", 3, None, None)


def test_an_operator_retry_starts_a_fresh_profile() -> None:
    failed = Delivery("failed", 3, None, "E_NACK")
    retried = step(failed, OperatorRetry(at(1000)), PROFILE)
    assert retried == Delivery("queued", 0, at(1000), None)
    assert step(retried, Published(at(1000)), PROFILE) == Delivery("sent", 1, at(1005), None)


def test_a_shorter_profile_for_a_stored_delivery_waits_its_last_interval() -> None:
    # The profile of a route was shortened while a message was in flight.
    short = RetryProfile.parse("PT10S")
    sent = step(Delivery("queued", 2, at(0), None), Published(at(0)), short)
    assert sent == Delivery("sent", 3, at(10), None)
    assert step(sent, Due(at(10)), short) == Delivery("failed", 3, None, NO_RECEIPT)


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        ("queued", False),
        ("sent", False),
        ("delivered", True),
        ("rejected", True),
        ("failed", False),
    ],
)
def test_is_terminal(state: State, terminal: bool) -> None:
    assert is_terminal(state) is terminal


NAIVE = datetime(2026, 3, 2, 3, 0)  # naive on purpose


@pytest.mark.parametrize(
    "make",
    [
        lambda: Submitted(NAIVE),
        lambda: Published(NAIVE),
        lambda: PublishFailed(NAIVE, "E_NACK"),
        lambda: ReceiptAccepted(NAIVE),
        lambda: ReceiptRejected(NAIVE, "E_SCHEMA"),
        lambda: Due(NAIVE),
        lambda: OperatorRetry(NAIVE),
    ],
)
def test_events_need_aware_times(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"^event times must be timezone-aware$"):
        make()


@pytest.mark.parametrize("code", ["E_A", "e_nack", "NACK", "E_" + "A" * 41, "E_NACK\n"])
def test_event_codes_are_stable_codes(code: str) -> None:
    with pytest.raises(ValueError, match=r"^not a stable error code"):
        PublishFailed(T0, code)
    with pytest.raises(ValueError, match=r"^not a stable error code"):
        ReceiptRejected(T0, code)


# -- properties over random event sequences ----------------------------------------------------

Kind = Literal[
    "published",
    "publish_failed",
    "accepted",
    "rejected",
    "due",
    "due_at_next",
    "retry",
    "submitted",
]
KINDS: tuple[Kind, ...] = (
    "published",
    "publish_failed",
    "accepted",
    "rejected",
    "due",
    "due_at_next",
    "retry",
    "submitted",
)
RECEIPTS = ("accepted", "rejected")
profiles = st.lists(st.integers(1, 3600), min_size=1, max_size=6).map(
    lambda seconds: RetryProfile(tuple(timedelta(seconds=s) for s in seconds))
)
# Network events dominate; receipts, retries and duplicates are rarer.
kinds = st.sampled_from(KINDS).flatmap(
    lambda k: st.just(k) if k not in RECEIPTS else st.sampled_from([k, "published", "due_at_next"])
)
steps = st.lists(st.tuples(kinds, st.integers(0, 4000)), max_size=40)


@dataclass
class Run:
    """A delivery driven through a sequence, with what the properties need."""

    profile: RetryProfile
    expects_receipt: bool
    delivery: Delivery
    now: datetime


def _event(run: Run, kind: Kind, gap: int) -> Event:
    run.now += timedelta(seconds=gap)
    if kind == "due_at_next":
        # The timer fires exactly when the delivery asked (or now, if that has passed).
        due = run.delivery.next_attempt_at
        run.now = max(run.now, due) if due is not None else run.now
        return Due(run.now)
    events: dict[Kind, Event] = {
        "published": Published(run.now),
        "publish_failed": PublishFailed(run.now, "E_NACK"),
        "accepted": ReceiptAccepted(run.now),
        "rejected": ReceiptRejected(run.now, "E_SCHEMA"),
        "due": Due(run.now),
        "retry": OperatorRetry(run.now),
        "submitted": Submitted(run.now),
    }
    return events[kind]


def _check_invariants(delivery: Delivery, run: Run) -> None:
    state, next_at, code = delivery.state, delivery.next_attempt_at, delivery.code
    assert 0 <= delivery.attempts <= run.profile.attempts
    if state == "queued":
        assert next_at is not None
        assert code is None
    if state == "sent":
        assert (next_at is not None) is run.expects_receipt
        assert code is None
    if state in ("delivered", "rejected", "failed"):
        assert next_at is None
    assert (code is not None) is (state in ("rejected", "failed"))


@settings(max_examples=300, deadline=None)
@given(profile=profiles, expects_receipt=st.booleans(), sequence=steps)
def test_random_sequences_keep_every_rule(
    profile: RetryProfile, expects_receipt: bool, sequence: list[tuple[Kind, int]]
) -> None:
    run = Run(profile, expects_receipt, start(Submitted(T0)), T0)
    attempts_seen = 0
    for kind, gap in sequence:
        before = run.delivery
        event = _event(run, kind, gap)
        after = step(before, event, profile, expects_receipt)
        _check_invariants(after, run)
        # Delivered and rejected are absorbing: nothing changes them, not even a receipt.
        if is_terminal(before.state):
            assert after is before
        # A receipt always wins over timers and retries.
        if kind in RECEIPTS:
            assert is_terminal(after.state)
        # A transition never schedules into the past.
        if after is not before and after.next_attempt_at is not None:
            assert after.next_attempt_at >= event.at
        # Publishes are counted, and never more than the profile allows before failed.
        if isinstance(event, OperatorRetry) and after is not before:
            attempts_seen = 0
        elif isinstance(event, Published | PublishFailed) and after is not before:
            attempts_seen += 1
            assert attempts_seen <= profile.attempts
        assert after.attempts == attempts_seen
        run.delivery = after
    # Every sequence ends settled, failed (for an operator), done without a receipt,
    # or with something scheduled.
    final = run.delivery
    assert (
        is_terminal(final.state)
        or final.state == "failed"
        or (final.state == "sent" and not expects_receipt)
        or final.next_attempt_at is not None
    )


@settings(max_examples=200, deadline=None)
@given(profile=profiles, publishes_fail=st.booleans())
def test_timers_alone_end_in_failed(profile: RetryProfile, publishes_fail: bool) -> None:
    # Nothing but timers and publishes: the machine always gives up, on time.
    delivery, now = start(Submitted(T0)), T0
    for _ in range(profile.attempts * 2 + 2):
        if delivery.state == "failed":
            break
        assert delivery.next_attempt_at is not None
        now = max(now, delivery.next_attempt_at)
        if delivery.state == "queued":
            event: Event = PublishFailed(now, "E_NACK") if publishes_fail else Published(now)
        else:
            event = Due(now)
        delivery = step(delivery, event, profile)
    assert delivery.state == "failed"
    assert delivery.attempts == profile.attempts
    if publishes_fail:
        assert delivery.code == "E_NACK"
        assert now == T0 + profile.total() - profile.intervals[-1]
    else:
        assert delivery.code == NO_RECEIPT
        assert now == T0 + profile.total()


# -- retry profiles --------------------------------------------------------------------------------

DURATIONS = [
    ("PT5S", timedelta(seconds=5)),
    ("PT30S", timedelta(seconds=30)),
    ("PT2M", timedelta(minutes=2)),
    ("PT1H30M", timedelta(hours=1, minutes=30)),
    ("P1D", timedelta(days=1)),
    ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("PT90S", timedelta(seconds=90)),
    ("PT0.5S", timedelta(milliseconds=500)),
    ("PT0.25S", timedelta(milliseconds=250)),
    ("PT1.001S", timedelta(seconds=1, milliseconds=1)),
    ("PT999999S", timedelta(seconds=999999)),
    ("P0DT1S", timedelta(seconds=1)),
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


NOT_A_DURATION = "is not an ISO 8601 duration of days, hours, minutes and seconds (PnDTnHnMnS)"
BAD_DURATIONS = [
    "",
    "P",
    "PT",
    "P1DT",
    "5S",
    "pt5s",
    "PT5s",
    "P1W",
    "P1Y",
    "P1M",
    "P1Y2M",
    "PT1.5M",
    "PT.5S",
    "PT5.S",
    "PT0.0001S",
    "PT5,5S",
    "-PT5S",
    "+PT5S",
    "PT1234567S",
    "PT2M5H",
    "PT5S5S",
    "P1DT5",
    " PT5S",
    "PT5S\n",
    "P\u0661D",  # an Arabic-Indic digit one
]


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(text)
    assert info.value.code == "E_CONFIG"
    assert info.value.message == f"{text!r} {NOT_A_DURATION}"


@pytest.mark.parametrize("text", ["PT0S", "P0D", "P0DT0H0M0.000S"])
def test_parse_duration_refuses_zero(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(text)
    assert info.value.message == f"{text!r} is zero: a duration must be positive"


def test_profile_from_a_string_and_from_a_list() -> None:
    expected = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2))
    assert RetryProfile.parse("PT5S,PT30S,PT2M").intervals == expected
    assert RetryProfile.parse(" PT5S , PT30S,PT2M ").intervals == expected
    assert RetryProfile.parse(["PT5S", "PT30S", "PT2M"]).intervals == expected
    assert RetryProfile.parse(("PT5S",)).attempts == 1


def test_profile_total_and_text() -> None:
    profile = RetryProfile.parse("PT5S,PT30S,PT2M,PT1H,P1D")
    assert profile.total() == timedelta(days=1, hours=1, minutes=2, seconds=35)
    assert profile.attempts == 5
    assert str(profile) == "PT5S,PT30S,PT2M,PT1H,P1D"
    assert RetryProfile.parse(str(profile)) == profile


BAD_PROFILES: list[tuple[str | list[str], str]] = [
    ("", f"retry interval 1: '' {NOT_A_DURATION}"),
    ("PT5S,,PT2M", f"retry interval 2: '' {NOT_A_DURATION}"),
    ("PT5S,", f"retry interval 2: '' {NOT_A_DURATION}"),
    ("PT5S,PT30S,P1W", f"retry interval 3: 'P1W' {NOT_A_DURATION}"),
    ("PT5S;PT30S", f"retry interval 1: 'PT5S;PT30S' {NOT_A_DURATION}"),
    (["PT5S", "PT0S"], "retry interval 2: 'PT0S' is zero: a duration must be positive"),
    ([], "a retry profile needs at least one interval"),
    (["PT1S"] * (MAX_INTERVALS + 1), "a retry profile has at most 100 intervals"),
    ("PT1S,P366D", "a retry interval is at most 365 days"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_PROFILES)
def test_profile_refusals(spec: str | list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RetryProfile.parse(spec)
    assert info.value.code == "E_CONFIG"
    assert info.value.message == message


@pytest.mark.parametrize(
    ("intervals", "message"),
    [
        ((timedelta(0),), "every retry interval must be positive"),
        ((timedelta(seconds=1), timedelta(seconds=-1)), "every retry interval must be positive"),
        ((MAX_INTERVAL + timedelta(milliseconds=1),), "a retry interval is at most 365 days"),
    ],
)
def test_profile_constructor_refusals(intervals: tuple[timedelta, ...], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RetryProfile(intervals)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(seconds=5), "PT5S"),
        (timedelta(minutes=2), "PT2M"),
        (timedelta(seconds=90), "PT1M30S"),
        (timedelta(hours=25), "P1DT1H"),
        (timedelta(days=2), "P2D"),
        (timedelta(milliseconds=500), "PT0.5S"),
        (timedelta(seconds=1, milliseconds=20), "PT1.02S"),
        (timedelta(days=1, milliseconds=1), "P1DT0.001S"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@pytest.mark.parametrize(
    "duration", [timedelta(0), timedelta(seconds=-1), timedelta(microseconds=1500)]
)
def test_format_duration_refuses(duration: timedelta) -> None:
    with pytest.raises(ValueError, match=r"^only positive durations in whole milliseconds"):
        format_duration(duration)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, int(MAX_INTERVAL / timedelta(milliseconds=1))))
def test_format_and_parse_round_trip(millis: int) -> None:
    duration = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(duration)) == duration


# -- receipts (broker.forms.receipt) ----------------------------------------------------------

MESSAGE_ID = "01963a6e-9c4b-7d2e-8f10-3b5a7c9e1d42"
WIRE = b'{"evb":1,"id":"01963a6e-9c4b-7d2e-8f10-3b5a7c9e1d42"}'
DIGEST = hashlib.sha256(WIRE).hexdigest()


def test_envelope_digest() -> None:
    assert envelope_digest(WIRE) == DIGEST
    assert envelope_digest(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_accepted_receipt_is_a_valid_catalogue_document() -> None:
    receipt = Receipt.accepted(
        message_id=MESSAGE_ID,
        envelope_digest=DIGEST,
        received_at=datetime(2026, 3, 2, 3, 14, 7, 250999, tzinfo=UTC),
    )
    assert receipt.to_json_obj() == {
        "message_id": MESSAGE_ID,
        "envelope_digest": DIGEST,
        "outcome": "accepted",
        "received_at": "2026-03-02T03:14:07.250Z",
    }
    assert catalogue().parse("msg.receipt", canonical(receipt.to_json_obj())) == receipt


def test_rejected_receipt_with_proof() -> None:
    proof = Proof(leaf_index=0, tree_size=1, hashes=(), checkpoint="log\n1\nAAAA\n\n")
    receipt = Receipt.rejected(
        message_id=MESSAGE_ID,
        envelope_digest=DIGEST,
        received_at=T0,
        code="E_SIG_INVALID",
        reason="the envelope signature does not verify",
        proof=proof,
    )
    assert receipt.to_json_obj() == {
        "message_id": MESSAGE_ID,
        "envelope_digest": DIGEST,
        "outcome": "rejected",
        "code": "E_SIG_INVALID",
        "received_at": "2026-03-02T03:00:00.000Z",
        "reason": "the envelope signature does not verify",
        "proof": {"leaf_index": 0, "tree_size": 1, "hashes": [], "checkpoint": "log\n1\nAAAA\n\n"},
    }
    assert catalogue().parse("msg.receipt", canonical(receipt.to_json_obj())) == receipt


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"code": "sig_invalid"}, [("E_SCHEMA", "/code")]),
        ({"code": "E_SCHEMA", "reason": "two\nlines"}, [("E_SCHEMA", "/reason")]),
        (
            {"code": "E_SCHEMA", "message_id": "x", "envelope_digest": DIGEST.upper()},
            [("E_SCHEMA", "/envelope_digest"), ("E_SCHEMA", "/message_id")],
        ),
    ],
)
def test_receipt_builders_raise_schema_errors(
    kwargs: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    args = {"message_id": MESSAGE_ID, "envelope_digest": DIGEST, "received_at": T0} | kwargs
    with pytest.raises(SchemaError) as info:
        Receipt.rejected(**args)  # type: ignore[arg-type]
    assert info.value.code == "E_SCHEMA"
    assert [(p.code, p.pointer) for p in info.value.problems] == expected
    assert all("two" not in p.message for p in info.value.problems)


def test_receipt_builders_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Receipt.accepted(message_id=MESSAGE_ID, envelope_digest=DIGEST, received_at=NAIVE)
