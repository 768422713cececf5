"""Spreadsheets in and out (表格读写): an uploaded XLSX or CSV as numbered rows, and XLSX files to hand back.

Row numbers are the ones a person sees in Excel: the header is row 1 when it is the first line,
and a data row keeps its sheet row (XLSX) or its record's line (CSV) number, so an error "第 7 行"
points at row 7 on screen. Blank rows are skipped, not numbered away. A CSV is read as UTF-8 with
or without a BOM, else as GB18030 (the superset of GBK that Excel uses for "CSV" on a Chinese
Windows); its delimiter is a comma, tab or semicolon, whichever the header line uses.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_MAGIC = b"PK\x03\x04"
ERROR_FILL = PatternFill("solid", fgColor="FFC7CE")
HEADER_FONT = Font(bold=True)


class UnreadableFile(ValueError):
    """The upload is neither an XLSX workbook nor a CSV text this reader understands."""


@dataclass(frozen=True)
class Table:
    """A sheet as read: its header cells (row `header_row`) and its non-blank data rows with their row numbers."""

    header: tuple[str, ...]
    header_row: int
    rows: tuple[tuple[int, tuple[Any, ...]], ...]


def read_table(data: bytes, filename: str = "") -> Table:
    """The first sheet of an XLSX, or a CSV, as a `Table` (by content: an XLSX is a zip, whatever its name)."""
    if data.startswith(_ZIP_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm")):
        return _xlsx(data)
    return _csv(decode_csv(data))


def decode_csv(data: bytes) -> str:
    """CSV bytes as text: UTF-8 with BOM, UTF-8, else GB18030 (GBK)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as err:
            raise UnreadableFile("not UTF-8 or GBK text, and not an XLSX workbook") from err


def _numbered(rows: Iterator[tuple[int, Sequence[Any]]]) -> Table:
    cells = [(n, tuple(_clean(v) for v in row)) for n, row in rows]
    filled = [(n, row) for n, row in cells if any(v not in (None, "") for v in row)]
    if not filled:
        raise UnreadableFile("the sheet is empty")
    (header_row, header), data = filled[0], filled[1:]
    width = len(header)
    return Table(header=tuple("" if h is None else str(h) for h in header), header_row=header_row,
                 rows=tuple((n, tuple(row[:width]) + (None,) * (width - len(row))) for n, row in data))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.replace("\u3000", " ").strip()
        return value or None
    return value


def _xlsx(data: bytes) -> Table:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a broken file; all mean "unreadable"
        raise UnreadableFile(f"not a readable XLSX workbook ({type(err).__name__})") from err
    sheet = book.worksheets[0]
    try:
        return _numbered((i, row) for i, row in enumerate(sheet.iter_rows(values_only=True), start=1))
    finally:
        book.close()


def _csv(text: str) -> Table:
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first.count) if any(d in first for d in ",\t;") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = 1
        for record in reader:
            yield start, record
            start = reader.line_num + 1  # a quoted cell may span lines: the next record starts after it

    return _numbered(rows())


# --- writing ----------------------------------------------------------------------------------------------


def cell_text(value: Any) -> Any:
    """A cell value as it was read, ready to write back: dates as dates, and in text each control character a
    worksheet cannot hold (an uploaded CSV may carry any; openpyxl refuses them, which was a 500) as U+FFFD."""
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date()
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value


def workbook(sheets: Sequence[tuple[str, Sequence[Sequence[Any]], Sequence[int]]]) -> bytes:
    """An XLSX with one sheet per (title, lines, rows to mark as errors — 1-based line indexes), header bold."""
    book = Workbook()
    book.remove(book.active)  # a new workbook starts with a default sheet: ours replace it
    for title, lines, marked in sheets:
        sheet = book.create_sheet(title[:31])
        for line in lines:
            sheet.append([cell_text(v) for v in line])
        for cell in sheet[1] if lines else ():
            cell.font = HEADER_FONT
        for index in marked:
            for cell in sheet[index]:
                cell.fill = ERROR_FILL
        sheet.freeze_panes = "A2"
        for i, _ in enumerate(lines[0] if lines else (), start=1):
            sheet.column_dimensions[get_column_letter(i)].width = 20
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def is_date_like(value: Any) -> bool:
    return isinstance(value, (date, datetime))
