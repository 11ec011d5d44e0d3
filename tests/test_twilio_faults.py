"""Issue 8's findings through a real ``ivr serve``: replays, a locked database mid-call, the
recording fetcher against a local server that records what it is sent, playback links,
personal data at hangup and the bounds of every field."""

from __future__ import annotations

import base64
import contextlib
import html
import http.server
import json
import re
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme
from twilio_phone import TwilioPhone, free_port, parse_twiml

from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketService
from ivr.web.twilio_recordings import proxy_for

if TYPE_CHECKING:
    from conftest import CallHelpers, IvrServer

ACCOUNT = "AC" + "0" * 32
PREFIX = f"/2010-04-01/Accounts/{ACCOUNT}/Recordings"
TO_SUMMARY = ("1", "1", "2", "2", "1", "#")
"""A new request up to its summary (registering is the next key, 1)."""
TO_RECORD = ("1", "1", "2")


def signed_post(
    phone: TwilioPhone, url: str, extra: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    """One webhook exactly as Twilio would send it (and as a replay would: same URL, same
    fields, same signature)."""
    params = phone.base_params() | extra
    signature = phone.sign(url, params)
    return phone.client.post(
        url, data=params, headers={"X-Twilio-Signature": signature} | (headers or {})
    )


def plays_of(xml: str) -> list[str]:
    """The ``<Play>`` URLs of an answer, in order (checked as Twilio would first)."""
    parse_twiml(xml)
    return [html.unescape(url) for url in re.findall(r"<Play>(.*?)</Play>", xml)]


def gather_url(phone: TwilioPhone) -> str:
    assert phone.current is not None and phone.current.gather is not None
    return urllib.parse.urljoin(phone.current.url, phone.current.gather["action"])


def record_url(phone: TwilioPhone) -> str:
    assert phone.current is not None and phone.current.record is not None
    return urllib.parse.urljoin(phone.current.url, phone.current.record["action"])


def call_row(server: IvrServer, sid: str) -> dict[str, Any]:
    return dict(server.sql("SELECT * FROM call WHERE external_id = ?", (sid,))[0])


def step_count(server: IvrServer, sid: str) -> int:
    return server.sql(
        "SELECT count(*) FROM call_step s JOIN call c ON c.id = s.call_id WHERE c.external_id = ?",
        (sid,),
    )[0][0]


@pytest.fixture
def phones(server: IvrServer, recording_url: str) -> Iterator[Callable[..., TwilioPhone]]:
    made: list[TwilioPhone] = []

    def make(base_url: str | None = None, **options: Any) -> TwilioPhone:
        options.setdefault("recording_url", recording_url)
        phone = TwilioPhone(base_url or server.base_url, server.token, **options)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


# --- replays (finding 4) -----------------------------------------------------------------------


def test_a_replayed_turn_gets_the_same_answer_and_changes_nothing(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    url = gather_url(phone)
    first = signed_post(phone, url, {"Digits": "1"})
    assert first.status_code == 200 and "category-menu.wav" in first.text
    before = (call_row(server, phone.call_sid), step_count(server, phone.call_sid))
    for _ in range(2):  # the same signed Digits=1 again: no second menu walked
        again = signed_post(phone, url, {"Digits": "1"})
        assert again.status_code == 200 and again.text == first.text
    assert (call_row(server, phone.call_sid), step_count(server, phone.call_sid)) == before
    assert json.loads(before[0]["state"])["node"] == "category"


def test_a_second_voice_for_a_live_call_continues_it(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    last = calls.drive(phone, ("1", "1"))
    row = call_row(server, phone.call_sid)
    again = signed_post(phone, phone.url_for("/twilio/voice"), {})
    assert again.status_code == 200 and again.text == last.xml  # the draft is kept
    assert call_row(server, phone.call_sid) == row


def test_twilio_idempotency_token_is_honoured(
    server: IvrServer, phones: Callable[..., TwilioPhone]
) -> None:
    phone = phones()
    phone.dial()
    token = {"I-Twilio-Idempotency-Token": "idem-" + phone.call_sid}
    url = gather_url(phone).split("?")[0]  # an old-style URL without the turn: the token decides
    first = signed_post(phone, url, {"Digits": "1"}, token)
    steps = step_count(server, phone.call_sid)
    again = signed_post(phone, url, {"Digits": "1"}, token)
    assert again.text == first.text and step_count(server, phone.call_sid) == steps


# --- a locked database mid-call (finding 2) ----------------------------------------------------


def test_a_locked_database_still_answers_in_time_and_makes_one_ticket(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    calls.drive(phone, TO_SUMMARY)
    url = gather_url(phone)
    lock = sqlite3.connect(server.db_path, isolation_level=None, timeout=10)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock all the while
    try:
        started = time.monotonic()
        answer = signed_post(phone, url, {"Digits": "1"})
        took = time.monotonic() - started
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert answer.status_code == 200
    assert took < 5.0, f"the webhook took {took:.1f} s with the database locked"
    tracking = calls.tracking(plays_of(answer.text))
    spool = list((server.storage / "spool").glob("*.json"))
    assert len(spool) == 1 and json.loads(spool[0].read_text())["tracking"] == tracking

    retry = signed_post(phone, url, {"Digits": "1"})  # Twilio retries the slow answer
    assert retry.status_code == 200
    assert calls.tracking(plays_of(retry.text)) == tracking
    assert len(list((server.storage / "spool").glob("*.json"))) == 1

    settings = Settings(storage_dir=server.storage, database_url=f"sqlite:///{server.db_path}")
    service = TicketService(make_engine(settings.db_url), settings)
    assert service.replay_spool() == 1
    third = signed_post(phone, url, {"Digits": "1"})
    assert third.status_code == 200
    rows = server.sql("SELECT tracking, call_key FROM ticket WHERE call_key LIKE ?",
                      (f"%{phone.call_sid}",))  # fmt: skip
    assert [tuple(r) for r in rows] == [(tracking, f"twilio:{phone.call_sid}")]


# --- the recording fetcher (findings 3 and 8) ----------------------------------------------------


@dataclass
class Seen:
    path: str
    authorization: str | None
    proxy_authorization: str | None = None


@dataclass
class FakeTwilioApi:
    """A local server standing in for Twilio's API and for a host it must never reach."""

    wav: bytes
    seen: list[Seen] = field(default_factory=list)
    base: str = ""

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                sent = self.headers
                api.seen.append(
                    Seen(self.path, sent.get("Authorization"), sent.get("Proxy-Authorization"))
                )
                name = self.path.rsplit("/", 1)[-1]
                if name == "REgood.wav":
                    self._send(200, "audio/x-wav", api.wav)
                elif name == "REredirect.wav":
                    self.send_response(302)
                    self.send_header("Location", f"{api.other}/stolen.wav")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif name == "REbig.wav":
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/x-wav")
                    self.end_headers()  # no length: streamed until the reader gives up
                    try:
                        self.wfile.write(api.wav[:44])
                        for _ in range(12 * 16):
                            self.wfile.write(b"\0" * 65536)
                    except OSError:
                        pass
                    self.close_connection = True
                elif name == "REdrip.wav":
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/x-wav")
                    self.send_header("Content-Length", str(len(api.wav)))
                    self.end_headers()
                    try:
                        for index in range(30):
                            self.wfile.write(api.wav[index : index + 1])
                            self.wfile.flush()
                            time.sleep(1)
                    except OSError:
                        pass
                    self.close_connection = True
                elif name == "REhtml.wav":
                    self._send(200, "text/html", b"<html>not audio</html>")
                elif name == "REfake.wav":
                    self._send(200, "audio/x-wav", b"ID3 this is no wave file" * 20)
                else:
                    self._send(404, "text/plain", b"no")

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    other: str = ""


@contextlib.contextmanager
def serving(api: FakeTwilioApi, tls: ssl.SSLContext | None = None) -> Iterator[FakeTwilioApi]:
    """``api`` answering on a loopback port of its own (over TLS with ``tls``), ``api.base``
    its address, until the block ends."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), api.handler())
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api.base = f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def fake_api(recording_wav: Path) -> Iterator[tuple[FakeTwilioApi, FakeTwilioApi]]:
    """(Twilio's API, another host), each on its own loopback port."""
    with (
        serving(FakeTwilioApi(recording_wav.read_bytes())) as api,
        serving(FakeTwilioApi(recording_wav.read_bytes())) as other,
    ):
        api.other = other.base
        yield api, other


@pytest.fixture
def fetching_server(
    start_server: Callable[..., IvrServer], fake_api: tuple[FakeTwilioApi, FakeTwilioApi]
) -> IvrServer:
    api, _other = fake_api
    return start_server(twilio_api_base=api.base, twilio_account_sid=ACCOUNT)


def ready_to_record(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> TwilioPhone:
    """A new call walked up to its ``<Record>``."""
    phone = phones(server.base_url)
    phone.dial()
    calls.drive(phone, TO_RECORD)
    return phone


def post_recorded(phone: TwilioPhone, url: str) -> tuple[httpx.Response, float]:
    """Twilio's post of the finished recording at ``url``: the answer and how long it took."""
    extra = {"RecordingUrl": url, "RecordingDuration": "3", "RecordingSid": "RE1", "Digits": "#"}
    started = time.monotonic()
    answer = signed_post(phone, record_url(phone), extra)
    return answer, time.monotonic() - started


def post_recording(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers, url: str
) -> tuple[httpx.Response, float, TwilioPhone]:
    phone = ready_to_record(server, phones, calls)
    answer, took = post_recorded(phone, url)
    return answer, took, phone


def test_the_recording_is_fetched_from_twilio_with_credentials_kept_private(
    fetching_server: IvrServer,
    fake_api: tuple[FakeTwilioApi, FakeTwilioApi],
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
) -> None:
    api, _ = fake_api
    answer, _, phone = post_recording(fetching_server, phones, calls, f"{api.base}{PREFIX}/REgood")
    assert "describe-review.wav" in answer.text
    expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{fetching_server.token}".encode()).decode()
    assert [(s.path, s.authorization) for s in api.seen] == [(f"{PREFIX}/REgood.wav", expected)]
    folder = fetching_server.recordings
    files = list(folder.iterdir())
    assert [f.name for f in files] == [f"twilio-{phone.call_sid}-RE1.wav"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable of the machine's own (either case) takes part."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_a_proxy_named_in_the_environment_carries_the_download(
    start_server: Callable[..., IvrServer],
    fake_api: tuple[FakeTwilioApi, FakeTwilioApi],
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A network that reaches Twilio's API only through its proxy: ``HTTP_PROXY`` names the
    local stand-in (the API's host here resolves nowhere), with the proxy's own login; the
    account's credentials still go to the API, and only there."""
    proxy, _ = fake_api
    api = "http://api.twilio.invalid"
    clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.base.replace("http://", "http://relay:relay-pass@"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the test's own requests go direct
    server = start_server(twilio_api_base=api, twilio_account_sid=ACCOUNT)
    answer, _, _ = post_recording(server, phones, calls, f"{api}{PREFIX}/REgood")
    assert "describe-review.wav" in answer.text
    account = "Basic " + base64.b64encode(f"{ACCOUNT}:{server.token}".encode()).decode()
    relay = "Basic " + base64.b64encode(b"relay:relay-pass").decode()
    assert proxy.seen == [Seen(f"{api}{PREFIX}/REgood.wav", account, relay)]


@pytest.fixture
def tls_api(recording_wav: Path, tmp_path: Path) -> Iterator[tuple[FakeTwilioApi, Path]]:
    """Twilio's API over HTTPS on a loopback port, its certificate from a CA of the test's own;
    yields the API and the CA's certificate file (which no system store trusts)."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "test-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with serving(FakeTwilioApi(recording_wav.read_bytes()), tls=context) as api:
        yield api, ca_file


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "unknown CA"])
def test_the_recording_comes_over_https_only_from_a_verified_server(
    trusted: bool,
    tls_api: tuple[FakeTwilioApi, Path],
    start_server: Callable[..., IvrServer],
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twilio's API is HTTPS: the certificate is checked against the system's store, which
    ``SSL_CERT_FILE`` replaces as for Python's own ``ssl``. A server it does not vouch for
    gets no request at all, so never the account's credentials."""
    api, ca_file = tls_api
    clear_proxies(monkeypatch)
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = start_server(twilio_api_base=api.base, twilio_account_sid=ACCOUNT)
    answer, took, _ = post_recording(server, phones, calls, f"{api.base}{PREFIX}/REgood")
    assert took < 5.0
    if trusted:
        assert "describe-review.wav" in answer.text
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{server.token}".encode()).decode()
        assert [(s.path, s.authorization) for s in api.seen] == [(f"{PREFIX}/REgood.wav", expected)]
        assert len(list(server.recordings.iterdir())) == 1
    else:
        assert "describe-not_saved.wav" in answer.text
        assert api.seen == []
        assert not server.recordings.exists() or list(server.recordings.iterdir()) == []


def test_no_proxy_lets_a_host_be_fetched_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://relay.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    assert proxy_for(f"https://api.twilio.com{PREFIX}/RE1.wav") is None
    assert proxy_for(f"https://api.dublin.ie1.twilio.com{PREFIX}/RE1.wav") == (
        "http://relay.example:3128"
    )
    assert proxy_for(f"http://127.0.0.1:8080{PREFIX}/RE1.wav") is None  # no HTTP_PROXY


def test_a_changed_proxy_variable_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice is remembered per host (the environment is walked once), but not past a
    change of the variables."""
    clear_proxies(monkeypatch)
    url = f"https://api.twilio.com{PREFIX}/RE1.wav"
    assert proxy_for(url) is None
    monkeypatch.setenv("https_proxy", "http://relay.example:3128")
    assert proxy_for(url) == "http://relay.example:3128"
    monkeypatch.setenv("no_proxy", ".twilio.com")
    assert proxy_for(url) is None
    monkeypatch.delenv("no_proxy")
    monkeypatch.setenv("https_proxy", "http://other.example:8080")
    assert proxy_for(url) == "http://other.example:8080"


def serve_at_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``ivr serve`` with ``env``, for a setting that must stop it at start (60 s at most)."""
    ivr = str(Path(sys.executable).with_name("ivr"))
    return subprocess.run(
        [ivr, "serve", "--port", str(free_port())], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_a_proxy_that_cannot_be_used_stops_the_server_at_start(ivr_env: dict[str, str]) -> None:
    env = {k: v for k, v in ivr_env.items() if not k.lower().endswith("_proxy")} | {
        "IVR_TWILIO_API_BASE": "https://api.twilio.com",
        "HTTPS_PROXY": "socks5://relay:relay-pass@proxy.example:1080",
    }
    run = serve_at_start(env)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last == "ivr: HTTPS_PROXY is not an http:// or https:// proxy URL"
    assert "relay-pass" not in run.stderr + run.stdout
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "where", ["other host", "other account", "redirect", "too big", "html", "not a wave", "drip"]
)
def test_a_bad_recording_url_is_refused_quickly_and_leaves_nothing(
    where: str,
    fetching_server: IvrServer,
    fake_api: tuple[FakeTwilioApi, FakeTwilioApi],
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
) -> None:
    api, other = fake_api
    url = {
        "other host": f"{other.base}{PREFIX}/REgood",
        "other account": f"{api.base}/2010-04-01/Accounts/AC{'1' * 32}/Recordings/REgood",
        "redirect": f"{api.base}{PREFIX}/REredirect",
        "too big": f"{api.base}{PREFIX}/REbig",
        "html": f"{api.base}{PREFIX}/REhtml",
        "not a wave": f"{api.base}{PREFIX}/REfake",
        "drip": f"{api.base}{PREFIX}/REdrip",
    }[where]
    answer, took, _ = post_recording(fetching_server, phones, calls, url)
    assert answer.status_code == 200 and "describe-not_saved.wav" in answer.text
    assert took < 5.0, f"{where}: the webhook took {took:.1f} s"
    assert other.seen == []  # credentials, or anything, never went to the other host
    if where in ("other host", "other account"):
        assert api.seen == []
    folder = fetching_server.recordings
    assert not folder.exists() or list(folder.iterdir()) == []


def test_many_dripping_downloads_hold_neither_health_nor_each_other(
    fetching_server: IvrServer,
    fake_api: tuple[FakeTwilioApi, FakeTwilioApi],
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
) -> None:
    """Finding 3: 24 recordings that drip a byte a second, three times the download threads,
    all at once. Every webhook still answers within 5 s (those queued for a thread too),
    ``/healthz`` and a forged request are answered at once meanwhile, and nothing is kept."""
    api, _ = fake_api
    url = f"{api.base}{PREFIX}/REdrip"
    ready = [ready_to_record(fetching_server, phones, calls) for _ in range(24)]
    answers: list[tuple[int, str, float]] = []

    def post(phone: TwilioPhone) -> None:
        answer, took = post_recorded(phone, url)
        answers.append((answer.status_code, answer.text, took))

    threads = [threading.Thread(target=post, args=(phone,)) for phone in ready]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every download has started or is queued for a thread
    with httpx.Client(base_url=fetching_server.base_url, timeout=10) as client:
        started = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert client.post("/twilio/gather", data={"CallSid": "CA1"}).status_code == 403
        meanwhile = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=30)
    assert meanwhile < 1.0, f"/healthz and a 403 took {meanwhile:.1f} s beside the downloads"
    assert len(answers) == 24
    for status, text, took in answers:
        assert status == 200 and "describe-not_saved.wav" in text
        assert took < 5.0, f"a dripping recording held its webhook {took:.1f} s"
    folder = fetching_server.recordings
    time.sleep(0.5)  # the download threads clean up after the webhooks stopped waiting
    assert not folder.exists() or list(folder.iterdir()) == []


# --- playback links (finding 7) and personal data (finding 8) ------------------------------


def test_a_playback_link_is_for_its_call_and_expires(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    review = calls.drive(phone, TO_RECORD)
    review = phone.record()
    played = phone.press("1")  # listen to the message
    link = next(p for p in played.plays if "/twilio/recording/" in p)
    assert httpx.get(link).status_code == 200
    parts = urllib.parse.urlsplit(link)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert int(query["expires"]) - time.time() <= 15 * 60 + 5
    assert query["call"] == phone.call_sid
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    for changed in ({"call": "CA" + "1" * 32}, {"expires": str(int(query["expires"]) + 60)},
                    {"expires": str(int(time.time()) - 1)}, {"token": "0" * 32},
                    {"expires": "²"}, {"expires": "9" * 13}):  # fmt: skip
        assert httpx.get(base, params=query | changed).status_code == 404, changed
    assert review is not None


def test_the_signing_key_is_made_once_per_node_and_private(server: IvrServer) -> None:
    key = server.storage / "secret_key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) == 64


def test_a_shared_database_without_a_signing_key_is_refused_at_start(
    ivr_env: dict[str, str], tmp_path: Path
) -> None:
    env = ivr_env | {"IVR_DATABASE_URL": "postgresql://ivr@127.0.0.1:9/none"}
    env.pop("IVR_SECRET_KEY", None)
    done = serve_at_start(env)
    assert done.returncode != 0
    assert "IVR_SECRET_KEY must be set" in done.stderr and "Traceback" not in done.stderr


def test_hangup_drops_personal_data_from_the_saved_state(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    calls.drive(phone, ("1", "1", "2", "2", "1"))
    phone.press("0012345679#")  # a national ID (checked, kept while the call goes on)
    live = json.loads(call_row(server, phone.call_sid)["state"])
    assert live["national_id"] and live["callback"]
    assert phone.hangup().status_code == 204
    saved = json.loads(call_row(server, phone.call_sid)["state"])
    assert saved["national_id"] is None and saved["callback"] is None
    assert saved["ticket"] is None and saved["ended"] is True


# --- input bounds (finding 9) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"Digits": "1" * 1_000_000}, "a 1 MB Digits"),
        ({"Digits": "1" * 65}, "Digits longer than 64"),
        ({"Digits": "1<x>"}, "Digits that are no keys"),
        ({"CallSid": "CA" + "a" * 100_000}, "a 100,000-character CallSid"),
        ({"CallSid": ""}, "an empty CallSid"),
        ({"From": "+98" * 100}, "a From of 300 characters"),
        ({"Whatever": "x" * 2000}, "an unknown field of 2,000 characters"),
    ],
)
def test_nonsense_fields_are_refused_with_400(
    server: IvrServer, phones: Callable[..., TwilioPhone], extra: dict[str, str], why: str
) -> None:
    phone = phones()
    phone.dial()
    before = server.sql("SELECT count(*) FROM call")[0][0]
    answer = signed_post(phone, gather_url(phone), extra)
    assert answer.status_code == 400, why
    assert server.sql("SELECT count(*) FROM call")[0][0] == before


def test_a_missing_callsid_is_refused(
    server: IvrServer, phones: Callable[..., TwilioPhone]
) -> None:
    phone = phones()
    params = {k: v for k, v in phone.base_params().items() if k != "CallSid"}
    url = phone.url_for("/twilio/voice")
    answer = phone.client.post(
        url, data=params, headers={"X-Twilio-Signature": phone.sign(url, params)}
    )
    assert answer.status_code == 400
