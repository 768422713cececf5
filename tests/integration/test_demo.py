"""The 高安 demo loads through the real command path and shows a lead unit for every grid.

The demo takes a while to load, so it is loaded once, as `dudao demo` does (catching the read models up
between stages), into a brand-new database; the rerun test works on a copy of that database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from infra.bootstrap import bootstrap
from infra.demo.structure import run_demo
from projections.matrix import matrix
from projections.structure import list_places, list_units
from tests.support.databases import Databases

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Demo:
    database_url: str
    summary: dict[str, Any]
    head: int


@pytest.fixture(scope="module")
def demo(databases: Databases) -> Iterator[Demo]:
    """The demo loaded once into a brand-new database (no tables before bootstrap), then closed."""
    database_url = databases.blank("demo")
    system = bootstrap(database_url)
    summary = run_demo(system.app, catch_up=system.projector.catch_up)
    system.projector.catch_up()
    head = system.app.recorder.max_notification_id() or 0
    system.close()
    yield Demo(database_url, summary, head)


def test_demo_loads_the_gaoan_structure_and_a_lead_for_every_grid(demo: Demo) -> None:
    """1 HQ, 1 office, 3 groups, 11 sub-commands, 32 grids, 32 leads; January brings a bulletin, a summons held, a 问责 proposal."""
    summary = demo.summary
    cid = UUID(summary["campaign_id"])
    with psycopg.connect(demo.database_url, row_factory=dict_row) as conn:
        units = list_units(conn, cid)
        places = list_places(conn, cid)
        rows = matrix(conn, cid, None)
    kinds = [u["unit_kind"] for u in units]
    assert (kinds.count("hq"), kinds.count("office"), kinds.count("group"), kinds.count("sub_command")) == (1, 1, 3, 11)
    grids = {p["name"] for p in places if p["place_kind"] == "grid"}
    assert len(grids) == 32
    assert {p["name"] for p in places if p["place_kind"] == "community"} >= {"瑞州社区", "筠州社区", "大观苑社区"}
    leads = {r["scope_name"]: r["party_name"] for r in rows if r["role"] == "lead"}
    assert set(leads) == grids
    assert leads["第九网格"] == "人社局" and leads["第十二网格"] == "医保局"
    invented = {u["name"] for u in units if u["invented"]}
    assert len(invented) == 30 and "人社局" not in invented
    january = summary["january"]
    assert january["bulletin"]["issued_at"] is not None
    assert len(january["bulletin"]["red_list"]) == 5 and len(january["bulletin"]["black_list"]) == 3
    assert january["summons"]["held"] >= 1 and january["accountability_cases_proposed"] >= 1
    assert january["open_escalations_by_level"]


def test_rerunning_the_demo_writes_nothing_new(demo: Demo, databases: Databases) -> None:
    """The demo's command ids are derived from the data, so a second run is harmless."""
    system = bootstrap(databases.copy(demo.database_url, "demo_rerun"))
    second = run_demo(system.app)
    assert demo.summary["events_written"] > 0 and second["events_written"] == 0
    assert system.app.recorder.max_notification_id() == demo.head
    system.close()
