"""Times as people read them (时间显示): Beijing time unless a campaign names its own zone.

One home for every user-facing rendering of an instant, so the ledger, its exports, notices, the
CLI and the downstream exports cannot print the same moment in different shapes.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from domain.kernel.calendar import CHINA_TZ

DEFAULT_FORMAT = "%Y-%m-%d %H:%M"


def to_local(value: datetime, tz: tzinfo = CHINA_TZ) -> datetime:
    """The same instant on the wall clock of `tz` (China time by default)."""
    return value.astimezone(tz)


def format_local(value: datetime | None, tz: tzinfo = CHINA_TZ, empty: str = "—") -> str:
    """An instant as `2021-12-17 10:00` in `tz`; `empty` when there is none (ledger cells, timelines)."""
    return to_local(value, tz).strftime(DEFAULT_FORMAT) if value is not None else empty


def format_zh(value: datetime, tz: tzinfo = CHINA_TZ) -> str:
    """An instant in running Chinese text (notices, bulletins): `2021年12月17日 10:00`."""
    local = to_local(value, tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def local_day_stamp(value: datetime, tz: tzinfo = CHINA_TZ) -> str:
    """The local date as `20211217`, for case numbers and file names."""
    return f"{to_local(value, tz):%Y%m%d}"
