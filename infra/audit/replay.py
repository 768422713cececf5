"""Escalation replay (督办复盘): did each escalation step follow from the policy in force and the facts recorded then?

For every step recorded for a work item, the store is cut just before the step (what the deciding
command could read), the item is folded through the same adapters the escalator uses, the ladder
history and calendar are those recorded by then, and the domain's `pending_steps` is run with the
clock at the step's recorded time:

- followed (依规): the policy then called for this step, due at the recorded due time, at this level;
- manual (人工): HQ took it by hand (a person decided; the replay says when policy would have);
- not_called_for (无依据): the policy did not call for it then — not due yet, not in the ladder, the
  item closed or unknown, or a step whose id does not derive from its item (not written by the escalator).

Missing steps (应督未督): at each change of the item and at the end of the period, the steps the policy
had made due at least `grace` earlier while the item was open, and that were never taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.escalation.ladder import DEFAULT_LADDER, STEP_NAMES_ZH, due_steps, pending_steps, step_id_for
from domain.escalation.step import EscalationStepTaken
from domain.kernel.roles import SYSTEM_ROLES
from infra.audit.history import AsOfReader, Cutoff, History, Positioned
from infra.commands.escalation import ItemView, calendar_for, ladders_of, open_item
from infra.store.event_store import Dudao

DEFAULT_GRACE = timedelta(hours=1)
TOLERANCE = timedelta(seconds=1)


@dataclass
class StepVerdict:
    item_kind: str
    item_id: UUID
    step_name: str
    verdict: str  # followed | manual | not_called_for | missing
    detail: str
    step_id: UUID | None = None
    position: int | None = None
    level: int | None = None
    taken_at: datetime | None = None
    recorded_due_at: datetime | None = None
    policy_due_at: datetime | None = None
    actor: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731  # a one-line formatter, local to this method
        return {"item_kind": self.item_kind, "item_id": str(self.item_id), "step_name": self.step_name,
                "step_name_zh": STEP_NAMES_ZH.get(self.step_name, self.step_name), "verdict": self.verdict,
                "detail": self.detail, "step_id": str(self.step_id) if self.step_id else None, "position": self.position,
                "level": self.level, "taken_at": iso(self.taken_at), "recorded_due_at": iso(self.recorded_due_at),
                "policy_due_at": iso(self.policy_due_at), "actor": self.actor}


@dataclass
class ItemReplay:
    item_kind: str
    item_id: UUID
    steps: list[StepVerdict] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(s.verdict in ("followed", "manual") for s in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {"item_kind": self.item_kind, "item_id": str(self.item_id), "agrees": self.agrees,
                "steps": [s.as_json() for s in self.steps]}


@dataclass
class Replay:
    items: list[ItemReplay]
    until: datetime

    @property
    def agrees(self) -> bool:
        return all(i.agrees for i in self.items)

    def as_json(self) -> dict[str, Any]:
        return {"agrees": self.agrees, "until": self.until.isoformat(), "items": [i.as_json() for i in self.items]}


def recorded_steps(history: History, conn: Any, item_kind: str, item_id: UUID) -> list[Positioned]:
    """Every step event naming the item: at the ids the escalator derives, and any other the trail index knows."""
    ids = [step_id_for(item_kind, item_id, name) for name in STEP_NAMES_ZH]
    if conn is not None:
        rows = conn.execute("SELECT DISTINCT e.aggregate_id FROM audit_parties p JOIN audit_events e"
                            " ON e.notification_id = p.notification_id WHERE p.entity_id = %s AND e.event_type = %s",
                            (item_id, EscalationStepTaken.event_name)).fetchall()
        ids += [r["aggregate_id"] for r in rows if r["aggregate_id"] not in ids]
    history.load([i for i in ids if i not in history._cache])
    found = [e for i in ids for e in history.of(i) if isinstance(e.event, EscalationStepTaken)
             and (e.event.item_kind, e.event.item_id) == (item_kind, item_id)]
    return sorted(found, key=lambda e: e.position)


def replay_item(app: Dudao, conn: Any, item_kind: str, item_id: UUID, campaign_id: UUID, until: datetime,
                grace: timedelta = DEFAULT_GRACE, history: History | None = None) -> ItemReplay:
    history = history or History(app)
    out = ItemReplay(item_kind, item_id)
    steps = recorded_steps(history, conn, item_kind, item_id)
    for s in steps:
        out.steps.append(judge(history, s, campaign_id))
    out.steps += missing(history, item_kind, item_id, campaign_id, steps, until, grace)
    return out


def _view(history: History, cutoff: Cutoff, kind: str, item_id: UUID,
          campaign_id: UUID) -> tuple[AsOfReader, ItemView | None, Any, Any]:
    reader = AsOfReader(history, cutoff)
    calendar = calendar_for(reader, campaign_id)
    ladders = ladders_of(reader, campaign_id)
    return reader, open_item(reader, kind, item_id, calendar), calendar, ladders


def judge(history: History, s: Positioned, campaign_id: UUID) -> StepVerdict:
    e = s.event
    assert isinstance(e, EscalationStepTaken)
    taken = e.meta.recorded_at
    verdict = StepVerdict(e.item_kind, e.item_id, e.step_name, "followed", "", e.step_id, s.position, e.level, taken,
                          e.due_at, None, e.meta.actor.model_dump(mode="json"))
    if e.step_id != step_id_for(e.item_kind, e.item_id, e.step_name):
        return _not(verdict, "步骤编号不是由督办对象和步骤推出的：并非督办引擎写入",
                    "the step's id does not derive from its item and step: not written by the escalator")
    _, view, calendar, ladders = _view(history, Cutoff(position=s.position), e.item_kind, e.item_id, campaign_id)
    if view is None:
        return _not(verdict, "当时督办对象不存在", "the work item did not exist then")
    if view.item.closed:
        return _not(verdict, "当时督办对象已办结", "the work item was closed then")
    fresh = view.item.model_copy(update={"steps_done": frozenset()})
    due = next((d for d in pending_steps(fresh, ladders, calendar, taken) if d.step_name == e.step_name), None)
    verdict.policy_due_at = due.due_at if due else None
    manual = e.meta.actor.role not in SYSTEM_ROLES
    if manual:
        verdict.verdict = "manual"
        verdict.detail = ("由总指挥部人工执行" + (f"；按规则应于{due.due_at.isoformat()}到期" if due else "；现行规则无此步骤"))
        return verdict
    if due is None:
        return _not(verdict, "当时的督办阶梯没有这一步骤，或尚无到期时间", "the ladder then had no such step or no due time")
    if due.due_at > taken + TOLERANCE:
        return _not(verdict, f"按当时的规则尚未到期（应于{due.due_at.isoformat()}到期）",
                    f"not due yet under the policy then (due {due.due_at.isoformat()})")
    if abs(due.due_at - e.due_at) > TOLERANCE or due.level != e.level:
        return _not(verdict, f"记录的到期时间或级别与当时的规则不符（规则：{due.due_at.isoformat()}，级别{due.level}）",
                    f"recorded due time or level differs from the policy then ({due.due_at.isoformat()}, level {due.level})")
    ladder = ("默认督办阶梯" if due.ladder_effective_from == DEFAULT_LADDER.effective_from
              else f"督办阶梯（{due.ladder_effective_from.date().isoformat()}起施行）")
    verdict.detail = f"依当时的{ladder}于{due.due_at.isoformat()}到期"
    return verdict


def _not(v: StepVerdict, zh: str, en: str) -> StepVerdict:
    v.verdict, v.detail = "not_called_for", f"{zh} / {en}"
    return v


def missing(history: History, kind: str, item_id: UUID, campaign_id: UUID, steps: list[Positioned], until: datetime,
            grace: timedelta) -> list[StepVerdict]:
    """Steps due (by `grace`) while the item was open at one of its changes or at `until`, never taken."""
    taken_names = {s.event.step_name for s in steps if isinstance(s.event, EscalationStepTaken)}
    reader, view, _, _ = _view(history, Cutoff(recorded_by=until), kind, item_id, campaign_id)
    if view is None:
        return []
    instants = sorted({(e.position, e.event.meta.recorded_at) for agg in reader.touched for e in history.of(agg)
                       if e.event.meta.recorded_at <= until})
    checks = [(Cutoff(position=p), t) for p, t in instants] + [(Cutoff(recorded_by=until), until)]
    found: dict[str, StepVerdict] = {}
    for cutoff, at in checks:
        _, before, calendar, ladders = _view(history, cutoff, kind, item_id, campaign_id)
        if before is None:
            continue
        done = frozenset(s.event.step_name for s in steps
                         if isinstance(s.event, EscalationStepTaken) and s.event.meta.recorded_at < at)
        for d in due_steps(before.item.model_copy(update={"steps_done": done}), ladders, calendar, at):
            if d.step_name not in taken_names and d.step_name not in found and d.due_at + grace <= at:
                found[d.step_name] = StepVerdict(
                    kind, item_id, d.step_name, "missing",
                    f"按当时的规则应于{d.due_at.isoformat()}执行，至{at.isoformat()}仍未执行 / due {d.due_at.isoformat()}, "
                    f"not taken by {at.isoformat()}", d.step_id, None, d.level, None, None, d.due_at, None)
    return list(found.values())


def items_of_case(history: History, case_id: UUID) -> list[tuple[str, UUID]]:
    """The work items a case rests on: its basis's items, and the items of the steps it names."""
    from domain.consequences.accountability import AccountabilityCase

    reader = AsOfReader(history)
    case = reader.get("accountability_case", case_id, AccountabilityCase)
    if case is None:
        return []
    items: list[tuple[str, UUID]] = []
    for ref in case.basis:
        if ref.kind == "escalation":
            step = next((e.event for e in history.of(ref.id) if isinstance(e.event, EscalationStepTaken)), None)
            if step is not None:
                items.append((step.item_kind, step.item_id))
        elif ref.kind not in ("bulletin", "summons", "accountability_case"):
            items.append((ref.kind, ref.id))
    return list(dict.fromkeys(items))


def replay(app: Dudao, conn: Any, items: list[tuple[str, UUID]], campaign_id: UUID, until: datetime,
           grace: timedelta = DEFAULT_GRACE) -> Replay:
    history = History(app)
    return Replay([replay_item(app, conn, k, i, campaign_id, until, grace, history) for k, i in items], until)


def items_of_campaign(conn: Any, campaign_id: UUID, since: datetime | None, until: datetime) -> list[tuple[str, UUID]]:
    """Every work item of the campaign (the open-work projection enumerates them; each is judged from the store)."""
    rows = conn.execute("SELECT item_kind, item_id FROM work_items WHERE campaign_id = %s ORDER BY item_kind, item_id",
                        (campaign_id,)).fetchall()
    found = [(r["item_kind"], r["item_id"]) for r in rows]
    steps = conn.execute("SELECT DISTINCT payload->>'item_kind' AS k, (payload->>'item_id')::uuid AS i FROM audit_events"
                         " WHERE event_type = %s AND campaign_id = %s AND recorded_at <= %s"
                         " AND (%s::timestamptz IS NULL OR recorded_at >= %s)",
                         (EscalationStepTaken.event_name, campaign_id, until, since, since)).fetchall()
    return list(dict.fromkeys([*found, *((r["k"], r["i"]) for r in steps)]))
