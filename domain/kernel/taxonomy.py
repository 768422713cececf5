"""Problem taxonomy (问题分类): categories and severities, as data a campaign can replace.

The defaults are the 八乱 set that campaign supervision checks street by street, plus the
sanitation and facility categories that most 问题清单 also use. A campaign configures its own
taxonomy through its policy (`CategoriesConfigured`); codes are stable English identifiers,
names are what users read.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from domain.kernel.base import Frozen
from domain.kernel.text import single_line

CategoryCode = Annotated[str, single_line(min_length=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
GroupCode = Annotated[str, single_line(min_length=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class Severity(StrEnum):
    """How serious a problem is (问题等级): 一般 / 较重 / 严重."""

    MINOR = "minor"
    NORMAL = "normal"
    SERIOUS = "serious"

    @property
    def name_zh(self) -> str:
        return SEVERITY_NAMES_ZH[self]


SEVERITY_NAMES_ZH: dict[Severity, str] = {
    Severity.MINOR: "一般",
    Severity.NORMAL: "较重",
    Severity.SERIOUS: "严重",
}


class Category(Frozen):
    """One problem category (问题类别): a stable code, its Chinese name and its group."""

    code: CategoryCode
    name_zh: Annotated[str, single_line(50)]
    group: GroupCode = "other"


def _c(code: str, name_zh: str, group: str) -> Category:
    return Category(code=code, name_zh=name_zh, group=group)


BALUAN: tuple[Category, ...] = (
    _c("vehicle_parking", "车辆乱停", "baluan"),
    _c("illegal_building", "违规乱建", "baluan"),
    _c("garbage_dumping", "垃圾乱倒", "baluan"),
    _c("clutter", "杂物乱堆", "baluan"),
    _c("street_stalls", "摊点乱摆", "baluan"),
    _c("greenery_damage", "绿化乱毁", "baluan"),
    _c("illegal_ads", "广告乱设", "baluan"),
    _c("sewage", "污水乱排", "baluan"),
)

GENERAL: tuple[Category, ...] = (
    _c("sanitation", "环境卫生", "sanitation"),
    _c("facilities", "公共设施", "facilities"),
    _c("other", "其他", "other"),
)

DEFAULT_CATEGORIES: tuple[Category, ...] = BALUAN + GENERAL


def category_codes(categories: Iterable[Category]) -> frozenset[str]:
    """The set of codes of `categories`."""
    return frozenset(c.code for c in categories)


def duplicate_codes(categories: Iterable[Category]) -> list[str]:
    """Codes that appear more than once (a taxonomy must not have any)."""
    seen: set[str] = set()
    dupes: list[str] = []
    for c in categories:
        if c.code in seen and c.code not in dupes:
            dupes.append(c.code)
        seen.add(c.code)
    return dupes
