"""The drill clock (演练时钟) against real PostgreSQL: one shared, controllable clock every process of a drill
deployment reads; an admin sets or advances it over HTTP; every event written under it says so; a deployment not
started in drill mode refuses both the route and the setting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.kernel.base import Actor
from domain.structure.campaign import StartCampaign
from infra.bootstrap import System, bootstrap, bootstrap_from_settings
from infra.clock import DeploymentClock, DrillClock, DrillRefused, is_drill, start_drill
from infra.http import create_app
from infra.http.auth import create_token
from infra.settings import Settings

pytestmark = pytest.mark.integration

START = datetime(2022, 1, 3, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ADMIN = Actor(person_id=uuid4(), role="admin", name="演练管理员")


@pytest.fixture
def drill(database_url: str) -> Iterator[System]:
    """A drill deployment's process, started with DUDAO_DRILL_CLOCK on an empty event store."""
    system = bootstrap_from_settings(Settings(database_url=database_url, drill_clock=START))
    yield system
    system.close()


def headers(system: System, role: str) -> dict[str, str]:
    with psycopg.connect(system.database_url) as conn:
        return {"Authorization": f"Bearer {create_token(conn, role, name=role)}"}


def start_campaign(system: System) -> None:
    system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="演练", jurisdiction="某市",
                                        launched_on=START.date()), ADMIN)


def stored_meta(system: System) -> dict[str, object]:
    """The envelope of the newest stored event, as stored (JSON)."""
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT state FROM dudao_events ORDER BY notification_id DESC LIMIT 1").fetchone()
    assert row is not None
    meta: dict[str, object] = json.loads(bytes(row[0]))["meta"]
    return meta


def test_a_drill_starts_at_its_instant_and_every_process_reads_the_same_clock(drill: System) -> None:
    """Right after the start the drill reads START (running on from it); a second process, started without the
    setting, finds the drill clock in the database and reads the same time."""
    first = drill.clock()
    assert START <= first < START + timedelta(minutes=1)
    other = bootstrap_from_settings(Settings(database_url=drill.database_url))
    try:
        assert first <= other.clock() < START + timedelta(minutes=1)
        assert is_drill(other.clock)
    finally:
        other.close()


def test_an_admin_sets_and_advances_the_clock_and_events_say_they_were_drilled(drill: System) -> None:
    """POST /drill/clock moves the shared clock; a command then is recorded at the drill's time with meta.drill."""
    with TestClient(create_app(drill), raise_server_exceptions=False) as client:
        admin = headers(drill, "admin")
        moved = client.post("/drill/clock", json={"set": "2022-01-10T09:00:00+08:00", "running": False}, headers=admin)
        assert moved.status_code == 200, moved.text
        assert datetime.fromisoformat(moved.json()["now"]) == datetime.fromisoformat("2022-01-10T09:00:00+08:00")
        assert moved.json()["running"] is False
        start_campaign(drill)
        meta = stored_meta(drill)
        assert meta["drill"] is True
        assert datetime.fromisoformat(str(meta["recorded_at"]).replace("Z", "+00:00")) == datetime.fromisoformat(
            "2022-01-10T09:00:00+08:00")
        advanced = client.post("/drill/clock", json={"advance_seconds": 7 * 86400}, headers=admin).json()
        assert datetime.fromisoformat(advanced["now"]) == datetime.fromisoformat("2022-01-17T09:00:00+08:00")
        read = client.get("/drill/clock", headers=headers(drill, "unit_officer")).json()
        assert read["drill"] is True and datetime.fromisoformat(read["now"]) == datetime.fromisoformat(advanced["now"])


def test_the_drill_clock_never_goes_back_and_only_an_admin_moves_it(drill: System) -> None:
    """Setting an earlier instant is 409 drill_clock_backwards; an HQ office token is 403."""
    with TestClient(create_app(drill), raise_server_exceptions=False) as client:
        back = client.post("/drill/clock", json={"set": "2021-12-01T09:00:00+08:00"}, headers=headers(drill, "admin"))
        assert (back.status_code, back.json()["code"]) == (409, "drill_clock_backwards")
        office = client.post("/drill/clock", json={"advance_seconds": 60}, headers=headers(drill, "hq_office"))
        assert (office.status_code, office.json()["code"]) == (403, "role_not_allowed")


def test_a_real_deployment_refuses_the_route_and_its_events_carry_no_drill_mark(database_url: str) -> None:
    """Without drill mode: GET says drill false, POST is 409 drill_mode_off, and events are stored without `drill`."""
    system = bootstrap_from_settings(Settings(database_url=database_url))
    try:
        start_campaign(system)
        assert "drill" not in stored_meta(system)
        with TestClient(create_app(system), raise_server_exceptions=False) as client:
            assert client.get("/drill/clock", headers=headers(system, "admin")).json()["drill"] is False
            refused = client.post("/drill/clock", json={"advance_seconds": 60}, headers=headers(system, "admin"))
            assert (refused.status_code, refused.json()["code"]) == (409, "drill_mode_off")
    finally:
        system.close()


def test_a_deployment_with_a_real_history_refuses_the_drill_setting(database_url: str) -> None:
    """Once events were written on the wall clock, DUDAO_DRILL_CLOCK (or --drill-clock) is refused at start."""
    system = bootstrap(database_url)
    start_campaign(system)
    system.close()
    with pytest.raises(DrillRefused) as refused:
        bootstrap_from_settings(Settings(database_url=database_url, drill_clock=START))
    assert refused.value.code == "drill_not_started"


def test_a_restarted_drill_keeps_its_clock_and_a_stopped_clock_stands_still(drill: System) -> None:
    """Starting again with another START leaves the drill where it is; `running: false` holds the time."""
    clock = DrillClock(drill.database_url)
    try:
        clock.set(START + timedelta(days=2), running=False)
        start_drill(drill.database_url, START)
        assert clock() == clock() == START + timedelta(days=2)
        assert DeploymentClock(drill.database_url)() == START + timedelta(days=2)
    finally:
        clock.close()


def test_an_escalator_in_another_process_counts_on_the_drill_clock(drill: System) -> None:
    """A problem handed over, the drill advanced 5 days over HTTP: an escalator of another process takes the 催办."""
    from domain import problem as pr
    from domain.escalation.ladder import step_id_for
    from infra.escalator.engine import Escalator
    from infra.http.queries import load_state
    from tests.support.problem_world import build_world

    world = build_world(drill)
    problem_id = uuid4()
    world.send("supervisor", pr.ReportProblem, problem_id=problem_id, campaign_id=world.campaign_id,
               category="garbage_dumping", place_id=world["s1"], description="垃圾堆积", source="hotline")
    world.send("hq", pr.AssignProblem, problem_id=problem_id)
    world.catch_up()
    with TestClient(create_app(drill), raise_server_exceptions=False) as client:
        assert client.post("/drill/clock", json={"advance_seconds": 5 * 86400},
                           headers=headers(drill, "admin")).status_code == 200
    escalator_process = bootstrap_from_settings(Settings(database_url=drill.database_url, create_tables=False))
    try:
        Escalator.for_system(escalator_process).tick()
        step = load_state(drill.app, "escalation", step_id_for("problem", problem_id, "urge"))
        assert step is not None
    finally:
        escalator_process.close()
