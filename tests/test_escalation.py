"""The overdue watch and the outbox against a real SMTP server (aiosmtpd on a free local port).

Times are Tehran wall-clock (May 2026: Sat 9, Sat 16, Sun 17, Tue 19, Wed 20, Fri 15, Sat 23).
A consumer ticket registered Saturday 9 May 09:00 is due Saturday 16 May 16:00 (five working
days: Sun, Mon, Tue, Wed, Sat); level 2 comes three working days after level 1.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pg import db_url, migrated_url  # noqa: F401  (fixtures: SQLite, and PostgreSQL if set)
from sqlalchemy import Engine, func, insert, text, update
from sqlmodel import Session, col, select

from ivr.calendar import WorkCalendar, load_policies
from ivr.calendar.store import CachedCalendar, SlaClock, ensure_seeded, load_calendar
from ivr.escalation import add_supervisor, watch
from ivr.notify import parse_smtp_url, retry_delay, send_due
from ivr.settings import Settings
from ivr.tickets import service as service_module
from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.models import (
    Notification,
    Status,
    Supervisor,
    Ticket,
    TicketEvent,
)
from ivr.tickets.service import TicketDraft, TicketService, TicketView

TEHRAN = ZoneInfo("Asia/Tehran")
SEED_DAY = date(2026, 3, 10)
FROM = "124@mimt.example"
QOM = {"ostan1@qom.example", "ostan2@qom.example"}
NATIONAL = {"setad@mimt.example"}


def tehran(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TEHRAN).astimezone(UTC)


REGISTERED = tehran(2026, 5, 9, 9)
DUE = tehran(2026, 5, 16, 16)
LEVEL2 = tehran(2026, 5, 19, 16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A real SMTP server -------------------------------------------------------------------------------


@dataclass
class Received:
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body((subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


class Mailbox:
    """What the SMTP server accepted, parsed back into messages."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.logins: list[str] = []
        self.url = ""
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, *addresses: str) -> list[Received]:
        return [r for r in self.received if set(r.recipients) & set(addresses)]

    def recipients(self) -> list[str]:
        return sorted(a for r in self.received for a in r.recipients)


def start_smtp(handler: Mailbox, **options: Any) -> tuple[Controller, str]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller, f"smtp://127.0.0.1:{port}"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller, box.url = start_smtp(box)
    yield box
    controller.stop()


# The hotline's database ---------------------------------------------------------------------------


@dataclass
class Hotline:
    url: str
    engine: Engine
    tickets: TicketService
    calendar: WorkCalendar
    clock: list[datetime]

    def open(self, category: str = "consumer", at: datetime = REGISTERED, **draft: Any) -> str:
        self.clock[0] = at
        fields = {"province": "qom", **draft}
        made = self.tickets.create(
            TicketDraft("web", fields["province"], category, None, None, None, "0912", None)
        )
        assert made.tracking is not None and not made.spooled
        return made.tracking

    def status(self, tracking: str, status: Status, at: datetime) -> None:
        self.clock[0] = at
        note = "closed in a test" if status == Status.CLOSED else None
        self.tickets.set_status(tracking, status, "agent-7", note)

    def view(self, tracking: str) -> TicketView:
        found = self.tickets.get(tracking)
        assert found is not None
        return found

    def watch(self, now: datetime, engine: Engine | None = None, **kw: Any) -> Any:
        return watch(engine or self.engine, self.calendar, None, now, mail_from=FROM, **kw)

    def send(self, now: datetime, smtp_url: str, engine: Engine | None = None) -> int:
        return send_due(engine or self.engine, self.calendar, smtp_url, now)

    def history(self, tracking: str, kind: str) -> list[tuple[str | None, str | None]]:
        return [(h.old_value, h.new_value) for h in self.view(tracking).history if h.kind == kind]


def make_hotline(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hotline:
    engine = make_engine(url)
    ensure_seeded(engine, SEED_DAY)
    add_supervisor(engine, "ناظر اول قم", "ostan1@qom.example", "qom")
    add_supervisor(engine, "ناظر دوم قم", "ostan2@qom.example", "qom")
    retired = add_supervisor(engine, "ناظر پیشین قم", "old@qom.example", "qom")
    add_supervisor(engine, "ناظر تهران", "ostan@tehran.example", "tehran")
    add_supervisor(engine, "ستاد وزارت", "setad@mimt.example")
    with engine.begin() as c:
        c.execute(update(Supervisor).where(col(Supervisor.id) == retired).values(active=False))
    clock = [REGISTERED]
    monkeypatch.setattr(service_module, "utcnow", lambda: clock[0])
    settings = Settings(storage_dir=tmp_path / "node", database_url=url)
    sla = SlaClock(CachedCalendar(engine, check_every=0), load_policies())
    tickets = TicketService(engine, settings, sla=sla)
    return Hotline(url, engine, tickets, load_calendar(engine, SEED_DAY), clock)


@pytest.fixture
def hotline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hotline]:
    url = f"sqlite:///{tmp_path / 'db' / 'ivr.db'}"
    upgrade(url)
    made = make_hotline(url, tmp_path, monkeypatch)
    yield made
    made.engine.dispose()


def fa(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))


# The ladder ---------------------------------------------------------------------------------------


def test_level_1_then_level_2_reach_the_right_people_in_persian(
    hotline: Hotline, mailbox: Mailbox
) -> None:
    tracking = hotline.open()
    smtp = mailbox.url
    assert hotline.view(tracking).due_at == DUE

    # Before the deadline: warnings only, each once however often the watch runs.
    for minutes in range(3):
        report = hotline.watch(DUE - timedelta(minutes=1 + minutes))
        assert report.level1 == 0
    assert hotline.history(tracking, "warning") == [
        (None, "first_response"),
        (None, "resolution"),
    ]

    # At the deadline (16:00, the office's closing): level 1, mail held to Sunday's opening.
    report = hotline.watch(DUE)
    assert (report.level1, report.queued) == (1, 2)
    assert hotline.view(tracking).escalation_level == 1
    assert hotline.history(tracking, "escalated") == [("0", "1")]
    assert hotline.send(DUE, smtp) == 0
    assert hotline.send(tehran(2026, 5, 17, 7, 59), smtp) == 0
    assert hotline.send(tehran(2026, 5, 17, 8), smtp) == 2
    assert mailbox.recipients() == sorted(QOM)  # not Tehran's, not the retired one, not national

    mail = mailbox.received[0]
    assert mail.subject == f"ارجاع درخواست {fa(tracking)} به سطح ۱: مهلت پاسخ گذشته است"
    plain = mail.part("plain")
    assert f"کد رهگیری: {fa(tracking)}" in plain
    assert "موضوع: حمایت از مصرف‌کننده و قیمت‌ها" in plain
    assert "استان: قم" in plain
    assert "ثبت: شنبه ۱۹ اردیبهشت ۱۴۰۵ ساعت ۰۹:۰۰" in plain
    assert "مهلت پاسخ: شنبه ۲۶ اردیبهشت ۱۴۰۵ ساعت ۱۶:۰۰" in plain
    markup = mail.part("html")
    assert '<html lang="fa" dir="rtl">' in markup and '<body dir="rtl"' in markup
    assert fa(tracking) in markup and "حمایت از مصرف‌کننده و قیمت‌ها" in markup
    assert mail.message["From"] == FROM
    assert mail.message["Message-ID"].startswith("<ivr124.notification.")

    # Still open three working days later (Sun, Mon, Tue): level 2, the ministry.
    assert hotline.watch(LEVEL2 - timedelta(minutes=1)).level2 == 0
    report = hotline.watch(LEVEL2)
    assert (report.level2, report.queued) == (1, 1)
    assert hotline.watch(LEVEL2 + timedelta(hours=1)).checked == 0  # nothing more to do
    assert hotline.send(LEVEL2, smtp) == 0  # 16:00: closed
    assert hotline.send(tehran(2026, 5, 20, 8), smtp) == 1
    national = mailbox.to(*NATIONAL)
    assert len(national) == 1 and national[0].recipients == sorted(NATIONAL)
    assert "به سطح ۲" in national[0].subject
    assert "ارجاع به سطح ۱: شنبه ۲۶ اردیبهشت ۱۴۰۵ ساعت ۱۶:۰۰" in national[0].part("plain")
    assert "ستاد وزارت" in national[0].part("plain")
    assert hotline.history(tracking, "escalated") == [("0", "1"), ("1", "2")]
    assert len(mailbox.received) == 3


def test_a_breach_found_at_night_waits_for_the_opening(hotline: Hotline, mailbox: Mailbox) -> None:
    smtp = mailbox.url
    hotline.open()
    two_am = tehran(2026, 5, 17, 2)  # Sunday 02:00, the watch's first run since the breach
    assert hotline.watch(two_am).level1 == 1
    for now in (two_am, tehran(2026, 5, 17, 5), tehran(2026, 5, 17, 7, 59)):
        assert hotline.send(now, smtp) == 0
    assert mailbox.received == []
    assert hotline.send(tehran(2026, 5, 17, 8), smtp) == 2


def test_a_breach_on_friday_waits_for_saturday(hotline: Hotline, mailbox: Mailbox) -> None:
    smtp = mailbox.url
    # Registered Friday 8 May: Sat, Sun, Mon, Tue, Wed → due Wednesday 13 May 16:00.
    tracking = hotline.open(at=tehran(2026, 5, 8, 11))
    assert hotline.view(tracking).due_at == tehran(2026, 5, 13, 16)
    friday = tehran(2026, 5, 15, 10)
    assert hotline.watch(friday).level1 == 1
    assert hotline.send(friday, smtp) == 0
    assert hotline.send(tehran(2026, 5, 16, 7, 59), smtp) == 0
    assert hotline.send(tehran(2026, 5, 16, 8), smtp) == 2


def test_a_closure_decreed_after_queueing_holds_the_mail(
    hotline: Hotline, mailbox: Mailbox
) -> None:
    smtp = mailbox.url
    hotline.open()
    hotline.watch(DUE)  # queued for Sunday 08:00
    from ivr.calendar import Holiday

    closed = hotline.calendar.with_holidays(Holiday(date(2026, 5, 17), "تعطیلی", "closure", "qom"))
    assert send_due(hotline.engine, closed, smtp, tehran(2026, 5, 17, 10)) == 0
    with Session(hotline.engine) as session:
        waits = session.exec(select(Notification.not_before)).all()
    assert set(waits) == {tehran(2026, 5, 18, 8)}  # Monday's opening
    assert send_due(hotline.engine, closed, smtp, tehran(2026, 5, 18, 8)) == 2


def test_finished_and_waiting_tickets_are_not_escalated(hotline: Hotline, mailbox: Mailbox) -> None:
    closed = hotline.open()
    waiting = hotline.open()
    hotline.status(closed, Status.CLOSED, tehran(2026, 5, 10, 9))
    hotline.status(waiting, Status.WAITING_FOR_CALLER, tehran(2026, 5, 10, 9))
    assert hotline.watch(DUE + timedelta(days=3)).level1 == 0
    with Session(hotline.engine) as session:
        assert session.exec(select(func.count()).select_from(Notification)).one() == 0
    # The caller answers a week later: the clock runs again, with the paused week added on.
    hotline.status(waiting, Status.IN_REVIEW, tehran(2026, 5, 17, 9))
    due = hotline.view(waiting).due_at
    assert due is not None and due > DUE
    assert hotline.watch(due - timedelta(minutes=1)).level1 == 0
    assert hotline.watch(due).level1 == 1
    assert hotline.view(closed).escalation_level == 0


def test_a_province_without_supervisors_falls_back_to_national(
    hotline: Hotline, mailbox: Mailbox
) -> None:
    tracking = hotline.open(province="isfahan")
    hotline.watch(DUE)
    assert hotline.send(tehran(2026, 5, 17, 8), mailbox.url) == 1
    assert mailbox.recipients() == sorted(NATIONAL)
    notes = [h.note or "" for h in hotline.view(tracking).history if h.kind == "escalated"]
    assert "no supervisor for isfahan" in notes[0]


# Exactly once -------------------------------------------------------------------------------------


def run_together(workers: list[Callable[[], None]]) -> None:
    """Start every worker at the same moment; re-raise the first failure."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]


def test_every_step_once_with_restarts_and_concurrent_nodes(
    migrated_url: str,  # noqa: F811  (the fixture imported from pg)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mailbox: Mailbox,
) -> None:
    """Four "nodes" (engines of their own) run the watch and the sender at the same moment,
    then restart (new engines) and run them again: each step and each mail happens once."""
    smtp = mailbox.url
    hotline = make_hotline(migrated_url, tmp_path, monkeypatch)
    trackings = [hotline.open() for _ in range(30)]
    hotline.engine.dispose()

    def nodes_run(now: datetime, rounds: int = 1) -> None:
        for _ in range(rounds):
            engines = [make_engine(migrated_url) for _ in range(4)]  # a restart each round

            def node(engine: Engine) -> Callable[[], None]:
                def work() -> None:
                    hotline.watch(now, engine, batch_size=7)
                    hotline.send(now, smtp, engine)

                return work

            try:
                run_together([node(e) for e in engines])
            finally:
                for e in engines:
                    e.dispose()

    sunday = tehran(2026, 5, 17, 8)  # level 1 found at the opening: sent at once
    nodes_run(sunday, rounds=3)
    assert len(mailbox.received) == 60
    assert sorted(set(mailbox.recipients())) == sorted(QOM)
    for address in QOM:
        assert len(mailbox.to(address)) == 30
    saturday = tehran(2026, 5, 23, 9)  # Wed 20 May 16:00 was level 2 (Mon, Tue, Wed)
    nodes_run(saturday, rounds=3)
    assert len(mailbox.to(*NATIONAL)) == 30
    assert len(mailbox.received) == 90
    assert len({(r.subject, tuple(r.recipients)) for r in mailbox.received}) == 90

    engine = make_engine(migrated_url)
    try:
        with Session(engine) as session:
            kinds = session.exec(
                select(TicketEvent.new_value, func.count())
                .where(col(TicketEvent.kind) == "escalated")
                .group_by(col(TicketEvent.new_value))
            ).all()
            assert dict(kinds) == {"1": 30, "2": 30}
            warnings = session.exec(
                select(func.count()).select_from(TicketEvent).where(TicketEvent.kind == "warning")
            ).one()
            assert warnings == 60  # two clocks per ticket
            unsent = session.exec(
                select(func.count())
                .select_from(Notification)
                .where(col(Notification.sent_at).is_(None))
            ).one()
            assert unsent == 0
            levels = session.exec(select(Ticket.escalation_level)).all()
            assert set(levels) == {2} and len(levels) == len(trackings)
    finally:
        engine.dispose()


def test_an_smtp_failure_is_retried_later_and_sent_once(hotline: Hotline, mailbox: Mailbox) -> None:
    hotline.open()
    opening = tehran(2026, 5, 17, 8)
    hotline.watch(opening)
    nobody = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    assert hotline.send(opening, nobody) == 0
    with Session(hotline.engine) as session:
        rows = session.exec(select(Notification)).all()
    failed = [r for r in rows if r.attempts == 1]
    assert len(failed) == 1 and failed[0].last_error  # the connection failed on the first
    assert all(r.sent_at is None for r in rows)
    assert failed[0].not_before == opening + retry_delay(1)
    smtp = mailbox.url
    assert hotline.send(opening + timedelta(minutes=1), smtp) == 1  # the untouched one
    assert hotline.send(opening + timedelta(minutes=5), smtp) == 1  # the retried one
    assert hotline.send(opening + timedelta(minutes=30), smtp) == 0
    assert mailbox.recipients() == sorted(QOM)


def test_one_call_works_through_more_than_one_batch(hotline: Hotline, mailbox: Mailbox) -> None:
    for _ in range(3):
        hotline.open()
    opening = tehran(2026, 5, 17, 8)
    hotline.watch(opening)
    sent = send_due(hotline.engine, hotline.calendar, mailbox.url, opening, limit=4)
    assert sent == 6 and len(mailbox.received) == 6


def test_smtp_login_and_urls(hotline: Hotline) -> None:
    box = Mailbox()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"u", b"p@ss")
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller, url = start_smtp(box, authenticator=authenticate, auth_require_tls=False)
    try:
        hotline.open()
        opening = tehran(2026, 5, 17, 8)
        hotline.watch(opening)
        with_login = url.replace("smtp://", "smtp://u:p%40ss@")
        assert hotline.send(opening, with_login) == 2
        assert box.logins == ["u"] and len(box.received) == 2
    finally:
        controller.stop()
    target = parse_smtp_url("smtps://mail.example.ir")
    assert (target.port, target.tls, target.username) == (465, "ssl", None)
    target = parse_smtp_url("smtp://a:b@mail.example.ir:2525?starttls=true")
    assert (target.host, target.port, target.tls, target.password) == (
        "mail.example.ir",
        2525,
        "starttls",
        "b",
    )
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.example.ir")


def test_no_smtp_url_keeps_the_mail_queued(hotline: Hotline) -> None:
    hotline.open()
    hotline.watch(tehran(2026, 5, 17, 8))
    assert send_due(hotline.engine, hotline.calendar, "", tehran(2026, 5, 17, 8)) == 0
    with Session(hotline.engine) as session:
        assert session.exec(select(func.count()).select_from(Notification)).one() == 2


# Many tickets -------------------------------------------------------------------------------------


def test_the_watch_reads_only_what_is_due(hotline: Hotline) -> None:
    """20,000 tickets, 2 % overdue: one pass reads those 400 through the index, the next none."""
    now = tehran(2026, 5, 17, 8)
    rows = []
    for i in range(20_000):
        overdue = i % 50 == 0
        due = now - timedelta(hours=1) if overdue else now + timedelta(days=3 + i % 20)
        rows.append(
            {
                "tracking": f"9{i:09d}",
                "channel": "web",
                "province": "qom",
                "category": "other",
                "callback_number": "0912",
                "status": "in_review",
                "created_at": now - timedelta(days=20),
                "updated_at": now - timedelta(days=20),
                "due_at": due,
                "resolution_warned_at": now - timedelta(days=2),
                "escalation_level": 0,
                "sla_check_at": due,
            }
        )
    with hotline.engine.begin() as c:
        c.execute(insert(Ticket), rows)
    with hotline.engine.connect() as c:
        plan = c.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT id FROM ticket WHERE sla_check_at <= :now "
                "ORDER BY sla_check_at, id LIMIT 500"
            ),
            {"now": "2026-05-17 04:30:00.000000"},
        ).all()
    assert "ix_ticket_sla_check_at" in " ".join(str(r) for r in plan)
    started = time.perf_counter()
    report = hotline.watch(now)
    first = time.perf_counter() - started
    assert (report.checked, report.level1, report.queued) == (400, 400, 800)
    started = time.perf_counter()
    assert hotline.watch(now + timedelta(minutes=1)).checked == 0
    assert time.perf_counter() - started < 0.5, "an idle pass must not scan tickets"
    assert first < 30
