"""``ivr serve`` as an operator sees it: where it listens, one access-log line per request, each
refused Twilio request with the URL that was checked, a taken port as one line, and ``make
run``'s banner naming the addresses ``ivr serve`` really uses.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from twilio_phone import free_port

if TYPE_CHECKING:
    from conftest import IvrServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
IVR = str(Path(sys.executable).with_name("ivr"))
"""The project's own ``ivr`` (test modules cannot import conftest: each folder has one)."""


def wait_for_line(read: Callable[[], str], pattern: str, timeout: float = 10) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, read(), re.MULTILINE)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n{read()}")


def test_serve_says_where_it_listens(server: IvrServer) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    agi_port = server.env["IVR_AGI_PORT"]
    log = server.stderr()
    assert re.search(
        rf" INFO ivr\.server: web app listening on http://127\.0\.0\.1:{port}$", log, re.M
    )
    assert re.search(
        rf" INFO ivr\.server: FastAGI listening on 127\.0\.0\.1:{agi_port}$", log, re.M
    )


def test_every_request_is_in_the_access_log(server: IvrServer) -> None:
    httpx.get(f"{server.base_url}/healthz?probe=access-log", timeout=5)
    httpx.get(f"{server.base_url}/prompts/fa/no-such-prompt.wav", timeout=5)
    wait_for_line(
        server.stderr,
        r'uvicorn\.access: 127\.0\.0\.1:\d+ - "GET /healthz\?probe=access-log HTTP/1\.1" 200$',
    )
    wait_for_line(server.stderr, r'"GET /prompts/fa/no-such-prompt\.wav HTTP/1\.1" 404$')


def test_a_refused_twilio_request_is_logged_with_the_url_checked(server: IvrServer) -> None:
    reply = httpx.post(
        f"{server.base_url}/twilio/voice?probe=403",
        data={"CallSid": "CA-forged", "From": "+989121234567"},
        headers={"X-Twilio-Signature": "Zm9yZ2Vk"},
        timeout=5,
    )
    assert reply.status_code == 403
    wait_for_line(
        server.stderr,
        rf"WARNING ivr\.web\.twilio: 403: the Twilio signature does not match "
        rf"{re.escape(server.base_url)}/twilio/voice\?probe=403$",
    )
    wait_for_line(server.stderr, r'"POST /twilio/voice\?probe=403 HTTP/1\.1" 403$')


def test_behind_a_proxy_the_public_url_is_the_one_logged(
    start_server: Callable[..., IvrServer],
) -> None:
    proxied = start_server(public_url="https://ivr.example.org")
    reply = httpx.post(f"{proxied.base_url}/twilio/status", data={"CallSid": "CA1"}, timeout=5)
    assert reply.status_code == 403
    wait_for_line(
        proxied.stderr,
        r"403: the Twilio signature does not match https://ivr\.example\.org/twilio/status$",
    )


def test_a_taken_port_is_one_line(server: IvrServer, ivr_env: dict[str, str]) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    env = ivr_env
    subprocess.run([IVR, "db", "upgrade"], env=env, check=True, capture_output=True)
    for args, env_changes, message in (
        (["--port", port], {}, f"the web app cannot listen on 127.0.0.1:{port}: "),
        (
            ["--port", str(free_port())],
            {"IVR_AGI_PORT": server.env["IVR_AGI_PORT"]},
            f"FastAGI cannot listen on 127.0.0.1:{server.env['IVR_AGI_PORT']}: ",
        ),
    ):
        done = subprocess.run(
            [IVR, "serve", *args],
            env={**env, **env_changes},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert done.stderr.strip() == f"ivr: {message}Address already in use"


def test_make_run_banner_names_the_addresses_serve_uses(
    tmp_path: Path, ivr_env: dict[str, str]
) -> None:
    """``make run`` with its set-up steps marked done (-o): the banner, then ``ivr serve``."""
    web, agi = free_port(), free_port()
    env = {**ivr_env, "IVR_WEB_PORT": str(web), "IVR_AGI_PORT": str(agi)}
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            [
                "make",
                "-s",
                "-o",
                "install",
                "-o",
                "prompts",
                "-o",
                "db",
                "run",
                f"IVR={IVR}",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make and ivr serve stop together
        )

    def output() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")

    try:
        banner = wait_for_line(output, r"^ivr124 is starting on http://127\.0\.0\.1:(\d+) "
                               r"\(FastAGI on 127\.0\.0\.1:(\d+)\)\.$", timeout=30)  # fmt: skip
        assert banner.groups() == (str(web), str(agi))
        assert f"http://127.0.0.1:{web}/twilio/" not in output()  # no public URL is invented
        assert "<your public URL>/twilio/voice" in output()
        wait_for_line(output, rf"web app listening on http://127\.0\.0\.1:{web}$", timeout=30)
        wait_for_line(output, rf"FastAGI listening on 127\.0\.0\.1:{agi}$")
        assert httpx.get(f"http://127.0.0.1:{web}/healthz", timeout=5).status_code == 200
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)
