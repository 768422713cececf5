"""The responsibility matrix (责任矩阵) against the real PostgreSQL: as-of answers, revocation, rebuild, batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from domain.kernel.base import Actor, Command, DomainError
from domain.structure.campaign import StartCampaign
from domain.structure.indicator import DefineIndicator
from domain.tasks import DefineTask
from domain.structure.person import RegisterPerson
from domain.structure.place import PlaceKind, RegisterPlace
from domain.structure.responsibility import AssignResponsibility, RevokeResponsibility, new_assignment_id, responsibility_id
from domain.structure.responsibility import PartyKind, Role, ScopeKind
from domain.structure.unit import RegisterUnit
from infra.bootstrap import System, bootstrap
from projections.base import Projection
from projections.matrix import lead_unit_for_place, matrix, responsible_for

pytestmark = pytest.mark.integration

HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")
T0 = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def system(database_url: str, clock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


@dataclass
class World:
    """A small command structure: two departments, a street → community → grid chain, a person, an indicator, a task."""

    system: System
    campaign: UUID
    ids: dict[str, UUID]

    def send(self, cmd: Command) -> Any:
        return self.system.service.handle(cmd, HQ)

    def assign(self, scope: str, party: str, role: Role = "lead", start: datetime | None = None,
               scope_kind: ScopeKind = "place", party_kind: PartyKind = "unit") -> UUID:
        cmd = AssignResponsibility(
            command_id=str(uuid4()), campaign_id=self.campaign, scope_kind=scope_kind, scope_id=self.ids[scope],
            party_kind=party_kind, party_id=self.ids[party], role=role, effective_from=start, reason="职能调整",
        )
        self.send(cmd)
        return new_assignment_id(responsibility_id(self.campaign, scope_kind, cmd.scope_id), cmd.command_id)

    def revoke(self, scope: str, assignment_id: UUID, end: datetime | None = None, reason: str = "职能调整") -> None:
        self.send(RevokeResponsibility(command_id=str(uuid4()), campaign_id=self.campaign, scope_kind="place",
                                       scope_id=self.ids[scope], assignment_id=assignment_id, reason=reason,
                                       effective_to=end))


@pytest.fixture
def world(system: System) -> World:
    w = World(system, uuid4(), {k: uuid4() for k in ("hq", "urban", "env", "street", "community", "grid",
                                                     "wang", "ind", "task")})
    i, c = w.ids, w.campaign
    w.send(StartCampaign(command_id=str(uuid4()), campaign_id=c, name="高安市“三城同创”",
                         jurisdiction="江西省宜春市高安市", launched_on=date(2021, 12, 3)))
    w.send(RegisterUnit(command_id=str(uuid4()), unit_id=i["hq"], campaign_id=c, name="总指挥部", unit_kind="hq"))
    for key, name in (("urban", "市城管局"), ("env", "市生态环境局")):
        w.send(RegisterUnit(command_id=str(uuid4()), unit_id=i[key], campaign_id=c, name=name,
                            unit_kind="department", parent_id=i["hq"]))
    parent = None
    levels: tuple[tuple[str, str, PlaceKind], ...] = (
        ("street", "瑞州街道", "street"), ("community", "筠阳社区", "community"), ("grid", "第7网格", "grid"))
    for key, name, kind in levels:
        w.send(RegisterPlace(command_id=str(uuid4()), place_id=i[key], campaign_id=c, name=name, place_kind=kind,
                             parent_id=parent))
        parent = i[key]
    w.send(RegisterPerson(command_id=str(uuid4()), person_id=i["wang"], campaign_id=c, name="王建国"))
    w.send(DefineIndicator(command_id=str(uuid4()), indicator_id=i["ind"], campaign_id=c, code="3.2", name="背街小巷"))
    w.send(DefineTask(command_id=str(uuid4()), task_id=i["task"], campaign_id=c, indicator_id=i["ind"],
                      name="清理乱贴乱画", due_on=date(2022, 1, 31)))
    return w


def connect(system: System) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(system.database_url, row_factory=dict_row)


def matrix_projection(system: System) -> Projection:
    return next(p for p in system.projector.projections if p.name == "matrix")


def snapshot(system: System) -> dict[str, list[dict[str, Any]]]:
    with connect(system) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in matrix_projection(system).tables}


def log_head(system: System) -> int:
    return system.app.recorder.max_notification_id() or 0


def test_matrix_as_of_shows_the_lead_in_force_then(world: World) -> None:
    """A lead changed on day 10: as of day 5 the old lead shows, now the new one does, both named."""
    world.assign("street", "urban", start=day(0))
    world.assign("street", "env", start=day(10))
    world.system.projector.catch_up()
    with connect(world.system) as conn:
        then = matrix(conn, world.campaign, as_of=day(5))
        now = matrix(conn, world.campaign)
    assert [(r["scope_name"], r["party_name"], r["role"]) for r in then] == [("瑞州街道", "市城管局", "lead")]
    assert [(r["party_name"], r["valid_from"]) for r in now] == [("市生态环境局", day(10))]
    assert then[0]["valid_to"] == day(10)


def test_superseding_a_lead_is_one_command_with_two_events(world: World) -> None:
    """The new lead's command stores the old lead's end and the new assignment together."""
    world.assign("street", "urban", start=day(0))
    result = world.send(AssignResponsibility(
        command_id=str(uuid4()), campaign_id=world.campaign, scope_kind="place", scope_id=world.ids["street"],
        party_kind="unit", party_id=world.ids["env"], role="lead", effective_from=day(3), reason="职能调整"))
    assert [e["type"] for e in result.events] == ["dudao.responsibility.ResponsibilityEnded",
                                                  "dudao.responsibility.ResponsibilityAssigned"]


def test_the_matrix_lists_every_role_on_places_tasks_and_indicators_in_order(world: World) -> None:
    """Rows are ordered by scope name, then lead/co/包保, then party name; task and indicator names show."""
    world.assign("grid", "env", role="co")
    world.assign("grid", "urban", role="lead")
    world.assign("grid", "wang", role="bao_bao", party_kind="person")
    world.assign("task", "urban", scope_kind="task")
    world.assign("ind", "env", scope_kind="indicator")
    world.system.projector.catch_up()
    with connect(world.system) as conn:
        rows = matrix(conn, world.campaign)
        grid = responsible_for(conn, "place", world.ids["grid"])
    assert [(r["scope_name"], r["role"], r["party_name"]) for r in rows] == [
        ("清理乱贴乱画", "lead", "市城管局"),
        ("第7网格", "lead", "市城管局"), ("第7网格", "co", "市生态环境局"), ("第7网格", "bao_bao", "王建国"),
        ("背街小巷", "lead", "市生态环境局"),
    ]
    assert [r["role"] for r in grid] == ["lead", "co", "bao_bao"]


def test_missing_names_do_not_drop_rows(world: World) -> None:
    """With only the matrix projected (no structure names yet) the rows are there, names empty."""
    world.assign("street", "urban")
    world.system.projector.run_once(matrix_projection(world.system))
    with connect(world.system) as conn:
        (row,) = matrix(conn, world.campaign)
    assert row["scope_name"] is None and row["party_name"] is None and row["party_id"] == world.ids["urban"]


def test_a_revoked_assignment_leaves_the_matrix_but_stays_in_history(world: World) -> None:
    """After revocation on day 4 the co-unit is gone now, still present as of day 2, with the reason kept."""
    assignment = world.assign("community", "env", role="co", start=day(0))
    world.revoke("community", assignment, end=day(4), reason="调整为其他网格")
    world.system.projector.catch_up()
    with connect(world.system) as conn:
        assert responsible_for(conn, "place", world.ids["community"]) == []
        (then,) = responsible_for(conn, "place", world.ids["community"], as_of=day(2))
        row = conn.execute("SELECT * FROM matrix_assignments WHERE assignment_id = %s", (assignment,)).fetchone()
    assert then["assignment_id"] == assignment and row is not None
    assert (row["valid_to"], row["end_kind"], row["end_reason"]) == (day(4), "revoked", "调整为其他网格")


def test_the_lead_unit_of_a_place_is_found_up_the_place_tree(world: World) -> None:
    """A grid without a lead answers with its street's lead; its own lead wins once it has one."""
    world.assign("street", "urban", start=day(0))
    world.system.projector.catch_up()
    with connect(world.system) as conn:
        assert lead_unit_for_place(conn, world.ids["grid"]) == world.ids["urban"]
        assert lead_unit_for_place(conn, world.ids["grid"], as_of=day(-1)) is None
    world.assign("grid", "env", start=day(1))
    world.system.projector.catch_up()
    with connect(world.system) as conn:
        assert lead_unit_for_place(conn, world.ids["grid"]) == world.ids["env"]
        assert lead_unit_for_place(conn, world.ids["community"]) == world.ids["urban"]


def test_a_rejected_assignment_writes_nothing(world: World) -> None:
    """Duplicate, backdated, foreign-campaign and unknown-party assignments are refused and the log head stays."""
    world.assign("street", "urban", start=day(5))
    head = log_head(world.system)
    world.ids["stranger"] = uuid4()
    attempts: list[tuple[str, dict[str, Any]]] = [("already_assigned", dict(party="urban")), ("lead_backdated", dict(party="env", start=day(4))),
                ("party_not_found", dict(party="stranger")), ("party_not_found", dict(party="grid"))]
    for code, kwargs in attempts:
        with pytest.raises(DomainError) as err:
            world.assign("street", **kwargs)
        assert err.value.code == code
    assert log_head(world.system) == head


def test_a_party_of_another_campaign_is_refused(world: World, system: System) -> None:
    """A unit registered in another campaign cannot be assigned here (422 cross_campaign_reference)."""
    other, unit = uuid4(), uuid4()
    world.send(StartCampaign(command_id=str(uuid4()), campaign_id=other, name="另一活动", jurisdiction="别处",
                             launched_on=date(2021, 1, 1)))
    world.send(RegisterUnit(command_id=str(uuid4()), unit_id=unit, campaign_id=other, name="外地总部", unit_kind="hq"))
    world.ids["foreign"] = unit
    head = log_head(system)
    with pytest.raises(DomainError) as err:
        world.assign("street", "foreign")
    assert err.value.code == "cross_campaign_reference" and log_head(system) == head


def build_history(world: World) -> None:
    world.assign("street", "urban", start=day(0))
    world.assign("street", "env", start=day(10))
    co = world.assign("grid", "urban", role="co", start=day(1))
    world.assign("grid", "wang", role="bao_bao", party_kind="person")
    world.revoke("grid", co, end=day(6))
    world.assign("task", "env", scope_kind="task")


def test_a_rebuild_reproduces_the_incrementally_built_tables(world: World) -> None:
    """Catching up event by event and rebuilding from zero give identical matrix rows."""
    build_history(world)
    world.system.projector.catch_up()
    before = snapshot(world.system)
    assert len(before["matrix_assignments"]) == 5
    world.system.projector.rebuild(matrix_projection(world.system))
    assert snapshot(world.system) == before


def test_small_batches_give_the_same_tables(world: World) -> None:
    """Projecting one or two events per batch gives the same rows as one big batch."""
    build_history(world)
    world.system.projector.catch_up()
    expected = snapshot(world.system)
    for size in (1, 2):
        world.system.projector.batch_size = size
        world.system.projector.rebuild(matrix_projection(world.system))
        assert snapshot(world.system) == expected
