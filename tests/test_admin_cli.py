"""The administrators' commands through the real ``ivr`` CLI (subprocesses on a SQLite file).

Tickets are made the way a caller makes them (``ivr call --keys``); every wrong input must give
exactly one line on stderr, exit status 1 and no traceback, and change nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from refusals import refusal
from sqlmodel import Session, select
from twilio_phone import free_port

from ivr.calendar import WorkCalendar
from ivr.clock import utcnow
from ivr.notify import send_due
from ivr.tickets.db import make_engine
from ivr.tickets.models import Notification, Supervisor, Ticket

Cli = Callable[..., subprocess.CompletedProcess[str]]
NATIONAL_ID = "7731689956"


@pytest.fixture
def cli(ivr_cli: Cli) -> Cli:
    ivr_cli("db", "upgrade")
    return ivr_cli


def refused(cli: Cli, *args: str) -> str:
    """Run a ``tickets`` command that must fail: status 1, one line on stderr naming the
    command, no traceback; what the line says after the command."""
    return refusal(cli(*args, check=False), " ".join(args[:2]))


def call_in(cli: Cli, keys: str) -> str:
    """A ticket registered on the terminal phone; its tracking number."""
    out = cli("call", "--keys", keys).stdout
    line = next(line for line in out.splitlines() if line.startswith("کد رهگیری:"))
    return line.split(":")[1].strip()


def show(cli: Cli, tracking: str, *more: str) -> dict[str, object]:
    return json.loads(cli("tickets", "show", tracking, "--json", *more).stdout)


# Tickets ------------------------------------------------------------------------------------------


def test_status_and_refer_through_the_table(cli: Cli) -> None:
    tracking = call_in(cli, "1 4 2 1 # 1")  # consumer protection
    out = cli("tickets", "status", tracking, "in_review", "--by", "agent-7").stdout
    assert out.strip() == f"ticket {tracking}: in_review (by agent-7)"
    out = cli("tickets", "refer", tracking, "tazirat", "--note", "گران‌فروشی", "--by", "agent-7")
    assert "referred to tazirat (اداره کل تعزیرات حکومتی استان قم)" in out.stdout
    cli("tickets", "status", tracking, "waiting_for_caller", "--by", "agent-7")
    cli("tickets", "status", tracking, "referred", "--by", "agent-7")  # back to the agency
    cli("tickets", "status", tracking, "answered", "--by", "tazirat-desk")
    data = show(cli, tracking)
    assert data["status"] == "answered" and data["agency"] == "tazirat"
    lines = [(h["kind"], h["new_value"], h["actor"]) for h in data["history"]]  # type: ignore[index, union-attr]
    assert lines == [
        ("created", "registered", "caller"),
        ("status", "in_review", "agent-7"),
        ("agency", "tazirat", "agent-7"),
        ("status", "referred", "agent-7"),
        ("status", "waiting_for_caller", "agent-7"),
        ("status", "referred", "agent-7"),
        ("status", "answered", "tazirat-desk"),
    ]
    cli("tickets", "status", tracking, "closed", "--by", "agent-7")  # the answer stands
    assert show(cli, tracking)["status"] == "closed"


def test_wrong_status_commands_are_one_line_and_change_nothing(cli: Cli) -> None:
    tracking = call_in(cli, "1 4 2 1 # 1")
    before = show(cli, tracking)
    line = refused(cli, "tickets", "status", tracking, "closed")
    assert "registered → closed refused: a note is needed" in line
    line = refused(cli, "tickets", "status", tracking, "lost")
    assert "unknown status 'lost'" in line and "waiting_for_caller" in line
    assert "names its agency" in refused(cli, "tickets", "status", tracking, "referred")
    line = refused(cli, "tickets", "refer", tracking, "edare-x")
    assert "unknown agency 'edare-x'" in line and "tazirat" in line
    assert "not a tracking number" in refused(cli, "tickets", "status", "12345", "closed")
    missing = "1000000000"  # well-formed? no: a wrong check digit is refused before the database
    assert "not a tracking number" in refused(cli, "tickets", "refer", missing, "tazirat")
    other = tracking[:-1] + str((int(tracking[-1]) + 1) % 10)
    assert "not a tracking number" in refused(cli, "tickets", "status", other, "in_review")
    assert show(cli, tracking) == before
    cli("tickets", "status", tracking, "closed", "--note", "duplicate of an earlier call")
    assert "a closed ticket is final" in refused(cli, "tickets", "status", tracking, "in_review")
    assert "final" in refused(cli, "tickets", "refer", tracking, "tazirat")


def test_an_unknown_well_formed_ticket(cli: Cli) -> None:
    from ivr.tickets.tracking import tracking_from_sequence

    number = tracking_from_sequence(987654)
    assert refused(cli, "tickets", "status", number, "closed") == f"no ticket {number}"
    assert refused(cli, "tickets", "show", number) == f"no ticket {number}"


def test_show_json_has_what_a_supervisor_needs_and_hides_the_national_id(cli: Cli) -> None:
    tracking = call_in(cli, f"1 1 2 2 1 {NATIONAL_ID}# 1")  # industry, Alghadir, with a NID
    data = show(cli, tracking)
    assert (data["category"], data["category_name"]) == ("industry", "صنعت")
    assert (data["place"], data["place_name"]) == ("alghadir", "شهرک صنعتی الغدیر")
    assert (data["province"], data["province_name"]) == ("qom", "قم")
    assert data["agency"] is None and data["agency_name"] is None
    assert data["escalation_level"] == 0 and data["escalated_at"] is None
    assert data["first_response_due_at"] < data["due_at"]  # type: ignore[operator]
    assert data["first_response_due_jalali"] and data["due_jalali"]
    assert "national_id" not in data and NATIONAL_ID not in json.dumps(data)
    text = cli("tickets", "show", tracking).stdout
    assert NATIONAL_ID not in text and "industry (صنعت)" in text
    assert show(cli, tracking, "--with-personal-data")["national_id"] == NATIONAL_ID
    text = cli("tickets", "show", tracking, "--with-personal-data").stdout
    assert NATIONAL_ID in text
    listed = cli("tickets", "list", "--json").stdout
    assert NATIONAL_ID not in listed and json.loads(listed)[0]["tracking"] == tracking


@pytest.mark.parametrize("limit", ["99999999999999999999", "-1", "0", "10001"])
def test_list_limit_out_of_range(cli: Cli, limit: str) -> None:
    line = refused(cli, "tickets", "list", "--limit", limit)
    assert line == "--limit must be between 1 and 10,000"


def test_list_limit_in_range(cli: Cli) -> None:
    first, second = call_in(cli, "1 4 2 1 # 1"), call_in(cli, "1 3 2 1 # 1")
    out = cli("tickets", "list", "--limit", "1").stdout.splitlines()
    assert len(out) == 2 and out[1].split()[0] == second
    assert first in cli("tickets", "list", "--limit", "10000").stdout


# Supervisors --------------------------------------------------------------------------------------


def test_supervisors_add_list_remove(cli: Cli, storage: Path) -> None:
    out = cli("supervisors", "add", "ناظر قم", "ostan@qom.example", "--province", "QOM").stdout
    assert "(province qom)" in out
    cli("supervisors", "add", "ستاد وزارت", "setad@mimt.example")
    listed = cli("supervisors", "list").stdout.splitlines()
    assert "national" in listed[0] and "setad@mimt.example" in listed[0]
    assert "qom" in listed[1] and "ostan@qom.example" in listed[1]
    assert "already a supervisor" in refused(
        cli, "supervisors", "add", "دوباره", "ostan@qom.example", "--province", "qom"
    )
    assert "not an e-mail address" in refused(cli, "supervisors", "add", "x", "ostan at qom")
    assert "not an e-mail address" in refused(cli, "supervisors", "add", "x", "a@localhost")
    line = refused(cli, "supervisors", "add", "x", "x@qom.example", "--province", "qum")
    assert "unknown province 'qum'" in line and "qom" in line
    assert "needs a name" in refused(cli, "supervisors", "add", " ", "x@qom.example")
    out = cli("supervisors", "remove", "ostan@qom.example").stdout
    assert "removed supervisor" in out
    assert "ostan@qom.example" not in cli("supervisors", "list").stdout
    assert "(removed)" in cli("supervisors", "list", "--all").stdout
    assert "no active supervisor" in refused(cli, "supervisors", "remove", "ostan@qom.example")
    assert "no active supervisor 999" in refused(cli, "supervisors", "remove", "999")
    for beyond in ("9" * 20, "²"):  # more than a row id holds; a digit only to str.isdigit
        assert "no active supervisor" in refused(cli, "supervisors", "remove", beyond)
    engine = make_engine(f"sqlite:///{storage / 'ivr.db'}")
    with Session(engine) as session:
        rows = session.exec(select(Supervisor.email, Supervisor.active)).all()
    assert sorted(rows) == [("ostan@qom.example", False), ("setad@mimt.example", True)]
    engine.dispose()


# The outbox ---------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.recipients += list(envelope.rcpt_tos)  # type: ignore[attr-defined]
        return "250 OK"


def test_outbox_list_and_retry_sends_a_failed_mail_again(cli: Cli, storage: Path) -> None:
    tracking = call_in(cli, "1 4 2 1 # 1")
    engine = make_engine(f"sqlite:///{storage / 'ivr.db'}")
    with Session(engine) as session:
        ticket_id = session.exec(select(Ticket.id).where(Ticket.tracking == tracking)).one()
        failed = Notification(
            ticket_id=ticket_id, step="escalation-1", recipient="ostan@qom.example",
            province="qom", sender="124@mimt.example", subject="ارجاع", body="متن",
            attempts=10, last_error="SMTPDataError: (554, 'refused')",
        )  # fmt: skip
        sent = Notification(
            ticket_id=ticket_id, step="escalation-1", recipient="setad@mimt.example",
            province="tehran", sender="124@mimt.example", subject="ارجاع", body="متن",
            sent_at=utcnow(), attempts=1,
        )  # fmt: skip
        session.add_all([failed, sent])
        session.commit()
        failed_id, sent_id = failed.id, sent.id
    out = cli("outbox", "list", "--state", "failed").stdout.splitlines()
    assert len(out) == 1 and out[0].split()[:2] == [str(failed_id), "failed"]
    assert "last error: SMTPDataError" in out[0]
    assert str(sent_id) in cli("outbox", "list", "--state", "sent").stdout
    assert cli("outbox", "list", "--state", "pending").stdout.strip() == "no mails pending"
    assert "--state must be one of" in refused(cli, "outbox", "list", "--state", "lost")
    assert "is sent: only a failed mail" in refused(cli, "outbox", "retry", str(sent_id))
    assert "no mail 999" in refused(cli, "outbox", "retry", "999")
    assert "no mail 9999" in refused(cli, "outbox", "retry", "9" * 20)  # beyond a row id

    out = cli("outbox", "retry", str(failed_id)).stdout
    assert out.strip() == f"mail {failed_id} to ostan@qom.example queued again"
    pending = cli("outbox", "list", "--state", "pending").stdout
    assert f"{failed_id}  pending" in pending and "attempts 0" in pending
    assert "is pending" in refused(cli, "outbox", "retry", str(failed_id))

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        calendar = WorkCalendar()
        opening = calendar.next_opening(utcnow() + timedelta(minutes=1), "qom")
        assert send_due(engine, calendar, f"smtp://127.0.0.1:{port}", opening) == 1
    finally:
        controller.stop()
    assert inbox.recipients == ["ostan@qom.example"]
    assert str(failed_id) in cli("outbox", "list", "--state", "sent").stdout
    engine.dispose()
