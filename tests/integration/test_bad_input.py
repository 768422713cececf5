"""Bad input over HTTP, as a table: each case gets the right status and code, never 500, and writes nothing.

The hostile half of the table (issue 9) is what a fuzzer or an attacker sends: control characters in
body text, ids and query parameters; times a ledger cannot hold (year 9999 at UTC−14), naive ones
and numbers posing as times; strings and booleans posing as integers; an invented time zone; a photo
never uploaded. Each used to be accepted (and poison the projector or the ledger) or answer 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
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
    ("wrong type: date", lambda w: w.post("start_campaign", start(launched_on="下周一")), 422, "time_format"),
    ("wrong type: uuid", lambda w: w.post("start_campaign", start(campaign_id=123)), 422, "invalid_input"),
    ("wrong type: enum", lambda w: w.post("register_unit", unit_body(w.a, uuid4(), "某局", "ministry", w.ids["hq_a"])),
     422, "invalid_input"),
    ("wrong type: naive effective_from", lambda w: w.post("assign_responsibility",
                                                           assign(w, effective_from="2021-12-20T00:00:00")),
     422, "naive_timestamp"),
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
     422, "time_format"),
    ("unknown command", lambda w: w.post("launch_rockets", start()), 404, "not_found"),
    ("unknown route", lambda w: w.client.get("/nowhere", headers=w.hq), 404, "not_found"),
    ("wrong method", lambda w: w.client.get("/commands/start_campaign", headers=w.hq), 405, "method_not_allowed"),
    ("malformed correlation id", lambda w: w.client.post("/commands/start_campaign", json=start(),
                                                          headers={**w.hq, "X-Correlation-ID": "abc"}),
     400, "invalid_correlation_id"),
]


def rename(w: World, **changes: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "campaign_id": str(w.a), "name": "高安市创建办", **changes}


def report(w: World, **changes: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "problem_id": str(uuid4()), "campaign_id": str(w.a), "category": "sanitation",
            "place_id": str(w.ids["grid_a"]), "description": "路面有垃圾", "source": "hotline", **changes}


def place(w: World, **changes: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "place_id": str(uuid4()), "campaign_id": str(w.a), "name": "第十网格",
            "place_kind": "grid", **changes}


def ascii_json(w: World, name: str, body: dict[str, Any]) -> Any:
    """The body as JSON with every non-ASCII character escaped, so a lone surrogate travels as `\\ud800`."""
    return raw(w, name, json.dumps(body, ensure_ascii=True).encode())


def get(w: World, path: str, **params: str) -> Any:
    return w.client.get(path.format(a=w.a), params=params, headers=w.hq)


NEVER_UPLOADED = {"sha256": "e" * 64, "media_type": "image/jpeg", "size": 120_000}
YEAR_9999 = "9999-12-31T23:59:59-14:00"

HOSTILE: list[tuple[str, Callable[[World], Any], int, str]] = [
    ("NUL in command_id", lambda w: w.post("rename_campaign", rename(w, command_id="c\u0000")), 422, "control_character"),
    ("NUL in a name", lambda w: w.post("rename_campaign", rename(w, name="高安\u0000")), 422, "control_character"),
    ("NUL in free text", lambda w: w.post("register_place", place(w, note="备注\u0000")), 422, "control_character"),
    ("NUL in a nested list", lambda w: w.post("start_campaign", start(goals=["创文明城市\u0000"])), 422,
     "control_character"),
    ("line break in a name", lambda w: w.post("rename_campaign", rename(w, name="高安\n市")), 422, "control_character"),
    ("escape in free text", lambda w: w.post("register_place", place(w, note="\u001b[2J")), 422, "control_character"),
    ("line separator in a name", lambda w: w.post("rename_campaign", rename(w, name="高安\u2028市")), 422,
     "control_character"),
    ("direction override in a name", lambda w: w.post("rename_campaign", rename(w, name="gpj.\u202eexe")), 422,
     "control_character"),
    ("lone surrogate in a name", lambda w: ascii_json(w, "rename_campaign", rename(w, name="高安\ud800")), 422,
     "control_character"),
    ("year 9999 at UTC-14", lambda w: w.post("report_problem", report(w, occurred_at=YEAR_9999)), 422,
     "time_out_of_range"),
    ("year 1999", lambda w: w.post("rename_campaign", rename(w, occurred_at="1999-12-31T23:00:00Z")), 422,
     "time_out_of_range"),
    ("naive occurred_at", lambda w: w.post("report_problem", report(w, occurred_at="2021-12-13T09:00:00")), 422,
     "naive_timestamp"),
    ("number as occurred_at", lambda w: w.post("rename_campaign", rename(w, occurred_at=0.5)), 422, "time_format"),
    ("numeric string as occurred_at", lambda w: w.post("rename_campaign", rename(w, occurred_at="1700000000")), 422,
     "time_format"),
    ("number as a date", lambda w: w.post("start_campaign", start(launched_on=20211203)), 422, "time_format"),
    ("year 1 as a date", lambda w: w.post("start_campaign", start(launched_on="0001-01-01")), 422, "time_out_of_range"),
    ("occurred_at in the future", lambda w: w.post("rename_campaign", rename(
        w, occurred_at=(w.system.clock() + timedelta(days=1)).isoformat())), 422, "occurred_in_future"),
    ("string as an integer", lambda w: w.post("register_place", place(w, number="3")), 422, "invalid_input"),
    ("boolean as an integer", lambda w: w.post("register_place", place(w, number=True)), 422, "invalid_input"),
    ("string as a flag", lambda w: w.post("register_place", place(w, invented="true")), 422, "invalid_input"),
    ("invented time zone", lambda w: w.post("start_campaign", start(timezone="Mars/Olympus_Mons")), 422,
     "unknown_time_zone"),
    ("photo never uploaded", lambda w: w.post("report_problem", report(w, evidence=[NEVER_UPLOADED])), 404,
     "evidence_not_found"),
    ("NUL in a query parameter", lambda w: get(w, "/campaigns/{a}/summons", status="open\u0000"), 422,
     "control_character"),
    ("NUL in a query name", lambda w: get(w, "/campaigns/{a}/matrix", **{"as\u0000of": "x"}), 422, "control_character"),
    ("NUL in the path", lambda w: get(w, "/evidence/ab%00cd"), 422, "control_character"),
    ("ledger now in year 9999", lambda w: get(w, "/campaigns/{a}/ledger", now=YEAR_9999), 422, "time_out_of_range"),
    ("ledger CSV now in year 9999", lambda w: get(w, "/campaigns/{a}/ledger.csv", now=YEAR_9999), 422,
     "time_out_of_range"),
    ("ledger now as a number", lambda w: get(w, "/campaigns/{a}/ledger", now="0.5"), 422, "time_format"),
    ("matrix as_of in year 9999", lambda w: get(w, "/campaigns/{a}/matrix", as_of="9999-12-31"), 422,
     "time_out_of_range"),
    ("bulletin draft over ten millennia", lambda w: get(w, "/campaigns/{a}/bulletins/draft", period_start="0001-01-01",
                                                         period_end="9999-12-31"), 422, "time_out_of_range"),
    ("bulletin draft period as numbers", lambda w: get(w, "/campaigns/{a}/bulletins/draft", period_start="20211201",
                                                        period_end="20211231"), 422, "time_format"),
]
CASES += HOSTILE


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


def test_a_nul_in_command_id_is_refused_on_every_command_route(world: World) -> None:
    """Every generated command route answers a NUL in `command_id` with 422 naming it, never 500, and writes nothing."""
    from infra.commands import HANDLERS
    from infra.http.commands import snake_case

    head = world.system.app.recorder.max_notification_id()
    for command in HANDLERS:
        if command.__module__.startswith("tests."):
            continue
        response = world.post(snake_case(command.__name__), {"command_id": "c\u0000"})
        assert response.status_code == 422, (command.__name__, response.text)
        errors = response.json()["details"]["errors"]
        assert {"loc": ["body", "command_id"], "msg": "U+0000 is not allowed in single-line text",
                "type": "control_character"} in errors, (command.__name__, errors)
    assert world.system.app.recorder.max_notification_id() == head


def test_a_control_character_in_any_query_is_refused_before_any_route(world: World) -> None:
    """Every GET route answers a NUL in a query parameter with 422 `control_character`, whatever its own parameters."""
    paths = get_operations(world)
    assert len(paths) > 20, sorted(paths)
    for path in sorted(paths):
        response = world.client.get(path, params={"as_of": "2021-12-14\u0000"}, headers=world.hq)
        assert (response.status_code, response.json()["code"]) == (422, "control_character"), (path, response.text)


def test_an_edge_refusal_names_the_field_in_both_languages(world: World) -> None:
    """A control character's 422 says which field, in Chinese and in English, and where it sits in the body."""
    response = world.post("start_campaign", start(goals=["创文明城市", "\u0000"]))
    body = response.json()
    assert (response.status_code, body["code"]) == (422, "control_character")
    assert "goals[1]" in body["message_zh"] and "goals[1]" in body["message_en"]
    assert body["details"]["errors"][0]["loc"] == ["body", "goals", 1]


def get_operations(world: World) -> dict[str, list[dict[str, Any]]]:
    """Every GET path of the API as its OpenAPI document states it (ids filled in), with its query parameters."""
    spec = world.client.get("/openapi.json").json()
    out = {}
    for path, operations in spec["paths"].items():
        if "get" not in operations:
            continue
        concrete = path.replace("{sha256}", "a" * 64)
        while "{" in concrete:
            start, end = concrete.index("{"), concrete.index("}")
            concrete = concrete[:start] + str(world.a) + concrete[end + 1:]
        out[concrete] = [p for p in operations["get"].get("parameters", []) if p["in"] == "query"]
    return out


def is_time(parameter: dict[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return any(s.get("format") in ("date", "date-time") for s in [schema, *schema.get("anyOf", [])])


def test_every_date_and_time_query_parameter_is_read_at_the_edge(world: World) -> None:
    """Every GET route's date or instant parameter (found in the OpenAPI document) refuses a number (time_format) and
    year 9999 (time_out_of_range) before the route runs: all are `infra.http.params` types, none a bare date or datetime."""
    operations = {path: [p["name"] for p in params if is_time(p)] for path, params in get_operations(world).items()}
    operations = {path: names for path, names in operations.items() if names}
    assert len(operations) >= 5, operations  # the ledger, matrix, bulletin draft, ... are found
    wrong = []
    for path, names in sorted(operations.items()):
        for name in names:
            for value, code in (("0.5", "time_format"), ("9999-12-31", "time_out_of_range")):
                response = world.client.get(path, params={name: value}, headers=world.hq)
                errors = response.json().get("details", {}).get("errors", []) if response.status_code == 422 else []
                if {"loc": ["query", name], "type": code} not in [{"loc": e["loc"], "type": e["type"]} for e in errors]:
                    wrong.append((path, name, value, response.status_code))
    assert not wrong, "\n".join(sorted({f"{p.replace(str(world.a), '{id}')} ?{n}" for p, n, _, _ in wrong}))
