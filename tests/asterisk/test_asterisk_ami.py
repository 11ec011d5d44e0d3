"""The AMI client against the real Asterisk: errors, listeners, and surviving a restart."""

from __future__ import annotations

import threading

import pytest

from ivr.telephony.ami import AmiClient, AmiError, AmiEvent


def test_actions_return_fields_and_errors_raise(ami: AmiClient):
    assert ami.action("Ping")["Ping"] == "Pong"
    with pytest.raises(AmiError, match="Channel not found"):
        ami.play_dtmf("Local/nobody@nowhere-00000000;2", "1")


def test_a_failing_listener_does_not_stop_the_others(ami: AmiClient, agi, dial):
    got = threading.Event()

    def broken(event: AmiEvent) -> None:
        raise RuntimeError("listener bug")

    def healthy(event: AmiEvent) -> None:
        # Listeners run off the reader thread, so they may call actions themselves.
        ami.action("Ping")
        got.set()

    handles = [ami.add_listener(broken, "AGIExecStart"), ami.add_listener(healthy, "AGIExecStart")]
    try:
        agi.serve(lambda call: call.verbose("listener test"))
        dial()
        agi.finished()
        assert got.wait(5)
        assert ami.connected
    finally:
        for h in handles:
            ami.remove_listener(h)


def test_client_logs_in_again_after_asterisk_restarts(pbx, ami: AmiClient, agi, dial):
    before = ami.reconnects
    pbx.restart()
    assert ami.wait_connected(15), "no AMI login after the restart"
    assert ami.reconnects == before + 1
    assert ami.action("Ping")["Ping"] == "Pong"
    # Events flow again on the new connection.
    agi.serve(lambda call: None)
    with ami.events("AGIExecStart", "Hangup") as events:
        d = dial()
        agi.finished()
        events.get("Hangup", timeout=10, Uniqueid=d.originated.uniqueid)


def test_connect_gives_up_when_nothing_listens():
    from ivr.devtools.testpbx import free_port

    client = AmiClient("127.0.0.1", free_port(), "x", "y", connect_timeout=0.5)
    try:
        with pytest.raises(AmiError, match="could not log in"):
            client.connect(timeout=1.0)
    finally:
        client.close()
