"""What works on SQLite works on PostgreSQL: migrations step by step, the ticket service, a
call's turns, the CLI.

Every test here runs twice, once per backend (``db_url`` from ``tests/pg.py``).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from ivr_nodes import PROJECT_ROOT, ivr_command, node_env
from sqlalchemy import inspect, text

from ivr.clock import as_aware
from ivr.flow.outcomes import CallEnd, CallOutcome, EventKind, StepOutcome
from ivr.settings import Settings
from ivr.tickets.calls import CallStore, Ending, StepRecord, TurnTaken
from ivr.tickets.db import alembic_config, make_engine, upgrade
from ivr.tickets.service import TicketDraft, TicketNotFound, TicketService
from ivr.tickets.tracking import tracking_from_sequence


def revisions(url: str) -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_every_migration_goes_down_and_up_again(db_url: str) -> None:
    """Each revision on top of the previous one: upgrade, downgrade one step, upgrade again, with
    the schema after the round trip the same as before it."""
    config = alembic_config(db_url)
    steps = revisions(db_url)
    assert steps[0] == "0001"
    for revision in steps:
        command.upgrade(config, revision)
        before = tables(db_url)
        command.downgrade(config, "-1")
        command.upgrade(config, revision)
        assert tables(db_url) == before, f"{revision} does not round-trip"
    command.downgrade(config, "base")
    assert tables(db_url) == {"alembic_version"}


def test_migrations_keep_tickets_on_the_way_up(db_url: str, tmp_path: Path) -> None:
    """Tickets written under the first schema survive every later migration."""
    number = tracking_from_sequence(0)
    steps = revisions(db_url)
    upgrade(db_url, steps[0])
    engine = make_engine(db_url)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO ticket (tracking, channel, province, category, callback_number,"
                    " status, created_at, updated_at, due_at) VALUES (:n, 'web', 'qom',"
                    " 'trade', '09121234567', 'registered', :t, :t, :due)"
                ),
                {"n": number, "t": datetime.now(UTC), "due": datetime.now(UTC) + timedelta(days=3)},
            )
        upgrade(db_url)
        service = TicketService(engine, Settings(storage_dir=tmp_path, database_url=db_url))
        view = service.get(number)
        assert view is not None and view.province == "qom" and view.due_at is not None
    finally:
        engine.dispose()


def test_ticket_service_round_trip(migrated_url: str, tmp_path: Path) -> None:
    engine = make_engine(migrated_url)
    service = TicketService(engine, Settings(storage_dir=tmp_path, database_url=migrated_url))
    try:
        due = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        draft = TicketDraft("asterisk", "qom", "mining", "x", None, "+98912", "09121234567", None)
        created = service.create(draft, due_at=due)
        assert created.tracking is not None and not created.spooled
        service.set_status(created.tracking, "in_review", "agent-1", "called back")
        service.refer(created.tracking, "mining", "agent-1")
        view = service.get(created.tracking)
        assert view is not None
        assert view.status == "referred" and view.agency == "mining"
        assert view.due_at == due  # aware UTC in, the same instant out, to the microsecond
        assert view.created_at.tzinfo is not None
        kinds = [(line.kind, line.new_value) for line in view.history]
        assert kinds == [
            ("created", "registered"),
            ("status", "in_review"),
            ("agency", "mining"),
            ("status", "referred"),
        ]
        assert [v.tracking for v in service.latest()] == [created.tracking]
        with pytest.raises(TicketNotFound):
            service.set_status(tracking_from_sequence(999), "closed", "agent-1")
    finally:
        engine.dispose()


def test_a_turns_save_is_all_or_nothing_on_each_backend(migrated_url: str, tmp_path: Path) -> None:
    """PostgreSQL saves a turn as one statement (the update and its steps), SQLite in one
    transaction: either way a turn already answered saves nothing, steps and all."""
    engine = make_engine(migrated_url)
    service = TicketService(engine, Settings(storage_dir=tmp_path, database_url=migrated_url))
    store = CallStore(engine)
    at = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    pressed = StepRecord("main", EventKind.DIGITS, "1", StepOutcome.OK, at)
    entered = StepRecord("new.category", EventKind.DIGITS, None, StepOutcome.REPEAT, at)
    hung_up = StepRecord("new.category", EventKind.HANGUP, None, StepOutcome.OK, at)
    try:
        call_id = store.open("twilio", "CAsave", "+989121234567", "124", province="qom")
        assert store.open("twilio", "CAsave", None, None) == call_id  # a retried /voice

        store.save_turn(call_id, '{"node": "a"}', [pressed, entered], turn=0, reply="<R1/>",
                        reply_token="token-1")  # fmt: skip
        with pytest.raises(TurnTaken):  # a retry of turn 0 that lost the race
            store.save_turn(call_id, '{"node": "b"}', [pressed], turn=0, reply="<R2/>")
        with pytest.raises(LookupError):
            store.save_turn(call_id + 1000, "{}", [pressed], turn=0, reply="<R/>")

        draft = TicketDraft("twilio", "qom", "industry", None, None, None, "09121234567", None)
        tracking = service.create(draft).tracking
        assert tracking is not None
        ending = Ending(CallOutcome.TICKET, CallEnd.CALLER, tracking)
        store.save_turn(call_id, '{"node": "c"}', [hung_up], ending=ending, turn=1, reply="<R3/>")
        store.save_turn(call_id, '{"node": "d"}', [])  # a crash's save: no step, no turn

        with engine.connect() as connection:
            call = connection.execute(
                text("SELECT state, turn, reply, reply_token, outcome, ended_by, ticket_id, "
                     "ended_at FROM call WHERE id = :id"), {"id": call_id},
            ).one()  # fmt: skip
            steps = connection.execute(
                text("SELECT node, event, key, outcome, at FROM call_step WHERE call_id = :id "
                     "ORDER BY id"), {"id": call_id},
            ).all()  # fmt: skip
            ticket_id = connection.execute(
                text("SELECT id FROM ticket WHERE tracking = :t"), {"t": tracking}
            ).scalar()
        assert call[:6] == ('{"node": "d"}', 2, "<R3/>", None, "ticket", "caller")
        assert call.ticket_id == ticket_id and call.ended_at is not None
        assert [tuple(step[:4]) for step in steps] == [
            ("main", "digits", "1", "ok"),
            ("new.category", "digits", None, "repeat"),
            ("new.category", "hangup", None, "ok"),
        ]
        stored_at = steps[0].at
        if isinstance(stored_at, str):  # SQLite hands its text back as written
            stored_at = datetime.fromisoformat(stored_at)
        assert as_aware(stored_at) == at
    finally:
        engine.dispose()


def test_a_remembered_turn_reads_nothing_and_loses_no_other_nodes_save(
    migrated_url: str,
) -> None:
    """The node that gave a call's last answer takes its next turn from memory, not from
    the database (a row changed behind its back shows it). The save then checks the state
    too, so what another node saved meanwhile without a turn (a hangup) is never written
    over; another node, or a request for any other turn, reads the database."""
    engine = make_engine(migrated_url)
    node, other = CallStore(engine), CallStore(engine)
    pressed = StepRecord("main", EventKind.DIGITS, "1", StepOutcome.OK)
    try:
        call_id = node.open("twilio", "CAmine", "+989121234567", "124", province="qom")
        node.save_turn(call_id, '{"node": "a"}', [pressed], turn=0, reply="<R1/>")
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE call SET reply = '<behind/>' WHERE id = :id"), {"id": call_id}
            )

        mine = node.load("CAmine", at_turn=1)
        assert mine is not None and mine.remembered
        assert (mine.state, mine.turn, mine.reply) == ('{"node": "a"}', 1, "<R1/>")
        for read in (node.load("CAmine", at_turn=0), node.load("CAmine"),
                     other.load("CAmine", at_turn=1)):  # fmt: skip
            assert read is not None and not read.remembered and read.reply == "<behind/>"

        # Another node saves the hangup (no turn); this node's remembered turn 1 then loses.
        other.save_turn(call_id, '{"node": "ended"}', [pressed])
        with pytest.raises(TurnTaken):
            node.save_turn(call_id, '{"node": "b"}', [pressed], turn=1, reply="<R2/>",
                           was=mine.state)  # fmt: skip
        # Unchanged since, it wins as any turn does.
        node.save_turn(call_id, '{"node": "c"}', [pressed], turn=1, reply="<R3/>",
                       was='{"node": "ended"}')  # fmt: skip
        with engine.connect() as connection:
            call = connection.execute(
                text("SELECT state, turn, reply FROM call WHERE id = :id"), {"id": call_id}
            ).one()
            steps = connection.execute(
                text("SELECT count(*) FROM call_step WHERE call_id = :id"), {"id": call_id}
            ).scalar()
        assert tuple(call) == ('{"node": "c"}', 2, "<R3/>") and steps == 3
    finally:
        engine.dispose()


def test_cli_on_each_backend(db_url: str, tmp_path: Path) -> None:
    """``ivr db upgrade``, a call from the terminal phone, ``ivr tickets list`` on the same URL."""
    env = node_env(tmp_path / "storage", db_url)

    def ivr(*args: str) -> str:
        done = subprocess.run(
            [ivr_command(), *args],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"ivr {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    assert ivr("db", "upgrade").startswith("created the database schema")
    assert ivr("db", "upgrade").startswith("the database is already current")
    said = ivr("call", "--keys", "1 4 2 1 # 1")
    tracking = said.strip().rsplit(" ", 1)[-1]
    listed = json.loads(ivr("tickets", "list", "--json"))
    assert [t["tracking"] for t in listed] == [tracking]
    assert listed[0]["category"] == "consumer"
