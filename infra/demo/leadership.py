"""`dudao demo`, the city leadership (四套班子): leaders' liaison duties (挂钩联系) for December 2021.

"市四套班子领导每人挂钩联系1-2个街道、乡镇和2-3条主次干道，每月深入创建一线开展督查指导": four leaders —
one each of 市委, 市人大常委会, 市政府 and 市政协 — are linked from the launch (3 December) to a street or
township and to two or three roads, under a duty policy of one supervision visit per linked place per
month, three working days of grace, a reminder three working days before the month ends. The leaders,
their 联络员, the streets, township and roads are invented for the demo (marked 演示虚构); the practice is
the source's.

December: 陈 meets the street (a visit to a community inside it) and one road, never goes to 高安大道 (unmet:
reminded on the 29th, recorded unmet when the grace runs out on 7 January, climbing the ladder through
January to 通报 and a proposed 约谈); 刘 misses 凤凰路 (unmet; he makes up a visit on 12 January and HQ closes
the December duty with his explanation); 黄's visit to 解放路 on 29 December is uploaded only on 10 January,
after the grace (met late: the escalation raised on the 7th is resolved with that reason, not deleted);
周 is on sick leave all month (exempt). Visits before the demo clock's "now" are uploaded when the
leadership is loaded; the later ones on their days, through the January run's daily hook. Command ids
derive from keys, so a second run writes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain import liaison as li
from domain import visit as vi
from domain.kernel.base import Actor, derived_id
from domain.kernel.calendar import CHINA_TZ
from domain.structure.person import JoinUnit, RegisterPerson
from domain.structure.place import RegisterPlace
from infra.commands.escalation import calendar_for
from infra.commands.service import StoreReader
from infra.demo.first_batch import INVENTED, Batch
from infra.demo.structure import DEMO_KEY, DemoLoader
from projections import liaison_duties as ld

LINKED_FROM = datetime(2021, 12, 3, 9, 0, tzinfo=CHINA_TZ)  # the mobilisation meeting (动员大会) at launch
POLICY_REASON = "市委办公室关于市领导挂钩联系创建工作的通知：每月至少深入挂钩联系点督查指导一次"

# name, 班子, rank, has a 联络员, [(place, kind)] — the first place is the street or township.
LEADERS: tuple[tuple[str, str, str, bool, tuple[tuple[str, str], ...]], ...] = (
    ("陈建华", "party_committee", "市委副书记", True, (("瑞州街道", "street"), ("瑞阳大道", "road"), ("高安大道", "road"))),
    ("刘国平", "people_congress", "市人大常委会副主任", False, (("筠阳街道", "street"), ("锦江路", "road"), ("凤凰路", "road"))),
    ("黄志勇", "government", "副市长", True, (("八景镇", "township"), ("解放路", "road"), ("大观路", "road"))),
    ("周丽萍", "cppcc", "市政协副主席", False, (("蓝坊镇", "township"), ("碧落路", "road"), ("米山路", "road"))),
)
# A community inside a street: a visit there counts for the street (not a grid: the source's 32 grids stay 32).
INSIDE = ("瑞州街道东门社区", "community", "瑞州街道")


def _at(day: str, hhmm: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), CHINA_TZ)


# (leader, place, occurred, uploaded on the day of the January run — None: when the leadership is loaded)
VISITS: tuple[tuple[str, str, datetime, date | None], ...] = (
    ("陈建华", "瑞州街道东门社区", _at("2021-12-09", "10:00"), None),
    ("陈建华", "瑞阳大道", _at("2021-12-16", "15:00"), None),
    ("刘国平", "筠阳街道", _at("2021-12-14", "09:30"), None),
    ("刘国平", "锦江路", _at("2021-12-20", "10:00"), None),
    ("黄志勇", "八景镇", _at("2021-12-10", "14:30"), None),
    ("黄志勇", "大观路", _at("2021-12-17", "10:00"), None),
    ("黄志勇", "解放路", _at("2021-12-29", "15:00"), date(2022, 1, 10)),  # uploaded after the grace: met late
    ("陈建华", "瑞州街道", _at("2022-01-06", "09:00"), date(2022, 1, 6)),
    ("刘国平", "凤凰路", _at("2022-01-12", "09:00"), date(2022, 1, 12)),  # the make-up visit (January's duty)
    ("黄志勇", "八景镇", _at("2022-01-18", "09:00"), date(2022, 1, 18)),
)
CLOSE_DAY = date(2022, 1, 13)  # HQ closes 刘's unmet December duty after his make-up visit and explanation


class Leadership:
    """Loads the leadership, then acts on its days of the January run (`on_day`)."""

    def __init__(self, loader: DemoLoader, data: dict[str, Any]) -> None:
        self.loader, self.batch = loader, Batch(loader, data)
        self.office = loader.unit_id(data["headquarters"]["office"]["name"])

    def person(self, name: str) -> Actor:
        return self.batch.actor(name, "leader")

    def officer(self, name: str) -> Actor:
        return self.batch.actor(f"{name}联络员", "unit_officer")

    def link_id(self, leader: str, place: str) -> UUID:
        return derived_id("demo", DEMO_KEY, "liaison-link", leader, place)

    def setup(self) -> dict[str, Any]:
        """Places, leaders and 联络员, the duty policy, the links, 周's exemption, and the visits made so far."""
        hq, campaign = self.batch.hq, self.loader.campaign_id
        for _, _, _, _, places in LEADERS:
            for place, kind in places:
                self.loader.place(place, kind)
        name, kind, parent = INSIDE
        self.batch.send(hq, f"place:{name}", RegisterPlace, place_id=self.loader.place_id(name), campaign_id=campaign,
                        name=name, place_kind=kind, parent_id=self.loader.place_id(parent), invented=True,
                        note=f"{INVENTED}社区")
        self.batch.send(hq, "liaison:policy", li.SetLiaisonDutyPolicy, campaign_id=campaign,
                        effective_from=datetime(2021, 12, 1, tzinfo=CHINA_TZ), reason=POLICY_REASON)
        for leader, body, rank, has_officer, places in LEADERS:
            self.leader(leader, body, rank, has_officer, places)
        zhou = self.person("周丽萍")
        self.batch.send(hq, "liaison:exempt:周丽萍:2021-12", li.GrantDutyExemption, person_id=zhou.person_id,
                        exemption_id=derived_id("demo", DEMO_KEY, "exemption", "周丽萍", "2021-12"),
                        exemption_kind="sick_leave", starts_on=date(2021, 12, 1), ends_on=date(2021, 12, 31),
                        reason="住院治疗，经市委办公室批准12月免除挂钩联系督查")
        for leader, place, occurred, uploaded in VISITS:
            if uploaded is None:
                self.visit(leader, place, occurred)
        return {"leaders": len(LEADERS), "links": sum(len(p) for *_, p in LEADERS)}

    def leader(self, name: str, body: str, rank: str, has_officer: bool, places: tuple[tuple[str, str], ...]) -> None:
        hq, campaign, me = self.batch.hq, self.loader.campaign_id, self.person(name)
        people = [(me, "leader")] + ([(self.officer(name), "unit_officer")] if has_officer else [])
        for actor, role in people:
            self.loader.send(f"person:{actor.name}", RegisterPerson, person_id=actor.person_id, campaign_id=campaign,
                             name=actor.name, title=f"{rank if role == 'leader' else '联络员'}（{INVENTED}）")
            self.loader.send(f"join:{actor.name}", JoinUnit, person_id=actor.person_id, unit_id=self.office,
                             roles=(role,))
        officer = self.officer(name).person_id if has_officer else None
        self.batch.send(hq, f"liaison:designate:{name}", li.DesignateLeader, person_id=me.person_id,
                        campaign_id=campaign, body=body, rank=rank, liaison_officer_id=officer,
                        reason="市委常委会确定市领导挂钩联系分工")
        for place, _ in places:
            self.batch.send(hq, f"liaison:link:{name}:{place}", li.LinkLiaison, link_id=self.link_id(name, place),
                            person_id=me.person_id, campaign_id=campaign, target_id=self.loader.place_id(place),
                            valid_from=LINKED_FROM, reason="创建动员大会确定市领导挂钩联系点")

    def visit(self, leader: str, place: str, occurred: datetime) -> None:
        me = self.person(leader)
        assert me.person_id is not None
        officer = self.officer(leader)
        with_officer = any(n == leader and o for n, _, _, o, _ in LEADERS)
        participants = (me.person_id, officer.person_id) if with_officer and officer.person_id else (me.person_id,)
        self.batch.send(me, f"liaison:visit:{leader}:{place}:{occurred.isoformat()}", vi.LogVisit,
                        occurred_at=occurred, visit_id=derived_id("demo", DEMO_KEY, "leader-visit", leader, place,
                                                                  occurred.isoformat()),
                        campaign_id=self.loader.campaign_id, place_id=self.loader.place_id(place),
                        participants=participants,
                        checklist=(vi.ChecklistResult(item="市容环境", result="pass"),), note="挂钩联系点督查指导")

    def on_day(self, day: date) -> None:
        """The January run's daily hook (after the morning's work): uploads due that day, HQ's closing on the 13th."""
        for leader, place, occurred, uploaded in VISITS:
            if uploaded == day:
                self.visit(leader, place, occurred)
        if day == CLOSE_DAY:
            self.close_liu()

    def close_liu(self) -> None:
        liu = self.person("刘国平")
        assert liu.person_id is not None
        self.batch.send(self.batch.hq, "liaison:close:刘国平:凤凰路:2021-12", li.CloseLiaisonDuty,
                        campaign_id=self.loader.campaign_id, person_id=liu.person_id,
                        link_id=self.link_id("刘国平", "凤凰路"), period_start=date(2021, 12, 1),
                        reason="已于1月12日补充督查凤凰路，并向总指挥部作出书面说明")

    def summary(self, database_url: str) -> dict[str, Any]:
        """December's verdicts per leader and place as of the demo's end, and the duties that became escalations."""
        now = self.loader.clock()
        calendar = calendar_for(StoreReader(self.loader.service.app), self.loader.campaign_id)
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            rows = ld.compliance(conn, self.loader.campaign_id, calendar, now, first=date(2021, 12, 1),
                                 last=date(2021, 12, 31))
            row = conn.execute("SELECT count(*) AS n FROM liaison_duties WHERE campaign_id = %s"
                               " AND found_unmet_at IS NOT NULL", (self.loader.campaign_id,)).fetchone()
        escalated = row["n"] if row else 0
        return {"december": {f"{r['leader_name']}·{r['target_name']}": r["status"] for r in rows},
                "by_status": ld.summary(rows)["by_status"], "unmet_duties_escalated": escalated,
                "leader_ids": {name: str(self.person(name).person_id) for name, *_ in LEADERS}}

