"""Import a 任务分解表 (task decomposition table) from XLSX or CSV through the real command path.

Columns (Chinese or English headers; order free): 指标编号 indicator code (e.g. `3.2.1`), 指标名称
indicator, 任务 task, 牵头单位 lead unit, 配合单位 co-units (separated by 、，,;；/), 完成时限 deadline
(2022-03-31, 2022/3/31, 2022年3月31日, an Excel date; 长期 for none), 报送频次 cadence (一日一汇报,
每周五报送, 每月5日报送, 每月报送, 不定期), and optionally 工作措施 measures and 任务编号 a key of
the user's own. A row with an indicator but no task defines the indicator alone (a tree node).

How it runs:

1. Every row is checked before anything is written: a required column missing from the header
   stops the whole file; a row with a missing cell, an unknown or ambiguous unit (matched by name
   among the campaign's units), a bad date, an unreadable cadence, an indicator named differently
   elsewhere, a duplicate of an earlier row, or a task already imported with other content is
   reported with its row number and reason, and nothing of it is written.
2. `dry_run` stops there (validation only).
3. Each good row is written as commands through the command service, as the importing actor: the
   indicators it needs (parents by code prefix: 3.2.1 under 3.2 under 3, the nearest that exists),
   then `DefineTask` with `assign` — the task, its lead and co-units in the matrix, the 交办 and its
   交办单 in one write. Ids derive from the campaign and the row key (任务编号, else indicator code +
   task name), so importing the same file again writes nothing new: a task already there with the
   same content is "unchanged".

`progress(done, total)` is called after each row written; the report counts rows and time.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from domain import tasks as tk
from domain.kernel.base import Actor, DomainError, derived_id
from domain.kernel.roles import HQ_ROLES, ensure_role
from domain.structure.indicator import DefineIndicator, Indicator
from infra.commands.grants import Grant
from infra.commands.indicator import get_of_kind
from infra.commands.service import CommandService, StoreReader
from infra.imports.tables import UnreadableFile, read_table, workbook

Progress = Callable[[int, int], None]
Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One column of the table: its field, Chinese name, the headers accepted for it, whether required."""

    field: str
    name_zh: str
    aliases: tuple[str, ...]
    required: bool = True


COLUMNS = (
    Column("indicator_code", "指标编号", ("指标编号", "指标代码", "指标序号", "indicator code", "indicator_code", "code")),
    Column("indicator", "指标名称", ("指标名称", "指标", "测评指标", "indicator", "indicator name")),
    Column("task", "任务", ("任务", "任务名称", "具体任务", "任务内容", "工作任务", "task")),
    Column("lead_unit", "牵头单位", ("牵头单位", "责任单位", "主责单位", "lead unit", "lead_unit", "lead")),
    Column("co_units", "配合单位", ("配合单位", "协同单位", "联创联建单位", "co-units", "co_units", "co units")),
    Column("deadline", "完成时限", ("完成时限", "完成时间", "截止日期", "截止时间", "时限", "deadline", "due")),
    Column("cadence", "报送频次", ("报送频次", "汇报频次", "报送要求", "报送时间", "cadence")),
    Column("measures", "工作措施", ("工作措施", "措施", "具体措施", "measures"), required=False),
    Column("key", "任务编号", ("任务编号", "key", "row key"), required=False),
)
TEMPLATE_HEADER = tuple(c.name_zh for c in COLUMNS)
_CODE = re.compile(r"^\d{1,3}(\.\d{1,3}){0,7}$")
_SPLIT = re.compile(r"[、，,；;/\n]+")
_NO_DEADLINE = frozenset({"长期", "常态", "常态化", "持续", "长期坚持", "无"})
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_EXCEL_EPOCH = date(1899, 12, 30)


@dataclass(frozen=True)
class RowError:
    """Why a row (or the file: row = the header's) was refused: a code, the column, zh and en reasons."""

    row: int
    code: str
    column: str | None
    message_zh: str
    message_en: str

    def as_dict(self) -> Row:
        return {"row": self.row, "code": self.code, "column": self.column, "message_zh": self.message_zh,
                "message_en": self.message_en}


@dataclass
class RowOutcome:
    """What became of one data row: created, unchanged, indicator (a tree node only), valid (dry run) or error."""

    row: int
    cells: tuple[Any, ...]
    status: str = "valid"
    key: str | None = None
    task_id: UUID | None = None
    indicator_code: str | None = None
    indicator_name: str | None = None
    errors: list[RowError] = field(default_factory=list)
    command: tk.DefineTask | None = None

    def refuse(self, code: str, column: str | None, zh: str, en: str) -> None:
        self.errors.append(RowError(self.row, code, column, zh, en))
        self.status = "error"


@dataclass
class ImportReport:
    """The summary of one import (导入结果): counts, every row's outcome and every error, and how long it took."""

    file_name: str
    dry_run: bool
    header: tuple[str, ...] = ()
    outcomes: list[RowOutcome] = field(default_factory=list)
    file_errors: list[RowError] = field(default_factory=list)
    indicators_created: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def errors(self) -> list[RowError]:
        return [*self.file_errors, *(e for o in self.outcomes for e in o.errors)]

    def as_dict(self) -> Row:
        rows = len(self.outcomes)
        return {"file": self.file_name, "dry_run": self.dry_run, "rows": rows, "created": self.count("created"),
                "unchanged": self.count("unchanged"), "valid": self.count("valid"),
                "indicator_rows": self.count("indicator"), "error_rows": self.count("error"),
                "indicators_created": self.indicators_created, "seconds": round(self.seconds, 3),
                "rows_per_second": round(rows / self.seconds, 1) if self.seconds else None,
                "errors": [e.as_dict() for e in self.errors],
                "results": [{"row": o.row, "status": o.status, "key": o.key, "task_id": o.task_id,
                             "indicator_code": o.indicator_code, "errors": [e.message_zh for e in o.errors]}
                            for o in self.outcomes]}


# --- reading cells ----------------------------------------------------------------------------------------


def header_map(header: Iterable[str]) -> dict[str, int]:
    """Which column index holds each field (headers compared without spaces, case-insensitively)."""
    index = {re.sub(r"\s+", "", h).lower(): i for i, h in enumerate(header) if h}
    found: dict[str, int] = {}
    for col in COLUMNS:
        for alias in col.aliases:
            if (i := index.get(re.sub(r"\s+", "", alias).lower())) is not None:
                found[col.field] = i
                break
    return found


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_day(value: Any) -> date | None | str:
    """A deadline cell as a date, None for 长期 (no deadline), or the text it could not read."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 36526 <= value < 73051:
        return _EXCEL_EPOCH + timedelta(days=int(value))  # an Excel date serial (2000–2099) saved as a number
    raw = text(value)
    if raw in _NO_DEADLINE:
        return None
    found = _DATE_TEXT.match(raw) or re.match(r"^(\d{4})(\d{2})(\d{2})$", raw)
    if found:
        try:
            day = date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        except ValueError:
            return raw
        return day if date(2000, 1, 1) <= day <= date(2099, 12, 31) else raw
    return raw


def normal_name(name: str) -> str:
    """A unit's name for matching: no white space, full-width brackets as ASCII ones."""
    return re.sub(r"\s+", "", name).replace("（", "(").replace("）", ")")


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


# --- the import ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What rows are checked against: the campaign's units by name, its indicators by code, the write side."""

    campaign_id: UUID
    units: dict[str, list[tuple[UUID, str]]]
    indicators: dict[str, Row]
    reader: StoreReader

    def unit(self, name: str) -> tuple[UUID | None, str | None]:
        """(unit id, None) or (None, the reason in Chinese)."""
        found = self.units.get(normal_name(name), [])
        if len(found) == 1:
            return found[0][0], None
        return None, ("未找到该单位" if not found else "有多个同名单位")

    def indicator_id(self, code: str) -> UUID:
        known = self.indicators.get(code)
        return known["indicator_id"] if known else derived_id("indicator", self.campaign_id, "code", code)


def context(conn: Any, service: CommandService, campaign_id: UUID) -> Context:
    """Units and indicators from the read models (names → ids); the commands check them again on the write side."""
    units: dict[str, list[tuple[UUID, str]]] = {}
    for r in conn.execute("SELECT unit_id, name FROM structure_units WHERE campaign_id = %s AND NOT retired",
                          (campaign_id,)).fetchall():
        uid, name = (r["unit_id"], r["name"]) if isinstance(r, dict) else r
        units.setdefault(normal_name(name), []).append((uid, name))
    rows = conn.execute("SELECT indicator_id, code, name, parent_id FROM task_indicators WHERE campaign_id = %s",
                        (campaign_id,)).fetchall()
    names = ("indicator_id", "code", "name", "parent_id")
    indicators = {r["code"] if isinstance(r, dict) else r[1]: (r if isinstance(r, dict) else dict(zip(names, r, strict=True)))
                  for r in rows}
    return Context(campaign_id, units, indicators, StoreReader(service.app))


def import_tasks(service: CommandService, conn: Any, campaign_id: UUID, data: bytes, filename: str,
                 actor: Actor | Grant, *, dry_run: bool = False, progress: Progress | None = None) -> ImportReport:
    """Check every row, then (unless `dry_run`) write the good ones; see the module docstring.

    An actor whose role may not define tasks is refused at once (403), before the file is read.
    """
    ensure_role(actor.actor if isinstance(actor, Grant) else actor, HQ_ROLES)
    started = time.perf_counter()
    report = ImportReport(filename, dry_run)
    try:
        table = read_table(data, filename)
    except UnreadableFile as err:
        report.file_errors.append(RowError(0, "unreadable_file", None, f"无法读取文件：{err}", f"cannot read the file: {err}"))
        return report
    report.header = table.header
    columns = header_map(table.header)
    missing = [c for c in COLUMNS if c.required and c.field not in columns]
    report.outcomes = [RowOutcome(row=n, cells=cells) for n, cells in table.rows]
    if missing:
        names = "、".join(c.name_zh for c in missing)
        report.file_errors.append(RowError(table.header_row, "missing_column", names, f"表头缺少必填列：{names}",
                                           f"the header lacks required columns: {', '.join(c.field for c in missing)}"))
        for o in report.outcomes:
            o.status = "error"
        report.seconds = time.perf_counter() - started
        return report
    ctx = context(conn, service, campaign_id)
    check_rows(report.outcomes, columns, ctx)
    if not dry_run:
        write_rows(service, ctx, report, actor, progress)
    report.seconds = time.perf_counter() - started
    return report


def check_rows(outcomes: list[RowOutcome], columns: dict[str, int], ctx: Context) -> None:
    """Every check of the module docstring, row by row, then across rows (indicator names, duplicates, the store)."""
    for o in outcomes:
        parse_row(o, {f: o.cells[i] for f, i in columns.items()}, ctx)
    indicator_names = _agree_on_indicators(outcomes, ctx)
    seen: dict[str, int] = {}
    for o in outcomes:
        if o.status == "error" or o.key is None:
            continue
        if o.key in seen:
            o.refuse("duplicate_row", "任务", f"与第 {seen[o.key]} 行重复", f"duplicates row {seen[o.key]}")
            continue
        seen[o.key] = o.row
        _against_the_store(o, ctx)
    for o in outcomes:
        if o.status != "error" and o.indicator_code is not None and o.command is not None:
            o.command = o.command.model_copy(update={"indicator_id": ctx.indicator_id(o.indicator_code)})
    ctx.indicators.update({code: {"indicator_id": ctx.indicator_id(code), "code": code, "name": name,
                                  "parent_id": None, "new": True}
                           for code, name in indicator_names.items() if code not in ctx.indicators})


def parse_row(o: RowOutcome, cells: dict[str, Any], ctx: Context) -> None:
    code, indicator, task = text(cells.get("indicator_code")), text(cells.get("indicator")), text(cells.get("task"))
    o.indicator_code, o.indicator_name = code or None, indicator or None
    for field_name, value in (("indicator_code", code), ("indicator", indicator)):
        if not value:
            col = next(c for c in COLUMNS if c.field == field_name)
            o.refuse("missing_value", col.name_zh, f"缺少“{col.name_zh}”", f"{field_name} is missing")
    if code and not _CODE.match(code):
        o.refuse("bad_indicator_code", "指标编号", f"指标编号格式不正确：{code}（应如 3.2.1）",
                 f"bad indicator code {code!r} (like 3.2.1)")
    if not task:
        if o.status != "error":
            o.status = "indicator"
        return
    command = _task_command(o, cells, task, ctx)
    if o.status != "error":
        o.command = command


def _task_command(o: RowOutcome, cells: dict[str, Any], task: str, ctx: Context) -> tk.DefineTask | None:
    lead_name = text(cells.get("lead_unit"))
    lead = None
    if not lead_name:
        o.refuse("missing_value", "牵头单位", "缺少“牵头单位”", "lead unit is missing")
    else:
        lead, why = ctx.unit(lead_name)
        if why:
            o.refuse("unknown_unit", "牵头单位", f"牵头单位“{lead_name}”{why}", f"lead unit {lead_name!r}: not one known unit")
    co: list[UUID] = []
    for name in (n.strip() for n in _SPLIT.split(text(cells.get("co_units"))) if n.strip()):
        unit, why = ctx.unit(name)
        if why:
            o.refuse("unknown_unit", "配合单位", f"配合单位“{name}”{why}", f"co-unit {name!r}: not one known unit")
        elif unit == lead or unit in co:
            o.refuse("repeated_unit", "配合单位", f"配合单位“{name}”重复或与牵头单位相同", f"co-unit {name!r} repeats")
        elif unit is not None:
            co.append(unit)
    raw_due = cells.get("deadline")
    due = parse_day(raw_due)
    if raw_due in (None, ""):
        o.refuse("missing_value", "完成时限", "缺少“完成时限”（无时限请填“长期”）", "deadline is missing (长期 for none)")
    elif isinstance(due, str):
        o.refuse("bad_date", "完成时限", f"完成时限无法识别：{due}", f"unreadable deadline {due!r}")
    raw_cadence = text(cells.get("cadence"))
    cadence = tk.parse_cadence(raw_cadence)
    if cadence is None:
        o.refuse("bad_cadence", "报送频次", f"报送频次无法识别：{raw_cadence}（如 一日一汇报、每周五报送、每月5日报送）",
                 f"unreadable cadence {raw_cadence!r}")
    if o.status == "error" or lead is None or cadence is None or isinstance(due, str):
        return None
    o.key = text(cells.get("key")) or f"{o.indicator_code}|{normal_name(task)}"
    o.task_id = derived_id("task", ctx.campaign_id, "import", o.key)
    measures = text(cells.get("measures")) or None
    try:
        return tk.DefineTask(command_id="check", task_id=o.task_id, campaign_id=ctx.campaign_id, name=task,
                             due_on=due, lead_unit_id=lead, co_unit_ids=tuple(co), measures=measures, cadence=cadence,
                             row_key=o.key, assign=True)
    except ValueError as err:  # a pydantic refusal: a name too long, a control character …
        o.refuse("invalid_value", None, f"内容不合法：{_first_error(err)}", f"invalid value: {_first_error(err)}")
        return None


def _first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"
    return str(err)


def _agree_on_indicators(outcomes: list[RowOutcome], ctx: Context) -> dict[str, str]:
    """One name per indicator code across the file and the campaign; the rows that disagree are refused."""
    names: dict[str, tuple[str, int]] = {}
    for o in outcomes:
        if o.status == "error" or o.indicator_code is None or o.indicator_name is None:
            continue
        name = o.indicator_name
        known = ctx.indicators.get(o.indicator_code)
        if known is not None and known["name"] != name:
            o.refuse("indicator_name_differs", "指标名称", f"指标 {o.indicator_code} 已有名称“{known['name']}”，与本行不一致",
                     f"indicator {o.indicator_code} is already named {known['name']!r}")
        elif o.indicator_code in names and names[o.indicator_code][0] != name:
            first = names[o.indicator_code]
            o.refuse("indicator_name_differs", "指标名称", f"指标 {o.indicator_code} 在第 {first[1]} 行名为“{first[0]}”，与本行不一致",
                     f"indicator {o.indicator_code} is named {first[0]!r} on row {first[1]}")
        else:
            names.setdefault(o.indicator_code, (name, o.row))
    return {code: name for code, (name, _) in names.items()}


def _same_task(existing: tk.Task, cmd: tk.DefineTask) -> bool:
    return (existing.name, existing.due_on, existing.lead_unit_id, set(existing.co_unit_ids), existing.measures,
            existing.cadence) == (cmd.name, cmd.due_on, cmd.lead_unit_id, set(cmd.co_unit_ids), cmd.measures,
                                  cmd.cadence)


def _against_the_store(o: RowOutcome, ctx: Context) -> None:
    """A task imported before (same key) is unchanged when its content is the same, else the row is refused."""
    if o.task_id is None or o.command is None:
        return
    existing = get_of_kind(ctx.reader, "task", o.task_id, tk.Task)
    if existing is None:
        return
    if _same_task(existing, o.command):
        o.status = "unchanged"
    else:
        o.refuse("task_changed", "任务", "该任务已导入且内容不同（修改请走任务变更，不能重复导入）",
                 "this task was imported before with other content")


# --- writing ----------------------------------------------------------------------------------------------


def write_rows(service: CommandService, ctx: Context, report: ImportReport, actor: Actor | Grant,
               progress: Progress | None) -> None:
    """The good rows in file order: their indicators first (parents before children), then their task."""
    todo = [o for o in report.outcomes if o.status in ("valid", "indicator")]
    for done, o in enumerate(todo, start=1):
        try:
            if o.indicator_code is not None:
                report.indicators_created += define_indicator_chain(service, ctx, o.indicator_code, actor)
            if o.command is not None:
                cmd = o.command.model_copy(update={"command_id": _command_id(o.command)})
                result = service.handle(cmd, actor)
                o.status = "unchanged" if result.replayed else "created"
        except DomainError as err:
            o.refuse(err.code, None, f"写入失败：{err.message_zh}", f"not written: {err.message_en}")
        if progress is not None:
            progress(done, len(todo))


def _command_id(cmd: tk.DefineTask) -> str:
    content = cmd.model_dump_json(exclude={"command_id"})
    return f"import:task:{cmd.task_id}:{_digest(content)}"


def define_indicator_chain(service: CommandService, ctx: Context, code: str, actor: Actor | Grant) -> int:
    """Define the indicator `code` and any ancestor the file names that does not exist yet; how many were defined."""
    parts = code.split(".")
    chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
    made, parent = 0, None
    for prefix in chain:
        known = ctx.indicators.get(prefix)
        if known is None:
            continue  # neither in the campaign nor in the file: the child hangs from the nearest ancestor that is
        indicator_id = known["indicator_id"]
        if known.get("new") and get_of_kind(ctx.reader, "indicator", indicator_id, Indicator) is None:
            service.handle(DefineIndicator(command_id=f"import:indicator:{indicator_id}", indicator_id=indicator_id,
                                           campaign_id=ctx.campaign_id, code=prefix, name=known["name"],
                                           parent_id=parent), actor)
            ctx.reader = StoreReader(service.app)  # the next rows read the indicator just written
            made += 1
        known["new"] = False
        parent = indicator_id
    return made


# --- the files handed back ----------------------------------------------------------------------------------

STATUS_ZH = {"created": "已导入", "unchanged": "未变化（已导入过）", "valid": "校验通过（未写入）",
             "indicator": "指标行", "error": "错误"}


def annotated_xlsx(report: ImportReport) -> bytes:
    """The uploaded rows with a 导入结果 and a 错误说明 column (error rows marked red), and a 汇总 sheet."""
    header = [*report.header, "导入结果", "错误说明"]
    lines: list[list[Any]] = [header]
    marked = []
    for o in report.outcomes:
        lines.append([*o.cells, STATUS_ZH.get(o.status, o.status), "；".join(e.message_zh for e in o.errors)])
        if o.status == "error":
            marked.append(len(lines))
    summary = report.as_dict()
    totals = [["项目", "数量"], ["数据行", summary["rows"]], ["新导入任务", summary["created"]],
              ["未变化", summary["unchanged"]], ["校验通过（试运行）", summary["valid"]], ["指标行", summary["indicator_rows"]],
              ["新建指标", summary["indicators_created"]], ["错误行", summary["error_rows"]],
              *(["文件错误", e.message_zh] for e in report.file_errors)]
    return workbook([("导入结果", lines, marked), ("汇总", totals, [])])


TEMPLATE_EXAMPLES = (
    ("3", "城市管理", "", "", "", "", "", "", ""),
    ("3.2", "市容环境", "", "", "", "", "", "", ""),
    ("3.2.1", "背街小巷环境卫生", "背街小巷垃圾日产日清", "城管局", "住建局、各街道办事处", "2022-03-31", "每周五报送",
     "每日巡查，发现问题当日整改", ""),
    ("3.2.1", "背街小巷环境卫生", "背街小巷乱贴乱画清理", "城管局", "", "长期", "一日一汇报", "", ""),
)
TEMPLATE_NOTES = (
    ("列", "说明"),
    ("指标编号", "必填。如 3、3.2、3.2.1；上级指标按编号前缀确定（3.2.1 属于 3.2）"),
    ("指标名称", "必填。同一指标编号各行须一致"),
    ("任务", "本行分解的任务；留空则本行只定义指标"),
    ("牵头单位", "有任务时必填，须与系统中的单位名称一致"),
    ("配合单位", "可多个，用顿号、逗号或分号分隔"),
    ("完成时限", "如 2022-03-31、2022/3/31、2022年3月31日；无时限填“长期”"),
    ("报送频次", "一日一汇报、每周五报送、每月5日报送、每月报送（月底）、不定期；遇节假日顺延至下一个工作日"),
    ("工作措施", "选填"),
    ("任务编号", "选填。填写后以此识别任务，重复导入不会重复创建；不填则以“指标编号+任务”识别"),
)


def template_xlsx() -> bytes:
    """The downloadable 任务分解表 template: the header, example rows and a 填写说明 sheet."""
    return workbook([("任务分解表", [TEMPLATE_HEADER, *TEMPLATE_EXAMPLES], []), ("填写说明", list(TEMPLATE_NOTES), [])])


