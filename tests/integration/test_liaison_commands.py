"""Liaison commands over HTTP against real PostgreSQL: bad input refused with zh/en messages and nothing written,
and a handover mid-month judged by the pro-rating rule, in one write, shown by the matrix as of either side."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import liaison as li
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.escalation_kit import at
from tests.support.liaison_kit import liaison_world
from tests.support.problem_world import World

pytestmark = pytest.mark.integration


@dataclass
class Api:
    world: World
    client: TestClient
    hq: dict[str, str]
    leader: dict[str, str]

    def post(self, name: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        payload = {"command_id": str(uuid4()), **{k: str(v) if isinstance(v, (UUID, date)) else v
                                                  for k, v in body.items()}}
        return self.client.post(f"/commands/{name}", json=payload, headers=headers or self.hq)

    def refused(self, name: str, body: dict[str, Any], status: int, code: str,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The command is refused with this status and code, a message in both languages, and nothing written."""
        head = self.world.log_head()
        response = self.post(name, body, headers)
        assert response.status_code == status, response.text
        error = response.json()
        assert error["code"] == code and error["message_zh"] and error["message_en"]
        assert self.world.log_head() == head
        return error


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    clock = SimulatedClock(at("2021-11-30", "09:00"))
    system = bootstrap(database_url, clock=clock)
    w = liaison_world(system)
    clock.set(at("2021-12-15", "10:00"))
    with psycopg.connect(database_url) as conn:
        hq = create_token(conn, "hq_office", person_id=w["hq"], campaign_id=w.campaign_id)
        leader = create_token(conn, "leader", person_id=w["li"], campaign_id=w.campaign_id)
    with TestClient(create_app(system)) as client:
        yield Api(w, client, {"Authorization": f"Bearer {hq}"}, {"Authorization": f"Bearer {leader}"})
    system.close()


def link_body(w: World, **changes: Any) -> dict[str, Any]:
    return {"link_id": uuid4(), "person_id": w["li"], "campaign_id": w.campaign_id, "target_id": w["road2"],
            "reason": "调整挂钩联系点", **changes}


def test_a_link_to_an_unknown_place_or_person_is_404_and_to_a_non_leader_422(api: Api) -> None:
    """Unknown place → 404 place_not_found; unknown person → 404 person_not_found; a person never designated → 422."""
    w = api.world
    api.refused("link_liaison", link_body(w, target_id=uuid4()), 404, "place_not_found")
    api.refused("link_liaison", link_body(w, target_kind="unit", target_id=uuid4()), 404, "unit_not_found")
    api.refused("link_liaison", link_body(w, person_id=uuid4()), 404, "person_not_found")
    error = api.refused("link_liaison", link_body(w, person_id=w["nobody"]), 422, "not_a_leader")
    assert "挂钩领导" in error["message_zh"] and "leader" in error["message_en"]


def test_an_overlapping_duplicate_link_is_409_while_a_later_one_after_the_end_is_fine(api: Api) -> None:
    """李 already holds the street from 1 December: another open link to it is 409; one after an end is accepted."""
    w = api.world
    api.refused("link_liaison", link_body(w, target_id=w["street"], valid_from=at("2022-03-01").isoformat()), 409,
                "link_overlaps")
    ended = api.post("end_liaison_link", {"person_id": w["li"], "link_id": w["link:li:street"],
                                          "valid_to": at("2022-01-31", "00:00").isoformat(), "reason": "分工调整"})
    assert ended.status_code == 201, ended.text
    again = api.post("link_liaison", link_body(w, target_id=w["street"], valid_from=at("2022-02-01", "00:00").isoformat()))
    assert again.status_code == 201, again.text
    api.refused("link_liaison", link_body(w, link_id=w["link:li:road1"]), 409, "link_exists")


def test_exemptions_that_overlap_nothing_or_end_before_they_start_are_422(api: Api) -> None:
    """An exemption in 2020 (before every link) and one ending before it starts are refused."""
    w = api.world
    body = {"person_id": w["li"], "exemption_id": uuid4(), "exemption_kind": "business_trip", "reason": "赴省公出"}
    api.refused("grant_duty_exemption", {**body, "starts_on": "2020-03-01", "ends_on": "2020-03-05"}, 422,
                "exemption_overlaps_nothing")
    api.refused("grant_duty_exemption", {**body, "starts_on": "2021-12-20", "ends_on": "2021-12-18"}, 422,
                "exemption_ends_before_start")


def test_reasons_are_required_and_only_hq_may_link(api: Api) -> None:
    """A blank reason is invalid input (422); a leader's own token may not link (403)."""
    w = api.world
    api.refused("link_liaison", link_body(w, reason="  "), 422, "invalid_input")
    api.refused("end_liaison_link", {"person_id": w["li"], "link_id": w["link:li:road1"]}, 422, "invalid_input")
    api.refused("set_liaison_duty_policy", {"campaign_id": w.campaign_id, "visits_per_place": 2}, 422,
                "invalid_input")
    api.refused("link_liaison", link_body(w), 403, "role_not_allowed", headers=api.leader)


def test_a_link_that_ends_before_it_starts_or_an_unknown_link_is_refused(api: Api) -> None:
    """valid_to before valid_from → 422; ending or handing over a link the leader does not hold → 404."""
    w = api.world
    api.refused("link_liaison", link_body(w, valid_from=at("2022-01-10").isoformat(),
                                          valid_to=at("2022-01-01").isoformat()), 422, "link_ends_before_start")
    api.refused("end_liaison_link", {"person_id": w["wang"], "link_id": w["link:li:road1"], "reason": "调整"}, 404,
                "link_not_found")
    api.refused("hand_over_liaison", {"person_id": w["li"], "link_id": w["link:li:road1"], "to_person_id": w["li"],
                                      "new_link_id": uuid4(), "reason": "交接"}, 422, "handover_to_self")
    api.refused("hand_over_liaison", {"person_id": w["li"], "link_id": w["link:li:road1"],
                                      "to_person_id": w["nobody"], "new_link_id": uuid4(), "reason": "交接"}, 422,
                "not_a_leader")


def test_a_visit_dated_in_the_future_is_422(api: Api) -> None:
    """The existing rule: a leader's visit occurring after now (beyond the clock skew) is refused."""
    w = api.world
    api.refused("log_visit", {"occurred_at": at("2021-12-16", "10:00").isoformat(), "visit_id": uuid4(),
                              "campaign_id": w.campaign_id, "place_id": w["street"], "participants": [str(w["li"])]},
                422, "occurred_in_future", headers=api.leader)


def test_duty_commands_refuse_what_is_not_due_and_hq_closes_only_an_unmet_duty(api: Api) -> None:
    """A reminder before its time → 422 reminder_not_due; an unmet record before the grace ran out → 422; closing a
    duty never found unmet → 404; the system's commands are not for a leader's token (403)."""
    w = api.world
    duty = {"campaign_id": w.campaign_id, "person_id": w["li"], "link_id": w["link:li:road1"],
            "period_start": "2021-12-01"}
    api.refused("remind_liaison_duty", duty, 422, "reminder_not_due")
    api.refused("record_unmet_liaison_duty", duty, 422, "duty_not_unmet")
    api.refused("close_liaison_duty", {**duty, "reason": "说明"}, 404, "unmet_duty_not_found")
    api.refused("remind_liaison_duty", {**duty, "period_start": "2021-12-02"}, 404, "duty_not_found")
    api.refused("remind_liaison_duty", duty, 403, "role_not_allowed", headers=api.leader)


def test_a_handover_mid_month_ends_one_link_and_starts_the_other_at_the_same_instant(api: Api) -> None:
    """Road 1 handed from 李 to 王 on 10 December: one write, two events; 李 held 9 of 31 days (owes nothing),
    王 22 (owes the visit); the matrix shows 李 as of the 5th and 王 as of the 15th."""
    w = api.world
    handed = api.post("hand_over_liaison", {"person_id": w["li"], "link_id": w["link:li:road1"],
                                            "to_person_id": w["wang"], "new_link_id": w["new"],
                                            "at": at("2021-12-10", "00:00").isoformat(), "reason": "工作调整交接"})
    assert handed.status_code == 201, handed.text
    events = handed.json()["events"]
    assert [e["type"] for e in events] == [li.LiaisonLinkEnded.event_name, li.LiaisonLinked.event_name]
    assert {e["aggregate_id"] for e in events} == {str(li.liaison_id_for(w["li"])), str(li.liaison_id_for(w["wang"]))}
    w.catch_up()
    rows = api.client.get(f"/campaigns/{w.campaign_id}/duties", params={"place_id": str(w["road1"])},
                          headers=api.hq).json()["rows"]
    found = {(r["person_id"], r["period"]): (r["due"], r["status"]) for r in rows if r["period"] == "2021-12"}
    assert found[(str(w["li"]), "2021-12")] == (0, "not_due")
    assert found[(str(w["wang"]), "2021-12")] == (1, "pending")
    matrix = f"/campaigns/{w.campaign_id}/matrix"

    def road1_leaders(as_of: str) -> set[str]:
        rows = api.client.get(matrix, params={"as_of": as_of}, headers=api.hq).json()["rows"]
        return {r["party_name"] for r in rows if r["role"] == "liaison" and r["scope_id"] == str(w["road1"])}

    assert road1_leaders("2021-12-05T12:00:00+08:00") == {"li", "zhou"}
    assert road1_leaders("2021-12-15T09:00:00+08:00") == {"wang", "zhou"}


def test_a_link_to_a_unit_counts_visits_at_the_places_that_unit_leads(api: Api) -> None:
    """王 linked to unit A (lead of grid 1) on 15 December: his visit to site s1 inside grid 1 meets December's duty
    (held 16.6 of 31 days, so the visit is owed), and the matrix lists him as the unit's liaison leader."""
    w = api.world
    linked = api.post("link_liaison", {"link_id": w["unit_link"], "person_id": w["wang"], "campaign_id": w.campaign_id,
                                       "target_kind": "unit", "target_id": w["unit_a"], "reason": "挂钩联系牵头单位"})
    assert linked.status_code == 201, linked.text
    visit = api.post("log_visit", {"occurred_at": at("2021-12-15", "10:00").isoformat(), "visit_id": uuid4(),
                                   "campaign_id": w.campaign_id, "place_id": w["s1"], "participants": [str(w["wang"])]})
    assert visit.status_code == 201, visit.text
    w.catch_up()
    rows = api.client.get(f"/campaigns/{w.campaign_id}/duties", params={"person_id": str(w["wang"])},
                          headers=api.hq).json()["rows"]
    (unit_row,) = [r for r in rows if r["target_kind"] == "unit"]
    assert (unit_row["due"], unit_row["done"], unit_row["status"], unit_row["target_name"]) == (1, 1, "met", "unit_a")
    matrix = api.client.get(f"/campaigns/{w.campaign_id}/matrix", headers=api.hq).json()["rows"]
    assert any(r["scope_kind"] == "unit" and r["role"] == "liaison" and r["party_name"] == "wang" for r in matrix)
