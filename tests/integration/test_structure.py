"""The command structure (指挥体系) through the service on real PostgreSQL, and its read model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from domain.kernel.base import Actor, DomainError
from domain.structure.campaign import StartCampaign
from domain.structure.person import JoinUnit, LeaveUnit, RegisterPerson, RetirePerson
from domain.structure.place import RegisterPlace, RenamePlace
from domain.structure.unit import MoveUnit, RegisterUnit, RenameUnit, RetireUnit, UnitRenamed
from infra.bootstrap import System, bootstrap
from projections.base import Projection
from projections.structure import get_person, get_place, get_unit, list_places, list_units

pytestmark = pytest.mark.integration

HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")


@pytest.fixture
def system(database_url: str, clock: Any) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


def run(system: System, cls: type, **fields: Any) -> Any:
    return system.service.handle(cls(command_id=str(uuid4()), **fields), HQ)


def new_campaign(system: System) -> UUID:
    cid = uuid4()
    run(system, StartCampaign, campaign_id=cid, name="高安市“三城同创”", jurisdiction="江西省宜春市高安市",
        launched_on=date(2021, 12, 3))
    return cid


def unit(system: System, cid: UUID, name: str, kind: str, parent: UUID | None = None) -> UUID:
    uid = uuid4()
    run(system, RegisterUnit, unit_id=uid, campaign_id=cid, name=name, unit_kind=kind, parent_id=parent)
    return uid


def log_size(system: System) -> int:
    return system.app.recorder.max_notification_id() or 0


def structure(system: System) -> Projection:
    return next(p for p in system.projector.projections if p.name == "structure")


def snapshot(system: System) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(system.database_url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in structure(system).tables}


def test_a_registered_tree_appears_in_the_read_model(system: System) -> None:
    """HQ, office and sub-command with a member and a nested place show up after catch_up with their parents."""
    cid = new_campaign(system)
    hq = unit(system, cid, "总指挥部", "hq")
    office = unit(system, cid, "总指挥部办公室", "office", hq)
    sub = unit(system, cid, "第一分指挥部", "sub_command", hq)
    street, grid = uuid4(), uuid4()
    run(system, RegisterPlace, place_id=street, campaign_id=cid, name="瑞州街道", place_kind="street")
    run(system, RegisterPlace, place_id=grid, campaign_id=cid, name="第1网格", place_kind="grid", parent_id=street,
        number=1)
    pid = uuid4()
    run(system, RegisterPerson, person_id=pid, campaign_id=cid, name="张三", title="办公室主任")
    run(system, JoinUnit, person_id=pid, unit_id=office, roles=("unit_head", "hq_office"))
    system.projector.catch_up()
    with psycopg.connect(system.database_url) as conn:
        units = {u["unit_id"]: u for u in list_units(conn, cid)}
        places = list_places(conn, cid)
        person = get_person(conn, pid)
    assert {k: (u["name"], u["parent_id"]) for k, u in units.items()} == {
        hq: ("总指挥部", None), office: ("总指挥部办公室", hq), sub: ("第一分指挥部", hq)}
    assert {(p["place_id"], p["parent_id"], p["number"]) for p in places} == {(street, None, None), (grid, street, 1)}
    assert person is not None and person["title"] == "办公室主任"
    assert person["memberships"] == [{"unit_id": office, "unit_name": "总指挥部办公室", "roles": ["unit_head", "hq_office"]}]


def test_a_rename_keeps_history_in_state_and_shows_the_new_name(system: System) -> None:
    """After two renames the folded state lists all names and the read model shows the latest."""
    cid = new_campaign(system)
    hq = unit(system, cid, "创建指挥部", "hq")
    run(system, RenameUnit, unit_id=hq, name="三城同创指挥部")
    run(system, RenameUnit, unit_id=hq, name="三城同创总指挥部")
    stored = system.app.history(hq)
    assert [s.event.previous_name for s in stored[1:] if isinstance(s.event, UnitRenamed)] == ["创建指挥部", "三城同创指挥部"]
    system.projector.catch_up()
    with psycopg.connect(system.database_url) as conn:
        row = get_unit(conn, hq)
    assert row is not None and row["name"] == "三城同创总指挥部"


def test_a_move_that_would_create_a_cycle_is_rejected_and_writes_nothing(system: System) -> None:
    """Moving a sub-command under its own department is 422 cycle and the log does not grow."""
    cid = new_campaign(system)
    hq = unit(system, cid, "总指挥部", "hq")
    sub = unit(system, cid, "第一分指挥部", "sub_command", hq)
    dept = unit(system, cid, "市城管局", "department", sub)
    before = log_size(system)
    with pytest.raises(DomainError) as err:
        run(system, MoveUnit, unit_id=sub, parent_id=dept, reason="调整隶属关系")
    assert (err.value.code, err.value.status) == ("cycle", 422)
    assert log_size(system) == before


def test_a_parent_from_another_campaign_is_rejected(system: System) -> None:
    """A unit cannot be registered under, or moved to, another campaign's unit."""
    c1, c2 = new_campaign(system), new_campaign(system)
    hq1, hq2 = unit(system, c1, "甲总指挥部", "hq"), unit(system, c2, "乙总指挥部", "hq")
    dept = unit(system, c1, "市城管局", "department", hq1)
    before = log_size(system)
    with pytest.raises(DomainError) as err:
        run(system, RegisterUnit, unit_id=uuid4(), campaign_id=c1, name="办公室", unit_kind="office", parent_id=hq2)
    assert err.value.code == "cross_campaign_reference"
    with pytest.raises(DomainError) as err:
        run(system, MoveUnit, unit_id=dept, parent_id=hq2, reason="调整隶属关系")
    assert err.value.code == "cross_campaign_reference"
    assert log_size(system) == before


def test_retirements_and_departures_reach_the_read_model(system: System) -> None:
    """A retired unit is flagged, a retired person loses every membership row."""
    cid = new_campaign(system)
    hq = unit(system, cid, "总指挥部", "hq")
    dept = unit(system, cid, "市城管局", "department", hq)
    pid = uuid4()
    run(system, RegisterPerson, person_id=pid, campaign_id=cid, name="李四")
    run(system, JoinUnit, person_id=pid, unit_id=hq, roles=("leader",))
    run(system, JoinUnit, person_id=pid, unit_id=dept, roles=("liaison",))
    run(system, LeaveUnit, person_id=pid, unit_id=hq, reason="分工调整")
    run(system, RetireUnit, unit_id=dept, reason="机构改革")
    run(system, RetirePerson, person_id=pid, reason="退休")
    system.projector.catch_up()
    with psycopg.connect(system.database_url) as conn:
        d, person = get_unit(conn, dept), get_person(conn, pid)
    assert d is not None and d["retired"]
    assert person is not None and person["retired"] and person["memberships"] == []


def test_a_rebuild_gives_identical_rows(system: System) -> None:
    """Truncating and replaying the structure projection reproduces every table row for row."""
    cid = new_campaign(system)
    hq = unit(system, cid, "总指挥部", "hq")
    a = unit(system, cid, "第一分指挥部", "sub_command", hq)
    b = unit(system, cid, "第二分指挥部", "sub_command", hq)
    g = unit(system, cid, "督导组", "group", a)
    run(system, MoveUnit, unit_id=g, parent_id=b, reason="调整隶属关系")
    street = uuid4()
    run(system, RegisterPlace, place_id=street, campaign_id=cid, name="筠阳街道", place_kind="street")
    run(system, RenamePlace, place_id=street, name="筠阳街道办")
    pid = uuid4()
    run(system, RegisterPerson, person_id=pid, campaign_id=cid, name="王五", title="组长")
    run(system, JoinUnit, person_id=pid, unit_id=g, roles=("leader", "supervisor"))
    system.projector.catch_up()
    before = snapshot(system)
    system.projector.rebuild(structure(system))
    assert snapshot(system) == before
    assert all(before.values())
    with psycopg.connect(system.database_url) as conn:
        place = get_place(conn, street)
    assert place is not None and place["name"] == "筠阳街道办"


def test_two_simultaneous_crossing_moves_never_both_succeed(system: System) -> None:
    """Moving A under B and B under A at the same moment: at most one lands, so no cycle is ever stored."""
    from concurrent.futures import ThreadPoolExecutor

    cid = new_campaign(system)
    hq = unit(system, cid, "总指挥部", "hq")
    for round_ in range(10):
        a = unit(system, cid, f"甲{round_}", "sub_command", hq)
        b = unit(system, cid, f"乙{round_}", "sub_command", hq)

        def move(pair: tuple[UUID, UUID]) -> bool:
            try:
                run(system, MoveUnit, unit_id=pair[0], parent_id=pair[1], reason="调整隶属关系")
                return True
            except DomainError as err:
                assert err.code == "cycle"
                return False

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(move, [(a, b), (b, a)]))
        assert outcomes.count(True) == 1
