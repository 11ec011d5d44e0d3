"""The working-day calendar and SLA deadlines of the 124 offices (pure: no database, no I/O).

``workdays`` knows when offices are open, ``holidays_seed`` produces each year's holidays as data,
``policy`` turns SLA budgets into deadlines.
"""

from ivr.calendar.holidays_seed import (
    fixed_holidays,
    jalali_year_bounds,
    jalali_year_of,
    seed_current_and_next,
    seed_holidays,
)
from ivr.calendar.policy import (
    DEFAULT_POLICY_FILE,
    Deadlines,
    Policies,
    SlaPolicy,
    clock_reaches,
    deadlines,
    load_policies,
    policy_for,
)
from ivr.calendar.workdays import (
    DEFAULT_HOURS,
    DEFAULT_THURSDAY_RULES,
    Holiday,
    ThursdayRule,
    WorkCalendar,
)

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_POLICY_FILE",
    "DEFAULT_THURSDAY_RULES",
    "Deadlines",
    "Holiday",
    "Policies",
    "SlaPolicy",
    "ThursdayRule",
    "WorkCalendar",
    "clock_reaches",
    "deadlines",
    "fixed_holidays",
    "jalali_year_bounds",
    "jalali_year_of",
    "load_policies",
    "policy_for",
    "seed_current_and_next",
    "seed_holidays",
]
