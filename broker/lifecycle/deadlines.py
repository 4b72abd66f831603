"""Due dates: the deadlines of a case, computed from its history and the rules table.

Pure functions from (instrument, priority, history, now) to :class:`Deadline` values.
Time comes only from the arguments: the events' ``at`` and an explicit ``now``. The
scheduler reads these values; it never computes a due date itself.

How one rule is followed through a history (the events in order):

1. the first event named in ``starts_on`` starts the clock: ``due = start + duration``
   (or the case's override: ``replace`` uses it, ``longer`` takes the longer one; for
   a minimum period a later ``until`` on the start event holds too); a due date never
   falls before its start;
2. an event named in ``met_by`` meets it (``met``; or ``missed``, with ``met_at``, when
   it came after the due time);
3. an event named in ``cancelled_by`` — or the case reaching a terminal state other
   than those in ``continues_in`` — cancels it (``missed`` instead when the due time
   had passed; a ``period`` that ran its course is ``met``);
4. ``restarts_on`` starts the clock afresh (an EIO forwarded to the competent authority);
5. ``extended_by`` moves the due date (by the event's period, to its ``until``, or by
   ``extendable_by``), refusing with :class:`~broker.errors.ExtensionError` an extension
   beyond ``extendable_by`` in total, beyond ``max_extensions``, or — where the
   instrument limits extensions — after the time ran out;
6. ``pauses_on`` stops the clock (unless the event says ``clock_suspended=False``) and
   ``resumes_on`` restarts it; the due date moves by the time stopped;
7. ``deadline.lapsed`` for the rule is accepted only once its due time has passed.

At ``now`` a rule still open is ``paused`` (its due date as if resumed now), ``missed``
(a limit past due), ``met`` (a period past due: it ran its course), or ``pending``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from broker.errors import ExtensionError, StateError
from broker.lifecycle.events import LAPSED, Event, Priority, check_order
from broker.lifecycle.machines import Machine, Step, machine, trace
from broker.lifecycle.rules import ANY_PREFIX, Rule, RuleKind, parse_duration, rules, rules_for

__all__ = [
    "Deadline",
    "DeadlineState",
    "OverrideValue",
    "check_event",
    "check_extension",
    "deadlines",
]

#: The state of a deadline at ``now``.
DeadlineState = Literal["pending", "met", "missed", "paused", "cancelled"]
#: A case-level override: a period from the start event, or an absolute due time.
OverrideValue = timedelta | datetime
_PRIORITIES: frozenset[str] = frozenset({"normal", "emergency"})


@dataclass(frozen=True, slots=True)
class Deadline:
    """One deadline of a case as it stands at ``now``.

    Attributes:
        rule: the rule id (``eio.recognise``).
        instrument: the request type of the case.
        step: the step the deadline is for (``acknowledge``, ``recognise`` …).
        article: the legal citation of the rule.
        owed_by: the role that owes the step.
        kind: ``limit`` (someone must act in time) or ``period`` (a span that runs out).
        escalation: what happens when it runs out (see ``deadline_rules.json``).
        verified: whether LEGAL.md confirms the rule's number.
        started_at: when the clock (last) started.
        due_at: when it is due (extensions and pauses included; never before
            ``started_at``).
        state: ``pending``, ``met``, ``missed``, ``paused`` or ``cancelled``.
        met_at: when it was met (for ``missed``, a late act; for a period that ran its
            course, ``due_at``); ``None`` otherwise.
        reminders: when to remind the owing party (the rule's fractions of the span
            from ``started_at`` to ``due_at``).
        extensions: how many extensions were applied.
    """

    rule: str
    instrument: str
    step: str
    article: str
    owed_by: str
    kind: RuleKind
    escalation: str
    verified: bool
    started_at: datetime
    due_at: datetime
    state: DeadlineState
    met_at: datetime | None
    reminders: tuple[datetime, ...]
    extensions: int

    @property
    def open(self) -> bool:
        """Whether the deadline still runs (``pending`` or ``paused``)."""
        return self.state in ("pending", "paused")


@dataclass
class _Run:
    """The running evaluation of one rule over a history (internal, mutable)."""

    rule: Rule
    base: timedelta | None
    override: OverrideValue | None
    started_at: datetime | None = None
    due: datetime | None = None
    paused_since: datetime | None = None
    extensions: int = 0
    extended: timedelta = field(default_factory=timedelta)
    state: DeadlineState | None = None
    met_at: datetime | None = None

    def start(self, at: datetime) -> None:
        self.started_at, self.paused_since = at, None
        self.extensions, self.extended = 0, timedelta()
        self.due = self._due_from(at)

    def _due_from(self, start: datetime) -> datetime | None:
        law = None if self.base is None else start + self.base
        if self.override is None or self.rule.override is None:
            return law
        wanted = start + self.override if isinstance(self.override, timedelta) else self.override
        if self.rule.override.mode == "longer" and law is not None:
            wanted = max(wanted, law)
        # An order's date may already be past when the order arrives: due at once.
        return max(wanted, start)

    def close(self, state: DeadlineState, met_at: datetime | None = None) -> None:
        self.state, self.met_at, self.paused_since = state, met_at, None

    def ran_out(self, due: datetime) -> None:
        """Close a deadline whose due time passed without the step."""
        if self.rule.kind == "period":
            self.close("met", due)
        else:
            self.close("missed")


def _named(names: Sequence[str], step: Step) -> bool:
    for name in names:
        if name == step.name:
            return True
        if name.startswith(ANY_PREFIX) and step.event.by == name.removeprefix(ANY_PREFIX):
            return True
    return False


def _extend(run: _Run, event: Event, due: datetime, overdue: bool) -> None:
    rule = run.rule
    if event.until is not None:
        delta = event.until - due
    elif event.period is not None:
        try:
            delta = parse_duration(event.period)
        except ValueError as exc:
            raise ExtensionError(f"{rule.id}: the extension period is not usable") from exc
    elif rule.extendable_by is not None:
        delta = rule.extendable_by
    else:
        return  # states no new end (e.g. a repeated 'preserved' without a date)
    if delta <= timedelta():
        return  # an earlier end is no extension; the rule's own end still holds
    if rule.limited and overdue:
        raise ExtensionError(f"{rule.id}: extended after the time limit ran out ({rule.article})")
    if rule.max_extensions is not None and run.extensions >= rule.max_extensions:
        raise ExtensionError(
            f"{rule.id}: at most {rule.max_extensions} extension(s) allowed ({rule.article})"
        )
    if rule.extendable_by is not None and run.extended + delta > rule.extendable_by:
        raise ExtensionError(f"{rule.id}: extended beyond what {rule.article} allows")
    run.due = due + delta
    run.extensions += 1
    run.extended += delta


def _advance(run: _Run, found: Machine, step: Step) -> None:
    rule, event, at = run.rule, step.event, step.event.at
    lapse = event.type == LAPSED and event.rule == rule.id
    if run.started_at is None:
        if lapse:
            raise StateError(f"{rule.id} lapsed before it started")
        if _named(rule.starts_on, step):
            run.start(at)
            if rule.min and run.due is not None and event.until is not None:
                # The party states the end of a period the law gives as a minimum
                # (a preserved_until): a later end holds, an earlier one does not.
                run.due = max(run.due, event.until)
        return
    due = run.due
    if run.state is not None or due is None:
        if lapse:
            raise StateError(f"{rule.id} lapsed after it closed")
        return
    overdue = run.paused_since is None and at > due
    if lapse:
        if run.paused_since is not None or at < due:
            raise StateError(f"{rule.id} lapsed before its due time")
        run.ran_out(due)
    elif _named(rule.met_by, step):
        run.close("missed" if overdue else "met", at)
    elif _named(rule.cancelled_by, step) or (
        step.state in found.terminal_states and step.state not in rule.continues_in
    ):
        if overdue:
            run.ran_out(due)
        else:
            run.close("cancelled")
    elif _named(rule.restarts_on, step):
        run.start(at)
    else:
        if _named(rule.extended_by, step):
            _extend(run, event, due, overdue)
        if (
            _named(rule.pauses_on, step)
            and event.clock_suspended is not False
            and run.paused_since is None
            and not overdue
        ):
            run.paused_since = at
        elif _named(rule.resumes_on, step) and run.paused_since is not None:
            run.due = due + (at - run.paused_since)
            run.paused_since = None


def _finish(run: _Run, instrument: str, now: datetime) -> Deadline | None:
    rule = run.rule
    if run.started_at is None or run.due is None:
        return None
    due = run.due
    if run.state is None and run.paused_since is not None:
        due = due + (now - run.paused_since)
        run.close("paused")
    elif run.state is None and now > due:
        run.ran_out(due)
    state: DeadlineState = "pending" if run.state is None else run.state
    span = due - run.started_at
    return Deadline(
        rule=rule.id,
        instrument=instrument,
        step=rule.step,
        article=rule.article,
        owed_by=rule.owed_by,
        kind=rule.kind,
        escalation=rule.escalation,
        verified=rule.verified,
        started_at=run.started_at,
        due_at=due,
        state=state,
        met_at=run.met_at,
        reminders=tuple(run.started_at + span * fraction for fraction in rule.reminders),
        extensions=run.extensions,
    )


def _check_arguments(
    instrument: str,
    priority: str,
    overrides: Mapping[str, OverrideValue],
    ack_targets: Mapping[str, timedelta],
) -> None:
    if priority not in _PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    keys = {r.override.key for r in rules() if r.instrument == instrument and r.override}
    for key, value in overrides.items():
        if key not in keys:
            raise ValueError(f"{instrument} has no deadline that {key!r} can change")
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"override {key!r} must be timezone-aware")
        if isinstance(value, timedelta) and value <= timedelta():
            raise ValueError(f"override {key!r} must be longer than zero")
    for key, target in ack_targets.items():
        if key not in _PRIORITIES or target <= timedelta():
            raise ValueError("acknowledgement targets are positive periods per priority")


def deadlines(
    instrument: str,
    priority: Priority,
    history: Sequence[Event],
    *,
    now: datetime | None = None,
    overrides: Mapping[str, OverrideValue] | None = None,
    ack_targets: Mapping[str, timedelta] | None = None,
    facts: Mapping[str, str] | None = None,
) -> list[Deadline]:
    """Return the deadlines of a case that have started, as they stand at ``now``.

    Args:
        instrument: the request type of the case.
        priority: the case's priority (``emergency`` selects the emergency rules).
        history: the case's events in time order.
        now: the time to judge met / missed / pending at (default: the last event's).
        overrides: case-level values by override key (``order_time_frame``,
            ``eio_deadline``, ``preservation_period``, ``disclose_by``,
            ``response_wished_by``): a period from the start event, or a due time.
        ack_targets: the node's acknowledgement target per priority, replacing the
            table's default for the rules marked ``target: node``.
        facts: facts of the case some rules depend on (``data_kind`` …).

    Returns:
        One deadline per applicable rule whose clock started, by due time then rule id.

    Raises:
        UnknownTypeError: ``instrument`` opens no case.
        StateError: the history breaks the state machine, is out of order, or records
            a lapse before its due time (and the other errors of ``check_transition``).
        ExtensionError: the history extends a deadline beyond what the rule allows.
        ValueError: a naive time, ``now`` before the last event, an unknown override
            key or priority, or a missing or unknown fact.
    """
    found = machine(instrument)
    given_overrides = dict(overrides or {})
    targets = dict(ack_targets or {})
    _check_arguments(instrument, priority, given_overrides, targets)
    applicable = rules_for(instrument, priority, facts)
    steps = trace(instrument, history)
    if not steps:
        return []
    at = steps[-1].event.at if now is None else now
    if at.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if at < steps[-1].event.at:
        raise ValueError("now is before the last event of the history")
    known = {r.id for r in applicable}
    for step in steps:
        if step.event.type == LAPSED and step.event.rule not in known:
            raise StateError(f"no rule {step.event.rule!r} runs in this case")
    result = []
    for rule in applicable:
        base = targets.get(priority, rule.duration) if rule.target == "node" else rule.duration
        override = given_overrides.get(rule.override.key) if rule.override else None
        run = _Run(rule, base, override)
        for step in steps:
            _advance(run, found, step)
        deadline = _finish(run, instrument, at)
        if deadline is not None:
            result.append(deadline)
    return sorted(result, key=lambda d: (d.due_at, d.rule))


def check_event(
    instrument: str,
    history: Sequence[Event],
    event: Event,
    *,
    priority: Priority = "normal",
    overrides: Mapping[str, OverrideValue] | None = None,
    ack_targets: Mapping[str, timedelta] | None = None,
    facts: Mapping[str, str] | None = None,
) -> str:
    """Check that ``event`` may join a case, and return the case's new state.

    The checks the inbox runs before it records an event: the state machine allows
    the step (:func:`~broker.lifecycle.machines.check_transition`), the event is not
    older than the history, and the deadlines still hold with it (an extension within
    what the rule allows; a lapse only once due). A refusal's ground is checked
    separately with :func:`~broker.lifecycle.grounds.check_refusal`.

    Raises:
        UnknownTypeError, CaseUnknown, NotParty, StateError: as for
            :func:`~broker.lifecycle.machines.check_transition`; StateError also for an
            event older than the history or a lapse before its due time.
        ExtensionError: an extension beyond what the instrument allows.
        ValueError: as for :func:`deadlines`.
    """
    extended = [*history, event]
    check_order(extended)
    state = trace(instrument, extended)[-1].state
    deadlines(
        instrument,
        priority,
        extended,
        now=event.at,
        overrides=overrides,
        ack_targets=ack_targets,
        facts=facts,
    )
    return state


def check_extension(
    instrument: str,
    history: Sequence[Event],
    event: Event,
    *,
    priority: Priority = "normal",
    overrides: Mapping[str, OverrideValue] | None = None,
    ack_targets: Mapping[str, timedelta] | None = None,
    facts: Mapping[str, str] | None = None,
) -> tuple[Deadline, ...]:
    """Check an extension and return the deadlines it extends, as extended.

    Args:
        instrument: the request type of the case.
        history: the case's events so far.
        event: the extension (``case.extension``, ``eu.epoc_pr.extension``, a
            ``case.status`` that moves a date …).
        priority: the case's priority.
        overrides: as for :func:`deadlines`.
        ack_targets: as for :func:`deadlines`.
        facts: as for :func:`deadlines`.

    Raises:
        ExtensionError: the event extends no running deadline of the case, or extends
            one beyond what the instrument allows (in length or number, or too late).
        StateError: the state machine does not allow the event here (and the other
            errors of :func:`check_event`).
    """

    def at(events: Sequence[Event]) -> dict[str, Deadline]:
        found = deadlines(
            instrument,
            priority,
            events,
            now=event.at,
            overrides=overrides,
            ack_targets=ack_targets,
            facts=facts,
        )
        return {d.rule: d for d in found}

    check_order([*history, event])
    trace(instrument, [*history, event])
    before, after = at(history), at([*history, event])
    changed = tuple(
        d
        for rule, d in after.items()
        if rule in before
        and before[rule].open
        and (d.extensions, d.due_at) != (before[rule].extensions, before[rule].due_at)
    )
    if not changed:
        raise ExtensionError(f"{event.type} extends no running deadline of this case")
    return changed
