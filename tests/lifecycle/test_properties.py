"""Properties over random valid case histories (hypothesis).

A history is a random walk through an instrument's machine, until a terminal state:
each step picks an event the current state allows, after a random pause (up to 40
days), sometimes carrying an extension period or end date, and is kept only if
:func:`check_event` accepts it (an extension beyond the law, or a lapse before its due
time, is skipped). Over every such history: due dates never fall before their start,
the deadlines' states agree with their dates, and every state reached can still end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import ExtensionError, StateError
from broker.lifecycle import (
    LAPSED,
    NEW,
    Event,
    Priority,
    case_state,
    check_event,
    check_transition,
    deadlines,
    instruments,
    machine,
    rules,
)
from tests.lifecycle import T0, make

_EXTENDING = {"case.extension", "case.status", "eu.epoc_pr.extension"}
_OVERRIDE_KEYS = {r.instrument: r.override.key for r in rules() if r.override}


def _can_end(instrument: str, state: str) -> bool:
    m = machine(instrument)
    seen, queue = {state}, deque([state])
    while queue:
        current = queue.popleft()
        if current in m.terminal_states:
            return True
        for target in m.transitions[current].values():
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return False


@dataclass(frozen=True)
class Walk:
    instrument: str
    priority: Priority
    facts: dict[str, str]
    overrides: dict[str, Any]
    history: list[Event]
    states: list[str]

    def options(self) -> dict[str, Any]:
        return {"facts": self.facts, "overrides": self.overrides}


@st.composite
def walks(draw: st.DrawFn) -> Walk:
    instrument = draw(st.sampled_from(instruments()))
    priority: Priority = draw(st.sampled_from(["normal", "emergency"]))
    facts: dict[str, str] = {}
    if instrument == "coe.p2.art8.order":
        facts["data_kind"] = draw(st.sampled_from(["subscriber", "traffic"]))
    if instrument == "eu.eio.a" and draw(st.booleans()):
        facts["provisional_measures"] = "requested"
    overrides: dict[str, Any] = {}
    if instrument in _OVERRIDE_KEYS and draw(st.booleans()):
        days = draw(st.integers(min_value=1, max_value=200))
        overrides[_OVERRIDE_KEYS[instrument]] = (
            timedelta(days=days) if draw(st.booleans()) else T0 + timedelta(days=days - 20)
        )
    m = machine(instrument)
    when = T0
    history = [make(instrument, "request", when)]
    states = [m.start]
    for _ in range(draw(st.integers(min_value=0, max_value=20))):
        if states[-1] in m.terminal_states:
            break
        name = draw(st.sampled_from(sorted(m.transitions[states[-1]])))
        # Minutes to 40 days: some steps come in time, some late.
        gap = st.one_of(st.integers(0, 12 * 60), st.integers(0, 40 * 24 * 60))
        when += timedelta(minutes=draw(gap))
        matcher = m.events[name]
        extra: dict[str, Any] = {}
        if matcher.type in _EXTENDING:
            choice = draw(st.sampled_from(["none", "period", "until"]))
            days = draw(st.integers(min_value=1, max_value=45))
            if choice == "period":
                extra["period"] = f"P{days}D"
            elif choice == "until":
                extra["until"] = when + timedelta(days=days)
        if matcher.type == "case.clarification_request":
            extra["clock_suspended"] = draw(st.sampled_from([True, False, None]))
        if matcher.type == LAPSED:
            # The scheduler records a lapse at the due time of a running period.
            running = deadlines(
                instrument, priority, history, now=when, facts=facts, overrides=overrides
            )
            due = [d.due_at for d in running if d.rule == matcher.rule]
            if not due:
                continue
            when = max(when, due[0])
        event = make(instrument, name, when, **extra)
        skip = StateError if matcher.type == LAPSED else ExtensionError
        try:
            state = check_event(
                instrument, history, event, priority=priority, facts=facts, overrides=overrides
            )
        except skip:
            continue
        history.append(event)
        states.append(state)
    return Walk(instrument, priority, facts, overrides, history, states)


@settings(max_examples=200, deadline=None, database=None)
@given(walk=walks(), later=st.integers(min_value=0, max_value=200 * 24))
def test_due_dates_never_before_their_start(walk: Walk, later: int) -> None:
    now: datetime = walk.history[-1].at + timedelta(hours=later)
    found = deadlines(walk.instrument, walk.priority, walk.history, now=now, **walk.options())
    times = {e.at for e in walk.history}
    for d in found:
        assert walk.history[0].at <= d.started_at <= d.due_at
        assert d.started_at in times
        assert all(d.started_at <= r <= d.due_at for r in d.reminders)
        if d.state == "pending":
            assert d.due_at >= now
        if d.state == "met":
            assert d.met_at is not None
            assert d.met_at <= d.due_at
        if d.state == "missed":
            assert d.kind == "limit" or d.met_at is not None
            assert d.met_at is None or d.met_at > d.due_at
        if d.state == "cancelled":
            assert d.met_at is None


@settings(max_examples=200, deadline=None, database=None)
@given(walk=walks())
def test_every_state_reached_can_end(walk: Walk) -> None:
    m = machine(walk.instrument)
    found = deadlines(walk.instrument, walk.priority, walk.history, **walk.options())
    for state in walk.states:
        assert state in m.terminal_states or _can_end(walk.instrument, state)
    final = walk.states[-1]
    if final in m.terminal_states:
        # a case that ended owes nothing, but for the windows that outlive it
        outliving = {r.id for r in rules() if final in r.continues_in}
        assert all(not d.open or d.rule in outliving for d in found)
    else:
        assert _can_end(walk.instrument, final) or any(d.open for d in found)


@settings(max_examples=200, deadline=None, database=None)
@given(walk=walks())
def test_the_fold_of_check_transition_is_case_state(walk: Walk) -> None:
    state = NEW
    for event in walk.history:
        state = check_transition(walk.instrument, state, event)
    assert state == case_state(walk.instrument, walk.history) == walk.states[-1]
    # and deadlines are a function of their arguments
    first = deadlines(walk.instrument, walk.priority, walk.history, **walk.options())
    again = deadlines(walk.instrument, walk.priority, list(walk.history), **walk.options())
    assert first == again
