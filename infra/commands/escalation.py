"""Handlers for the escalation ladder (督办阶梯), the ranking policy and taking a ladder step (执行督办步骤).

Taking a step re-reads the work item from its own aggregates (never from a projection), so the
decision judges fresh state. Each kind of work item has an adapter in `ITEM_ADAPTERS` that folds
its aggregates into a `WorkItem` plus the template fields of its notices; tasks and liaison
duties plug in with one more adapter. Who is told comes from the structure and matrix read models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from domain.escalation import ladder as esc
from domain.kernel.calendar import WorkCalendar
from domain.escalation.step import StepParties, StepRefs, TakeEscalationStep, take_escalation_step
from domain.escalation.notice import NOTICE_NAMES_ZH, Notice, Party, notice_work_item
from domain.kernel.timefmt import format_zh
from domain.kernel.roles import HQ_ROLES, STEP_ROLES
from domain.policy.campaign import CampaignPolicy, PolicyRefs, campaign_calendar, policy_id_for
from domain.problem import Problem
from domain.structure.campaign import Campaign
from domain.structure.person import Person
from domain.escalation.work_item import WorkItem, extension_request_work_item, problem_work_item
from infra.calendars import official_calendar
from infra.commands import Handler, Reader, register
from infra.commands.references import KindIn
from projections.escalation_lists import hq_unit, place_name, step_parties

# The latest local calendar days are used: a decision and the escalator must count on the same calendar.
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


def calendar_for(reader: Reader, campaign_id: UUID) -> WorkCalendar:
    """The national calendar with the campaign's local days off and make-up working days (latest version)."""
    return campaign_calendar(official_calendar(), reader.get("campaign_policy", policy_id_for(campaign_id), CampaignPolicy), LATEST)


def actor_unit_ids(reader: Reader) -> frozenset[UUID]:
    """The units the acting person belongs to (none for a process or an unknown person)."""
    actor = reader.actor
    if actor is None or actor.person_id is None:
        return frozenset()
    person = reader.get("person", actor.person_id, Person)
    return frozenset(person.memberships) if person is not None else frozenset()


def ladders_of(reader: Reader, campaign_id: UUID) -> tuple[esc.Ladder, ...]:
    policy = reader.get(esc.POLICY_KIND, esc.escalation_policy_id(campaign_id), esc.EscalationPolicy)
    return policy.ladders if policy is not None else ()


# --- work-item adapters --------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    """A work item folded from its aggregates, and how its notices describe it (subject, place)."""

    item: WorkItem
    fields: dict[str, object] = field(default_factory=dict)
    parties: StepParties | None = None  # who is told, when the kind says so itself (else from the matrix)


ItemAdapter = Callable[[Reader, UUID, WorkCalendar], ItemView | None]
ITEM_ADAPTERS: dict[str, ItemAdapter] = {}


def item_adapter(kind: str) -> Callable[[ItemAdapter], ItemAdapter]:
    def add(fn: ItemAdapter) -> ItemAdapter:
        ITEM_ADAPTERS[kind] = fn
        return fn
    return add


def open_item(reader: Reader, kind: str, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    adapter = ITEM_ADAPTERS.get(kind)
    return adapter(reader, item_id, calendar) if adapter is not None else None


@item_adapter("problem")
def problem_item(reader: Reader, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    p = reader.get("problem", item_id, Problem)
    if p is None:
        return None
    original = reader.get("problem", p.relapse_of, Problem) if p.relapse_of else None
    return ItemView(problem_work_item(p, original=original), {"subject": p.description})


@item_adapter("notice")
def notice_item(reader: Reader, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    n = reader.get("notice", item_id, Notice)
    if n is None:
        return None
    # A notice about a notice never escalates, so its subject need not be read (no chains).
    subject = open_item(reader, n.subject_kind, n.subject_id, calendar) if n.subject_kind != "notice" else None
    item = notice_work_item(n, subject_open=subject is None or not subject.item.closed)
    what = subject.fields.get("subject") if subject else None
    text = f"{format_zh(n.issued_at)}发出的{NOTICE_NAMES_ZH[n.notice_kind]}" + (f"（关于“{what}”）" if what else "")
    return ItemView(item.model_copy(update={"place_id": subject.item.place_id if subject else None}),
                    {"subject": text})


@item_adapter("extension_request")
def extension_item(reader: Reader, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    problem_id = reader.query(_parent_of, "extension_request", item_id)
    p = reader.get("problem", problem_id, Problem) if problem_id else None
    if p is None:
        return None
    hq = reader.query(hq_unit, p.campaign_id)
    item = extension_request_work_item(p, calendar, hq["unit_id"] if hq else None)
    if item is None or item.item_id != item_id:  # decided, or superseded by a later request
        item = WorkItem(item_kind="extension_request", item_id=item_id, campaign_id=p.campaign_id, closed=True)
    return ItemView(item, {"subject": f"关于“{p.description}”的延期申请"})


def _parent_of(conn: Any, kind: str, item_id: UUID) -> UUID | None:
    row = conn.execute("SELECT parent_id FROM work_items WHERE item_kind = %s AND item_id = %s",
                       (kind, item_id)).fetchone()
    return None if row is None else (row["parent_id"] if isinstance(row, dict) else row[0])


# --- gather --------------------------------------------------------------------------------------


def parties_for(reader: Reader, item: WorkItem) -> StepParties:
    found = reader.query(step_parties, item.campaign_id, item.responsible_unit_id, item.place_id)
    return StepParties(**{
        role: tuple(Party(party_kind=r["party_kind"], party_id=r["party_id"], name=r["name"]) for r in rows)
        for role, rows in found.items()
    })


def gather_step(cmd: TakeEscalationStep, reader: Reader) -> StepRefs:
    calendar = calendar_for(reader, cmd.campaign_id)
    ladders = ladders_of(reader, cmd.campaign_id)
    view = open_item(reader, cmd.item_kind, cmd.item_id, calendar)
    if view is None or view.item.campaign_id != cmd.campaign_id:
        return StepRefs(item=None, calendar=calendar, ladders=ladders)
    fields = dict(view.fields)
    fields.setdefault("place", reader.query(place_name, view.item.place_id) or "相关点位")
    return StepRefs(item=view.item, calendar=calendar, ladders=ladders,
                    parties=view.parties or parties_for(reader, view.item), fields=fields)


def gather_policy(cmd: esc.SetEscalationLadder | esc.SetRankingPolicy, reader: Reader) -> PolicyRefs:
    return PolicyRefs(campaign_exists=reader.get("campaign", cmd.campaign_id, Campaign) is not None)


def _policy_id(cmd: esc.SetEscalationLadder | esc.SetRankingPolicy) -> UUID:
    return esc.escalation_policy_id(cmd.campaign_id)


register(
    Handler(esc.SetEscalationLadder, esc.POLICY_KIND, _policy_id, esc.set_escalation_ladder, gather_policy,
            roles=HQ_ROLES),
    Handler(esc.SetRankingPolicy, esc.POLICY_KIND, _policy_id, esc.set_ranking_policy, gather_policy, roles=HQ_ROLES),
    Handler(TakeEscalationStep, esc.STEP_KIND, lambda cmd: cmd.step_id, take_escalation_step, gather_step,
            roles=STEP_ROLES, refs={"item_id": KindIn("item_kind", missing="work_item_not_found")}),
)
