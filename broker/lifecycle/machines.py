"""The case state machines: which step each instrument allows in which state.

One machine per request type (the catalogue type of the request that opens a case),
read from ``schemas/data/case_states.json``: its states (terminal or not), its named
events (each a :class:`Matcher` on an :class:`~broker.lifecycle.events.Event`) and its
transitions. Nothing here knows an article or a state name; the table does.

A case starts in the pseudo-state :data:`NEW`; its request moves it to the machine's
start state. :func:`check_transition` takes one step and raises on a step the machine
does not allow, in this order (fail closed, first failure wins):

1. the instrument opens no case → :class:`~broker.errors.UnknownTypeError`;
2. a case not yet opened receives anything but its request → :class:`~broker.errors.CaseUnknown`;
3. the sender or recipient is not a party of this instrument → :class:`~broker.errors.NotParty`;
4. no named event of the instrument matches → :class:`~broker.errors.StateError`;
5. the state does not allow that event → :class:`~broker.errors.StateError`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from broker.errors import CaseUnknown, ConfigError, NotParty, StateError, UnknownTypeError
from broker.lifecycle.events import LAPSED, PARTIES, Event, check_order
from broker.resources import read_json

__all__ = [
    "NEW",
    "REQUEST",
    "Machine",
    "Matcher",
    "State",
    "Step",
    "case_state",
    "check_transition",
    "instruments",
    "machine",
    "trace",
]

#: The pseudo-state of a case before its request.
NEW: Final = "new"
#: The name of the event that opens a case (the request itself).
REQUEST: Final = "request"
_SAME: Final = "="
_ANY_STATE: Final = "*"
_INSTRUMENT: Final = "$instrument"
_MATCH_FIELDS: Final = ("to", "status", "kind", "rule")


@dataclass(frozen=True, slots=True)
class Matcher:
    """Names a kind of event: every member given must equal the event's.

    Attributes:
        type: the catalogue type (or ``deadline.lapsed``).
        by: the sender's role.
        to: the recipient's role (default: the sender's counterpart is not checked).
        status: the ``case.status`` code.
        kind: the ``case.extension`` kind.
        rule: for ``deadline.lapsed``, the rule id.
    """

    type: str
    by: str
    to: str | None = None
    status: str | None = None
    kind: str | None = None
    rule: str | None = None

    @property
    def specificity(self) -> int:
        """How many optional members the matcher constrains (the most specific wins)."""
        return sum(getattr(self, name) is not None for name in _MATCH_FIELDS)

    def matches(self, event: Event) -> bool:
        """Whether ``event`` is of the kind this matcher names."""
        if event.type != self.type or event.by != self.by:
            return False
        if self.to is not None and event.recipient != self.to:
            return False
        return all(
            getattr(self, name) is None or getattr(self, name) == getattr(event, name)
            for name in ("status", "kind", "rule")
        )


@dataclass(frozen=True, slots=True)
class State:
    """One state of a machine.

    Attributes:
        name: the state's name.
        terminal: whether the case is over in this state (no step is owed any more).
        description: what the state means, with its article.
    """

    name: str
    terminal: bool
    description: str


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a history as the machine read it.

    Attributes:
        event: the event.
        name: the name of the event in the machine (``request``, ``ack`` …).
        state: the case's state after the event.
    """

    event: Event
    name: str
    state: str


@dataclass(frozen=True)
class Machine:
    """The state machine of one instrument (see the module docstring)."""

    instrument: str
    title: str
    article: str
    parties: frozenset[str]
    start: str
    states: Mapping[str, State]
    events: Mapping[str, Matcher]
    transitions: Mapping[str, Mapping[str, str]]

    @functools.cached_property
    def _by_sender(self) -> Mapping[tuple[str, str], tuple[tuple[int, str, Matcher], ...]]:
        # Matchers by (type, sender): recomputing deadlines after a restart identifies
        # every event of every case, so the table is not scanned whole each time.
        index: dict[tuple[str, str], list[tuple[int, str, Matcher]]] = {}
        for name, m in self.events.items():
            index.setdefault((m.type, m.by), []).append((m.specificity, name, m))
        return {key: tuple(sorted(v, key=lambda t: (t[0], t[1]))) for key, v in index.items()}

    def identify(self, event: Event) -> str:
        """Return the name of ``event`` in this machine.

        Raises:
            NotParty: the sender or the recipient is not a party of this instrument.
            StateError: no named event matches (or, a table defect, two match alike).
        """
        if (event.type == LAPSED) != (event.by == "clock"):
            raise StateError("only the node's scheduler records that a period ran out")
        if event.by != "clock" and event.by not in self.parties:
            raise NotParty(f"a {event.by!r} is not a party to a {self.instrument} case")
        if event.to is not None and event.to not in self.parties:
            raise NotParty(f"a {event.to!r} is not a party to a {self.instrument} case")
        candidates = self._by_sender.get((event.type, event.by), ())
        found = [(spec, name) for spec, name, m in candidates if m.matches(event)]
        if not found:
            raise StateError(f"{event.type} from the {event.by} is no step of {self.instrument}")
        found.sort(reverse=True)
        if len(found) > 1 and found[0][0] == found[1][0]:
            raise StateError(f"{event.type} is ambiguous in the {self.instrument} table")
        return found[0][1]

    def step(self, state: str, event: Event) -> str:
        """Return the state after ``event`` in ``state`` (see :func:`check_transition`)."""
        if state == NEW:
            if not self.events[REQUEST].matches(event):
                raise CaseUnknown(f"{event.type} for a {self.instrument} case never opened")
            return self.start
        allowed = self.transitions.get(state)
        if allowed is None:
            raise StateError(f"{state!r} is not a state of {self.instrument}")
        name = self.identify(event)
        new_state = allowed.get(name)
        if new_state is None:
            raise StateError(f"{name} is not allowed in state {state!r} of {self.instrument}")
        return new_state

    @property
    def terminal_states(self) -> frozenset[str]:
        """The names of the terminal states."""
        return frozenset(name for name, state in self.states.items() if state.terminal)


def _matcher(instrument: str, row: Mapping[str, Any]) -> Matcher:
    if set(row) - {"type", "by", *_MATCH_FIELDS}:
        raise ConfigError(f"case_states.json: unknown matcher member in {instrument}")
    if row["by"] not in PARTIES:
        raise ConfigError(f"case_states.json: unknown party {row['by']!r} in {instrument}")
    fields = {key: row.get(key) for key in _MATCH_FIELDS}
    kind = instrument if row["type"] == _INSTRUMENT else row["type"]
    return Matcher(type=kind, by=row["by"], **fields)


def _build(instrument: str, spec: Mapping[str, Any], common: Mapping[str, Any]) -> Machine:
    events = {name: _matcher(instrument, row) for name, row in common["events"].items()}
    for name, row in spec["events"].items():
        if name in events:
            raise ConfigError(f"case_states.json: {instrument} redefines the event {name}")
        events[name] = _matcher(instrument, row)
    if len(set(events.values())) != len(events):
        raise ConfigError(f"case_states.json: {instrument} names one kind of event twice")
    own: Mapping[str, Mapping[str, str]] = spec["transitions"]
    targets = {t for row in own.values() for t in row.values()} | set(
        common["transitions"][_ANY_STATE].values()
    )
    states = {
        name: State(name, row["terminal"], row["description"])
        for name, row in common["states"].items()
        if name in targets
    }
    for name, row in spec["states"].items():
        states[name] = State(name, row["terminal"], row["description"])
    transitions: dict[str, Mapping[str, str]] = {}
    for name, state in states.items():
        base = (
            dict.fromkeys(common["terminal_accepts"], _SAME)
            if state.terminal
            else dict(common["transitions"][_ANY_STATE])
        )
        base.update(own.get(name, {}))
        for event_name, target in base.items():
            if event_name not in events or (target != _SAME and target not in states):
                raise ConfigError(f"case_states.json: bad transition {instrument}/{name}")
        transitions[name] = MappingProxyType(
            {event: name if target == _SAME else target for event, target in base.items()}
        )
    if set(own) - set(states) or spec["start"] not in states:
        raise ConfigError(f"case_states.json: unknown state in {instrument}")
    parties = frozenset(spec["parties"])
    if not parties <= set(PARTIES) - {"clock"}:
        raise ConfigError(f"case_states.json: unknown party in {instrument}")
    return Machine(
        instrument=instrument,
        title=spec["title"],
        article=spec["article"],
        parties=parties,
        start=spec["start"],
        states=MappingProxyType(states),
        events=MappingProxyType(events),
        transitions=MappingProxyType(transitions),
    )


@functools.cache
def _machines() -> Mapping[str, Machine]:
    table = read_json("data", "case_states.json")
    return MappingProxyType(
        {
            instrument: _build(instrument, spec, table["common"])
            for instrument, spec in table["instruments"].items()
        }
    )


def instruments() -> tuple[str, ...]:
    """Return the request types that open a case, in table order."""
    return tuple(_machines())


def machine(instrument: str) -> Machine:
    """Return the state machine of a request type.

    Raises:
        UnknownTypeError: ``instrument`` is not a request type that opens a case.
    """
    found = _machines().get(instrument)
    if found is None:
        raise UnknownTypeError(f"{instrument!r} is not a request type that opens a case")
    return found


def check_transition(instrument: str, state: str, event: Event) -> str:
    """Take one step of a case and return its new state.

    Args:
        instrument: the request type the case is about.
        state: the case's current state (:data:`NEW` before its request).
        event: the event to apply.

    Returns:
        The state after the event (the same state for a step that changes nothing).

    Raises:
        UnknownTypeError: ``instrument`` opens no case.
        CaseUnknown: the case is not open and ``event`` is not its request.
        NotParty: the sender or the recipient is not a party of this instrument.
        StateError: the event is no step of the instrument, or not allowed in ``state``.
    """
    return machine(instrument).step(state, event)


def _walk(found: Machine, history: Sequence[Event]) -> Iterator[Step]:
    check_order(history)
    state = NEW
    for event in history:
        name = REQUEST if state == NEW else found.identify(event)
        state = found.step(state, event)
        yield Step(event, name, state)


def trace(instrument: str, history: Sequence[Event]) -> tuple[Step, ...]:
    """Replay a history and return each event with its name and the state after it.

    Raises:
        StateError: the history is out of time order, or a step is not allowed
            (and the other errors of :func:`check_transition`).
    """
    return tuple(_walk(machine(instrument), history))


def case_state(instrument: str, history: Sequence[Event]) -> str:
    """Return the state of a case after its history (:data:`NEW` for an empty one).

    Raises:
        StateError: the history is out of time order, or a step is not allowed
            (and the other errors of :func:`check_transition`).
    """
    state = NEW
    for step in _walk(machine(instrument), history):
        state = step.state
    return state
