"""The terminal phone (``ivr call --keys``) and ``ivr speak``, run as the commands people type.

The terminal phone goes through the same call session as Twilio, so the same keys must make the
same ticket whichever way they arrive; only the channel differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from twilio_phone import TwilioPhone

if TYPE_CHECKING:
    import subprocess

    from conftest import CallHelpers, IvrServer

CALLER = "+989121234567"
TRACKING_LINE = re.compile(r"کد رهگیری: (\d+)")
SAME_KEYS = ("1", "1", "8", "3", "2", "2", "09351112233#", "1", "7731689956#", "1")
"""New request, industry, zones, Siro, (record), confirm, enter another callback number, confirm
it, national ID, register."""
COMPARED = (
    "status",
    "agency",
    "province",
    "category",
    "place",
    "callback_number",
    "caller_number",
)


def terminal_call(
    server: IvrServer, keys: list[str] | tuple[str, ...], recording: Path, caller: str = CALLER
) -> tuple[str | None, str]:
    """``ivr call`` on the server's storage; returns (tracking number or None, transcript)."""
    done = server.ivr(
        "call", "--keys", " ".join(keys), "--recording", str(recording), "--caller", caller
    )
    found = TRACKING_LINE.search(done.stdout)
    return (found.group(1) if found else None), done.stdout


def show(server: IvrServer, tracking: str) -> dict:
    return json.loads(server.ivr("tickets", "show", tracking, "--json").stdout)


def national_id(server: IvrServer, tracking: str) -> str | None:
    """Not in ``tickets show --json``: read from the database."""
    return server.sql("SELECT national_id FROM ticket WHERE tracking = ?", (tracking,))[0][0]


def test_terminal_call_creates_ticket(server: IvrServer, recording_wav: Path) -> None:
    tracking, transcript = terminal_call(server, SAME_KEYS, recording_wav)
    assert tracking is not None, transcript
    ticket = show(server, tracking)
    assert ticket["channel"] == "terminal"
    assert (ticket["category"], ticket["place"]) == ("industry", "siro")
    assert ticket["callback_number"] == "09351112233"
    assert national_id(server, tracking) == "7731689956"
    recording = Path(ticket["recording_path"])
    assert recording.parent == server.recordings
    assert recording.read_bytes() == recording_wav.read_bytes()
    assert "[انتقال" not in transcript
    call = server.sql(
        "SELECT call.channel, call.outcome, call.called FROM call"
        " JOIN ticket ON call.ticket_id = ticket.id WHERE ticket.tracking = ?",
        (tracking,),
    )
    assert [tuple(row) for row in call] == [("terminal", "ticket", "124")]


def test_same_keys_make_the_same_ticket_by_twilio(
    server: IvrServer, recording_wav: Path, recording_url: str, calls: CallHelpers
) -> None:
    by_terminal, transcript = terminal_call(server, SAME_KEYS, recording_wav)
    assert by_terminal is not None, transcript

    with TwilioPhone(
        server.base_url, server.token, from_number=CALLER, recording_url=recording_url
    ) as phone:
        phone.dial()
        by_twilio = calls.tracking(calls.drive(phone, SAME_KEYS).plays)
        phone.hangup()

    terminal, twilio = show(server, by_terminal), show(server, by_twilio)
    assert by_terminal != by_twilio
    assert (terminal["channel"], twilio["channel"]) == ("terminal", "twilio")
    assert {k: terminal[k] for k in COMPARED} == {k: twilio[k] for k in COMPARED}
    assert national_id(server, by_terminal) == national_id(server, by_twilio) == "7731689956"
    assert [h["kind"] for h in terminal["history"]] == [h["kind"] for h in twilio["history"]]
    for ticket in (terminal, twilio):
        assert Path(ticket["recording_path"]).read_bytes() == recording_wav.read_bytes()


def test_persian_digits_in_keys(server: IvrServer, recording_wav: Path) -> None:
    keys = ["۱", "۴", "۲", "۲", "۰۹۳۵۱۱۱۲۲۳۳#", "۱", "۷۷۳۱۶۸۹۹۵۶#", "۱"]
    tracking, transcript = terminal_call(server, keys, recording_wav)
    assert tracking is not None, transcript
    ticket = show(server, tracking)
    assert (ticket["category"], ticket["place"]) == ("consumer", None)
    assert ticket["callback_number"] == "09351112233"
    assert national_id(server, tracking) == "7731689956"
    # the number is printed in ASCII digits and `tickets show` takes it in Persian digits too
    persian = tracking.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert show(server, persian)["tracking"] == tracking


def test_keys_running_out_hang_up_without_ticket(server: IvrServer, recording_wav: Path) -> None:
    before = server.sql("SELECT count(*) FROM ticket")[0][0]
    calls_before = server.sql("SELECT max(id) FROM call")[0][0] or 0
    tracking, transcript = terminal_call(server, ["1", "1", "2", "2", "1", "#"], recording_wav)
    assert tracking is None, transcript
    assert server.sql("SELECT count(*) FROM ticket")[0][0] == before
    rows = server.sql(
        "SELECT channel, outcome, ended_at, ticket_id FROM call WHERE id > ?", (calls_before,)
    )
    assert len(rows) == 1
    assert (rows[0]["channel"], rows[0]["outcome"], rows[0]["ticket_id"]) == (
        "terminal",
        "abandoned",
        None,
    )
    assert rows[0]["ended_at"] is not None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("number", "1587"), "هزار و پانصد و هشتاد و هفت"),
        (("date", "2026-06-05"), "پانزدهم خرداد هزار و چهارصد و پنج"),
        (("digits", "09121234567"), "صفر نه یک دو یک دو سه چهار پنج شش هفت"),
        (("digits", "۰۹۱۲۱۲۳۴۵۶۷"), "صفر نه یک دو یک دو سه چهار پنج شش هفت"),
    ],
)
def test_speak(
    ivr_cli: Callable[..., subprocess.CompletedProcess[str]], args: tuple[str, ...], expected: str
) -> None:
    assert ivr_cli("speak", *args).stdout == expected + "\n"
