"""What a call through the whole new-request flow costs the controller, next to its floor: the
same menus written as plain dialplan (Background/WaitExten, as FreePBX builds them) on Asterisk.

sipp places SIP calls at a rising rate (``--rates``, calls per second, each for ``--phase-seconds``
seconds; phases overlap as real traffic would) against a private test PBX (Asterisk 22 in the
chroot, loopback only) and ``ivr serve`` as a subprocess, run as in production: FastAGI plus
its AMI queue-event listener (``--no-ami`` leaves that out). Every call is a whole new request
(tests/asterisk/sipp/new_request.xml): keys as RFC 4733 events with pauses that interrupt the
prompts, about 3.5 s of Persian speech as RTP recorded by Asterisk, confirm, register. Then the
same scenario runs again against extension ``bench`` (dialplans/test-pbx/bench.conf).

Printed per run: calls placed, completed (IVR: a ticket with its recording; dialplan: the call
reached the registered step) and failed, peak concurrent calls, CPU seconds per call of the
controller (``/proc/<pid>/stat`` of ``ivr serve``) and of Asterisk, and the AGI round trips
(``IVR_AGI_TIMINGS``: sent → result per command, and the controller's think time between a
result and its next command); then controller CPU per call ÷ Asterisk's floor CPU per call.

    .venv/bin/python benchmarks/asterisk_load.py                  # rates 1,2,4,6 for 8 s each
    .venv/bin/python benchmarks/asterisk_load.py --rates 1,2 --phase-seconds 5

Needs root (the chroot; sipp plays RTP pcaps only as root), sipp, and built prompts
(``make prompts``). Asterisk's per-step logging is turned off for both runs (as in production).
Exit status: 0 every call completed, 1 some failed, 3 the time limit cut a run short.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ivr.devtools.sipp import read_pcm, sipp_command, write_rtp_pcap
from ivr.devtools.testpbx import (
    DEFAULT_ROOT,
    TestPbx,
    cannot_run_reason,
    free_port,
    free_tcp_udp_port,
)
from ivr.prompts import audio_path, install_asterisk
from ivr.tickets.db import upgrade

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SCENARIO = PROJECT_ROOT / "tests" / "asterisk" / "sipp" / "new_request.xml"
CALL_SECONDS = 30
"""A scenario call lasts about 26 s; sipp's per-run timeout adds this much after the last call."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads included (utime, stime of /proc stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _sockets(table: str) -> list[tuple[int, str]]:
    """(local port, state) of every socket in /proc/net/<table> (this network namespace)."""
    out = []
    with open(f"/proc/net/{table}", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            out.append((int(fields[1].rsplit(":", 1)[1], 16), fields[3]))
    return out


@dataclass
class Sampler:
    """Concurrent calls as the PBX holds them: Asterisk's RTP sockets in its port range (one even
    port per call) and, for the IVR, established FastAGI connections."""

    rtp_ports: tuple[int, int]
    agi_port: int
    peak_rtp: int = 0
    peak_agi: int = 0

    def sample(self) -> None:
        low, high = self.rtp_ports
        rtp = sum(1 for port, _ in _sockets("udp") if low <= port <= high and port % 2 == 0)
        agi = sum(1 for port, state in _sockets("tcp") if port == self.agi_port and state == "01")
        self.peak_rtp = max(self.peak_rtp, rtp)
        self.peak_agi = max(self.peak_agi, agi)


@dataclass
class Run:
    name: str
    placed: int = 0
    sipp_ok: int = 0
    sipp_failed: int = 0
    completed: int = 0
    seconds: float = 0.0
    cpu_controller: float = 0.0
    cpu_asterisk: float = 0.0
    peak_calls: int = 0
    peak_agi: int = 0
    cut_short: bool = False
    sipp_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.placed - self.completed

    def per_call(self, cpu: float) -> float:
        return cpu / self.completed if self.completed else float("nan")


def _sipp_counts(text: str) -> tuple[int, int]:
    """(successful, failed) from sipp's final statistics screen (its cumulative column)."""
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return (int(ok[-1]) if ok else 0), (int(bad[-1]) if bad else 0)


def place_calls(
    run: Run,
    service: str,
    pbx: TestPbx,
    rates: list[float],
    phase_s: float,
    workdir: Path,
    sampler: Sampler,
    deadline: float,
    controller_pid: int | None,
) -> None:
    """One sipp per rate, started one phase after the other; all run to their end."""
    cpu_c0 = cpu_seconds(controller_pid) if controller_pid else 0.0
    cpu_a0 = cpu_seconds(pbx.pid or 0)
    started = time.monotonic()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for i, rate in enumerate(rates):
        calls = max(1, round(rate * phase_s))
        run.placed += calls
        cwd = workdir / f"{run.name}-{i}"
        cwd.mkdir()
        (cwd / "speech.pcap").symlink_to(workdir / "speech.pcap")
        cmd = sipp_command(
            SCENARIO,
            pbx.sip_port,
            service=service,
            calls=calls,
            rate=rate,
            limit=10_000,
            timeout_s=int(phase_s + CALL_SECONDS + 30),
        )
        out = (cwd / "sipp.out").open("wb")
        procs.append((subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT), cwd))
        out.close()
        phase_end = started + (i + 1) * phase_s
        while time.monotonic() < phase_end:
            sampler.sample()
            time.sleep(0.25)
    while any(p.poll() is None for p, _ in procs):
        if time.monotonic() > deadline:
            run.cut_short = True
            for p, _ in procs:
                if p.poll() is None:
                    p.kill()
            break
        sampler.sample()
        time.sleep(0.25)
    for p, _ in procs:
        p.wait()
    run.seconds = time.monotonic() - started
    run.cpu_controller = (cpu_seconds(controller_pid) - cpu_c0) if controller_pid else 0.0
    run.cpu_asterisk = cpu_seconds(pbx.pid or 0) - cpu_a0
    run.peak_calls, run.peak_agi = sampler.peak_rtp, sampler.peak_agi
    for _p, cwd in procs:
        ok, bad = _sipp_counts((cwd / "sipp.out").read_text(errors="replace"))
        run.sipp_ok += ok
        run.sipp_failed += bad
        run.sipp_errors += [
            line for f in cwd.glob("*_errors.log") for line in f.read_text().splitlines()[:3]
        ]


def start_controller(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    ivr = Path(sys.executable).with_name("ivr")
    web_port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(ivr), "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(web_port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).is_success:
                return proc, web_port
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"`ivr serve` did not start:\n{log.read_text(errors='replace')[-3000:]}")


IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class Idle:
    """CPU seconds per second with no calls: the web app, the FastAGI accept loop, Asterisk's
    own timers. Subtracted from a run's CPU (times its length) in the "net" lines."""

    asterisk: float
    controller: float


def measure_idle(asterisk_pid: int, controller_pid: int, seconds: float) -> Idle:
    a0, c0 = cpu_seconds(asterisk_pid), cpu_seconds(controller_pid)
    time.sleep(seconds)
    a1, c1 = cpu_seconds(asterisk_pid), cpu_seconds(controller_pid)
    return Idle((a1 - a0) / seconds, (c1 - c0) / seconds)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def agi_timings(path: Path) -> tuple[dict[str, list[float]], list[float]]:
    """Round trips per command and all think times from the IVR_AGI_TIMINGS file."""
    rtt: dict[str, list[float]] = defaultdict(list)
    think: list[float] = []
    if not path.exists():
        return rtt, think
    for line in path.read_text().splitlines():
        name, seconds, before = line.split("\t")
        rtt[name].append(float(seconds))
        if before != "-":
            think.append(float(before))
    return rtt, think


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def report(
    ivr: Run, floor: Run, idle: Idle, rtt: dict[str, list[float]], think: list[float]
) -> None:
    net_ctrl = ivr.per_call(ivr.cpu_controller - idle.controller * ivr.seconds)
    net_ast = ivr.per_call(ivr.cpu_asterisk - idle.asterisk * ivr.seconds)
    net_floor = floor.per_call(floor.cpu_asterisk - idle.asterisk * floor.seconds)
    print()
    print(f"{'':34}{'IVR (ivr serve)':>18}{'plain dialplan':>18}")
    rows = [
        ("calls placed", ivr.placed, floor.placed),
        ("completed", ivr.completed, floor.completed),
        ("failed", ivr.failed, floor.failed),
        ("sipp: successful / failed", f"{ivr.sipp_ok}/{ivr.sipp_failed}",
         f"{floor.sipp_ok}/{floor.sipp_failed}"),
        ("peak concurrent calls (RTP)", ivr.peak_calls, floor.peak_calls),
        ("peak FastAGI connections", ivr.peak_agi, "-"),
        ("wall time, s", f"{ivr.seconds:.1f}", f"{floor.seconds:.1f}"),
        ("controller CPU, s", f"{ivr.cpu_controller:.2f}", "-"),
        ("Asterisk CPU, s", f"{ivr.cpu_asterisk:.2f}", f"{floor.cpu_asterisk:.2f}"),
        ("controller CPU per call, ms", f"{ivr.per_call(ivr.cpu_controller) * 1000:.1f}", "-"),
        ("Asterisk CPU per call, ms", f"{ivr.per_call(ivr.cpu_asterisk) * 1000:.1f}",
         f"{floor.per_call(floor.cpu_asterisk) * 1000:.1f}"),
        ("idle CPU, % of a core: ctl / ast", f"{idle.controller * 100:.1f} / "
         f"{idle.asterisk * 100:.1f}", ""),
        ("net controller CPU per call, ms", f"{net_ctrl * 1000:.1f}", "-"),
        ("net Asterisk CPU per call, ms", f"{net_ast * 1000:.1f}", f"{net_floor * 1000:.1f}"),
    ]  # fmt: skip
    for label, a, b in rows:
        print(f"{label:34}{a!s:>18}{b!s:>18}")
    print()
    print("AGI round trips (command sent → result), ms:      count      p50      p99")
    for name in sorted(rtt, key=lambda n: -len(rtt[n])):
        values = rtt[name]
        print(f"  {name:45}{len(values):8d} {ms(percentile(values, 50))} "
              f"{ms(percentile(values, 99))}")  # fmt: skip
    print("  (STREAM FILE / GET DATA / RECORD FILE last as long as their audio or the caller)")
    print(f"controller think time (result → next command), ms: {len(think):8d} "
          f"{ms(percentile(think, 50))} {ms(percentile(think, 99))}")  # fmt: skip
    floor_cpu = floor.per_call(floor.cpu_asterisk)
    ctrl_cpu = ivr.per_call(ivr.cpu_controller)
    print()
    print(
        f"controller CPU per call / Asterisk's plain-dialplan CPU per call = "
        f"{ctrl_cpu * 1000:.1f} ms / {floor_cpu * 1000:.1f} ms = {ctrl_cpu / floor_cpu:.2f}"
        f" (net of idle: {net_ctrl / net_floor:.2f})"
    )
    extra = ivr.per_call(ivr.cpu_asterisk) - floor_cpu
    print(f"Asterisk's own CPU per call with the IVR vs the dialplan: {extra * 1000:+.1f} ms "
          f"(AGI instead of dialplan applications)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1,2,4,6", help="calls per second, one phase each")
    parser.add_argument("--phase-seconds", type=float, default=8.0)
    parser.add_argument("--time-limit", type=float, default=300.0, help="for both runs, seconds")
    parser.add_argument("--no-ami", action="store_true",
                        help="run ivr serve without its AMI queue-event listener")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates: numbers separated by commas, not {args.rates!r}")
    numbers = (*rates, args.phase_seconds, args.time_limit)
    if not rates or not all(0 < x < math.inf for x in numbers):  # NaN is neither
        parser.error("--rates, --phase-seconds and --time-limit must be positive")
    reason = cannot_run_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    prompts = PROJECT_ROOT / "prompts"
    rendered = PROJECT_ROOT / "storage" / "prompts"  # where `make prompts` renders them
    speech = audio_path(prompts, "describe.instructions", rendered)
    if speech is None:
        print("no prompts: run `make prompts` first", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.time_limit

    work = Path(tempfile.mkdtemp(prefix="ivr-asterisk-load-"))
    rtp_base = random.randrange(30000, 50000, 1000)
    pbx = TestPbx(
        DEFAULT_ROOT,
        work / "pbx",
        ami_port=free_port(),
        sip_port=free_tcp_udp_port(),
        agi_port=free_port(),
        rtp_ports=(rtp_base, rtp_base + 3999),
    )
    storage = pbx.workdir / "ivr"  # under the PBX's work dir: same path inside the root
    storage.mkdir(parents=True)
    write_rtp_pcap(work / "speech.pcap", read_pcm(speech, 3.5))
    pbx.ensure_root()
    install_asterisk(prompts, pbx.sounds_dir, generated_dir=rendered)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        IVR_STORAGE_DIR=str(storage),
        IVR_PROMPTS_DIR=str(prompts),
        IVR_GENERATED_PROMPTS_DIR=str(rendered),
        IVR_AGI_PORT=str(pbx.agi_port),
        IVR_AGI_TIMINGS=str(work / "agi-timings.tsv"),
    )
    if not args.no_ami:  # as `ivr serve` runs in production: queue events on
        env.update(IVR_AMI_PORT=str(pbx.ami_port), IVR_AMI_USERNAME=pbx.ami_user,
                   IVR_AMI_SECRET=pbx.ami_secret)  # fmt: skip
    db_path = storage / "ivr.db"
    upgrade(f"sqlite:///{db_path}")
    ivr = Run("ivr")
    floor = Run("dialplan")
    controller: subprocess.Popen[bytes] | None = None
    rtt: dict[str, list[float]] = {}
    think: list[float] = []
    idle = Idle(0.0, 0.0)
    pbx.start()
    try:
        for module in ("app_record.so", "app_read.so", "func_global.so"):  # the floor's
            pbx.rx(f"module load {module}")
        # No per-step log lines (the test PBX logs every dialplan step and AGI command).
        (pbx.workdir / "etc" / "logger.conf").write_text(
            "[logfiles]\nmessages.log => notice,warning,error\n", encoding="utf-8"
        )
        pbx.rx("logger reload")
        pbx.rx("core set verbose 0")
        controller, _ = start_controller(env, work / "ivr-serve.log")
        print(f"rates {rates} calls/s, {args.phase_seconds:g} s each; Asterisk pid {pbx.pid}, "
              f"ivr serve pid {controller.pid}; work dir {work}", flush=True)  # fmt: skip

        idle = measure_idle(pbx.pid or 0, controller.pid, IDLE_SECONDS)
        print("IVR run ...", flush=True)
        sampler = Sampler(pbx.rtp_ports, pbx.agi_port)
        place_calls(ivr, "124", pbx, rates, args.phase_seconds, work, sampler, deadline,
                    controller.pid)  # fmt: skip
        time.sleep(1.0)  # the last turns' writes
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT t.recording_path FROM call c JOIN ticket t ON t.id = c.ticket_id "
                "WHERE c.outcome = 'ticket'"
            ).fetchall()
        ivr.completed = sum(1 for (path,) in rows if path and Path(path).is_file())
        controller.send_signal(signal.SIGINT)  # uvicorn stops; atexit writes the AGI timings
        controller.wait(30)
        rtt, think = agi_timings(work / "agi-timings.tsv")

        print("plain dialplan run ...", flush=True)
        sampler = Sampler(pbx.rtp_ports, pbx.agi_port)
        place_calls(floor, "bench", pbx, rates, args.phase_seconds, work, sampler, deadline, None)
        time.sleep(1.0)
        floor.completed = pbx.rx("dialplan show globals").count("BENCH_DONE_")
    finally:
        if controller is not None and controller.poll() is None:
            controller.kill()
        pbx.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    report(ivr, floor, idle, rtt, think)
    for run in (ivr, floor):
        for line in (run.sipp_errors if run.sipp_failed else [])[:5]:
            print(f"{run.name} sipp: {line}")
    if ivr.cut_short or floor.cut_short:
        print("the time limit cut a run short", file=sys.stderr)
        return 3
    return 0 if ivr.failed == 0 and floor.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
