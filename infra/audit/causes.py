"""Causes (起因): which stored event a process's command answers, for its events' `causation_id`.

An escalation step falls due because of the event that last set its work item's clock: the 交办
or extension that set the deadline, the parking or resumption that moved it, the relapse that
counted up, the notice issued with its 签收 time limit. `step_cause` finds it by folding the
item's own aggregates one event back at a time, as the escalation adapters see them, until the
item's clock (deadline, pauses, relapse count and time) reads differently. A 黑榜 consequence is
caused by the issuing of the bulletin that listed the unit (`bulletin_issued`).
"""

from __future__ import annotations

from uuid import UUID

from domain.consequences.bulletin import BulletinIssued
from domain.escalation.work_item import WorkItem
from infra.audit.history import AsOfReader, Cutoff, History
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
