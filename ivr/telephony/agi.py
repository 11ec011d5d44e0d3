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

    def __init__(self, rfile: BinaryIO, wfile: io.TextIOBase) -> None:
        # AGI.__init__ is skipped on purpose: it calls signal.signal(SIGHUP, ...), which raises
        # ValueError in any thread but the main one and would, in the main thread, replace the
        # process's handler for every call. It only sets the attributes below and reads the env.
        self.stdin = rfile
        self.stdout = wfile
        self.stderr = _DebugLog()
        self._got_sighup = False
        self.env: dict[str, str] = {}
        self._get_agi_env()

    def _readline(self) -> str:
        raw = self.stdin.readline()
        if not raw:
            raise EOFError("Asterisk closed the FastAGI connection")
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
    def command(self, *words: object) -> AgiResult:
        """Send one AGI command, its name first (``command("WAIT FOR DIGIT", 5000)``), and
        return the reply; a dead channel raises CallerHungUp."""
        name = str(words[0]) if words else ""
        sent = time.monotonic()
        try:
            res = self._agi.execute(*[str(w) for w in words])
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
        res = self.command("WAIT FOR DIGIT", int(timeout_ms))
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
        res = self.command("GET DATA", _check_name(first_prompt), int(timeout_ms), int(max_digits))
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
        res = self.command(*words)
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
        rfile = sock.makefile("rb")
        wfile = sock.makefile("w", encoding="utf-8", newline="\n")
        call: AgiCall | None = None
        error: BaseException | None = None
        owner._track(sock, add=True)
        try:
            sock.settimeout(owner.env_timeout)  # a client that never sends the env
            try:
                agi = _Pyst2Agi(rfile, wfile)  # type: ignore[arg-type]
            except (TimeoutError, ConnectionError) as exc:
                log.warning(
                    "FastAGI client %s sent no AGI environment: %r", self.client_address, exc
                )
                return
            if not agi.env:
                return
            sock.settimeout(owner.command_timeout)
            call = AgiCall(agi, strict_prompts=owner.strict_prompts)
            owner.handler(call)
        except CallerHungUp as exc:
            error = exc
            log.info("caller hung up (%s) on %s", exc.command, call.channel if call else "?")
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
            if owner.on_finished is not None:
                try:
                    owner.on_finished(call, error)
                except Exception:
                    log.exception("on_finished hook failed")


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a call in progress never keeps the process alive
    allow_reuse_address = True  # restart at once after a crash (TIME_WAIT)
    block_on_close = False
    request_queue_size = 128  # a burst of calls must not be refused while threads start
    owner: FastAgiServer


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
        env_timeout: float = 10.0,
        command_timeout: float | None = 3600.0,
    ) -> None:
        self.handler = handler
        self.strict_prompts = strict_prompts
        self.on_finished = on_finished
        self.env_timeout = env_timeout
        self.command_timeout = command_timeout
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
