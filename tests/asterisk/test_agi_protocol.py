"""The AGI reply parsing in isolation: Asterisk's exact reply lines, replayed from memory.

The behaviour against a real Asterisk is in test_asterisk_agi.py; these pin down the reply
shapes pyst2 gets wrong (empty GET DATA result, 511, the stray HANGUP line, 520 usage).
"""

from __future__ import annotations

import io
import socket
import threading

import pytest

from ivr.telephony.agi import (
    AgiCall,
    AgiError,
    CallerHungUp,
    FastAgiServer,
    _Pyst2Agi,
)

ENV = b"agi_network: yes\nagi_channel: PJSIP/sipp-00000001\nagi_uniqueid: 1.2\nagi_arg_1: a b\n\n"


def scripted(*replies: str) -> tuple[AgiCall, io.StringIO]:
    sent = io.StringIO()
    rfile = io.BytesIO(ENV + "".join(r + "\n" for r in replies).encode())
    return AgiCall(_Pyst2Agi(rfile, sent)), sent


def test_environment_and_arguments():
    call, _ = scripted()
    assert call.channel == "PJSIP/sipp-00000001"
    assert call.uniqueid == "1.2"
    assert call.args == ["a b"]


def test_get_data_timeout_with_and_without_digits():
    call, sent = scripted("200 result= (timeout)", "200 result=12 (timeout)", "200 result=123")
    assert call.get_data("ivr124/menu", 5000, 4) == ("", True)
    assert call.get_data("ivr124/menu", 5000, 4) == ("12", True)
    assert call.get_data("ivr124/menu", 5000, 4) == ("123", False)
    assert sent.getvalue().splitlines()[0] == "GET DATA ivr124/menu 5000 4"


def test_minus_one_then_511_is_a_hangup_and_then_200_is_a_missing_file():
    call, sent = scripted(
        "200 result=-1 endpos=0",
        "200 result=6",  # CHANNEL STATUS: up, so the file was missing
        "200 result=-1 endpos=160",
        "511 Command Not Permitted on a dead channel or intercept routine",
    )
    assert call.stream(["ivr124/gone"], "") == ""
    assert call.missing_prompts == ["ivr124/gone"]
    with pytest.raises(CallerHungUp) as info:
        call.stream(["ivr124/long"], "12")
    assert info.value.command == "STREAM FILE"
    assert call.hung_up
    assert sent.getvalue().splitlines() == [
        'STREAM FILE ivr124/gone "" 0',
        "CHANNEL STATUS",
        'STREAM FILE ivr124/long "12" 0',
        "CHANNEL STATUS",
    ]


def test_a_stray_hangup_line_is_skipped():
    call, _ = scripted("HANGUP", "200 result=1 (fa)")
    assert call.get_variable("CHANNEL(language)") == "fa"


def test_record_results():
    call, sent = scripted(
        "200 result=35 (dtmf) endpos=16000",
        "200 result=0 (timeout) endpos=80000",
        "200 result=-1 (hangup) endpos=4000",
    )
    first = call.record("/rec/a", timeout_ms=10000, silence_s=3)
    assert (first.digit, first.ended_by, first.seconds) == ("#", "dtmf", 2.0)
    assert call.record("/rec/b", beep=False, timeout_ms=None, silence_s=2).ended_by == "silence"
    with pytest.raises(CallerHungUp) as info:
        call.record("/rec/c")
    assert info.value.recorded_samples == 4000
    lines = sent.getvalue().splitlines()
    assert lines[0] == 'RECORD FILE "/rec/a" wav "#" 10000 0 beep s=3'
    assert lines[1] == 'RECORD FILE "/rec/b" wav "#" -1 0 s=2'


def test_usage_and_unknown_commands_are_agi_errors():
    call, _ = scripted(
        "520-Invalid command syntax.  Proper usage follows:",
        "Usage: WAIT FOR DIGIT <timeout>",
        "520 End of proper usage.",
        "510 Invalid or unknown command",
        "200 result=1",
    )
    with pytest.raises(AgiError, match="wrong arguments"):
        call.command("WAIT FOR DIGIT")
    with pytest.raises(AgiError, match="does not know"):
        call.command("NO SUCH")
    call.set_variable("X", 'say "hi"\\now')  # the reply after the multi-line usage text


def test_values_are_quoted_and_names_checked():
    call, sent = scripted("200 result=1")
    call.set_variable("IVR_NOTE", 'a "b" c\\d\ne')
    assert sent.getvalue() == 'SET VARIABLE "IVR_NOTE" "a \\"b\\" c\\\\d e"\n'
    with pytest.raises(ValueError):
        call.stream(["two words"], "")


def test_server_closes_the_socket_and_reports_how_the_call_ended():
    ended: list[tuple[object, BaseException | None]] = []
    done = threading.Event()

    def handler(call: AgiCall) -> None:
        call.command("NOOP")

    server = FastAgiServer(
        handler, port=0, on_finished=lambda c, e: (ended.append((c, e)), done.set())
    )
    server.serve_in_thread()
    try:
        with socket.create_connection(server.address, timeout=5) as s:
            s.sendall(ENV)
            f = s.makefile("rb")
            assert f.readline() == b"NOOP\n"
            s.sendall(b"200 result=0\n")
            assert f.readline() == b""  # closed by the server once the handler returned
            f.close()
        assert done.wait(5)
        assert ended[0][1] is None
        assert server.active_calls == 0
    finally:
        server.shutdown()
