"""`dudao demo`: loads the 高安 2021 command structure (infra/data/gaoan-2021.json, from the
campaign's own 简报) through the real command path, on a simulated clock starting at launch — or, run
against a live drill deployment (演练模式), on its shared drill clock, moved to the launch if behind it, so
the live escalator, projector and API see the demo's time too.

Every command id is derived from the data, so re-running the demo writes nothing new. Lead units
that the source does not name are invented for the demo and marked `invented` (虚构).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any, Callable, Protocol
from uuid import UUID

from domain.kernel.base import Actor, Command, derived_id
from domain.kernel.calendar import CHINA_TZ
from domain.structure.campaign import StartCampaign
from domain.structure.place import RegisterPlace
from domain.structure.responsibility import AssignResponsibility
from domain.structure.unit import RegisterUnit
from infra.clock import SimulatedClock
from infra.commands.service import CommandService
from infra.store.event_store import Dudao

DEMO_KEY = "gaoan-2021"
ACTOR = Actor(person_id=derived_id("demo", DEMO_KEY, "admin"), role="admin", name="演示数据导入")
INVENTED_NOTE = "演示虚构：来源未列出该网格的牵头单位"
# 市直部门 names used for the grids whose lead unit the source does not name (invented for the demo).
INVENTED_LEADS = (
    "住建局", "城管局", "公安局", "交通运输局", "教体局", "卫健委", "市场监管局", "生态环境局", "自然资源局",
    "商务局", "民政局", "文广新旅局", "财政局", "发改委", "工信局", "水利局", "农业农村局", "林业局",
    "应急管理局", "司法局", "审计局", "统计局", "税务局", "供电公司", "邮政公司", "团市委", "妇联",
    "总工会", "科协", "残联",
)


def scenario() -> dict[str, Any]:
    return json.loads(resources.files("infra").joinpath("data/gaoan-2021.json").read_text(encoding="utf-8"))


def demo_clock(data: dict[str, Any]) -> SimulatedClock:
    launched = date.fromisoformat(data["campaign"]["launched_on"])
    return SimulatedClock(datetime(launched.year, launched.month, launched.day, 9, 0, tzinfo=CHINA_TZ))


class DemoClock(Protocol):
    """What the demo moves: its own simulated clock, or a live drill deployment's shared one."""

    def __call__(self) -> datetime: ...

    def set(self, when: datetime) -> None: ...

    def advance(self, delta: timedelta) -> datetime: ...


@dataclass
class DemoLoader:
    """Issues the demo's commands one by one, each a second after the previous on the demo clock."""

    service: CommandService
    clock: DemoClock
    campaign_id: UUID = field(default_factory=lambda: derived_id("demo", DEMO_KEY, "campaign"))
    written: int = 0
    commands: int = 0

    def send(self, key: str, build: type[Command], **fields: Any) -> None:
        self.clock.advance(timedelta(seconds=1))
        cmd = build(command_id=f"demo:{DEMO_KEY}:{key}", **fields)
        result = self.service.handle(cmd, ACTOR)
        self.commands += 1
        self.written += 0 if result.replayed else len(result.events)

    def unit_id(self, name: str) -> UUID:
        return derived_id("demo", DEMO_KEY, "unit", name)

    def place_id(self, name: str) -> UUID:
        return derived_id("demo", DEMO_KEY, "place", name)

    def unit(self, name: str, kind: str, parent: str | None, invented: bool = False) -> UUID:
        uid = self.unit_id(name)
        self.send(f"unit:{name}", RegisterUnit, unit_id=uid, campaign_id=self.campaign_id, name=name, unit_kind=kind,
                  parent_id=self.unit_id(parent) if parent else None, invented=invented,
                  note=INVENTED_NOTE if invented else None)
        return uid

    def place(self, name: str, kind: str, parent: str | None = None, number: int | None = None) -> UUID:
        pid = self.place_id(name)
        self.send(f"place:{name}", RegisterPlace, place_id=pid, campaign_id=self.campaign_id, name=name,
                  place_kind=kind, parent_id=self.place_id(parent) if parent else None, number=number)
        return pid

    def lead(self, place_name: str, unit_name: str, effective: datetime) -> None:
        self.send(f"lead:{place_name}", AssignResponsibility, campaign_id=self.campaign_id, scope_kind="place",
                  scope_id=self.place_id(place_name), party_kind="unit", party_id=self.unit_id(unit_name),
                  role="lead", effective_from=effective)


def load_structure(loader: DemoLoader, data: dict[str, Any]) -> dict[str, Any]:
    """HQ, office, 3 groups, 11 sub-commands, 32 grids (communities nested), a lead unit per grid."""
    c, hq = data["campaign"], data["headquarters"]
    launched = loader.clock()
    loader.send("campaign", StartCampaign, campaign_id=loader.campaign_id, name=c["name"],
                jurisdiction=c["jurisdiction"], launched_on=date.fromisoformat(c["launched_on"]), goals=tuple(c["goals"]))
    loader.unit(hq["name"], "hq", None)
    loader.unit(hq["office"]["name"], "office", hq["name"])
    for group in hq["groups"]:
        loader.unit(group, "group", hq["name"])
    for sub in hq["sub_commands"]:
        loader.unit(sub, "sub_command", hq["name"])
    invented = iter(INVENTED_LEADS)
    leads: dict[str, tuple[str, bool]] = {}
    for grid in data["grids"]:
        loader.place(grid["name"], "grid", number=grid["number"])
        if grid.get("community"):
            loader.place(grid["community"], "community", parent=grid["name"])
        named = grid.get("lead_unit")
        leads[grid["name"]] = (named, False) if named else (next(invented), True)
    for unit_name, is_invented in sorted(set(leads.values())):
        loader.unit(unit_name, "department", hq["name"], invented=is_invented)
    for grid_name, (unit_name, _) in leads.items():
        loader.lead(grid_name, unit_name, launched)
    return {"grids": len(data["grids"]), "lead_units_named_by_source": sum(not inv for _, inv in leads.values()),
            "lead_units_invented": sum(inv for _, inv in leads.values())}


def run_demo(app: Dudao, catch_up: Callable[[], None] | None = None, live: DemoClock | None = None) -> dict[str, Any]:
    """Load the demo into the store behind `app`, with a command service on the demo's own clock — or on `live`, a
    drill deployment's shared clock, moved to the demo's start when it reads earlier (it never goes back).

    `catch_up` (the projector's) brings the read models up to date between stages, so routing
    reads the matrix as a live system would.
    """
    data = scenario()
    clock: DemoClock = demo_clock(data)
    if live is not None:
        if live() < clock():
            live.set(clock())
        clock = live
    loader = DemoLoader(CommandService(app, clock), clock)
    summary = load_structure(loader, data)
    if catch_up is not None:
        catch_up()
    from infra.demo.first_batch import load_first_batch  # it builds on this module's loader

    summary["first_batch"] = load_first_batch(loader, data, catch_up=catch_up)
    from infra.demo.escalation import continue_through_january, database_url_of  # builds on the first batch
    from infra.demo.leadership import Leadership  # the city leadership's liaison duties, met or not in January
    from infra.demo.tasks import Decomposition  # the 任务分解表, imported on 01-04 and reported on through January

    leadership, decomposition = Leadership(loader, data), Decomposition(loader, data, catch_up)
    summary["leadership"] = leadership.setup()
    summary["january"] = continue_through_january(loader, data, daily=(leadership.on_day, decomposition.on_day))
    summary["leadership"].update(leadership.summary(database_url_of(loader)))
    summary["tasks"] = decomposition.summary()
    return {"campaign_id": str(loader.campaign_id), "commands": loader.commands, "events_written": loader.written, **summary}
