"""A fake Twilio voice platform for tests: drives whole calls against a webhook server over HTTP.

``TwilioPhone`` behaves like Twilio's side of an inbound call.  It POSTs (or GETs) form-encoded
webhooks carrying Twilio's standard voice parameters, signs them with ``X-Twilio-Signature`` the way
``twilio.request_validator.RequestValidator`` checks them, parses the TwiML that comes back and
executes it the way Twilio documents it:

* ``<Play>``/``<Say>``/``<Pause>`` are noted and passed over; ``<Redirect>`` is followed at once
  (relative URLs resolved against the URL of the document that held it, at most 20 hops per step).
* ``<Gather>`` waits for ``press()``/``silence()``.  Digits end at ``finishOnKey`` (which is not
  sent) or at ``numDigits``.  With no digits -- a timeout, or ``finishOnKey`` pressed first --
  Twilio does not request the action URL and goes on with the verb after ``<Gather>``, unless
  ``actionOnEmptyResult="true"``, in which case it posts an empty ``Digits`` to the action URL.
  With no ``action`` the current document's URL is requested.
* ``<Record>`` waits for ``record()``; an empty recording (duration 0) does not request the action
  URL either: the call goes on with the verb after ``<Record>``.
* ``<Enqueue>``, ``<Hangup>``/``<Reject>`` and the end of the document end the step.

Anything Twilio would reject -- malformed XML, a root other than ``<Response>``, unknown verbs,
bad attribute values, a non-XML Content-Type, a non-2xx status -- raises ``AssertionError`` with the
offending document so a failing test shows what the server said.
"""

from __future__ import annotations

import functools
import http.server
import secrets
import socket
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
MAX_REDIRECTS = 20
DTMF_KEYS = "0123456789*#"
RECORD_FINISH_ON_KEY_DEFAULT = "1234567890*#"
XML_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})

# Verbs this phone executes, and what may be nested in them.
_NESTABLE_IN_GATHER = frozenset({"Say", "Play", "Pause"})
_TERMINAL = {
    "Enqueue": "enqueue",
    "Hangup": "hangup",
    "Reject": "hangup",
    "Leave": "leave",  # in a queue's wait URL: back to the <Enqueue action>
    "Dial": "dial",
}
_NESTABLE_IN_DIAL = frozenset({"Number", "Queue", "Client", "Sip"})
_KNOWN_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Record", "Redirect"} | set(_TERMINAL))


@dataclass
class Turn:
    """What one TwiML document did to the caller, up to the point where it waits or ends.

    Turns returned by the phone's actions never have ``waiting_for == "redirect"``; documents
    that ended in a ``<Redirect>`` keep that value in ``TwilioPhone.turns``.
    """

    status_code: int
    xml: str
    plays: list[str]  # <Play> URLs reached, in order (inside and outside <Gather>)
    waiting_for: str  # "gather" | "record" | "enqueue" | "hangup" | "leave" | "dial" | "end"
    gather: dict | None  # attributes of the pending <Gather>
    record: dict | None  # attributes of the pending <Record>
    enqueue: str | None  # queue name of <Enqueue>
    url: str = ""  # the URL that served this document
    says: list[str] = field(default_factory=list)  # <Say> texts reached, in order
    _rest: list[ET.Element] = field(default_factory=list, repr=False, compare=False)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_files(directory: str | Path) -> tuple[str, Callable[[], None]]:
    """Serve ``directory`` over HTTP on 127.0.0.1 in a thread; return ``(base_url, stop)``."""
    handler = functools.partial(_QuietFileHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="serve_files", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_address[1]}", stop


def serve_app(app: Any, port: int | None = None) -> tuple[str, Callable[[], None]]:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a thread; return ``(base_url, stop)``."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="serve_app", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@contextmanager
def served_app(app: Any) -> Iterator[str]:
    """Context-manager form of :func:`serve_app`, yielding the base URL."""
    base_url, stop = serve_app(app)
    try:
        yield base_url
    finally:
        stop()


def _fail(message: str, xml: str = "", url: str = "") -> AssertionError:
    where = f" ({url})" if url else ""
    body = f"\n--- TwiML ---\n{xml}" if xml else ""
    return AssertionError(f"{message}{where}{body}")


def _int_attr(el: ET.Element, name: str, minimum: int, xml: str, url: str) -> None:
    value = el.get(name)
    if value is None:
        return
    try:
        number = int(value)
    except ValueError:
        raise _fail(f"<{el.tag} {name}={value!r}> is not an integer", xml, url) from None
    if number < minimum:
        raise _fail(f"<{el.tag} {name}={value!r}> must be >= {minimum}", xml, url)


def _choice_attr(el: ET.Element, name: str, allowed: set[str], xml: str, url: str) -> None:
    value = el.get(name)
    if value is not None and value not in allowed:
        raise _fail(f"<{el.tag} {name}={value!r}> must be one of {sorted(allowed)}", xml, url)


def _check_verb(el: ET.Element, xml: str, url: str) -> None:
    """Raise AssertionError if ``el`` is not a verb Twilio would accept as written."""
    tag = el.tag
    if tag not in _KNOWN_VERBS:
        raise _fail(f"unknown or unsupported TwiML verb <{tag}>", xml, url)
    methods = {"GET", "POST"}
    if tag == "Gather":
        for child in el:
            if child.tag not in _NESTABLE_IN_GATHER:
                raise _fail(f"<{child.tag}> cannot be nested in <Gather>", xml, url)
            _check_verb(child, xml, url)
        if (el.text or "").strip():
            raise _fail("<Gather> cannot contain text", xml, url)
        _choice_attr(el, "method", methods, xml, url)
        _int_attr(el, "numDigits", 1, xml, url)
        _int_attr(el, "timeout", 0, xml, url)
        _choice_attr(el, "actionOnEmptyResult", {"true", "false"}, xml, url)
        key = el.get("finishOnKey")
        if key is not None and (len(key) > 1 or (key and key not in DTMF_KEYS)):
            raise _fail(f"<Gather finishOnKey={key!r}> must be one of 0-9 # * or ''", xml, url)
        return
    if tag == "Dial":
        for child in el:
            if child.tag not in _NESTABLE_IN_DIAL:
                raise _fail(f"<{child.tag}> cannot be nested in <Dial>", xml, url)
            if not (child.text or "").strip():
                raise _fail(f"<{child.tag}> in <Dial> needs a value", xml, url)
        if not len(el) and not (el.text or "").strip():
            raise _fail("<Dial> needs a number or a noun", xml, url)
        return
    if len(el):
        raise _fail(f"<{tag}> cannot contain nested elements", xml, url)
    text = (el.text or "").strip()
    if tag == "Play":
        if not text and not el.get("digits"):
            raise _fail("<Play> needs a URL", xml, url)
        _int_attr(el, "loop", 0, xml, url)
    elif tag == "Pause":
        _int_attr(el, "length", 1, xml, url)
    elif tag == "Redirect":
        if not text:
            raise _fail("<Redirect> needs a URL", xml, url)
        _choice_attr(el, "method", methods, xml, url)
    elif tag == "Record":
        _choice_attr(el, "method", methods, xml, url)
        _int_attr(el, "maxLength", 1, xml, url)
        _int_attr(el, "timeout", 0, xml, url)
        _choice_attr(el, "playBeep", {"true", "false"}, xml, url)
        keys = el.get("finishOnKey")
        if keys is not None and any(k not in DTMF_KEYS for k in keys):
            raise _fail(f"<Record finishOnKey={keys!r}> may only hold 0-9 # *", xml, url)
    elif tag == "Enqueue":
        if not text and not el.get("workflowSid"):
            raise _fail("<Enqueue> needs a queue name", xml, url)
        if len(text) > 64:
            raise _fail("<Enqueue> queue name is longer than 64 characters", xml, url)
        _choice_attr(el, "method", methods, xml, url)


def parse_twiml(xml: str, url: str = "") -> list[ET.Element]:
    """Parse and validate a TwiML voice document; return its top-level verbs."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise _fail(f"malformed TwiML: {exc}", xml, url) from None
    if root.tag != "Response":
        raise _fail(f"TwiML root must be <Response>, got <{root.tag}>", xml, url)
    if (root.text or "").strip() or any((el.tail or "").strip() for el in root):
        raise _fail("<Response> contains stray text", xml, url)
    verbs = list(root)
    for verb in verbs:
        _check_verb(verb, xml, url)
    return verbs


class TwilioPhone:
    """One simulated inbound call, driven step by step from a test."""

    def __init__(
        self,
        base_url: str,
        auth_token: str | None,
        *,
        from_number: str = "+989121234567",
        to_number: str = "124",
        account_sid: str = "AC" + "0" * 32,
        recording_url: str | None = None,
        recording_duration: int = 5,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token
        self.from_number = from_number
        self.to_number = to_number
        self.account_sid = account_sid
        self.recording_url = recording_url
        self.recording_duration = recording_duration
        self.call_sid = "CA" + secrets.token_hex(16)
        self.turns: list[Turn] = []  # every HTTP response of the call, in order
        self.current: Turn | None = None  # where the call is now
        self.heard: list[str] = []  # every <Play> URL the caller heard, fall-throughs included
        self.call_status = "ringing"
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=30.0)
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._started = time.monotonic()
        self._sequence = 0

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client if this phone created it."""
        if self._own_client:
            self.client.close()

    def __enter__(self) -> TwilioPhone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url_for(self, path: str) -> str:
        """Absolute URL for ``path`` (an absolute URL is returned unchanged)."""
        if urllib.parse.urlsplit(path).scheme:
            return path
        return self.base_url + ("" if path.startswith("/") else "/") + path

    def base_params(self) -> dict[str, str]:
        """Twilio's standard voice request parameters for this call."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": self.call_status,
            "Called": self.to_number,
            "Caller": self.from_number,
            "Direction": "inbound",
            "From": self.from_number,
            "To": self.to_number,
        }

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """``X-Twilio-Signature`` for ``url`` (absolute, with query) and POST ``params``."""
        if self._validator is None:
            raise AssertionError("this phone has no auth_token to sign with")
        return self._validator.compute_signature(url, dict(params))

    def post_raw(
        self, path: str, params: Mapping[str, str], signature: str | None
    ) -> httpx.Response:
        """POST exactly ``params`` with ``signature`` (None: no header); no checks at all."""
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        return self.client.post(self.url_for(path), data=dict(params), headers=headers)

    def _request(self, url: str, method: str, extra: Mapping[str, str]) -> httpx.Response:
        """Send a signed Twilio webhook the way Twilio would (GET: params in the query)."""
        params = self.base_params() | dict(extra)
        method = (method or "POST").upper()
        if method == "GET":
            sep = "&" if urllib.parse.urlsplit(url).query else "?"
            url = url + sep + urllib.parse.urlencode(params)
            body: dict[str, str] = {}
        else:
            body = params
        headers = {"User-Agent": "TwilioProxy/1.1"}
        if self._validator is not None:
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, body)
        if method == "GET":
            return self.client.get(url, headers=headers)
        return self.client.post(url, data=body, headers=headers)

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Turn:
        """Request a TwiML document, check it strictly and execute it from the top."""
        response = self._request(url, method, extra)
        xml = response.text
        if not 200 <= response.status_code < 300:
            raise _fail(f"webhook answered HTTP {response.status_code}", xml, url)
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in XML_CONTENT_TYPES:
            raise _fail(f"webhook Content-Type is {content_type!r}, not XML", xml, url)
        verbs = parse_twiml(xml, url)
        turn = Turn(response.status_code, xml, [], "end", None, None, None, url=url)
        self._run(turn, verbs)
        self.turns.append(turn)
        self.heard.extend(turn.plays)
        return turn

    def _run(self, turn: Turn, verbs: list[ET.Element]) -> None:
        """Execute ``verbs`` into ``turn`` until something waits or ends the call."""
        turn.waiting_for = "end"
        for index, verb in enumerate(verbs):
            tag = verb.tag
            if tag == "Play":
                if (verb.text or "").strip():
                    turn.plays.append((verb.text or "").strip())
            elif tag == "Say":
                turn.says.append((verb.text or "").strip())
            elif tag == "Redirect":
                turn.waiting_for = "redirect"
                turn._rest = [verb]
                return
            elif tag == "Gather":
                for child in verb:
                    if child.tag == "Play" and (child.text or "").strip():
                        turn.plays.append((child.text or "").strip())
                    elif child.tag == "Say":
                        turn.says.append((child.text or "").strip())
                turn.waiting_for, turn.gather = "gather", dict(verb.attrib)
                turn._rest = verbs[index + 1 :]
                return
            elif tag == "Record":
                turn.waiting_for, turn.record = "record", dict(verb.attrib)
                turn._rest = verbs[index + 1 :]
                return
            elif tag in _TERMINAL:
                turn.waiting_for = _TERMINAL[tag]
                if tag == "Enqueue":
                    turn.enqueue = (verb.text or "").strip()
                return

    def _settle(self, turn: Turn) -> Turn:
        """Follow <Redirect>s from ``turn`` until a turn waits for input or ends the call."""
        hops = 0
        while turn.waiting_for == "redirect":
            hops += 1
            if hops > MAX_REDIRECTS:
                raise _fail(f"more than {MAX_REDIRECTS} <Redirect> hops", turn.xml, turn.url)
            redirect = turn._rest[0]
            target = urllib.parse.urljoin(turn.url, (redirect.text or "").strip())
            turn = self._fetch(target, redirect.get("method", "POST"), {})
        self.current = turn
        if turn.waiting_for in ("hangup", "end"):
            self.call_status = "completed"
        return turn

    def _continue(self) -> Turn:
        """Go on with the verbs after the pending <Gather>/<Record> (no HTTP request)."""
        assert self.current is not None
        prev = self.current
        turn = Turn(prev.status_code, prev.xml, [], "end", None, None, None, url=prev.url)
        self._run(turn, prev._rest)
        self.heard.extend(turn.plays)
        return self._settle(turn)

    def _pending(self, kind: str) -> Turn:
        turn = self.current
        if turn is None or turn.waiting_for != kind:
            state = "no call" if turn is None else f"waiting_for={turn.waiting_for!r}"
            raise _fail(f"call is not at a <{kind.title()}> ({state})", turn.xml if turn else "")
        return turn

    # -- the caller's actions -------------------------------------------------------------------

    def dial(self, path: str = "/twilio/voice") -> Turn:
        """Place the call: POST the entry webhook and run its TwiML."""
        if self.turns:
            raise AssertionError("dial() may only be called once per TwilioPhone")
        self.call_status = "ringing"
        turn = self._fetch(self.url_for(path), "POST", {})
        self.call_status = "in-progress"
        return self._settle(turn)

    def press(self, digits: str) -> Turn:
        """Press keys at the current <Gather>; ``finishOnKey`` ends input and is not sent."""
        turn = self._pending("gather")
        gather = turn.gather or {}
        if any(k not in DTMF_KEYS for k in digits):
            raise ValueError(f"not DTMF keys: {digits!r}")
        if "dtmf" not in gather.get("input", "dtmf").split():
            raise _fail("this <Gather> does not accept DTMF input", turn.xml, turn.url)
        finish = gather.get("finishOnKey", "#")
        limit = int(gather["numDigits"]) if "numDigits" in gather else None
        collected = ""
        for index, key in enumerate(digits):
            done = key == finish
            if not done:
                collected += key
                done = limit is not None and len(collected) >= limit
            if done:
                if digits[index + 1 :]:
                    raise _fail(
                        f"keys {digits[index + 1 :]!r} pressed after the <Gather> finished",
                        turn.xml,
                        turn.url,
                    )
                break
        if not collected:
            return self.silence()
        return self._gather_action(turn, collected)

    def silence(self) -> Turn:
        """Press nothing: the <Gather> times out (empty Digits only with actionOnEmptyResult)."""
        turn = self._pending("gather")
        if (turn.gather or {}).get("actionOnEmptyResult") == "true":
            return self._gather_action(turn, "")
        return self._continue()

    def _gather_action(self, turn: Turn, digits: str) -> Turn:
        gather = turn.gather or {}
        target = urllib.parse.urljoin(turn.url, gather.get("action") or turn.url)
        return self._settle(self._fetch(target, gather.get("method", "POST"), {"Digits": digits}))

    def record(self, duration: int | None = None, digits: str = "#") -> Turn:
        """Finish the current <Record>: post RecordingUrl/Duration/Sid and Digits to its action.

        ``duration=0`` is an empty recording: Twilio skips the action and runs the next verb.
        ``digits`` is the key that ended the recording ('' for timeout, 'hangup' for hang-up).
        """
        turn = self._pending("record")
        attrs = turn.record or {}
        duration = self.recording_duration if duration is None else duration
        if duration <= 0:
            return self._continue()
        if self.recording_url is None:
            raise AssertionError("TwilioPhone(recording_url=...) is needed to answer <Record>")
        finish = attrs.get("finishOnKey", RECORD_FINISH_ON_KEY_DEFAULT)
        if digits not in ("", "hangup") and (len(digits) != 1 or digits not in finish):
            raise _fail(f"key {digits!r} does not end this <Record>", turn.xml, turn.url)
        if "maxLength" in attrs:
            duration = min(duration, int(attrs["maxLength"]))
        extra = {
            "RecordingUrl": self.recording_url,
            "RecordingDuration": str(duration),
            "RecordingSid": "RE" + secrets.token_hex(16),
            "Digits": digits,
        }
        target = urllib.parse.urljoin(turn.url, attrs.get("action") or turn.url)
        return self._settle(self._fetch(target, attrs.get("method", "POST"), extra))

    def hangup(self, path: str = "/twilio/status") -> httpx.Response:
        """Caller hangs up: POST the call status callback with CallStatus=completed."""
        self.call_status = "completed"
        self._sequence += 1
        extra = {
            "CallDuration": str(max(1, round(time.monotonic() - self._started))),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(self._sequence - 1),
            "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        }
        url = self.url_for(path)
        response = self._request(url, "POST", extra)
        if not 200 <= response.status_code < 300:
            raise _fail(f"status callback answered HTTP {response.status_code}", response.text, url)
        return response
