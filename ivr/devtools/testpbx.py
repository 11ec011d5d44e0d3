"""A real Asterisk for tests and development: Debian testing's Asterisk 22 in a chroot.

Why a chroot: Debian 12 ships no Asterisk, and the binary in testing needs a newer glibc than
the host has, so it runs from its own minimal root made with mmdebstrap (about 20 s, 340 MB,
built once and reused). Each instance keeps everything it writes (configuration copied from
``dialplans/``, logs, the control socket, recordings) in its own work directory, bind-mounted
into the root at the same path: paths are the same on both sides, and a test PBX and a
``make pbx`` PBX can run side by side from one root.

    python -m ivr.devtools.testpbx run      # start one in the foreground (Ctrl-C stops it)
    python -m ivr.devtools.testpbx build    # only make sure the root exists
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from ivr import DIALPLANS_DIR

DEFAULT_ROOT = Path(os.environ.get("IVR_ASTERISK_ROOT", "/var/cache/ivr124/asterisk-root"))
SUITES = ("testing", "unstable")
"""Debian 12 and 13 have no Asterisk; testing has it, unstable when testing lost it."""
EXTRA_PACKAGES = ("asterisk-moh-opsound-gsm", "libfaketime")
"""Beyond Asterisk: the stock music on hold (a recommendation of the asterisk package, which
minbase leaves out), and libfaketime, so a test can move this PBX's clock (queue hold times)."""
_EXTRA_MARKERS = {
    "asterisk-moh-opsound-gsm": "usr/share/asterisk/moh",
    "libfaketime": "usr/lib/*/faketime/libfaketimeMT.so.1",
}
"""A path (glob) in the root that each extra package installs: its presence means installed."""
MMDEBSTRAP_ARGS = [
    "--mode=root",
    "--variant=minbase",
    # The mirrors' Release files for these suites can be past Valid-Until.
    '--aptopt=Acquire::Check-Valid-Until "false"',
    '--aptopt=APT::Install-Recommends "false"',
    "--include=asterisk,asterisk-modules," + ",".join(EXTRA_PACKAGES),
]
DIALPLANS = DIALPLANS_DIR
DATA_DIR_IN_ROOT = "opt/ivr/data"
"""astdatadir inside the root: the package's documentation and sounds, plus our prompts."""
CONFIG_TEMPLATES = DIALPLANS / "test-pbx"
PRODUCTION_CONFIGS = ("extensions.conf", "queues.conf", "say.conf")
"""Copied to ``etc/ivr124/`` and included from the test configuration, unchanged."""


class PbxError(RuntimeError):
    """The test PBX could not be built, started or asked something."""


def cannot_run_reason() -> str | None:
    """Why a test PBX cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "the test PBX needs root (chroot, bind mounts, mmdebstrap --mode=root)"
    if shutil.which("chroot") is None:
        return "no chroot command"
    if not os.path.isdir("/proc/self"):
        return "no /proc"
    return None


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now on ``host`` (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_tcp_udp_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP (PJSIP may listen on either for one number)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM, host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, port))
        except OSError:
            continue
        return port
    raise PbxError("no port free for both TCP and UDP")


def _is_mountpoint(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4].replace("\\040", " ") == target:
                return True
    return False


def add_extra_packages(root: Path, log: Path | None = None) -> bool:
    """Install ``EXTRA_PACKAGES`` into a root built before they were part of it; True if it
    had to. Serialised by a lock file beside the root, so two test runs never run apt at once.
    """
    missing = [p for p in EXTRA_PACKAGES if not _installed(root, p)]
    if not missing:
        return False
    import fcntl

    log = log or root.parent / f"{root.name}.build.log"
    with open(root.parent / f".{root.name}.lock", "w") as lock, open(log, "ab") as out:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [p for p in EXTRA_PACKAGES if not _installed(root, p)]
        steps = [["apt-get", "update"], ["apt-get", "install", "-y", *missing]] if missing else []
        for step in steps:
            proc = subprocess.run(
                ["chroot", str(root), *step],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                check=False,
            )
            if proc.returncode != 0:
                raise PbxError(f"could not install {', '.join(missing)} in {root}; see {log}")
    return True


def _installed(root: Path, package: str) -> Path | None:
    return next(iter(sorted(root.glob(_EXTRA_MARKERS[package]))), None)


def build_root(root: Path, log: Path | None = None) -> None:
    """Build the root with mmdebstrap into a temporary directory, then rename it into place.

    The rename is the last step, so a build that fails or is killed half way never leaves
    something at ``root`` that a later run would take for a finished root.
    """
    if shutil.which("mmdebstrap") is None:
        raise PbxError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in root.parent.glob(f".{root.name}.building-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue  # another process is building right now
        subprocess.run(["rm", "-rf", "--one-file-system", str(stale)], check=False)
    tmp = root.parent / f".{root.name}.building-{os.getpid()}"
    log = log or root.parent / f"{root.name}.build.log"
    errors = []
    for suite in SUITES:
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)], check=False)
        with open(log, "ab") as out:
            proc = subprocess.run(
                ["mmdebstrap", *MMDEBSTRAP_ARGS, suite, str(tmp)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if proc.returncode == 0 and (tmp / "usr/sbin/asterisk").exists():
            break
        errors.append(f"{suite}: mmdebstrap exited {proc.returncode}")
    else:
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)], check=False)
        raise PbxError(f"could not build {root} ({'; '.join(errors)}); see {log}")
    try:
        os.rename(tmp, root)
    except OSError:
        # Another process finished first (rename onto a non-empty directory fails): use it.
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)], check=False)
        if not (root / "usr/sbin/asterisk").exists():
            raise


class TestPbx:
    """One Asterisk instance from ``root``, writing only under ``workdir``.

    Ports default to Asterisk's usual ones; tests pass free ports so they never collide with
    a PBX (or an ``ivr serve``) already running on the machine. ``workdir`` and every one of
    ``shared_dirs`` are bind-mounted into the root at their own paths while it runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        workdir: Path = Path("storage") / "pbx",  # relative: to the current folder
        *,
        ami_port: int = 5038,
        sip_port: int = 5060,
        agi_port: int = 4573,
        rtp_ports: tuple[int, int] = (10000, 10999),
        ami_user: str = "ivr124",
        ami_secret: str = "ivr124-test-pbx",
        shared_dirs: Iterable[Path] = (),
        movable_clock: bool = False,
    ) -> None:
        self.root = Path(root).absolute()
        self.workdir = Path(workdir).absolute()
        self.ami_port = ami_port
        self.sip_port = sip_port
        self.agi_port = agi_port
        self.rtp_ports = rtp_ports
        self.ami_user = ami_user
        self.ami_secret = ami_secret
        self.shared_dirs = [Path(d).absolute() for d in shared_dirs]
        """Host directories Asterisk must reach at their own paths, e.g. the IVR's
        recordings directory (RECORD FILE writes where the IVR will read)."""
        self.movable_clock = movable_clock
        """Run Asterisk under libfaketime so ``move_clock`` can push its wall clock forward
        (its monotonic clock, and so audio timing, is left alone)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: object | None = None
        self._mounted = False

    # ------------------------------------------------------------------ paths
    @property
    def conf_path(self) -> Path:
        """asterisk.conf, at the same path on the host and inside the root."""
        return self.workdir / "etc" / "asterisk.conf"

    @property
    def sounds_dir(self) -> Path:
        """Host path of astdatadir/sounds: prompts go to ``sounds_dir/fa/ivr124/<id>.wav``."""
        return self.root / DATA_DIR_IN_ROOT / "sounds"

    @property
    def recordings_dir(self) -> Path:
        """Where RECORD FILE may write: the same path on the host and inside the root."""
        return self.workdir / "recordings"

    @property
    def log_path(self) -> Path:
        """Asterisk's messages log (verbose 3: dialplan steps, AGI, warnings)."""
        return self.workdir / "log" / "messages.log"

    @property
    def console_path(self) -> Path:
        """What Asterisk printed on stdout/stderr (start-up failures end up here)."""
        return self.workdir / "console.log"

    @property
    def clock_file(self) -> Path:
        """libfaketime's offset for this instance ("+<seconds>"), re-read every second."""
        return self.workdir / "faketime"

    def move_clock(self, seconds: float) -> None:
        """Push this PBX's wall clock ``seconds`` further ahead; it never goes back (a clock
        going back would stall Asterisk's timers). Takes effect within about a second."""
        if not self.movable_clock:
            raise PbxError("move_clock needs TestPbx(movable_clock=True)")
        now = float(self.clock_file.read_text().lstrip("+") or 0)
        if seconds < 0:
            raise PbxError("the clock only moves forward")
        self.clock_file.write_text(f"+{now + seconds:.0f}\n")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ root
    def ensure_root(self) -> float:
        """Build the root unless a finished one is there; returns the seconds spent building."""
        started = time.monotonic()
        built = not (self.root / "usr/sbin/asterisk").exists()
        if built:
            build_root(self.root)
        if add_extra_packages(self.root) or built:
            return time.monotonic() - started
        return 0.0

    def _prepare_data_dir(self) -> None:
        """astdatadir = the package's documentation and sounds via relative symlinks + ours.

        Relative links resolve the same inside the chroot; absolute ones would point at the
        host's /usr when followed from outside.
        """
        data = self.root / DATA_DIR_IN_ROOT
        (data / "sounds" / "fa" / "ivr124").mkdir(parents=True, exist_ok=True)
        links = {
            data / "documentation": "../../../usr/share/asterisk/documentation",
            data / "sounds" / "en": "../../../../usr/share/asterisk/sounds/en",
            data / "moh": "../../../usr/share/asterisk/moh",  # musiconhold.conf's "moh"
        }
        for link, target in links.items():
            if not link.is_symlink():
                with contextlib.suppress(FileExistsError):  # another instance made it first
                    link.symlink_to(target)

    def _moddir(self) -> str:
        found = sorted(self.root.glob("usr/lib/*/asterisk/modules"))
        if not found:
            raise PbxError(f"no asterisk modules directory in {self.root}")
        return "/" + str(found[0].relative_to(self.root))

    # ------------------------------------------------------------------ config
    def _values(self) -> dict[str, str]:
        return {
            "WORKDIR": str(self.workdir),
            "MODDIR": self._moddir(),
            "AMI_PORT": str(self.ami_port),
            "AMI_USER": self.ami_user,
            "AMI_SECRET": self.ami_secret,
            "SIP_PORT": str(self.sip_port),
            "AGI_PORT": str(self.agi_port),
            "RTP_START": str(self.rtp_ports[0]),
            "RTP_END": str(self.rtp_ports[1]),
        }

    def write_config(self) -> None:
        """Copy the test configuration (filled in) and the production dialplan into etc/."""
        etc = self.workdir / "etc"
        (etc / "ivr124").mkdir(parents=True, exist_ok=True)
        values = self._values()
        for template in sorted(CONFIG_TEMPLATES.glob("*.conf")):
            text = template.read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace(f"@@{key}@@", value)
            if "@@" in text:
                raise PbxError(f"{template.name}: unfilled placeholder")
            (etc / template.name).write_text(text, encoding="utf-8")
        for name in PRODUCTION_CONFIGS:
            shutil.copyfile(DIALPLANS / name, etc / "ivr124" / name)

    # ------------------------------------------------------------------ mount
    def _shared(self) -> list[Path]:
        """The host directories visible at the same path inside the root."""
        out = [self.workdir]
        for d in self.shared_dirs:
            if not d.is_relative_to(self.workdir) and d not in out:
                out.append(d)
        return out

    def _mount_workdir(self) -> None:
        """Bind-mount the work directory (and ``shared_dirs``) into the root at their paths."""
        for source in self._shared():
            source.mkdir(parents=True, exist_ok=True)
            target = self.root / str(source).lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            if _is_mountpoint(target):  # left over from a run that was killed
                subprocess.run(["umount", "-l", str(target)], check=False)
            subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
            self._mounted = True

    def _unmount_workdir(self) -> None:
        for source in reversed(self._shared()):
            target = self.root / str(source).lstrip("/")
            if self._mounted or _is_mountpoint(target):
                res = subprocess.run(["umount", str(target)], check=False, capture_output=True)
                if res.returncode != 0:
                    subprocess.run(["umount", "-l", str(target)], check=False)
        self._mounted = False

    # ------------------------------------------------------------------ life
    def _asterisk(self, *args: str) -> list[str]:
        return ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", str(self.conf_path), *args]

    def start(self, timeout: float = 30.0) -> None:
        """Start Asterisk in the background and return once it is fully booted."""
        if self.running:
            return
        if not (self.root / "usr/sbin/asterisk").exists():
            raise PbxError(f"no Asterisk root at {self.root}; call ensure_root() first")
        for sub in ("etc", "lib", "spool", "run", "log", "cache", "recordings"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self._prepare_data_dir()
        self.write_config()
        self._mount_workdir()
        try:
            if self._answers():
                raise PbxError(f"another Asterisk already runs from {self.workdir}")
            for stale in (self.workdir / "run").glob("asterisk.*"):
                stale.unlink()
            console = open(self.console_path, "ab")  # noqa: SIM115 - closed in stop()
            self._console = console
            command = self._asterisk("-f", "-n")
            if self.movable_clock:
                lib = _installed(self.root, "libfaketime")
                if lib is None:
                    raise PbxError(f"no libfaketime in {self.root}; call ensure_root() first")
                self.clock_file.write_text("+0\n")
                command[2:2] = [
                    "/usr/bin/env",
                    f"LD_PRELOAD=/{lib.relative_to(self.root)}",
                    f"FAKETIME_TIMESTAMP_FILE={self.clock_file}",
                    "FAKETIME_CACHE_DURATION=1",
                    "FAKETIME_DONT_FAKE_MONOTONIC=1",
                ]
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in a terminal reaches us, and we stop it in order.
                start_new_session=True,
            )
            self._wait_booted(timeout)
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        try:
            res = subprocess.run(
                self._asterisk("-rx", "core show version"),
                capture_output=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return res.returncode == 0 and b"Asterisk" in res.stdout

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise PbxError(f"Asterisk exited during start-up:\n{self._console_tail()}")
            try:
                res = subprocess.run(
                    self._asterisk("-rx", "core waitfullybooted"),
                    capture_output=True,
                    timeout=max(1.0, deadline - time.monotonic()),
                    check=False,
                )
            except subprocess.TimeoutExpired:
                break
            if res.returncode == 0 and b"fully booted" in res.stdout:
                return
            time.sleep(0.05)
        raise PbxError(f"Asterisk did not boot within {timeout} s:\n{self._console_tail()}")

    def _console_tail(self, lines: int = 30) -> str:
        try:
            text = self.console_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def rx(self, cmd: str, timeout: float = 10.0) -> str:
        """Run one CLI command on the running Asterisk and return its output."""
        try:
            res = subprocess.run(
                self._asterisk("-rx", cmd), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PbxError(f"asterisk -rx {cmd!r} took over {timeout} s") from exc
        if res.returncode != 0:
            err = (res.stderr or res.stdout).decode(errors="replace").strip()
            raise PbxError(f"asterisk -rx {cmd!r} failed ({res.returncode}): {err}")
        return res.stdout.decode("utf-8", errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop by PID: ``core stop now``, then TERM, then KILL; then unmount the work dir."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    self._asterisk("-rx", "core stop now"),
                    capture_output=True,
                    timeout=5,
                    check=False,
                )
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout / 2)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._proc = None
        if self._console is not None:
            self._console.close()  # type: ignore[attr-defined]
            self._console = None
        self._unmount_workdir()

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def __enter__(self) -> TestPbx:
        self.ensure_root()
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _run(args: argparse.Namespace) -> int:
    shared = [Path(d) for d in args.share]
    if not shared:
        from ivr.settings import get_settings

        shared = [get_settings().recordings_dir]  # where `ivr serve` records callers
    pbx = TestPbx(
        Path(args.root),
        Path(args.workdir),
        ami_port=args.ami_port,
        sip_port=args.sip_port,
        agi_port=args.agi_port,
        shared_dirs=shared,
    )
    built = pbx.ensure_root()
    if built:
        print(f"built {pbx.root} in {built:.1f} s")
    started = time.monotonic()
    pbx.start()
    print(f"Asterisk is up (pid {pbx.pid}, {time.monotonic() - started:.1f} s).")
    print(f"  AMI      127.0.0.1:{pbx.ami_port}  user {pbx.ami_user} secret {pbx.ami_secret}")
    print(f"  SIP      127.0.0.1:{pbx.sip_port}  (calls to 124 enter context ivr-124)")
    print(f"  FastAGI  the dialplan calls agi://127.0.0.1:{pbx.agi_port}/ivr124")
    print(f"  sounds   {pbx.sounds_dir}/fa/ivr124/")
    print(f"  log      {pbx.log_path}")
    print(f"  shared   {', '.join(str(d) for d in pbx.shared_dirs)} (same path inside)")
    print(f"  CLI      chroot {pbx.root} asterisk -C {pbx.conf_path} -r")
    scenario = "tests/asterisk/sipp/call_124_dtmf.xml"  # in a checkout: a test file, not shipped
    print(
        f"  call     sipp 127.0.0.1:{pbx.sip_port} -sf {scenario} -s 124 -set digits 1# "
        "-m 1 -i 127.0.0.1 -mi 127.0.0.1"
    )
    print("Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            if not pbx.running:
                print("Asterisk exited.", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        pbx.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.devtools.testpbx")
    parser.add_argument("command", choices=["run", "build"])
    parser.add_argument("--root", default=str(DEFAULT_ROOT))
    parser.add_argument(
        "--workdir", default=None, help="default: pbx/ in the IVR's storage (IVR_STORAGE_DIR)"
    )
    parser.add_argument("--ami-port", type=int, default=5038)
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--agi-port", type=int, default=4573)
    parser.add_argument(
        "--share",
        action="append",
        default=[],
        metavar="DIR",
        help="a host directory Asterisk must see at the same path (repeatable; "
        "default: the IVR's recordings directory)",
    )
    args = parser.parse_args(argv)
    if args.workdir is None:
        from ivr.settings import get_settings

        args.workdir = str(get_settings().storage_dir / "pbx")
    reason = cannot_run_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    if args.command == "build":
        built = TestPbx(Path(args.root), Path(args.workdir)).ensure_root()
        print(f"built {args.root} in {built:.1f} s" if built else f"{args.root} is there")
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
