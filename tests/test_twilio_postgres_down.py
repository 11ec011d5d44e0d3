"""PostgreSQL stopped in the middle of a Twilio call (issue 8, "bounded time"), on a private
PostgreSQL instance this module starts and stops (never the shared cluster other tests use).

The webhook still answers within 5 s, the confirmed request is spooled and the caller hears
its tracking number, Twilio's retry hears the same one, and once PostgreSQL is back the spool
stores exactly one ticket for the call.
"""

from __future__ import annotations

import contextlib
import html
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from needs import need
from sqlalchemy import text
from twilio_phone import TwilioPhone, free_port

from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketService

if TYPE_CHECKING:
    from conftest import CallHelpers, IvrServer

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TO_SUMMARY = ("1", "1", "2", "2", "1", "#")
"""A new request up to its summary (registering is the next key, 1)."""


class PrivatePostgres:
    """One PostgreSQL server in a temporary folder, on a free loopback port, trust auth."""

    def __init__(self, folder: Path, port: int, user: str) -> None:
        self.folder, self.port, self.user = folder, port, user
        self.data = folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    need(str(PG_BIN / "initdb"), "postgresql")
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    folder = Path(tempfile.mkdtemp(prefix="ivr-pg-down-"))
    if os.geteuid() == 0:
        shutil.chown(folder, user)
    server = PrivatePostgres(folder, free_port(), user)
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def signed_post(phone: TwilioPhone, url: str, extra: dict[str, str]) -> httpx.Response:
    params = phone.base_params() | extra
    return phone.client.post(
        url, data=params, headers={"X-Twilio-Signature": phone.sign(url, params)}
    )


def test_postgres_stopped_mid_call_still_answers_and_spools_one_ticket(
    private_postgres: PrivatePostgres,
    start_server: Callable[..., IvrServer],
    recording_url: str,
    calls: CallHelpers,
) -> None:
    server = start_server(database_url=private_postgres.url)
    phone = TwilioPhone(server.base_url, server.token, recording_url=recording_url)
    other = TwilioPhone(server.base_url, server.token, from_number="+989351112233")
    try:
        phone.dial()
        summary = calls.drive(phone, TO_SUMMARY)
        assert summary.gather is not None
        confirm_url = urllib.parse.urljoin(summary.url, summary.gather["action"])

        private_postgres.stop()
        started = time.monotonic()
        answer = signed_post(phone, confirm_url, {"Digits": "1"})
        took = time.monotonic() - started
        assert answer.status_code == 200
        assert took < 5.0, f"the webhook took {took:.1f} s with PostgreSQL stopped"
        tracking = calls.tracking(_plays(answer.text))
        spooled = list((server.storage / "spool").glob("*.json"))
        assert len(spooled) == 1

        retry = signed_post(phone, confirm_url, {"Digits": "1"})  # Twilio retries
        assert retry.status_code == 200
        assert calls.tracking(_plays(retry.text)) == tracking
        assert len(list((server.storage / "spool").glob("*.json"))) == 1

        # A call that starts during the outage is answered too, in time.
        started = time.monotonic()
        greeting = other.dial()
        assert time.monotonic() - started < 5.0
        assert calls.stems(greeting.plays)[0] in ("greeting", "system-unavailable")

        private_postgres.start()
        settings = Settings(storage_dir=server.storage, database_url=private_postgres.url)
        engine = make_engine(private_postgres.url)
        try:
            service = TicketService(engine, settings)
            assert service.replay_spool() == 1
            assert service.replay_spool() == 0
            assert phone.hangup().status_code == 204
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT tracking FROM ticket WHERE call_key = :key"),
                    {"key": f"twilio:{phone.call_sid}"},
                ).all()
                outcome = connection.execute(
                    text("SELECT outcome FROM call WHERE external_id = :sid"),
                    {"sid": phone.call_sid},
                ).scalar()
        finally:
            engine.dispose()
        assert [r[0] for r in rows] == [tracking]
        assert outcome == "ticket"  # the turn answered during the outage was kept
        assert "out of reach" in server.stderr()
    finally:
        phone.close()
        other.close()


def _plays(xml: str) -> list[str]:
    return [html.unescape(url) for url in re.findall(r"<Play>(.*?)</Play>", xml)]
