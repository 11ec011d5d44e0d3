"""The ticket service on a real SQLite file: round trips, history, hi/lo numbers, the spool."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from ivr.flow.outcomes import CallEnd, CallOutcome, EventKind, StepOutcome
from ivr.services import build_services, warm_up
from ivr.settings import Settings
from ivr.tickets.allocator import TrackingAllocator
from ivr.tickets.calls import CallStore, StepRecord
from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.models import Call, CallStep, Status, Ticket, TrackingBlock
from ivr.tickets.render import jalali, ticket_detail, ticket_json, ticket_table
from ivr.tickets.service import CreatedTicket, TicketDraft, TicketNotFound, TicketService
from ivr.tickets.tracking import is_valid_tracking


def draft(callback: str = "09121234567", **changes: object) -> TicketDraft:
    fields: dict[str, object] = {
        "channel": "twilio",
        "province": "qom",
        "category": "industry",
        "place": "shokouhieh",
        "recording_path": "recordings/CA1.wav",
        "caller_number": "+989121234567",
        "callback_number": callback,
        "national_id": "0012345678",
    }
    fields.update(changes)
    return TicketDraft(**fields)  # type: ignore[arg-type]


class Database:
    """A SQLite file that a test can take away (as if the server were down) and give back."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "db"
        self.url = f"sqlite:///{self.dir / 'ivr.db'}"
        upgrade(self.url)

    def service(self, root: Path, node: str = "node1", **kwargs: object) -> TicketService:
        settings = Settings(storage_dir=root / node, database_url=self.url, node_name=node)
        return TicketService(make_engine(self.url), settings, retry_delay=0.01, **kwargs)  # type: ignore[arg-type]

    def take_away(self, *services: TicketService) -> None:
        for s in services:
            s.engine.dispose()  # pooled connections would still reach the moved file
        self.dir.rename(self.dir.with_name("db-away"))

    def give_back(self) -> None:
        self.dir.with_name("db-away").rename(self.dir)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path)


@pytest.fixture
def service(db: Database, tmp_path: Path) -> TicketService:
    return db.service(tmp_path)


def test_create_get_round_trip(service: TicketService) -> None:
    due = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    created = service.create(draft(), due_at=due)
    assert not created.spooled
    assert created.tracking is not None and is_valid_tracking(created.tracking)
    assert len(created.tracking) == 10

    view = service.get(created.tracking)
    assert view is not None
    assert (view.tracking, view.channel, view.province, view.category, view.place) == (
        created.tracking,
        "twilio",
        "qom",
        "industry",
        "shokouhieh",
    )
    assert view.status == Status.REGISTERED
    assert view.callback_number == "09121234567"
    assert view.caller_number == "+989121234567"
    assert view.recording_path == "recordings/CA1.wav"
    assert view.agency is None
    assert view.due_at == due
    assert view.created_at.tzinfo is not None
    assert abs(view.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert [(h.kind, h.old_value, h.new_value) for h in view.history] == [
        ("created", None, "registered")
    ]
    with Session(service.engine) as s:
        assert s.exec(select(Ticket.national_id)).one() == "0012345678"


def test_get_refuses_bad_numbers_and_accepts_persian_digits(service: TicketService) -> None:
    tracking = service.create(draft()).tracking
    assert tracking is not None
    wrong_check = tracking[:-1] + str((int(tracking[-1]) + 1) % 10)
    assert service.get(wrong_check) is None
    assert service.get("abc") is None
    persian = tracking.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    found = service.get(persian)
    assert found is not None and found.tracking == tracking


def test_bad_category_fails_before_spending_a_number(service: TicketService) -> None:
    with pytest.raises(ValueError):
        service.create(draft(category="weather"))
    with Session(service.engine) as s:
        assert s.exec(select(func.count()).select_from(TrackingBlock)).one() == 0


def test_status_changes_write_history(service: TicketService) -> None:
    tracking = service.create(draft()).tracking
    assert tracking is not None
    before = service.get(tracking)
    assert before is not None

    view = service.set_status(tracking, Status.IN_REVIEW, "agent7", note="calling back")
    assert view.status == "in_review"
    assert view.updated_at > before.updated_at
    unchanged = service.set_status(tracking, "in_review", "agent7")
    assert unchanged.history == view.history  # same status, no note: nothing to record
    service.set_status(tracking, "in_review", "agent7", note="no answer")
    view = service.refer(tracking, "provincial_office", "agent7")
    assert view.status == "referred" and view.agency == "provincial_office"

    stored = service.get(tracking)
    assert stored == view
    assert [(h.kind, h.old_value, h.new_value, h.actor, h.note) for h in stored.history] == [
        ("created", None, "registered", "caller", None),
        ("status", "registered", "in_review", "agent7", "calling back"),
        ("note", None, None, "agent7", "no answer"),
        ("agency", None, "provincial_office", "agent7", None),
        ("status", "in_review", "referred", "agent7", None),
    ]
    with pytest.raises(ValueError):
        service.set_status(tracking, "lost", "agent7")
    with pytest.raises(TicketNotFound):
        service.set_status("1000000000", "closed", "agent7")


def test_latest_is_newest_first(service: TicketService) -> None:
    numbers = [service.create(draft(callback=f"0912000000{i}")).tracking for i in range(5)]
    latest = service.latest(limit=3)
    assert [v.tracking for v in latest] == numbers[::-1][:3]
    assert all(len(v.history) == 1 for v in latest)


def test_two_nodes_many_threads_get_unique_numbers(db: Database, tmp_path: Path) -> None:
    nodes = {"node1": db.service(tmp_path, "node1"), "node2": db.service(tmp_path, "node2")}
    made: list[tuple[str, str | None, bool]] = []
    lock = threading.Lock()

    def work(node: str, count: int) -> None:
        for i in range(count):
            created = nodes[node].create(draft(callback=f"09{i:09d}"))
            with lock:
                made.append((node, created.tracking, created.spooled))

    threads = [threading.Thread(target=work, args=(node, 25)) for node in nodes for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(made) == 200
    assert not any(spooled for _, _, spooled in made)
    numbers = [tracking for _, tracking, _ in made]
    assert len(set(numbers)) == 200
    assert all(n is not None and is_valid_tracking(n) for n in numbers)
    with Session(nodes["node1"].engine) as s:
        assert set(s.exec(select(Ticket.tracking))) == set(numbers)
        owner = {b.id: b.node for b in s.exec(select(TrackingBlock))}
    for node, tracking, _ in made:  # each number comes from a block its own node reserved
        assert tracking is not None
        sequence = nodes[node].allocator.sequence_of(tracking)
        assert sequence is not None and owner[sequence // 20] == node


def test_allocator_reserves_ahead_and_survives_an_outage(db: Database, tmp_path: Path) -> None:
    engine = make_engine(db.url)
    allocator = TrackingAllocator(engine, "node1", block_size=4)
    first = [allocator.next_sequence() for _ in range(2)]  # half of the block: reserve the next
    with Session(engine) as s:
        blocks = list(s.exec(select(TrackingBlock.id)))
    assert len(blocks) == 2
    engine.dispose()
    db.dir.rename(db.dir.with_name("db-away"))
    during = [allocator.next_sequence() for _ in range(6)]  # rest of block 1, all of block 2
    assert first + during == [*range(4, 8), *range(8, 12)]
    with pytest.raises(OperationalError):
        allocator.next_sequence()


def test_spool_while_database_is_down_then_replay(db: Database, tmp_path: Path) -> None:
    service = db.service(tmp_path)
    assert service.create(draft()).tracking is not None  # the node now holds a block
    db.take_away(service)

    due = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)
    created = service.create(draft(callback="09350000000"), due_at=due)
    assert created.spooled and created.tracking is not None
    assert is_valid_tracking(created.tracking)
    files = list(service.spool_dir.glob("*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["tracking"] == created.tracking
    assert not list(service.spool_dir.glob(".*"))  # no temporary file left behind
    assert service.replay_spool() == 0  # still down: the file stays
    assert files[0].exists()

    db.give_back()
    saved = files[0].read_bytes()
    assert service.replay_spool() == 1
    assert not files[0].exists()
    view = service.get(created.tracking)
    assert view is not None
    assert view.callback_number == "09350000000" and view.due_at == due
    assert view.history[0].kind == "created" and view.history[0].note

    assert service.replay_spool() == 0
    files[0].write_bytes(saved)  # as if we crashed after the commit, before the unlink
    assert service.replay_spool() == 0
    assert not files[0].exists()
    with Session(service.engine) as s:
        assert s.exec(select(func.count()).where(Ticket.tracking == created.tracking)).one() == 1


def test_spool_without_a_number_gets_one_at_replay(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = db.service(tmp_path)
    db.take_away(service)  # down before this node ever reserved a block
    created = service.create(draft())
    assert (created.tracking, created.spooled) == (None, True)
    (path,) = service.spool_dir.glob("*.json")

    db.give_back()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(service, "_add", crash)
        with pytest.raises(RuntimeError):
            service.replay_spool()
    fixed = json.loads(path.read_text())["tracking"]
    assert fixed is not None and is_valid_tracking(fixed)  # written down before the insert

    assert service.replay_spool() == 1
    assert service.get(fixed) is not None
    assert [v.tracking for v in service.latest()] == [fixed]


def test_call_store_round_trip(service: TicketService) -> None:
    calls = CallStore(service.engine)
    assert calls.load_state("CA-none") is None
    call_id = calls.open("twilio", "CA123", "+989121234567", "124")
    assert calls.open("twilio", "CA123", "+989121234567", "124") == call_id
    assert calls.load_state("CA123") == (call_id, "{}")

    at = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    steps = [
        StepRecord("main", EventKind.DIGITS, "1", StepOutcome.OK, at),
        StepRecord(
            "category", EventKind.TIMEOUT, None, StepOutcome.TIMEOUT, at + timedelta(seconds=5)
        ),
    ]
    calls.save_turn(call_id, '{"node": "category", "retries": 1}', steps)
    assert calls.load_state("CA123") == (call_id, '{"node": "category", "retries": 1}')

    tracking = service.create(draft()).tracking
    calls.finish(call_id, CallOutcome.TICKET, CallEnd.CALLER, tracking)
    with Session(service.engine) as s:
        rows = s.exec(select(CallStep).order_by(CallStep.id)).all()
        assert [(r.node, r.event, r.key, r.outcome) for r in rows] == [
            ("main", "digits", "1", "ok"),
            ("category", "timeout", None, "timeout"),
        ]
        call = s.get(Call, call_id)
        assert call is not None
        assert call.outcome == "ticket" and call.ended_at is not None
        assert call.ended_by == "caller"
        ticket_id = s.exec(select(Ticket.id).where(Ticket.tracking == tracking)).one()
        assert call.ticket_id == ticket_id
    with pytest.raises(LookupError):
        calls.save_turn(call_id + 1, "{}", [])
    # Free strings are refused: the records speak the flow's enums only.
    with pytest.raises(ValueError):
        calls.save_turn(call_id, "{}", [StepRecord("main", "Digits", "1", "ok")])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        calls.save_turn(call_id, "{}", [StepRecord("main", "digits", "1", "transfer")])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        calls.finish(call_id, "completed", CallEnd.CALLER)  # type: ignore[arg-type]


def test_render_table_detail_and_json(service: TicketService) -> None:
    a = service.create(draft(callback="09121111111")).tracking
    b = service.create(draft(callback="09122222222", place=None)).tracking
    assert a is not None and b is not None
    service.set_status(a, "closed", "agent1", note="answered by phone")

    table = ticket_table(service.latest()).splitlines()
    assert table[0].split()[0] == "tracking"
    assert [line.split()[0] for line in table[1:]] == [b, a]  # newest first
    view = service.get(a)
    assert view is not None
    assert jalali(view.created_at) in table[2] and "closed" in table[2]

    detail = ticket_detail(view)
    assert detail.splitlines()[0] == f"ticket {a}"
    assert "registered -> closed  by agent1  (answered by phone)" in detail

    data = ticket_json(view)
    json.dumps(data)  # plain JSON types only
    assert data["created_at"].endswith("Z") and data["history"][1]["at"].endswith("Z")
    assert data["created_jalali"] == jalali(view.created_at)
    assert data["status"] == "closed" and data["due_at"] is None


def test_jalali_uses_tehran_time() -> None:
    # 20:31 UTC on 20 March 2026 is 00:01 on 1 Farvardin 1405 in Tehran (UTC+3:30).
    assert jalali(datetime(2026, 3, 20, 20, 31, tzinfo=UTC)) == "1405/01/01 00:01"
    assert jalali(datetime(2026, 3, 20, 20, 31)) == "1405/01/01 00:01"  # naive means UTC


def test_a_broken_spool_file_does_not_block_the_others(db: Database, tmp_path: Path) -> None:
    service = db.service(tmp_path)
    db.take_away(service)
    assert service.create(draft()) == CreatedTicket(None, spooled=True)
    db.give_back()
    broken = service.spool_dir / "00000000-broken.json"  # sorts first
    broken.write_text("{not json")
    assert service.replay_spool() == 1
    assert broken.exists()  # left for a human to look at
    assert len(service.latest()) == 1


def test_a_call_asking_again_gets_its_stored_ticket_back(
    migrated_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A retried confirm: the second insert meets the unique key on the call and answers with
    the ticket stored the first time, on both backends."""
    settings = Settings(storage_dir=tmp_path, database_url=migrated_url)
    service = TicketService(make_engine(migrated_url), settings)
    first = service.create(draft(), call_key="twilio:CA-again")
    again = service.create(draft(callback="09350000000"), call_key="twilio:CA-again")
    other = service.create(draft(), call_key="twilio:CA-other")
    assert again == first == CreatedTicket(first.tracking, spooled=False)
    assert other.tracking != first.tracking
    with Session(service.engine) as session:
        rows = session.exec(select(Ticket.tracking, Ticket.callback_number)).all()
    kept = "09121234567"  # the first confirm's callback number: the retry changed nothing
    assert sorted(rows) == sorted([(first.tracking, kept), (other.tracking, kept)])
    service.engine.dispose()


# --- a server reads the calendar at start ---------------------------------------------------


def _calendar_queries_in_first_ticket(settings: Settings, *, warm: bool) -> list[str]:
    services = build_services(settings)
    if warm:
        warm_up(services, "qom")
    statements: list[str] = []
    listen = event.listens_for(services.tickets.engine, "before_cursor_execute")
    listen(lambda _c, _cur, sql, *_rest: statements.append(sql))
    services.tickets.create(draft(), call_key="twilio:CA-first")
    return [sql for sql in statements if "holiday" in sql or "thursday_rule" in sql]


def test_a_warm_start_reads_the_calendar_before_the_first_caller_confirms(tmp_path: Path):
    cold = Settings(storage_dir=tmp_path / "cold", database_url="")
    warm = Settings(storage_dir=tmp_path / "warm", database_url="")
    assert _calendar_queries_in_first_ticket(cold, warm=False)  # the case being avoided
    assert _calendar_queries_in_first_ticket(warm, warm=True) == []


def test_a_warm_start_with_the_database_out_of_reach_still_starts(tmp_path: Path):
    down = tmp_path / "down"
    down.mkdir()  # a directory is no database: every query fails
    settings = Settings(storage_dir=tmp_path / "storage", database_url=f"sqlite:///{down}")
    services = build_services(settings, outage_ok=True)
    warm_up(services, "qom")
    created = services.tickets.create(draft(), call_key="twilio:CA-down")
    assert created.spooled  # the request kept for the database, as without warming
