"""The 高安 demo loads through the real command path and shows a lead unit for every grid."""

from __future__ import annotations

from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from infra.bootstrap import bootstrap
from infra.demo.structure import run_demo
from projections.matrix import matrix
from projections.structure import list_places, list_units

pytestmark = pytest.mark.integration


def test_demo_loads_the_gaoan_structure_and_a_lead_for_every_grid(database_url: str) -> None:
    """1 HQ, 1 office, 3 groups, 11 sub-commands, 32 grids, 32 leads; January brings a bulletin, a summons held, a 问责 proposal."""
    system = bootstrap(database_url)
    summary = run_demo(system.app, catch_up=system.projector.catch_up)
    system.projector.catch_up()
    cid = UUID(summary["campaign_id"])
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
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
    system.close()


def test_rerunning_the_demo_writes_nothing_new(database_url: str) -> None:
    """The demo's command ids are derived from the data, so a second run is harmless."""
    system = bootstrap(database_url)
    first = run_demo(system.app)
    head = system.app.recorder.max_notification_id()
    second = run_demo(system.app)
    assert first["events_written"] > 0 and second["events_written"] == 0
    assert system.app.recorder.max_notification_id() == head
    system.close()
