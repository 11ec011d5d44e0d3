"""Fetching a caller's ``<Record>`` audio from Twilio: only from Twilio, bounded, never kept bad.

Twilio posts a ``RecordingUrl``; a forged or mistaken one must not make the server send the
account's credentials elsewhere, keep a huge or endless answer, or hold a worker. So: only URLs
under ``<IVR_TWILIO_API_BASE>/2010-04-01/Accounts/<account>/Recordings/`` (the account is
``IVR_TWILIO_ACCOUNT_SID``, else the request's signed ``AccountSid``), no redirect off that
origin, 10 MB at most, a total deadline, an audio content type and a WAV that parses. The file
is written beside its final name and renamed only when whole: nothing is left on failure.
Recordings are personal data: files 0600 in a 0700 folder.

Downloads run on a few threads of their own (``DOWNLOAD_THREADS``) with urllib3, whose
connections to Twilio's API are kept open between calls: a synchronous download costs a
quarter of the CPU of httpx's asynchronous one, and its threads are not the web workers, so
slow downloads hold neither a caller's turn nor ``/healthz``. The webhook waits for its
download no longer than ``DEADLINE_S`` (queueing for a thread included), then shuts the
connection down, so the thread is free again at once. A site that reaches Twilio's API only
through a proxy names it the usual way (``HTTPS_PROXY``, ``NO_PROXY``), as curl and httpx read it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import threading
import time
import urllib.request
import uuid
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from ivr.prompts import read_wav_info
from ivr.settings import Settings

MAX_BYTES = 10 * 1024 * 1024
DEADLINE_S = 4.0
"""All of a download, waiting for a thread and redirects included: the webhook must answer
within 5 s."""
CONNECT_S = 2.0
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
DOWNLOAD_THREADS = 8
AUDIO_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RECORDING = re.compile(r"[A-Za-z0-9]{1,64}(\.wav)?")
_ACCOUNT = re.compile(r"[A-Za-z0-9]{1,64}")

_threads = ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS, thread_name_prefix="recording")
_POOL_OPTIONS: dict[str, Any] = {"num_pools": 4, "maxsize": DOWNLOAD_THREADS, "retries": False}
"""Redirects are never followed by urllib3 (each hop is checked here); nothing is retried."""
_direct = urllib3.PoolManager(**_POOL_OPTIONS)
_proxied: dict[str, urllib3.ProxyManager] = {}
_proxied_lock = threading.Lock()


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


def _pool_for(url: str) -> urllib3.PoolManager:
    proxy = proxy_for(url)
    if proxy is None:
        return _direct
    with _proxied_lock:
        pool = _proxied.get(proxy)
        if pool is None:
            pool = _proxied[proxy] = _proxy_pool(proxy, urlsplit(url).scheme)
    return pool


def _proxy_pool(proxy: str, scheme: str) -> urllib3.ProxyManager:
    """Kept open like the direct pool; ``user:password@`` in the variable is sent to the proxy
    (urllib3 does not read it from the URL itself)."""
    try:
        auth = urllib3.util.parse_url(proxy).auth
        headers = urllib3.make_headers(proxy_basic_auth=auth) if auth else None
        return urllib3.ProxyManager(proxy, proxy_headers=headers, **_POOL_OPTIONS)
    except (Urllib3Error, ValueError):  # the message would show the URL, password and all
        name = f"{scheme.upper()}_PROXY"
        raise ProxyUnusable(f"{name} is not an http:// or https:// proxy URL") from None


def check_proxy(settings: Settings) -> None:
    """At start: a proxy that cannot be used stops the server, instead of every caller's
    recording failing later."""
    _pool_for(settings.twilio_api_base)


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
    """Download the recording at ``url`` into ``folder/name``; ``RecordingRefused`` or a
    ``urllib3`` error otherwise, with nothing left on disk."""
    prefix = allowed_prefix(settings, form_account)
    target = check_url(url, prefix)
    headers: dict[str, str] = {}
    if settings.twilio_account_sid and settings.twilio_auth_token:
        pair = f"{settings.twilio_account_sid}:{settings.twilio_auth_token}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
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
        headers: dict[str, str],
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
        self._reply: urllib3.BaseHTTPResponse | None = None

    def run(self) -> Fetched:
        self._remaining()  # it may have waited for a thread until too late
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        try:
            self._download()
            try:  # the file is opened once more only here: wave reads its RIFF header first
                seconds = read_wav_info(self.partial).duration
            except (wave.Error, EOFError) as error:
                raise RecordingRefused(
                    f"the answer is not a WAV file we can play: {error}"
                ) from None
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
        with self._lock:
            self._abandoned = True
            if self._reply is not None:
                self._reply.shutdown()  # a read blocked in the thread returns now
            if self._done:
                self.path.unlink(missing_ok=True)

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self._abandoned:
            raise RecordingRefused(f"not fetched within {DEADLINE_S:.0f} s")
        return left

    def _download(self) -> None:
        url = self.url
        for _hop in range(MAX_REDIRECTS + 1):
            left = self._remaining()
            reply = _pool_for(url).request(
                "GET",
                url,
                headers=self.headers,
                redirect=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=min(CONNECT_S, left), read=left),
            )
            with self._lock:
                self._reply = reply
            try:
                if reply.status in REDIRECTS:
                    location = urljoin(url, reply.headers.get("location", ""))
                    if not _same_origin(location, self.prefix):
                        raise RecordingRefused(f"redirected off Twilio's API to {location[:200]!r}")
                    reply.drain_conn()
                    url = location
                    continue
                self._save(reply)
                return
            except BaseException:
                reply.close()  # never back to the pool half read
                raise
            finally:
                with self._lock:
                    self._reply = None
                reply.release_conn()
        raise RecordingRefused("too many redirects")

    def _save(self, reply: urllib3.BaseHTTPResponse) -> None:
        if reply.status >= 400:
            raise RecordingRefused(f"HTTP {reply.status} from Twilio's API")
        kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in AUDIO_TYPES:
            raise RecordingRefused(f"not WAV audio but {kind or 'no content type'}")
        declared = reply.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > MAX_BYTES:
            raise RecordingRefused(f"{declared} bytes: more than {MAX_BYTES}")
        size = 0
        descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            while chunk := reply.read1(CHUNK):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise RecordingRefused(f"more than {MAX_BYTES} bytes")
                out.write(chunk)
                self._remaining()
