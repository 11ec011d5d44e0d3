"""SLA budgets per category (data in ``ivr/categories.toml``) and the deadlines they give.

Definition of a deadline, for a budget of N working days:

* budget = working time from registration to ``add_working_days(created, N)``, i.e. to the close
  of the N-th working day after the registration day;
* the clock counts working time from registration, leaving out every paused interval (the ticket
  was waiting for the caller);
* the deadline is the earliest moment the clock reaches the budget, the warning the earliest
  moment it reaches ``warn_fraction`` of it.

Without pauses the deadline is exactly ``add_working_days(created, N)``.  A pause of three full
working days moves it three working days later.  While a pause is still open (no end) a clock that
has not yet run out has no deadline: the fields are None until the caller answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ivr.calendar.workdays import WorkCalendar, as_utc, naive_utc
from ivr.categories import DEFAULT_FILE, SlaPolicy, categories_from_text, load_categories

DEFAULT_POLICY_FILE = DEFAULT_FILE
"""The categories file: each category's SLA is one of its fields."""

Pause = tuple[datetime, datetime | None]


class Policies(dict[str, SlaPolicy]):
    """SLA policies by category code, and the code whose policy an unlisted category gets."""

    def __init__(self, policies: Mapping[str, SlaPolicy], fallback: str) -> None:
        super().__init__(policies)
        self.fallback = fallback


def load_policies(source: str | Path | None = None) -> Policies:
    """Policies by category from a categories file: a ``Path`` is read, a ``str`` is its TOML
    text itself, None the installed ``ivr/categories.toml``."""
    if isinstance(source, str):
        categories = categories_from_text(source)
    else:
        categories = load_categories(source)
    return Policies(categories.policies(), categories.fallback)


def policy_for(policies: Mapping[str, SlaPolicy], category: str) -> SlaPolicy:
    """The category's policy; an unlisted category gets the fallback's rather than no deadline."""
    found = policies.get(category)
    if found is not None:
        return found
    fallback = getattr(policies, "fallback", None) or load_categories().fallback
    return policies[fallback]


@dataclass(frozen=True)
class Deadlines:
    """Naive UTC moments; None while an open pause stops a clock that has not run out."""

    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_warn: datetime | None
    resolution_warn: datetime | None


def _merge(paused: Sequence[Pause]) -> tuple[list[tuple[datetime, datetime]], datetime | None]:
    """Closed pauses merged and sorted (aware UTC), and the start of an open pause if any."""
    closed: list[tuple[datetime, datetime]] = []
    open_from: datetime | None = None
    for start, end in paused:
        if end is None:
            open_from = min(as_utc(start), open_from or as_utc(start))
        elif as_utc(end) < as_utc(start):
            raise ValueError(f"pause ends before it starts: {start} .. {end}")
        else:
            closed.append((as_utc(start), as_utc(end)))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(closed):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged, open_from


def _unpaused(
    lo: datetime, hi: datetime, pauses: list[tuple[datetime, datetime]], open_from: datetime | None
) -> list[tuple[datetime, datetime]]:
    """The parts of [lo, hi) not covered by a pause."""
    if open_from is not None:
        hi = min(hi, open_from)
    pieces = []
    for p_lo, p_hi in pauses:
        if p_hi <= lo or p_lo >= hi:
            continue
        if p_lo > lo:
            pieces.append((lo, p_lo))
        lo = max(lo, p_hi)
    if lo < hi:
        pieces.append((lo, hi))
    return pieces


def clock_reaches(
    calendar: WorkCalendar,
    start_utc: datetime,
    province: str,
    budget: timedelta,
    paused: Sequence[Pause] = (),
) -> datetime | None:
    """Earliest moment (naive UTC) the unpaused working time since ``start_utc`` reaches budget."""
    pauses, open_from = _merge(paused)
    elapsed = timedelta(0)
    for lo, hi in calendar.working_intervals(start_utc, province):
        for piece_lo, piece_hi in _unpaused(lo, hi, pauses, open_from):
            if elapsed + (piece_hi - piece_lo) >= budget:
                return naive_utc(piece_lo + (budget - elapsed))
            elapsed += piece_hi - piece_lo
        if open_from is not None and hi >= open_from:
            return None  # the clock stopped for good before the budget was used up
    raise AssertionError("working_intervals is endless")  # pragma: no cover


def deadlines(
    created_utc: datetime,
    category: str,
    province: str,
    calendar: WorkCalendar,
    policy: Mapping[str, SlaPolicy],
    paused: Sequence[Pause] = (),
) -> Deadlines:
    """Both clocks' due and warning moments for a ticket (see the module docstring)."""
    sla = policy_for(policy, category)
    moments: list[datetime | None] = []
    for days in (sla.first_response_days, sla.resolution_days):
        close = calendar.add_working_days(created_utc, days, province)
        budget = calendar.working_time_between(created_utc, close, province)
        # Unpaused, the clock reaches its budget at that close: no second walk (a new ticket)
        moments.append(
            clock_reaches(calendar, created_utc, province, budget, paused) if paused else close
        )
        moments.append(
            clock_reaches(calendar, created_utc, province, budget * sla.warn_fraction, paused)
        )
    first_due, first_warn, resolution_due, resolution_warn = moments
    return Deadlines(first_due, resolution_due, first_warn, resolution_warn)
