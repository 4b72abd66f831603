"""The case state machines: every allowed step, every forbidden one, and the table's shape.

The transitions are tables (schemas/data/case_states.json), so are the tests: one case
per allowed (instrument, state, event) step asserting the new state, one per forbidden
step asserting E_STATE, plus the errors that come before the state is even looked at
(E_UNKNOWN_TYPE, E_CASE_UNKNOWN, E_NOT_PARTY).
"""

from __future__ import annotations

from collections import deque
from typing import get_args

import pytest

from broker.errors import BrokerError
from broker.forms.responses import RequestType, refusal_grounds, status_codes
from broker.lifecycle import (
    LAPSED,
    NEW,
    REQUEST,
    Event,
    Machine,
    case_state,
    check_transition,
    grounds_for,
    instruments,
    machine,
    rules,
    trace,
)
from broker.resources import read_json, schema_root
from tests.lifecycle import T0, at, make

INSTRUMENTS = instruments()


def _allowed() -> list[tuple[str, str, str, str]]:
    return [
        (instrument, state, name, target)
        for instrument in INSTRUMENTS
        for state, row in machine(instrument).transitions.items()
        for name, target in row.items()
    ]


def _forbidden() -> list[tuple[str, str, str]]:
    return [
        (instrument, state, name)
        for instrument in INSTRUMENTS
        for state, row in machine(instrument).transitions.items()
        for name in machine(instrument).events
        if name not in row
    ]


ALLOWED = _allowed()
FORBIDDEN = _forbidden()


def _code(exc: pytest.ExceptionInfo[BrokerError]) -> str:
    return exc.value.code


def _reachable(m: Machine, start: str) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for target in m.transitions[queue.popleft()].values():
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


# -- every step ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "state", "name", "target"), ALLOWED, ids=["/".join(c[:3]) for c in ALLOWED]
)
def test_every_allowed_step(instrument: str, state: str, name: str, target: str) -> None:
    assert check_transition(instrument, state, make(instrument, name, T0)) == target


@pytest.mark.parametrize(
    ("instrument", "state", "name"), FORBIDDEN, ids=["/".join(c) for c in FORBIDDEN]
)
def test_every_forbidden_step_is_e_state(instrument: str, state: str, name: str) -> None:
    with pytest.raises(BrokerError) as info:
        check_transition(instrument, state, make(instrument, name, T0))
    assert _code(info) == "E_STATE"


def test_the_tables_are_not_trivial() -> None:
    # A guard on the two parametrisations above: an empty table would pass them.
    assert len(ALLOWED) > 300
    assert len(FORBIDDEN) > 500


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_the_request_opens_the_case(instrument: str) -> None:
    m = machine(instrument)
    assert check_transition(instrument, NEW, make(instrument, REQUEST, T0)) == m.start
    assert case_state(instrument, []) == NEW


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_anything_else_before_the_request_is_an_unknown_case(instrument: str) -> None:
    for name in machine(instrument).events:
        if name == REQUEST:
            continue
        with pytest.raises(BrokerError) as info:
            check_transition(instrument, NEW, make(instrument, name, T0))
        assert _code(info) == "E_CASE_UNKNOWN", name


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_a_second_request_is_e_state(instrument: str) -> None:
    with pytest.raises(BrokerError) as info:
        check_transition(instrument, machine(instrument).start, make(instrument, REQUEST, T0))
    assert _code(info) == "E_STATE"


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_withdrawal_ends_every_open_state(instrument: str) -> None:
    m = machine(instrument)
    for state in set(m.states) - m.terminal_states:
        assert check_transition(instrument, state, make(instrument, "withdrawal", T0)) == (
            "withdrawn"
        )


# -- errors before the state ----------------------------------------------------------------


def _ev(
    type_: str,
    by: str,
    *,
    to: str | None = None,
    status: str | None = None,
    rule: str | None = None,
) -> Event:
    return Event(type=type_, by=by, at=T0, to=to, status=status, rule=rule)


BAD_EVENTS = [
    # (instrument, state, event, code)
    ("case.ack", NEW, _ev("case.ack", "requested"), "E_UNKNOWN_TYPE"),
    ("coe.art30.disclosure", "requested", _ev("x", "requester"), "E_UNKNOWN_TYPE"),
    ("eu.eio.a", "acknowledged", _ev("case.refusal", "notified"), "E_NOT_PARTY"),
    ("eu.eio.a", "requested", _ev("eu.eio.a", "requester", to="notified"), "E_NOT_PARTY"),
    ("eu.epoc_pr", "preserving", _ev("case.ack", "notified"), "E_NOT_PARTY"),
    ("eu.epoc", "requested", _ev("case.ack", "mallory"), "E_NOT_PARTY"),
    ("eu.epoc", "requested", _ev("case.ack", "requested", to="clock"), "E_NOT_PARTY"),
    ("eu.eio.a", "no_such_state", _ev("case.ack", "requested"), "E_STATE"),
    # a status code of another instrument, a form of another instrument
    ("eu.eio.a", "requested", _ev("case.status", "requested", status="preserved"), "E_STATE"),
    ("eu.eio.a", "requested", _ev("eu.epoc.inability", "requested"), "E_STATE"),
    ("coe.art29.preservation", "preserved", _ev("eu.epoc_pr.extension", "requester"), "E_STATE"),
    # replies from the wrong side
    ("eu.eio.a", "requested", _ev("case.response", "requester"), "E_STATE"),
    ("eu.eio.a", "requested", _ev("case.withdrawal", "requested"), "E_STATE"),
    # only the scheduler records a lapse, and it records nothing else
    ("eu.epoc_pr", "preserving", _ev(LAPSED, "requester", rule="epoc_pr.preserve"), "E_STATE"),
    ("eu.epoc_pr", "preserving", _ev("case.ack", "clock"), "E_STATE"),
    ("eu.epoc_pr", "preserving", Event.lapsed("bc29.preserve", T0), "E_STATE"),
    ("eu.epoc_pr", "confirmed", Event.lapsed("epoc_pr.preserve", T0), "E_STATE"),
    # terminal states take nothing but the informational status
    ("eu.eio.a", "refused", _ev("case.response", "requested"), "E_STATE"),
    (
        "coe.art29.preservation",
        "expired",
        _ev("case.status", "requested", status="preserved"),
        "E_STATE",
    ),
]


@pytest.mark.parametrize(("instrument", "state", "event", "code"), BAD_EVENTS)
def test_bad_events(instrument: str, state: str, event: Event, code: str) -> None:
    with pytest.raises(BrokerError) as info:
        check_transition(instrument, state, event)
    assert _code(info) == code


def test_terminal_states_accept_the_completed_status_as_a_no_op() -> None:
    done = Event(type="case.status", status="completed", by="requested", at=T0)
    for instrument in INSTRUMENTS:
        for state in machine(instrument).terminal_states:
            assert check_transition(instrument, state, done) == state


# -- histories -------------------------------------------------------------------------------

# (instrument, the events in order, the final state)
PATHS = [
    (
        "coe.art29.preservation",
        "request ack status_preserved extension_request extension_grant"
        " status_mla_received_holding response",
        "disclosed",
    ),
    ("coe.art29.preservation", "request status_preserved preservation_lapsed", "expired"),
    (
        "coe.art29.preservation",
        "request status_risk_notice clarification status_preserved status_completed",
        "released",
    ),
    ("coe.art29.preservation", "request clarification_request clarification refusal", "refused"),
    ("eu.eio.a", "request eio_b status_recognised status_executing response", "executed"),
    ("eu.eio.a", "request eio_b status_postponed status_recognised refusal", "refused"),
    ("eu.eio.c", "request ack object_window_lapsed", "unopposed"),
    (
        "eu.epoc",
        "request notification status_preserving status_awaiting_ea ea_no_ground"
        " response ea_refusal",
        "refused",
    ),
    ("eu.epoc", "request inability clarification status_transmitted", "executed"),
    ("eu.epoc_pr", "request status_preserving extension confirmation status_ceased", "ceased"),
    ("coe.p2.art7.subscriber", "request notification status_in_review do_not_disclose", "refused"),
    ("coe.p2.art7.subscriber", "request status_will_not_disclose", "not_disclosed"),
    (
        "coe.p2.art8.order",
        "request ack status_information_complete status_served_on_provider response",
        "executed",
    ),
    ("coe.p2.art9.emergency", "request response response", "executed"),
    ("mla.request", "request ack clarification_request withdrawal", "withdrawn"),
]


@pytest.mark.parametrize(("instrument", "path", "final"), PATHS)
def test_paths(instrument: str, path: str, final: str) -> None:
    names = path.split()
    history = [make(instrument, name, at(hours=i)) for i, name in enumerate(names)]
    assert case_state(instrument, history) == final
    steps = trace(instrument, history)
    assert [s.name for s in steps] == names
    assert steps[-1].state == final


def test_a_history_out_of_order_is_e_state() -> None:
    history = [make("eu.eio.a", "request", at(days=1)), make("eu.eio.a", "eio_b", at(days=0))]
    with pytest.raises(BrokerError) as info:
        case_state("eu.eio.a", history)
    assert _code(info) == "E_STATE"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Event(type="case.ack", by="requested", at=T0.replace(tzinfo=None))


# -- the table's shape -----------------------------------------------------------------------


def test_the_instruments_are_the_request_types() -> None:
    assert set(INSTRUMENTS) == set(get_args(RequestType))
    assert set(INSTRUMENTS) == set(read_json("data", "status_codes.json")["instruments"])


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_every_state_is_reachable_and_can_end(instrument: str) -> None:
    m = machine(instrument)
    assert _reachable(m, m.start) == set(m.states)
    for state in m.states:
        assert _reachable(m, state) & m.terminal_states, state
    for state in m.terminal_states:
        # a terminal state only records, or moves to another terminal state
        assert set(m.transitions[state].values()) <= m.terminal_states


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_every_matcher_names_a_catalogue_type(instrument: str) -> None:
    for name, matcher in machine(instrument).events.items():
        if matcher.type != LAPSED:
            assert schema_root().joinpath("json", f"{matcher.type}.json").is_file(), name


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_status_matchers_use_the_instruments_codes(instrument: str) -> None:
    codes = status_codes()[instrument]
    used = {
        m.status
        for m in machine(instrument).events.values()
        if m.type == "case.status" and m.status
    }
    assert all(m.status for m in machine(instrument).events.values() if m.type == "case.status")
    assert used <= set(codes)
    # every code of the instrument takes the case somewhere (the generic ones included)
    assert set(codes) <= used


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_matchers_are_unambiguous(instrument: str) -> None:
    events = list(machine(instrument).events.items())
    for i, (name_a, a) in enumerate(events):
        for name_b, b in events[i + 1 :]:
            if (a.type, a.by) != (b.type, b.by) or a.specificity != b.specificity:
                continue
            clash = [
                f
                for f in ("to", "status", "kind", "rule")
                if getattr(a, f) is not None
                and getattr(b, f) is not None
                and getattr(a, f) != getattr(b, f)
            ]
            assert clash, f"{name_a} and {name_b} match the same events"


@pytest.mark.parametrize("instrument", INSTRUMENTS)
@pytest.mark.parametrize("party", ["requested", "notified"])
def test_refusals_exist_exactly_where_grounds_do(instrument: str, party: str) -> None:
    m = machine(instrument)
    refusals = {name for name, e in m.events.items() if e.type == "case.refusal" and e.by == party}
    used = any(refusals & set(row) for row in m.transitions.values())
    assert used == bool(grounds_for(instrument, party))


def test_every_instrument_with_grounds_has_a_machine() -> None:
    assert set(refusal_grounds()) <= set(INSTRUMENTS)


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_lapse_events_match_the_lapsing_rules(instrument: str) -> None:
    lapses = {m.rule for m in machine(instrument).events.values() if m.type == LAPSED}
    lapsing = {r.id for r in rules() if r.instrument == instrument and r.escalation == "lapse"}
    assert lapses == lapsing
    assert all(r.kind == "period" for r in rules() if r.id in lapsing)


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_every_state_is_described(instrument: str) -> None:
    m = machine(instrument)
    assert m.title.strip()
    assert m.article.strip()
    for state in m.states.values():
        assert state.description.strip(), state.name
