"""Exports of the rectification ledger (整改台账导出): CSV that Excel opens in Chinese, and XLSX.

CSV is UTF-8 with a BOM (without it Excel on Windows reads GBK and garbles Chinese); XLSX is
written with openpyxl. Both have the same zh-CN columns, from ledger rows as `projections.ledger`
returns them; times are shown in the campaign's time zone (China time by default).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from domain.kernel.calendar import CHINA_TZ
from domain.kernel.taxonomy import DEFAULT_CATEGORIES, SEVERITY_NAMES_ZH, Severity
from domain.kernel.timefmt import format_local

Row = Mapping[str, Any]

STATE_ZH = {
    "reported": "已上报", "assigned": "已交办", "acknowledged": "已签收", "rectification_submitted": "已反馈待复查",
    "rework": "返工", "verified": "复查通过", "closed": "已销号", "withdrawn": "已作废", "merged": "已合并",
}
LIGHT_ZH = {"green": "绿", "yellow": "黄", "red": "红"}
DEFAULT_CATEGORY_NAMES = {c.code: c.name_zh for c in DEFAULT_CATEGORIES}


def _time(value: Any, tz: tzinfo) -> str:
    """A time cell: the campaign's zone to the minute, an empty cell when there is none."""
    return format_local(value if isinstance(value, datetime) else None, tz, empty="")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


def _yes(value: Any) -> str:
    return "是" if value else "否"


Column = tuple[str, Callable[[Row, Mapping[str, str], tzinfo], Any]]

COLUMNS: tuple[Column, ...] = (
    ("问题编号", lambda r, c, z: str(r["problem_id"])),
    ("网格", lambda r, c, z: r.get("grid_name") or ""),
    ("点位", lambda r, c, z: r.get("place_name") or ""),
    ("类别", lambda r, c, z: c.get(r["category"], r["category"])),
    ("严重程度", lambda r, c, z: SEVERITY_NAMES_ZH.get(Severity(r["severity"]), r["severity"])),
    ("责任单位", lambda r, c, z: r.get("unit_name") or ""),
    ("所属分指挥部", lambda r, c, z: r.get("sub_command_name") or ""),
    ("状态", lambda r, c, z: STATE_ZH.get(r["state"], r["state"])),
    ("发现时间", lambda r, c, z: _time(r.get("found_at"), z)),
    ("交办时间", lambda r, c, z: _time(r.get("assigned_at"), z)),
    ("整改期限", lambda r, c, z: _time(r.get("deadline"), z)),
    ("时限(工作时)", lambda r, c, z: round(r.get("limit_hours") or 0, 2)),
    ("已用(工作时)", lambda r, c, z: r.get("hours_used", 0)),
    ("已用时限", lambda r, c, z: _percent(r.get("time_used"))),
    ("三色", lambda r, c, z: LIGHT_ZH.get(r.get("light") or "", "")),
    ("是否超期", lambda r, c, z: _yes(r.get("overdue"))),
    ("整改反馈时间", lambda r, c, z: _time(r.get("submitted_at"), z)),
    ("销号时间", lambda r, c, z: _time(r.get("closed_at"), z)),
    ("按期结案", lambda r, c, z: "" if r.get("closed_on_time") is None else _yes(r["closed_on_time"])),
    ("返工次数", lambda r, c, z: r.get("rework_count", 0)),
    ("反弹次数", lambda r, c, z: r.get("relapse_count", 0)),
    ("挂账", lambda r, c, z: _yes(r.get("parked"))),
    ("疑似重复", lambda r, c, z: "、".join(str(i) for i in r.get("likely_duplicate_of") or ())),
    ("反弹原问题", lambda r, c, z: str(r["relapse_of"]) if r.get("relapse_of") else ""),
    ("问题描述", lambda r, c, z: r.get("description") or ""),
)
HEADERS = tuple(name for name, _ in COLUMNS)


def table(rows: Sequence[Row], category_names: Mapping[str, str] | None = None,
          tz: tzinfo = CHINA_TZ) -> list[list[Any]]:
    """The header line and one line per ledger row, as shown to people."""
    names = {**DEFAULT_CATEGORY_NAMES, **(category_names or {})}
    return [list(HEADERS), *([value(r, names, tz) for _, value in COLUMNS] for r in rows)]


def ledger_csv(rows: Sequence[Row], category_names: Mapping[str, str] | None = None, tz: tzinfo = CHINA_TZ) -> bytes:
    """The ledger as CSV, UTF-8 with a BOM and CRLF line ends (what Excel expects)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table(rows, category_names, tz))
    return out.getvalue().encode("utf-8-sig")


def sheet_safe(value: Any) -> Any:
    """A value a worksheet can hold: in text, each control character openpyxl refuses (a description stored before
    the edge refused them) becomes U+FFFD, instead of the whole export failing."""
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def ledger_xlsx(rows: Sequence[Row], category_names: Mapping[str, str] | None = None, tz: tzinfo = CHINA_TZ,
                title: str = "整改台账") -> bytes:
    """The ledger as an XLSX workbook with one sheet, a frozen header and widened columns."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    for line in table(rows, category_names, tz):
        sheet.append([sheet_safe(v) for v in line])
    sheet.freeze_panes = "A2"
    for i, header in enumerate(HEADERS, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = 38 if header in ("问题编号", "问题描述") else 16
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
