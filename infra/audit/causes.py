"""Causes (起因): which stored event a process's command answers, for its events' `causation_id`.

An escalation step falls due because of the event that last set its work item's clock: the 交办
or extension that set the deadline, the parking or resumption that moved it, the relapse that
counted up, the notice issued with its 签收 time limit. `step_cause` finds it by folding the
item's own aggregates one event back at a time, as the escalation adapters see them, until the
item's clock (deadline, pauses, relapse count and time) reads differently. A 黑榜 consequence is
caused by the issuing of the bulletin that listed the unit (`bulletin_issued`).

The escalator's other rounds name theirs likewise. A liaison duty's reminder or unmet record
(挂钩联系履职) answers the link that owes the visits (its `LiaisonLinked`, or the change that last
moved it); its resolution answers what met or excused it — the latest counted visit (a late
upload, 补录), the exemption it now counts, else the link's end (`duty_cause`). A missed progress
report (任务未按时报送) answers the 交办 that started the task's reporting (`task_report_cause`).
"""

from __future__ import annotations

from uuid import UUID

from domain import liaison as li
from domain.consequences.bulletin import BulletinIssued
from domain.escalation.work_item import WorkItem
from domain.tasks.events import TaskAssigned, TaskDefined
from infra.audit.history import AsOfReader, Cutoff, History, Positioned
from infra.commands.escalation import calendar_for, open_item
from infra.store.event_store import Dudao


def clock_of(item: WorkItem) -> tuple[object, ...]:
    """What of a work item decides when its steps fall due."""
    return (item.deadline, item.paused, item.relapse_count, item.relapse_at)


def step_cause(app: Dudao, item_kind: str, item_id: UUID, campaign_id: UUID) -> UUID | None:
    """The uuid of the event that set the item's clock as it reads now (None for an unknown item)."""
    history = History(app)
    reader = AsOfReader(history)
    calendar = calendar_for(reader, campaign_id)
    item_reader = reader.at(Cutoff())
    view = open_item(item_reader, item_kind, item_id, calendar)
    if view is None:
        return None
    now = clock_of(view.item)
    candidates = sorted((e for agg in item_reader.touched for e in history.of(agg)), key=lambda e: e.position)
    for event in reversed(candidates):
        before = open_item(reader.at(Cutoff(position=event.position)), item_kind, item_id, calendar)
        if before is None or clock_of(before.item) != now:
            return event.uuid
    return candidates[0].uuid if candidates else None


def bulletin_issued(app: Dudao, bulletin_id: UUID) -> UUID | None:
    """The uuid of the bulletin's issuing event (通报印发), if it was issued."""
    found = [e for e in History(app).of(bulletin_id) if isinstance(e.event, BulletinIssued)]
    return found[-1].uuid if found else None


def _last(events: list[Positioned]) -> UUID | None:
    return events[-1].uuid if events else None


def duty_cause(app: Dudao, cmd: li.RemindLiaisonDuty | li.RecordUnmetLiaisonDuty | li.ResolveLiaisonDuty,
               verdict: li.Verdict | None) -> UUID | None:
    """The uuid of the event a liaison duty command answers: the link's, or (a resolution) what met or excused it."""
    history = History(app)
    leader = history.of(li.liaison_id_for(cmd.person_id))
    link = [e for e in leader if isinstance(e.event, (li.LiaisonLinked, li.LiaisonLinkEnded))
            and e.event.link_id == cmd.link_id]
    if not isinstance(cmd, li.ResolveLiaisonDuty) or verdict is None:
        return _last(link)
    if verdict.status in ("met", "met_late") and verdict.visits:
        visit = max(verdict.visits, key=lambda v: (v.recorded_at, str(v.visit_id)))
        found = _last([e for e in history.of(visit.visit_id) if e.event.meta.recorded_at <= verdict.as_of])
        if found is not None:
            return found
    exempted = [e for e in leader if isinstance(e.event, (li.DutyExemptionGranted, li.DutyExemptionRevoked))
                and e.event.exemption_id in verdict.exemption_ids]
    return _last(exempted) if verdict.status == "exempt" and exempted else _last(link)


def task_report_cause(app: Dudao, task_id: UUID) -> UUID | None:
    """The uuid of the 交办 that started the task's reporting (its definition, if it was never handed over)."""
    events = History(app).of(task_id)
    return _last([e for e in events if isinstance(e.event, TaskAssigned)]) or _last(
        [e for e in events if isinstance(e.event, TaskDefined)])
