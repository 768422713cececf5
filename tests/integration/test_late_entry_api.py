"""Late entry (补录) over HTTP against real PostgreSQL: a 交办单 handed over on Friday and typed in on Tuesday.

The deadline, the 交办单's signing time and the escalator all count from Friday; the problem's timeline keeps
both times; a unit's `occurred_at` on 签收 is refused (422) and writes nothing; naive and future times are 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from domain.escalation.ladder import step_id_for
from domain.escalation.notice import DEFAULT_ACK_WORKING_HOURS
from domain.problem.assignment_notice import assignment_notice_id
from infra.bootstrap import bootstrap
from infra.calendars import official_calendar
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from infra.http import create_app
from infra.http.auth import create_token
from infra.http.queries import load_state
from tests.support.problem_world import World, build_world

pytestmark = pytest.mark.integration

THURSDAY, FRIDAY = "2021-12-09T10:00:00+08:00", "2021-12-10T15:00:00+08:00"  # the world's clock: Tue 14 Dec 09:00


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def world(database_url: str, clock: SimulatedClock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.system), raise_server_exceptions=False) as c:
        yield c


def auth(world: World, who: str) -> dict[str, str]:
    actor = world.actors[who]
    with psycopg.connect(world.system.database_url) as conn:
        return {"Authorization": f"Bearer {create_token(conn, actor.role, person_id=actor.person_id)}"}


def found_on_thursday(world: World) -> Any:
    problem_id = uuid4()
    world.send("supervisor", pr.ReportProblem, occurred_at=when(THURSDAY), problem_id=problem_id,
               campaign_id=world.campaign_id, category="garbage_dumping", place_id=world["s1"],
               description="背街小巷垃圾堆积", source="hotline")
    world.catch_up()
    return problem_id


def late_assignment(world: World, client: TestClient, problem_id: Any) -> Any:
    body = {"command_id": str(uuid4()), "problem_id": str(problem_id), "occurred_at": FRIDAY,
            "late_entry_reason": "周五纸质交办单，周二补录"}
    return client.post("/commands/assign_problem", json=body, headers=auth(world, "hq"))


def test_a_late_assignment_counts_from_friday_and_keeps_both_times(world: World, client: TestClient) -> None:
    """Deadline 3 working days from Friday 15:00 (Wednesday 15:00), not from Tuesday; the 交办单's signing is due 24
    working hours from Friday; the timeline shows it occurred on Friday and was recorded on Tuesday."""
    problem_id = found_on_thursday(world)
    response = late_assignment(world, client, problem_id)
    assert response.status_code == 201, response.text
    world.catch_up()
    body = client.get(f"/problems/{problem_id}", headers=auth(world, "hq")).json()
    assert when(body["problem"]["assigned_at"]) == when(FRIDAY)
    assert when(body["problem"]["deadline"]) == when("2021-12-15T15:00:00+08:00")
    (assigned,) = [t for t in body["timeline"] if t["event_type"] == "ProblemAssigned"]
    assert when(assigned["occurred_at"]) == when(FRIDAY) and when(assigned["recorded_at"]) == world.system.clock()
    assert "补录" in assigned["summary_zh"] and assigned["data"]["late_entry"]["reason"].startswith("周五")
    found = load_state(world.system.app, "notice", assignment_notice_id(problem_id, world["unit_a"], 0))
    assert found is not None
    due = official_calendar().add_working_hours(when(FRIDAY), DEFAULT_ACK_WORKING_HOURS)
    assert found[0].ack_due_at == due


def test_the_escalator_counts_a_late_assignment_from_its_real_time(world: World, client: TestClient,
                                                                   clock: SimulatedClock) -> None:
    """On Wednesday 16:00 — past Friday's deadline, two days before a Tuesday-counted one — the 催办 step is taken."""
    problem_id = found_on_thursday(world)
    assert late_assignment(world, client, problem_id).status_code == 201
    world.catch_up()
    clock.set(when("2021-12-15T16:00:00+08:00"))
    Escalator.for_system(world.system).tick()
    assert load_state(world.system.app, "escalation", step_id_for("problem", problem_id, "urge")) is not None


def test_a_units_occurred_at_on_acknowledgement_is_refused_and_writes_nothing(world: World, client: TestClient) -> None:
    """The unit officer's 签收 with occurred_at is 422 late_entry_not_allowed; nothing is stored."""
    problem_id = found_on_thursday(world)
    assert late_assignment(world, client, problem_id).status_code == 201
    head = world.log_head()
    body = {"command_id": str(uuid4()), "problem_id": str(problem_id), "occurred_at": FRIDAY,
            "late_entry_reason": "早已签收"}
    refused = client.post("/commands/acknowledge_problem", json=body, headers=auth(world, "officer_a"))
    assert (refused.status_code, refused.json()["code"]) == (422, "late_entry_not_allowed")
    assert world.log_head() == head


def test_hq_enters_the_units_paper_acknowledgement_at_its_real_time(world: World, client: TestClient) -> None:
    """HQ's late 签收 on the unit's behalf: the problem and its 交办单 are acknowledged, signed on Friday 16:00."""
    problem_id = found_on_thursday(world)
    assert late_assignment(world, client, problem_id).status_code == 201
    body = {"command_id": str(uuid4()), "problem_id": str(problem_id), "occurred_at": "2021-12-10T16:00:00+08:00",
            "late_entry_reason": "签收单已签字"}
    response = client.post("/commands/acknowledge_problem", json=body, headers=auth(world, "hq"))
    assert response.status_code == 201, response.text
    state = client.get(f"/problems/{problem_id}", headers=auth(world, "hq")).json()["problem"]
    assert state["state"] == "acknowledged" and when(state["acknowledged_at"]) == when("2021-12-10T16:00:00+08:00")


@pytest.mark.parametrize("occurred_at, code", [("2021-12-10T15:00:00", None), ("2021-12-20T15:00:00+08:00",
                                                                                 "occurred_in_future")])
def test_a_naive_or_future_occurred_at_is_422(world: World, client: TestClient, occurred_at: str,
                                              code: str | None) -> None:
    """A time without an offset, or one after now, is refused at once; nothing is stored."""
    problem_id = found_on_thursday(world)
    head = world.log_head()
    body = {"command_id": str(uuid4()), "problem_id": str(problem_id), "occurred_at": occurred_at,
            "late_entry_reason": "补录"}
    refused = client.post("/commands/assign_problem", json=body, headers=auth(world, "hq"))
    assert refused.status_code == 422 and (code is None or refused.json()["code"] == code), refused.text
    assert world.log_head() == head


def test_a_late_entry_beyond_the_campaigns_window_is_refused(world: World, client: TestClient) -> None:
    """With the window set to 2 days, Friday is too far back on Tuesday (late_entry_outside_window)."""
    from domain.policy.commands import SetLateEntryWindow

    problem_id = found_on_thursday(world)
    world.send("hq", SetLateEntryWindow, campaign_id=world.campaign_id, days=2,
               effective_from=world.system.clock() - timedelta(days=30))
    refused = late_assignment(world, client, problem_id)
    assert (refused.status_code, refused.json()["code"]) == (422, "late_entry_outside_window")
