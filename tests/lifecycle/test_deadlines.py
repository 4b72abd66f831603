"""Due dates for every instrument, on a simulated clock (fixed datetimes, T0 + delta).

Each test replays a case history and asserts the deadlines the rules table gives it:
start, due, state and the act that met it, as at an explicit ``now``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from broker.errors import BrokerError
from broker.lifecycle import (
    Deadline,
    Event,
    Priority,
    check_event,
    check_extension,
    deadlines,
)
from tests.lifecycle import at, make

H = timedelta(hours=1)
D = timedelta(days=1)


def _history(instrument: str, names: list[tuple[str, Any]]) -> list[Event]:
    history = []
    for name, value in names:
        when, extra = value if isinstance(value, tuple) else (value, {})
        history.append(make(instrument, name, when, **extra))
    return history


def _by_rule(
    instrument: str, names: list[tuple[str, Any]], *, priority: Priority = "normal", **options: Any
) -> dict[str, Deadline]:
    """Replay (event name, time or (time, extra members)) pairs; return deadlines by rule."""
    history = _history(instrument, names)
    found = deadlines(instrument, priority, history, **options)
    return {d.rule: d for d in found}


def _error(exc: pytest.ExceptionInfo[BrokerError]) -> str:
    return exc.value.code


# -- Budapest Art 29 ---------------------------------------------------------------------


def test_art29_acknowledgement_target_and_preservation() -> None:
    found = _by_rule(
        "coe.art29.preservation",
        [("request", at()), ("ack", at(hours=3)), ("status_preserved", at(days=1))],
        now=at(days=2),
    )
    assert found["bc29.acknowledge"].due_at == at(hours=24)
    assert found["bc29.acknowledge"].state == "met"
    assert found["bc29.acknowledge"].met_at == at(hours=3)
    preserve = found["bc29.preserve"]
    assert (preserve.started_at, preserve.due_at, preserve.state) == (at(1), at(61), "pending")
    assert preserve.kind == "period"
    assert preserve.reminders == (at(31), at(1) + 60 * D * 0.9)
    assert found["bc29.follow_up"].owed_by == "requester"
    assert found["bc29.follow_up"].due_at == at(61)


def test_art29_emergency_target_and_node_override() -> None:
    history = [("request", at())]
    found = _by_rule("coe.art29.preservation", history, priority="emergency", now=at(hours=2))
    assert found["bc29.acknowledge.emergency"].due_at == at(hours=1)
    assert found["bc29.acknowledge.emergency"].state == "missed"
    mine = _by_rule(
        "coe.art29.preservation",
        history,
        priority="emergency",
        now=at(minutes=10),
        ack_targets={"emergency": timedelta(minutes=15), "normal": 2 * H},
    )
    assert mine["bc29.acknowledge.emergency"].due_at == at(minutes=15)
    assert mine["bc29.acknowledge.emergency"].state == "pending"


@pytest.mark.parametrize(
    ("override", "due"),
    [(timedelta(days=90), at(91)), (timedelta(days=30), at(61)), (at(100), at(100))],
    ids=["longer-period", "shorter-is-not-less-than-60", "date"],
)
def test_art29_the_period_is_not_less_than_sixty_days(override: Any, due: Any) -> None:
    found = _by_rule(
        "coe.art29.preservation",
        [("request", at()), ("status_preserved", at(1))],
        overrides={"preservation_period": override},
    )
    assert found["bc29.preserve"].due_at == due


def test_art29_a_later_preserved_until_and_a_grant_extend_it() -> None:
    found = _by_rule(
        "coe.art29.preservation",
        [
            ("request", at()),
            ("status_preserved", (at(1), {"until": at(70)})),
            ("extension_request", at(50)),
            ("extension_grant", (at(51), {"period": "P30D"})),
            ("status_preserved", (at(52), {"until": at(80)})),  # earlier than due: no change
        ],
    )
    assert found["bc29.preserve"].due_at == at(100)
    assert found["bc29.preserve"].extensions == 1


def test_art29_the_mla_request_holds_the_data() -> None:
    found = _by_rule(
        "coe.art29.preservation",
        [("request", at()), ("status_preserved", at(1)), ("status_mla_received_holding", at(40))],
        now=at(200),
    )
    assert found["bc29.preserve"].state == "cancelled"
    assert found["bc29.follow_up"].state == "met"
    assert found["bc29.follow_up"].met_at == at(40)


def test_art29_the_preservation_lapses() -> None:
    names = [("request", at()), ("status_preserved", at(1))]
    history = [make("coe.art29.preservation", n, w) for n, w in names]
    assert check_event(
        "coe.art29.preservation", history, Event.lapsed("bc29.preserve", at(61))
    ) == ("expired")
    found = _by_rule("coe.art29.preservation", [*names, ("preservation_lapsed", at(61))])
    assert found["bc29.preserve"].state == "met"
    assert found["bc29.preserve"].met_at == at(61)
    assert found["bc29.follow_up"].state == "cancelled"  # the case ended at the due instant
    later = _by_rule("coe.art29.preservation", [*names, ("preservation_lapsed", at(62))])
    assert later["bc29.follow_up"].state == "missed"


def test_art29_a_lapse_before_the_due_time_is_e_state() -> None:
    history = _history("coe.art29.preservation", [("request", at()), ("status_preserved", at(1))])
    with pytest.raises(BrokerError) as info:
        check_event("coe.art29.preservation", history, Event.lapsed("bc29.preserve", at(60)))
    assert _error(info) == "E_STATE"


# -- EIO -------------------------------------------------------------------------------------


def test_eio_acknowledge_recognise_execute() -> None:
    found = _by_rule(
        "eu.eio.a",
        [("request", at()), ("eio_b", at(2)), ("status_recognised", at(20))],
        now=at(25),
    )
    assert (found["eio.acknowledge"].due_at, found["eio.acknowledge"].state) == (at(7), "met")
    assert (found["eio.recognise"].due_at, found["eio.recognise"].state) == (at(30), "met")
    assert found["eio.recognise"].met_at == at(20)
    assert (found["eio.execute"].started_at, found["eio.execute"].due_at) == (at(20), at(110))
    assert found["eio.execute"].state == "pending"
    assert "eio.provisional" not in found


def test_eio_missed_and_late() -> None:
    found = _by_rule(
        "eu.eio.a", [("request", at()), ("eio_b", at(8)), ("status_recognised", at(31))]
    )
    assert found["eio.acknowledge"].state == "missed"
    assert found["eio.acknowledge"].met_at == at(8)
    assert found["eio.recognise"].state == "missed"
    assert found["eio.recognise"].met_at == at(31)


def test_eio_recognition_may_be_extended_by_thirty_days_in_total() -> None:
    two = [
        ("request", at()),
        ("status_delay", (at(25), {"until": at(40)})),
        ("extension_notice", (at(35), {"period": "P20D"})),
    ]
    found = _by_rule("eu.eio.a", two)
    assert found["eio.recognise"].due_at == at(60)
    assert found["eio.recognise"].extensions == 2
    history = _history("eu.eio.a", two)
    with pytest.raises(BrokerError) as info:
        check_event("eu.eio.a", history, make("eu.eio.a", "status_delay", at(50), until=at(61)))
    assert _error(info) == "E_EXTENSION"


def test_eio_extension_after_the_time_ran_out_is_e_extension() -> None:
    history = [make("eu.eio.a", "request", at())]
    late = make("eu.eio.a", "extension_notice", at(31), period="P10D")
    with pytest.raises(BrokerError) as info:
        check_extension("eu.eio.a", history, late)
    assert _error(info) == "E_EXTENSION"


def test_eio_execution_extensions_have_no_maximum() -> None:
    found = _by_rule(
        "eu.eio.a",
        [
            ("request", at()),
            ("status_recognised", at(10)),
            ("status_delay", (at(90), {"until": at(200)})),
            ("status_delay", (at(190), {"until": at(300)})),
        ],
    )
    assert found["eio.execute"].due_at == at(300)


def test_eio_forwarding_restarts_recognition() -> None:
    found = _by_rule("eu.eio.a", [("request", at()), ("status_forwarded", at(5))])
    assert (found["eio.recognise"].started_at, found["eio.recognise"].due_at) == (at(5), at(35))


def test_eio_the_orders_date_replaces_the_deadline_but_not_before_its_start() -> None:
    found = _by_rule("eu.eio.a", [("request", at())], overrides={"eio_deadline": at(12)}, now=at(1))
    assert found["eio.recognise"].due_at == at(12)
    past = _by_rule("eu.eio.a", [("request", at())], overrides={"eio_deadline": at(-3)})
    assert past["eio.recognise"].due_at == at()


def test_eio_provisional_measures_within_24_hours() -> None:
    found = _by_rule(
        "eu.eio.a",
        [("request", at()), ("eio_b", at(hours=2)), ("status_in_progress", at(hours=20))],
        facts={"provisional_measures": "requested"},
    )
    assert found["eio.provisional"].due_at == at(hours=24)
    assert found["eio.provisional"].state == "met"  # an ack does not meet it; the status does
    assert found["eio.provisional"].met_at == at(hours=20)


def test_eio_refusal_cancels_what_runs() -> None:
    found = _by_rule(
        "eu.eio.a", [("request", at()), ("status_recognised", at(5)), ("refusal", at(6))]
    )
    assert found["eio.execute"].state == "cancelled"
    assert found["eio.acknowledge"].state == "cancelled"


def test_eio_annex_c_window() -> None:
    found = _by_rule("eu.eio.c", [("request", at())], now=at(hours=97))
    assert found["eio_c.object"].due_at == at(hours=96)
    assert found["eio_c.object"].state == "met"  # a window that ran its course
    objected = _by_rule("eu.eio.c", [("request", at()), ("refusal", at(hours=50))])
    assert objected["eio_c.object"].met_at == at(hours=50)
    late = _by_rule("eu.eio.c", [("request", at()), ("refusal", at(hours=100))])
    assert late["eio_c.object"].state == "missed"


# -- EPOC ------------------------------------------------------------------------------------


def test_epoc_ten_days_and_the_enforcing_authoritys_ten_days_from_notification() -> None:
    found = _by_rule(
        "eu.epoc",
        [("request", at()), ("notification", at(hours=5)), ("status_preserving", at(1))],
        now=at(2),
    )
    assert found["epoc.produce"].due_at == at(10)
    assert found["epoc.ea_grounds"].owed_by == "notified"
    assert found["epoc.ea_grounds"].due_at == at(10, hours=5)
    assert found["epoc.third_country"].due_at == at(10)


def test_epoc_without_notification_the_authority_has_no_window() -> None:
    found = _by_rule("eu.epoc", [("request", at()), ("response", at(3))])
    assert "epoc.ea_grounds" not in found
    assert found["epoc.produce"].state == "met"


def test_epoc_emergency_eight_hours_and_the_window_outlives_the_transmission() -> None:
    names = [
        ("request", at()),
        ("notification", at()),
        ("response", at(hours=6)),
    ]
    found = _by_rule("eu.epoc", names, priority="emergency", now=at(hours=10))
    assert (found["epoc.produce.emergency"].due_at, found["epoc.produce.emergency"].state) == (
        at(hours=8),
        "met",
    )
    window = found["epoc.ea_grounds.emergency"]
    assert (window.due_at, window.state) == (at(hours=96), "pending")
    objected = _by_rule("eu.epoc", [*names, ("ea_refusal", at(hours=50))], priority="emergency")
    assert objected["epoc.ea_grounds.emergency"].state == "met"


def test_epoc_clarification_stops_the_clock() -> None:
    names = [("request", at()), ("inability", at(2)), ("clarification", at(5))]
    found = _by_rule("eu.epoc", names)
    assert found["epoc.produce"].due_at == at(13)
    paused = _by_rule("eu.epoc", names[:2], now=at(4))
    assert paused["epoc.produce"].state == "paused"
    assert paused["epoc.produce"].due_at == at(12)  # as if resumed now


def test_epoc_a_question_that_does_not_suspend_leaves_the_clock_running() -> None:
    found = _by_rule(
        "eu.epoc",
        [
            ("request", at()),
            ("clarification_request", (at(2), {"clock_suspended": False})),
            ("clarification", at(5)),
        ],
    )
    assert found["epoc.produce"].due_at == at(10)


# -- EPOC-PR ---------------------------------------------------------------------------------


def test_epoc_pr_sixty_days_once_thirty_more() -> None:
    found = _by_rule(
        "eu.epoc_pr",
        [
            ("request", at()),
            ("status_preserving", at(1)),
            ("extension", (at(50), {"period": "P30D"})),
        ],
    )
    assert found["epoc_pr.preserve"].due_at == at(90)
    assert found["epoc_pr.confirm"].due_at == at(90)
    assert found["epoc_pr.preserve"].extensions == 1


@pytest.mark.parametrize(
    ("extra", "when"),
    [
        ({"period": "P30D"}, at(55)),  # a second extension
        ({"period": "P31D"}, None),  # longer than 30 days
        ({"period": "P1M"}, None),  # a month has no fixed length
    ],
    ids=["twice", "too-long", "months"],
)
def test_epoc_pr_extension_beyond_the_law(extra: dict[str, str], when: Any) -> None:
    history = [make("eu.epoc_pr", "request", at())]
    if when is not None:
        history.append(make("eu.epoc_pr", "extension", at(50), period="P30D"))
    event = make("eu.epoc_pr", "extension", when or at(50), **extra)
    with pytest.raises(BrokerError) as info:
        check_extension("eu.epoc_pr", history, event)
    assert _error(info) == "E_EXTENSION"


def test_epoc_pr_extension_after_sixty_days_is_e_extension() -> None:
    history = [make("eu.epoc_pr", "request", at())]
    with pytest.raises(BrokerError) as info:
        check_event("eu.epoc_pr", history, make("eu.epoc_pr", "extension", at(61)))
    assert _error(info) == "E_EXTENSION"


def test_epoc_pr_an_extension_without_a_period_takes_the_laws() -> None:
    history = [make("eu.epoc_pr", "request", at())]
    extended = check_extension("eu.epoc_pr", history, make("eu.epoc_pr", "extension", at(10)))
    assert {d.rule: d.due_at for d in extended} == {
        "epoc_pr.preserve": at(90),
        "epoc_pr.confirm": at(90),
    }


def test_epoc_pr_confirmation_holds_and_lapse_ceases() -> None:
    held = _by_rule("eu.epoc_pr", [("request", at()), ("confirmation", at(40))], now=at(300))
    assert held["epoc_pr.preserve"].state == "cancelled"
    assert held["epoc_pr.confirm"].state == "met"
    history = [make("eu.epoc_pr", "request", at())]
    assert check_event("eu.epoc_pr", history, Event.lapsed("epoc_pr.preserve", at(60))) == (
        "ceased"
    )


# -- CETS 224 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_frame", "due"),
    [(None, at(30)), (timedelta(days=45), at(45)), (timedelta(days=10), at(30))],
    ids=["thirty-days", "longer-time-frame", "shorter-time-frame"],
)
def test_art7_thirty_days_or_the_orders_time_frame_whichever_is_longer(
    time_frame: timedelta | None, due: Any
) -> None:
    overrides = {} if time_frame is None else {"order_time_frame": time_frame}
    found = _by_rule("coe.p2.art7.subscriber", [("request", at())], overrides=overrides)
    assert found["p2art7.disclose"].due_at == due
    assert found["p2art7.disclose"].escalation == "refer_art8_or_mla"


def test_art7_will_not_disclose_cancels() -> None:
    found = _by_rule(
        "coe.p2.art7.subscriber", [("request", at()), ("status_will_not_disclose", at(3))]
    )
    assert found["p2art7.disclose"].state == "cancelled"


@pytest.mark.parametrize(("kind", "days"), [("subscriber", 20), ("traffic", 45)])
def test_art8_serve_in_45_days_return_in_20_or_45(kind: str, days: int) -> None:
    found = _by_rule(
        "coe.p2.art8.order",
        [
            ("request", at()),
            ("status_information_complete", at(5)),
            ("status_served_on_provider", at(30)),
        ],
        facts={"data_kind": kind},
    )
    assert found["p2art8.serve"].due_at == at(50)
    assert found["p2art8.serve"].state == "met"
    assert found[f"p2art8.return.{kind}"].due_at == at(30 + days)


def test_art8_needs_the_data_kind() -> None:
    with pytest.raises(ValueError, match="data_kind"):
        _by_rule("coe.p2.art8.order", [("request", at())])


@pytest.mark.parametrize("instrument", ["coe.p2.art9.emergency", "coe.p2.art10.emergency_mla"])
def test_art9_art10_rapidly_expedited_is_the_nodes_target(instrument: str) -> None:
    found = deadlines(instrument, "emergency", [make(instrument, "request", at())])
    assert [(d.step, d.due_at) for d in found] == [("acknowledge", at(hours=1))]
    tuned = deadlines(
        instrument,
        "emergency",
        [make(instrument, "request", at())],
        ack_targets={"emergency": timedelta(minutes=30)},
    )
    assert tuned[0].due_at == at(minutes=30)


def test_art6_only_the_requests_time_frame() -> None:
    assert _by_rule("coe.p2.art6.domain", [("request", at())]) == {}
    found = _by_rule("coe.p2.art6.domain", [("request", at())], overrides={"disclose_by": at(14)})
    assert found["p2art6.disclose"].due_at == at(14)


@pytest.mark.parametrize("instrument", ["mla.request", "coe.art31.mla"])
def test_mla_only_the_date_wished_and_open_ended_extensions(instrument: str) -> None:
    rule = "mla.respond" if instrument == "mla.request" else "bc31.respond"
    found = _by_rule(
        instrument,
        [("request", at()), ("extension_notice", (at(50), {"until": at(120)}))],
        overrides={"response_wished_by": at(60)},
    )
    assert found[rule].due_at == at(120)


# -- arguments and errors --------------------------------------------------------------------


def test_an_empty_history_has_no_deadlines() -> None:
    assert deadlines("eu.eio.a", "normal", []) == []


def test_deadlines_are_sorted_by_due_time() -> None:
    found = deadlines(
        "eu.eio.a",
        "normal",
        [make("eu.eio.a", "request", at())],
        facts={"provisional_measures": "requested"},
    )
    assert [d.rule for d in found] == ["eio.provisional", "eio.acknowledge", "eio.recognise"]


@pytest.mark.parametrize(
    "options",
    [
        {"now": at(-1)},
        {"now": at().replace(tzinfo=None)},
        {"overrides": {"order_time_frame": timedelta(days=3)}},
        {"overrides": {"eio_deadline": at().replace(tzinfo=None)}},
        {"overrides": {"eio_deadline": timedelta()}},
        {"ack_targets": {"urgent": H}},
        {"ack_targets": {"normal": -H}},
    ],
    ids=["now-before", "naive-now", "foreign-key", "naive-date", "zero", "priority", "negative"],
)
def test_bad_arguments(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        deadlines("eu.eio.a", "normal", [make("eu.eio.a", "request", at())], **options)


def test_an_unknown_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="priority"):
        deadlines("eu.eio.a", "urgent", [make("eu.eio.a", "request", at())])  # type: ignore[arg-type]


def test_a_lapse_for_a_rule_that_does_not_run_is_e_state() -> None:
    history = [make("eu.epoc_pr", "request", at())]
    with pytest.raises(BrokerError) as info:
        # a rule of another instrument, named by the right event type
        deadlines("eu.epoc_pr", "normal", [*history, Event.lapsed("bc29.preserve", at(61))])
    assert _error(info) == "E_STATE"


def test_check_event_refuses_an_event_older_than_the_history() -> None:
    history = [make("eu.eio.a", "request", at(5))]
    with pytest.raises(BrokerError) as info:
        check_event("eu.eio.a", history, make("eu.eio.a", "eio_b", at(4)))
    assert _error(info) == "E_STATE"


def test_check_extension_refuses_what_extends_nothing() -> None:
    history = [make("eu.eio.a", "request", at())]
    for event in (
        make("eu.eio.a", "eio_b", at(1)),  # not an extension at all
        make("eu.eio.a", "status_delay", at(1), until=at(20)),  # ends before the due time
    ):
        with pytest.raises(BrokerError) as info:
            check_extension("eu.eio.a", history, event)
        assert _error(info) == "E_EXTENSION"


def test_check_extension_returns_the_extended_deadlines() -> None:
    history = [make("eu.eio.a", "request", at())]
    event = make("eu.eio.a", "extension_notice", at(20), period="P2W")
    (extended,) = check_extension("eu.eio.a", history, event)
    assert (extended.rule, extended.due_at, extended.extensions) == ("eio.recognise", at(44), 1)
