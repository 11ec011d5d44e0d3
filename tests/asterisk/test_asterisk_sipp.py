"""A SIP call from sipp into the test PBX: INVITE to 124 over PJSIP, keys as RFC 4733 events."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from ivr.devtools.testpbx import free_port
from ivr.telephony.agi import AgiCall, CallerHungUp

SCENARIO = Path(__file__).parent / "sipp" / "call_124_dtmf.xml"


def test_sip_call_to_124_reaches_the_ivr_with_its_keys(agi, pbx, tmp_path):
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.fail("sipp is not installed: apt-get install sip-tester")
    seen: dict[str, object] = {}

    def handler(call: AgiCall) -> None:
        seen["env"] = dict(call.env)
        seen["keys"] = call.get_data(None, 5000, 6)
        call.stream(["demo-congrats"], "")  # 30 s: the caller hangs up (BYE) during it

    agi.serve(handler)
    cmd = [
        sipp,
        f"127.0.0.1:{pbx.sip_port}",
        "-sf", str(SCENARIO),
        "-s", "124",
        "-set", "digits", "1234#",
        "-m", "1",
        "-l", "1",
        "-i", "127.0.0.1",
        "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mi", "127.0.0.1",
        "-mp", str(free_port(socket.SOCK_DGRAM)),
        "-cp", str(free_port(socket.SOCK_DGRAM)),
        "-timeout", "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=40, check=False
    )
    errors = "".join(p.read_text() for p in tmp_path.glob("*_errors.log"))
    assert proc.returncode == 0, f"sipp failed ({proc.returncode}):\n{proc.stdout[-2000:]}{errors}"

    _call, error = agi.finished()
    env = seen["env"]
    assert env["agi_extension"] == "124"
    assert env["agi_callerid"] == "09120000124"
    assert env["agi_channel"].startswith("PJSIP/sipp-")
    assert seen["keys"] == ("1234", False)
    # The BYE ended the call while the IVR was talking.
    assert isinstance(error, CallerHungUp) and error.command == "STREAM FILE"
