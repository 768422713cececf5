"""Tokens over HTTP (访问令牌) against real PostgreSQL: admins and the HQ office create, list and revoke them.

A token carries role, person, campaign, scope and expiry, is shown once, lists with its last use, and is refused
(401) from the request after its revocation or expiry. The HQ office manages its own campaign's tokens only and
issues no admin or process token; other roles may not manage tokens at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.problem_world import World, build_world

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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cli_token(world: World, role: str, person: str | None = None, campaign_id: UUID | None = None) -> dict[str, str]:
    """A token issued the bootstrap way (the CLI's function)."""
    person_id = world[person] if person else None
    with psycopg.connect(world.system.database_url) as conn:
        return bearer(create_token(conn, role, person_id=person_id, name=role, campaign_id=campaign_id))


def issue(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/tokens", json={k: str(v) if isinstance(v, UUID) else v for k, v in body.items()},
                       headers=headers)


def test_an_admin_issues_a_token_that_works_lists_with_its_last_use_and_dies_when_revoked(world: World,
                                                                                         client: TestClient) -> None:
    """POST /tokens shows the token once; it reads its campaign; GET /tokens lists it (never the token) with its last
    use; DELETE /tokens/{id} revokes it and its very next request is 401."""
    admin = cli_token(world, "admin")
    issued = issue(client, admin, role="supervisor", person_id=world["supervisor"], name="张督导",
                   campaign_id=world.campaign_id, place_ids=[str(world["grid1"])], expires_in_days=30)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert (body["role"], body["person_id"], body["campaign_id"]) == ("supervisor", str(world["supervisor"]),
                                                                      str(world.campaign_id))
    assert body["place_ids"] == [str(world["grid1"])] and body["expires_at"] and body["last_used_at"] is None
    assert client.get(f"/campaigns/{world.campaign_id}", headers=bearer(body["token"])).status_code == 200
    listed = client.get("/tokens", params={"campaign_id": str(world.campaign_id)}, headers=admin).json()["rows"]
    (mine,) = [r for r in listed if r["token_id"] == body["token_id"]]
    assert mine["last_used_at"] is not None and "token" not in mine and mine["created_by"].startswith("admin")
    revoked = client.delete(f"/tokens/{body['token_id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    after = client.get(f"/campaigns/{world.campaign_id}", headers=bearer(body["token"]))
    assert (after.status_code, after.json()["code"]) == (401, "unauthenticated")
    assert body["token_id"] not in [r["token_id"] for r in client.get("/tokens", headers=admin).json()["rows"]]


def test_an_expired_token_is_401_at_once(world: World, client: TestClient) -> None:
    """A token whose expiry passed is refused with token_expired on its next request."""
    token = issue(client, cli_token(world, "admin"), role="auditor", campaign_id=world.campaign_id).json()
    with psycopg.connect(world.system.database_url) as conn:
        conn.execute("UPDATE dudao_tokens SET expires_at = clock_timestamp() - interval '1 second'"
                     " WHERE token_id = %s", (token["token_id"],))
    refused = client.get(f"/campaigns/{world.campaign_id}", headers=bearer(token["token"]))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_expired")


def test_the_hq_office_manages_only_its_campaigns_tokens(world: World, client: TestClient) -> None:
    """The campaign's HQ office issues a unit officer's token there; not an admin token, not another campaign's, not an
    unbound one; it lists only its campaign's tokens and cannot revoke another campaign's."""
    office = cli_token(world, "hq_office", "hq", campaign_id=world.campaign_id)
    ok = issue(client, office, role="unit_officer", person_id=world["officer_a"], campaign_id=world.campaign_id,
               unit_ids=[str(world["unit_a"])])
    assert ok.status_code == 201, ok.text
    admin_token = issue(client, office, role="admin", campaign_id=world.campaign_id)
    assert (admin_token.status_code, admin_token.json()["code"]) == (403, "role_not_grantable")
    elsewhere = issue(client, office, role="supervisor", campaign_id=uuid4())
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "campaign_not_allowed")
    unbound = issue(client, office, role="supervisor")
    assert (unbound.status_code, unbound.json()["code"]) == (422, "campaign_required")
    other = issue(client, cli_token(world, "admin"), role="supervisor").json()  # an admin's unbound token
    rows = client.get("/tokens", headers=office).json()["rows"]
    assert ok.json()["token_id"] in [r["token_id"] for r in rows]
    assert all(r["campaign_id"] == str(world.campaign_id) for r in rows)
    assert client.delete(f"/tokens/{other['token_id']}", headers=office).status_code == 404
    assert client.delete(f"/tokens/{ok.json()['token_id']}", headers=office).status_code == 200


@pytest.mark.parametrize("role", ["supervisor", "unit_officer", "auditor"])
def test_other_roles_may_not_manage_tokens(world: World, client: TestClient, role: str) -> None:
    """Issuing or listing tokens is refused (403 role_not_allowed) to anyone but an admin and the HQ office."""
    headers = cli_token(world, role, campaign_id=world.campaign_id)
    assert issue(client, headers, role="supervisor", campaign_id=world.campaign_id).json()["code"] == "role_not_allowed"
    assert client.get("/tokens", headers=headers).status_code == 403
