"""The agents' hours per province (``agent_hours.toml``) on the days the working calendar opens.

Callers hear when agents answer next, and callbacks are placed only inside these hours, so both
ask the same two questions here: ``is_open(province, moment)`` and ``next_opening(province,
moment)``. The days come from :class:`ivr.calendar.WorkCalendar` (holidays, closures, Thursday
decrees, per province), usually the database's through ``CachedCalendar.get``; the hours of those
days come from the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from ivr.calendar.workdays import MAX_CLOSED_DAYS, THURSDAY, WorkCalendar
from ivr.clock import TEHRAN, as_aware

DEFAULT_HOURS_FILE = Path(__file__).with_name("agent_hours.toml")
KEYS = frozenset({"opens", "closes", "thursday_opens", "thursday_closes"})


@dataclass(frozen=True)
class Hours:
    """One province's desk hours; ``thursday`` None: the Thursday decree's own hours."""

    opens: time
    closes: time
    thursday: tuple[time, time] | None = None

    def __post_init__(self) -> None:
        pairs = [(self.opens, self.closes)] + ([self.thursday] if self.thursday else [])
        for opens, closes in pairs:
            if opens >= closes:
                raise ValueError(f"agents' hours open at {opens} but close at {closes}")


@dataclass(frozen=True)
class HoursTable:
    default: Hours
    provinces: Mapping[str, Hours]

    def for_province(self, province: str) -> Hours:
        return self.provinces.get(province, self.default)


def _clock(value: Any, where: str) -> time:
    try:
        parsed = time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.second or parsed.microsecond or len(value) != 5:
        raise ValueError(f"{where}: {value!r} is not a time of day as HH:MM")
    return parsed


def _hours(values: Mapping[str, Any], base: Mapping[str, Any], where: str) -> Hours:
    unknown = set(values) - KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    merged = {**base, **values}
    if "opens" not in merged or "closes" not in merged:
        raise ValueError(f"{where}: opens and closes are required")
    thursday = None
    if "thursday_opens" in merged or "thursday_closes" in merged:
        if not ("thursday_opens" in merged and "thursday_closes" in merged):
            raise ValueError(f"{where}: thursday_opens and thursday_closes go together")
        thursday = (
            _clock(merged["thursday_opens"], where),
            _clock(merged["thursday_closes"], where),
        )
    try:
        return Hours(_clock(merged["opens"], where), _clock(merged["closes"], where), thursday)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def load_agent_hours(source: str | Path = DEFAULT_HOURS_FILE) -> HoursTable:
    """The table from TOML: a ``Path`` is read, a ``str`` is the TOML text itself.

    Raises ValueError naming the file and the section for anything it cannot use.
    """
    name = str(source) if isinstance(source, Path) else "agent hours"
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{name}: {error}") from None
    unknown = set(data) - {"default", "provinces"}
    if unknown:
        raise ValueError(f"{name}: unknown section(s) {', '.join(sorted(unknown))}")
    base = data.get("default", {})
    default = _hours(base, {}, f"{name} [default]")
    provinces = {
        code: _hours(values, base, f"{name} [provinces.{code}]")
        for code, values in data.get("provinces", {}).items()
    }
    return HoursTable(default, provinces)


CalendarSource = Callable[[datetime], WorkCalendar]
"""The calendar in force at a moment: ``CachedCalendar.get``, or ``lambda _: calendar``."""


class AgentHours:
    """When agents answer: the calendar's working days, the table's hours on them."""

    def __init__(self, table: HoursTable, calendar: WorkCalendar | CalendarSource) -> None:
        self.table = table
        self._calendar: CalendarSource = (
            (lambda _moment: calendar) if isinstance(calendar, WorkCalendar) else calendar
        )

    def window(
        self, province: str, day: date, calendar: WorkCalendar | None = None
    ) -> tuple[datetime, datetime] | None:
        """Opening and closing on ``day`` (aware Tehran times), or None: agents are off."""
        calendar = calendar or self._calendar(datetime.combine(day, time(12), tzinfo=TEHRAN))
        office = calendar.opening_hours(day, province)
        if office is None:  # Friday, a closed Thursday, a holiday or a closure
            return None
        hours = self.table.for_province(province)
        opens, closes = hours.opens, hours.closes
        if day.weekday() == THURSDAY:
            opens, closes = hours.thursday or (office[0].time(), office[1].time())
        return (
            datetime.combine(day, opens, tzinfo=TEHRAN),
            datetime.combine(day, closes, tzinfo=TEHRAN),
        )

    def is_open(self, province: str, moment: datetime) -> bool:
        """Whether agents answer at ``moment`` (naive means UTC); closing time is closed."""
        local = as_aware(moment).astimezone(TEHRAN)
        found = self.window(province, local.date(), self._calendar(moment))
        return found is not None and found[0] <= local < found[1]

    def next_opening(self, province: str, moment: datetime) -> datetime:
        """``moment`` itself (aware UTC) when agents answer then, else their next opening."""
        moment = as_aware(moment)
        calendar = self._calendar(moment)
        day = moment.astimezone(TEHRAN).date()
        for offset in range(MAX_CLOSED_DAYS):
            found = self.window(province, day + timedelta(days=offset), calendar)
            if found is not None and moment < found[1]:
                return max(found[0], moment).astimezone(moment.tzinfo)
        raise RuntimeError(f"agents in {province} never open in {MAX_CLOSED_DAYS} days")
