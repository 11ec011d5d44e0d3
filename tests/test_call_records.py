"""What a call leaves in ``call`` and ``call_step``: the flow's enums, a transfer's cause, how
the call ended, and no number the caller typed.

Whole calls run through the real session code (the terminal phone, as ``ivr call`` does) on a
real SQLite database; the same records over HTTP are checked in test_twilio_calls.py and on the
real PBX in tests/asterisk/test_asterisk_flow.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.flow.outcomes import CallEnd, CallOutcome, EventKind, StepOutcome
from ivr.prompts import load_catalog
from ivr.services import build_services
from ivr.session import CallSession, Services
from ivr.settings import Settings
from ivr.telephony.terminal import CallResult, TerminalPhone
from ivr.tickets.calls import CallStore
from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.service import TicketDraft, TicketService

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
TEXTS = {pid: p.text for pid, p in load_catalog(PROMPTS).items()}
CALLER_ID = "09121234567"
TYPED_CALLBACK = "09357654321"
NATIONAL_ID = "7731689956"


def _voice(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00\xf0\xff" * 12000)
    return path


@dataclass
class Line:
    """A hotline in this process: settings, services and the database file they share."""

    settings: Settings
    services: Services
    voice: Path

    def call(self, keys: list[str], caller: str | None = CALLER_ID) -> CallResult:
        phone = TerminalPhone(
            self.services,
            self.settings,
            TEXTS,
            keys=keys,
            recording=self.voice,
            caller=caller,
            say=lambda _line: None,
        )
        return phone.run()

    def sql(self, query: str, *params: object) -> list[sqlite3.Row]:
        connection = sqlite3.connect(self.settings.storage_dir / "ivr.db")
        connection.row_factory = sqlite3.Row
        try:
            return connection.execute(query, params).fetchall()
        finally:
            connection.close()

    def row(self, result: CallResult) -> sqlite3.Row:
        return self.sql("SELECT * FROM call WHERE external_id = ?", result.external_id)[0]

    def steps(self, result: CallResult) -> list[tuple[str, str, str | None, str]]:
        rows = self.sql(
            "SELECT node, event, key, outcome FROM call_step WHERE call_id = ? ORDER BY id",
            self.row(result)["id"],
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def line(tmp_path: Path) -> Line:
    settings = Settings(storage_dir=tmp_path / "storage", prompts_dir=PROMPTS, database_url="")
    upgrade(settings.db_url)
    return Line(settings, build_services(settings), _voice(tmp_path / "voice.wav"))


def test_every_step_of_a_whole_call_is_written_in_the_flows_enums(line: Line):
    result = line.call(["7", "1", "3", "2", "1", "#", "1", "h"])  # a wrong key, then a ticket
    assert result.tracking is not None
    steps = line.steps(result)
    assert {event for _, event, _, _ in steps} <= {k.value for k in EventKind}
    assert {outcome for *_, outcome in steps} <= {o.value for o in StepOutcome}
    assert steps[:2] == [
        ("new", "call_started", None, "started"),
        ("main", "digits", "7", "invalid"),
    ]
    assert ("describe", "recording_finished", "3.0s", "ok") in steps
    assert ("nid", "digits", "0 digits", "skipped") in steps
    assert ("register", "ticket_created", None, "created") in steps
    assert steps[-1] == ("registered", "hangup", None, "hangup")
    row = line.row(result)
    assert (row["outcome"], row["ended_by"]) == ("ticket", "caller")
    assert (row["province"], row["called"], row["channel_id"]) == ("qom", "124", None)


def test_hash_alone_is_recorded_as_empty_and_silence_as_timeout(line: Line):
    result = line.call(["1", "#", "_", "h"])  # new request; # alone at the category menu
    steps = line.steps(result)
    assert ("category", "digits", "", "empty") in steps
    assert ("category", "timeout", None, "timeout") in steps
    assert not any(s[1] == "digits" and s[3] == "timeout" for s in steps)


def test_pressing_zero_is_recorded_as_a_transfer_the_caller_asked_for(line: Line):
    result = line.call(["0"])
    assert result.ended_by == "transfer"
    assert line.steps(result)[-2:] == [
        ("main", "digits", "0", "transfer_requested"),
        ("agent.check", "agents_checked", None, "agents_available"),
    ]
    row = line.row(result)
    assert (row["outcome"], row["ended_by"]) == ("transferred", "transferred")


def test_three_failures_are_recorded_with_the_node_they_happened_at(line: Line):
    result = line.call(["1", "3", "2", "2", "123", "0912", "1"])  # three bad callback numbers
    assert result.ended_by == "transfer"
    steps = line.steps(result)
    assert steps[-4:] == [
        ("callback.enter", "digits", "3 digits", "invalid"),
        ("callback.enter", "digits", "4 digits", "invalid"),
        ("callback.enter", "digits", "1 digits", "transfer_after_failures"),
        ("agent.check", "agents_checked", None, "agents_available"),
    ]
    assert TEXTS["retry.too_many_entries"] in "\n".join(result.transcript)
    assert line.row(result)["ended_by"] == "transferred"


def test_a_database_failure_is_recorded_as_a_transfer_because_the_system_was_unavailable(
    tmp_path: Path,
):
    """The tickets' database goes away while the call store's stays: the lookup fails, the
    caller hears that the system is unavailable and reaches a person, and the record says why."""
    settings = Settings(storage_dir=tmp_path / "storage", prompts_dir=PROMPTS, database_url="")
    upgrade(settings.db_url)
    tickets_dir = tmp_path / "tickets-db"
    tickets_url = f"sqlite:///{tickets_dir / 'tickets.db'}"
    upgrade(tickets_url)
    tickets = TicketService(make_engine(tickets_url), settings)
    draft = TicketDraft("terminal", "qom", "trade", None, None, None, TYPED_CALLBACK, None)
    tracking = tickets.create(draft).tracking
    assert tracking is not None
    line = Line(
        settings,
        Services(tickets=tickets, calls=CallStore(make_engine(settings.db_url))),
        _voice(tmp_path / "voice.wav"),
    )
    tickets.engine.dispose()
    tickets_dir.rename(tmp_path / "tickets-db-away")

    result = line.call(["2", f"{tracking}#"])
    assert result.ended_by == "transfer"
    assert TEXTS["system.unavailable"] in "\n".join(result.transcript)
    assert line.steps(result)[-1] == (
        "followup.lookup",
        "system_failed",
        None,
        "transfer_unavailable",
    )
    row = line.row(result)
    assert (row["outcome"], row["ended_by"]) == ("transferred", "transferred")


def test_a_call_whose_record_is_out_of_reach_still_fails_over_to_a_person(tmp_path: Path):
    """What the Twilio webhooks do when they cannot load a call: never raise, always transfer."""
    down = tmp_path / "down"
    down.mkdir()
    settings = Settings(storage_dir=tmp_path / "storage", database_url=f"sqlite:///{down}")
    services = build_services(settings, outage_ok=True)  # a directory is no database: every
    # query fails
    actions = CallSession.fail_over(services, "CA-lost", "qom")
    assert [type(a).__name__ for a in actions] == ["Play", "Transfer"]
    assert actions[0].prompts == ("system.unavailable",)  # type: ignore[union-attr]


def test_a_transport_that_loses_the_call_records_a_system_error(line: Line):
    session, _ = CallSession.start(
        line.services,
        channel="asterisk",
        external_id="1700000000.7",
        caller=CALLER_ID,
        called="124",
        default_province="qom",
        channel_id="PJSIP/trunk-0000002a",
    )
    session.crashed()  # what AsteriskCalls does when an AGI command fails under it
    row = line.sql("SELECT * FROM call WHERE external_id = '1700000000.7'")[0]
    assert (row["outcome"], row["ended_by"]) == ("failed", "system_error")
    assert row["channel_id"] == "PJSIP/trunk-0000002a"


def test_the_call_store_takes_only_the_enums(line: Line):
    calls = line.services.calls
    call_id = calls.open("terminal", "T-1", None, "124", province="qom")
    with pytest.raises(ValueError):
        calls.finish(call_id, "completed", CallEnd.CALLER)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        calls.finish(call_id, CallOutcome.TICKET, "hung up")  # type: ignore[arg-type]


# --- the personal-data rule ---------------------------------------------------------------------


def test_no_typed_number_is_stored_in_any_step_or_in_the_saved_state(line: Line):
    """A new request with a typed callback number and national ID, then a follow-up from another
    phone with the tracking number and the last four digits: every step's key and every call's
    saved state are read, and none holds a number the caller typed (only its length)."""
    # The caller ID (the network's, stored as ``call.caller``) is not usable as a callback, so
    # the caller types one; a wrong national ID first, then the right one.
    filed = line.call(
        ["1", "2", "2", f"{TYPED_CALLBACK}#", "1", "7731689957#", f"{NATIONAL_ID}#", "1", "h"],
        caller="anonymous",
    )
    assert filed.tracking is not None
    tracking = filed.tracking
    last_four = TYPED_CALLBACK[-4:]
    followed = line.call(["2", f"{tracking}#", "1111#", f"{last_four}#", "h"], caller=None)
    kept = line.sql("SELECT callback_number, national_id FROM ticket WHERE tracking = ?", tracking)
    assert tuple(kept[0]) == (TYPED_CALLBACK, NATIONAL_ID)  # the ticket keeps what it needs
    followed_steps = line.steps(followed)
    assert ("followup.verify", "digits", "4 digits", "ok") in followed_steps

    typed = (TYPED_CALLBACK, NATIONAL_ID, "7731689957", tracking, last_four, "1111")
    for result in (filed, followed):
        for node, _event, key, _outcome in line.steps(result):
            if key:  # one menu key, a typed number's length, or a recording's length
                assert re.fullmatch(r"[0-9*#]|\d+ digits|\d+\.\ds", key), (node, key)
            for number in typed:
                assert number not in (key or ""), (node, key)
        state = line.row(result)["state"]
        for number in typed:
            assert number not in state, f"{number} kept in the state of {result.external_id}"
        saved = json.loads(state)
        assert saved["callback"] is saved["national_id"] is saved["ticket"] is None
    assert len([s for s in line.steps(filed) if s[2] == "11 digits"]) == 1
    assert len([s for s in line.steps(filed) if s[2] == "10 digits"]) == 2


def test_a_number_typed_at_a_menu_is_logged_by_its_length_too(line: Line):
    result = line.call([TYPED_CALLBACK, "h"])  # the terminal lets a caller type it anywhere
    assert ("main", "digits", "11 digits", "invalid") in line.steps(result)
