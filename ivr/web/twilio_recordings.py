"""Fetching a caller's ``<Record>`` audio from Twilio: only from Twilio, bounded, never kept bad.

Twilio posts a ``RecordingUrl``; a forged or mistaken one must not make the server send the
account's credentials elsewhere, keep a huge or endless answer, or hold a worker. So: only URLs
under ``<IVR_TWILIO_API_BASE>/2010-04-01/Accounts/<account>/Recordings/`` (the account is
``IVR_TWILIO_ACCOUNT_SID``, else the request's signed ``AccountSid``), no redirect off that
origin, 10 MB at most, a total deadline, an audio content type and a WAV that parses. The file
is written beside its final name and renamed only when whole: nothing is left on failure.
Recordings are personal data: files 0600 in a 0700 folder.

One ``httpx.AsyncClient`` per event loop serves every download (a client per call built a TLS
context each time, the largest CPU cost of a turn), and downloading awaits on the event loop,
so a slow download holds no worker thread.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from ivr.prompts import read_wav_info
from ivr.settings import Settings

MAX_BYTES = 10 * 1024 * 1024
DEADLINE_S = 4.0
"""All of a download, redirects included: the webhook must answer within 5 s."""
MAX_REDIRECTS = 3
AUDIO_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_RECORDING = re.compile(r"[A-Za-z0-9]{1,64}(\.wav)?")
_ACCOUNT = re.compile(r"[A-Za-z0-9]{1,64}")

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


class RecordingRefused(Exception):
    """The recording was not fetched (the message says why, for the log)."""


def client() -> httpx.AsyncClient:
    """This event loop's shared client (no redirects followed on its own)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is None or found.is_closed:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
        found = httpx.AsyncClient(follow_redirects=False, timeout=DEADLINE_S, limits=limits)
        _clients[loop] = found
    return found


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


async def fetch(
    url: str, folder: Path, name: str, settings: Settings, form_account: str | None
) -> Path:
    """Download the recording at ``url`` into ``folder/name``; ``RecordingRefused`` or an
    ``httpx`` error otherwise, with nothing left on disk."""
    prefix = allowed_prefix(settings, form_account)
    target = check_url(url, prefix)
    auth = None
    if settings.twilio_account_sid and settings.twilio_auth_token:
        auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / name
    partial = folder / f".{name}.part"
    try:
        async with asyncio.timeout(DEADLINE_S):
            await _download(target, prefix, auth, partial)
        read_wav_info(partial)  # raises on anything that is not a WAV we can play
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


async def _download(url: str, prefix: str, auth: tuple[str, str] | None, partial: Path) -> None:
    for _hop in range(MAX_REDIRECTS + 1):
        async with client().stream("GET", url, auth=auth) as reply:
            if reply.is_redirect:
                location = urljoin(url, reply.headers.get("location", ""))
                if not _same_origin(location, prefix):
                    raise RecordingRefused(f"redirected off Twilio's API to {location[:200]!r}")
                url = location
                continue
            reply.raise_for_status()
            kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in AUDIO_TYPES:
                raise RecordingRefused(f"not WAV audio but {kind or 'no content type'}")
            declared = reply.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                raise RecordingRefused(f"{declared} bytes: more than {MAX_BYTES}")
            size = 0
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                async for chunk in reply.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise RecordingRefused(f"more than {MAX_BYTES} bytes")
                    out.write(chunk)
            with partial.open("rb") as head:
                riff = head.read(4)
            if riff != b"RIFF":
                raise RecordingRefused("the answer is not a WAV file")
            return
    raise RecordingRefused("too many redirects")
