"""Large writes against the real PostgreSQL: the biggest command the HTTP limit lets through, and 2,000 events in
one save, are stored without freezing the events table, and a small write made meanwhile completes.

psycopg's pipeline mode stops flushing once its command queue is empty, so a statement larger than the
socket's send buffer was left half-sent while the client waited for its result: the server sat in
ClientRead holding the events table's EXCLUSIVE lock, and every later write queued behind it. Each test
runs its writes in a daemon thread with a deadline, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.kernel.base import Actor, Meta
from domain.structure.campaign import CampaignRenamed, RenameCampaign
from domain.visit import LogVisit
from infra.bootstrap import bootstrap
from infra.http import create_app
from infra.http.app import MAX_BODY_BYTES
from infra.http.auth import create_token
from infra.store.event_store import StoredDomainEvent
from tests.support.deadlines import in_background, within
from tests.support.problem_world import World, build_world

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0
HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")


@pytest.fixture
def world(database_url: str, clock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


def long_text(i: int, length: int) -> str:
    """A Chinese description of exactly `length` characters (3 bytes each in UTF-8), distinct per finding."""
    head = f"第{i + 1}处："
    return head + "垃圾堆放未清运" * ((length - len(head)) // 7) + "。" * ((length - len(head)) % 7)


def largest_visit(world: World, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """A valid log_visit body with the most findings allowed (200), descriptions stretched until it just fits `limit`."""

    def body(length: int) -> dict[str, Any]:
        findings = [{"problem_id": str(uuid4()), "category": ("sanitation", "clutter")[i % 2],
                     "description": long_text(i, length), "place_id": str(world[f"s{i % 2 + 1}"])}
                    for i in range(200)]
        return {"command_id": str(uuid4()), "occurred_at": (world.system.clock() - timedelta(hours=2)).isoformat(),
                "visit_id": str(uuid4()), "campaign_id": str(world.campaign_id), "place_id": str(world["grid1"]),
                "participants": [str(world["supervisor"])], "findings": findings}

    def size(length: int) -> int:
        return len(encoded(body(length)))

    short, long = 10, 2000  # Text allows at most 2,000 characters
    while long - short > 1:
        mid = (short + long) // 2
        short, long = (mid, long) if size(mid) <= limit else (short, mid)
    return body(short)


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def token_for(world: World, who: str) -> dict[str, str]:
    actor = world.actors[who]
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_the_largest_visit_the_body_limit_allows_is_stored_while_a_small_write_completes(world: World) -> None:
    """A log_visit of 200 long findings just under the 1 MiB body limit gets 201, and a rename sent meanwhile gets 201."""
    body = largest_visit(world)
    assert MAX_BODY_BYTES - 4096 < len(encoded(body)) <= MAX_BODY_BYTES
    headers = token_for(world, "supervisor")
    hq = token_for(world, "hq")
    with TestClient(create_app(world.system), raise_server_exceptions=False) as client:
        big = in_background(lambda: client.post("/commands/log_visit", content=encoded(body), headers=headers))
        small = within(DEADLINE_S, lambda: client.post("/commands/rename_campaign", headers=hq, content=encoded(
            {"command_id": str(uuid4()), "campaign_id": str(world.campaign_id), "name": "高安市创建文明城市"})))
        visit = big(DEADLINE_S)
    assert small.status_code == 201, small.text
    assert visit.status_code == 201, visit.text[:500]
    assert len(visit.json()["events"]) == 201


def test_the_largest_visit_written_three_times_in_a_row_through_the_service_is_stored_each_time(world: World) -> None:
    """Three ~1 MiB visits in a row through the command service are each stored with their 201 events."""
    for _ in range(3):
        body = largest_visit(world)
        command = LogVisit.model_validate(body)
        result = within(DEADLINE_S, lambda: world.system.service.handle(command, world.actors["supervisor"]))  # noqa: B023  # waited on in this iteration
        assert len(result.events) == 201


def renamed(i: int) -> StoredDomainEvent:
    """A small real event on an aggregate of its own (what a save of many aggregates writes)."""
    at = datetime.now(timezone.utc)
    meta = Meta(actor=HQ, occurred_at=at, recorded_at=at, correlation_id=uuid4(), command_id=f"bulk-{i}")
    return StoredDomainEvent(uuid4(), 1, CampaignRenamed(meta=meta, campaign_id=uuid4(), name=f"活动{i}"))


def test_two_thousand_events_in_one_save_are_stored_three_times_in_a_row(world: World) -> None:
    """Saving 2,000 events in one call, three calls in a row, stores all 6,000 in order."""
    app = world.system.app
    before = app.recorder.max_notification_id() or 0
    for round_ in range(3):
        events = [renamed(round_ * 2000 + i) for i in range(2000)]
        recordings = within(DEADLINE_S, lambda: app.save(*events))  # noqa: B023  # waited on in this iteration
        assert len(recordings) == 2000
    assert (app.recorder.max_notification_id() or 0) - before == 6000


def test_a_single_event_of_nearly_a_megabyte_is_stored_and_the_table_stays_writable(world: World) -> None:
    """One event with a ~1 MB payload is stored; a rename right after it is stored too."""
    app = world.system.app
    big = StoredDomainEvent(uuid4(), 1, CampaignRenamed.model_construct(
        meta=renamed(0).event.meta, campaign_id=uuid4(), name="名" * 330_000))
    within(DEADLINE_S, lambda: app.save(big))
    result = within(DEADLINE_S, lambda: world.system.service.handle(RenameCampaign(
        command_id=str(uuid4()), campaign_id=world.campaign_id, name="高安市创建文明城市"), world.actors["hq"]))
    assert len(result.events) == 1
