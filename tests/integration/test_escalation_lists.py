"""The escalation lists against real PostgreSQL: levels, ages in working time, next steps, filters per unit,
grid and 包保责任人, the HQ overview, and rebuilding the open-work and bulletin projections from zero."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.consequences import accountability as ac
from domain import problem as pr
from domain.consequences.bulletin import DraftBulletin, IssueBulletin, RankEntry
from domain.escalation.ladder import step_id_for
from domain.escalation.notice import AcknowledgeNotice, Party, notice_id_for_step
from domain.consequences.summons import HoldSummons, ScheduleSummons, summons_id_for
from infra.http import create_app
from infra.http.auth import create_token
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from projections.work_items import WorkItemsProjection
from tests.support.escalation_kit import (
    at, close_problem, escalation_world, report_and_assign, run_hourly,
)
from tests.support.databases import Databases
from tests.support.problem_world import World

pytestmark = pytest.mark.integration


@dataclass
class Lists:
    world: World
    client: TestClient
    headers: dict[str, str]
    a: UUID  # s1, unit A, grid 1: untouched since 12-23
    c: UUID  # s3, unit B, grid 2: assigned 12-24, extension asked and refused
    e: UUID  # s2, unit A, grid 1: a relapse of a problem closed 12-24

    def get(self, **params: Any) -> dict[str, Any]:
        response = self.client.get(f"/campaigns/{self.world.campaign_id}/escalations", params=params,
                                   headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def problems(self, **params: Any) -> dict[str, dict[str, Any]]:
        names = {str(self.a): "a", str(self.c): "c", str(self.e): "e"}
        return {names[r["item_id"]]: r for r in self.get(**params)["rows"] if r["item_kind"] == "problem"}


@pytest.fixture(scope="module")
def lists(databases: Databases) -> Iterator[Lists]:
    """From 12-23 to 12-31 10:00 hourly; then a bulletin, a summons held and a case decided."""
    clock = SimulatedClock(at("2021-12-23", "09:00"))
    system = bootstrap(databases.clone("esc"), clock=clock, pool_size=10)
    w = escalation_world(system)
    clock.set(at("2021-12-23"))
    a, d = report_and_assign(w, "s1", "人行道垃圾堆积"), report_and_assign(w, "s2", "绿化带杂物")
    ids: dict[str, UUID] = {}

    def report_c_and_close_d() -> None:
        ids["c"] = report_and_assign(w, "s3", "背街小巷污水外溢")
        close_problem(w, d)

    def catch_up_and_report_e() -> None:
        w.catch_up()
        ids["e"] = report_and_assign(w, "s2", "绿化带杂物又堆积")

    actions = {
        at("2021-12-24"): report_c_and_close_d,
        at("2021-12-27"): catch_up_and_report_e,
        at("2021-12-27", "11:00"): lambda: w.send("head_a", AcknowledgeNotice,
                                                  notice_id=notice_id_for_step(step_id_for("problem", a, "reminder"))),
        at("2021-12-29", "09:00"): lambda: w.send("officer_b", pr.RequestExtension, problem_id=ids["c"],
                                                  working_days=3, reason="需协调管网公司"),
        at("2021-12-30", "12:00"): lambda: w.send("hq", pr.RejectExtension, problem_id=ids["c"], reason="不予延期"),
    }
    escalator = Escalator.for_system(system)
    run_hourly(escalator, clock, at("2021-12-31"), actions)
    people_decide(w, escalator)
    with psycopg.connect(system.database_url) as conn:
        token = create_token(conn, "hq_office", person_id=w["hq"], campaign_id=w.campaign_id)
    with TestClient(create_app(system)) as client:
        yield Lists(w, client, {"Authorization": f"Bearer {token}"}, a, ids["c"], ids["e"])
    system.close()


def people_decide(w: World, escalator: Escalator) -> None:
    """A bulletin naming unit B on the 黑榜, the 约谈 it leads to scheduled and held, a 问责 case decided."""
    bid = w["bulletin"]
    w.send("hq", DraftBulletin, bulletin_id=bid, campaign_id=w.campaign_id, period_start=date(2021, 12, 27),
           period_end=date(2021, 12, 31), title="第1期通报", body_zh="正文",
           black_list=(RankEntry(rank=1, unit_id=w["unit_b"], name="unit_b", on_time_rate=0.0),))
    w.send("hq", IssueBulletin, bulletin_id=bid)
    escalator.tick()
    sid = summons_id_for("ranking", bid, w["unit_b"])
    w.send("hq", ScheduleSummons, summons_id=sid, at=at("2022-01-04", "15:00"),
           convened_by=Party(party_kind="person", party_id=w["li"], name="li"))
    w.send("hq", HoldSummons, summons_id=sid, minutes_zh="约谈记录", commitments=("一周内整改到位",))
    w.send("hq", ac.OpenAccountabilityCase, case_id=w["case"], campaign_id=w.campaign_id,
           subject=Party(party_kind="unit", party_id=w["unit_a"]), reason_zh="长期逾期",
           basis=(ac.BasisRef(kind="bulletin", id=bid),))
    w.send("discipline", ac.DecideMeasures, case_id=w["case"], measures=("admonishment",), reason_zh="诫勉谈话")
    w.catch_up()


def test_each_row_says_its_level_how_long_overdue_in_working_hours_and_the_next_step(lists: Lists) -> None:
    """At 12-31 10:00: A is at 督办 24 working hours overdue, next 列入通报 on 01-07; C and E at 催办, C 16 h, E 8 h."""
    rows = lists.problems()
    summary = {k: (r["level"], r["overdue_since"], r["overdue_working_hours"], r["next_step"]["step_name"],
                   r["next_step"]["due_at"]) for k, r in rows.items()}
    iso = lambda d, h="10:00": at(d, h).isoformat()  # noqa: E731
    assert summary == {
        "a": (2, iso("2021-12-28"), 24.0, "bulletin_listing", iso("2022-01-07")),
        "c": (1, iso("2021-12-29"), 16.0, "supervise", iso("2022-01-04")),
        "e": (1, iso("2021-12-30"), 8.0, "supervise", iso("2022-01-05")),
    }
    assert rows["e"]["relapse_count"] == 1 and rows["a"]["steps_done"] == ["reminder", "supervise", "urge"]
    assert rows["a"]["grid"]["id"] == str(lists.world["grid1"]) and rows["a"]["bao_bao"][0]["name"] == "li"


def test_the_list_filters_by_level_unit_grid_and_bao_bao(lists: Lists) -> None:
    """level=2 → A; unit B → C; grid 1 and its 包保责任人 → A and E."""
    w = lists.world
    assert set(lists.problems(level=2)) == {"a"}
    assert set(lists.problems(unit_id=str(w["unit_b"]))) == {"c"}
    assert set(lists.problems(grid_id=str(w["grid1"]))) == {"a", "e"}
    assert set(lists.problems(bao_bao_id=str(w["li"]))) == {"a", "e"}
    assert all(r["unit"]["id"] == str(w["unit_b"]) for r in lists.get(unit_id=str(w["unit_b"]))["rows"])


def test_unacknowledged_notices_and_undecided_extension_requests_are_listed_too(lists: Lists) -> None:
    """The 催办单 nobody signed escalates as a notice; the extension request climbed while HQ left it undecided."""
    rows = lists.get()["rows"]
    kinds = {r["item_kind"] for r in rows}
    assert kinds == {"problem", "notice"}
    acknowledged = str(notice_id_for_step(step_id_for("problem", lists.a, "reminder")))
    assert acknowledged not in {r["item_id"] for r in rows}
    with psycopg.connect(lists.world.system.database_url) as conn:
        steps = conn.execute("SELECT step_name FROM escalation_steps WHERE item_kind = 'extension_request'"
                             " ORDER BY due_at").fetchall()
    assert [s[0] for s in steps] == ["reminder", "urge"]


def test_the_hq_overview_counts_open_escalations_by_level_unit_and_grid(lists: Lists) -> None:
    """The overview covers the selection: totals by level and kind, the units and grids with most, the oldest first."""
    body = lists.get()
    overview, rows = body["overview"], lists.get(limit=5000)["rows"]
    assert overview["total"] == len(rows) == body["total"]
    assert {b["level"]: b["open"] for b in overview["by_level"]} == {
        lv: sum(r["level"] == lv for r in rows) for lv in range(5)}
    assert overview["oldest"][0]["overdue_working_hours"] == max(r["overdue_working_hours"] for r in rows)
    assert {u["id"] for u in overview["by_unit"]} <= {str(lists.world["unit_a"]), str(lists.world["unit_b"])}


def test_summons_and_cases_are_listed_with_their_status(lists: Lists) -> None:
    """The 约谈 proposed by the 黑榜 was held; the case discipline decided shows its measures."""
    w, client, headers = lists.world, lists.client, lists.headers
    summons = client.get(f"/campaigns/{w.campaign_id}/summons", headers=headers).json()["rows"]
    cases = client.get(f"/campaigns/{w.campaign_id}/accountability_cases", headers=headers).json()["rows"]
    assert [(s["subject_id"], s["status"], s["source"]) for s in summons if s["source"] == "ranking"] == [
        (str(w["unit_b"]), "held", "ranking")]
    assert [(c["status"], c["measures"]) for c in cases if c["id"] == str(w["case"])] == [("decided", ["admonishment"])]


TABLES = {"work_items": "item_kind, item_id", "escalation_steps": "step_id", "notices": "notice_id",
          "bulletins": "bulletin_id", "proposals": "kind, id"}


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY {key}").fetchall() for t, key in TABLES.items()}


def test_rebuilding_the_projections_from_zero_gives_the_same_rows(lists: Lists) -> None:
    """Truncate and replay the whole log: every work item, step, notice, bulletin and proposal row comes back equal."""
    system = lists.world.system
    before = snapshot(system.database_url)
    assert all(before[t] for t in ("work_items", "escalation_steps", "notices", "bulletins", "proposals"))
    for projection in system.projector.projections:
        if projection.name in (WorkItemsProjection.name, "bulletins"):
            system.projector.rebuild(projection)
    assert snapshot(system.database_url) == before
