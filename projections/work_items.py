"""Open work (待办事项) for the escalator (督办引擎): one row per work item, its ladder steps, and the notices.

Every kind of work the ladder climbs on is a row of `work_items`: problems (folded with the
domain's own evolver and turned into a `WorkItem` by `problem_work_item`, so the row is what the
domain would compute), notices awaiting 签收, extension requests awaiting HQ's decision, unmet liaison
duties, tasks and their missed reports. A new kind adds its handlers here and nothing in the
escalator changes.

`row_version` is the notification id of the last event that changed a row (deterministic across
rebuilds): the escalator caches each item's next due instant against it. An extension request's
deadline is counted in working hours from `opened_at` (`limit_working_hours`) when the row is read,
because the calendar is not the projection's to know.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain import liaison as li
from domain import tasks as tk
from domain import problem as pr
from domain.kernel.base import events_of_kind, fold
from domain.escalation.step import EscalationStepTaken
from domain.escalation.notice import NOTICE_NAMES_ZH, NoticeAcknowledged, NoticeIssued
from domain.problem.state import Problem
from domain.escalation.work_item import WorkItem, extension_request_id, problem_work_item
from projections.base import Projection, RecordedEvent

EXTENSION_DECIDE_WITHIN_WORKING_HOURS = 8.0

DDL = (
    """CREATE TABLE IF NOT EXISTS work_items (
        item_kind text NOT NULL, item_id uuid NOT NULL, campaign_id uuid NOT NULL,
        responsible_unit_id uuid NULL, place_id uuid NULL, parent_id uuid NULL, subject_kind text NULL,
        summary text NOT NULL, state text NOT NULL, opened_at timestamptz NOT NULL,
        deadline timestamptz NULL, limit_working_hours double precision NULL, parked_since timestamptz NULL,
        relapse_of uuid NULL, relapse_count int NOT NULL DEFAULT 0, relapse_at timestamptz NULL,
        closed bool NOT NULL DEFAULT false, closed_at timestamptz NULL, last_submitted_at timestamptz NULL,
        steps_done text[] NOT NULL DEFAULT '{}', level int NOT NULL DEFAULT -1, last_step_at timestamptz NULL,
        row_version bigint NOT NULL, state_json jsonb NULL, PRIMARY KEY (item_kind, item_id))""",
    "CREATE INDEX IF NOT EXISTS work_items_open ON work_items (campaign_id) WHERE NOT closed",
    "CREATE INDEX IF NOT EXISTS work_items_parent ON work_items (parent_id) WHERE parent_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS work_items_relapse ON work_items (relapse_of) WHERE relapse_of IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS work_items_unit ON work_items (campaign_id, responsible_unit_id)",
    "CREATE INDEX IF NOT EXISTS work_items_changed ON work_items (row_version) WHERE NOT closed",
    """CREATE TABLE IF NOT EXISTS escalation_steps (
        step_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, item_kind text NOT NULL, item_id uuid NOT NULL,
        step_name text NOT NULL, level int NOT NULL, due_at timestamptz NOT NULL, taken_at timestamptz NOT NULL,
        responsible_unit_id uuid NULL, notice_id uuid NULL, summons_id uuid NULL, case_id uuid NULL,
        trigger text NOT NULL, notification_id bigint NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS escalation_steps_item ON escalation_steps (item_kind, item_id)",
    "CREATE INDEX IF NOT EXISTS escalation_steps_campaign ON escalation_steps (campaign_id, step_name, taken_at)",
    """CREATE TABLE IF NOT EXISTS notices (
        notice_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, notice_kind text NOT NULL,
        subject_kind text NOT NULL, subject_id uuid NOT NULL, recipients jsonb NOT NULL,
        recipient_ids uuid[] NOT NULL, channels text[] NOT NULL, text_zh text NOT NULL,
        issued_at timestamptz NOT NULL, ack_due_at timestamptz NOT NULL, acknowledged_at timestamptz NULL,
        acks jsonb NOT NULL DEFAULT '[]', escalation_step_id uuid NULL)""",
    "CREATE INDEX IF NOT EXISTS notices_recipients ON notices USING gin (recipient_ids)",
    "CREATE INDEX IF NOT EXISTS notices_campaign ON notices (campaign_id, issued_at)",
)

class WorkItemsProjection(Projection):
    """待办事项: work items with their clocks and steps taken, escalation steps, notices."""

    name = "work_items"
    tables = ("work_items", "escalation_steps", "notices")
    ddl = DDL

    def register(self) -> None:
        # Every problem event: the row folds the problem's whole state, so none may be skipped.
        self.on(*events_of_kind(pr.KIND))(problem_changed)
        self.on(NoticeIssued)(notice_issued)
        self.on(NoticeAcknowledged)(notice_acknowledged)
        self.on(EscalationStepTaken)(step_taken)
        self.on(li.LiaisonDutyReminded, li.LiaisonDutyFoundUnmet, li.LiaisonDutyResolved)(liaison_duty_changed)
        # Every task event: the task row and its missed-report rows fold the task's whole state.
        self.on(*events_of_kind(tk.KIND))(task_changed)


# --- problems ------------------------------------------------------------------------------------


def _problem(curs: Cursor[Any], problem_id: UUID) -> Problem | None:
    row = curs.execute("SELECT state_json FROM work_items WHERE item_kind = 'problem' AND item_id = %s",
                       (problem_id,)).fetchone()
    return None if row is None else Problem.model_validate(row["state_json"] if isinstance(row, dict) else row[0])


def _save_problem(curs: Cursor[Any], p: Problem, original: Problem | None, version: int) -> None:
    item = problem_work_item(p, original=original)
    cols = {"item_kind": "problem", "item_id": p.problem_id, "campaign_id": p.campaign_id,
            "responsible_unit_id": item.responsible_unit_id, "place_id": p.place_id, "summary": p.description,
            "state": p.state.value, "opened_at": p.reported_at, "deadline": item.deadline,
            "parked_since": p.parked_since, "relapse_of": p.relapse_of, "relapse_count": item.relapse_count,
            "relapse_at": item.relapse_at, "closed": item.closed, "closed_at": p.closed_at or p.ended_at,
            "last_submitted_at": p.last_submitted_at, "row_version": version,
            "state_json": Jsonb(p.model_dump(mode="json"))}
    _upsert(curs, cols)
    _cascade(curs, p.problem_id, item.closed, version)
    _extension(curs, p, version)


def _upsert(curs: Cursor[Any], cols: dict[str, Any]) -> None:
    names = ", ".join(cols)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in ("item_kind", "item_id"))
    curs.execute(f"INSERT INTO work_items ({names}) VALUES ({', '.join(['%s'] * len(cols))})"
                 f" ON CONFLICT (item_kind, item_id) DO UPDATE SET {updates}", tuple(cols.values()))


def _cascade(curs: Cursor[Any], subject_id: UUID, subject_closed: bool, version: int) -> None:
    """Notices about the item close with it (and reopen with it) unless acknowledged."""
    curs.execute(
        "UPDATE work_items SET closed = new.closed, row_version = %s"
        "  FROM (SELECT item_id, (state = 'acknowledged' OR subject_kind = 'notice' OR %s) AS closed"
        "          FROM work_items WHERE item_kind = 'notice' AND parent_id = %s) new"
        " WHERE work_items.item_kind = 'notice' AND work_items.item_id = new.item_id"
        "   AND work_items.closed IS DISTINCT FROM new.closed",
        (version, subject_closed, subject_id))


def _extension(curs: Cursor[Any], p: Problem, version: int) -> None:
    """The pending extension request (延期申请) is HQ's work item; any other request of the problem is over."""
    pending = p.pending_extension
    current = extension_request_id(p.problem_id, pending.requested_at) if pending else None
    curs.execute("UPDATE work_items SET closed = true, state = 'decided', row_version = %s"
                 " WHERE item_kind = 'extension_request' AND parent_id = %s AND item_id IS DISTINCT FROM %s"
                 "   AND NOT closed", (version, p.problem_id, current))
    if pending is None or current is None:
        return
    closed = p.state not in pr.OWED
    row = curs.execute("SELECT closed FROM work_items WHERE item_kind = 'extension_request' AND item_id = %s",
                       (current,)).fetchone()
    if row is not None and (row["closed"] if isinstance(row, dict) else row[0]) == closed:
        return
    _upsert(curs, {"item_kind": "extension_request", "item_id": current, "campaign_id": p.campaign_id,
                   "place_id": p.place_id, "parent_id": p.problem_id, "subject_kind": "problem",
                   "summary": f"延期申请（{pending.working_days}个工作日）：{p.description}", "state": "pending",
                   "opened_at": pending.requested_at, "limit_working_hours": EXTENSION_DECIDE_WITHIN_WORKING_HOURS,
                   "closed": closed, "row_version": version})


def problem_changed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, pr.ProblemEvent)
    state = fold("problem", [e], Problem, _problem(curs, e.problem_id))
    original = _problem(curs, state.relapse_of) if state.relapse_of else None
    _save_problem(curs, state, original, rec.notification_id)
    if isinstance(e, pr.RelapseRecorded):
        # Relapse counts follow the original case: every open relapse of it now counts one more.
        rows = curs.execute("SELECT item_id FROM work_items WHERE relapse_of = %s AND item_kind = 'problem'",
                            (e.problem_id,)).fetchall()
        for row in rows:
            relapse = _problem(curs, row["item_id"] if isinstance(row, dict) else row[0])
            if relapse is not None:
                _save_problem(curs, relapse, state, rec.notification_id)


# --- notices -------------------------------------------------------------------------------------


def notice_issued(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, NoticeIssued)
    curs.execute(
        "INSERT INTO notices (notice_id, campaign_id, notice_kind, subject_kind, subject_id, recipients, recipient_ids,"
        " channels, text_zh, issued_at, ack_due_at, escalation_step_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s) ON CONFLICT (notice_id) DO NOTHING",
        (e.notice_id, e.campaign_id, e.notice_kind, e.subject_kind, e.subject_id,
         Jsonb([r.model_dump(mode="json") for r in e.recipients]), [r.party_id for r in e.recipients],
         list(e.channels), e.text_zh, e.meta.recorded_at, e.ack_due_at, e.escalation_step_id))
    row = curs.execute("SELECT closed FROM work_items WHERE item_kind = %s AND item_id = %s",
                       (e.subject_kind, e.subject_id)).fetchone()
    subject_closed = bool(row["closed"] if isinstance(row, dict) else row[0]) if row is not None else False
    unit = next((r.party_id for r in e.recipients if r.party_kind == "unit"), None)
    _upsert(curs, {"item_kind": "notice", "item_id": e.notice_id, "campaign_id": e.campaign_id,
                   "responsible_unit_id": unit, "parent_id": e.subject_id, "subject_kind": e.subject_kind,
                   "summary": f"{NOTICE_NAMES_ZH[e.notice_kind]}：{e.text_zh}", "state": "issued",
                   "opened_at": e.meta.recorded_at, "deadline": e.ack_due_at,
                   "closed": e.subject_kind == "notice" or subject_closed, "row_version": rec.notification_id,
                   "place_id": _subject_place(curs, e.subject_kind, e.subject_id)})


def _subject_place(curs: Cursor[Any], kind: str, subject_id: UUID) -> UUID | None:
    row = curs.execute("SELECT place_id FROM work_items WHERE item_kind = %s AND item_id = %s",
                       (kind, subject_id)).fetchone()
    return None if row is None else (row["place_id"] if isinstance(row, dict) else row[0])


def notice_acknowledged(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, NoticeAcknowledged)
    ack = {"by_person_id": str(e.by_person_id) if e.by_person_id else None,
           "by_unit_id": str(e.by_unit_id) if e.by_unit_id else None, "at": e.meta.recorded_at.isoformat()}
    curs.execute("UPDATE notices SET acks = acks || %s, acknowledged_at = COALESCE(acknowledged_at, %s)"
                 " WHERE notice_id = %s", (Jsonb([ack]), e.meta.recorded_at, e.notice_id))
    curs.execute("UPDATE work_items SET state = 'acknowledged', closed = true, closed_at = COALESCE(closed_at, %s),"
                 " row_version = %s WHERE item_kind = 'notice' AND item_id = %s AND state <> 'acknowledged'",
                 (e.meta.recorded_at, rec.notification_id, e.notice_id))


# --- liaison duties (挂钩联系履职) ---------------------------------------------------------------------
# A duty is a row from its reminder on: closed (nothing to chase) until it is found unmet, so the reminder
# notice about it needs no 签收 chase; then open, due at its judgement instant and addressed to the HQ
# office, until resolved. Its ladder "reminder" step is the duty's own reminder before the period ended,
# so the row starts with that step done rather than telling HQ of a deadline already past.


def _liaison_duty(curs: Cursor[Any], duty_id: UUID) -> li.Duty | None:
    row = curs.execute("SELECT state_json FROM work_items WHERE item_kind = %s AND item_id = %s",
                       (li.ITEM_KIND, duty_id)).fetchone()
    return None if row is None else li.Duty.model_validate(row["state_json"] if isinstance(row, dict) else row[0])


def liaison_duty_changed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, (li.LiaisonDutyReminded, li.LiaisonDutyFoundUnmet, li.LiaisonDutyResolved))
    duty = fold(li.ITEM_KIND, [e], li.Duty, _liaison_duty(curs, e.duty_id))
    item = li.duty_work_item(duty)
    state = duty.resolution or ("unmet" if duty.found_unmet_at else "reminded")
    _upsert(curs, {"item_kind": li.ITEM_KIND, "item_id": duty.duty_id, "campaign_id": duty.campaign_id,
                   "responsible_unit_id": item.responsible_unit_id, "place_id": item.place_id,
                   "parent_id": duty.person_id, "subject_kind": "person",
                   "summary": duty.summary_zh or "挂钩联系履职提醒", "state": state,
                   "opened_at": duty.found_unmet_at or duty.reminded_at or e.meta.recorded_at,
                   "deadline": item.deadline, "closed": item.closed, "closed_at": duty.resolved_at,
                   "row_version": rec.notification_id, "state_json": Jsonb(duty.model_dump(mode="json"))})
    if isinstance(e, li.LiaisonDutyFoundUnmet):
        curs.execute("UPDATE work_items SET steps_done = array_append(steps_done, 'reminder')"
                     " WHERE item_kind = %s AND item_id = %s AND NOT ('reminder' = ANY(steps_done))",
                     (li.ITEM_KIND, duty.duty_id))
    if isinstance(e, li.LiaisonDutyResolved):
        _cascade(curs, duty.duty_id, True, rec.notification_id)


# --- tasks (任务分解) -----------------------------------------------------------------------------------
# A task is a row from its 交办 on (closed while defined only, claimed or done); each missed report
# (未按时报送) is a row of its own, parented by the task, due at the working instant after its day and
# with its reminder done (its day has passed), closed by a late report or by the task leaving work.


def _task(curs: Cursor[Any], task_id: UUID) -> tk.Task | None:
    row = curs.execute("SELECT state_json FROM work_items WHERE item_kind = %s AND item_id = %s",
                       (tk.TASK_ITEM, task_id)).fetchone()
    return None if row is None else tk.Task.model_validate(row["state_json"] if isinstance(row, dict) else row[0])


def task_changed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, tk.TaskEvent)
    task = fold(tk.KIND, [e], tk.Task, _task(curs, e.task_id))
    item = tk.task_work_item(task)
    _upsert(curs, {"item_kind": tk.TASK_ITEM, "item_id": task.task_id, "campaign_id": task.campaign_id,
                   "responsible_unit_id": item.responsible_unit_id, "summary": f"任务：{task.name}",
                   "state": task.state.value, "opened_at": task.assigned_at or e.meta.recorded_at,
                   "deadline": item.deadline, "closed": item.closed, "closed_at": task.claimed_at or task.completed_at,
                   "row_version": rec.notification_id, "state_json": Jsonb(task.model_dump(mode="json"))})
    _cascade(curs, task.task_id, item.closed, rec.notification_id)
    if isinstance(e, tk.TaskReportMissed):
        _upsert(curs, {"item_kind": tk.REPORT_ITEM, "item_id": tk.report_item_id(task.task_id, e.due_on),
                       "campaign_id": task.campaign_id, "responsible_unit_id": task.lead_unit_id,
                       "parent_id": task.task_id, "subject_kind": tk.TASK_ITEM,
                       "summary": f"任务“{task.name}”{e.due_on:%m月%d日}应报送的进度未报送", "state": "missed",
                       "opened_at": e.meta.recorded_at, "deadline": e.overdue_from, "closed": False,
                       "steps_done": sorted(tk.REPORT_STEPS_DONE), "row_version": rec.notification_id})
    for day in task.missed:  # a late report, or the task leaving work, closes what it owed (and its notices)
        if tk.is_report_item_open(task, day):
            continue
        item_id = tk.report_item_id(task.task_id, day)
        closed = curs.execute("UPDATE work_items SET closed = true, state = %s, closed_at = COALESCE(closed_at, %s),"
                              " row_version = %s WHERE item_kind = %s AND item_id = %s AND NOT closed",
                              ("reported" if task.report_for(day) else task.state.value, e.meta.recorded_at,
                               rec.notification_id, tk.REPORT_ITEM, item_id))
        if closed.rowcount:
            _cascade(curs, item_id, True, rec.notification_id)


# --- escalation steps ----------------------------------------------------------------------------


def step_taken(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, EscalationStepTaken)
    curs.execute(
        "INSERT INTO escalation_steps (step_id, campaign_id, item_kind, item_id, step_name, level, due_at, taken_at,"
        " responsible_unit_id, notice_id, summons_id, case_id, trigger, notification_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (step_id) DO NOTHING",
        (e.step_id, e.campaign_id, e.item_kind, e.item_id, e.step_name, e.level, e.due_at, e.meta.recorded_at,
         e.responsible_unit_id, e.notice_id, e.summons_id, e.case_id, e.trigger, rec.notification_id))
    curs.execute(
        "UPDATE work_items SET steps_done = array_append(steps_done, %s), level = GREATEST(level, %s),"
        " last_step_at = GREATEST(last_step_at, %s), row_version = %s"
        " WHERE item_kind = %s AND item_id = %s AND NOT (%s = ANY(steps_done))",
        (e.step_name, e.level, e.meta.recorded_at, rec.notification_id, e.item_kind, e.item_id, e.step_name))


# --- reading rows back as work items -------------------------------------------------------------


def work_item(row: dict[str, Any], deadline: Any = None) -> WorkItem:
    """The `WorkItem` of a row; `deadline` for rows whose deadline is counted at read time."""
    paused = ((row["parked_since"], None),) if row["parked_since"] is not None else ()
    return WorkItem(item_kind=row["item_kind"], item_id=row["item_id"], campaign_id=row["campaign_id"],
                    responsible_unit_id=row["responsible_unit_id"], place_id=row["place_id"],
                    deadline=row["deadline"] or deadline, paused=paused, relapse_count=row["relapse_count"],
                    relapse_at=row["relapse_at"], closed=row["closed"], steps_done=frozenset(row["steps_done"]))
