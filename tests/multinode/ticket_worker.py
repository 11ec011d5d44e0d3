"""One IVR node creating tickets: ``python ticket_worker.py URL NODE STORAGE COUNT THREADS START``.

Run as a separate process by ``test_tickets_concurrent.py``, so two nodes share nothing but the
database, as two machines would. All threads wait for the wall-clock moment START (epoch seconds)
and then create COUNT tickets between them through ``TicketService.create``; the tracking numbers
are printed as one JSON list.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketDraft, TicketService


def main(url: str, node: str, storage: str, count: int, threads: int, start: float) -> None:
    settings = Settings(storage_dir=Path(storage), database_url=url, node_name=node)
    service = TicketService(make_engine(url), settings)
    numbers: list[str | None] = []
    spooled: list[str | None] = []
    lock = threading.Lock()

    def work(share: int) -> None:
        time.sleep(max(0.0, start - time.time()))
        for i in range(share):
            draft = TicketDraft("asterisk", "qom", "consumer", None, None, None, f"09{i:09d}", None)
            created = service.create(draft)
            with lock:
                (spooled if created.spooled else numbers).append(created.tracking)

    shares = [count // threads + (1 if t < count % threads else 0) for t in range(threads)]
    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    json.dump({"node": node, "stored": numbers, "spooled": spooled}, sys.stdout)


if __name__ == "__main__":
    url, node, storage, count, threads, start = sys.argv[1:7]
    main(url, node, storage, int(count), int(threads), float(start))
