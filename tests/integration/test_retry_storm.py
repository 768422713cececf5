"""Idempotent uploads under a retry storm, against the real PostgreSQL (issue 9, defect 7).

A field app that makes a new command_id for every retry sends the same visit (same client visit id,
same content) many times at once. Every delivery must get the first delivery's result, whatever its
command_id, and one visit must be stored; the same visit id with other content is a 409 naming what
differs. Through the command service from 20 threads, and through the HTTP app from 20 clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.kernel.base import Command, Conflict
from domain.problem import ReportProblem
from domain.visit import AddFinding, Finding, LogVisit, OpenVisit
from infra.bootstrap import bootstrap
from infra.commands.service import CommandResult
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.problem_world import World, build_world

pytestmark = pytest.mark.integration

STORM = 20


@pytest.fixture
def world(database_url: str, clock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock, pool_size=STORM)
    yield build_world(system)
    system.close()


def visit_fields(world: World, findings: int = 3) -> dict[str, Any]:
    """The content of one field upload: a visit at grid 1 with `findings` problems at its two sites."""
    return {"occurred_at": world.system.clock() - timedelta(hours=2), "visit_id": uuid4(),
            "campaign_id": world.campaign_id, "place_id": world["grid1"], "participants": (world["supervisor"],),
            "findings": tuple(Finding(problem_id=uuid4(), category=("sanitation", "clutter")[i % 2],
                                      description=f"第{i + 1}处垃圾堆放", place_id=world[f"s{i % 2 + 1}"])
                              for i in range(findings))}


def delivery(cls: type[Command], fields: dict[str, Any]) -> Command:
    """One delivery of the same content under a fresh command_id, as a retrying field app sends it."""
    return cls(command_id=str(uuid4()), **fields)


def stored_kinds(world: World, aggregate_id: UUID) -> list[str]:
    return [type(s.event).__name__ for s in world.system.app.history(aggregate_id)]


def storm(fn: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(STORM) as pool:
        return list(pool.map(fn, range(STORM)))


def test_twenty_concurrent_uploads_of_one_visit_through_the_service_all_get_the_first_result(world: World) -> None:
    """20 threads log the same visit under 20 command ids: all succeed with one result, and one visit is stored."""
    fields = visit_fields(world)
    results: list[CommandResult] = storm(lambda _: world.system.service.handle(
        delivery(LogVisit, fields), world.actors["supervisor"]))
    first = [r for r in results if not r.replayed]
    assert len(first) == 1 and len(first[0].events) == 4
    assert all(r.replayed and r.events == first[0].events and r.command_id == first[0].command_id
               for r in results if r is not first[0])
    assert stored_kinds(world, fields["visit_id"]) == ["VisitLogged"]
    assert all(stored_kinds(world, f.problem_id) == ["ProblemReported"] for f in fields["findings"])


def headers_for(world: World, who: str) -> dict[str, str]:
    actor = world.actors[who]
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name)
    return {"Authorization": f"Bearer {token}"}


def as_json(fields: dict[str, Any]) -> dict[str, Any]:
    return LogVisit(command_id="x", **fields).model_dump(mode="json", exclude={"command_id"})


def test_twenty_concurrent_uploads_of_one_visit_over_http_all_get_2xx_with_the_same_result(world: World) -> None:
    """20 clients POST the same visit under 20 command ids: one 201, nineteen 200 replays of it, one visit stored."""
    fields = visit_fields(world)
    body, headers = as_json(fields), headers_for(world, "supervisor")
    with TestClient(create_app(world.system), raise_server_exceptions=False) as client:
        responses = storm(lambda _: client.post("/commands/log_visit", headers=headers,
                                                json={**body, "command_id": str(uuid4())}))
    assert sorted(r.status_code for r in responses) == [200] * (STORM - 1) + [201], [r.text for r in responses]
    answers = [r.json() for r in responses]
    (first,) = [a for a in answers if not a["replayed"]]
    assert all((a["command_id"], a["events"]) == (first["command_id"], first["events"]) for a in answers)
    assert stored_kinds(world, fields["visit_id"]) == ["VisitLogged"]


def test_the_same_visit_id_with_other_content_over_http_is_a_409_naming_the_differing_fields(world: World) -> None:
    """A second upload under a used visit id, with another note and one finding fewer, is a 409 naming both fields."""
    fields = visit_fields(world)
    body, headers = as_json(fields), headers_for(world, "supervisor")
    with TestClient(create_app(world.system), raise_server_exceptions=False) as client:
        assert client.post("/commands/log_visit", headers=headers,
                           json={**body, "command_id": str(uuid4())}).status_code == 201
        other = {**body, "command_id": str(uuid4()), "note": "复查", "findings": body["findings"][:2]}
        response = client.post("/commands/log_visit", headers=headers, json=other)
    assert response.status_code == 409, response.text
    error = response.json()
    assert error["code"] == "visit_exists" and sorted(error["details"]["differing_fields"]) == ["findings", "note"]
    assert stored_kinds(world, fields["visit_id"]) == ["VisitLogged"]


def open_visit_fields(world: World) -> dict[str, Any]:
    fields = visit_fields(world)
    del fields["findings"]
    return fields


def report_fields(world: World) -> dict[str, Any]:
    return {"problem_id": uuid4(), "campaign_id": world.campaign_id, "category": "sanitation",
            "place_id": world["s1"], "description": "绿化带垃圾", "source": "hotline"}


def finding_fields(world: World) -> dict[str, Any]:
    """A finding for a visit opened here (the visit stays open, so findings can be added)."""
    opened = open_visit_fields(world)
    world.system.service.handle(delivery(OpenVisit, opened), world.actors["supervisor"])
    return {"visit_id": opened["visit_id"], "finding": Finding(problem_id=uuid4(), category="clutter",
                                                                description="楼道堆物", place_id=world["s2"])}


# Each command whose business key (the client's id of what it creates) makes a repeat the same intent:
# how to build its content, a change to it, and the fields the 409 names for that change.
Case = tuple[type[Command], Callable[[World], dict[str, Any]], Callable[[World, dict[str, Any]], dict[str, Any]], list[str]]
IDEMPOTENT_BY_KEY: dict[str, Case] = {
    "log_visit": (LogVisit, visit_fields, lambda w, f: {"note": "另一条备注"}, ["note"]),
    "open_visit": (OpenVisit, open_visit_fields, lambda w, f: {"place_id": w["grid2"]}, ["place_id"]),
    "report_problem": (ReportProblem, report_fields, lambda w, f: {"description": "另一处垃圾"}, ["description"]),
    "add_finding": (AddFinding, finding_fields, lambda w, f: {"finding": f["finding"].model_copy(
        update={"category": "sanitation"})}, ["finding.category"]),
}


@pytest.mark.parametrize("name", sorted(IDEMPOTENT_BY_KEY))
def test_a_command_idempotent_by_its_business_key_answers_a_repeat_with_the_first_result(world: World,
                                                                                         name: str) -> None:
    """The same content under a new command_id replays the first result; one field changed is a 409 naming it."""
    cls, build, change, differing = IDEMPOTENT_BY_KEY[name]
    fields = build(world)
    actor = world.actors["supervisor"]
    first = world.system.service.handle(delivery(cls, fields), actor)
    head = world.log_head()
    repeats = storm(lambda _: world.system.service.handle(delivery(cls, fields), actor))
    assert all(r.replayed and (r.command_id, r.events) == (first.command_id, first.events) for r in repeats)
    with pytest.raises(Conflict) as refused:
        world.system.service.handle(delivery(cls, {**fields, **change(world, fields)}), actor)
    assert refused.value.details["differing_fields"] == differing
    assert world.log_head() == head
