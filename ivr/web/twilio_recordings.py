"""Fetching a caller's ``<Record>`` audio from Twilio: only from Twilio, bounded, never kept bad.

Twilio posts a ``RecordingUrl``; a forged or mistaken one must not make the server send the
account's credentials elsewhere, keep a huge or endless answer, or hold a worker. So: only URLs
under ``<IVR_TWILIO_API_BASE>/2010-04-01/Accounts/<account>/Recordings/`` (the account is
``IVR_TWILIO_ACCOUNT_SID``, else the request's signed ``AccountSid``), no redirect off that
origin, 10 MB at most, a total deadline, an audio content type and a WAV that parses. The file
is written beside its final name and renamed only when whole: nothing is left on failure.
Recordings are personal data: files 0600 in a 0700 folder.

Downloads run on a few threads of their own (``DOWNLOAD_THREADS``) with libcurl (pycurl),
each thread keeping its handle and so its connections to Twilio's API open between calls: a
48 KB download costs 70–100 µs of CPU against urllib3's 230 µs (whose headers go through
``email.parser``). Its threads are not the web workers, so slow downloads hold neither a
caller's turn nor ``/healthz``. The webhook waits for its download no longer than
``DEADLINE_S`` (queueing for a thread included), which is also libcurl's own deadline for it,
so the thread is free by then. A site that reaches Twilio's API only through a proxy names it
the usual way (``HTTPS_PROXY``, ``NO_PROXY``): read as Python's standard library reads it and
handed to libcurl explicitly (curl alone would ignore an upper-case ``HTTP_PROXY``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import ssl
import threading
import time
import urllib.request
import uuid
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pycurl

from ivr.settings import Settings

MAX_BYTES = 10 * 1024 * 1024
DEADLINE_S = 4.0
"""All of a download, waiting for a thread and redirects included: the webhook must answer
within 5 s."""
CONNECT_S = 2.0
MAX_REDIRECTS = 3
DOWNLOAD_THREADS = 8
AUDIO_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RECORDING = re.compile(r"[A-Za-z0-9]{1,64}(\.wav)?")
_ACCOUNT = re.compile(r"[A-Za-z0-9]{1,64}")

_threads = ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS, thread_name_prefix="recording")


class ProxyUnusable(ValueError):
    """The proxy the environment names for Twilio's API cannot carry a download."""


_PROXY_VARIABLES = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
    "REQUEST_METHOD",
)  # fmt: skip
"""What the standard library's choice of a proxy reads (``REQUEST_METHOD``: under CGI it
ignores ``HTTP_PROXY``)."""


def proxy_for(url: str) -> str | None:
    """The proxy the standard variables name for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``),
    unless ``NO_PROXY`` covers its host; None: fetched directly."""
    parts = urlsplit(url)
    variables = tuple(os.environ.get(name) for name in _PROXY_VARIABLES)
    return _proxy_for(parts.scheme, parts.hostname or "", variables)


@lru_cache(maxsize=32)
def _proxy_for(scheme: str, host: str, _variables: tuple[str | None, ...]) -> str | None:
    """Once per host and values of the variables: the standard library walks the whole
    environment for it, 35 µs of every recording's download."""
    proxy = urllib.request.getproxies_environment().get(scheme)
    if not proxy or urllib.request.proxy_bypass_environment(host):
        return None
    return proxy


def _usable_proxy(url: str) -> str | None:
    proxy = proxy_for(url)
    return None if proxy is None else _checked_proxy(proxy, urlsplit(url).scheme)


@lru_cache(maxsize=8)
def _checked_proxy(proxy: str, scheme: str) -> str:
    """Only an http:// or https:// proxy with a host (libcurl would also take SOCKS and
    more); ``user:password@`` in it is sent to the proxy by libcurl."""
    try:
        parts = urlsplit(proxy)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        usable = False
    if not usable:  # the message must not show the URL: the password is in it
        raise ProxyUnusable(f"{scheme.upper()}_PROXY is not an http:// or https:// proxy URL")
    return proxy


def check_proxy(settings: Settings) -> None:
    """At start: a proxy that cannot be used stops the server, instead of every caller's
    recording failing later."""
    _usable_proxy(settings.twilio_api_base)


class RecordingRefused(Exception):
    """The recording was not fetched (the message says why, for the log)."""


def allowed_prefix(settings: Settings, form_account: str | None) -> str:
    account = settings.twilio_account_sid or form_account or ""
    if not _ACCOUNT.fullmatch(account):
        raise RecordingRefused("no Twilio account to fetch recordings from")
    return f"{settings.twilio_api_base.rstrip('/')}/2010-04-01/Accounts/{account}/Recordings/"


def check_url(url: str, prefix: str) -> str:
    """The WAV URL to fetch; refused unless it names one recording under ``prefix``."""
    if not url.startswith(prefix) or len(url) > 512:
        raise RecordingRefused(f"not a recording of this account: {url[:200]!r}")
    rest = url[len(prefix) :]
    if not _RECORDING.fullmatch(rest):
        raise RecordingRefused(f"not a recording URL: {url[:200]!r}")
    return url if rest.endswith(".wav") else f"{url}.wav"


def _same_origin(a: str, b: str) -> bool:
    one, two = urlsplit(a), urlsplit(b)
    return (one.scheme, one.hostname, one.port) == (two.scheme, two.hostname, two.port)


@dataclass(frozen=True)
class Fetched:
    """A recording on disk, and its length (read while checking it is a WAV)."""

    path: Path
    seconds: float


async def fetch(
    url: str, folder: Path, name: str, settings: Settings, form_account: str | None
) -> Fetched:
    """Download the recording at ``url`` into ``folder/name``; ``RecordingRefused`` (or the
    ``OSError`` of writing it) otherwise, with nothing left on disk."""
    prefix = allowed_prefix(settings, form_account)
    target = check_url(url, prefix)
    headers: list[str] = []
    if settings.twilio_account_sid and settings.twilio_auth_token:
        pair = f"{settings.twilio_account_sid}:{settings.twilio_auth_token}".encode()
        headers.append("Authorization: Basic " + base64.b64encode(pair).decode())
    download = _Download(target, prefix, headers, folder, name, time.monotonic() + DEADLINE_S)
    waiting = asyncio.get_running_loop().run_in_executor(_threads, download.run)
    try:
        return await asyncio.wait_for(waiting, DEADLINE_S)
    except TimeoutError:
        download.abandon()
        raise RecordingRefused(f"not fetched within {DEADLINE_S:.0f} s") from None
    except asyncio.CancelledError:  # the request is gone (Twilio hung up on it)
        download.abandon()
        raise


class _Download:
    """One recording's download on a download thread; ``abandon`` (from the event loop) stops
    it and makes sure it leaves nothing behind."""

    def __init__(
        self,
        url: str,
        prefix: str,
        headers: list[str],
        folder: Path,
        name: str,
        deadline: float,
    ) -> None:
        self.url, self.prefix, self.headers, self.deadline = url, prefix, headers, deadline
        self.folder, self.path = folder, folder / name
        self.partial = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
        self._lock = threading.Lock()
        self._abandoned = False
        self._done = False

    def run(self) -> Fetched:
        body = self._download()
        try:
            with wave.open(io.BytesIO(body), "rb") as audio:
                seconds = audio.getnframes() / audio.getframerate()
        except (wave.Error, EOFError, ZeroDivisionError) as error:
            raise RecordingRefused(f"the answer is not a WAV file we can play: {error}") from None
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        try:
            descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(body)
            with self._lock:
                if self._abandoned:
                    raise RecordingRefused("the webhook stopped waiting")
                os.replace(self.partial, self.path)
                self._done = True
        except BaseException:
            self.partial.unlink(missing_ok=True)
            raise
        return Fetched(self.path, seconds)

    def abandon(self) -> None:
        """The transfer stops at its next chunk, or at the deadline it was given (the same
        as the webhook's): no thread is held past it."""
        with self._lock:
            self._abandoned = True
            if self._done:
                self.path.unlink(missing_ok=True)

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self._abandoned:
            raise RecordingRefused(f"not fetched within {DEADLINE_S:.0f} s")
        return left

    def _download(self) -> bytearray:
        url = self.url
        for _hop in range(MAX_REDIRECTS + 1):
            left = self._remaining()
            reply = _Reply(lambda: self._abandoned)
            curl = _curl_for_this_thread()
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.PROXY, _usable_proxy(url) or "")  # "": none, whatever is set
            curl.setopt(pycurl.HTTPHEADER, self.headers)
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(min(CONNECT_S, left) * 1000)))
            curl.setopt(pycurl.TIMEOUT_MS, max(1, int(left * 1000)))
            curl.setopt(pycurl.HEADERFUNCTION, reply.lines.append)
            curl.setopt(pycurl.WRITEFUNCTION, reply.write)
            try:
                curl.perform()
            except pycurl.error as error:
                raise RecordingRefused(reply.refused or _why_not(error)) from None
            finally:  # the callbacks hold this download: the thread's handle must not
                curl.setopt(pycurl.HEADERFUNCTION, _ignore)
                curl.setopt(pycurl.WRITEFUNCTION, _ignore)
            reply.check_headers()  # an answer without a body was not checked yet
            if reply.refused:
                raise RecordingRefused(reply.refused)
            if reply.status in REDIRECTS:
                location = urljoin(url, reply.location)
                if not _same_origin(location, self.prefix):
                    raise RecordingRefused(f"redirected off Twilio's API to {location[:200]!r}")
                url = location
                continue
            return reply.body
        raise RecordingRefused("too many redirects")


class _Reply:
    """One response as libcurl hands it over. Its header lines are only collected (a C-level
    ``list.append``, no Python frame per line) and checked once, at the first chunk of the
    body, so a refused answer's body is never read; the body is counted against the cap as it
    comes. A write callback that returns 0 makes libcurl stop the transfer; why is kept in
    ``refused``, as raising inside a callback would only print it."""

    def __init__(self, abandoned: Callable[[], bool]) -> None:
        self.abandoned = abandoned
        self.lines: list[bytes] = []
        self.body = bytearray()
        self.status = 0
        self.location = ""
        self.refused = ""
        self._checked = False

    def check_headers(self) -> None:
        """Once: the last response's status and headers (after a ``100 Continue``, say)."""
        if self._checked:
            return
        self._checked = True
        kind = length = ""
        for line in self.lines:
            text = line.decode("latin-1").strip()
            if text.startswith("HTTP/"):  # a new response begins
                status = text.split(" ", 2)[1] if " " in text else ""
                self.status = int(status) if status.isdigit() else 0
                kind = length = self.location = ""
                continue
            name, _, value = text.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-type":
                kind = value.split(";")[0].strip().lower()
            elif name == "content-length":
                length = value
            elif name == "location":
                self.location = value
        self.refused = self._refusal(kind, length)

    def _refusal(self, kind: str, length: str) -> str:
        if self.status in REDIRECTS:
            return ""
        if self.status >= 400 or self.status < 200:
            return f"HTTP {self.status} from Twilio's API"
        if kind not in AUDIO_TYPES:
            return f"not WAV audio but {kind or 'no content type'}"
        if length.isascii() and length.isdigit() and int(length) > MAX_BYTES:
            return f"{length} bytes: more than {MAX_BYTES}"
        return ""

    def write(self, chunk: bytes) -> int | None:
        self.check_headers()
        if self.refused:
            return 0
        if self.status in REDIRECTS:
            return None  # a redirect's own body is not the recording
        if self.abandoned():
            self.refused = "the webhook stopped waiting"
            return 0
        if len(self.body) + len(chunk) > MAX_BYTES:
            self.refused = f"more than {MAX_BYTES} bytes"
            return 0
        self.body += chunk
        return None


def _ignore(_data: bytes) -> None:
    return None


def _why_not(error: pycurl.error) -> str:
    code = error.args[0] if error.args else None
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return f"not fetched within {DEADLINE_S:.0f} s"
    message = error.args[1] if len(error.args) > 1 else str(error)
    return f"not fetched: {message}"[:300]


_local = threading.local()
_CA = ssl.get_default_verify_paths()


def _curl_for_this_thread() -> pycurl.Curl:
    """A download thread's own libcurl handle, kept with its open connections for the next
    download; what every download shares is set here, once."""
    curl: pycurl.Curl | None = getattr(_local, "curl", None)
    if curl is None:
        curl = _local.curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: this is not the main thread
        curl.setopt(pycurl.FOLLOWLOCATION, 0)  # each hop is checked in _download
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.MAXFILESIZE_LARGE, MAX_BYTES)
        if _CA.cafile:  # the system's store, as Python's ssl (and SSL_CERT_FILE) names it
            curl.setopt(pycurl.CAINFO, _CA.cafile)
        if _CA.capath:
            curl.setopt(pycurl.CAPATH, _CA.capath)
    return curl
