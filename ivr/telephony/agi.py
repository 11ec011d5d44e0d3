"""The AGI command layer: pyst2's ``asterisk.agi.AGI`` made safe for a threaded FastAGI server.

pyst2 0.5.1 knows the AGI protocol (environment, quoting, commands) but was written for one
AGI process per call, so four things are fixed here:

- ``AGI()`` installs a SIGHUP handler, which raises ValueError outside the main thread; every
  FastAGI call runs in its own thread, so ``_Pyst2Agi`` never calls ``signal.signal``.
- It writes ``str``: it gets a text-mode writer over the socket (reading the binary file works).
- ``asterisk.fastagi`` imports ``SocketServer`` (Python 2 only): ``FastAgiServer`` below uses
  ``socketserver.ThreadingTCPServer`` instead.
- Its result parser cannot tell a caller who hung up from a missing sound file (both are
  ``result=-1``), drops GET DATA's ``(timeout)`` when no digit came, and has no notion of
  ``511`` (dead channel). ``AgiCall`` parses results itself and raises ``CallerHungUp``.

The socket is always closed when the handler returns: Asterisk keeps the channel's thread (and
the channel) alive until it is.

Anyone who reaches the FastAGI port can talk to it, so it is bounded (:class:`AgiLimits`): a
line and the whole environment have a size cap, the environment a total deadline, each command
an idle limit on top of its own wait, and the server a cap on open connections. Nothing reaches
the handler (so no call row is written) before a complete, valid environment.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from asterisk.agi import AGI, AGISIGPIPEHangup

log = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"
"""Escape digits that let any key interrupt a prompt."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573

_LINE = re.compile(r"^(?P<code>\d{3})(?:[ -](?P<rest>.*))?$")
_RESULT = re.compile(
    r"^result=(?P<result>\S*)(?:\s+\((?P<data>.*)\))?(?:\s+endpos=(?P<endpos>-?\d+))?\s*$"
)
_NAME = re.compile(r"^[^\s\"\\]+$")

# Benchmarks only: with IVR_AGI_TIMINGS=<path>, every command's round trip (sent -> result) and
# the controller's think time before it (previous result -> sent) go to that file at exit, one
# "<command>\t<round trip s>\t<think s or ->" line each. Off (None) otherwise: no cost.
_TIMINGS_PATH = os.environ.get("IVR_AGI_TIMINGS", "")
_timings: list[str] | None = [] if _TIMINGS_PATH else None


@atexit.register
def _write_timings() -> None:
    if _timings:
        with open(_TIMINGS_PATH, "a", encoding="utf-8") as f:
            f.write("".join(_timings))


@dataclass(frozen=True)
class AgiLimits:
    """How much a FastAGI client may send and how long it may take (see the module docstring)."""

    line_bytes: int = 8192
    """One line, environment or reply: Asterisk's own are far shorter."""
    env_bytes: int = 64 * 1024
    env_lines: int = 256
    """Asterisk sends about 25 environment lines plus one per AGI argument."""
    env_deadline_s: float = 5.0
    """For the whole environment, however slowly it drips in (Asterisk sends it at once)."""
    command_idle_s: float = 60.0
    """How long a reply may take beyond the command's own wait (a recording's length, a
    digit's timeout): a stream of one prompt never comes near it."""
    max_connections: int = 200
    """Open FastAGI connections (calls in the IVR) at once; the next is refused and logged, and
    the dialplan sends that caller to the agents' queue."""


class BadEnvironment(Exception):
    """What a client sent is not an AGI environment within the limits (the message says why)."""


ENV_KEY = re.compile(r"^agi_[a-z0-9_]{1,64}$")
REQUIRED_ENV = ("agi_channel", "agi_uniqueid")
"""What every environment Asterisk sends has, and what a call is known by."""


def parse_environment(data: bytes, limits: AgiLimits | None = None) -> dict[str, str]:
    """The AGI environment in ``data`` (``agi_key: value`` lines up to a blank line), or
    ``BadEnvironment``: over a limit, no blank line, a line that is not ``agi_key: value``, a
    key twice, or a required key missing. Pure: the reader below feeds it."""
    limits = limits or AgiLimits()
    if len(data) > limits.env_bytes:
        raise BadEnvironment(f"environment over {limits.env_bytes} bytes")
    if data.startswith(b"\n"):
        body = b""  # a blank line at once: an empty environment (refused below)
    else:
        end = data.find(b"\n\n")
        if end < 0:
            raise BadEnvironment("environment without its closing blank line")
        body = data[:end]
    lines = body.split(b"\n") if body else []
    if len(lines) > limits.env_lines:
        raise BadEnvironment(f"environment over {limits.env_lines} lines")
    env: dict[str, str] = {}
    for raw in lines:
        if len(raw) > limits.line_bytes:
            raise BadEnvironment(f"environment line over {limits.line_bytes} bytes")
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        key, colon, value = line.partition(":")
        key = key.strip()
        if not colon or not ENV_KEY.match(key):
            raise BadEnvironment(f"not an environment line: {line[:80]!r}")
        if key in env:
            raise BadEnvironment(f"environment key {key} twice")
        env[key] = value.strip()
    missing = [key for key in REQUIRED_ENV if not env.get(key)]
    if missing:
        raise BadEnvironment(f"environment without {', '.join(missing)}")
    return env


def read_environment(stdin: Any, limits: AgiLimits) -> dict[str, str]:
    """Read lines up to the blank one (stopping as soon as a limit is passed) and parse them."""
    data = bytearray()
    for _ in range(limits.env_lines + 1):
        line = stdin.readline(limits.line_bytes + 1)
        if not line:
            raise BadEnvironment("connection closed before the end of the environment")
        if not line.endswith(b"\n"):
            if len(line) > limits.line_bytes:
                raise BadEnvironment(f"environment line over {limits.line_bytes} bytes")
            raise BadEnvironment("connection closed before the end of the environment")
        data += line
        if len(data) > limits.env_bytes:
            raise BadEnvironment(f"environment over {limits.env_bytes} bytes")
        if line in (b"\n", b"\r\n"):
            return parse_environment(bytes(data).replace(b"\r\n", b"\n"), limits)
    raise BadEnvironment(f"environment over {limits.env_lines} lines")


class _SocketReader:
    """``readline`` straight from a socket, bounded in length and in time.

    A buffered socket file only has a timeout per ``recv``: a client sending a byte a second
    would keep a line (and a thread) forever. Here each line must arrive before ``deadline``.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.deadline: float | None = None
        """``time.monotonic()`` by which the next line must be complete; None: no limit."""

    def readline(self, size: int = -1) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0 and (size < 0 or end < size):
                return self._take(end + 1)
            if 0 <= size <= len(self._buf):
                return self._take(size)  # as file.readline(size): a part line, no newline
            timeout = None if self.deadline is None else self.deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise TimeoutError("FastAGI client too slow")
            self._sock.settimeout(timeout)
            chunk = self._sock.recv(65536)
            if not chunk:
                return self._take(len(self._buf))
            self._buf += chunk

    def _take(self, n: int) -> bytes:
        line = bytes(self._buf[:n])
        del self._buf[:n]
        return line

    def close(self) -> None:
        """The socket is the handler's to close."""


class AgiTimeout(Exception):
    """Asterisk (or whoever is on the socket) did not answer a command in time."""


class CallerHungUp(Exception):
    """The caller left: the channel is gone. Not an AgiError, so ``except AgiError`` never
    swallows it and the flow never tries to speak to an empty line.

    ``command`` is what was running; ``recorded_samples`` is set when it was RECORD FILE
    (the file holds what the caller said before hanging up, and may be worth keeping).
    """

    def __init__(self, command: str = "", recorded_samples: int | None = None) -> None:
        super().__init__(f"caller hung up during {command}" if command else "caller hung up")
        self.command = command
        self.recorded_samples = recorded_samples


class AgiError(Exception):
    """An AGI command failed while the caller is still there (bad command, unwritable file)."""


class PromptMissing(AgiError):
    """A sound file does not exist (raised only by calls made with ``strict_prompts``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"sound file not found: {name}")
        self.name = name


@dataclass(frozen=True)
class AgiResult:
    """One parsed reply: ``200 result=<result> (<data>) endpos=<endpos>``."""

    code: int
    result: str
    data: str
    endpos: int | None
    line: str


@dataclass(frozen=True)
class RecordResult:
    """How a recording ended: the key that stopped it ('' if none), why, and its length."""

    digit: str
    ended_by: Literal["dtmf", "timeout", "silence"]
    samples: int

    @property
    def seconds(self) -> float:
        """Length at 8 kHz (what telephone channels record)."""
        return self.samples / 8000


class _DebugLog(io.TextIOBase):
    """pyst2's "stderr": its chatter goes to this module's logger at DEBUG, line by line."""

    def __init__(self) -> None:
        self._buf = ""

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                log.debug("pyst2: %s", line)
        return len(s)


class _Pyst2Agi(AGI):
    """pyst2's AGI on a FastAGI socket: no signal handler, our own result parser."""

    def __init__(
        self, rfile: BinaryIO | _SocketReader, wfile: io.TextIOBase, limits: AgiLimits | None = None
    ) -> None:
        # AGI.__init__ is skipped on purpose: it calls signal.signal(SIGHUP, ...), which raises
        # ValueError in any thread but the main one and would, in the main thread, replace the
        # process's handler for every call. It only sets the attributes below and reads the env.
        self.stdin = rfile
        self.stdout = wfile
        self.stderr = _DebugLog()
        self._got_sighup = False
        self.limits = limits or AgiLimits()
        self.env: dict[str, str] = read_environment(rfile, self.limits)

    def _readline(self) -> str:
        raw = self.stdin.readline(self.limits.line_bytes + 1)
        if not raw:
            raise EOFError("Asterisk closed the FastAGI connection")
        if not raw.endswith(b"\n") and len(raw) > self.limits.line_bytes:
            raise AgiError(f"a reply line over {self.limits.line_bytes} bytes")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        log.debug("AGI << %s", line)
        return line

    def get_result(self, stdin: Any = None) -> AgiResult:  # type: ignore[override]
        """Read one reply. pyst2's ``execute`` calls this after sending the command."""
        line = self._readline()
        while line == "HANGUP":  # sent only when the dialplan forgot AGISIGHUP=no
            # Not a reply: skip it and let the next reply (511 or not) speak for the channel.
            line = self._readline()
        m = _LINE.match(line)
        if not m:
            raise AgiError(f"unexpected reply from Asterisk: {line!r}")
        code, rest = int(m["code"]), m["rest"] or ""
        if code == 520 and line.startswith("520-"):  # usage text until "520 End of ..."
            usage = [line]
            while not usage[-1].startswith("520 "):
                usage.append(self._readline())
            line = "\n".join(usage)
        if code != 200:
            return AgiResult(code, "", rest, None, line)
        r = _RESULT.match(rest)
        if not r:
            raise AgiError(f"unexpected reply from Asterisk: {line!r}")
        endpos = int(r["endpos"]) if r["endpos"] is not None else None
        return AgiResult(200, r["result"], r["data"] or "", endpos, line)


LONGEST_WAIT_S = 3600.0
"""What a command that waits "forever" (timeout -1) may take before its reply."""


def _wait_s(timeout_ms: float) -> float:
    """A command's own wait in seconds; -1 (forever) is bounded too."""
    return LONGEST_WAIT_S if timeout_ms < 0 else timeout_ms / 1000


def _quote(value: object) -> str:
    """One AGI argument in double quotes; backslash and quote escaped, no line breaks."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a sound file name: {name!r}")
    return name


class AgiCall:
    """One caller on a FastAGI connection; every method is one or a few AGI commands.

    Results that mean "the caller left" raise ``CallerHungUp``. ``-1`` from a command that plays
    a file is ambiguous (hangup or missing file), so the call then asks ``CHANNEL STATUS``,
    which Asterisk refuses with ``511`` on a dead channel. A missing prompt is logged, kept in
    ``missing_prompts`` and skipped (the caller hears the rest), or raises ``PromptMissing``
    when ``strict_prompts`` is set.
    """

    def __init__(self, agi: _Pyst2Agi, *, strict_prompts: bool = False) -> None:
        self._agi = agi
        self.env: dict[str, str] = dict(agi.env)
        self.strict_prompts = strict_prompts
        self.missing_prompts: list[str] = []
        self.hung_up = False
        # IVR_AGI_TIMINGS: the first think time runs from the AGI environment's arrival.
        self._last_result = time.monotonic() if _timings is not None else None

    # ------------------------------------------------------------------ env
    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def callerid(self) -> str:
        return self.env.get("agi_callerid", "")

    @property
    def extension(self) -> str:
        return self.env.get("agi_extension", "")

    @property
    def script(self) -> str:
        """The path in ``agi://host:port/<script>``: which service the dialplan asked for."""
        return self.env.get("agi_network_script", "")

    @property
    def args(self) -> list[str]:
        """AGI(agi://...,arg1,arg2) arguments, in order."""
        out = []
        i = 1
        while f"agi_arg_{i}" in self.env:
            out.append(self.env[f"agi_arg_{i}"])
            i += 1
        return out

    # ------------------------------------------------------------------ plumbing
    def command(self, *words: object, wait_s: float = 0.0) -> AgiResult:
        """Send one AGI command, its name first (``command("WAIT FOR DIGIT", 5000)``), and
        return the reply; a dead channel raises CallerHungUp. The reply must come within
        ``wait_s`` (what the command itself waits for) plus the idle limit, else AgiTimeout."""
        name = str(words[0]) if words else ""
        sent = time.monotonic()
        reader = self._agi.stdin
        if isinstance(reader, _SocketReader):
            reader.deadline = sent + self._agi.limits.command_idle_s + max(wait_s, 0.0)
        try:
            res = self._agi.execute(*[str(w) for w in words])
        except TimeoutError as exc:
            raise AgiTimeout(
                f"no reply to {name} within {time.monotonic() - sent:.0f} s on {self.channel}"
            ) from exc
        except (AGISIGPIPEHangup, EOFError, ConnectionError) as exc:
            self.hung_up = True
            raise CallerHungUp(name) from exc
        if _timings is not None:
            done = time.monotonic()
            think = "-" if self._last_result is None else f"{sent - self._last_result:.6f}"
            _timings.append(f"{name}\t{done - sent:.6f}\t{think}\n")  # list.append: thread-safe
            self._last_result = done
        if res.code == 511:
            self.hung_up = True
            raise CallerHungUp(name)
        if res.code == 510:
            raise AgiError(f"Asterisk does not know the command: {name}")
        if res.code == 520:
            raise AgiError(f"wrong arguments for {name}: {res.line}")
        if res.code != 200:
            raise AgiError(f"{name}: {res.line}")
        return res

    def _after_minus_one(self, command: str) -> None:
        """Result -1: raise CallerHungUp if the channel is dead, else return (it was the file)."""
        try:
            self.command("CHANNEL STATUS")
        except CallerHungUp:
            raise CallerHungUp(command) from None

    def _missing(self, name: str) -> None:
        self.missing_prompts.append(name)
        log.warning("sound file %r not found (channel %s)", name, self.channel)
        if self.strict_prompts:
            raise PromptMissing(name)

    # ------------------------------------------------------------------ commands
    def answer(self) -> None:
        res = self.command("ANSWER")
        if res.result == "-1":
            self._after_minus_one("ANSWER")
            raise AgiError("ANSWER failed")

    def stream(self, names: Iterable[str], escape_digits: str = "") -> str:
        """Play the files in order; returns the key that interrupted them, or ''.

        Only keys in ``escape_digits`` interrupt; the key is consumed (not left for a
        following GET DATA), so a caller that wants it as the first digit must prepend it,
        as ``gather`` does.
        """
        for name in names:
            res = self.command("STREAM FILE", _check_name(name), _quote(escape_digits), 0)
            if res.result == "-1":
                self._after_minus_one("STREAM FILE")
                self._missing(name)
                continue
            if res.result not in ("", "0"):
                return chr(int(res.result))
        return ""

    def wait_for_digit(self, timeout_ms: int) -> str:
        """Wait up to ``timeout_ms`` for one key; '' when none came (-1 waits forever)."""
        res = self.command("WAIT FOR DIGIT", int(timeout_ms), wait_s=_wait_s(timeout_ms))
        if res.result == "-1":
            self._after_minus_one("WAIT FOR DIGIT")
            raise AgiError("WAIT FOR DIGIT failed")
        return "" if res.result in ("", "0") else chr(int(res.result))

    def get_data(
        self, first_prompt: str | None, timeout_ms: int = 5000, max_digits: int = 1
    ) -> tuple[str, bool]:
        """Play ``first_prompt`` (any key interrupts it and counts) and read up to ``max_digits``.

        Returns ``(digits, timed_out)``. Entry ends at ``max_digits``, at '#' (not included in
        the digits), or after ``timeout_ms`` without a key (both before the first key and
        between keys), then ``timed_out`` is True, with whatever digits came before it. A '#'
        pressed before any digit is returned as '#' (Asterisk's own rule), so a menu may use
        '#' as a choice. With ``first_prompt`` None no prompt is played.
        """
        if first_prompt is None:
            return self._collect(timeout_ms, max_digits)
        res = self.command(
            "GET DATA",
            _check_name(first_prompt),
            int(timeout_ms),
            int(max_digits),
            wait_s=_wait_s(timeout_ms) * (int(max_digits) + 1),
        )
        if res.result == "-1":
            self._after_minus_one("GET DATA")
            self._missing(first_prompt)
            return self._collect(timeout_ms, max_digits)  # still take the caller's keys
        return res.result, res.data == "timeout"

    def _collect(self, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        """GET DATA's rules without a prompt, one WAIT FOR DIGIT at a time."""
        digits = ""
        while len(digits) < max_digits:
            key = self.wait_for_digit(timeout_ms)
            if key == "":
                return digits, True
            if key == "#":
                return digits or "#", False
            digits += key
        return digits, False

    def gather(
        self, prompts: list[str], timeout_ms: int = 5000, max_digits: int = 1
    ) -> tuple[str, bool]:
        """``get_data`` for a prompt made of several fragments (e.g. a spoken number).

        Every fragment can be interrupted by any key, which becomes the first digit.
        """
        if not prompts:
            return self.get_data(None, timeout_ms, max_digits)
        first = self.stream(prompts[:-1], ALL_KEYS)
        if not first:
            return self.get_data(prompts[-1], timeout_ms, max_digits)
        if first == "#" or max_digits <= 1:
            return first, False
        rest, timed_out = self._collect(timeout_ms, max_digits - 1)
        return first + ("" if rest == "#" else rest), timed_out

    def record(
        self,
        path_without_ext: str,
        fmt: str = "wav",
        escape: str = "#",
        timeout_ms: int | None = 120_000,
        beep: bool = True,
        silence_s: int | None = None,
    ) -> RecordResult:
        """Record the caller to ``path_without_ext.<fmt>`` (a path Asterisk can write).

        Ends at a key in ``escape`` (``ended_by='dtmf'``), after ``timeout_ms`` (None: no
        limit) or after ``silence_s`` seconds of silence. Asterisk reports both of the latter
        as "timeout"; a stop well before ``timeout_ms`` is reported as ``'silence'``. A hangup
        raises CallerHungUp with ``recorded_samples``: the file keeps what was said.
        """
        words: list[object] = [
            "RECORD FILE",
            _quote(path_without_ext),
            fmt,
            _quote(escape),
            -1 if timeout_ms is None else int(timeout_ms),
            0,
        ]
        if beep:
            words.append("beep")
        if silence_s:
            words.append(f"s={int(silence_s)}")
        started = time.monotonic()
        res = self.command(*words, wait_s=_wait_s(-1 if timeout_ms is None else timeout_ms))
        samples = max(res.endpos or 0, 0)
        if res.data == "hangup":
            self.hung_up = True
            raise CallerHungUp("RECORD FILE", recorded_samples=samples)
        if res.result == "-1":
            self._after_minus_one("RECORD FILE")
            raise AgiError(f"RECORD FILE failed ({res.data or res.line})")
        if res.data in ("dtmf", "randomerror") and res.result not in ("", "0"):
            # randomerror with a key: pressed during the beep, before anything was recorded.
            return RecordResult(chr(int(res.result)), "dtmf", samples)
        elapsed_ms = (time.monotonic() - started) * 1000
        early = timeout_ms is None or elapsed_ms < timeout_ms - 500
        return RecordResult("", "silence" if silence_s and early else "timeout", samples)

    def set_variable(self, name: str, value: object) -> None:
        """Set a channel variable (the dialplan reads IVR_ACTION/IVR_QUEUE after the AGI)."""
        self.command("SET VARIABLE", _quote(name), _quote(value))

    def get_variable(self, name: str) -> str | None:
        """A channel variable or dialplan function like ``CHANNEL(language)``; None if unset."""
        res = self.command("GET VARIABLE", _quote(name))
        return res.data if res.result == "1" else None

    def verbose(self, message: str, level: int = 1) -> None:
        self.command("VERBOSE", _quote(message), int(level))

    def hangup(self) -> None:
        """Hang up this call; the handler should return soon after (the socket then closes)."""
        self.command("HANGUP")


# ---------------------------------------------------------------------------- server
CallHandler = Callable[[AgiCall], None]
FinishedHook = Callable[[AgiCall | None, BaseException | None], None]


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        owner = self.server.owner
        sock: socket.socket = self.request
        rfile = _SocketReader(sock)
        wfile = sock.makefile("w", encoding="utf-8", newline="\n")
        call: AgiCall | None = None
        error: BaseException | None = None
        owner._track(sock, add=True)
        try:
            rfile.deadline = time.monotonic() + owner.limits.env_deadline_s
            try:
                agi = _Pyst2Agi(rfile, wfile, owner.limits)  # type: ignore[arg-type]
            except (BadEnvironment, TimeoutError, OSError) as exc:
                reason = "too slow" if isinstance(exc, TimeoutError) else str(exc)
                log.warning("FastAGI client %s refused: %s", self.client_address, reason)
                return
            call = AgiCall(agi, strict_prompts=owner.strict_prompts)
            owner.handler(call)
        except CallerHungUp as exc:
            error = exc
            log.info("caller hung up (%s) on %s", exc.command, call.channel if call else "?")
        except AgiTimeout as exc:
            error = exc
            log.warning("FastAGI call given up: %s", exc)
        except BaseException as exc:
            error = exc
            log.exception("FastAGI handler failed")
        finally:
            # Close the file objects too: the socket's descriptor stays open (and Asterisk
            # keeps the channel) while any makefile() object still refers to it.
            for f in (wfile, rfile):
                with contextlib.suppress(OSError):
                    f.close()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            owner._track(sock, add=False)
            owner._leave()
            if owner.on_finished is not None:
                try:
                    owner.on_finished(call, error)
                except Exception:
                    log.exception("on_finished hook failed")


REFUSAL_LOG_EVERY_S = 10.0


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a call in progress never keeps the process alive
    allow_reuse_address = True  # restart at once after a crash (TIME_WAIT)
    block_on_close = False
    request_queue_size = 128  # a burst of calls must not be refused while threads start
    owner: FastAgiServer

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Refused (closed at once, before a thread starts) when the connection cap is reached."""
        return self.owner._admit(client_address)


class FastAgiServer:
    """A threaded FastAGI server: one thread per call, each running ``handler(AgiCall)``.

    ``on_finished(call, error)`` runs after the socket is closed (``error`` is the exception
    the handler ended with, ``CallerHungUp`` included, or None).
    """

    def __init__(
        self,
        handler: CallHandler,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        strict_prompts: bool = False,
        on_finished: FinishedHook | None = None,
        limits: AgiLimits | None = None,
    ) -> None:
        self.handler = handler
        self.strict_prompts = strict_prompts
        self.on_finished = on_finished
        self.limits = limits or AgiLimits()
        self.refused = 0
        """Connections refused at the cap since the server started."""
        self._open = 0
        self._refusal_logged = float("-inf")
        self._server = _TcpServer((host, port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (useful with port 0)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def active_calls(self) -> int:
        with self._lock:
            return len(self._sockets)

    def _admit(self, client_address: Any) -> bool:
        with self._lock:
            if self._open < self.limits.max_connections:
                self._open += 1
                return True
            self.refused += 1
            refused, now = self.refused, time.monotonic()
            say = now - self._refusal_logged >= REFUSAL_LOG_EVERY_S
            if say:
                self._refusal_logged = now
        if say:  # under a flood: one line every few seconds, with the running count
            log.warning(
                "FastAGI: %d connections open, the limit (IVR_AGI_MAX_CONNECTIONS); refused %s "
                "(%d refused so far)",
                self.limits.max_connections,
                client_address[0] if client_address else "?",
                refused,
            )
        return False

    def _leave(self) -> None:
        with self._lock:
            self._open -= 1

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._sockets.add if add else self._sockets.discard)(sock)

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def serve_in_thread(self) -> threading.Thread:
        """Accept calls in a daemon thread; returns it."""
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"fastagi-{self.address[1]}", daemon=True
        )
        self._thread.start()
        return self._thread

    def shutdown(self, hang_up_calls: bool = False) -> None:
        """Stop accepting calls; calls in progress finish unless ``hang_up_calls``."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        if hang_up_calls:
            with self._lock:
                socks = list(self._sockets)
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FastAgiServer:
        self.serve_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
