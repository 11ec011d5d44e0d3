"""The day's calls as CSV, one row per call, streamed from the database in batches.

The columns are for spreadsheets and scripts (English names, ISO UTC and Jalali Tehran times
side by side); the rows come through a server-side cursor, so the file's size, not the
process's memory, grows with the day.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, func, select

from ivr.clock import iso_utc, jalali
from ivr.reports.figures import CALL, STEP, TICKET, Day, _Query

COLUMNS = (
    "call_id",
    "external_id",
    "channel",
    "province",
    "caller",
    "started_utc",
    "started_tehran",
    "ended_utc",
    "outcome",
    "ended_by",
    "steps",
    "last_node",
    "queue_wait_s",
    "queue_outcome",
    "agent",
    "ticket",
)
BATCH = 2000


def call_rows(engine: Engine, day: date, province: str | None) -> Iterator[list[str]]:
    """The CSV rows (header first), in the order the calls started."""
    yield list(COLUMNS)
    with engine.connect() as connection:
        query = _Query(connection, Day.of(day), province)
        steps = (
            select(
                STEP.c.call_id,
                func.count().label("n"),
                func.max(STEP.c.id).label("last_id"),
            )
            .select_from(STEP.join(CALL, STEP.c.call_id == CALL.c.id))
            .where(query.day_calls())
            .group_by(STEP.c.call_id)
            .subquery()
        )
        last = STEP.alias("last_step")
        statement = (
            select(
                CALL.c.id,
                CALL.c.external_id,
                CALL.c.channel,
                CALL.c.province,
                CALL.c.caller,
                CALL.c.started_at,
                CALL.c.ended_at,
                CALL.c.outcome,
                CALL.c.ended_by,
                func.coalesce(steps.c.n, 0),
                last.c.node,
                CALL.c.queue_wait_s,
                CALL.c.queue_outcome,
                CALL.c.agent,
                TICKET.c.tracking,
            )
            .select_from(
                CALL.outerjoin(steps, steps.c.call_id == CALL.c.id)
                .outerjoin(last, last.c.id == steps.c.last_id)
                .outerjoin(TICKET, TICKET.c.id == CALL.c.ticket_id)
            )
            .where(query.day_calls())
            .order_by(CALL.c.started_at, CALL.c.id)
        )
        result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(
            statement
        )
        for row in result:
            (cid, ext, channel, prov, caller, started, ended, outcome, ended_by, n, node,
             wait, queue_outcome, agent, tracking) = row  # fmt: skip
            yield [
                str(cid),
                ext,
                channel,
                prov or "",
                caller or "",
                iso_utc(started) or "",
                jalali(started),
                iso_utc(ended) or "",
                outcome or "",
                ended_by or "",
                str(n),
                node or "",
                "" if wait is None else f"{wait:.1f}",
                queue_outcome or "",
                agent or "",
                tracking or "",
            ]


def write_calls_csv(engine: Engine, day: date, province: str | None, path: Path) -> int:
    """Write the CSV (UTF-8 with a BOM, so spreadsheets read the Persian); returns the rows."""
    count = -1
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        for count, row in enumerate(call_rows(engine, day, province)):  # noqa: B007
            writer.writerow(row)
    return count
