"""``ivr callbacks list|show|cancel|hours``: the real CLI as a subprocess on a test database."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pg import scratch_database
from refusals import refusal

from ivr.callbacks.models import Outcome
from ivr.callbacks.service import CallbackService
from ivr.clock import utcnow
from ivr.tickets.db import make_engine

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def service(storage: Path, ivr_cli: Cli) -> CallbackService:
    ivr_cli("db", "upgrade")
    return CallbackService(make_engine(f"sqlite:///{storage / 'ivr.db'}"))


def one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    """A refused ``ivr callbacks …``: one line naming the command; what it says after that."""
    command = done.args[1:3]  # [ivr, "callbacks", "cancel", …]
    return refusal(done, " ".join(command))


def test_list_in_service_order_as_a_table_and_as_json(service: CallbackService, ivr_cli: Cli):
    assert ivr_cli("callbacks", "list").stdout.strip() == "no callbacks"
    now = utcnow()
    late = service.request("09121111111", "qom", now - timedelta(minutes=1))
    early = service.request("09352222222", "tehran", now - timedelta(minutes=7))
    table = ivr_cli("callbacks", "list").stdout.splitlines()
    assert table[0].split()[:4] == ["id", "status", "number", "province"]
    assert [line.split()[0] for line in table[1:]] == [str(early.id), str(late.id)]
    assert "14" in table[1]  # the Jalali year of the entry time
    rows = json.loads(ivr_cli("callbacks", "list", "--json").stdout)
    assert [(r["id"], r["number"], r["status"]) for r in rows] == [
        (early.id, "09352222222", "pending"),
        (late.id, "09121111111", "pending"),
    ]
    assert rows[0]["entered_at"].endswith("Z") and rows[0]["attempts"] == 0


def test_list_by_status(service: CallbackService, ivr_cli: Cli):
    done = service.request("09121111111", "qom", utcnow())
    waiting = service.request("09352222222", "qom", utcnow())
    assert done.id is not None
    attempt = service.claim(done.id, "n1", "asterisk")
    assert attempt is not None and attempt.id is not None
    service.finish(attempt.id, Outcome.ANSWERED)
    only = json.loads(ivr_cli("callbacks", "list", "--status", "done", "--json").stdout)
    assert [r["id"] for r in only] == [done.id]
    both = ivr_cli("callbacks", "list", "--status", "pending", "--status", "done", "--json")
    assert {r["id"] for r in json.loads(both.stdout)} == {done.id, waiting.id}
    line = one_clear_line(ivr_cli("callbacks", "list", "--status", "waiting", check=False))
    assert line == "unknown status waiting"


def test_show_a_callback_and_its_attempts(service: CallbackService, ivr_cli: Cli):
    row = service.request("09121111111", "qom", utcnow())
    assert row.id is not None
    attempt = service.claim(row.id, "node-a", "asterisk")
    assert attempt is not None and attempt.id is not None
    service.finish(attempt.id, Outcome.NO_ANSWER, "DIALSTATUS=NOANSWER cause=19")
    shown = json.loads(ivr_cli("callbacks", "show", str(row.id), "--json").stdout)
    assert shown["attempts"] == 1 and shown["status"] == "pending"
    (tried,) = shown["tries"]
    assert (tried["slot"], tried["node"], tried["outcome"]) == (1, "node-a", "no_answer")
    text = ivr_cli("callbacks", "show", str(row.id)).stdout
    assert "DIALSTATUS=NOANSWER" in text and "node-a" in text


def test_cancel(service: CallbackService, ivr_cli: Cli):
    row = service.request("09121111111", "qom", utcnow())
    persian_id = str(row.id).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert "cancelled" in ivr_cli("callbacks", "cancel", persian_id).stdout
    assert service.get(row.id).status == "cancelled"  # type: ignore[arg-type, union-attr]
    again = one_clear_line(ivr_cli("callbacks", "cancel", str(row.id), check=False))
    assert again == f"callback {row.id} is already cancelled"
    assert one_clear_line(ivr_cli("callbacks", "cancel", "424242", check=False)) == (
        "no callback 424242"
    )
    for odd in ("abc", "²", "9" * 30):  # "²": a digit to str.isdigit, not to int
        assert one_clear_line(ivr_cli("callbacks", "cancel", odd, check=False)) == (
            f"not a callback id: {odd!r}"
        )
    assert one_clear_line(ivr_cli("callbacks", "show", "99", check=False)) == "no callback 99"


def test_a_new_embedded_database_is_created_by_the_command_itself(ivr_cli: Cli):
    """As every command on embedded SQLite (the README's promise): no `ivr db upgrade` first."""
    assert ivr_cli("callbacks", "list").stdout.strip() == "no callbacks"


def test_a_postgresql_database_never_upgraded_is_one_clear_line(ivr_cli: Cli):
    with scratch_database() as url:
        done = ivr_cli("callbacks", "list", check=False, database_url=url)
    # The database, not the command's input: said as ``ivr:``, as every such error is.
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("ivr: the database ") and "ivr db upgrade" in line


def test_hours_say_when_agents_answer_next(service: CallbackService, ivr_cli: Cli):
    out = ivr_cli("callbacks", "hours", "--province", "qom", "--at", "1404/12/27 17:00").stdout
    assert "08:00–16:00" in out and "agents are off" in out
    assert "next opening: چهارشنبه ۰۵ فروردین ۱۴۰۵ ساعت ۰۸:۰۰" in out
    inside = ivr_cli("callbacks", "hours", "--at", "2026-05-16 10:00").stdout
    assert "agents answer" in inside and "next opening" not in inside
    assert one_clear_line(ivr_cli("callbacks", "hours", "--at", "1405/13/01", check=False))


def test_a_bad_limit_is_one_clear_line(service: CallbackService, ivr_cli: Cli):
    assert "--limit" in one_clear_line(ivr_cli("callbacks", "list", "--limit", "0", check=False))


def test_the_first_administrator_is_made_on_a_new_embedded_database(ivr_cli: Cli):
    """The quick start's first step after `pip install .`: no database yet, no upgrade asked."""
    added = ivr_cli("users", "add", "admin", "--role", "admin", "--password-stdin",
                    input="a long enough password\n")  # fmt: skip
    assert "admin" in added.stdout
    assert "admin" in ivr_cli("users", "list").stdout
    assert ivr_cli("supervisors", "list").returncode == 0
    assert ivr_cli("outbox", "list").stdout.strip() == "no mails"
