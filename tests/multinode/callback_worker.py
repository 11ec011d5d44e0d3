"""One dispatcher node: ``python callback_worker.py URL NODE NETWORK_LOG START SECONDS``.

Run twice at once by ``test_callbacks_nodes.py`` with no leader election between them, so only
the database's claims keep them apart. Both wait for the wall-clock moment START, then pass every
20 ms for at most SECONDS or until no callback is open. The "telephone network" is a file both
append to under a lock: one line per call placed (``callback attempt node start``); each call
rings 50 ms and is not answered, reported back through the dispatcher's sink like an AMI event.
"""

from __future__ import annotations

import fcntl
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from ivr.calendar import WorkCalendar
from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.callbacks.dialing import AttemptOrder, Check, Ended, Sink
from ivr.callbacks.dispatcher import Dispatcher
from ivr.callbacks.models import OPEN_STATUSES, Outcome
from ivr.callbacks.queue_view import QueueSnapshot
from ivr.callbacks.service import CallbackService, OpenAttempt
from ivr.tickets.db import make_engine

ALL_DAY = '[default]\nopens = "00:00"\ncloses = "23:59"\n'


class ManyAgents:
    def snapshot(self) -> QueueSnapshot:
        return QueueSnapshot(agents_logged_in=50, agents_free=50)


class NetworkLog:
    name = "fake"
    holds_place = True

    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self.node = node
        self.sink: Sink | None = None

    def listen(self, sink: Sink) -> None:
        self.sink = sink

    def place(self, order: AttemptOrder) -> str:
        with self.path.open("a", encoding="utf-8") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.write(f"{order.callback_id} {order.attempt_id} {self.node} {time.time()}\n")
        threading.Timer(0.05, self._no_answer, args=(order.attempt_id,)).start()
        return f"call-{order.attempt_id}"

    def _no_answer(self, attempt_id: int) -> None:
        assert self.sink is not None
        self.sink(Ended(attempt_id, Outcome.NO_ANSWER, "rang out"))

    def withdraw(self, attempt_id: int, channel: str) -> None:
        pass

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        return {}

    def close(self) -> None:
        pass


def main(url: str, node: str, network: str, start: float, seconds: float) -> None:
    engine = make_engine(url)
    service = CallbackService(
        engine, attempts=3, retry=timedelta(seconds=0.3), lease=timedelta(seconds=60)
    )
    hours = AgentHours(load_agent_hours(ALL_DAY), WorkCalendar())
    # Thursdays and Fridays too: the test must not depend on the day it runs.
    hours.is_open = lambda province, moment: True  # type: ignore[method-assign]
    dispatcher = Dispatcher(
        service, hours, ManyAgents(), NetworkLog(Path(network), node), node=node
    )
    time.sleep(max(0.0, start - time.time()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatcher.dispatch_once()
        if not service.list(list(OPEN_STATUSES), limit=1):
            break
        time.sleep(0.02)
    time.sleep(0.2)  # the last calls' outcomes
    engine.dispose()


if __name__ == "__main__":
    url, node, network, start, seconds = sys.argv[1:6]
    main(url, node, network, float(start), float(seconds))
