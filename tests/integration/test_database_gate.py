"""The HTTP API's database gate: once PostgreSQL is found unreachable, requests are refused with 503 at
once instead of waiting on a pool, and the gate reopens by itself when the database answers again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest
import structlog
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from infra.bootstrap import System, bootstrap
from infra.http import create_app
from infra.http.auth import create_token
from infra.http.availability import DatabaseGate
from infra.outage import Backoff

from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

UNREACHABLE = "host=/nonexistent-dudao-socket-dir dbname=nothing user=nobody"


@pytest.fixture
def system(database_url: str) -> Iterator[System]:
    s = bootstrap(database_url)
    yield s
    s.close()


def test_the_gate_closes_when_the_probe_fails_and_reopens_on_its_first_success(database_url: str) -> None:
    """A suspicion the probe confirms closes the gate (logged once); the first probe that connects reopens it (logged once)."""
    gate = DatabaseGate(UNREACHABLE, backoff=Backoff(0.05, 0.1))
    try:
        with capture_logs() as logs:
            gate.outage.log = structlog.get_logger("gate-test")  # a logger first used under capture
            gate.suspect(psycopg.OperationalError("connection refused"))
            wait_until(lambda: gate.closed, "gate.closed", 10.0, interval_s=0.02)
            wait_until(lambda: gate.outage.attempts >= 3, "gate.outage.attempts >= 3", 10.0, interval_s=0.02)  # failed probes in a row are not each logged
            gate.database_url = database_url  # the database is back
            wait_until(lambda: not gate.closed, "not gate.closed", 10.0, interval_s=0.02)
        assert [e["event"] for e in logs if e["event"] in ("database_unavailable", "database_available")] == [
            "database_unavailable", "database_available"]
    finally:
        gate.close()


def test_a_suspicion_the_probe_disproves_closes_nothing(database_url: str) -> None:
    """A pool timeout under load while the database answers leaves the gate open and logs no outage."""
    gate = DatabaseGate(database_url)
    try:
        with capture_logs() as logs:
            gate.outage.log = structlog.get_logger("gate-test")
            gate.suspect(psycopg.OperationalError("couldn't get a connection after 3.00 sec"))
            wait_until(lambda: not gate.probing, "not gate.probing", 10.0, interval_s=0.02)
        assert not gate.closed
        assert not [e for e in logs if e["event"] == "database_unavailable"]
    finally:
        gate.close()


def test_while_the_gate_is_closed_a_write_is_refused_at_once_and_health_still_answers(system: System) -> None:
    """With the database unreachable, POST /commands/… is 503 database_unavailable with Retry-After in milliseconds; /health is 200."""
    app = create_app(system)
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        token = create_token(conn, role="admin", name="gate test")
    gate: DatabaseGate = app.state.database_gate
    gate.database_url = UNREACHABLE  # what the probe sees from now on
    body = {"command_id": f"gate-{uuid4()}", "campaign_id": str(uuid4()), "name": "闸门", "jurisdiction": "高安市",
            "launched_on": "2021-12-03"}
    with TestClient(app) as client:
        gate.suspect(psycopg.OperationalError("connection refused"))
        wait_until(lambda: gate.closed, "gate.closed", 10.0, interval_s=0.02)
        started = time.monotonic()
        response = client.post("/commands/start_campaign", json=body, headers={"Authorization": f"Bearer {token}"})
        took = time.monotonic() - started
        assert response.status_code == 503 and response.json()["code"] == "database_unavailable"
        # at once: well under the 3 s a request would otherwise wait for a pooled connection (READ_POOL_WAIT_S),
        # with room for a machine busy with parallel test workers
        assert response.headers["retry-after"] == "5" and took < 2.0
        assert client.get("/health").status_code == 200
        gate.database_url = system.database_url
        wait_until(lambda: not gate.closed, "not gate.closed", 10.0, interval_s=0.02)
        accepted = client.post("/commands/start_campaign", json=body, headers={"Authorization": f"Bearer {token}"})
        assert accepted.status_code == 201
