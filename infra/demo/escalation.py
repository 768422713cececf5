"""`dudao demo`, continued: 高安 from the end of the first batch through January 2022 with the escalator running.

On the simulated clock, every working day: the escalator ticks each hour from 09:00 to 17:00 (once a
day on days off); at 09:30 the units sign the notices received before today (签收), supervisors
re-inspect what was submitted and HQ closes what passed; at 15:00 the units rectify what was urged
(催办) — a few only once 督办 came. Three problems at 第十四网格 are never touched and one 提醒 is never
signed: they climb to 通报, 约谈 and 问责. On 2022-01-04 HQ issues the bulletin for 12-27 to 12-31 with
its 红黑榜 (its 黑榜 brings proposed summons); the first summons the ladder proposed is scheduled and
held; the accountability proposals stay proposed (people decide). On 01-24 a pre-festival assessment
finds new problems (one a relapse) still on the escalation list at the month's end. Command ids
derive from keys; a second run finds January done and only reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from domain import problem as pr
from domain.kernel.base import derived_id
from domain.consequences.bulletin import AcknowledgeBulletin, Bulletin, DraftBulletin, IssueBulletin
from domain.kernel.calendar import CHINA_TZ
from domain.escalation.ladder import EscalationPolicy, escalation_policy_id, ranking_policy_in_force
from domain.escalation.notice import AcknowledgeNotice, Party
from domain.consequences.ranking import draft_contents
from domain.consequences.summons import HoldSummons, ScheduleSummons
from infra.escalator import views as views
from infra.bootstrap import all_projections
from infra.calendars import official_calendar
from infra.demo.structure import DEMO_KEY, DemoLoader
from infra.demo.first_batch import Batch, grid_leads, photo
from infra.escalator.engine import Escalator
from infra.evaluation import bulletin_rankings
from infra.store.projector import Projector
from infra.commands.service import StoreReader
from projections import bulletins as bl
from projections import escalation_lists as el
from projections import liaison_duties as ld

END = datetime(2022, 1, 31, 17, 0, tzinfo=CHINA_TZ)
BULLETIN_DAY, BULLETIN_PERIOD = date(2022, 1, 4), (date(2021, 12, 27), date(2021, 12, 31))
RESUME_DAY = date(2022, 1, 10)
STUBBORN = 3  # problems of 第十四网格 never touched
# 春节前测评 (pre-festival assessment), 2022-01-24: (grid, category, description); the units answer only 督办.
SECOND_ROUND_DAY = date(2022, 1, 24)
SECOND_ROUND = (
    (3, "sanitation", "春节前集中清扫后绿化带又见垃圾"), (1, "street_stalls", "年货摊点占道经营"),
    (2, "vehicle_parking", "商场门前机动车乱停放"), (5, "clutter", "楼道堆放年货杂物"),
    (7, "illegal_ads", "沿街张贴促销小广告"), (20, "sewage", "餐馆后厨污水外溢"),
    (26, "facilities", "人行道板松动破损"), (31, "street_stalls", "农贸市场外溢占道"),
)
OWED = sorted(state.value for state in pr.OWED)


def database_url_of(loader: DemoLoader) -> str:
    """The DSN of the store behind the loader's command service (its connection pool's settings)."""
    pool_kwargs = loader.service.app.store.datastore.pool.kwargs
    kwargs = (pool_kwargs() if callable(pool_kwargs) else pool_kwargs) or {}
    return make_conninfo(**{k: v for k, v in kwargs.items() if k != "row_factory" and v})


def continue_through_january(loader: DemoLoader, data: dict[str, Any], escalator: Escalator | None = None,
                             daily: Sequence[Callable[[date], None]] = ()) -> dict[str, Any]:
    """Run January; returns what it made: steps, the bulletin, the summons held, proposals, the list by level.

    `daily` hooks run on each working day after the morning's work (e.g. the leaders' uploads, infra.demo.leadership).
    """
    if escalator is None:
        url = database_url_of(loader)
        escalator = Escalator(loader.service, Projector(loader.service.app, url, all_projections()), url,
                              clock=loader.clock)
    return January(loader, data, escalator, daily).run()


class January:
    """The month, day by day: the escalator's ticks and what people do between them."""

    def __init__(self, loader: DemoLoader, data: dict[str, Any], escalator: Escalator,
                 daily: Sequence[Callable[[date], None]] = ()) -> None:
        self.loader, self.batch, self.escalator = loader, Batch(loader, data), escalator
        self.daily = tuple(daily)
        self.units = {loader.unit_id(u): u for u in set(grid_leads(data).values())}
        self.office = loader.unit_id(data["headquarters"]["office"]["name"])
        self.grids = {g["number"]: g["name"] for g in data["grids"]}
        self.stubborn: list[UUID] = []
        self.second_round = [derived_id("demo", DEMO_KEY, "problem", f"jan-{i:02d}") for i in range(len(SECOND_ROUND))]
        self.bulletin_id = derived_id("demo", DEMO_KEY, "bulletin", "2021-12-27")
        self.ticks = 0

    def conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.escalator.database_url, row_factory=dict_row, autocommit=True)

    def run(self) -> dict[str, Any]:
        self.escalator.catch_up("work_items", "bulletins")
        if StoreReader(self.loader.service.app).get("problem", self.second_round[-1], pr.Problem) is not None:
            return self.summary()  # January already ran: a second run changes nothing (the clock cannot replay it)
        self.stubborn = [*self.choose_stubborn(), self.second_round[0]]  # the relapse at 第三网格 is left alone too
        day = self.loader.clock().astimezone(CHINA_TZ).date() + timedelta(days=1)
        while datetime.combine(day, time(9), CHINA_TZ) <= END:
            self.working_day(day) if official_calendar().is_workday(day) else self.tick(day, 9)
            day += timedelta(days=1)
        return self.summary()

    def at(self, day: date, hour: int, minute: int = 0) -> None:
        when = datetime.combine(day, time(hour, minute), CHINA_TZ)
        if when > self.loader.clock():
            self.loader.clock.set(when)

    def tick(self, day: date, hour: int) -> None:
        self.at(day, hour)
        self.escalator.tick()
        self.ticks += 1

    def working_day(self, day: date) -> None:
        self.tick(day, 9)
        self.at(day, 9, 30)
        self.morning(day)
        for hook in self.daily:
            hook(day)
        for hour in range(10, 18):
            if hour == 15:
                self.at(day, 15)
                self.afternoon(day)
            self.tick(day, hour)

    # --- what people do ----------------------------------------------------------------------------

    def choose_stubborn(self) -> list[UUID]:
        with self.conn() as conn:
            rows = conn.execute("SELECT w.item_id FROM work_items w JOIN structure_places p ON p.place_id = w.place_id"
                                " WHERE w.item_kind = 'problem' AND w.campaign_id = %s AND p.name LIKE '第十四网格点位%%'"
                                " AND w.state = 'assigned' ORDER BY p.name, w.item_id LIMIT %s",
                                (self.loader.campaign_id, STUBBORN)).fetchall()
        return [r["item_id"] for r in rows]

    def officer_of(self, unit_id: UUID | None) -> Any:
        if unit_id == self.office:
            return self.batch.hq
        return self.batch.officer(self.units[unit_id]) if unit_id in self.units else None

    def morning(self, day: date) -> None:
        """签收 of yesterday's notices and bulletins; 复查 of submissions; 销号 of what passed; resuming parked work."""
        today = datetime.combine(day, time(0), CHINA_TZ)
        never = self.stubborn[0] if self.stubborn else None
        with self.conn() as conn:
            notices = el.notices_for(conn, self.loader.campaign_id, pending=True, limit=5000)
            rows = conn.execute("SELECT item_id, state, parked_since FROM work_items WHERE item_kind = 'problem'"
                                " AND campaign_id = %s ORDER BY item_id", (self.loader.campaign_id,)).fetchall()
            bulletins = bl.list_bulletins(conn, self.loader.campaign_id)
        for n in notices:
            unit = next((UUID(r["party_id"]) for r in n["recipients"] if r["party_kind"] == "unit"), None)
            officer = self.officer_of(unit)
            unsigned = n["subject_id"] == never and n["notice_kind"] == "reminder"
            if n["issued_at"] < today and officer is not None and not unsigned:
                self.batch.send(officer, f"jan:ack:{n['notice_id']}", AcknowledgeNotice, notice_id=n["notice_id"])
        for r in rows:
            pid = r["item_id"]
            if r["state"] == "rectification_submitted":
                self.batch.send(self.batch.supervisors[2], f"jan:{pid}:verify", pr.VerifyRectification, problem_id=pid,
                                evidence=(photo(f"jan:{pid}:recheck"),))
            elif r["state"] == "verified":
                self.batch.send(self.batch.hq, f"jan:{pid}:close", pr.CloseProblem, problem_id=pid)
            elif r["parked_since"] is not None and day >= RESUME_DAY:
                self.batch.send(self.batch.hq, f"jan:{pid}:resume", pr.ResumeProblem, problem_id=pid, note="征迁完成，恢复办理")
        if day == SECOND_ROUND_DAY:
            self.assess()
        for b in (b for b in bulletins if b["issued_at"] is not None and b["issued_at"] < today):
            for unit in sorted({UUID(e["unit_id"]) for e in (*b["red_list"], *b["black_list"])} - set(b["acknowledged_by"])):
                if (officer := self.officer_of(unit)) is not None:
                    self.batch.send(officer, f"jan:bulletin-ack:{b['bulletin_id']}:{unit}", AcknowledgeBulletin,
                                    bulletin_id=b["bulletin_id"], unit_id=unit)

    def assess(self) -> None:
        """The pre-festival assessment finds new problems (one a relapse of a closed one); HQ hands them over."""
        self.escalator.projector.catch_up()  # the ledger (duplicates, relapses) and the matrix (routing)
        checker = self.batch.supervisors[0]
        for pid, (grid, category, text) in zip(self.second_round, SECOND_ROUND, strict=True):
            place = self.loader.place_id(f"{self.grids[grid]}点位01")
            self.batch.send(checker, f"jan:{pid}:report", pr.ReportProblem, problem_id=pid,
                            campaign_id=self.loader.campaign_id, category=category, place_id=place, description=text,
                            evidence=(photo(f"jan:{pid}:found"),), source="assessment")
        self.escalator.projector.catch_up()
        for pid in self.second_round:
            self.batch.send(self.batch.hq, f"jan:{pid}:assign", pr.AssignProblem, problem_id=pid)

    def afternoon(self, day: date) -> None:
        """Units rectify what was urged (every fourth only once supervised); HQ's bulletin; the summons."""
        with self.conn() as conn:
            rows = conn.execute("SELECT item_id, state, responsible_unit_id, steps_done FROM work_items"
                                " WHERE item_kind = 'problem' AND campaign_id = %s AND state = ANY(%s)"
                                " AND parked_since IS NULL ORDER BY item_id",
                                (self.loader.campaign_id, list(OWED))).fetchall()
        for r in rows:
            slow = r["item_id"].int % 4 == 0 or r["item_id"] in self.second_round
            trigger = "supervise" if slow else "urge"
            officer = self.officer_of(r["responsible_unit_id"])
            if r["item_id"] in self.stubborn or trigger not in r["steps_done"] or officer is None:
                continue
            pid = r["item_id"]
            if r["state"] == "assigned":
                self.batch.send(officer, f"jan:{pid}:ack", pr.AcknowledgeProblem, problem_id=pid)
            self.batch.send(officer, f"jan:{pid}:submit", pr.SubmitRectification, problem_id=pid,
                            evidence=(photo(f"jan:{pid}:after"),), note="接催办后已整改")
        if day == BULLETIN_DAY:
            self.issue_bulletin()
        self.summons(day)

    def issue_bulletin(self) -> None:
        """The 通报 for 12-27 to 12-31, pre-filled as GET …/bulletins/draft fills it, issued as drafted."""
        reader = StoreReader(self.loader.service.app)
        if reader.get("bulletin", self.bulletin_id, Bulletin) is not None:
            return  # a second run of the demo: the bulletin was drafted from the history as it was then
        start, end = views.period_bounds(*BULLETIN_PERIOD, CHINA_TZ)
        campaign, now = self.loader.campaign_id, self.loader.clock()
        with self.conn() as conn:
            rates = bulletin_rankings(self.loader.service.app, conn, campaign, *BULLETIN_PERIOD, now)
            steps, already = el.listing_steps(conn, campaign, end), bl.listed_step_ids(conn, campaign)
            leaders = ld.listing_leaders(conn, [s["parent_id"] for s in steps if s["item_kind"] == "liaison_duty"])
        policy_state = reader.get("escalation_policy", escalation_policy_id(campaign), EscalationPolicy)
        policy = ranking_policy_in_force(policy_state.ranking_policies if policy_state else (), end)
        contents = draft_contents(rates, views.listed_steps(steps, already), policy, period_start=BULLETIN_PERIOD[0],
                                  period_end=BULLETIN_PERIOD[1], liaison=views.liaison_listings(steps, already, leaders))
        self.batch.send(self.batch.hq, "jan:bulletin:draft", DraftBulletin, bulletin_id=self.bulletin_id,
                        campaign_id=campaign, period_start=BULLETIN_PERIOD[0], period_end=BULLETIN_PERIOD[1],
                        **contents.model_dump())
        self.batch.send(self.batch.hq, "jan:bulletin:issue", IssueBulletin, bulletin_id=self.bulletin_id)

    def summons(self, day: date) -> None:
        """HQ schedules the first summons the ladder proposed for the next working day at 10:00, and holds it then."""
        with self.conn() as conn:
            rows = bl.list_proposals(conn, self.loader.campaign_id, "summons")
        first = next((s for s in rows if s["source"] == "escalation"), None)
        if first is None or first["status"] not in ("proposed", "scheduled"):
            return
        when = official_calendar().add_working_days(datetime.combine(day, time(10), CHINA_TZ), 1)
        hq = self.batch.hq
        assert hq.person_id is not None  # the demo's HQ officer is a registered person, not a process
        if first["status"] == "proposed":
            self.batch.send(hq, f"jan:summons:{first['id']}:schedule", ScheduleSummons, summons_id=first["id"], at=when,
                            convened_by=Party(party_kind="person", party_id=hq.person_id, name=hq.name),
                            location="总指挥部会议室")
        elif first["scheduled_at"] <= datetime.combine(day, time(15), CHINA_TZ):
            self.batch.send(hq, f"jan:summons:{first['id']}:hold", HoldSummons, summons_id=first["id"],
                            minutes_zh=f"约谈{first['subject_name'] or '责任单位'}主要负责人，通报逾期未整改问题，听取整改打算。",
                            commitments=("三个工作日内完成逾期问题整改", "落实专人每日巡查，防止反弹"))

    # --- what it made --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        self.escalator.close()
        campaign = self.loader.campaign_id
        with self.conn() as conn:
            (steps,) = conn.execute("SELECT count(*) AS n FROM escalation_steps WHERE campaign_id = %s",
                                    (campaign,)).fetchall()
            summons = bl.list_proposals(conn, campaign, "summons")
            cases = bl.list_proposals(conn, campaign, "accountability_case")
            bulletin = next((b for b in bl.list_bulletins(conn, campaign) if b["bulletin_id"] == self.bulletin_id), None)
            levels = conn.execute("SELECT level, count(*) AS n FROM work_items WHERE campaign_id = %s AND NOT closed"
                                  " AND level >= 0 GROUP BY level ORDER BY level", (campaign,)).fetchall()
        return {
            "through": END.date().isoformat(), "escalator_ticks": self.ticks, "escalation_steps": steps["n"],
            "open_escalations_by_level": {r["level"]: r["n"] for r in levels},
            "bulletin": None if bulletin is None else {
                "title": bulletin["title"], "issued_at": bulletin["issued_at"].isoformat() if bulletin["issued_at"] else None,
                "red_list": [e["name"] for e in bulletin["red_list"]], "black_list": [e["name"] for e in bulletin["black_list"]]},
            "summons": {status: sum(s["status"] == status for s in summons) for status in ("proposed", "scheduled", "held")},
            "accountability_cases_proposed": sum(c["status"] == "proposed" for c in cases),
        }
