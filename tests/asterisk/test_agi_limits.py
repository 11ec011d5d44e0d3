"""The FastAGI server under attack: floods against its real socket, then a real Asterisk call.

Each flood is what a stranger who reaches the port could send: one huge line, an environment
that never ends, a byte at a time, more connections than the server takes, a client that stops
answering commands. The server must drop each within its limits, never hand it to the call
handler (so no call row is written), and keep serving real calls afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.telephony.agi import (
    AgiCall,
    AgiLimits,
    AgiTimeout,
    BadEnvironment,
    FastAgiServer,
    parse_environment,
)

ENV = b"agi_network: yes\nagi_channel: PJSIP/sipp-00000001\nagi_uniqueid: 1.2\nagi_arg_1: a b\n\n"
LIMITS = AgiLimits(
    line_bytes=1024, env_bytes=8192, env_lines=64, env_deadline_s=1.0, command_idle_s=1.0
)


class Served:
    """A FastAGI server on a free port that counts what reached its handler."""

    def __init__(self, limits: AgiLimits) -> None:
        self.handled: list[AgiCall] = []
        self.finished: list[BaseException | None] = []
        self.done = threading.Event()
        self.server = FastAgiServer(self._handle, port=0, limits=limits, on_finished=self._finished)

    def _handle(self, call: AgiCall) -> None:
        self.handled.append(call)
        call.command("NOOP")

    def _finished(self, call: AgiCall | None, error: BaseException | None) -> None:
        if call is not None:
            self.finished.append(error)
            self.done.set()

    def connect(self) -> socket.socket:
        return socket.create_connection(self.server.address, timeout=10)


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served(LIMITS)
    s.server.serve_in_thread()
    try:
        yield s
    finally:
        s.server.shutdown(hang_up_calls=True)


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (reading what it sends); fails past ``seconds``."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def answer_noop(sock: socket.socket) -> None:
    f = sock.makefile("rb")
    assert f.readline() == b"NOOP\n"
    sock.sendall(b"200 result=0\n")
    f.close()


def test_a_valid_environment_reaches_the_handler(served: Served) -> None:
    with served.connect() as s:
        s.sendall(ENV)
        answer_noop(s)
        assert served.done.wait(5)
    assert served.finished == [None]
    assert served.handled[0].uniqueid == "1.2"


def test_a_huge_line_is_cut_off_without_buffering_it(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ivr.telephony.agi")
    with served.connect() as s:
        sent = 0
        with pytest.raises(OSError):  # the server closes while we still send
            for _ in range(2000):  # up to 128 MB, one line
                s.sendall(b"agi_channel: " + b"x" * 65536)
                sent += 65536
        assert sent < 16 * 2**20, "the server kept reading a line far past its cap"
    assert not served.handled
    assert "line over 1024 bytes" in caplog.text


def test_an_endless_environment_is_refused(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ivr.telephony.agi")
    with served.connect() as s:
        with pytest.raises(OSError):
            for i in range(100_000):
                s.sendall(b"agi_arg_%d: some value\n" % i)
        assert closed_within(s, 5) < 5
    assert not served.handled
    assert "environment over 64 lines" in caplog.text


def test_a_slow_drip_is_cut_at_the_environment_deadline(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ivr.telephony.agi")
    started = time.monotonic()
    with served.connect() as s, pytest.raises(OSError):
        for byte in ENV * 100:  # a byte every 50 ms: each recv is quick, the whole is not
            s.sendall(bytes([byte]))
            time.sleep(0.05)
            if time.monotonic() - started > 10:
                pytest.fail("the slow client was never cut off")
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3.0, elapsed
    assert not served.handled
    assert "refused: too slow" in caplog.text


def test_connections_over_the_cap_are_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "ivr.telephony.agi")
    served = Served(AgiLimits(max_connections=3, env_deadline_s=2.0, command_idle_s=2.0))
    served.server.serve_in_thread()
    try:
        idle = [served.connect() for _ in range(3)]
        for s in idle:
            s.sendall(b"agi_network: yes\n")  # half an environment, then nothing
        time.sleep(0.3)
        extra = [served.connect() for _ in range(5)]
        for s in extra:  # closed at once, not after the environment deadline
            assert closed_within(s, 1.0) < 1.0
            s.close()
        assert served.server.refused == 5
        assert caplog.text.count("connections open, the limit") == 1  # once, not per refusal
        assert "(1 refused so far)" in caplog.text
        for s in idle:  # the idle ones are dropped at their deadline, freeing their places
            assert closed_within(s, 4) < 4
            s.close()
        time.sleep(0.2)
        with served.connect() as s:
            s.sendall(ENV)
            answer_noop(s)
            assert served.done.wait(5)
        assert len(served.handled) == 1
    finally:
        served.server.shutdown(hang_up_calls=True)


def test_a_client_that_stops_answering_is_given_up(served: Served) -> None:
    started = time.monotonic()
    with served.connect() as s:
        s.sendall(ENV)
        f = s.makefile("rb")
        assert f.readline() == b"NOOP\n"  # and never answered
        assert served.done.wait(5)
        f.close()
    assert 0.9 < time.monotonic() - started < 3.0
    assert isinstance(served.finished[0], AgiTimeout)


def test_no_call_row_before_a_valid_environment(tmp_path) -> None:
    """Through the production handler: refused clients leave the call table empty; the first
    valid environment writes the first row."""
    from sqlmodel import Session, func, select

    from ivr.services import build_services
    from ivr.settings import Settings
    from ivr.telephony.asterisk import AsteriskCalls
    from ivr.tickets.db import upgrade
    from ivr.tickets.models import Call

    url = f"sqlite:///{tmp_path}/ivr.db"
    upgrade(url)
    settings = Settings(storage_dir=tmp_path / "storage", database_url=url)
    services = build_services(settings)
    server = FastAgiServer(AsteriskCalls(services, settings), port=0, limits=LIMITS)
    server.serve_in_thread()

    def calls() -> int:
        with Session(services.tickets.engine) as session:
            return int(session.exec(select(func.count()).select_from(Call)).one())

    try:
        for junk in (b"hello\n\n", b"agi_channel: x\n\n", b"\n", b"agi_network: yes\n"):
            with socket.create_connection(server.address, timeout=5) as s:
                s.sendall(junk)
                assert closed_within(s, 3) < 3
        assert calls() == 0
        with socket.create_connection(server.address, timeout=5) as s:
            s.sendall(ENV)
            s.makefile("rb").readline()  # the flow's first command: then the caller is gone
        deadline = time.monotonic() + 5
        while calls() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls() == 1
    finally:
        server.shutdown(hang_up_calls=True)


# -- the parser, property-based ----------------------------------------------------------------

CASES: list[int] = [0]
"""How many examples hypothesis ran (the test below reports it)."""

line = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda k, v: b"agi_" + k.encode() + b": " + v,
        st.text("abcxyz_019", min_size=1, max_size=12),
        st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    ),
    st.sampled_from([b"agi_channel: SIP/x", b"agi_uniqueid: 1.2", b"", b"\r", b":", b"agi_:x"]),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, max_size=40), st.booleans(), st.binary(max_size=30))
def test_the_environment_parser_always_gives_a_defined_answer(
    lines: list[bytes], terminated: bool, tail: bytes
) -> None:
    CASES[0] += 1
    data = b"\n".join(lines) + (b"\n\n" if terminated else b"") + tail
    try:
        env = parse_environment(data, LIMITS)
    except BadEnvironment as refused:
        assert str(refused)
        return
    assert env["agi_channel"] and env["agi_uniqueid"]
    assert all(key.startswith("agi_") and "\n" not in value for key, value in env.items())


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=20_000))
def test_the_environment_parser_on_raw_bytes(data: bytes) -> None:
    CASES[0] += 1
    with contextlib.suppress(BadEnvironment):
        parse_environment(data, LIMITS)


def test_report_how_many_cases_ran(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the two properties (file order): the count goes to the test log."""
    with capsys.disabled():
        print(f"\nAGI environment parser: {CASES[0]} hypothesis cases")
    assert CASES[0] >= 1000


# -- the real Asterisk after the floods --------------------------------------------------------


def test_asterisk_calls_still_work_after_the_floods(agi, dial) -> None:
    agi.server.limits = LIMITS
    seen: dict[str, str] = {}
    agi.serve(lambda call: seen.update(call.env))
    address = agi.server.address
    floods = [b"agi_channel: " + b"x" * 200_000, b"agi_a: b\n" * 5000]
    for flood in floods:
        with socket.create_connection(address, timeout=5) as s:
            with contextlib.suppress(OSError):
                s.sendall(flood)
            closed_within(s, 5)
    drip = socket.create_connection(address, timeout=5)
    drip.sendall(b"agi_net")  # left hanging: dropped at the deadline, meanwhile a call comes in
    d = dial(exten="s")
    call, error = agi.finished()
    while call is None:  # the floods end here too, without a call (the handler never ran)
        assert error is None, error
        call, error = agi.finished()
    assert error is None, error
    assert call is not None and call.uniqueid == d.originated.uniqueid
    assert seen["agi_network_script"] == "ivr124"
    assert closed_within(drip, 3) < 3
    drip.close()
