"""`GET /metrics` exposes the log head and the relay and projection lag in Prometheus text."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from domain.kernel.base import Actor
from domain.structure.campaign import StartCampaign
from infra.http.app import create_app
from infra.bootstrap import bootstrap

pytestmark = pytest.mark.integration


def test_metrics_report_the_relay_lag_of_unpublished_events(blank_database_url: str) -> None:
    """On a brand-new database with two stored events and no relay ever run, the relay lag is 2 and the log head is 2."""
    system = bootstrap(blank_database_url)
    for _ in range(2):
        system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="测试", jurisdiction="测试市",
                                            launched_on=date(2021, 12, 3)), Actor(role="admin"))
    with TestClient(create_app(system, kafka_bootstrap=None)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert "dudao_log_head 2" in lines and "dudao_relay_lag_events 2" in lines
    system.close()
