"""Rates where counts are shown (issue 12, item 9), over HTTP against real PostgreSQL.

The ledger's summary and the grid progress state 整改率, 结案率 and 按期结案率 with numerator and denominator, by
the one definition the evaluation metrics use (`projections.metrics`), and each ledger row says whether it was
closed on time. Hand-checked on three problems due on Friday 17 Dec 2021: one closed on time, one closed late,
one still open.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.problem_world import World, build_world, photo

pytestmark = pytest.mark.integration


@pytest.fixture
def world(database_url: str, clock: SimulatedClock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


def handed_over(w: World, place: str) -> UUID:
    pid = uuid4()
    w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category="garbage_dumping",
           place_id=w[place], description="垃圾堆积", source="hotline")
    w.send("hq", pr.AssignProblem, problem_id=pid)
    return pid


def rectified_and_closed(w: World, pid: UUID, officer: str) -> None:
    w.send(officer, pr.AcknowledgeProblem, problem_id=pid)
    w.send(officer, pr.SubmitRectification, problem_id=pid, evidence=(photo(f"after-{pid}"),))
    w.send("supervisor", pr.VerifyRectification, problem_id=pid)
    w.send("hq", pr.CloseProblem, problem_id=pid)


@pytest.fixture
def history(world: World, clock: SimulatedClock) -> Iterator[tuple[World, TestClient, dict[str, UUID]]]:
    """Tue 14 Dec: three problems handed over (due Fri 17 Dec 09:00); Wed: one closed; Mon 20 Dec: one closed late;
    read on Tue 21 Dec."""
    ids = {"on_time": handed_over(world, "s1"), "open": handed_over(world, "s2"), "late": handed_over(world, "s3")}
    clock.advance(timedelta(days=1))
    rectified_and_closed(world, ids["on_time"], "officer_a")
    clock.advance(timedelta(days=5))
    rectified_and_closed(world, ids["late"], "officer_b")
    clock.advance(timedelta(days=1))
    world.catch_up()
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, "hq_office", person_id=world["hq"])
    with TestClient(create_app(world.system), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield world, client, ids


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {"value": round(numerator / denominator, 4), "numerator": numerator, "denominator": denominator}


def test_the_ledger_states_its_rates_and_whether_each_row_closed_on_time(history: Any) -> None:
    """整改率 2/3 (two passed re-inspection of three due), 结案率 2/3, 按期结案率 1/3; rows: on time, late, open."""
    world, client, ids = history
    body = client.get(f"/campaigns/{world.campaign_id}/ledger").json()
    rates = body["summary"]["rates"]
    assert rates == {"rectification_rate": rate(2, 3), "closure_rate": rate(2, 3), "on_time_closure_rate": rate(1, 3)}
    assert body["summary"]["formulas"]["rectification_rate"]["name_zh"] == "整改率"
    on_time = {UUID(r["problem_id"]): r["closed_on_time"] for r in body["rows"]}
    assert on_time == {ids["on_time"]: True, ids["late"]: False, ids["open"]: None}
    exported = list(csv.reader(io.StringIO(client.get(f"/campaigns/{world.campaign_id}/ledger.csv").content
                                           .decode("utf-8-sig"))))
    column = exported[0].index("按期结案")
    assert sorted(r[column] for r in exported[1:]) == ["", "否", "是"]


def test_the_summary_and_the_grids_share_the_metrics_definition(history: Any) -> None:
    """The ledger summary is the metrics' campaign totals, and each grid's rates are the metrics' figures by grid."""
    world, client, _ = history
    campaign = world.campaign_id
    summary = client.get(f"/campaigns/{campaign}/ledger").json()["summary"]
    metrics = client.get(f"/campaigns/{campaign}/metrics", params={"by": "campaign", "period": "all"}).json()
    assert summary["rates"] == {k: metrics["totals"]["figures"][k] for k in summary["rates"]}
    grids = client.get(f"/campaigns/{campaign}/grids/progress").json()["rows"]
    by_grid = {r["grid_name"]: r["rates"] for r in grids}
    assert by_grid["grid1"]["rectification_rate"] == rate(1, 2) and by_grid["grid1"]["on_time_closure_rate"] == rate(1, 2)
    assert by_grid["grid2"]["closure_rate"] == rate(1, 1) and by_grid["grid2"]["on_time_closure_rate"] == rate(0, 1)
    per_grid = client.get(f"/campaigns/{campaign}/metrics", params={"by": "grid", "period": "all"}).json()["rows"]
    assert {r["name"]: r["figures"] for r in per_grid} == {name: by_grid[name] for name in ("grid1", "grid2")}
