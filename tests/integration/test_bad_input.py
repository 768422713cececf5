"""Bad input over HTTP, as a table: each case gets the right status and code, never 500, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from infra.http import create_app
from infra.http.auth import create_token
from infra.bootstrap import System, bootstrap

pytestmark = pytest.mark.integration


@dataclass
class World:
    """Campaign A with its HQ unit and a grid, campaign B with its HQ unit, an HQ token and one bound to A."""

    client: TestClient
    system: System
    a: UUID
    b: UUID
    ids: dict[str, UUID]
    hq: dict[str, str]
    scoped: dict[str, str]

    def post(self, name: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(f"/commands/{name}", json=body, headers=headers or self.hq)


def token(system: System, campaign_id: UUID | None = None) -> dict[str, str]:
    with psycopg.connect(system.database_url) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'hq_office', campaign_id=campaign_id)}"}


@pytest.fixture
def world(database_url: str, clock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        hq = token(system)
        w = World(client, system, uuid4(), uuid4(), {k: uuid4() for k in ("hq_a", "hq_b", "grid_a")}, hq, {})
        for cid, unit in ((w.a, "hq_a"), (w.b, "hq_b")):
            assert w.post("start_campaign", start(cid)).status_code == 201
            assert w.post("register_unit", unit_body(cid, w.ids[unit], "总指挥部", "hq")).status_code == 201
        grid = {"command_id": str(uuid4()), "place_id": str(w.ids["grid_a"]), "campaign_id": str(w.a),
                "name": "第九网格", "place_kind": "grid"}
        assert w.post("register_place", grid).status_code == 201
        w.scoped = token(system, w.a)
        yield w
    system.close()


def start(cid: UUID | None = None, **changes: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "campaign_id": str(cid or uuid4()), "name": "高安市“三城同创”",
            "jurisdiction": "江西省宜春市高安市", "launched_on": "2021-12-03", **changes}


def unit_body(cid: UUID, unit_id: UUID, name: str, kind: str, parent: UUID | None = None) -> dict[str, Any]:
    body = {"command_id": str(uuid4()), "unit_id": str(unit_id), "campaign_id": str(cid), "name": name,
            "unit_kind": kind}
    return {**body, "parent_id": str(parent)} if parent else body


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def assign(w: World, **changes: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "campaign_id": str(w.a), "scope_kind": "place", "scope_id": str(w.ids["grid_a"]),
            "party_kind": "unit", "party_id": str(w.ids["hq_a"]), "role": "lead", **changes}


def raw(w: World, name: str, content: bytes, content_type: str = "application/json") -> Any:
    return w.client.post(f"/commands/{name}", content=content, headers={**w.hq, "Content-Type": content_type})


MiB = 1024 * 1024

# (case, request, expected status, expected code)
CASES: list[tuple[str, Callable[[World], Any], int, str]] = [
    ("missing field", lambda w: w.post("start_campaign", without(start(), "name")), 422, "invalid_input"),
    ("missing command_id", lambda w: w.post("start_campaign", without(start(), "command_id")), 422, "invalid_input"),
    ("empty body", lambda w: raw(w, "start_campaign", b""), 422, "invalid_input"),
    ("body is a list", lambda w: w.post("start_campaign", [start()]), 422, "invalid_input"),
    ("wrong type: date", lambda w: w.post("start_campaign", start(launched_on="下周一")), 422, "invalid_input"),
    ("wrong type: uuid", lambda w: w.post("start_campaign", start(campaign_id=123)), 422, "invalid_input"),
    ("wrong type: enum", lambda w: w.post("register_unit", unit_body(w.a, uuid4(), "某局", "ministry", w.ids["hq_a"])),
     422, "invalid_input"),
    ("wrong type: naive effective_from", lambda w: w.post("assign_responsibility",
                                                           assign(w, effective_from="2021-12-20T00:00:00")),
     422, "invalid_input"),
    ("oversize name", lambda w: w.post("start_campaign", start(name="创" * 201)), 422, "invalid_input"),
    ("oversize command_id", lambda w: w.post("start_campaign", start(command_id="x" * 129)), 422, "invalid_input"),
    ("empty name", lambda w: w.post("start_campaign", start(name="")), 422, "invalid_input"),
    ("extra field", lambda w: w.post("start_campaign", start(budget=100)), 422, "invalid_input"),
    ("extra field: actor", lambda w: w.post("start_campaign", start(actor={"role": "admin"})), 422, "invalid_input"),
    ("text/plain body", lambda w: raw(w, "start_campaign", b"{}", "text/plain"), 422, "invalid_input"),
    ("malformed JSON", lambda w: raw(w, "start_campaign", b'{"command_id": "x",'), 400, "malformed_json"),
    ("body over 1 MiB", lambda w: raw(w, "start_campaign", b'{"name": "' + b"x" * MiB + b'"}'), 413,
     "payload_too_large"),
    ("chunked body over 1 MiB", lambda w: w.client.post("/commands/start_campaign", headers=w.hq,
                                                         content=iter([b'{"name": "', b"x" * MiB, b'"}'])),
     413, "payload_too_large"),
    ("unknown campaign", lambda w: w.post("rename_campaign", {"command_id": str(uuid4()), "campaign_id": str(uuid4()),
                                                               "name": "x"}), 404, "campaign_not_found"),
    ("unknown parent unit", lambda w: w.post("register_unit", unit_body(w.a, uuid4(), "某局", "department", uuid4())),
     404, "parent_not_found"),
    ("unknown scope", lambda w: w.post("assign_responsibility", assign(w, scope_id=str(uuid4()))), 404,
     "scope_not_found"),
    ("parent in another campaign", lambda w: w.post("register_unit",
                                                     unit_body(w.a, uuid4(), "某局", "department", w.ids["hq_b"])),
     422, "cross_campaign_reference"),
    ("token bound to another campaign", lambda w: w.post("register_unit",
                                                          unit_body(w.b, uuid4(), "某局", "department", w.ids["hq_b"]),
                                                          w.scoped), 403, "campaign_not_allowed"),
    ("campaign exists", lambda w: w.post("start_campaign", start(w.a)), 409, "campaign_exists"),
    ("command_id reused for another command", lambda w: w.post("start_campaign", start(command_id="reused")), 409,
     "command_id_reused"),
    ("malformed uuid in path", lambda w: w.client.get("/campaigns/not-a-uuid", headers=w.hq), 422, "invalid_input"),
    ("unknown id in path", lambda w: w.client.get(f"/units/{uuid4()}", headers=w.hq), 404, "unit_not_found"),
    ("malformed as_of", lambda w: w.client.get(f"/campaigns/{w.a}/matrix", params={"as_of": "昨天"}, headers=w.hq),
     422, "invalid_input"),
    ("unknown command", lambda w: w.post("launch_rockets", start()), 404, "not_found"),
    ("unknown route", lambda w: w.client.get("/nowhere", headers=w.hq), 404, "not_found"),
    ("wrong method", lambda w: w.client.get("/commands/start_campaign", headers=w.hq), 405, "method_not_allowed"),
    ("malformed correlation id", lambda w: w.client.post("/commands/start_campaign", json=start(),
                                                          headers={**w.hq, "X-Correlation-ID": "abc"}),
     400, "invalid_correlation_id"),
]


@pytest.mark.parametrize(("request_", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_the_right_status_and_code_and_writes_nothing(world: World, request_, status, code) -> None:
    """Each bad request is answered with its status and error code in the standard format; the log head does not move."""
    head = world.system.app.recorder.max_notification_id()
    # "command_id reused" legitimately writes its first command; count from after it.
    if code == "command_id_reused":
        world.post("start_campaign", start(command_id="reused"))
        head = world.system.app.recorder.max_notification_id()
    response = request_(world)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert set(response.json()) == {"code", "message_zh", "message_en", "details"}
    assert response.json()["message_zh"] and response.json()["message_en"]
    assert world.system.app.recorder.max_notification_id() == head


def test_validation_errors_list_each_problem_with_its_location(world: World) -> None:
    """A 422 names every bad field (loc, msg, type) and does not echo the submitted values."""
    response = world.post("start_campaign", without(start(name="创" * 201, launched_on="x"), "jurisdiction"))
    errors = response.json()["details"]["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("body", "name"), ("body", "launched_on"), ("body", "jurisdiction")}
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    assert "创创创" not in response.text
