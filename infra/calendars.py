"""The national working calendar (全国工作日历) shipped with the product.

Loads the official public-holiday arrangements (节假日安排, 2021–2026) from the package data
file `infra/data/cn-public-holidays.json`, once per process; campaigns add their local days
on top with `WorkCalendar.with_local_days`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from domain.kernel.calendar import WorkCalendar, calendar_from_official


@cache
def _official() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(files("infra").joinpath("data/cn-public-holidays.json").read_text(encoding="utf-8"))
    return parsed


@cache
def official_calendar() -> WorkCalendar:
    """The national calendar built from the shipped official holiday file."""
    return calendar_from_official(_official())


def official_holidays() -> dict[int, list[dict[str, Any]]]:
    """The official arrangements by year: each holiday's name (元旦, 春节, …), its days off and make-up working days."""
    return {int(year): [dict(h) for h in holidays] for year, holidays in _official()["years"].items()}
