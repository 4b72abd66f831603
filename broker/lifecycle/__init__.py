"""Case lifecycles and legal deadlines: the pure core, no I/O.

What each request type allows next (:mod:`~broker.lifecycle.machines`, from
``schemas/data/case_states.json``), which time limits run and when they are due
(:mod:`~broker.lifecycle.rules` and :mod:`~broker.lifecycle.deadlines`, from
``schemas/data/deadline_rules.json``) and whether a refusal's ground fits its case
(:mod:`~broker.lifecycle.grounds`). Every function takes the case history and the time
as arguments; the store, the inbox and the scheduler call them and keep the results.
"""

from __future__ import annotations

from broker.lifecycle.deadlines import (
    Deadline,
    DeadlineState,
    OverrideValue,
    check_event,
    check_extension,
    deadlines,
)
from broker.lifecycle.events import LAPSED, PARTIES, Event, Party, Priority, check_order
from broker.lifecycle.grounds import check_refusal, check_refusal_form, grounds_for
from broker.lifecycle.machines import (
    NEW,
    REQUEST,
    Machine,
    Matcher,
    State,
    Step,
    case_state,
    check_transition,
    instruments,
    machine,
    trace,
)
from broker.lifecycle.rules import (
    Override,
    Rule,
    facts_table,
    parse_duration,
    rules,
    rules_for,
    rules_table,
)

__all__ = [
    "LAPSED",
    "NEW",
    "PARTIES",
    "REQUEST",
    "Deadline",
    "DeadlineState",
    "Event",
    "Machine",
    "Matcher",
    "Override",
    "OverrideValue",
    "Party",
    "Priority",
    "Rule",
    "State",
    "Step",
    "case_state",
    "check_event",
    "check_extension",
    "check_order",
    "check_refusal",
    "check_refusal_form",
    "check_transition",
    "deadlines",
    "facts_table",
    "grounds_for",
    "instruments",
    "machine",
    "parse_duration",
    "rules",
    "rules_for",
    "rules_table",
    "trace",
]
