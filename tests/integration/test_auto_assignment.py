"""Automatic assignment (自动交办) as campaign policy, over HTTP against real PostgreSQL.

With the policy on, a finding whose routing is unambiguous — its category's department (分类派遣), or the one
lead unit of its place in the matrix — is handed to that unit in the same write as the report, with its 交办单,
the way 数字城管 dispatches standard cases; one routing names no unit for, a likely duplicate, or any finding
while the policy is off still waits for HQ.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from domain.policy.campaign import CategoryRoute
from domain.policy.commands import SetAutoAssignment, SetCategoryRouting
from domain.problem.assignment_notice import assignment_notice_id
from domain.structure.place import RegisterPlace
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from infra.http.queries import load_state
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


def auth(world: World, who: str) -> dict[str, str]:
    actor = world.actors[who]
    with psycopg.connect(world.system.database_url) as conn:
        return {"Authorization": f"Bearer {create_token(conn, actor.role, person_id=actor.person_id)}"}


def turn_on(world: World) -> None:
    world.send("hq", SetAutoAssignment, campaign_id=world.campaign_id, enabled=True,
               effective_from=world.system.clock() - timedelta(days=1))


def visit_with(world: World, client: TestClient, *findings: tuple[str, str]) -> tuple[list[str], dict[str, Any]]:
    """Log a visit at grid 1 with one finding per (place, category); the new problem ids and the command result."""
    ids = [str(uuid4()) for _ in findings]
    body = {"command_id": str(uuid4()), "occurred_at": (world.system.clock() - timedelta(hours=1)).isoformat(),
            "visit_id": str(uuid4()), "campaign_id": str(world.campaign_id), "place_id": str(world["grid1"]),
            "participants": [str(world["supervisor"])],
            "findings": [{"problem_id": pid, "category": category, "description": f"问题 {n}", "place_id": str(world[place])}
                         for n, (pid, (place, category)) in enumerate(zip(ids, findings, strict=True))]}
    response = client.post("/commands/log_visit", json=body, headers=auth(world, "supervisor"))
    assert response.status_code == 201, response.text
    return ids, response.json()


def problem(world: World, problem_id: str) -> pr.Problem:
    found = load_state(world.system.app, "problem", UUID(problem_id))
    assert found is not None
    return found[0]


def test_with_the_policy_off_findings_wait_for_hq(world: World, client: TestClient) -> None:
    """By default (off) a finding at a place with one lead unit is reported and waits for HQ's 交办."""
    (pid,), _ = visit_with(world, client, ("s1", "garbage_dumping"))
    assert problem(world, pid).state == pr.ProblemState.REPORTED


def test_an_unambiguous_finding_is_handed_over_in_the_same_write(world: World, client: TestClient) -> None:
    """Policy on: the finding at s1 (grid 1, led by unit A alone) is assigned to unit A by the matrix, in the visit's
    own write, by the 自动交办 process, with its deadline counted from now and its 交办单 addressed to unit A."""
    turn_on(world)
    (pid,), result = visit_with(world, client, ("s1", "garbage_dumping"))
    assert [e["type"].rsplit(".", 1)[1] for e in result["events"]] == [
        "VisitLogged", "ProblemReported", "ProblemAssigned", "NoticeIssued"]
    p = problem(world, pid)
    assert (p.state, p.unit_id, p.routing) == (pr.ProblemState.ASSIGNED, world["unit_a"], "matrix")
    assert p.assigned_at == world.system.clock() and p.deadline is not None
    notice = load_state(world.system.app, "notice", assignment_notice_id(p.problem_id, world["unit_a"], 0))
    assert notice is not None and "unit_a" in notice[0].text_zh
    world.catch_up()
    timeline = client.get(f"/problems/{pid}", headers=auth(world, "hq")).json()["timeline"]
    assigned = next(t for t in timeline if t["event_type"] == "ProblemAssigned")
    assert assigned["actor_role"] == "system" and "交办" in assigned["summary_zh"]


def test_an_unrouted_or_duplicate_finding_still_waits_for_hq(world: World, client: TestClient) -> None:
    """A place no lead unit answers for (nor any place around it) stays reported; of two findings at one place and
    category the second, a likely duplicate, waits too while the first is handed over."""
    turn_on(world)
    world.send(ADMIN, RegisterPlace, place_id=world["loose"], campaign_id=world.campaign_id, name="无主点位",
               place_kind="site")
    world.catch_up()
    (unrouted, first, duplicate), _ = visit_with(world, client, ("loose", "garbage_dumping"), ("s1", "clutter"),
                                                 ("s1", "clutter"))
    assert problem(world, unrouted).state == pr.ProblemState.REPORTED
    assert problem(world, first).state == pr.ProblemState.ASSIGNED
    later = problem(world, duplicate)
    assert later.state == pr.ProblemState.REPORTED and later.likely_duplicate_of


def test_a_category_route_dispatches_a_hotline_report_to_its_department(world: World, client: TestClient) -> None:
    """分类派遣 wins over the matrix: a hotline report of a routed category at s1 goes to unit B at once."""
    turn_on(world)
    world.send("hq", SetCategoryRouting, campaign_id=world.campaign_id,
               routes=(CategoryRoute(category="illegal_building", unit_id=world["unit_b"]),))
    pid = str(uuid4())
    body = {"command_id": str(uuid4()), "problem_id": pid, "campaign_id": str(world.campaign_id),
            "category": "illegal_building", "place_id": str(world["s1"]), "description": "违规搭建",
            "source": "hotline"}
    assert client.post("/commands/report_problem", json=body, headers=auth(world, "supervisor")).status_code == 201
    p = problem(world, pid)
    assert (p.state, p.unit_id, p.routing) == (pr.ProblemState.ASSIGNED, world["unit_b"], "category_routing")
