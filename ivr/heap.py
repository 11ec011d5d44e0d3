"""The garbage collector set for a long-running server: what start-up made is left alone.

A hotline process makes about 175,000 objects at start (modules, SQLAlchemy's tables and
compiled statements, the prompt catalogue, the calendar's caches) and keeps them until it stops.
Python's full collection walked all of them, about 78 ms with every thread held, every few
thousand turns; and with the default first-generation threshold (700 objects) a turn's short-lived
objects were scanned several times a turn. Measured in process on one CPU: the collector took
45–64 µs of a 600 µs turn before, 16–18 µs after (``/tmp`` driver, ``gc.callbacks`` timing).

``settle`` freezes what exists (``gc.freeze``: later collections skip it) and collects the young
generation less often. Reference cycles are still found, a little later. A frozen object that
start-up drops later is still freed by reference counting; only a cycle among such objects
stays, and start-up makes them once.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Objects allocated between young collections (Python's default: 700). Most of a turn's die
by reference counting before one; what survives is then promoted in one pass, not several."""
OLDER_THRESHOLDS = (10, 10)
"""Python's defaults: each older generation is collected after ten of the one before."""


def settle() -> int:
    """Collect once, freeze everything left and set the thresholds; how many objects were
    frozen. Called once start-up has built everything that lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    return gc.get_freeze_count()
