"""The HTTP API against the real PostgreSQL: tokens, roles, campaign scope, commands, queries, health, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.http import create_app
from infra.http.auth import create_token, revoke_token
from infra.http.commands import snake_case
from infra.bootstrap import System, bootstrap
from infra.commands import HANDLERS

pytestmark = pytest.mark.integration

PERSON = UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture
def system(database_url: str, clock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


@pytest.fixture
def app(system: System) -> FastAPI:
    return create_app(system)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def issue(system: System, role: str = "hq_office", campaign_id: UUID | None = None, name: str = "总指挥部办公室") -> str:
    with psycopg.connect(system.database_url) as conn:
        return create_token(conn, role, person_id=PERSON, name=name, campaign_id=campaign_id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def hq(system: System) -> dict[str, str]:
    return bearer(issue(system))


def log_head(system: System) -> int:
    return system.app.recorder.max_notification_id() or 0


def start_body(campaign_id: UUID | None = None, **changes: Any) -> dict[str, Any]:
    body = {"command_id": str(uuid4()), "campaign_id": str(campaign_id or uuid4()), "name": "高安市“三城同创”",
            "jurisdiction": "江西省宜春市高安市", "launched_on": "2021-12-03"}
    return {**body, **changes}


def post(client: TestClient, name: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(f"/commands/{name}", json=body, headers=headers)


def started(client: TestClient, headers: dict[str, str]) -> UUID:
    body = start_body()
    assert post(client, "start_campaign", body, headers).status_code == 201
    return UUID(body["campaign_id"])


def test_every_registered_command_has_its_own_post_route_in_openapi(client: TestClient) -> None:
    """OpenAPI lists POST /commands/{snake_case_name} for every handler, with the command's model as the body."""
    paths = client.get("/openapi.json").json()["paths"]
    for command in HANDLERS:
        operation = paths[f"/commands/{snake_case(command.__name__)}"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(command.__name__)


def test_snake_case_names_follow_the_class_names() -> None:
    """`StartCampaign` becomes `start_campaign`, and acronyms stay one word."""
    assert snake_case("StartCampaign") == "start_campaign"
    assert snake_case("JoinUnit") == "join_unit"
    assert snake_case("DefineHQUnit") == "define_hq_unit"


@pytest.mark.parametrize("auth", [None, "Bearer not-a-token", "Basic Zm9vOmJhcg==", "Bearer "])
def test_a_command_without_a_valid_token_is_refused_with_401_and_writes_nothing(client, system, auth) -> None:
    """No token, an unknown token or another auth scheme → 401 unauthenticated, nothing written."""
    headers = {"Authorization": auth} if auth else {}
    response = post(client, "start_campaign", start_body(), headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"
    assert log_head(system) == 0


def test_a_revoked_token_no_longer_authenticates(client, system) -> None:
    """After revocation the same token gets 401 on reads and writes."""
    token = issue(system)
    assert post(client, "start_campaign", start_body(), bearer(token)).status_code == 201
    with psycopg.connect(system.database_url) as conn:
        assert revoke_token(conn, token)
    assert post(client, "start_campaign", start_body(), bearer(token)).status_code == 401
    assert client.get(f"/campaigns/{uuid4()}", headers=bearer(token)).status_code == 401


def test_reads_need_a_token_but_health_and_the_docs_do_not(client) -> None:
    """GET of an entity without a token is 401; /health, /openapi.json and /docs are open."""
    assert client.get(f"/campaigns/{uuid4()}").json()["code"] == "unauthenticated"
    assert client.get(f"/campaigns/{uuid4()}/matrix").status_code == 401
    for path in ("/health", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("role", ["consumer", "auditor"])
def test_read_only_roles_may_not_issue_commands(client, system, role) -> None:
    """consumer and auditor tokens get 403 read_only_role on every command."""
    response = post(client, "start_campaign", start_body(), bearer(issue(system, role)))
    assert response.status_code == 403
    assert response.json()["code"] == "read_only_role"
    assert log_head(system) == 0


def test_a_role_the_handler_does_not_allow_is_forbidden(client, system) -> None:
    """A supervisor may not start a campaign: 403 role_not_allowed from the service."""
    response = post(client, "start_campaign", start_body(), bearer(issue(system, "supervisor")))
    assert response.status_code == 403
    assert response.json()["code"] == "role_not_allowed"


def test_a_campaign_bound_token_acts_only_in_its_campaign(client, system, hq) -> None:
    """A token bound to campaign A may rename A but not B (403 campaign_not_allowed), nor read B."""
    a, b = started(client, hq), started(client, hq)
    scoped = bearer(issue(system, campaign_id=a))
    rename = {"command_id": str(uuid4()), "campaign_id": str(a), "name": "新名称"}
    assert post(client, "rename_campaign", rename, scoped).status_code == 201
    other = post(client, "rename_campaign", {**rename, "command_id": str(uuid4()), "campaign_id": str(b)}, scoped)
    assert other.status_code == 403 and other.json()["code"] == "campaign_not_allowed"
    assert client.get(f"/campaigns/{b}", headers=scoped).json()["code"] == "campaign_not_allowed"
    assert client.get(f"/campaigns/{a}", headers=scoped).status_code == 200


def test_a_campaign_bound_token_cannot_touch_another_campaigns_unit_by_its_id(client, system, hq) -> None:
    """A command naming only a unit (no campaign_id) is scoped by the campaign the unit belongs to."""
    b = started(client, hq)
    unit = uuid4()
    body = {"command_id": str(uuid4()), "unit_id": str(unit), "campaign_id": str(b), "name": "总指挥部", "unit_kind": "hq"}
    assert post(client, "register_unit", body, hq).status_code == 201
    scoped = bearer(issue(system, campaign_id=started(client, hq)))
    head = log_head(system)
    response = post(client, "rename_unit", {"command_id": str(uuid4()), "unit_id": str(unit), "name": "改名"}, scoped)
    assert response.status_code == 403 and response.json()["code"] == "campaign_not_allowed"
    assert log_head(system) == head


def test_a_command_is_accepted_with_201_and_its_repeat_replayed_with_200_and_the_same_body(client, system, hq) -> None:
    """The first delivery records the event (201); the same command again writes nothing (200, replayed)."""
    body = start_body()
    first = post(client, "start_campaign", body, hq)
    second = post(client, "start_campaign", body, hq)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["replayed"] is False and second.json()["replayed"] is True
    assert {**first.json(), "replayed": True} == second.json()
    assert first.json()["events"][0]["type"] == "dudao.campaign.CampaignStarted"
    assert log_head(system) == 1


def test_a_command_that_changes_nothing_answers_200_with_no_events(client, hq) -> None:
    """Renaming a campaign to its current name records nothing and says so with 200."""
    cid = started(client, hq)
    response = post(client, "rename_campaign", {"command_id": str(uuid4()), "campaign_id": str(cid),
                                                "name": "高安市“三城同创”"}, hq)
    assert response.status_code == 200 and response.json()["events"] == []


def test_the_correlation_id_is_echoed_and_recorded_in_the_events(client, system, hq) -> None:
    """A client's X-Correlation-ID comes back in the response and lands in the event's metadata."""
    cid, correlation = uuid4(), uuid4()
    response = post(client, "start_campaign", start_body(cid), {**hq, "X-Correlation-ID": str(correlation)})
    assert response.headers["x-correlation-id"] == str(correlation)
    (stored,) = list(system.app.events.get(cid))
    assert stored.event.meta.correlation_id == correlation


def test_a_correlation_id_is_generated_when_the_client_sends_none(client) -> None:
    """Without X-Correlation-ID every response still carries a fresh UUID one."""
    ids = {client.get("/health").headers["x-correlation-id"] for _ in range(2)}
    assert len(ids) == 2 and all(UUID(i) for i in ids)


def test_the_actor_of_a_write_comes_from_the_token(client, system) -> None:
    """The stored event names the token's person, role and name; the body cannot name an actor."""
    cid = uuid4()
    token = issue(system, "admin", name="系统管理员")
    assert post(client, "start_campaign", start_body(cid), bearer(token)).status_code == 201
    actor = list(system.app.events.get(cid))[0].event.meta.actor
    assert (actor.person_id, actor.role, actor.name) == (PERSON, "admin", "系统管理员")
    forged = post(client, "start_campaign", start_body(actor={"role": "admin"}), bearer(token))
    assert forged.status_code == 422


def test_an_entity_is_read_as_its_folded_state_with_its_version(client, hq, clock) -> None:
    """GET /campaigns/{id} returns the state folded from the events and the aggregate version."""
    cid = started(client, hq)
    post(client, "rename_campaign", {"command_id": str(uuid4()), "campaign_id": str(cid), "name": "新名称"}, hq)
    body = client.get(f"/campaigns/{cid}", headers=hq).json()
    assert body["campaign_id"] == str(cid) and body["name"] == "新名称" and body["version"] == 2
    assert body["launched_on"] == "2021-12-03"


def test_units_places_and_persons_are_readable_by_id(client, hq) -> None:
    """GET /units/{id}, /places/{id} and /persons/{id} fold each kind's events."""
    cid = started(client, hq)
    unit, place, person = uuid4(), uuid4(), uuid4()
    bodies = {
        "register_unit": {"unit_id": str(unit), "campaign_id": str(cid), "name": "总指挥部", "unit_kind": "hq"},
        "register_place": {"place_id": str(place), "campaign_id": str(cid), "name": "第九网格", "place_kind": "grid"},
        "register_person": {"person_id": str(person), "campaign_id": str(cid), "name": "王五"},
    }
    for name, body in bodies.items():
        assert post(client, name, {"command_id": str(uuid4()), **body}, hq).status_code == 201, name
    assert client.get(f"/units/{unit}", headers=hq).json()["name"] == "总指挥部"
    assert client.get(f"/places/{place}", headers=hq).json()["place_kind"] == "grid"
    assert client.get(f"/persons/{person}", headers=hq).json()["version"] == 1


def test_an_unknown_id_is_404_with_messages_in_both_languages(client, hq) -> None:
    """An id nobody used, or one that belongs to another kind, is 404 {kind}_not_found."""
    cid = started(client, hq)
    for path in (f"/campaigns/{uuid4()}", f"/units/{cid}"):
        response = client.get(path, headers=hq)
        assert response.status_code == 404
        body = response.json()
        assert body["code"].endswith("_not_found") and body["message_zh"] and body["message_en"]


def test_the_matrix_shows_the_lead_now_and_nothing_before_it_began(client, system, hq, clock) -> None:
    """GET /campaigns/{id}/matrix lists the lead of a grid; as_of before the assignment lists nothing."""
    cid = started(client, hq)
    unit, grid = uuid4(), uuid4()
    for name, body in (
        ("register_unit", {"unit_id": str(unit), "campaign_id": str(cid), "name": "市人社局", "unit_kind": "hq"}),
        ("register_place", {"place_id": str(grid), "campaign_id": str(cid), "name": "第九网格", "place_kind": "grid"}),
        ("assign_responsibility", {"campaign_id": str(cid), "scope_kind": "place", "scope_id": str(grid),
                                   "party_kind": "unit", "party_id": str(unit), "role": "lead"}),
    ):
        assert post(client, name, {"command_id": str(uuid4()), **body}, hq).status_code == 201, name
    stale = client.get(f"/campaigns/{cid}/matrix", headers=hq).json()
    assert stale["projection_position"] < stale["log_head"]
    system.projector.catch_up()
    clock.advance(timedelta(days=1))
    now = client.get(f"/campaigns/{cid}/matrix", headers=hq).json()
    assert now["projection_position"] == now["log_head"] == log_head(system)
    assert [(r["scope_name"], r["party_name"], r["role"]) for r in now["rows"]] == [("第九网格", "市人社局", "lead")]
    before = client.get(f"/campaigns/{cid}/matrix", params={"as_of": "2021-12-01T00:00:00+08:00"}, headers=hq).json()
    assert before["rows"] == [] and before["as_of"] == "2021-12-01T00:00:00+08:00"
    naive = client.get(f"/campaigns/{cid}/matrix", params={"as_of": "2021-12-01"}, headers=hq).json()
    assert naive["as_of"] == "2021-12-01T00:00:00+08:00"
    who = client.get(f"/places/{grid}/responsible", headers=hq).json()
    assert [r["party_id"] for r in who["rows"]] == [str(unit)]


def test_the_structure_lists_of_a_campaign_come_from_the_projection(client, system, hq) -> None:
    """GET /campaigns/{id}/units and /places list what the structure projection holds."""
    cid = started(client, hq)
    body = {"command_id": str(uuid4()), "unit_id": str(uuid4()), "campaign_id": str(cid), "name": "总指挥部",
            "unit_kind": "hq"}
    post(client, "register_unit", body, hq)
    system.projector.catch_up()
    units = client.get(f"/campaigns/{cid}/units", headers=hq).json()
    assert [u["name"] for u in units["rows"]] == ["总指挥部"]
    assert client.get(f"/campaigns/{cid}/places", headers=hq).json()["rows"] == []
    assert client.get(f"/campaigns/{uuid4()}/units", headers=hq).status_code == 404


def listening_port() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, server.getsockname()[1]


def test_health_reports_the_database_and_an_unconfigured_broker(client, system, hq) -> None:
    """/health is 200 ok with the log head; the broker is null when none is configured."""
    started(client, hq)
    body = client.get("/health").json()
    assert body == {"status": "ok", "database": {"ok": True, "log_head": log_head(system)},
                    "broker": {"ok": None, "bootstrap": None}}


def test_health_checks_the_broker_by_tcp_connect(system) -> None:
    """A reachable broker is ok; an unreachable one makes the status degraded (still 200)."""
    server, port = listening_port()
    with server, TestClient(create_app(system, kafka_bootstrap=f"127.0.0.1:{port}")) as up:
        assert up.get("/health").json()["broker"] == {"ok": True, "bootstrap": f"127.0.0.1:{port}"}
    with TestClient(create_app(system, kafka_bootstrap=f"127.0.0.1:{port}")) as down:
        response = down.get("/health")
        assert response.status_code == 200 and response.json()["status"] == "degraded"


def test_an_unreachable_database_is_503_and_health_says_degraded(app, client, hq) -> None:
    """With the read pool gone, an authenticated read is 503 database_unavailable with Retry-After, and /health reports the database down."""
    app.state.read_pool.close()
    response = client.get(f"/campaigns/{uuid4()}", headers=hq)
    assert response.status_code == 503 and response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
    assert client.get("/health").json()["database"] == {"ok": False, "log_head": None}


def test_an_unexpected_exception_is_a_logged_500_without_internals(app, client) -> None:
    """A bug becomes 500 internal_error in the standard format, with the correlation id still echoed."""

    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    response = client.get("/boom", headers={"X-Correlation-ID": str(uuid4())})
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error" and "secret" not in response.text
    assert "x-correlation-id" in response.headers

