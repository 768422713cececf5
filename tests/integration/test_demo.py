"""The 高安 demo loads through the real command path, shows a lead unit for every grid, and ends with a dossier.

The demo takes a while to load, so it is loaded once, as `dudao demo` does (catching the read models up
between stages, then writing the dossier of its first 问责 case), into a brand-new database; the rerun
test works on a copy of that database."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from infra.bootstrap import bootstrap
from infra.demo.structure import run_demo
from projections.matrix import matrix
from projections.structure import list_places, list_units
from tests.support.databases import Databases
from tests.support.demo_data import Demo, copy_of
from tests.support.dossier import parse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(databases: Databases, loaded_demo: Demo) -> Demo:
    """The demo loaded once per session, as `dudao demo` loads it, into a brand-new database; this module's copy."""
    return copy_of(databases, loaded_demo)


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
    leads = {r["scope_name"]: r["party_name"] for r in rows if r["role"] == "lead" and r["scope_kind"] == "place"}
    assert set(leads) == grids
    assert leads["第九网格"] == "人社局" and leads["第十二网格"] == "医保局"
    invented = {u["name"] for u in units if u["invented"]}
    assert len(invented) == 30 and "人社局" not in invented
    january = summary["january"]
    assert january["bulletin"]["issued_at"] is not None
    assert len(january["bulletin"]["red_list"]) == 5 and len(january["bulletin"]["black_list"]) == 3
    assert january["summons"]["held"] >= 1 and january["accountability_cases_proposed"] >= 1
    assert january["open_escalations_by_level"]


def test_demo_imports_the_task_table_and_reports_through_january(demo: Demo) -> None:
    """公共设施指挥部's 44 small indicators are imported as tasks on 01-04 (the tree 3 → 3.1–3.6 → 44), reported on
    through January with the planned misses recorded and climbing the ladder, and three tasks accepted."""
    tasks = demo.summary["tasks"]
    assert tasks["import"]["created"] == 44 and tasks["import"]["error_rows"] == 0
    assert tasks["import"]["indicators_created"] == 51 and tasks["tasks"] == 44 and tasks["completed"] == 3
    assert tasks["reports_filed"] > 150 and tasks["reports_missed"] >= 5 and tasks["escalation_steps_on_tasks"] > 0
    cid = UUID(demo.summary["campaign_id"])
    with psycopg.connect(demo.database_url, row_factory=dict_row) as conn:
        late = conn.execute("SELECT count(*) AS n FROM task_reports WHERE campaign_id = %s AND on_time = false",
                            (cid,)).fetchone()
        missed = {r["due_on"].isoformat() for r in conn.execute(
            "SELECT due_on FROM task_missed_reports WHERE campaign_id = %s", (cid,)).fetchall()}
    assert late is not None and late["n"] >= 1 and {"2022-01-14", "2022-01-21", "2022-01-12"} <= missed


def test_rerunning_the_demo_writes_nothing_new(demo: Demo, databases: Databases) -> None:
    """The demo's command ids are derived from the data, so a second run is harmless."""
    system = bootstrap(databases.copy(demo.database_url, "demo_rerun"))
    second = run_demo(system.app)
    assert demo.summary["events_written"] > 0 and second["events_written"] == 0
    assert system.app.recorder.max_notification_id() == demo.head
    system.close()


def test_the_demo_ends_with_the_dossier_of_its_first_accountability_case(demo: Demo) -> None:
    """The file under <var>/dossiers parses back with the first 问责 case, the trails it rests on, the lead then in
    force, an agreeing escalation replay and an intact proof."""
    assert demo.summary["dossier"] is not None
    path = Path(demo.summary["dossier"])
    assert path.is_file() and path.parent == demo.var_dir / "dossiers"
    with psycopg.connect(demo.database_url, row_factory=dict_row) as conn:
        first = conn.execute("SELECT aggregate_id FROM audit_events WHERE kind = 'accountability_case'"
                             " ORDER BY notification_id LIMIT 1").fetchone()
    assert first is not None
    page = parse(path.read_text(encoding="utf-8"))
    case = page.sections["case"]
    assert case["data-case-id"] == str(first["aggregate_id"]) and page.rows_in["case"] >= 1
    trails = {name: n for name, n in page.rows_in.items() if name.startswith("trail-")}
    assert trails and all(n > 0 for n in trails.values()), page.sections.keys()
    proof = page.sections["integrity"]
    assert proof["data-intact"] == "true" and int(proof["data-to"]) == demo.head >= max(page.positions)
    assert page.digest["data-position"] == proof["data-to"] and page.digest["data-head-hash"] == proof["data-head-hash"]
    assert "lead" in {h["data-role"] for h in page.holders}  # the grid's lead answers for the 点位 inside it
    assert page.sections["replay"]["data-agrees"] == "true" and "问责卷宗" in "".join(page.text)
