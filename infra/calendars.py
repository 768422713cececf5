"""The national working calendar (全国工作日历) shipped with the product.

Loads the official public-holiday arrangements (节假日安排, 2021–2026) from the package data
file `infra/data/cn-public-holidays.json`, once per process; campaigns add their local days
on top with `WorkCalendar.with_local_days`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from domain.kernel.calendar import WorkCalendar, calendar_from_official


@cache
def official_calendar() -> WorkCalendar:
    """The national calendar built from the shipped official holiday file."""
    text = files("infra").joinpath("data/cn-public-holidays.json").read_text(encoding="utf-8")
    return calendar_from_official(json.loads(text))
