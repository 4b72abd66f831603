"""The deadline rules table: every legal time limit, with its article, as data.

``schemas/data/deadline_rules.json`` holds one row per rule (which instrument and
priority, who owes the step, the events that start, meet, cancel, restart, extend or
pause it, the ISO 8601 duration, the article and whether LEGAL.md confirms it). This
module loads it once into frozen :class:`Rule` values, checks every row against the
state machines, and serves the rows to ``evb rules list`` (:func:`rules_table`). No
legal number lives in code: a correction is a one-line change to the table.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final, Literal

from broker.errors import ConfigError
from broker.lifecycle.events import Priority
from broker.lifecycle.machines import machine
from broker.resources import read_json

__all__ = [
    "ANY_PREFIX",
    "Override",
    "Rule",
    "facts_table",
    "parse_duration",
    "rules",
    "rules_for",
    "rules_table",
]

#: A met_by entry ``any:<party>`` is met by any event that party sends.
ANY_PREFIX: Final = "any:"
RuleKind = Literal["limit", "period"]
RulePriority = Literal["normal", "emergency", "any"]

# ISO 8601 durations in weeks, days, hours, minutes and seconds. Years and months have
# no fixed length; no rule needs them, so they are refused rather than guessed.
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<w>[0-9]{1,6})W)?(?:(?P<d>[0-9]{1,6})D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]{1,6})H)?(?:(?P<m>[0-9]{1,6})M)?(?:(?P<s>[0-9]{1,6})S)?)?$"
)
_ROW_KEYS: Final = frozenset(
    {
        "id",
        "instrument",
        "step",
        "priority",
        "owed_by",
        "kind",
        "starts_on",
        "met_by",
        "cancelled_by",
        "continues_in",
        "restarts_on",
        "extended_by",
        "extendable_by",
        "max_extensions",
        "pauses_on",
        "resumes_on",
        "pause_verified",
        "duration",
        "min",
        "target",
        "override",
        "when",
        "reminders",
        "escalation",
        "article",
        "verified",
        "notes",
    }
)
# The order of the members in rules_table(): the brief's columns first.
_COLUMNS: Final = (
    "id",
    "instrument",
    "step",
    "priority",
    "owed_by",
    "kind",
    "starts_on",
    "duration",
    "article",
    "verified",
    "met_by",
    "cancelled_by",
    "continues_in",
    "restarts_on",
    "extended_by",
    "extendable_by",
    "max_extensions",
    "pauses_on",
    "resumes_on",
    "pause_verified",
    "min",
    "target",
    "override",
    "when",
    "reminders",
    "escalation",
    "notes",
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration in weeks, days, hours, minutes and seconds.

    Args:
        text: e.g. ``P60D``, ``PT8H``, ``P1W``, ``P1DT12H``.

    Raises:
        ValueError: not such a duration (years and months are refused: they have
            no fixed length).
    """
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"not an ISO 8601 duration in weeks, days or hours: {text!r}")
    parts = {key: int(value) for key, value in found.groupdict(default="0").items()}
    return timedelta(
        weeks=parts["w"], days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"]
    )


@dataclass(frozen=True, slots=True)
class Override:
    """How a case-level value changes a rule's duration.

    Attributes:
        key: the name of the value (``order_time_frame``, ``eio_deadline`` …).
        mode: ``replace`` (the case's value is used) or ``longer`` (the longer of the
            rule's duration and the case's value: the law's period is a floor).
    """

    key: str
    mode: Literal["replace", "longer"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One deadline rule (one row of ``deadline_rules.json``; see its description)."""

    id: str
    instrument: str
    step: str
    priority: RulePriority
    owed_by: str
    kind: RuleKind
    starts_on: tuple[str, ...]
    met_by: tuple[str, ...]
    cancelled_by: tuple[str, ...]
    continues_in: tuple[str, ...]
    restarts_on: tuple[str, ...]
    extended_by: tuple[str, ...]
    extendable_by: timedelta | None
    max_extensions: int | None
    pauses_on: tuple[str, ...]
    resumes_on: tuple[str, ...]
    duration: timedelta | None
    min: bool
    target: Literal["node"] | None
    override: Override | None
    when: tuple[tuple[str, str], ...]
    reminders: tuple[float, ...]
    escalation: str
    article: str
    verified: bool

    def applies(self, priority: Priority, facts: Mapping[str, str]) -> bool:
        """Whether the rule applies to a case of this priority with these facts."""
        if self.priority not in ("any", priority):
            return False
        return all(facts.get(key) == value for key, value in self.when)

    @property
    def limited(self) -> bool:
        """Whether the instrument limits the extensions (in length or number)."""
        return self.extendable_by is not None or self.max_extensions is not None


@functools.cache
def _table() -> Mapping[str, Any]:
    table: Mapping[str, Any] = read_json("data", "deadline_rules.json")
    return table


@functools.cache
def _rows() -> tuple[Mapping[str, Any], ...]:
    table = _table()
    rows = []
    for row in table["rules"]:
        if set(row) - _ROW_KEYS:
            raise ConfigError(f"deadline_rules.json: unknown member in {row.get('id')!r}")
        rows.append(MappingProxyType(table["defaults"] | row))
    return tuple(rows)


def _names(row: Mapping[str, Any], member: str) -> tuple[str, ...]:
    names = tuple(row[member])
    known = machine(row["instrument"]).events
    for name in names:
        party = name.removeprefix(ANY_PREFIX)
        valid = party in machine(row["instrument"]).parties if party != name else name in known
        if not valid:
            raise ConfigError(f"deadline_rules.json: {row['id']} names unknown event {name!r}")
    return names


def _states(row: Mapping[str, Any]) -> tuple[str, ...]:
    states = tuple(row["continues_in"])
    if not set(states) <= machine(row["instrument"]).terminal_states:
        raise ConfigError(f"deadline_rules.json: {row['id']} names an unknown terminal state")
    return states


def _optional_duration(text: str | None) -> timedelta | None:
    return None if text is None else parse_duration(text)


def _rule(row: Mapping[str, Any]) -> Rule:
    override = row["override"]
    try:
        return Rule(
            id=row["id"],
            instrument=row["instrument"],
            step=row["step"],
            priority=row["priority"],
            owed_by=row["owed_by"],
            kind=row["kind"],
            starts_on=_names(row, "starts_on"),
            met_by=_names(row, "met_by"),
            cancelled_by=_names(row, "cancelled_by"),
            continues_in=_states(row),
            restarts_on=_names(row, "restarts_on"),
            extended_by=_names(row, "extended_by"),
            extendable_by=_optional_duration(row["extendable_by"]),
            max_extensions=row["max_extensions"],
            pauses_on=_names(row, "pauses_on"),
            resumes_on=_names(row, "resumes_on"),
            duration=_optional_duration(row["duration"]),
            min=row["min"],
            target=row["target"],
            override=None if override is None else Override(override["key"], override["mode"]),
            when=tuple(sorted(row["when"].items())),
            reminders=tuple(row["reminders"]),
            escalation=row["escalation"],
            article=row["article"],
            verified=row["verified"],
        )
    except ValueError as exc:
        raise ConfigError(f"deadline_rules.json: {row['id']}: {exc}") from exc


@functools.cache
def rules() -> tuple[Rule, ...]:
    """Return every deadline rule, in table order.

    Raises:
        ConfigError: the table is malformed (unknown member, event or duration).
    """
    return tuple(_rule(row) for row in _rows())


def rules_for(
    instrument: str, priority: Priority, facts: Mapping[str, str] | None = None
) -> tuple[Rule, ...]:
    """Return the rules that apply to a case.

    Args:
        instrument: the request type of the case.
        priority: the case's priority.
        facts: facts of the case that some rules depend on (see :func:`facts_table`).

    Raises:
        UnknownTypeError: ``instrument`` opens no case.
        ValueError: a fact the instrument needs is missing, or has an unknown value.
    """
    machine(instrument)
    given = dict(facts or {})
    for key, spec in facts_table().items():
        if key in given and given[key] not in spec["values"]:
            raise ValueError(f"fact {key!r} has an unknown value")
        if key not in given and instrument in spec["required_for"]:
            raise ValueError(f"a {instrument} case needs the fact {key!r}")
    unknown = set(given) - set(facts_table())
    if unknown:
        raise ValueError(f"unknown facts: {sorted(unknown)}")
    return _applicable(instrument, priority, tuple(sorted(given.items())))


@functools.cache
def _applicable(
    instrument: str, priority: Priority, facts: tuple[tuple[str, str], ...]
) -> tuple[Rule, ...]:
    given = dict(facts)
    return tuple(r for r in rules() if r.instrument == instrument and r.applies(priority, given))


def facts_table() -> Mapping[str, Mapping[str, Any]]:
    """Return the case facts rules may depend on, with their values and who needs them."""
    found: Mapping[str, Mapping[str, Any]] = _table()["facts"]
    return found


def rules_table() -> list[dict[str, Any]]:
    """Return the rules as rows for display and export (``evb rules list --json``).

    Every row has every member (defaults filled in), durations as ISO 8601 strings,
    in a stable column order: ``id``, ``instrument``, ``step``, ``priority``,
    ``owed_by``, ``kind``, ``starts_on``, ``duration``, ``article``, ``verified``, then
    the rest. The rows are copies: changing them changes nothing here.
    """
    return [{column: copy.deepcopy(row[column]) for column in _COLUMNS} for row in _rows()]
