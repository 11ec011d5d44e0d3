"""The report's figures on the hand-computed fixture day, one by one, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import report_day
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from report_day import DAY, at

from ivr.reports.figures import Figures, NodeFigures, compute, provinces_of_day
from ivr.tickets.db import make_engine


@pytest.fixture
def figures_of(migrated_url: str):  # noqa: F811  # type: ignore[no-untyped-def]
    engine = make_engine(migrated_url)
    report_day.load(engine)
    yield lambda province: compute(engine, DAY, province)
    engine.dispose()


def test_calls_of_one_province_by_channel_hour_and_repeat(figures_of) -> None:  # type: ignore[no-untyped-def]
    qom: Figures = figures_of("qom")
    # 00:01 and 23:59 Tehran are in; 23:59 the day before and 00:01 the day after are not.
    assert qom.received == 7
    assert qom.by_channel == {"asterisk": 5, "twilio": 2}
    assert qom.by_hour[0] == 1 and qom.by_hour[9] == 2 and qom.by_hour[10] == 3
    assert qom.by_hour[23] == 1 and sum(qom.by_hour) == 7
    assert qom.peak_hour == 10
    assert (qom.repeat_callers, qom.repeat_calls) == (1, 2)
    assert qom.contained == 1 and qom.containment == pytest.approx(1 / 7)


def test_menu_nodes_reach_drop_off_failures_and_transfers(figures_of) -> None:  # type: ignore[no-untyped-def]
    nodes = {n.node: n for n in figures_of("qom").nodes}
    assert nodes["main"] == NodeFigures("main", 7, 1, 0, 2, 1)
    assert nodes["new.category"] == NodeFigures("new.category", 2, 1, 1, 0, 0)
    assert nodes["new.record"] == NodeFigures("new.record", 1, 0, 0, 0, 0)
    assert nodes["main"].drop_rate == pytest.approx(1 / 7)
    assert nodes["new.category"].drop_rate == pytest.approx(0.5)
    assert set(nodes) == {"main", "new.category", "new.record"}


def test_queue_figures_and_agents(figures_of) -> None:  # type: ignore[no-untyped-def]
    qom: Figures = figures_of("qom")
    assert (qom.offered, qom.answered, qom.abandoned, qom.short_abandoned) == (4, 2, 2, 1)
    assert qom.queue_gave_up == 0
    assert qom.abandon_rate == pytest.approx(0.5)
    assert qom.answered_in_threshold == 1 and qom.service_level == pytest.approx(0.5)
    assert qom.average_answer_s == pytest.approx(18.5)
    assert qom.longest_wait_s == pytest.approx(40)
    assert qom.average_talk_s == pytest.approx(300)
    assert qom.wait_buckets == [1, 1, 1, 1, 0, 0, 0]
    agents = {a.agent: a for a in qom.agents}
    assert set(agents) == {"agent-a", "agent-b"}
    assert (agents["agent-a"].calls, agents["agent-a"].talk_s) == (1, pytest.approx(300))
    assert (agents["agent-b"].calls, agents["agent-b"].talk_s) == (1, None)
    assert agents["agent-a"].tickets == 2  # tickets 1 and 4 changed by agent-a that day


def test_callbacks_requested_placed_reached_failed(figures_of) -> None:  # type: ignore[no-untyped-def]
    qom: Figures = figures_of("qom")
    assert qom.callbacks_requested == 3  # the one asked at 23:50 the day before is not
    assert qom.callbacks_placed == 2  # the withdrawn try never rang the caller
    assert (qom.callbacks_reached, qom.callbacks_failed) == (1, 1)
    assert qom.callback_delay_s == pytest.approx(1800)
    national: Figures = figures_of(None)
    assert (national.callbacks_requested, national.callbacks_placed) == (4, 2)


def test_tickets_as_the_day_ended(figures_of) -> None:  # type: ignore[no-untyped-def]
    qom: Figures = figures_of("qom")
    assert qom.tickets_new == 2
    assert qom.new_by_category == {"consumer": 1, "trade": 1}
    assert qom.new_by_channel == {"asterisk": 1, "twilio": 1}
    assert qom.new_by_place == {"": 1, "shokouhieh": 1}
    assert (qom.tickets_answered, qom.tickets_closed) == (1, 1)
    # Ticket 8 was answered after the day: still open at its end.
    assert qom.tickets_open == 6
    assert qom.overdue == 3
    assert qom.escalated == {1: 1, 2: 1}
    assert (qom.due, qom.due_answered_in_time) == (2, 1)
    assert qom.sla_compliance == pytest.approx(0.5)
    assert [(a.agency, a.referred, a.answered, a.late) for a in qom.agencies] == [
        ("tazirat", 1, 1, 1)
    ]
    assert [t.tracking for t in qom.oldest_overdue] == ["00000003", "00000002", "00000005"]
    assert qom.oldest_overdue[0].escalation_level == 2
    assert qom.oldest_overdue[2].due_at.astimezone(at(0).tzinfo) == at(15, 0)


def test_national_adds_the_provinces(figures_of) -> None:  # type: ignore[no-untyped-def]
    national: Figures = figures_of(None)
    tehran: Figures = figures_of("tehran")
    assert tehran.received == 1 and tehran.contained == 1
    assert national.received == 8
    assert national.by_channel == {"asterisk": 5, "twilio": 3}
    assert (national.repeat_callers, national.repeat_calls) == (1, 3)
    assert national.contained == 2
    assert national.tickets_new == 3
    assert national.tickets_open == 8 and national.overdue == 4
    assert national.escalated == {1: 2, 2: 1}
    assert [(a.agency, a.referred, a.answered, a.late) for a in national.agencies] == [
        ("edare", 0, 0, 1),
        ("tazirat", 1, 1, 1),
    ]


def test_the_same_day_gives_the_same_figures(figures_of) -> None:  # type: ignore[no-untyped-def]
    first, second = figures_of(None), figures_of(None)
    first.computed_at = second.computed_at
    assert first == second


def test_provinces_of_the_day(migrated_url: str) -> None:  # noqa: F811
    engine = make_engine(migrated_url)
    report_day.load(engine)
    assert provinces_of_day(engine, DAY) == ["qom", "tehran"]
    engine.dispose()
