"""The 高安 first batch through the real command path: per-grid figures of the 简报, lifecycle variety, idempotent rerun."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from infra.bootstrap import System, bootstrap
from infra.calendars import official_calendar
from infra.demo.structure import DemoLoader, demo_clock, load_structure, scenario
from infra.demo.first_batch import load_first_batch
from infra.commands.service import CommandService
from projections import ledger as lg
from tests.support.databases import Databases

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(databases: Databases) -> Iterator[tuple[System, dict[str, Any]]]:
    """One database with the structure and the first batch loaded (shared: loading takes a while)."""
    system = bootstrap(databases.clone("first_batch"))
    data = scenario()
    clock = demo_clock(data)
    loader = DemoLoader(CommandService(system.app, clock), clock)
    load_structure(loader, data)
    summary = load_first_batch(loader, data, catch_up=system.projector.catch_up)
    system.projector.catch_up()
    yield system, {"summary": summary, "loader": loader, "data": data}
    system.close()


def query(system: System, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        return fn(conn, *args, **kwargs)


def test_per_grid_counts_match_the_figures_of_the_briefings(loaded: tuple[System, dict[str, Any]]) -> None:
    """第三网格 87/87 rectified, 第九网格 20/20, 第十四网格 72 with 30 rectified; every other grid has a few."""
    system, ctx = loaded
    counts = {r["grid_number"]: (r["total"], r["rectified"]) for r in
              query(system, lg.grid_counts, ctx["loader"].campaign_id)}
    assert (counts[3], counts[9], counts[14]) == ((87, 87), (20, 20), (72, 30))
    assert len(counts) == 32 and all(1 <= total <= 5 for n, (total, _) in counts.items() if n not in (3, 9, 14))
    summary = ctx["summary"]["grids"]
    assert {n: (summary[r_name]["problems"], summary[r_name]["rectified"]) for n, r_name in
            ((3, "第三网格"), (9, "第九网格"), (14, "第十四网格"))} == {3: (87, 87), 9: (20, 20), 14: (72, 30)}


def test_grid_three_is_all_sanitation_closed_after_an_outside_verification(loaded: tuple[System, dict[str, Any]]) -> None:
    """Every 第三网格 problem is 环境卫生, closed, routed by the matrix to the grid's lead unit."""
    system, ctx = loaded
    cid = ctx["loader"].campaign_id
    rows = [r for r in query(system, lg.ledger, cid, now=datetime.fromisoformat(ctx["summary"]["ended_at"]),
                             calendar=official_calendar()) if r["grid_number"] == 3]
    assert len(rows) == 87 and {(r["category"], r["state"]) for r in rows} == {("sanitation", "closed")}
    assert {r["unit_name"] for r in rows} == {"公安局"}
    timeline = query(system, lg.timeline, rows[0]["problem_id"])
    assert [e["actor_role"] for e in timeline] == ["supervisor", "hq_office", "unit_officer", "unit_officer",
                                                   "supervisor", "hq_office"]
    assert timeline[1]["data"]["routing"] == "matrix"


def test_the_batch_shows_rework_transfer_parking_extension_and_overdue_work(loaded: tuple[System, dict[str, Any]]) -> None:
    """Across the other grids: one rework, one transfer, one parked, one extension; some of grid 14 is red."""
    system, ctx = loaded
    rows = query(system, lg.ledger, ctx["loader"].campaign_id, now=datetime.fromisoformat(ctx["summary"]["ended_at"]),
                 calendar=official_calendar())
    assert sum(r["rework_count"] for r in rows) == 1 and sum(r["transfer_count"] for r in rows) == 1
    assert sum(r["parked"] for r in rows) == 1 and sum(r["extension_count"] for r in rows) == 1
    assert not any(r["likely_duplicate_of"] or r["relapse_of"] for r in rows)
    lights = Counter(r["light"] for r in rows if r["grid_number"] == 14 and r["state"] != "closed")
    assert lights["red"] > 0 and sum(lights.values()) == 42


def test_saturday_visits_uploaded_on_monday_keep_their_field_time(loaded: tuple[System, dict[str, Any]]) -> None:
    """Problems found on Saturday 12-18 were recorded on Monday 12-20 (offline entry) with the Saturday field time."""
    system, ctx = loaded
    rows = query(system, lg.ledger, ctx["loader"].campaign_id, now=datetime.fromisoformat(ctx["summary"]["ended_at"]),
                 calendar=official_calendar())
    saturday = [r for r in rows if r["found_at"].date().isoformat() == "2021-12-18"]
    assert saturday and all(r["reported_at"].date().isoformat() == "2021-12-20" for r in saturday)


def test_rerunning_the_first_batch_writes_nothing(loaded: tuple[System, dict[str, Any]]) -> None:
    """Deterministic ids and command ids: loading the batch again leaves the log where it was."""
    system, ctx = loaded
    head = system.app.recorder.max_notification_id()
    clock = demo_clock(ctx["data"])
    loader = DemoLoader(CommandService(system.app, clock), clock, campaign_id=UUID(str(ctx["loader"].campaign_id)))
    load_structure(loader, ctx["data"])
    load_first_batch(loader, ctx["data"])
    assert loader.written == 0 and system.app.recorder.max_notification_id() == head
