"""Liaison duties (挂钩联系) end to end against real PostgreSQL: December 2021 to 18 January 2022 with the escalator
running every three hours — reminders, unmet duties climbing the ladder, a late upload resolving one, an exempt
leader, a policy change for January — read over HTTP and the CLI, as of any instant, and rebuilt from zero."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from typer.testing import CliRunner

from domain import liaison as li
from domain.consequences.summons import SummonsProposed
from domain.escalation.notice import NoticeIssued
from domain.escalation.step import EscalationStepTaken
from domain.kernel.base import event_uuid
from infra.audit import queries as aq
from infra.bootstrap import bootstrap
from infra.cli.main import app as cli
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from infra.http import create_app
from infra.http.auth import create_token
from projections.liaison_duties import LiaisonDutiesProjection
from projections.work_items import WorkItemsProjection
from tests.support.databases import Databases
from tests.support.escalation_kit import at, events_of
from tests.support.liaison_kit import liaison_world, log_visit, run_every
from tests.support.problem_world import World

pytestmark = pytest.mark.integration


@dataclass
class Scenario:
    world: World
    client: TestClient
    headers: dict[str, str]
    late_visit: UUID

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def duties(self, **params: Any) -> list[dict[str, Any]]:
        return self.get(f"/campaigns/{self.world.campaign_id}/duties", **params)["rows"]

    def name_of(self, person_id: str) -> str:
        return next(k for k, v in self.world.ids.items() if str(v) == person_id)


def verdicts(rows: list[dict[str, Any]], w: World) -> dict[tuple[str, str, str], tuple[str, int, int]]:
    names = {str(v): k for k, v in w.ids.items()}
    return {(names[r["person_id"]], names[r["target_id"]], r["period"]): (r["status"], r["due"], r["done"])
            for r in rows}


@pytest.fixture(scope="module")
def scenario(databases: Databases) -> Iterator[Scenario]:
    """Links from 1 December; 周 on sick leave all December; a January policy of two visits; the escalator runs."""
    clock = SimulatedClock(at("2021-11-30", "09:00"))
    system = bootstrap(databases.clone("liaison"), clock=clock, pool_size=10)
    w = liaison_world(system)
    w.send("hq", li.SetLiaisonDutyPolicy, campaign_id=w.campaign_id, visits_per_place=2,
           effective_from=at("2022-01-01", "00:00"), reason="一月集中整治，加密督查")
    w.send("hq", li.GrantDutyExemption, person_id=w["zhou"], exemption_id=w["sick"], exemption_kind="sick_leave",
           starts_on=date(2021, 12, 1), ends_on=date(2021, 12, 31), reason="住院治疗")
    clock.set(at("2021-12-10", "11:00"))
    log_visit(w, "li", "grid9", at("2021-12-10", "10:00"))  # a grid inside the street counts for the street
    clock.set(at("2021-12-20", "17:00"))
    log_visit(w, "li", "street", at("2021-12-20", "15:00"), others=("nobody",))
    clock.set(at("2021-12-27", "00:00"))
    late = w["late_visit"]
    actions = {
        at("2022-01-01", "00:30"): lambda: (log_visit(w, "li", "street", at("2021-12-31", "23:59")),
                                            log_visit(w, "wang", "road2", at("2022-01-01", "00:01"))),
        at("2022-01-10", "09:30"): lambda: log_visit(w, "li", "road1", at("2021-12-29", "15:00"), visit_id=late),
    }
    escalator = Escalator.for_system(system)
    run_every(escalator, clock, at("2022-01-18", "00:00"), hours=3, actions=actions)
    w.catch_up()
    with psycopg.connect(system.database_url) as conn:
        token = create_token(conn, "hq_office", person_id=w["hq"], campaign_id=w.campaign_id)
    with TestClient(create_app(system)) as client:
        yield Scenario(w, client, {"Authorization": f"Bearer {token}"}, late)
    system.close()


def test_december_and_january_verdicts_by_leader_place_and_period(scenario: Scenario) -> None:
    """December: the street met (a grid visit and one at 23:59 on the 31st), road 1 met late by 李 and exempt for 周,
    road 2 unmet; January under policy v2 owes two visits, and 王's visit at 00:01 on 1 January counts there."""
    w = scenario.world
    found = verdicts(scenario.duties(), w)
    assert found[("li", "street", "2021-12")] == ("met", 1, 3)
    assert found[("li", "road1", "2021-12")] == ("met_late", 1, 1)
    assert found[("wang", "road2", "2021-12")] == ("unmet", 1, 0)
    assert found[("zhou", "road1", "2021-12")] == ("exempt", 0, 0)
    assert found[("li", "street", "2022-01")] == ("pending", 2, 0)
    assert found[("wang", "road2", "2022-01")] == ("pending", 2, 1)
    rows = {(r["person_id"], r["target_id"], r["period"]): r for r in scenario.duties()}
    dec, jan = rows[(str(w["li"]), str(w["street"]), "2021-12")], rows[(str(w["li"]), str(w["street"]), "2022-01")]
    assert (dec["policy_version"], jan["policy_version"]) == (0, 1)
    assert [v["place_id"] for v in dec["visits"]][0] == str(w["grid9"])
    assert jan["last_visit_at"] == at("2021-12-31", "23:59").isoformat() and jan["days_since_last_visit"] == 17
    assert dec["judged_at"] == at("2022-01-07", "00:00").isoformat()


def test_filters_per_leader_place_period_and_status(scenario: Scenario) -> None:
    """The same rows per leader, per place, per period window and per status; a reversed window is refused (422)."""
    w = scenario.world
    assert {r["target_id"] for r in scenario.duties(person_id=str(w["li"]))} == {str(w["street"]), str(w["road1"])}
    assert {r["person_id"] for r in scenario.duties(place_id=str(w["road1"]))} == {str(w["li"]), str(w["zhou"])}
    december = scenario.duties(period_from="2021-12-01", period_to="2021-12-31")
    assert {r["period"] for r in december} == {"2021-12"} and len(december) == 4
    assert [scenario.name_of(r["person_id"]) for r in scenario.duties(status="unmet")] == ["wang"]
    per_place = scenario.get(f"/places/{w['road1']}/duties", period_to="2021-12-31")["rows"]
    assert {r["status"] for r in per_place} == {"met_late", "exempt"}
    bad = scenario.client.get(f"/campaigns/{w.campaign_id}/duties", params={"period_from": "2022-01-02",
                              "period_to": "2022-01-01"}, headers=scenario.headers)
    assert bad.status_code == 422 and bad.json()["code"] == "period_invalid" and bad.json()["message_zh"]


def test_as_of_shows_what_was_known_then(scenario: Scenario) -> None:
    """As of 8 January road 1 was unmet (the late upload came on the 10th); as of 30 December it was pending."""
    w = scenario.world
    on_8th = verdicts(scenario.duties(as_of="2022-01-08T12:00:00+08:00"), w)
    assert on_8th[("li", "road1", "2021-12")] == ("unmet", 1, 0)
    on_30th = verdicts(scenario.duties(as_of="2021-12-30T12:00:00+08:00"), w)
    assert on_30th[("li", "road1", "2021-12")] == ("pending", 1, 0)
    assert ("li", "street", "2022-01") not in on_30th


def test_reminders_go_to_the_leader_and_their_officer_before_the_month_ends(scenario: Scenario) -> None:
    """On 29 December 09:00 (three working days left) 李 and his 联络员 are reminded of road 1, 王 of road 2; nobody else."""
    w = scenario.world
    reminded = [e for e in events_of(w.system, li.LiaisonDutyReminded)]
    assert sorted((scenario.name_of(str(e.person_id)), e.period.label) for e in reminded) == [
        ("li", "2021-12"), ("wang", "2021-12")]
    assert all(e.meta.recorded_at == at("2021-12-29", "09:00") for e in reminded)
    notices = {e.subject_id: e for e in events_of(w.system, NoticeIssued) if e.subject_kind == "liaison_duty"
               and e.notice_kind == "reminder"}
    li_notice = next(n for n in notices.values() if w["li"] in {r.party_id for r in n.recipients})
    assert {r.party_id for r in li_notice.recipients} == {w["li"], w["li_officer"]}
    assert "road1" in li_notice.text_zh and "2021年12月" in li_notice.text_zh


def test_an_unmet_duty_is_hq_work_that_climbs_the_ladder_to_the_leader(scenario: Scenario) -> None:
    """王's December duty: recorded unmet at 00:00 on 7 January, urged to the HQ office at once, 督办 tells 王 himself,
    and at level 3 it is listed for 通报 with a 约谈 of 王 proposed — each step once."""
    w = scenario.world
    duty = li.duty_id_for(w["link:wang:road2"], date(2021, 12, 1))
    (unmet,) = [e for e in events_of(w.system, li.LiaisonDutyFoundUnmet) if e.duty_id == duty]
    assert unmet.meta.recorded_at == at("2022-01-07", "00:00") and unmet.addressed_to_unit_id == w["office"]
    assert unmet.policy_version == 0 and "road2" in unmet.summary_zh
    steps = {e.step_name: e for e in events_of(w.system, EscalationStepTaken) if e.item_id == duty}
    assert set(steps) == {"urge", "supervise", "bulletin_listing", "summons_proposed"}
    assert steps["urge"].meta.recorded_at == at("2022-01-07", "00:00")
    notices = {e.escalation_step_id: e for e in events_of(w.system, NoticeIssued)}
    assert {r.party_id for r in notices[steps["urge"].step_id].recipients} >= {w["office"]}
    assert w["wang"] in {r.party_id for r in notices[steps["supervise"].step_id].recipients}
    (summons,) = [e for e in events_of(w.system, SummonsProposed) if e.summons_id == steps["summons_proposed"].summons_id]
    assert summons.subject.party_id == w["wang"]


def test_a_late_upload_resolves_the_escalation_with_its_reason_and_deletes_nothing(scenario: Scenario) -> None:
    """李's road 1: unmet on 7 January, urged; the upload of the 29 December visit on the 10th resolves it as met late."""
    w = scenario.world
    duty = li.duty_id_for(w["link:li:road1"], date(2021, 12, 1))
    (resolved,) = [e for e in events_of(w.system, li.LiaisonDutyResolved) if e.duty_id == duty]
    assert resolved.resolution == "met_late" and resolved.visit_ids == (scenario.late_visit,)
    assert at("2022-01-10", "09:30") <= resolved.meta.recorded_at <= at("2022-01-10", "12:00")
    assert "urge" in {e.step_name for e in events_of(w.system, EscalationStepTaken) if e.item_id == duty}
    row = next(r for r in scenario.duties(person_id=str(w["li"])) if r["target_id"] == str(w["road1"])
               and r["period"] == "2021-12")
    assert row["visits"][0]["recorded_late"] and row["record"]["resolution"] == "met_late"
    assert row["record"]["found_unmet_at"] is not None and "urge" in row["record"]["steps_done"]
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        item = conn.execute("SELECT closed, state FROM work_items WHERE item_id = %s", (duty,)).fetchone()
    assert item == {"closed": True, "state": "met_late"}


def uuid_of_event(w: World, aggregate_id: UUID, found: Callable[[Any], bool]) -> UUID:
    """The event id (`event_uuid`) of the aggregate's last stored event that `found` accepts."""
    stored = [e for e in w.system.app.history(aggregate_id) if found(e.event)]
    return event_uuid(aggregate_id, stored[-1].originator_version)


def test_the_escalators_liaison_commands_name_what_caused_them(scenario: Scenario) -> None:
    """王's reminder and unmet record are caused by his road 2 link; 李's road 1 resolution by the late upload that met
    it; the 催办 on 王's duty by the unmet record — so its trail runs back to the HQ command that made the link."""
    w = scenario.world
    wang = li.duty_id_for(w["link:wang:road2"], date(2021, 12, 1))
    link = uuid_of_event(w, li.liaison_id_for(w["wang"]),
                         lambda e: isinstance(e, li.LiaisonLinked) and e.link_id == w["link:wang:road2"])
    caused = {type(e.event): e.event.meta.causation_id for e in w.system.app.history(wang)}
    assert caused[li.LiaisonDutyReminded] == link and caused[li.LiaisonDutyFoundUnmet] == link
    road1 = li.duty_id_for(w["link:li:road1"], date(2021, 12, 1))
    (resolved,) = [e for e in w.system.app.history(road1) if isinstance(e.event, li.LiaisonDutyResolved)]
    assert resolved.event.meta.causation_id == uuid_of_event(w, scenario.late_visit, lambda e: True)
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        rows = aq.trail(conn, wang, limit=500)["rows"]
    urge = next(r for r in rows if r["kind"] == "escalation" and r["payload"]["step_name"] == "urge")
    assert [c["type"] for c in urge["causation_chain"]] == [li.LiaisonDutyFoundUnmet.event_name,
                                                            li.LiaisonLinked.event_name]
    link_row = urge["causation_chain"][-1]
    assert urge["root_command_id"] == link_row["command_id"] and link_row["actor"]["role"] == "hq_office"


def test_the_escalation_list_has_a_per_leader_view(scenario: Scenario) -> None:
    """Filtered by 王, the list holds his unmet duty; 李's list does not; grouped per leader, 王 leads with it."""
    w = scenario.world
    base = f"/campaigns/{w.campaign_id}/escalations"
    wang = scenario.get(base, leader_id=str(w["wang"]))["rows"]
    assert any(r["item_kind"] == "liaison_duty" and r["person_id"] == str(w["wang"]) for r in wang)
    assert not any(r["item_kind"] == "liaison_duty" for r in scenario.get(base, leader_id=str(w["li"]))["rows"])
    grouped = scenario.get(f"{base}/by_leader")["leaders"]
    wang_group = next(g for g in grouped if g["person_id"] == str(w["wang"]))
    assert wang_group["unmet_duties"] == 1 and wang_group["designated"] and wang_group["rank"] == "人大常委会副主任"


def test_the_liaison_leader_replaces_the_bao_bao_stand_in_where_one_is_defined(scenario: Scenario) -> None:
    """Notices about road 2 tell its linked leader 王; rows at grid 1 (no link) still show the 包保人 李 standing in."""
    w = scenario.world
    rows = scenario.get(f"/campaigns/{w.campaign_id}/escalations")["rows"]
    road2 = [r for r in rows if r["place"] and r["place"]["id"] == str(w["road2"])]
    assert road2 and all(r["liaison_source"] == "liaison_link" for r in road2)
    assert {p["party_id"] for r in road2 for p in r["liaison_leaders"]} == {str(w["wang"])}


def test_the_matrix_shows_the_liaison_leader_now_and_as_of(scenario: Scenario) -> None:
    """Before 1 December no liaison rows; on 15 December 李 and 周 for road 1, 李 for the street, 王 for road 2."""
    w = scenario.world
    path = f"/campaigns/{w.campaign_id}/matrix"
    before = [r for r in scenario.get(path, as_of="2021-11-30T12:00:00+08:00")["rows"] if r["role"] == "liaison"]
    during = [(scenario.name_of(r["scope_id"]), scenario.name_of(r["party_id"]))
              for r in scenario.get(path, as_of="2021-12-15T12:00:00+08:00")["rows"] if r["role"] == "liaison"]
    assert before == [] and sorted(during) == [("road1", "li"), ("road1", "zhou"), ("road2", "wang"), ("street", "li")]
    road1 = scenario.get(f"/places/{w['road1']}/responsible")["rows"]
    assert {r["party_name"] for r in road1 if r["role"] == "liaison"} == {"li", "zhou"}


def test_a_leader_sees_their_places_problems_escalations_and_what_is_due_next(scenario: Scenario) -> None:
    """王's view: road 2 this period pending with one more visit owed by 1 February; his escalation on the list."""
    w = scenario.world
    view = scenario.get(f"/persons/{w['wang']}/duties")
    (road2,) = view["links"]
    assert road2["this_period"]["status"] == "pending" and road2["this_period"]["due"] == 2
    assert road2["due_next"]["visits"] == 1 and road2["due_next"]["by"].startswith("2022-02-01T00:00")
    assert road2["unmet_periods"] == 1 and view["body_zh"] == "市人大常委会"
    assert any(e["item_kind"] == "liaison_duty" for e in view["escalations"])
    missing = scenario.client.get(f"/persons/{w['nobody']}/duties", headers=scenario.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "leader_not_found"


def test_the_duty_trail_names_who_did_what_when_and_why_in_order(scenario: Scenario) -> None:
    """李's trail: designation and links by HQ with reasons, visits with both times, the reminder, the unmet record,
    the urge, the late visit and the resolution, each period's verdict with its policy version — in time order."""
    w = scenario.world
    entries = scenario.get(f"/persons/{w['li']}/duties/trail")["entries"]
    kinds = [e["entry_kind"] for e in entries]
    assert kinds[:4] == ["designated", "linked", "linked", "policy_set"]
    assert {"designated", "linked", "visit", "reminded", "found_unmet", "escalation_step", "resolved", "verdict",
            "policy_set"} <= set(kinds)
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    linked = next(e for e in entries if e["entry_kind"] == "linked")
    assert linked["actor"]["role"] == "hq_office" and linked["reason"] == "创建动员大会确定挂钩联系点"
    assert linked["correlation_id"] and linked["command_id"]
    late = next(e for e in entries if e["entry_kind"] == "visit" and e["subject_id"] == str(scenario.late_visit))
    assert late["occurred_at"].startswith("2021-12-29T15:00") and late["recorded_at"].startswith("2022-01-10")
    unmet = next(e for e in entries if e["entry_kind"] == "found_unmet")
    step = next(e for e in entries if e["entry_kind"] == "escalation_step")
    assert unmet["actor"]["role"] == step["actor"]["role"] == "system" and unmet["correlation_id"]
    assert unmet["details"]["judged_at"].startswith("2022-01-07T00:00") and step["details"]["step_name"] == "urge"
    verdict = next(e for e in entries if e["entry_kind"] == "verdict" and e["details"]["period"] == "2021-12"
                   and e["details"]["target_id"] == str(w["road1"]))
    assert verdict["details"]["status"] == "met_late" and verdict["details"]["policy_version"] == 0
    assert "第0版规则" in verdict["summary_zh"]
    response = scenario.client.get(f"/persons/{w['li']}/duties/trail", params={"format": "csv"},
                                   headers=scenario.headers)
    assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0][:5] == ["时间", "发生时间", "记录时间", "类型", "摘要"] and len(table) == len(entries) + 1


def test_the_bulletin_draft_lists_leaders_with_unmet_duties_in_its_own_section(scenario: Scenario) -> None:
    """The draft for 10–18 January has a 挂钩联系履职 section naming 王 (road 2), not in the overdue-problem section."""
    w = scenario.world
    draft = scenario.get(f"/campaigns/{w.campaign_id}/bulletins/draft", period_start="2022-01-10",
                         period_end="2022-01-18")["draft"]
    (listing,) = draft["liaison_duties"]
    assert listing["person_id"] == str(w["wang"]) and listing["places_zh"] == ["road2"]
    assert listing["unmet_periods"] == 1 and "五、挂钩联系履职情况" in draft["body_zh"]
    assert not any("road2" in (s["summary_zh"] or "") for s in draft["listed_escalations"])


def test_the_cli_prints_compliance_a_leaders_view_and_the_trail(scenario: Scenario, monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Any) -> None:
    """`dudao duties list|leader|trail` read the same rows: table, JSON and CSV."""
    w = scenario.world
    monkeypatch.setenv("DUDAO_DATABASE_URL", w.system.database_url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["duties", "list", str(w.campaign_id), "--to", "2021-12-31", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert {r["status"] for r in json.loads(listed.stdout)["rows"]} == {"met", "met_late", "unmet", "exempt"}
    table = runner.invoke(cli, ["duties", "list", str(w.campaign_id), "--person", str(w["wang"])])
    assert table.exit_code == 0 and "未履职" in table.stdout
    view = runner.invoke(cli, ["duties", "leader", str(w["wang"])])
    assert view.exit_code == 0 and "road2" in view.stdout and "人大常委会副主任" in view.stdout
    target = tmp_path / "trail.csv"
    trail = runner.invoke(cli, ["duties", "trail", str(w["li"]), "--format", "csv", "--output", str(target)])
    assert trail.exit_code == 0 and target.read_bytes().startswith(b"\xef\xbb\xbf")
    as_json = runner.invoke(cli, ["duties", "trail", str(w["li"]), "--format", "json"])
    assert {e["entry_kind"] for e in json.loads(as_json.stdout)["entries"]} >= {"linked", "resolved", "verdict"}
    assert runner.invoke(cli, ["duties", "leader", str(w["nobody"])]).exit_code == 1


def _tables(url: str) -> dict[str, list[Any]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in (*LiaisonDutiesProjection.tables, "work_items", "escalation_steps", "notices")}


def test_rebuilding_from_zero_gives_the_same_rows_and_verdicts(scenario: Scenario) -> None:
    """Rebuilding the liaison and work-item projections reproduces every row and every verdict."""
    w = scenario.world
    before, verdicts_before = _tables(w.system.database_url), scenario.duties(as_of="2022-01-12T12:00:00+08:00")
    projector = w.system.projector
    for p in projector.projections:
        if p.name in (LiaisonDutiesProjection.name, WorkItemsProjection.name):
            projector.rebuild(p)
    assert _tables(w.system.database_url) == before
    assert scenario.duties(as_of="2022-01-12T12:00:00+08:00") == verdicts_before
