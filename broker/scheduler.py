"""The deadline scheduler: reminders before due, escalation on breach, lapses of periods.

Due dates are computed by :mod:`broker.lifecycle` when a case's event is recorded and
kept in the store (restart-safe); the scheduler only reads them. Each
:meth:`DeadlineScheduler.tick`:

* sends a **reminder** (``deadline.reminder`` audit record, counter) for every open
  deadline whose next reminder instant has passed (the rule's fractions, 50 % and 90 %
  of the period by default);
* **escalates** every open deadline whose due time has passed: a ``deadline.missed``
  audit record with the rule and its article, an alert on the node's own alert queue
  and a counter; or, for a *period* that runs out (preservation, a window to object),
  records ``deadline.lapsed`` in the case, which moves it on (e.g. ``expired``).

Progress is written with each step, so a restarted node neither repeats nor skips
an escalation. Alerts and logs carry ids, rules and codes, never personal data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from broker.cases import history_of, plan_event, role_of
from broker.clock import Clock
from broker.errors import CaseError
from broker.lifecycle import Event
from broker.store.base import AuditEvent, Store, StoredDeadline

__all__ = ["Alert", "DeadlineScheduler", "SchedulerStats"]

log = structlog.get_logger(__name__)

#: An alert: a flat JSON object (ids, rule, article, times, codes).
Alert = Mapping[str, str | int | bool | None]

#: Deadlines handled per tick at most (the rest come in the next tick).
_BATCH = 500


class SchedulerStats:
    """Counters of the scheduler, ready for a Prometheus text exposition."""

    def __init__(self) -> None:
        """Start every counter at zero."""
        self.counters: dict[tuple[str, str, str], int] = {}

    def count(self, name: str, instrument: str, rule: str) -> None:
        """Add one to ``name`` for ``instrument`` and ``rule``."""
        key = (name, instrument, rule)
        self.counters[key] = self.counters.get(key, 0) + 1

    def total(self, name: str) -> int:
        """Return the sum of ``name`` over every instrument and rule."""
        return sum(v for (n, _, _), v in self.counters.items() if n == name)

    def exposition(self) -> str:
        """Return the counters in the Prometheus text format."""
        lines: list[str] = []
        for name in sorted({n for n, _, _ in self.counters}):
            metric = f"evb_{name}_total"
            lines.append(f"# TYPE {metric} counter")
            for (n, instrument, rule), value in sorted(self.counters.items()):
                if n == name:
                    lines.append(f'{metric}{{instrument="{instrument}",rule="{rule}"}} {value}')
        return "\n".join(lines) + ("\n" if lines else "")


class DeadlineScheduler:
    """Reminds, escalates and lapses the deadlines of one node's cases."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        participant: str,
        alert: Callable[[Alert], Awaitable[None]],
        *,
        ack_targets: Mapping[str, timedelta] | None = None,
    ) -> None:
        """Bind the scheduler to a node's store, clock, identity and alert sink."""
        self._store = store
        self._clock = clock
        self._participant = participant
        self._alert = alert
        self._ack_targets = dict(ack_targets or {})
        self.stats = SchedulerStats()

    async def tick(self) -> int:
        """Handle every reminder and escalation due now; return how many were handled.

        Raises:
            StoreError: the store failed (the next tick tries again).
        """
        now = self._clock.now()
        handled = 0
        for deadline in await self._store.due_deadlines(now, _BATCH):
            if deadline.due_at <= now and deadline.escalated_at is None:
                await self._escalate(deadline, now)
            else:
                await self._remind(deadline, now)
            handled += 1
        return handled

    async def _remind(self, d: StoredDeadline, now: datetime) -> None:
        following = next((t for t in d.reminders if t > now), None)
        event = self._audit("deadline.reminder", d, now)
        await self._store.update_deadline(
            d.case_id,
            d.rule,
            state="pending",
            next_reminder_at=following,
            escalated_at=None,
            events=[event],
        )
        self.stats.count("deadline_reminders", d.instrument, d.rule)
        log.info("deadline.reminder", case_id=d.case_id, rule=d.rule, owed_by=d.owed_by)

    async def _escalate(self, d: StoredDeadline, now: datetime) -> None:
        if d.escalation == "lapse" and await self._lapse(d, now):
            return
        found = await self._store.get_case(d.case_id)
        we_owe = found is not None and role_of(found[0], self._participant) == d.owed_by
        event = self._audit("deadline.missed", d, now, escalation=d.escalation, we_owe=we_owe)
        await self._store.update_deadline(
            d.case_id,
            d.rule,
            state="missed",
            next_reminder_at=None,
            escalated_at=now,
            events=[event],
        )
        self.stats.count("deadlines_missed", d.instrument, d.rule)
        log.warning(
            "alert.deadline_missed",
            case_id=d.case_id,
            rule=d.rule,
            owed_by=d.owed_by,
            escalation=d.escalation,
        )
        await self._alert(
            {
                "alert": "deadline_missed",
                "participant": self._participant,
                "case": d.case_id,
                "instrument": d.instrument,
                "rule": d.rule,
                "step": d.step,
                "article": d.article,
                "owed_by": d.owed_by,
                "we_owe": we_owe,
                "escalation": d.escalation,
                "priority": d.priority,
                "due_at": d.due_at.isoformat(),
                "raised_at": now.isoformat(),
            }
        )

    async def _lapse(self, d: StoredDeadline, now: datetime) -> bool:
        """Record that a period ran out; return False when the case cannot take it."""
        found = await self._store.get_case(d.case_id)
        if found is None:
            return False
        record, events = found
        try:
            plan = plan_event(
                record,
                history_of(events),
                Event.lapsed(d.rule, now),
                case_id=d.case_id,
                message_id=None,
                peer=None,
                ack_targets=self._ack_targets,
            )
        except CaseError as exc:
            log.error("deadline.lapse_refused", case_id=d.case_id, rule=d.rule, code=exc.code)
            return False
        except ValueError:
            log.error("deadline.lapse_refused", case_id=d.case_id, rule=d.rule, code="E_STATE")
            return False
        lapsed = self._audit("deadline.lapsed", d, now, state=plan.change.record.state)
        await self._store.record_case_change(plan.change, [lapsed, *plan.audit])
        self.stats.count("deadlines_lapsed", d.instrument, d.rule)
        log.info("deadline.lapsed", case_id=d.case_id, rule=d.rule)
        return True

    @staticmethod
    def _audit(name: str, d: StoredDeadline, now: datetime, **extra: Any) -> AuditEvent:
        details: dict[str, str | int | bool | None] = {
            "rule": d.rule,
            "step": d.step,
            "owed_by": d.owed_by,
            "due_at": d.due_at.isoformat(),
        }
        details.update(extra)
        return AuditEvent(event=name, at=now, case_id=d.case_id, details=details)
