"""Instants and days at the edge (时间): aware, written as ISO 8601, within the years the system can serve.

A command's time is a fact the ledger, its exports and every clock computation will read for years;
one that Python, PostgreSQL or a spreadsheet cannot hold (year 9999 at UTC−14 is year 10000 in
UTC) or that means nothing (a naive time: in which zone?) must be refused where it arrives. So:

- `Instant`: an aware date-time (with a UTC offset), written as an ISO 8601 string (a number is
  not a time: `0.5` would read as 1970), from 2000-01-01 to 2100-01-01 UTC (`SANE_RANGE`);
- `Day`: a calendar date written `YYYY-MM-DD`, from 2000-01-01 to 2099-12-31;
- `TimeZoneName`: a zone of the IANA database (`Asia/Shanghai`), not just any string;
- `is_in_the_future`: when something happened may not be later than now, beyond the few minutes a
  field device's clock may run ahead (`CLOCK_SKEW`); `CommandContext` holds every command to it.

The checks apply at the edge (see `edge`); stored events read back whatever they hold.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from domain.kernel.edge import edge_rule, refusal
from domain.kernel.text import single_line

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
FIRST_DAY, LAST_DAY = EARLIEST.date(), LATEST.date() - timedelta(days=1)
CLOCK_SKEW = timedelta(minutes=10)  # a field device's clock may run a little ahead

_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def is_in_the_future(at: datetime, now: datetime) -> bool:
    """`at` is later than `now` by more than a field device's clock may run ahead."""
    return at > now + CLOCK_SKEW


def is_in_sane_range(at: datetime) -> bool:
    """An aware instant between 2000-01-01 and 2100-01-01 UTC (naive: read as UTC, for a query's bounds)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
    try:
        return EARLIEST <= aware.astimezone(timezone.utc) < LATEST
    except OverflowError:  # year 9999 at UTC−14 is past datetime.max in UTC
        return False


def instant_text(value: Any, *, day_allowed: bool = False) -> Any:
    """The input of an instant: a datetime, or an ISO 8601 date-time string (a date alone when `day_allowed`)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and (_ISO_INSTANT.match(value) or (day_allowed and _ISO_DAY.match(value))):
        return value
    what = "date or date-time" if day_allowed else "date-time"
    raise refusal("time_format", f"an ISO 8601 {what} string is required (e.g. 2021-12-03T09:00:00+08:00)")


def in_sane_range(value: datetime) -> datetime:
    if not is_in_sane_range(value):
        raise refusal("time_out_of_range", "must lie between 2000-01-01 and 2100-01-01 UTC")
    return value


def day_text(value: Any) -> Any:
    """The input of a day: a date, or a `YYYY-MM-DD` string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.match(value):
        return value
    raise refusal("time_format", "a date written YYYY-MM-DD is required")


def day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise refusal("time_out_of_range", "must lie between 2000-01-01 and 2099-12-31")
    return value


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_time_zone(name: str) -> str:
    if name not in iana_zones():
        raise refusal("unknown_time_zone", "not a time zone of the IANA database (e.g. Asia/Shanghai)")
    return name


Instant = Annotated[AwareDatetime, BeforeValidator(edge_rule(instant_text)), AfterValidator(edge_rule(in_sane_range))]
"""When something happens (时间): aware, ISO 8601, 2000–2100."""
Day = Annotated[date, BeforeValidator(edge_rule(day_text)), AfterValidator(edge_rule(day_in_range))]
"""A calendar day (日期): `YYYY-MM-DD`, 2000-01-01 to 2099-12-31."""
TimeZoneName = Annotated[str, single_line(64), AfterValidator(edge_rule(known_time_zone))]
"""An IANA time zone name (时区), e.g. `Asia/Shanghai`."""
