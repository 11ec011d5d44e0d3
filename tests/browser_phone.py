"""A test caller for the /try JSON transport: does over HTTP what the page's script does.

``BrowserPhone`` starts a call with ``POST /try/calls``, reads each answer's actions the way
``ivr/web/static/try.js`` performs them and sends the caller's events back: keys as a phone
collects them (up to ``max_digits``, ended by the finish key, which is not sent), silence as a
timeout, the recording as the audio body. Every answer is checked against the transport's
contract (see ``ivr.telephony.browser``): known action types, prompts with a URL and text, at
most one waiting action and only as the last one — anything else fails the test with the JSON.

Each phone talks from its own loopback address (127.x.y.z), as separate visitors would, so the
per-address rate limits see one visitor per phone.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ACTION_TYPES = {"play", "gather", "record", "transfer", "hangup"}
WAITS = {"gather": "gather", "record": "record", "transfer": "enqueue", "hangup": "end"}
_ADDRESSES = itertools.count(random.randrange(1, 200) * 256)


def next_loopback_address() -> str:
    """A loopback address no other phone of this test run has used."""
    n = next(_ADDRESSES)
    return f"127.{(n >> 16) % 250 + 1}.{(n >> 8) & 255}.{n & 255 or 1}"


@dataclass
class BrowserTurn:
    status_code: int
    data: dict[str, Any]
    plays: list[str]
    """Prompt URLs, in the order the page plays them (play and gather prompts)."""
    texts: list[str]
    waiting_for: str
    """gather, record, enqueue (transferred), end."""
    gather: dict[str, Any] | None
    record: dict[str, Any] | None
    queue: str | None

    @property
    def tracking(self) -> str | None:
        return self.data.get("tracking")

    @property
    def ids(self) -> list[str | None]:
        """The prompt ids said this turn (None for the caller's own recording)."""
        return [p["id"] for a in self.data["actions"] for p in a.get("prompts", [])]


def check_reply(data: dict[str, Any]) -> None:
    """The transport's contract for one answer; AssertionError with the JSON otherwise."""
    shown = json.dumps(data, ensure_ascii=False)[:2000]
    assert set(data) >= {"call", "events_url", "actions", "tracking", "ended"}, shown
    actions = data["actions"]
    if not actions:  # only for a call that is over (a late event, a hang-up)
        assert data["ended"] is True, f"an answer without actions: {shown}"
        return
    for index, action in enumerate(actions):
        assert action["type"] in ACTION_TYPES, shown
        last = index == len(actions) - 1
        if action["type"] != "play":
            assert last, f"a waiting action before the end: {shown}"
        for prompt in action.get("prompts", []):
            assert prompt["url"].startswith("/"), shown
            if prompt.get("recording"):
                assert prompt["id"] is None, shown
            else:
                assert prompt["id"] and isinstance(prompt["text"], str), shown
    last_type = actions[-1]["type"]
    assert data["ended"] == (last_type not in ("gather", "record")), shown


class BrowserPhone:
    def __init__(
        self,
        base_url: str,
        *,
        caller: str | None = "09121234567",
        recording: Path | None = None,
        address: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.caller = caller
        self.recording = recording
        """The audio file sent as the caller's voice (its type from the suffix)."""
        self.address = address or next_loopback_address()
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=30,
            transport=httpx.HTTPTransport(local_address=self.address),
        )
        self.call_id: str | None = None
        self.events_url: str | None = None
        self.turns: list[BrowserTurn] = []

    # --- the call --------------------------------------------------------------------------

    def dial(self) -> BrowserTurn:
        body = {} if self.caller is None else {"caller": self.caller}
        reply = self.client.post("/try/calls", json=body)
        assert reply.status_code == 201, reply.text
        turn = self._turn(reply)
        self.call_id = turn.data["call"]
        self.events_url = turn.data["events_url"]
        return turn

    def press(self, keys: str) -> BrowserTurn:
        """Keys as the page collects them for the pending gather."""
        gather = self._pending("gather")
        finish, limit = gather["finish_on_key"], gather["max_digits"]
        digits = ""
        for key in keys:
            if finish and key == finish:
                break
            digits += key
            if len(digits) >= limit:
                break
        return self.send({"type": "digits", "digits": digits})

    def silence(self) -> BrowserTurn:
        return self.send({"type": "timeout"})

    def record(self, audio: Path | None = None, content_type: str | None = None) -> BrowserTurn:
        """Answer the pending recording with a file (default: the phone's), or with nothing."""
        self._pending("record")
        audio = audio or self.recording
        if audio is None:
            return self.send({"type": "recording"})
        kind = content_type or _content_type(audio)
        return self.post_audio(audio.read_bytes(), kind)

    def hangup(self) -> httpx.Response:
        reply = self.post_event({"type": "hangup"})
        if reply.status_code == 200:
            check_reply(reply.json())
            assert reply.json()["actions"] == [], reply.text
        return reply

    def drive(self, keys: Iterable[str]) -> BrowserTurn:
        """``ivr call --keys`` tokens: ``1``, ``09121234567#``, ``#`` (finish key alone), ``_``
        (silence); a pending recording is answered with the phone's file first."""
        turn = self.current
        for key in keys:
            while turn.waiting_for == "record":
                turn = self.record()
            turn = self.silence() if key == "_" else self.press(key)
        return turn

    # --- raw requests ----------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> BrowserTurn:
        reply = self.post_event(event)
        assert reply.status_code == 200, f"{event}: {reply.status_code} {reply.text}"
        return self._turn(reply)

    def post_event(self, event: dict[str, Any]) -> httpx.Response:
        assert self.events_url, "dial() first"
        return self.client.post(self.events_url, json=event)

    def post_audio(self, audio: bytes, content_type: str) -> BrowserTurn:
        assert self.events_url, "dial() first"
        reply = self.client.post(
            self.events_url, content=audio, headers={"Content-Type": content_type}
        )
        assert reply.status_code == 200, reply.text
        return self._turn(reply)

    @property
    def current(self) -> BrowserTurn:
        assert self.turns, "dial() first"
        return self.turns[-1]

    @property
    def heard(self) -> list[str]:
        return [url for turn in self.turns for url in turn.plays]

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> BrowserPhone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading answers -------------------------------------------------------------------

    def _pending(self, kind: str) -> dict[str, Any]:
        action = self.current.data["actions"][-1]
        assert action["type"] == kind, f"the call waits for {action['type']}, not {kind}"
        return action

    def _turn(self, reply: httpx.Response) -> BrowserTurn:
        assert reply.headers["content-type"].startswith("application/json"), reply.text
        data = reply.json()
        check_reply(data)
        actions = data["actions"]
        prompts = [p for a in actions for p in a.get("prompts", [])]
        last = actions[-1] if actions else {"type": "hangup"}
        turn = BrowserTurn(
            reply.status_code,
            data,
            [self.base_url + p["url"] for p in prompts],
            [p["text"] for p in prompts],
            WAITS[last["type"]],
            last if last["type"] == "gather" else None,
            last if last["type"] == "record" else None,
            last.get("queue"),
        )
        self.turns.append(turn)
        return turn


def _content_type(path: Path) -> str:
    return {
        ".wav": "audio/wav",
        ".webm": "audio/webm;codecs=opus",
        ".ogg": "audio/ogg",
        ".m4a": "audio/mp4",
    }.get(path.suffix, "application/octet-stream")
