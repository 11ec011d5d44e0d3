"""How many Twilio webhook turns per second `ivr serve` answers, against its own floor.

N simulated inbound calls run concurrently (asyncio + httpx), each signed like Twilio signs
(``RequestValidator.compute_signature``) and each walking a whole new request:

    voice → 1 (new) → 1 (industry) → 1 (Shokouhieh) → recorded (RecordingUrl on a local file
    server) → 2 (confirm) → 1 (caller ID) → # (no national ID) → 1 (register) → status completed

Each request goes to the URL the last answer named, ``?turn=N`` included, as Twilio does; the
recording is served where Twilio's API keeps one (``IVR_TWILIO_API_BASE`` points there). The
run is on SQLite, then on PostgreSQL too when ``--postgres-url`` (or
``$IVR_TEST_POSTGRES_URL``) names a database, with the ratio of their per-turn CPU.

Every turn's latency is measured and each answer checked (the right prompt came back). Then the
same number of requests goes to ``POST /twiml/ping`` — TwiML with no session, no database — with
the same concurrency: the floor of the web stack. Both are printed, with their ratio.

Without ``--base-url`` the benchmark starts ``ivr serve`` itself on a free loopback port with a
temporary storage directory (SQLite) and a random auth token, and stops it at the end. Only
loopback addresses are accepted: the server must fetch the recording from this machine.

The call phase and the floor phase alternate ``--rounds`` times (default 3) and the CPU ratio
is their median: one run on a shared machine is mostly noise. On two CPUs or more the server
it starts runs on CPU 0 and the simulated Twilio on the others, so the client's CPU is not
taken from the server's (Twilio is not on the server's machine either).

Without ``--pause`` each call sends its next turn as soon as the last is answered: that is the
server's saturation, where the CPU ratio is measured and latency is just concurrency divided
by throughput (Little's law; the floor's own p99 is hundreds of ms there). ``--pause S`` waits
about S seconds between a call's turns, as prompts play in a real call, and starts the calls at
random over one call's length: ``--concurrency 200 --pause 2`` is 200 calls in progress, the
load the latency target is about.

``--by-step`` then takes the calls through their steps together — every call's first webhook,
then every call's second, … — and reads the server's CPU around each step and around as many
pings: what each kind of turn costs against the floor, which the call phase's average mixes.

    .venv/bin/python benchmarks/twilio_turns.py --calls 200 --concurrency 50
    .venv/bin/python benchmarks/twilio_turns.py --calls 400 --concurrency 200 --pause 2 --rounds 1
    .venv/bin/python benchmarks/twilio_turns.py --calls 300 --concurrency 40 --by-step

Exit status: 0 all calls completed, 1 a call failed (the server's log is printed when the
benchmark started it), 3 the time limit cut a phase short.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
RECORDINGS = f"2010-04-01/Accounts/{ACCOUNT_SID}/Recordings"


@dataclass(frozen=True)
class Step:
    label: str
    path: str
    extra: dict[str, str]
    expect: str
    """A substring the answer must contain (or the status code, for the status callback)."""
    work: str = ""
    """What the turn does beyond a menu's (fetching the recording, storing the ticket): such
    turns are summed apart in the breakdown."""


def call_steps(recording_url: str) -> list[Step]:
    """The webhooks of one new request, in order, with what each answer must hold."""
    return [
        Step("voice", "/twilio/voice", {}, "main-menu.wav"),
        Step("1 new request", "/twilio/gather", {"Digits": "1"}, "category-menu.wav"),
        Step("1 industry", "/twilio/gather", {"Digits": "1"}, "place-intro.wav"),
        Step("1 place", "/twilio/gather", {"Digits": "1"}, "<Record"),
        Step(
            "recorded",
            "/twilio/recorded",
            {"RecordingUrl": recording_url, "RecordingDuration": "3", "Digits": "#"},
            "describe-review.wav",
            work="the recording's fetch",
        ),
        Step("2 confirm", "/twilio/gather", {"Digits": "2"}, "callback-your_number.wav"),
        Step("1 caller ID", "/twilio/gather", {"Digits": "1"}, "nid-enter.wav"),
        Step("# no national ID", "/twilio/gather", {"Digits": ""}, "summary-menu.wav"),
        Step(
            "1 register",
            "/twilio/gather",
            {"Digits": "1"},
            "registered-done.wav",
            work="the ticket's storing",
        ),
        Step(
            "status completed",
            "/twilio/status",
            {"CallStatus": "completed", "CallDuration": "60"},
            "204",
        ),
    ]


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    """Seconds per successful turn."""
    by_step: dict[str, list[float]] = field(default_factory=dict)
    """The same, per step of the call (for the breakdown)."""
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    calls_completed: int = 0
    calls_failed: int = 0
    calls_unfinished: int = 0
    trackings: set[str] = field(default_factory=set)
    client_cpu: float = 0.0
    """CPU seconds this process (the simulated Twilio) spent in the phase."""
    server_cpu: float | None = None
    """CPU seconds the server process spent in the phase, when it is ours to measure."""

    @property
    def turns(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float, latencies: list[float] | None = None) -> float:
        """Nearest-rank percentile, in milliseconds."""
        latencies = self.latencies if latencies is None else latencies
        if not latencies:
            return math.nan
        ordered = sorted(latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    @property
    def rate(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0


# --- the Twilio side -----------------------------------------------------------------------------


class Caller:
    """One simulated call: Twilio's standard parameters, signed for each URL."""

    def __init__(self, base_url: str, validator: RequestValidator) -> None:
        self.base_url = base_url
        self.validator = validator
        self.call_sid = "CA" + secrets.token_hex(16)
        self.number = f"+98912{secrets.randbelow(10**7):07d}"
        """A mobile number of its own: callers are different people, so nothing the server
        remembers per number is found again as if they were one."""
        self.status = "ringing"
        self.turn: str | None = None
        """The turn the last answer's webhook URLs named (``?turn=N``), sent back as Twilio does."""

    def request(self, path: str, extra: dict[str, str]) -> tuple[str, dict[str, str], dict]:
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": self.status,
            "Called": "124",
            "Caller": self.number,
            "Direction": "inbound",
            "From": self.number,
            "To": "124",
        } | extra
        url = self.base_url + path
        if self.turn is not None and path in TURN_PATHS:
            url += f"?turn={self.turn}"
        if "RecordingUrl" in extra:
            params["RecordingSid"] = "RE" + secrets.token_hex(16)
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        return url, params, headers


TURN = re.compile(r"/twilio/(?:gather|recorded|timeout)\?turn=(\d+)")
TURN_PATHS = ("/twilio/gather", "/twilio/recorded", "/twilio/timeout")
TRACKING_SPAN = re.compile(r"registered-done\.wav</Play>(.*?)registered-repeat\.wav", re.S)
DIGIT = re.compile(r"/num-(\d)\.wav")


async def one_call(
    client: httpx.AsyncClient,
    caller: Caller,
    steps: list[Step],
    phase: Phase,
    pause_s: float = 0.0,
) -> None:
    """One call's turns in order; ``pause_s`` between them stands for the prompts playing (a
    real caller answers a menu seconds after the answer before it, not at once), and calls
    then ring at random moments over one call's length instead of all at once."""
    if pause_s:
        await asyncio.sleep(random.uniform(0, pause_s * len(steps)))
    for index, step in enumerate(steps):
        if index and pause_s:
            await asyncio.sleep(pause_s * random.uniform(0.5, 1.5))
        if not await take_turn(client, caller, index, step, phase):
            return
    phase.calls_completed += 1


async def take_turn(
    client: httpx.AsyncClient, caller: Caller, index: int, step: Step, phase: Phase
) -> bool:
    """One webhook of the call and its check; False (the call failed) if the answer is wrong."""
    url, params, headers = caller.request(step.path, step.extra)
    started = time.perf_counter()
    try:
        reply = await client.post(url, data=params, headers=headers)
    except httpx.HTTPError as exc:
        phase.calls_failed += 1
        phase.errors.append(f"turn {index} {step.path}: {type(exc).__name__}: {exc}")
        return False
    elapsed = time.perf_counter() - started
    ok = (
        reply.status_code == 204
        if step.expect == "204"
        else reply.status_code == 200 and step.expect in reply.text
    )
    if not ok:
        phase.calls_failed += 1
        phase.errors.append(
            f"turn {index} {step.path} {step.extra}: HTTP {reply.status_code} {reply.text[:300]!r}"
        )
        return False
    phase.latencies.append(elapsed)
    phase.by_step.setdefault(step.label, []).append(elapsed)
    caller.status = "in-progress"
    turn = TURN.search(reply.text)
    caller.turn = turn.group(1) if turn else caller.turn
    span = TRACKING_SPAN.search(reply.text)
    if span:
        phase.trackings.add("".join(DIGIT.findall(span.group(1))))
    return True


@asynccontextmanager
async def client_pool(size: int) -> AsyncIterator[asyncio.Queue[httpx.AsyncClient]]:
    """``size`` clients of one connection each: a call (or worker) borrows one at a time.

    One shared ``AsyncClient`` with a pool of 50 connections costs several times more CPU per
    request than 50 single-connection clients, and on a small machine that CPU is taken from the
    server being measured.
    """
    clients: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    made = [httpx.AsyncClient(timeout=30.0) for _ in range(size)]
    for client in made:
        clients.put_nowait(client)
    try:
        yield clients
    finally:
        await asyncio.gather(*(client.aclose() for client in made))


async def run_calls(
    base_url: str,
    token: str,
    recording_url: str,
    calls: int,
    concurrency: int,
    limit_s: float,
    pause_s: float = 0.0,
) -> Phase:
    phase = Phase("new-request calls")
    steps = call_steps(recording_url)
    validator = RequestValidator(token)

    async with client_pool(concurrency) as clients:

        async def call() -> None:
            client = await clients.get()
            try:
                await one_call(client, Caller(base_url, validator), steps, phase, pause_s)
            finally:
                clients.put_nowait(client)

        tasks = [asyncio.create_task(call()) for _ in range(calls)]
        started, cpu = time.perf_counter(), time.process_time()
        _done, pending = await asyncio.wait(tasks, timeout=limit_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        phase.seconds = time.perf_counter() - started
        phase.client_cpu = time.process_time() - cpu
        phase.calls_unfinished = len(pending)
    return phase


async def run_ping(
    base_url: str, token: str, turns: int, concurrency: int, limit_s: float
) -> Phase:
    """``turns`` signed POSTs to /twiml/ping, ``concurrency`` at a time: the floor."""
    phase = Phase("/twiml/ping floor")
    validator = RequestValidator(token)
    remaining = turns

    async with client_pool(concurrency) as clients:

        async def worker() -> None:
            nonlocal remaining
            client = await clients.get()
            caller = Caller(base_url, validator)
            while remaining > 0:
                remaining -= 1
                url, params, headers = caller.request("/twiml/ping", {"Digits": "1"})
                started = time.perf_counter()
                try:
                    reply = await client.post(url, data=params, headers=headers)
                except httpx.HTTPError as exc:
                    phase.errors.append(f"ping: {type(exc).__name__}: {exc}")
                    continue
                if reply.status_code == 200 and "<Hangup" in reply.text:
                    phase.latencies.append(time.perf_counter() - started)
                else:
                    phase.errors.append(f"ping: HTTP {reply.status_code} {reply.text[:200]!r}")
            clients.put_nowait(client)

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        started, cpu = time.perf_counter(), time.process_time()
        _done, pending = await asyncio.wait(workers, timeout=limit_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        phase.seconds = time.perf_counter() - started
        phase.client_cpu = time.process_time() - cpu
    return phase


async def run_by_step(
    served: Served, recording_url: str, calls: int, concurrency: int
) -> tuple[list[tuple[str, float]], Phase]:
    """A ping for each call, then every call's first step, then every call's second, …, the
    server's CPU read around each. Each step's CPU per request, and the ping's (the floor,
    last): which turns cost what the call phase's average mixes. A first round of pings opens
    the connections, so that neither the floor nor a step pays for them."""
    phase = Phase("by step")
    validator = RequestValidator(served.token)
    callers = [Caller(served.base_url, validator) for _ in range(calls)]
    costs: list[tuple[str, float]] = []
    async with client_pool(concurrency) as clients:

        async def turn(caller: Caller, index: int, step: Step) -> bool:
            client = await clients.get()
            try:
                return await take_turn(client, caller, index, step, phase)
            finally:
                clients.put_nowait(client)

        async def everyone(index: int, step: Step) -> float | None:
            nonlocal callers
            before = served.thread_cpu_seconds()
            answered = await asyncio.gather(*(turn(caller, index, step) for caller in callers))
            after = served.thread_cpu_seconds()
            spent = None if before is None or after is None else (after - before) / len(callers)
            callers = [caller for caller, ok in zip(callers, answered, strict=True) if ok]
            return spent

        await everyone(-1, PING_STEP)
        floor = await everyone(-1, PING_STEP)
        for caller in callers:
            caller.status = "ringing"  # as a new call's first webhook says
        for index, step in enumerate(call_steps(recording_url)):
            spent = await everyone(index, step)
            if spent is None or not callers:
                break
            costs.append((step.label, spent))
    if floor is not None:
        costs.append((PING_STEP.label, floor))
    return costs, phase


PING_STEP = Step("/twiml/ping", "/twiml/ping", {"Digits": "1"}, "<Hangup")


def by_step_lines(rounds: list[list[tuple[str, float]]], calls: int) -> list[str]:
    """Each step's median over the rounds (a scheduler job that lands in one step's fraction
    of a second shows in one round only), and its ratio to the ping's."""
    by_label: dict[str, list[float]] = {}
    for costs in rounds:
        for label, seconds in costs:
            by_label.setdefault(label, []).append(seconds)
    medians = {label: statistics.median(values) for label, values in by_label.items()}
    floor = medians.get(PING_STEP.label, 0.0)
    lines = [
        f"by step ({calls} calls, one step at a time, median of {len(rounds)}): "
        "server CPU per request, ÷ the floor"
    ]
    for label, seconds in medians.items():
        ratio = f"{seconds / floor:5.1f}×" if floor else ""
        lines.append(f"    {label:18s} {seconds * 1000:6.2f} ms  {ratio}")
    worked = {step.label: step.work for step in call_steps("") if step.work}
    menus = [s for label, s in medians.items() if label not in worked and label != PING_STEP.label]
    if menus and floor:
        mean = statistics.mean(menus)
        lines.append(
            f"menu turns (all but {' and '.join(worked.values())}): "
            f"{mean * 1000:.2f} ms a turn, {mean / floor:.1f}× the floor"
        )
    return lines


# --- the server and the recording ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {limit_s:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def ivr_command() -> str:
    beside = Path(sys.executable).with_name("ivr")
    found = str(beside) if beside.is_file() else shutil.which("ivr")
    if not found:
        raise SystemExit("the `ivr` command is not installed (pip install -e .)")
    return found


SUM_EXEC = re.compile(r"se\.sum_exec_runtime\s*:\s*([0-9.]+)")
"""A thread's CPU time in ms, in /proc/<pid>/task/<tid>/sched."""


@dataclass
class Served:
    base_url: str
    token: str
    db_path: Path | None
    log_path: Path | None
    pid: int | None = None
    database_url: str = ""

    def thread_cpu_seconds(self) -> float | None:
        """The CPU time of the server's threads so far, to the microsecond: the scheduler's
        ``sum_exec_runtime`` of each (Linux ``/proc/…/task/*/sched``), where ``cpu_seconds``
        counts in 10 ms ticks, too coarse for one step of a few hundred requests. Falls back
        to ``cpu_seconds`` on a kernel without it. A thread that ended takes its time along:
        the server's pools keep theirs."""
        if self.pid is None:
            return None
        total, found = 0.0, False
        for sched in Path(f"/proc/{self.pid}/task").glob("*/sched"):
            try:
                text = sched.read_text()
            except OSError:  # the thread just ended
                continue
            match = SUM_EXEC.search(text)
            if match:
                total, found = total + float(match.group(1)) / 1000, True
        return total if found else self.cpu_seconds()

    def cpu_seconds(self) -> float | None:
        """The server's user + system CPU time so far (Linux /proc), None if unknown."""
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def ivr_server(
    work: Path, api_base: str, database_url: str = "", server_cpus: set[int] | None = None
) -> Iterator[Served]:
    """``ivr db upgrade`` and ``ivr serve`` on a temporary storage directory (and SQLite in it,
    unless ``database_url`` names a PostgreSQL database), fetching recordings from
    ``api_base`` as it would from Twilio's API; on ``server_cpus`` only, when given."""
    storage = work / ("storage-pg" if database_url else "storage")
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env |= {
        "IVR_STORAGE_DIR": str(storage),
        "IVR_DATABASE_URL": database_url,
        "IVR_TWILIO_AUTH_TOKEN": token,
        "IVR_TWILIO_API_BASE": api_base,
        "IVR_SECRET_KEY": secrets.token_hex(16),
        "IVR_SCHEDULER_ENABLED": "false",
    }
    upgraded = subprocess.run([ivr_command(), "db", "upgrade"], env=env, capture_output=True)
    if upgraded.returncode:
        reason = upgraded.stderr.decode(errors="replace").strip().splitlines()
        raise SystemExit(f"ivr db upgrade failed: {reason[-1] if reason else 'no message'}")
    port = free_port()
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [ivr_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus)) if server_cpus else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base_url}/healthz", process)
        db_path = None if database_url else storage / "ivr.db"
        yield Served(base_url, token, db_path, log_path, process.pid, database_url)
    finally:
        stop(process)


RECORDING_SERVER = """
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections kept open, as Twilio's API keeps them
    disable_nagle_algorithm = True  # or each kept-open answer waits for a delayed ACK
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 512  # http.server's 5 drops SYNs when 40 fetch at once: 1 s retries
    daemon_threads = True
handler = functools.partial(Handler, directory=sys.argv[2])
Server(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""
"""Python's ``http.server``, made to stand in for an API that many servers fetch from at once."""


@contextmanager
def recording_server(work: Path) -> Iterator[str]:
    """A 3 s 8 kHz WAV on a static file server in its own process, where Twilio's API keeps a
    recording; yields its URL (the server's base is what ``IVR_TWILIO_API_BASE`` is set to)."""
    root = work / "audio"
    folder = root / RECORDINGS
    folder.mkdir(parents=True)
    rate = 8000
    with wave.open(str(folder / "description.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(3 * rate)
            )
        )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", RECORDING_SERVER, str(port), str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/{RECORDINGS}/description.wav"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        stop(process)


def loopback(base_url: str) -> bool:
    host = urllib.parse.urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- reporting -----------------------------------------------------------------------------------


def describe(phase: Phase) -> list[str]:
    lines = [
        f"{phase.name}:",
        f"  turns answered   {phase.turns} in {phase.seconds:.2f} s = {phase.rate:.1f} turns/s",
        f"  turn latency     p50 {phase.percentile(50):.1f} ms   p99 {phase.percentile(99):.1f} ms"
        f"   max {max(phase.latencies, default=math.nan) * 1000:.1f} ms"
        f"   mean {statistics.fmean(phase.latencies) * 1000 if phase.latencies else math.nan:.1f}"
        " ms",
    ]
    cpu = f"  CPU              client {phase.client_cpu:.1f} s"
    if phase.server_cpu is not None:
        cpu += f", server {phase.server_cpu:.1f} s"
    cpu += f" over {phase.seconds:.1f} s of wall time"
    if phase.server_cpu is not None and phase.turns:
        cpu += f"; server {phase.server_cpu / phase.turns * 1000:.2f} ms CPU per turn"
    lines.append(cpu)
    if phase.name != "/twiml/ping floor":
        lines.append(
            f"  calls            {phase.calls_completed} completed, {phase.calls_failed} failed,"
            f" {phase.calls_unfinished} unfinished at the time limit"
        )
    if phase.errors:
        lines.append(f"  errors           {len(phase.errors)}; first: {phase.errors[0]}")
    for label, latencies in phase.by_step.items():
        lines.append(
            f"    {label:<18} p50 {phase.percentile(50, latencies):7.1f} ms"
            f"   p99 {phase.percentile(99, latencies):7.1f} ms"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="simulated calls (default 200)")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="calls in progress at once (default 50)"
    )
    parser.add_argument(
        "--base-url",
        help="a running server on loopback (default: start `ivr serve` on a temp storage)",
    )
    parser.add_argument(
        "--token", help="its Twilio auth token (default: $IVR_TWILIO_AUTH_TOKEN) with --base-url"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="time limit of each phase; unfinished calls are cancelled (default 120)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("IVR_TEST_POSTGRES_URL", ""),
        help="also run on this PostgreSQL database (default: $IVR_TEST_POSTGRES_URL; it is "
        "upgraded and gets the tickets); the report compares its per-turn cost with SQLite's",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="call phase then floor phase, this many times; the ratio is their median "
        "(default 3: one run on a shared machine is noise)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds between a call's turns (±50 %%), the prompts playing: 0 (default) "
        "measures saturation, where latency is concurrency / throughput; a few seconds models "
        "that many calls in progress, as a hotline has them",
    )
    parser.add_argument(
        "--by-step",
        action="store_true",
        help="then each step of the call for all --calls at once, one step after the other, "
        "with the server's CPU per request of each and of a ping",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the server share every CPU with the simulated Twilio (default: the server "
        "it starts gets CPU 0 and this process the others, when there are two or more)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 0 <= args.pause < math.inf:  # NaN is neither
        parser.error("--rounds must be positive and --pause not negative")
    if args.calls < 1 or args.concurrency < 1 or not 0 < args.max_seconds < math.inf:
        parser.error("--calls, --concurrency and --max-seconds must be positive")
    if args.base_url and not loopback(args.base_url):
        parser.error("--base-url must be a loopback address (127.0.0.1, ::1, localhost)")
    token = args.token or os.environ.get("IVR_TWILIO_AUTH_TOKEN", "")
    if args.base_url and not token:
        parser.error("--base-url needs --token or IVR_TWILIO_AUTH_TOKEN")
    if args.base_url and args.by_step:
        parser.error("--by-step reads the CPU of the server it starts: not with --base-url")

    server_cpus = None
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and not args.base_url and len(cpus) >= 2:
        server_cpus = {cpus[0]}
        os.sched_setaffinity(0, set(cpus[1:]))
    args.server_cpus = server_cpus
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        work = Path(tmp)
        with recording_server(work) as recording_url:
            if args.base_url:
                served = Served(args.base_url.rstrip("/"), token, None, None)
                return report(served, recording_url, args)
            api_base = recording_url.split("/2010-04-01/")[0]
            codes, per_turn = [], {}
            backends = [("SQLite", "")] + (
                [("PostgreSQL", args.postgres_url)] if args.postgres_url else []
            )
            for name, url in backends:
                print(f"=== {name} ===")
                with ivr_server(work, api_base, url, server_cpus) as served:
                    code = report(served, recording_url, args, per_turn, name)
                    if code == 1 and served.log_path is not None:
                        print("--- ivr serve log (tail) ---")
                        print(served.log_path.read_text(errors="replace")[-3000:])
                    codes.append(code)
            if "SQLite" in per_turn and "PostgreSQL" in per_turn:
                ratio = per_turn["PostgreSQL"] / per_turn["SQLite"]
                print(f"PostgreSQL's server CPU per call turn is {ratio:.2f}× SQLite's")
            return max(codes)


def pinning(args: argparse.Namespace) -> str:
    if not args.server_cpus:
        return ""
    return f" (the server on CPU {min(args.server_cpus)}, the simulated Twilio on the others)"


def report(
    served: Served,
    recording_url: str,
    args: argparse.Namespace,
    per_turn: dict[str, float] | None = None,
    backend: str = "",
) -> int:
    print(
        f"server {served.base_url}: {args.rounds} × {args.calls} calls × 10 turns, concurrency "
        f"{args.concurrency}, {args.pause:g} s between a call's turns, ≤ "
        f"{args.max_seconds:.0f} s per phase, {os.cpu_count()} CPUs{pinning(args)}"
    )
    flows, pings = [], []
    for _round in range(args.rounds):
        before = served.cpu_seconds()
        flow = asyncio.run(
            run_calls(
                served.base_url,
                served.token,
                recording_url,
                args.calls,
                args.concurrency,
                args.max_seconds,
                args.pause,
            )
        )
        middle = served.cpu_seconds()
        ping = asyncio.run(
            run_ping(
                served.base_url, served.token, 2 * flow.turns, args.concurrency, args.max_seconds
            )
        )
        after = served.cpu_seconds()
        if before is not None and middle is not None and after is not None:
            flow.server_cpu, ping.server_cpu = middle - before, after - middle
        flows.append(flow)
        pings.append(ping)
        if args.rounds > 1:
            print(f"  round {_round + 1}: {per_turn_line(flow, ping)}")
    flow, ping = merged(flows), merged(pings)
    for line in describe(flow) + describe(ping):
        print(line)
    print(f"  tickets created  {len(flow.trackings)} tracking numbers read out", end="")
    if served.db_path is not None:
        with sqlite3.connect(f"file:{served.db_path}?mode=ro", uri=True) as db:
            print(f", {db.execute('SELECT count(*) FROM ticket').fetchone()[0]} in the database")
    elif served.database_url:
        print(" (PostgreSQL: tickets of earlier runs are in the same database)")
    else:
        print()
    if flow.rate and ping.rate:
        print(
            f"ratio: the floor answers {ping.rate / flow.rate:.1f}× more turns/s; a call turn's "
            f"p50 is {flow.percentile(50) / ping.percentile(50):.1f}× the floor's"
        )
    pairs = zip(flows, pings, strict=True)
    ratios = [cpu_per_turn(f) / cpu_per_turn(p) for f, p in pairs if cpu_per_turn(p)]
    if ratios:
        per_flow = statistics.median(cpu_per_turn(f) for f in flows)
        print(
            f"       server CPU per call turn is {statistics.median(ratios):.1f}× the floor's "
            f"(median of {len(ratios)} round{'s' if len(ratios) > 1 else ''}; "
            f"{per_flow * 1000:.2f} ms)"
        )
        if per_turn is not None:
            per_turn[backend] = per_flow
    if flow.client_cpu > 0.8 * flow.seconds:
        print(
            "note: the simulated Twilio kept a CPU busy during the call phase, so its turns/s "
            "and latencies are bounded by the client here, not by the server"
        )
    if ping.client_cpu > 0.8 * ping.seconds:
        print(
            "note: the simulated Twilio kept a CPU busy during the floor phase, so the floor's "
            "turns/s is bounded by the client here, not by the server"
        )
    if args.by_step:
        rounds = [
            asyncio.run(run_by_step(served, recording_url, args.calls, args.concurrency))
            for _round in range(args.rounds)
        ]
        for line in by_step_lines([costs for costs, _phase in rounds], args.calls):
            print(line)
        errors = [error for _costs, stepped in rounds for error in stepped.errors]
        if errors:
            print(f"by step: {len(errors)} failed; the first: {errors[0]}")
            return 1
    if flow.calls_failed or ping.errors:
        return 1
    return 3 if flow.calls_unfinished or ping.turns < flow.turns else 0


def cpu_per_turn(phase: Phase) -> float:
    """Server CPU seconds per answered turn (0 when unknown)."""
    return phase.server_cpu / phase.turns if phase.server_cpu and phase.turns else 0.0


def per_turn_line(flow: Phase, ping: Phase) -> str:
    ratio = cpu_per_turn(flow) / cpu_per_turn(ping) if cpu_per_turn(ping) else math.nan
    return (
        f"call turns {cpu_per_turn(flow) * 1000:.2f} ms CPU (p99 {flow.percentile(99):.0f} ms), "
        f"floor {cpu_per_turn(ping) * 1000:.2f} ms (p99 {ping.percentile(99):.0f} ms): "
        f"{ratio:.1f}×"
    )


def merged(phases: list[Phase]) -> Phase:
    """Several rounds of one phase as one: every latency, the sums of times and counts."""
    if len(phases) == 1:
        return phases[0]
    total = Phase(phases[0].name)
    for phase in phases:
        total.latencies += phase.latencies
        for label, latencies in phase.by_step.items():
            total.by_step.setdefault(label, []).extend(latencies)
        total.errors += phase.errors
        total.seconds += phase.seconds
        total.calls_completed += phase.calls_completed
        total.calls_failed += phase.calls_failed
        total.calls_unfinished += phase.calls_unfinished
        total.trackings |= phase.trackings
        total.client_cpu += phase.client_cpu
        if phase.server_cpu is not None:
            total.server_cpu = (total.server_cpu or 0.0) + phase.server_cpu
    return total


if __name__ == "__main__":
    sys.exit(main())
