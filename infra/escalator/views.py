"""What the escalation list and the bulletin draft show, computed from read-model rows at an instant.

Each open escalation row says what is overdue, since when and for how many working hours (the
item's clock, parked time excluded), the level reached, and which step comes next and when
(`next_step` under the campaign's ladder history). The bulletin draft is `draft_contents` over the
period's 按期整改率 per unit (from the evaluation metrics, `infra.evaluation.bulletin_rankings`) and the
level-3 listings not yet in an issued bulletin.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from uuid import UUID

from domain.escalation.ladder import STEP_NAMES_ZH, next_step
from domain.kernel.timefmt import format_zh, to_local
from domain.consequences.ranking import LiaisonListing, ListedStep
from domain.escalation.work_item import threshold_at
from infra.escalator.schedule import Rules
from projections.work_items import work_item

Row = dict[str, Any]
LEVEL_NAMES_ZH = {0: "提醒", 1: "催办", 2: "督办", 3: "通报/约谈", 4: "问责"}
KIND_NAMES_ZH = {"problem": "问题", "notice": "通知签收", "extension_request": "延期申请", "task": "任务",
                 "task_report": "任务报送", "liaison_duty": "挂钩联系"}


def escalation_row(row: Row, rules: Rules, now: datetime) -> Row:
    """One list row: the item, who and where, level, overdue since when and how long, the next step."""
    hours = row["limit_working_hours"]
    deadline = rules.calendar.add_working_hours(row["opened_at"], hours) if row["deadline"] is None and hours else None
    item = work_item(row, deadline)
    due = threshold_at(item, rules.calendar, 0)  # the deadline as the item's clock has it (parking shifts it)
    overdue_since = due if due is not None and due <= now else None
    paused = [(row["parked_since"], None)] if row["parked_since"] is not None else []
    nxt = next_step(item, rules.ladders, rules.calendar, now)
    return {
        "item_kind": row["item_kind"], "item_kind_zh": KIND_NAMES_ZH.get(row["item_kind"], row["item_kind"]),
        "item_id": row["item_id"], "summary": row["summary"], "state": row["state"],
        "unit": _ref(row["unit_id"], row["unit_name"]), "place": _ref(row["place_id"], row["place_name"]),
        "grid": _ref(row["grid_id"], row["grid_name"]),
        "sub_command": _ref(row["sub_command_id"], row["sub_command_name"]), "bao_bao": row["bao_bao"],
        # 挂钩领导: the leaders linked to the place; where no link is defined, the 包保责任人 stands in.
        "liaison_leaders": row.get("liaison_leaders") or row["bao_bao"],
        "liaison_source": "liaison_link" if row.get("liaison_leaders") else "bao_bao" if row["bao_bao"] else None,
        "person_id": row["parent_id"] if row["item_kind"] == "liaison_duty" else None,
        "level": row["level"], "level_zh": LEVEL_NAMES_ZH.get(row["level"], ""), "steps_done": sorted(row["steps_done"]),
        "last_step_at": row["last_step_at"], "deadline": due or item.deadline, "parked": bool(paused),
        "overdue": overdue_since is not None, "overdue_since": overdue_since,
        "overdue_working_hours": (round(rules.calendar.working_hours_between(overdue_since, now, paused), 2)
                                  if overdue_since is not None else 0.0),
        "relapse_count": row["relapse_count"],
        "next_step": None if nxt is None else {
            "step_name": nxt.step_name, "step_name_zh": STEP_NAMES_ZH[nxt.step_name], "level": nxt.level,
            "due_at": nxt.due_at, "due": nxt.due_at <= now},
    }


def in_zone(value: Any, tz: tzinfo) -> Any:
    """Every datetime inside `value` (dicts, lists) shown in the campaign's time zone."""
    if isinstance(value, datetime):
        return to_local(value, tz)
    if isinstance(value, dict):
        return {k: in_zone(v, tz) for k, v in value.items()}
    if isinstance(value, list):
        return [in_zone(v, tz) for v in value]
    return value


def _ref(ref_id: UUID | None, name: str | None) -> Row | None:
    return None if ref_id is None else {"id": ref_id, "name": name}


def overview(rows: list[Row], top: int = 10) -> Row:
    """总指挥部总览: open escalations by level, the units, grids and sub-commands with most, the oldest."""
    def counts(key: str) -> list[Row]:
        c = Counter((r[key]["id"], r[key]["name"]) for r in rows if r[key] is not None)
        return [{"id": i, "name": n, "open": k} for (i, n), k in c.most_common(top)]

    oldest = sorted((r for r in rows if r["overdue"]), key=lambda r: -r["overdue_working_hours"])[:top]
    return {
        "total": len(rows), "overdue": sum(r["overdue"] for r in rows),
        "by_level": [{"level": lv, "level_zh": LEVEL_NAMES_ZH[lv], "open": sum(r["level"] == lv for r in rows)}
                     for lv in sorted(LEVEL_NAMES_ZH, reverse=True)],
        "by_kind": dict(Counter(r["item_kind"] for r in rows)),
        "by_unit": counts("unit"), "by_grid": counts("grid"), "by_sub_command": counts("sub_command"),
        "oldest": [{"item_kind": r["item_kind"], "item_id": r["item_id"], "summary": r["summary"],
                    "unit": r["unit"], "overdue_working_hours": r["overdue_working_hours"], "level": r["level"]}
                   for r in oldest],
    }


def sort_rows(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r["level"], -r["overdue_working_hours"], r["item_kind"], str(r["item_id"])))


def period_bounds(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the campaign's time zone."""
    return datetime.combine(start, time(0), tz), datetime.combine(end + timedelta(days=1), time(0), tz)


def listed_steps(rows: list[Row], already_listed: set[UUID]) -> list[ListedStep]:
    """The 列入通报 steps not yet listed in an issued bulletin, each with a one-line summary."""
    out = []
    for r in rows:
        if r["step_id"] in already_listed or r["item_kind"] == "liaison_duty":  # those have their own section
            continue
        where = f"{r['place_name']}：" if r["place_name"] else ""
        deadline = f"（期限{format_zh(r['deadline'])}）" if r["deadline"] else ""
        kind = KIND_NAMES_ZH.get(r["item_kind"], "事项")
        out.append(ListedStep(step_id=r["step_id"], unit_id=r["unit_id"], unit_name=r["unit_name"],
                              summary_zh=f"{where}{kind}“{_short(r['summary'])}”逾期未办结{deadline}"))
    return out


def _short(text: str | None, limit: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def liaison_listings(rows: list[Row], already_listed: set[UUID], leaders: dict[UUID, Row]) -> list[LiaisonListing]:
    """The 挂钩联系履职 section: per leader, the unmet liaison duties listed for 通报 and not yet in an issued one.

    `leaders` gives each leader's name, rank and how many periods they left unmet in all (`unmet_periods`).
    """
    by_leader: dict[UUID, list[Row]] = {}
    for r in rows:
        if r["item_kind"] == "liaison_duty" and r["step_id"] not in already_listed and r["parent_id"] is not None:
            by_leader.setdefault(r["parent_id"], []).append(r)
    out = []
    for person_id, listed in by_leader.items():
        who = leaders.get(person_id, {})
        unmet = max(int(who.get("unmet_periods") or 0), len(listed))
        places = tuple(dict.fromkeys(r["place_name"] or "挂钩联系点" for r in listed))
        name = who.get("name") or "挂钩领导"
        rank = f"（{who['rank']}）" if who.get("rank") else ""
        out.append(LiaisonListing(person_id=person_id, name=who.get("name"), rank=who.get("rank"),
                                  step_ids=tuple(r["step_id"] for r in listed), places_zh=places, unmet_periods=unmet,
                                  summary_zh=f"{name}{rank}挂钩联系{'、'.join(places)}未按要求督查，"
                                             f"累计{unmet}个周期未履职"))
    return sorted(out, key=lambda x: (-x.unmet_periods, x.name or "", str(x.person_id)))
