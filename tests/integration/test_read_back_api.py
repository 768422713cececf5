"""Everything written can be read back over HTTP, against real PostgreSQL (issue 12, items 1 and 4).

A field app that logged a visit reads it back (`GET /visits/{id}`, `GET /campaigns/{id}/visits`) with its
findings and the problems they became; a client lists the campaigns its token may see and the policies in
force; the office's working-day calculator answers with the very rule a 交办 counts its deadline by.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.kernel.calendar import CHINA_TZ
from domain.policy.commands import SetCalendarDays, SetLateEntryWindow
from domain.structure.campaign import StartCampaign
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.problem_world import ADMIN, World, build_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(database_url: str, clock: SimulatedClock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.system), raise_server_exceptions=False) as c:
        yield c


def auth(world: World, who: str, campaign_id: Any = None) -> dict[str, str]:
    actor = world.actors[who] if who != "admin" else ADMIN
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name, campaign_id=campaign_id)
    return {"Authorization": f"Bearer {token}"}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def finding(world: World, place: str, description: str) -> dict[str, Any]:
    return {"problem_id": str(uuid4()), "category": "garbage_dumping", "severity": "normal",
            "description": description, "place_id": str(world[place])}


def log_visit(world: World, client: TestClient, place: str, findings: list[dict[str, Any]],
              hours_ago: float = 2) -> dict[str, Any]:
    body = {"command_id": str(uuid4()), "occurred_at": (world.system.clock() - timedelta(hours=hours_ago)).isoformat(),
            "visit_id": str(uuid4()), "campaign_id": str(world.campaign_id), "place_id": str(world[place]),
            "participants": [str(world["supervisor"])], "findings": findings,
            "checklist": [{"item": "门前三包", "result": "fail"}]}
    response = client.post("/commands/log_visit", json=body, headers=auth(world, "supervisor"))
    assert response.status_code == 201, response.text
    return body


def test_a_logged_visit_reads_back_with_its_findings_and_the_problems_they_became(world: World, client: TestClient,
                                                                                     clock: SimulatedClock) -> None:
    """GET /visits/{id} answers what was uploaded; after a 交办 each finding shows its problem's state and unit."""
    body = log_visit(world, client, "grid1", [finding(world, "s1", "垃圾堆积"), finding(world, "s3", "占道经营")])
    headers = auth(world, "hq")
    before = client.get(f"/visits/{body['visit_id']}", headers=headers)
    assert before.status_code == 200, before.text
    visit = before.json()
    assert (visit["visit_id"], visit["place_name"], visit["status"]) == (body["visit_id"], "grid1", "closed")
    assert when(visit["occurred_at"]) == when(body["occurred_at"]) and visit["checklist"][0]["item"] == "门前三包"
    assert [f["problem"]["state"] for f in visit["findings"]] == ["reported", "reported"]
    assert visit["participant_names"] == {str(world["supervisor"]): "supervisor"}
    assigned_at = world.system.clock()
    clock.advance(timedelta(minutes=5))
    first = body["findings"][0]["problem_id"]
    assert client.post("/commands/assign_problem", json={"command_id": str(uuid4()), "problem_id": first},
                       headers=headers).status_code == 201
    after = client.get(f"/visits/{body['visit_id']}", headers=headers).json()
    assert after["findings"][0]["problem"]["state"] == "assigned"
    assert (after["findings"][0]["problem"]["unit_id"], after["findings"][0]["problem"]["unit_name"]) == (
        str(world["unit_a"]), "unit_a")
    then = client.get(f"/visits/{body['visit_id']}", params={"as_of": assigned_at.isoformat()}, headers=headers).json()
    assert then["findings"][0]["problem"]["state"] == "reported", "as_of: the problem as it stood then"


def test_an_unknown_visit_is_a_404_and_another_campaigns_token_gets_403(world: World, client: TestClient) -> None:
    """A visit id nobody used is 404 visit_not_found; a token bound to another campaign may not read the visit."""
    body = log_visit(world, client, "grid1", [])
    assert client.get(f"/visits/{uuid4()}", headers=auth(world, "hq")).json()["code"] == "visit_not_found"
    other = client.get(f"/visits/{body['visit_id']}", headers=auth(world, "hq", campaign_id=uuid4()))
    assert other.status_code == 403 and other.json()["code"] == "campaign_not_allowed"


def test_the_campaigns_visit_list_filters_by_supervisor_place_grid_and_days(world: World, client: TestClient) -> None:
    """Visits list newest first with their findings; person, place (or inside it), grid and day filters narrow them."""
    in_grid1 = log_visit(world, client, "s1", [finding(world, "s1", "垃圾堆积")], hours_ago=30)
    in_grid2 = log_visit(world, client, "s3", [finding(world, "s3", "占道经营")], hours_ago=2)
    world.catch_up()
    headers = auth(world, "hq")
    url = f"/campaigns/{world.campaign_id}/visits"
    everything = client.get(url, headers=headers).json()
    assert [r["visit_id"] for r in everything["rows"]] == [in_grid2["visit_id"], in_grid1["visit_id"]]
    assert everything["total"] == 2 and everything["rows"][0]["findings"][0]["problem"]["state"] == "reported"
    assert everything["rows"][0]["grid_name"] == "grid2"

    def ids(**params: Any) -> list[str]:
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [r["visit_id"] for r in response.json()["rows"]]

    assert ids(person_id=str(world["supervisor"])) == [in_grid2["visit_id"], in_grid1["visit_id"]]
    assert ids(person_id=str(world["hq"])) == []
    assert ids(place_id=str(world["grid1"])) == [in_grid1["visit_id"]], "a visit at a place inside the grid"
    assert ids(grid_id=str(world["grid2"])) == [in_grid2["visit_id"]]
    day = when(in_grid1["occurred_at"]).astimezone(CHINA_TZ).date()  # 13 Dec in Beijing; the other is on the 14th
    assert ids(date_from=str(day), date_to=str(day)) == [in_grid1["visit_id"]]
    assert ids(date_from=str(day + timedelta(days=1))) == [in_grid2["visit_id"]]
    assert ids(limit=1, offset=1) == [in_grid1["visit_id"]]


def test_a_units_token_sees_only_the_visits_that_found_its_units_problems(world: World, client: TestClient) -> None:
    """Unit A's officer sees the grid-1 finding once it is handed to unit A, and nothing of grid 2's."""
    body = log_visit(world, client, "grid1", [finding(world, "s1", "垃圾堆积"), finding(world, "s3", "占道经营")])
    for f in body["findings"]:
        client.post("/commands/assign_problem", json={"command_id": str(uuid4()), "problem_id": f["problem_id"]},
                    headers=auth(world, "hq"))
    world.catch_up()
    officer = auth(world, "officer_a")
    listed = client.get(f"/campaigns/{world.campaign_id}/visits", headers=officer).json()["rows"]
    assert [[f["problem_id"] for f in r["findings"]] for r in listed] == [[body["findings"][0]["problem_id"]]]
    single = client.get(f"/visits/{body['visit_id']}", headers=officer).json()
    assert [f["problem_id"] for f in single["findings"]] == [body["findings"][0]["problem_id"]]


def test_the_campaign_list_shows_what_the_token_may_see(world: World, client: TestClient) -> None:
    """An unbound token lists every campaign; one bound to a campaign lists that campaign alone."""
    other = uuid4()
    world.send(ADMIN, StartCampaign, campaign_id=other, name="另一个创建活动", jurisdiction="某市",
               launched_on=world.system.clock().date())
    world.catch_up()
    admin_rows = client.get("/campaigns", headers=auth(world, "admin")).json()["rows"]
    assert {r["campaign_id"] for r in admin_rows} >= {str(world.campaign_id), str(other)}
    bound = client.get("/campaigns", headers=auth(world, "hq", campaign_id=world.campaign_id)).json()["rows"]
    assert [(r["campaign_id"], r["name"]) for r in bound] == [(str(world.campaign_id), "高安市“三城同创”")]


def test_the_policies_in_force_read_as_of_a_date(world: World, client: TestClient, clock: SimulatedClock) -> None:
    """The deadline policy the world set is in force, the late-entry window is the default 30 days until HQ sets 10;
    asked as of before that version, the default is what was in force."""
    headers = auth(world, "hq")
    url = f"/campaigns/{world.campaign_id}/policies"
    first = client.get(url, headers=headers).json()["policies"]
    assert first["deadlines"]["default"] is False and first["deadlines"]["in_force"]["default"]["amount"] == 3
    assert (first["late_entry_window"]["default"], first["late_entry_window"]["in_force"]["days"]) == (True, 30)
    assert first["escalation_ladder"]["default"] is True and first["auto_assignment"]["in_force"]["enabled"] is False
    before = world.system.clock()
    clock.advance(timedelta(hours=1))
    world.send("hq", SetLateEntryWindow, campaign_id=world.campaign_id, days=10)
    now = client.get(url, headers=headers).json()["policies"]["late_entry_window"]
    assert (now["default"], now["in_force"]["days"], len(now["versions"])) == (False, 10, 1)
    then = client.get(url, params={"as_of": before.isoformat()}, headers=headers).json()["policies"]
    assert then["late_entry_window"]["in_force"]["days"] == 30 and then["late_entry_window"]["versions"] == []


def test_the_year_calendar_lists_the_national_holidays_and_the_campaigns_local_days(world: World,
                                                                                     client: TestClient) -> None:
    """2021: 国庆 1–7 October off and 9 October (a Saturday) worked, with their names; a local day off joins them."""
    world.send("hq", SetCalendarDays, campaign_id=world.campaign_id, days_off=(datetime(2021, 12, 20).date(),),
               effective_from=datetime.fromisoformat("2021-01-01T00:00:00+08:00"))
    body = client.get(f"/campaigns/{world.campaign_id}/calendar", params={"year": 2021}, headers=auth(world, "hq")).json()
    assert body["official"] is True and "国庆节" in [h["name"] for h in body["holidays"]]
    assert {"2021-10-01", "2021-10-07", "2021-12-20"} <= set(body["days_off"])
    assert "2021-10-09" in body["make_up_workdays"] and body["local"]["days_off"] == ["2021-12-20"]
    assert body["working_days"] == 365 - 104 - len(body["days_off"]) + len(body["make_up_workdays"])
    assert client.get(f"/campaigns/{world.campaign_id}/calendar", params={"year": 1999},
                      headers=auth(world, "hq")).status_code == 422


def test_the_deadline_calculator_counts_as_a_handing_over_does(world: World, client: TestClient) -> None:
    """1 working day from 30 Sep 2021 10:00 is 8 Oct 10:00 (the 国庆 week off); a 交办 at an instant with the
    world's 3-day limit gets exactly the calculator's deadline for 3 working days from then."""
    headers = auth(world, "hq")
    url = f"/campaigns/{world.campaign_id}/calendar/deadline"
    golden = client.get(url, params={"from": "2021-09-30T10:00:00+08:00", "working_days": 1}, headers=headers)
    assert golden.status_code == 200, golden.text
    assert when(golden.json()["deadline"]) == when("2021-10-08T10:00:00+08:00")
    hours = client.get(url, params={"from": "2021-09-30T16:00:00+08:00", "working_hours": 2}, headers=headers).json()
    assert when(hours["deadline"]) == when("2021-10-08T10:00:00+08:00")
    body = log_visit(world, client, "s1", [finding(world, "s1", "垃圾堆积")])
    problem_id = body["findings"][0]["problem_id"]
    assigned_at = world.system.clock()
    client.post("/commands/assign_problem", json={"command_id": str(uuid4()), "problem_id": problem_id},
                headers=headers)
    deadline = client.get(f"/problems/{problem_id}", headers=headers).json()["problem"]["deadline"]
    calculated = client.get(url, params={"from": assigned_at.isoformat(), "working_days": 3}, headers=headers).json()
    assert when(calculated["deadline"]) == when(deadline)
    neither = client.get(url, params={"from": assigned_at.isoformat()}, headers=headers)
    assert neither.status_code == 422 and neither.json()["code"] == "one_limit_required"
