"""An SSE client over real HTTP for the desk's ``/desk/events``: a thread reads the stream and
queues each event, so a test can trigger a pop and wait for it with a deadline."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    event: str
    id: str
    data: dict[str, Any]
    received: float = field(default_factory=time.monotonic)


class SseReader:
    """``with SseReader(client, "/desk/events") as pops: pops.next(timeout=1)``."""

    def __init__(self, client: httpx.Client, path: str = "/desk/events") -> None:
        self.client = client
        self.path = path
        self.events: queue.Queue[SseEvent] = queue.Queue()
        self.status: int | None = None
        self._opened = threading.Event()
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, name="sse-reader", daemon=True)

    def __enter__(self) -> SseReader:
        self._thread.start()
        assert self._opened.wait(10), "the event stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._response is not None:
            self._response.close()
        self._thread.join(5)

    def _read(self) -> None:
        try:
            with self.client.stream("GET", self.path, timeout=httpx.Timeout(30, read=None)) as r:
                self._response = r
                self.status = r.status_code
                self._opened.set()
                if r.status_code != 200:
                    return
                fields: dict[str, str] = {}
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if "data" in fields:
                            self.events.put(
                                SseEvent(
                                    fields.get("event", "message"),
                                    fields.get("id", ""),
                                    json.loads(fields["data"]),
                                )
                            )
                        fields = {}
                    elif not line.startswith(":") and ":" in line:
                        name, value = line.split(":", 1)
                        fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self._opened.set()

    def next(self, timeout: float = 1.0) -> SseEvent:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event on {self.path} within {timeout} s") from None

    def nothing(self, within: float = 0.8) -> bool:
        """True if no event arrives within ``within`` seconds."""
        try:
            self.events.get(timeout=within)
        except queue.Empty:
            return True
        return False

    def ended(self, timeout: float = 2.0) -> bool:
        """True once the server has closed the stream (within ``timeout`` seconds)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
