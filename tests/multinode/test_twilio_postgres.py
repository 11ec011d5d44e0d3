"""The whole Twilio path on PostgreSQL: what works on SQLite works on the shared database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from twilio_phone import TwilioPhone

if TYPE_CHECKING:
    from conftest import CallHelpers, IvrServer


def test_new_request_and_follow_up_over_twilio_on_postgresql(
    pg_url: str,
    start_server: Callable[..., IvrServer],
    token: str,
    recording_url: str,
    calls: CallHelpers,
) -> None:
    server = start_server(database_url=pg_url)
    assert server.env["IVR_DATABASE_URL"].startswith("postgresql")
    with TwilioPhone(server.base_url, token, recording_url=recording_url) as phone:
        phone.dial()
        last = calls.drive(phone, ["1", "4", "2", "1", "#", "1"])
        tracking = calls.tracking(last.plays)
        phone.hangup()

    shown = json.loads(server.ivr("tickets", "show", tracking, "--json").stdout)
    assert (shown["channel"], shown["category"], shown["place"]) == ("twilio", "consumer", None)
    assert shown["due_at"] > shown["created_at"]

    # Another node (a second server on the same database) takes the follow-up.
    other = start_server(database_url=server.env["IVR_DATABASE_URL"])
    with TwilioPhone(other.base_url, token) as caller:
        caller.dial()
        report = calls.drive(caller, ["2", f"{tracking}#"])
    assert "followup-registered_on" in calls.stems(report.plays)
