"""A fixture day for the reports, 1405/09/06 (2026-11-27), with figures worked out by hand.

Two provinces (qom, tehran); calls at both edges of the Tehran day (00:01 and 23:59 inside,
23:59 the day before and 00:01 the day after outside); a repeat caller; queue calls answered,
abandoned, abandoned within 5 s; callbacks reached, failed, never placed; tickets overdue,
escalated to levels 1 and 2, answered in and out of time, closed, and one answered only after
the day (so "open at the day's end" must read the history, not the current status).

Rows are written directly: the fixture needs exact times, which the owners stamp with now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import jdatetime
from sqlalchemy import Engine

from ivr.callbacks.models import Callback, CallbackAttempt
from ivr.clock import TEHRAN
from ivr.tickets.models import Call, CallStep, Ticket, TicketEvent

DAY = jdatetime.date(1405, 9, 6).togregorian()
assert date(2026, 11, 27) == DAY


def at(hour: int, minute: int = 0, second: int = 0, days: int = 0) -> datetime:
    """UTC of ``hour:minute`` Tehran time on DAY (+ ``days``)."""
    local = datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=TEHRAN)
    return (local + timedelta(days=days)).astimezone(UTC)


Steps = list[tuple[str, str, str]]  # (node, event, outcome)

START: Steps = [("main", "call_started", "started")]


def _call(
    n: int,
    province: str,
    channel: str,
    caller: str,
    started: datetime,
    steps: Steps,
    *,
    outcome: str,
    ended_by: str,
    queue: tuple[float, str, str | None] | None = None,
    talk_s: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row: dict[str, Any] = {
        "id": n,
        "channel": channel,
        "external_id": f"call-{n}",
        "caller": caller,
        "called": "124",
        "province": province,
        "started_at": started,
        "ended_at": started + timedelta(seconds=40),
        "outcome": outcome,
        "ended_by": ended_by,
        "state": "{}",
        "turn": len(steps),
        "queue": None,
        "queue_joined_at": None,
        "queue_left_at": None,
        "queue_wait_s": None,
        "queue_outcome": None,
        "agent": None,
        "queue_talk_s": None,
    }
    if queue is not None:
        wait, queue_outcome, agent = queue
        joined = started + timedelta(seconds=30)
        left = joined + timedelta(seconds=wait)
        row.update(
            queue="124",
            queue_joined_at=joined,
            queue_left_at=left,
            queue_wait_s=wait,
            queue_outcome=queue_outcome,
            agent=agent,
            ended_at=joined,  # the IVR's part ended at the transfer
            queue_talk_s=talk_s,  # AgentComplete's TalkTime, when the conversation ended
        )
    step_rows = [
        {
            "call_id": n,
            "at": started + timedelta(seconds=i),
            "node": node,
            "event": event,
            "outcome": step_outcome,
        }
        for i, (node, event, step_outcome) in enumerate(steps)
    ]
    return row, step_rows


def _calls() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    ok = ("main", "digits", "ok")
    return [
        # qom, inside the day
        _call(
            1,
            "qom",
            "twilio",
            "09120000001",
            at(9, 0),
            [
                *START,
                ok,
                ("new.category", "digits", "invalid"),
                ("new.category", "digits", "ok"),
                ("new.record", "recording_finished", "ok"),
            ],
            outcome="ticket",
            ended_by="ivr",
        ),
        _call(
            2,
            "qom",
            "asterisk",
            "09120000001",
            at(9, 30),
            [
                *START,
                ("main", "timeout", "timeout"),
                ("main", "timeout", "timeout"),
                ("main", "timeout", "transfer_after_failures"),
            ],
            outcome="transferred",
            ended_by="transferred",
            queue=(12, "connected", "agent-a"),
            talk_s=300,
        ),
        _call(
            3,
            "qom",
            "asterisk",
            "09120000002",
            at(10, 5),
            [*START, ("main", "digits", "transfer_requested")],
            outcome="transferred",
            ended_by="transferred",
            queue=(3, "abandoned", None),
        ),
        _call(
            4,
            "qom",
            "twilio",
            "09120000003",
            at(10, 40),
            [*START, ok, ("new.category", "hangup", "hangup")],
            outcome="abandoned",
            ended_by="caller",
        ),
        _call(
            5,
            "qom",
            "asterisk",
            "09120000004",
            at(23, 59),
            [*START, ("main", "hangup", "hangup")],
            outcome="abandoned",
            ended_by="caller",
        ),
        _call(
            7,
            "qom",
            "asterisk",
            "09120000006",
            at(0, 1),
            [*START, ("main", "digits", "transfer_requested")],
            outcome="transferred",
            ended_by="transferred",
            queue=(40, "abandoned", None),
        ),
        _call(
            8,
            "qom",
            "asterisk",
            "09120000007",
            at(10, 10),
            [*START, ("main", "digits", "transfer_requested")],
            outcome="transferred",
            ended_by="transferred",
            queue=(25, "connected", "agent-b"),
        ),
        # qom, outside the day: 23:59 the day before, 00:01 the day after
        _call(
            6,
            "qom",
            "asterisk",
            "09120000005",
            at(23, 59, days=-1),
            [*START, ("main", "hangup", "hangup")],
            outcome="abandoned",
            ended_by="caller",
        ),
        _call(
            9,
            "qom",
            "twilio",
            "09120000001",
            at(0, 1, days=1),
            [*START, ("main", "hangup", "hangup")],
            outcome="abandoned",
            ended_by="caller",
        ),
        # tehran
        _call(
            11,
            "tehran",
            "twilio",
            "09120000001",
            at(11, 0),
            [*START, ok, ("recall.filed", "callback_filed", "callback_filed")],
            outcome="callback",
            ended_by="ivr",
        ),
        _call(
            12,
            "tehran",
            "twilio",
            "09120000008",
            at(0, 1, days=1),
            [*START, ("main", "hangup", "hangup")],
            outcome="abandoned",
            ended_by="caller",
        ),
    ]


def _callbacks() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def callback(n: int, province: str, requested: datetime, status: str) -> dict[str, Any]:
        return {
            "id": n,
            "number": f"0912100000{n}",
            "active_number": None,
            "province": province,
            "status": status,
            "requested_at": requested,
            "entered_at": requested,
            "attempts": 0,
            "next_attempt_at": requested,
            "updated_at": requested,
        }

    def attempt(cb: int, slot: int, started: datetime, outcome: str, **more: Any) -> dict[str, Any]:
        return {
            "callback_id": cb,
            "slot": slot,
            "node": "n1",
            "dialer": "asterisk",
            "started_at": started,
            "ended_at": started + timedelta(seconds=30),
            "outcome": outcome,
            "connected_at": None,
            **more,
        }

    callbacks = [
        callback(1, "qom", at(10, 0), "done"),
        callback(2, "qom", at(12, 0), "failed"),
        callback(3, "qom", at(13, 0), "pending"),
        callback(4, "qom", at(23, 50, days=-1), "done"),
        callback(5, "tehran", at(11, 0), "pending"),
    ]
    attempts = [
        attempt(1, 1, at(10, 5), "no_answer"),
        attempt(1, 2, at(10, 29), "answered", connected_at=at(10, 30)),
        attempt(2, 1, at(12, 5), "no_answer"),
        attempt(2, 2, at(12, 20), "busy"),
        attempt(2, 3, at(12, 40), "no_answer"),
        attempt(3, 1, at(13, 5), "withdrawn"),
        attempt(4, 1, at(9, 0), "answered", connected_at=at(9, 1)),
    ]
    return callbacks, attempts


def _tickets() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tickets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    def ticket(
        n: int,
        province: str,
        created: datetime,
        due: datetime,
        status: str,
        *,
        category: str = "trade",
        channel: str = "twilio",
        place: str | None = None,
        agency: str | None = None,
        level: int = 0,
    ) -> None:
        tickets.append(
            {
                "id": n,
                "tracking": f"{n:08d}",
                "channel": channel,
                "province": province,
                "category": category,
                "place": place,
                "callback_number": "09121234567",
                "status": status,
                "agency": agency,
                "created_at": created,
                "updated_at": created,
                "due_at": due,
                "escalation_level": level,
            }
        )
        event(n, created, "created", None, status if status == "registered" else "registered")

    def event(
        n: int, when: datetime, kind: str, old: str | None, new: str | None, actor: str = "system"
    ) -> None:
        events.append(
            {
                "ticket_id": n,
                "at": when,
                "kind": kind,
                "old_value": old,
                "new_value": new,
                "actor": actor,
            }
        )

    # qom
    ticket(1, "qom", at(9, 5), at(16, days=5), "in_review", place="shokouhieh")
    event(1, at(12, 0), "status", "registered", "in_review", "agent-a")
    ticket(
        2,
        "qom",
        at(9, days=-10),
        at(16, days=-2),
        "referred",
        category="consumer",
        agency="tazirat",
        level=1,
    )
    event(2, at(10, days=-9), "agency", None, "tazirat", "agent-a")
    event(2, at(10, days=-9), "status", "registered", "referred", "agent-a")
    event(2, at(9, days=-1), "escalated", "0", "1")
    ticket(3, "qom", at(9, days=-20), at(16, days=-5), "registered", level=2)
    event(3, at(9, days=-4), "escalated", "0", "1")
    event(3, at(8, 0), "escalated", "1", "2")
    ticket(4, "qom", at(9, days=-3), at(14, 0), "answered", agency="tazirat")
    event(4, at(10, 0), "agency", None, "tazirat", "agent-a")
    event(4, at(10, 0), "status", "registered", "referred", "agent-a")
    event(4, at(13, 0), "status", "referred", "answered", "agent-a")
    ticket(5, "qom", at(9, days=-3), at(15, 0), "registered")
    ticket(6, "qom", at(9, days=-30), at(16, days=-25), "closed")
    event(6, at(16, 0), "status", "registered", "closed", "supervisor-x")
    ticket(7, "qom", at(0, 1, days=1), at(16, days=6), "registered")
    ticket(8, "qom", at(9, days=-2), at(16, days=3), "answered")
    event(8, at(1, 0, days=1), "status", "registered", "answered", "agent-a")
    ticket(
        9, "qom", at(0, 1), at(16, days=5), "registered", category="consumer", channel="asterisk"
    )
    # tehran
    ticket(21, "tehran", at(11, 5), at(16, days=5), "registered")
    ticket(22, "tehran", at(9, days=-10), at(16, days=-1), "referred", agency="edare", level=1)
    event(22, at(10, days=-9), "agency", None, "edare", "agent-t")
    event(22, at(10, days=-9), "status", "registered", "referred", "agent-t")
    event(22, at(9, 0), "escalated", "0", "1")
    return tickets, events


def load(engine: Engine) -> None:
    """Write the fixture day into a migrated database."""
    calls = _calls()
    callbacks, attempts = _callbacks()
    tickets, events = _tickets()
    with engine.begin() as c:
        c.execute(Ticket.__table__.insert(), tickets)  # type: ignore[attr-defined]
        c.execute(TicketEvent.__table__.insert(), events)  # type: ignore[attr-defined]
        c.execute(Call.__table__.insert(), [row for row, _ in calls])  # type: ignore[attr-defined]
        c.execute(
            CallStep.__table__.insert(),  # type: ignore[attr-defined]
            [step for _, steps in calls for step in steps],
        )
        c.execute(Callback.__table__.insert(), callbacks)  # type: ignore[attr-defined]
        c.execute(CallbackAttempt.__table__.insert(), attempts)  # type: ignore[attr-defined]
        if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("ticket", "ticket_event", "call", "call_step", "callback"):
                c.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
