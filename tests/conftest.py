"""Shared fixtures: the real `ivr` CLI and a real `ivr serve` (uvicorn over HTTP) per test module.

Everything runs against a temporary storage directory (SQLite database, recordings, spool), so
tests never touch ``storage/`` and never see each other's tickets unless they share a server.

* ``storage`` — an empty storage directory for one test.
* ``token`` — the Twilio auth token the test servers check signatures with.
* ``prompts_built`` — ``ivr prompts build`` run once per session on the real prompts directory.
* ``ivr_env`` — the environment for an ``ivr`` subprocess on ``storage`` (see :func:`make_env`).
* ``server`` — one ``ivr serve`` per test module (``db upgrade`` first), see :class:`IvrServer`.
* ``start_server`` — a factory for extra servers with their own settings, stopped after the test.
* ``audio_files`` — ``description.wav`` (3 s) and ``short.wav`` (1 s), 8 kHz mono, served over HTTP
  the way Twilio serves a ``RecordingUrl``; ``recording_wav`` / ``recording_url`` are the 3 s one.

* ``second_province`` — a provinces folder with Qom and a test province (``markazi``, reached
  by ``086124``) and a prompts folder built with its place names, see :class:`SecondProvince`.

* ``calls`` — :class:`CallHelpers`: answer a ``TwilioPhone`` with ``ivr call --keys`` tokens, read
  prompt stems and tracking numbers from Play URLs.
* ``ivr_cli`` — run the ``ivr`` CLI on ``ivr_env``.

Test modules cannot ``import conftest`` reliably (each test folder's conftest has that name), so
everything here is reached through fixtures; types can be imported under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.parse
import wave
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio_phone import Turn, TwilioPhone, free_port, serve_files

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROMPTS_DIR = PROJECT_ROOT / "prompts"
GENERATED_PROMPTS_DIR = PROMPTS_DIR / "generated"
"""Rendered once per session and shared by every test server (git-ignored)."""
TEST_TOKEN = "test-twilio-token-6f1c2d"
TEST_ACCOUNT = "AC" + "0" * 32
"""The account ``TwilioPhone`` signs as; recordings are fetched only from under its path."""
RECORDINGS_PATH = f"2010-04-01/Accounts/{TEST_ACCOUNT}/Recordings"
_AUDIO_BASE: list[str] = []
"""Where ``audio_files`` serves (Twilio's API stand-in): servers fetch recordings there."""
TEST_SECRET_KEY = "test-secret-key-for-shared-databases"
STARTUP_TIMEOUT_S = 30.0


def ivr_executable() -> str:
    """The ``ivr`` console script of the interpreter running the tests (the project's venv)."""
    beside = Path(sys.executable).with_name("ivr")
    if beside.is_file():
        return str(beside)
    found = shutil.which("ivr")
    if found is None:
        raise RuntimeError("the `ivr` command is not installed (pip install -e .)")
    return found


def make_env(
    storage: Path, token: str | None = TEST_TOKEN, **settings: str | None
) -> dict[str, str]:
    """Environment for an ``ivr`` subprocess: this process's environment without any ``IVR_*``,
    plus storage, the real prompts directory, SQLite in storage, and ``token`` (None: unset).

    ``settings`` are more ``IVR_*`` variables by their lower-case name without the prefix, e.g.
    ``public_url="https://ivr.example.org"``; None removes one.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    env.update(
        IVR_STORAGE_DIR=str(storage),
        IVR_PROMPTS_DIR=str(PROMPTS_DIR),
        IVR_GENERATED_PROMPTS_DIR=str(GENERATED_PROMPTS_DIR),
        IVR_DATABASE_URL="",
        IVR_AGI_PORT=str(free_port()),  # every server runs a FastAGI listener of its own
        IVR_SCHEDULER_ENABLED="false",  # the scheduler has tests of its own (tests/multinode)
        IVR_AGENTS_ALWAYS_OPEN="true",  # a call's path must not depend on the wall clock
        # Modules share one server and one ticket: the guessing limit has tests of its own
        # (tests/test_twilio_followup_guard.py) that set it low.
        IVR_FOLLOWUP_TRIES_PER_TICKET="100",
        IVR_FOLLOWUP_TRIES_PER_CALLER="1000",
        PYTHONUNBUFFERED="1",
    )
    if token is not None:
        env["IVR_TWILIO_AUTH_TOKEN"] = token
    if _AUDIO_BASE:
        env["IVR_TWILIO_API_BASE"] = _AUDIO_BASE[0]
    if str(settings.get("database_url") or "").startswith("postgresql"):
        env["IVR_SECRET_KEY"] = TEST_SECRET_KEY  # nodes sharing a database share the key
    if "prompts_dir" in settings and "generated_prompts_dir" not in settings:
        # A test's own prompts folder keeps its rendered audio beside it, as a checkout does.
        folder = settings["prompts_dir"]
        settings["generated_prompts_dir"] = None if folder is None else f"{folder}/generated"
    for name, value in settings.items():
        key = f"IVR_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_ivr(
    env: Mapping[str, str],
    *args: str,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``ivr ARGS`` with ``env`` (``input`` on its stdin); with ``check``, a non-zero exit
    fails with its output."""
    done = subprocess.run(
        [ivr_executable(), *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"`ivr {' '.join(args)}` exited {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
    return done


@dataclass
class IvrServer:
    """A running ``ivr serve`` subprocess and the CLI on the same storage."""

    base_url: str
    token: str | None
    storage: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)

    @property
    def db_path(self) -> Path:
        return self.storage / "ivr.db"

    @property
    def recordings(self) -> Path:
        return self.storage / "recordings"

    def ivr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``ivr`` CLI against this server's storage and settings."""
        return run_ivr(self.env, *args, check=check)

    def stderr(self) -> str:
        """Everything the server logged so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query on the server's SQLite database."""
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            return connection.execute(query, params).fetchall()
        finally:
            connection.close()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def launch_server(
    storage: Path, token: str | None = TEST_TOKEN, **settings: str | None
) -> IvrServer:
    """``ivr db upgrade``, then ``ivr serve`` on a free loopback port; returns once /healthz is ok.

    The server's stderr goes to a file beside ``storage`` (read it with ``IvrServer.stderr()``).
    """
    storage.mkdir(parents=True, exist_ok=True)
    env = make_env(storage, token, **settings)
    run_ivr(env, "db", "upgrade")
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between free_port() and bind()
        port = free_port()
        log_path = storage.parent / f"{storage.name}-serve-{port}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [ivr_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        server = IvrServer(f"http://127.0.0.1:{port}", token, storage, env, process, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and server.alive():
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        server.stop()
        last_error = server.stderr()
        if "address already in use" not in last_error.lower():
            break
    raise RuntimeError(f"`ivr serve` did not become healthy\n--- its output ---\n{last_error}")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """An empty storage directory (database, recordings, spool) for one test."""
    path = tmp_path / "storage"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def token() -> str:
    """The Twilio auth token test servers are started with."""
    return TEST_TOKEN


@pytest.fixture(scope="session")
def prompts_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ivr prompts build`` once per session (incremental); returns the prompts directory."""
    env = make_env(tmp_path_factory.mktemp("prompts-build"), None)
    run_ivr(env, "prompts", "build", timeout=600)
    return PROMPTS_DIR


SECOND_PROVINCE_TOML = """\
# A second province for tests: its own number, towns and zone.
name = "مرکزی"
numbers = ["086124"]

[[towns]]
key = "1"
id = "kheirabad"
name = "شهرک صنعتی خیرآباد"

[[towns]]
key = "2"
id = "eibakabad"
name = "شهرک صنعتی ایبک‌آباد"

[[zones]]
key = "1"
id = "mohajeran"
name = "ناحیه صنعتی مهاجران"
"""


@dataclass(frozen=True)
class SecondProvince:
    """``provinces_dir``: qom.toml (the package's) and markazi.toml; ``prompts_dir``: a copy of
    the prompts with the new place names rendered (``ivr prompts build`` on both folders)."""

    provinces_dir: Path
    prompts_dir: Path
    code: str = "markazi"
    number: str = "086124"
    first_town: str = "kheirabad"

    @property
    def settings(self) -> dict[str, str]:
        """For :func:`make_env` / ``start_server``."""
        return {
            "provinces_dir": str(self.provinces_dir),
            "prompts_dir": str(self.prompts_dir),
            "generated_prompts_dir": str(self.prompts_dir / "generated"),
        }


@pytest.fixture(scope="session")
def second_province(
    tmp_path_factory: pytest.TempPathFactory, prompts_built: Path
) -> SecondProvince:
    root = tmp_path_factory.mktemp("second-province")
    provinces = root / "provinces"
    provinces.mkdir()
    shutil.copy(PROJECT_ROOT / "ivr" / "provinces" / "qom.toml", provinces / "qom.toml")
    (provinces / "markazi.toml").write_text(SECOND_PROVINCE_TOML, encoding="utf-8")
    prompts = root / "prompts"
    shutil.copytree(prompts_built, prompts)  # with generated/: only the new places render
    found = SecondProvince(provinces, prompts)
    run_ivr(make_env(root / "storage", None, **found.settings), "prompts", "build", timeout=600)
    return found


@pytest.fixture
def ivr_env(storage: Path, token: str) -> dict[str, str]:
    """Environment for ``ivr`` subprocesses on ``storage`` with the test token."""
    return make_env(storage, token)


_RUNNING: list[IvrServer] = []
"""Servers running now, so a failing test's report can show what they logged."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test's report gets a section with the log of every ``ivr serve`` running."""
    report = yield
    if report.failed:
        for server in _RUNNING:
            text = server.stderr()
            report.sections.append(
                (f"ivr serve {server.base_url} (storage {server.storage})", text[-8000:])
            )
    return report


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    prompts_built: Path,
    token: str,
    audio_files: AudioFiles,
) -> Iterator[IvrServer]:
    """One real ``ivr serve`` for the test module, on its own storage, with the test token."""
    running = launch_server(tmp_path_factory.mktemp("server") / "storage", token)
    _RUNNING.append(running)
    try:
        yield running
    finally:
        _RUNNING.remove(running)
        died = not running.alive()
        running.stop()
        if died:
            raise RuntimeError(f"`ivr serve` died during the tests:\n{running.stderr()}")


@pytest.fixture
def start_server(
    tmp_path_factory: pytest.TempPathFactory, prompts_built: Path, audio_files: AudioFiles
) -> Iterator[Callable[..., IvrServer]]:
    """Factory: ``start_server(token=..., **settings)`` runs another ``ivr serve`` with its own
    storage (settings as in :func:`make_env`); every server it started is stopped afterwards."""
    started: list[IvrServer] = []

    def start(token: str | None = TEST_TOKEN, **settings: str | None) -> IvrServer:
        running = launch_server(tmp_path_factory.mktemp("server") / "storage", token, **settings)
        started.append(running)
        _RUNNING.append(running)
        return running

    yield start
    for running in started:
        _RUNNING.remove(running)
        running.stop()


def write_wav(path: Path, seconds: float, rate: int = 8000, frequency: float = 440.0) -> Path:
    """A mono 16-bit PCM tone, written with ``wave`` (no sox needed)."""
    frames = int(seconds * rate)
    samples = (int(12000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@dataclass(frozen=True)
class AudioFiles:
    """WAV files served over HTTP like Twilio serves ``RecordingUrl``."""

    base_url: str
    directory: Path
    """Where the files are, served under ``RECORDINGS_PATH`` as Twilio's API serves them."""

    def url(self, name: str) -> str:
        return f"{self.base_url}/{RECORDINGS_PATH}/{name}"


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AudioFiles]:
    """``description.wav`` (3 s) and ``short.wav`` (1 s, under the 2 s minimum), 8 kHz mono."""
    root = tmp_path_factory.mktemp("audio")
    directory = root / RECORDINGS_PATH
    directory.mkdir(parents=True)
    write_wav(directory / "description.wav", 3.0)
    write_wav(directory / "short.wav", 1.0)
    base_url, stop = serve_files(root)
    _AUDIO_BASE[:] = [base_url]
    yield AudioFiles(base_url, directory)
    _AUDIO_BASE.clear()
    stop()


@pytest.fixture(scope="session")
def recording_wav(audio_files: AudioFiles) -> Path:
    """The 3 s spoken-description stand-in."""
    return audio_files.directory / "description.wav"


@pytest.fixture(scope="session")
def recording_url(audio_files: AudioFiles) -> str:
    """Where ``recording_wav`` is served, for ``TwilioPhone(recording_url=...)``."""
    return audio_files.url("description.wav")


# --- helpers for driving calls ----------------------------------------------------------------


class CallHelpers:
    """Reading and answering ``TwilioPhone`` turns; use the ``calls`` fixture (a test module
    cannot import this file by name: every test folder's conftest is called ``conftest``)."""

    @staticmethod
    def stem(url: str) -> str:
        """``.../prompts/fa/main-menu.wav`` → ``main-menu``; a recording URL → its file name."""
        name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
        return name.removesuffix(".wav") if "/prompts/" in url else name

    @classmethod
    def stems(cls, urls: Iterable[str]) -> list[str]:
        return [cls.stem(url) for url in urls]

    @staticmethod
    def spoken_digits(stems: Iterable[str]) -> str:
        """The digits a run of ``num-N`` fragments reads out (pauses skipped)."""
        return "".join(s.removeprefix("num-") for s in stems if s.startswith("num-"))

    @classmethod
    def tracking(cls, urls: Iterable[str]) -> str:
        """The tracking number said between ``registered-done`` and ``registered-repeat``; the
        repetition after ``registered-repeat`` must say the same digits."""
        stems = cls.stems(urls)
        done = stems.index("registered-done")
        repeat = stems.index("registered-repeat", done)
        first = cls.spoken_digits(stems[done + 1 : repeat])
        again = itertools.takewhile(
            lambda s: s.startswith("num-") or s == "pause", stems[repeat + 1 :]
        )
        second = cls.spoken_digits(again)
        assert first == second, f"tracking said as {first} then {second}: {stems}"
        return first

    @staticmethod
    def drive(phone: TwilioPhone, keys: Iterable[str]) -> Turn:
        """Answer a Twilio call with ``ivr call --keys`` tokens: ``1``, ``09121234567#``, ``#``
        (the finish key alone), ``_`` (silence). A pending ``<Record>`` is answered with the
        phone's recording first, as the terminal phone does without using a key. Returns the
        last turn."""
        turn = phone.current
        assert turn is not None, "dial() first"
        for key in keys:
            while turn.waiting_for == "record":
                turn = phone.record()
            if key == "_":
                turn = phone.silence()
                continue
            gather = turn.gather or {}
            digits = key.rstrip("#")
            limit = int(gather.get("numDigits", "0") or 0)
            if digits and limit and len(digits) >= limit:
                key = digits  # numDigits reached: the Gather ends before the # is pressed
            turn = phone.press(key)
        return turn


@pytest.fixture(scope="session")
def calls() -> CallHelpers:
    """Helpers to read Play URLs (stems, tracking numbers) and answer calls with key tokens."""
    return CallHelpers()


@pytest.fixture
def ivr_cli(ivr_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``ivr_cli("speak", "number", "12")``: the CLI on ``ivr_env``; ``check=False`` to allow
    a non-zero exit; ``input`` for its stdin; more ``IVR_*`` settings by name as in
    :func:`make_env` (None unsets)."""

    def run(
        *args: str,
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
        **settings: str | None,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(ivr_env)
        for name, value in settings.items():
            if value is None:
                env.pop(f"IVR_{name.upper()}", None)
            else:
                env[f"IVR_{name.upper()}"] = value
        return run_ivr(env, *args, check=check, timeout=timeout, input=input)

    return run


@pytest.fixture(autouse=True)
def _agents_always_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a test answer round the clock unless the test says otherwise, so a
    call's path does not depend on the hour the suite runs at (the hours have their tests)."""
    monkeypatch.setenv("IVR_AGENTS_ALWAYS_OPEN", "true")
