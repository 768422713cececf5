"""`GET /campaigns/{id}/ledger/lights` (the 总览's light board) against real PostgreSQL: open problems by light, per
grid and sub-command, counted from the very ledger rows a token may see."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from infra.bootstrap import bootstrap
from infra.calendars import official_calendar
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.problem_world import World, build_world, photo

pytestmark = pytest.mark.integration
CAL = official_calendar()


@pytest.fixture
def world(database_url: str, clock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.system), raise_server_exceptions=False) as c:
        yield c


def auth(world: World, who: str | None = None) -> dict[str, str]:
    """A bearer header for a world person's token (admin when `who` is None)."""
    actor = world.actors[who] if who else None
    with psycopg.connect(world.system.database_url, autocommit=True) as conn:
        token = create_token(conn, actor.role if actor else "admin", person_id=actor.person_id if actor else None)
    return {"Authorization": f"Bearer {token}"}


def report(w: World, place: str) -> UUID:
    pid = uuid4()
    w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category="sanitation",
           place_id=w[place], description="路面垃圾", evidence=(photo("x"),), source="assessment")
    return pid


def scenario(w: World) -> dict[str, UUID]:
    """Grid 1: one closed, one assigned (unit_a); grid 2: one assigned (unit_b), one only reported."""
    ids = {"closed": report(w, "s1"), "open_a": report(w, "s2"), "open_b": report(w, "s3"), "new": report(w, "s3")}
    for key in ("closed", "open_a", "open_b"):
        w.send("hq", pr.AssignProblem, problem_id=ids[key])
    w.send("officer_a", pr.AcknowledgeProblem, problem_id=ids["closed"])
    w.send("officer_a", pr.SubmitRectification, problem_id=ids["closed"], evidence=(photo("a"),))
    w.send("supervisor", pr.VerifyRectification, problem_id=ids["closed"])
    w.send("hq", pr.CloseProblem, problem_id=ids["closed"])
    w.catch_up()
    return ids


def lights(client: TestClient, w: World, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    response = client.get(f"/campaigns/{w.campaign_id}/ledger/lights", params=query, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_board_counts_the_open_ledger_rows_by_their_light(world: World, client: TestClient) -> None:
    """Open = not verified, closed, withdrawn or merged; each open row counts once under the ledger's own light."""
    scenario(world)
    headers = auth(world)
    late = CAL.add_working_hours(world.system.clock(), 30).isoformat()  # past the 3-working-day limit
    board = lights(client, world, headers, as_of=late)
    ledger = client.get(f"/campaigns/{world.campaign_id}/ledger", params={"as_of": late}, headers=headers).json()
    open_rows = [r for r in ledger["rows"] if r["state"] not in ("verified", "closed", "withdrawn", "merged")]
    expected = Counter(r["light"] or "unassigned" for r in open_rows)
    assert board["open"] == len(open_rows) == 3
    assert board["by_light"] == {k: expected.get(k, 0) for k in ("red", "yellow", "green", "unassigned")}
    assert board["by_light"] == {"red": 2, "yellow": 0, "green": 0, "unassigned": 1} and board["overdue"] == 2
    assert board["as_of"] == ledger["as_of"] and board["log_head"] >= board["projection_position"] > 0


def test_the_board_groups_per_grid_and_per_sub_command(world: World, client: TestClient) -> None:
    """Each grid lists its open problems by light, the most red first; units under no sub-command are one group."""
    scenario(world)
    board = lights(client, world, auth(world))
    grids = {g["name"]: {k: g[k] for k in ("open", "red", "yellow", "green", "unassigned")} for g in board["by_grid"]}
    assert grids == {"grid1": {"open": 1, "red": 0, "yellow": 0, "green": 1, "unassigned": 0},
                     "grid2": {"open": 2, "red": 0, "yellow": 0, "green": 1, "unassigned": 1}}
    assert [g["id"] for g in board["by_grid"]] == [str(world["grid2"]), str(world["grid1"])]
    assert [(g["id"], g["open"]) for g in board["by_sub_command"]] == [(None, 3)]


def test_a_unit_officer_counts_only_the_problems_handed_to_their_unit(world: World, client: TestClient) -> None:
    """officer_a sees unit_a's one open problem; officer_b sees unit_b's (a reported one belongs to no unit yet)."""
    ids = scenario(world)
    a, b = lights(client, world, auth(world, "officer_a")), lights(client, world, auth(world, "officer_b"))
    assert (a["open"], [g["id"] for g in a["by_grid"]]) == (1, [str(world["grid1"])])
    assert (b["open"], [g["id"] for g in b["by_grid"]]) == (1, [str(world["grid2"])])
    assert ids["open_a"] != ids["open_b"]


def test_the_trend_ends_at_the_last_deadline_passed_by_as_of(world: World, client: TestClient) -> None:
    """trend_until is the latest deadline already past at as_of; null while none has passed."""
    scenario(world)
    headers = auth(world)
    assert lights(client, world, headers)["trend_until"] is None
    late = CAL.add_working_hours(world.system.clock(), 30).isoformat()
    ledger = client.get(f"/campaigns/{world.campaign_id}/ledger", params={"as_of": late}, headers=headers).json()
    deadlines = sorted(r["deadline"] for r in ledger["rows"] if r["deadline"])
    assert lights(client, world, headers, as_of=late)["trend_until"] == deadlines[-1]
