"""The 高安 first batch (第一批问题清单) for `dudao demo`: the 检查督导组's window of 2021-12-14 to 12-19.

Every day the group visits several grids; each visit is uploaded in one piece (those of Saturday
12-18 only on Monday, offline entry) and its findings become problems, handed to the grid's lead
unit, acknowledged, rectified with photos, re-inspected by a supervisor outside the unit and
closed. The figures follow the 简报 in gaoan-2021.json: 第三网格 87 sanitation problems all
rectified, 第九网格 20 solved, 第十四网格 72 with 30 rectified; the other grids have a few each,
one reworked, one transferred, one parked and one extended. Sub-places (点位), people and their
names are invented for the demo and marked so. Ids and command ids derive from keys, so a second
run writes nothing; the plan is made first, then its steps run in time order on the demo clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from domain import problem as pr
from domain import visit as vi
from domain.kernel.base import Actor, Command, derived_id
from domain.kernel.calendar import CHINA_TZ
from domain.structure.person import JoinUnit, RegisterPerson
from domain.structure.place import RegisterPlace
from domain.policy.campaign import DeadlineLimit, TimeLimit
from domain.policy.commands import SetDeadlinePolicy
from domain.kernel.taxonomy import Severity
from infra.demo.structure import DEMO_KEY, INVENTED_LEADS, DemoLoader
from infra.store.uploads import cited_evidence, record_evidence

DAYS = tuple(date(2021, 12, d) for d in range(14, 20))
INVENTED = "演示虚构"
BALUAN = ("vehicle_parking", "illegal_building", "garbage_dumping", "clutter", "street_stalls", "greenery_damage",
          "illegal_ads", "sewage")
OTHER_CATEGORIES = ("sanitation", "illegal_building", "vehicle_parking", "clutter", "street_stalls", "illegal_ads",
                    "garbage_dumping", "sewage", "greenery_damage", "facilities")
OTHER_FATES = ("closed", "acknowledged", "closed", "submitted", "assigned", "verified", "closed", "acknowledged")
SPECIAL_FATES = {0: "rework", 1: "transfer", 6: "parked", 9: "extension"}  # index among the other grids' problems
DESCRIPTIONS = {
    "sanitation": ("路面散落垃圾未及时清扫", "垃圾桶满溢未及时清运", "绿化带内有白色垃圾", "公厕保洁不到位", "墙角积存污渍杂物"),
    "vehicle_parking": ("机动车占用人行道停放", "非机动车乱停乱放"), "illegal_building": ("楼顶违规搭建彩钢棚", "沿街违规搭建雨棚"),
    "garbage_dumping": ("建筑垃圾随意倾倒", "空地生活垃圾乱倒"), "clutter": ("楼道杂物乱堆", "门店外杂物堆放"),
    "street_stalls": ("流动摊贩占道经营", "店外出摊占道"), "greenery_damage": ("绿化带被踩踏毁坏", "毁绿种菜"),
    "illegal_ads": ("电线杆张贴小广告", "违规设置落地广告牌"), "sewage": ("餐饮店污水直排路面", "洗车污水乱排"),
    "facilities": ("人行道板破损", "路灯损坏不亮"),
}
POLICY = dict(default=TimeLimit(amount=3), limits=(
    DeadlineLimit(category="sanitation", limit=TimeLimit(amount=2)),
    DeadlineLimit(category="garbage_dumping", limit=TimeLimit(amount=2)),
    DeadlineLimit(category="vehicle_parking", limit=TimeLimit(amount=1)),
    DeadlineLimit(category="street_stalls", limit=TimeLimit(amount=1)),
    DeadlineLimit(category="sewage", limit=TimeLimit(amount=5)),
    DeadlineLimit(category="greenery_damage", limit=TimeLimit(amount=5)),
    DeadlineLimit(category="facilities", limit=TimeLimit(amount=5)),
    DeadlineLimit(category="illegal_building", limit=TimeLimit(amount=10)),
    DeadlineLimit(severity=Severity.SERIOUS, limit=TimeLimit(amount=1)),
))
RECTIFIED = frozenset({"closed", "verified", "rework"})  # rework here ends re-verified and closed


@dataclass(frozen=True)
class Planned:
    """One problem of the batch: where, what, which day it was found, and how far it gets (its fate)."""

    key: str
    grid: str
    place: str
    category: str
    severity: Severity
    day: date
    fate: str

    @property
    def problem_id(self) -> UUID:
        return derived_id("demo", DEMO_KEY, "problem", self.key)


def grid_leads(data: dict[str, Any]) -> dict[str, str]:
    """Each grid's lead unit name, as `infra.demo.structure.load_structure` assigns them."""
    invented = iter(INVENTED_LEADS)
    return {g["name"]: g.get("lead_unit") or next(invented) for g in data["grids"]}


def _problem(grid: dict[str, Any], n: int, place_no: int, category: str, day: date, fate: str,
             severity: Severity = Severity.NORMAL) -> Planned:
    return Planned(f"p{grid['number']:02d}-{n:03d}", grid["name"], f"{grid['name']}点位{place_no:02d}", category,
                   severity, day, fate)


def plan(data: dict[str, Any]) -> list[Planned]:
    """The batch: 87 in grid 3, 20 in grid 9, 72 in grid 14, three in each other grid; (place, category) unique."""
    out: list[Planned] = []
    others = 0
    for grid in data["grids"]:
        number = grid["number"]
        if number == 3:
            out += [_problem(grid, i, i + 1, "sanitation", DAYS[i % 3], "closed") for i in range(87)]
        elif number == 9:
            out += [_problem(grid, i, i // 4 + 1, ("sanitation", "clutter", "illegal_ads", "vehicle_parking")[i % 4],
                             DAYS[1], "closed") for i in range(20)]
        elif number == 14:
            fates = ["closed"] * 20 + ["acknowledged"] * 16 + ["closed"] * 10 + ["acknowledged"] * 14 + ["assigned"] * 12
            out += [_problem(grid, i, i // 8 + 1, BALUAN[i % 8], DAYS[2 + i // 36], fates[i],
                             Severity.SERIOUS if i % 11 == 5 else Severity.NORMAL) for i in range(72)]
        else:
            for j in range(3):
                k = others
                fate = SPECIAL_FATES.get(k, OTHER_FATES[k % len(OTHER_FATES)])
                severity = Severity.MINOR if k % 5 == 4 else Severity.NORMAL
                out.append(_problem(grid, j, j % 2 + 1, OTHER_CATEGORIES[k % 10], DAYS[k % 6], fate, severity))
                others += 1
    assert len({(p.place, p.category) for p in out}) == len(out), "a (place, category) pair repeats"
    return out


def photo(key: str) -> pr.EvidenceRef:
    """A photo reference for synthetic bytes (the demo stores no files; the domain needs hash, type and size)."""
    digest = hashlib.sha256(f"demo:{DEMO_KEY}:{key}".encode()).hexdigest()
    return pr.EvidenceRef(sha256=digest, media_type="image/jpeg", size=150_000 + int(digest[:4], 16))


def at(day: date, hh: int, mm: int = 0, days: int = 0) -> datetime:
    return datetime.combine(day + timedelta(days=days), time(hh, mm), tzinfo=CHINA_TZ)


class Batch:
    """Sends the batch's commands as its cast (HQ office, supervisors, unit officers) on the demo clock."""

    def __init__(self, loader: DemoLoader, data: dict[str, Any]) -> None:
        self.loader, self.data = loader, data
        self.leads = grid_leads(data)
        self.steps: list[tuple[datetime, int, Callable[[], None]]] = []
        self.hq = self.actor("总指挥部办公室督办员", "hq_office")
        self.supervisors = [self.actor(f"检查督导组督导员{n}", "supervisor") for n in "甲乙丙"]

    def actor(self, name: str, role: str) -> Actor:
        return Actor(person_id=derived_id("demo", DEMO_KEY, "person", name), role=role, name=name)

    def officer(self, unit: str) -> Actor:
        return self.actor(f"{unit}创建联络员", "unit_officer")

    def send(self, actor: Actor, key: str, build: type[Command], **fields: Any) -> None:
        """Like `DemoLoader.send`, as `actor` (the demo's admin may not report, rectify or verify); the photos the
        command cites are registered as `actor`'s uploads to the demo campaign first (the demo stores no files)."""
        self.loader.clock.advance(timedelta(seconds=1))
        command = build(command_id=f"demo:{DEMO_KEY}:{key}", **fields)
        if photos := cited_evidence(command):
            with self.loader.service.app.store.datastore.get_connection() as conn:
                for ref in photos:
                    record_evidence(conn, ref, self.loader.campaign_id, actor)
        result = self.loader.service.handle(command, actor)
        self.loader.commands += 1
        self.loader.written += 0 if result.replayed else len(result.events)

    def at(self, when: datetime, step: Callable[[], None]) -> None:
        self.steps.append((when, len(self.steps), step))

    def run(self) -> datetime:
        for when, _, step in sorted(self.steps, key=lambda s: s[:2]):
            if when > self.loader.clock():
                self.loader.clock.set(when)
            step()
        return self.loader.clock()

    # --- setup ---------------------------------------------------------------------------------

    def cast(self) -> None:
        """The HQ office's 督办员, three supervisors of the 检查督导组, one liaison officer per lead unit."""
        hq = self.data["headquarters"]
        people = [(self.hq, hq["office"]["name"], "hq_office"), *((s, "检查督导组", "supervisor") for s in self.supervisors),
                  *((self.officer(u), u, "unit_officer") for u in sorted(set(self.leads.values())))]
        for actor, unit, role in people:
            assert actor.person_id is not None and actor.name is not None
            self.loader.send(f"person:{actor.name}", RegisterPerson, person_id=actor.person_id,
                             campaign_id=self.loader.campaign_id, name=actor.name, title=f"{unit}（{INVENTED}）")
            self.loader.send(f"join:{actor.name}", JoinUnit, person_id=actor.person_id,
                             unit_id=self.loader.unit_id(unit), roles=(role,))

    def places(self, problems: list[Planned]) -> None:
        communities = {g["name"]: g.get("community") for g in self.data["grids"]}
        for grid, name in sorted({(p.grid, p.place) for p in problems}):
            self.loader.send(f"place:{name}", RegisterPlace, place_id=self.loader.place_id(name),
                             campaign_id=self.loader.campaign_id, name=name, place_kind="site",
                             parent_id=self.loader.place_id(communities[grid] or grid), invented=True,
                             note=f"{INVENTED}点位")

    # --- the window ----------------------------------------------------------------------------

    def visit(self, grid: str, day: date, order: int, found: list[Planned]) -> datetime:
        """One visit of the group to `grid` on `day`; returns when it was uploaded."""
        uploaded = at(day, 8, 0, days=2) if day.weekday() == 5 else at(day, 18, order)
        findings = tuple(vi.Finding(problem_id=p.problem_id, category=p.category, severity=p.severity,
                                    description=DESCRIPTIONS[p.category][i % len(DESCRIPTIONS[p.category])],
                                    evidence=(photo(f"{p.key}:found"),), place_id=self.loader.place_id(p.place))
                         for i, p in enumerate(found))
        who = self.supervisors[order % 3]
        assert who.person_id is not None
        self.at(uploaded, lambda: self.send(
            who, f"visit:{grid}:{day}", vi.LogVisit, occurred_at=at(day, 8, 30) + timedelta(minutes=20 * order),
            visit_id=derived_id("demo", DEMO_KEY, "visit", grid, day), campaign_id=self.loader.campaign_id,
            place_id=self.loader.place_id(grid), participants=tuple(s.person_id for s in self.supervisors[:2]),
            checklist=(vi.ChecklistResult(item="环境卫生", result="fail"), vi.ChecklistResult(item="八乱整治", result="fail")),
            findings=findings))
        return uploaded

    def life(self, p: Planned, uploaded: datetime) -> None:
        """The problem's steps after its visit, as far as its fate goes."""
        pid, unit = p.problem_id, self.leads[p.grid]
        officer, start = self.officer(unit), uploaded.date()
        # The unit is named (the matrix's lead of the grid), so the command is the same whether or not the
        # matrix projection had caught up; when it had, the routing is recorded as "matrix".
        self.at(uploaded + timedelta(minutes=30), lambda: self.send(
            self.hq, f"{p.key}:assign", pr.AssignProblem, problem_id=pid, unit_id=self.loader.unit_id(unit),
            reason="按网格牵头单位交办"))
        if p.fate == "assigned":
            return
        self.at(at(start, 8, 30, 1), lambda: self.send(officer, f"{p.key}:ack", pr.AcknowledgeProblem, problem_id=pid))
        if p.fate in ("transfer", "parked", "extension"):
            self.detour(p, officer, start)
            return
        if p.fate == "acknowledged":
            return
        self.rectify(p, officer, at(start, 16, 0, 2), "submit")
        if p.fate == "submitted":
            return
        checker = self.supervisors[2]
        if p.fate == "rework":
            self.at(at(start, 10, 0, 3), lambda: self.send(checker, f"{p.key}:reject", pr.RejectRectification,
                                                           problem_id=pid, reason="复查发现仍有垃圾残留，需返工"))
            self.rectify(p, officer, at(start, 16, 0, 4), "resubmit")
            start += timedelta(days=2)
        self.at(at(start, 10, 0, 3), lambda: self.send(checker, f"{p.key}:verify", pr.VerifyRectification,
                                                       problem_id=pid, evidence=(photo(f"{p.key}:recheck"),)))
        if p.fate != "verified":
            self.at(at(start, 11, 0, 3), lambda: self.send(self.hq, f"{p.key}:close", pr.CloseProblem, problem_id=pid))

    def rectify(self, p: Planned, officer: Actor, when: datetime, step: str) -> None:
        self.at(when, lambda: self.send(officer, f"{p.key}:{step}", pr.SubmitRectification, problem_id=p.problem_id,
                                        evidence=(photo(f"{p.key}:{step}"),), note="已按要求整改"))

    def detour(self, p: Planned, officer: Actor, start: date) -> None:
        pid = p.problem_id
        if p.fate == "transfer":
            target = "城管局"
            self.at(at(start, 9, 0, 1), lambda: self.send(officer, f"{p.key}:ask-transfer", pr.RequestTransfer, problem_id=pid,
                                                          reason="违规搭建属城管执法职责", suggested_unit_id=self.loader.unit_id(target)))
            self.at(at(start, 10, 0, 1), lambda: self.send(self.hq, f"{p.key}:transfer", pr.ApproveTransfer, problem_id=pid))
            self.at(at(start, 14, 0, 1), lambda: self.send(self.officer(target), f"{p.key}:ack2", pr.AcknowledgeProblem,
                                                           problem_id=pid))
        elif p.fate == "parked":
            self.at(at(start, 15, 0, 1), lambda: self.send(self.hq, f"{p.key}:park", pr.ParkProblem, problem_id=pid,
                                                           reason="涉及征迁地块，待统一处置"))
        else:
            self.at(at(start, 9, 30, 1), lambda: self.send(officer, f"{p.key}:ask-extension", pr.RequestExtension,
                                                           problem_id=pid, working_days=3, reason="需协调机械设备，申请延期"))
            self.at(at(start, 11, 0, 1), lambda: self.send(self.hq, f"{p.key}:extend", pr.ApproveExtension, problem_id=pid))


def load_first_batch(loader: DemoLoader, data: dict[str, Any], catch_up: Callable[[], None] | None = None) -> dict[str, Any]:
    """Load the first batch; `catch_up` (the projector's) makes the matrix and ledger current before the window."""
    batch, problems = Batch(loader, data), plan(data)
    loader.send("policy:deadlines", SetDeadlinePolicy, campaign_id=loader.campaign_id, **POLICY)
    batch.cast()
    batch.places(problems)
    if catch_up is not None:
        catch_up()
    visits: dict[tuple[date, str], list[Planned]] = {}
    for p in problems:
        visits.setdefault((p.day, p.grid), []).append(p)
    order: dict[date, int] = {}
    for (day, grid), found in visits.items():
        order[day] = order.get(day, -1) + 1
        uploaded = batch.visit(grid, day, order[day], found)
        for p in found:
            batch.life(p, uploaded)
    ended = batch.run()
    grids = {g["name"]: {"problems": 0, "rectified": 0} for g in data["grids"]}
    for p in problems:
        grids[p.grid]["problems"] += 1
        grids[p.grid]["rectified"] += p.fate in RECTIFIED
    return {"problems": len(problems), "visits": len(visits), "ended_at": ended.isoformat(), "grids": grids}
