"""The command structure (指挥体系) rules: given events, when a command, then events or a typed error.

Commands run through their registered handler (gather + decide) against an in-memory world, so the
ancestor walk that the cycle rule depends on is exercised too; nothing here does I/O.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timezone
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from domain.kernel.base import Actor, Command, CommandContext, DomainError, DomainEvent, Meta, fold
from domain.structure.campaign import CampaignStarted
from domain.structure.person import JoinUnit, LeaveUnit, PersonJoinedUnit, PersonLeftUnit, PersonRegistered, PersonRenamed
from domain.structure.person import Person, PersonRetired, RegisterPerson, RenamePerson, RetirePerson
from domain.structure.place import MovePlace, PlaceMoved, PlaceRegistered, PlaceRenamed, PlaceRetired, RegisterPlace, RenamePlace
from domain.structure.place import Place, PlaceKind, RetirePlace
from domain.structure.unit import MoveUnit, RegisterUnit, RenameUnit, RetireUnit, UnitMoved, UnitRegistered, UnitRenamed
from domain.structure.unit import Unit, UnitKind, UnitRetired
from infra.commands import HANDLERS, Reader
from infra.commands.structure import lineage

pytestmark = pytest.mark.unit

S = TypeVar("S")
NOW = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)
META = Meta(actor=Actor(role="hq_office"), occurred_at=NOW, recorded_at=NOW, correlation_id=uuid4(), command_id="c0")


class World(Reader):
    """Event streams in memory; `when` runs a command through its handler like the service does."""

    def __init__(self) -> None:
        self.streams: dict[UUID, list[DomainEvent]] = defaultdict(list)

    def given(self, *events: DomainEvent) -> World:
        for e in events:
            self.streams[e.aggregate_id].append(e)
        return self

    def get(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:
        stream = self.streams.get(aggregate_id)
        return fold(kind, stream, state_type) if stream else None

    def state(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S:
        """The folded state of an aggregate the test knows exists."""
        return fold(kind, self.streams[aggregate_id], state_type)

    def when(self, cmd: Command) -> list[DomainEvent]:
        h = HANDLERS[type(cmd)]
        ctx = CommandContext(meta=META.model_copy(update={"campaign_id": h.campaign(cmd), "command_id": cmd.command_id}))
        state = self.get(h.kind, h.target(cmd), object)
        if h.gather is None:
            return h.decide(state, cmd, ctx)
        return h.decide(state, cmd, ctx, h.gather(cmd, self))

    def then(self, cmd: Command) -> list[DomainEvent]:
        """Run the command and record its events."""
        events = self.when(cmd)
        self.given(*events)
        return events

    def rejects(self, cmd: Command, code: str, status: int) -> None:
        with pytest.raises(DomainError) as err:
            self.when(cmd)
        assert (err.value.code, err.value.status) == (code, status)


def cid() -> str:
    return str(uuid4())


def campaign(campaign_id: UUID) -> CampaignStarted:
    return CampaignStarted(meta=META, campaign_id=campaign_id, name="高安市“三城同创”", jurisdiction="高安市",
                           launched_on=date(2021, 12, 3))


def unit(campaign_id: UUID, kind: UnitKind = "hq", parent: UUID | None = None, name: str = "总指挥部") -> UnitRegistered:
    return UnitRegistered(meta=META, unit_id=uuid4(), campaign_id=campaign_id, name=name, unit_kind=kind, parent_id=parent)


def place(campaign_id: UUID, kind: PlaceKind = "grid", parent: UUID | None = None, name: str = "第1网格") -> PlaceRegistered:
    return PlaceRegistered(meta=META, place_id=uuid4(), campaign_id=campaign_id, name=name, place_kind=kind,
                           parent_id=parent)


def person(campaign_id: UUID, name: str = "张三") -> PersonRegistered:
    return PersonRegistered(meta=META, person_id=uuid4(), campaign_id=campaign_id, name=name, title="副主任")


@pytest.fixture
def c1() -> UUID:
    return uuid4()


@pytest.fixture
def world(c1: UUID) -> World:
    return World().given(campaign(c1))


# Units -------------------------------------------------------------------------------------------


def test_an_hq_unit_registers_at_the_top_of_an_existing_campaign(world: World, c1: UUID) -> None:
    """Registering the HQ emits UnitRegistered carrying the campaign in its envelope."""
    uid = uuid4()
    (event,) = world.when(RegisterUnit(command_id=cid(), unit_id=uid, campaign_id=c1, name="总指挥部", unit_kind="hq"))
    assert isinstance(event, UnitRegistered) and event.unit_id == uid and event.parent_id is None
    assert event.meta.campaign_id == c1


def test_a_unit_under_its_parent_folds_into_state_with_its_name_history(world: World, c1: UUID) -> None:
    """A sub-command under the HQ folds into a Unit with names = (name,) and retired False."""
    hq = unit(c1)
    world.given(hq)
    uid = uuid4()
    world.then(RegisterUnit(command_id=cid(), unit_id=uid, campaign_id=c1, name="第一分指挥部",
                            unit_kind="sub_command", parent_id=hq.unit_id, invented=True))
    state = world.state("unit", uid, Unit)
    assert (state.parent_id, state.names, state.retired, state.invented) == (hq.unit_id, ("第一分指挥部",), False, True)


def test_a_unit_in_an_unknown_campaign_is_not_found(world: World) -> None:
    """The campaign must exist: 404 campaign_not_found."""
    world.rejects(RegisterUnit(command_id=cid(), unit_id=uuid4(), campaign_id=uuid4(), name="总指挥部", unit_kind="hq"),
                  "campaign_not_found", 404)


def test_registering_an_existing_unit_id_is_a_conflict(world: World, c1: UUID) -> None:
    """An id that already exists cannot be registered again: 409 already_exists."""
    hq = unit(c1)
    world.given(hq)
    world.rejects(RegisterUnit(command_id=cid(), unit_id=hq.unit_id, campaign_id=c1, name="另一个", unit_kind="hq"),
                  "already_exists", 409)


def test_a_unit_under_an_unknown_parent_is_not_found(world: World, c1: UUID) -> None:
    """The parent must exist: 404 parent_not_found."""
    world.rejects(RegisterUnit(command_id=cid(), unit_id=uuid4(), campaign_id=c1, name="办公室", unit_kind="office",
                               parent_id=uuid4()), "parent_not_found", 404)


def test_a_unit_under_a_parent_of_another_campaign_is_rejected(world: World, c1: UUID) -> None:
    """A parent from another campaign: 422 wrong_campaign."""
    c2 = uuid4()
    other_hq = unit(c2)
    world.given(campaign(c2), other_hq)
    world.rejects(RegisterUnit(command_id=cid(), unit_id=uuid4(), campaign_id=c1, name="办公室", unit_kind="office",
                               parent_id=other_hq.unit_id), "wrong_campaign", 422)


def test_a_unit_under_a_retired_parent_is_rejected(world: World, c1: UUID) -> None:
    """A retired parent takes no children: 422 parent_retired."""
    hq = unit(c1)
    world.given(hq, UnitRetired(meta=META, unit_id=hq.unit_id, reason="机构改革"))
    world.rejects(RegisterUnit(command_id=cid(), unit_id=uuid4(), campaign_id=c1, name="办公室", unit_kind="office",
                               parent_id=hq.unit_id), "parent_retired", 422)


def test_the_hq_has_no_parent_and_every_other_unit_needs_one(world: World, c1: UUID) -> None:
    """HQ with a parent is parent_not_allowed; a department without one is parent_required."""
    hq = unit(c1)
    world.given(hq)
    world.rejects(RegisterUnit(command_id=cid(), unit_id=uuid4(), campaign_id=c1, name="总指挥部二", unit_kind="hq",
                               parent_id=hq.unit_id), "parent_not_allowed", 422)
    world.rejects(RegisterUnit(command_id=cid(), unit_id=uuid4(), campaign_id=c1, name="市城管局",
                               unit_kind="department"), "parent_required", 422)


def test_a_rename_keeps_the_old_name_in_the_event_and_in_history(world: World, c1: UUID) -> None:
    """UnitRenamed carries previous_name and the state's names list both names in order."""
    hq = unit(c1, name="创建指挥部")
    world.given(hq)
    (event,) = world.then(RenameUnit(command_id=cid(), unit_id=hq.unit_id, name="三城同创总指挥部"))
    assert isinstance(event, UnitRenamed) and event.previous_name == "创建指挥部"
    assert world.state("unit", hq.unit_id, Unit).names == ("创建指挥部", "三城同创总指挥部")


def test_renaming_to_the_same_name_changes_nothing(world: World, c1: UUID) -> None:
    """A rename to the current name decides no event."""
    hq = unit(c1)
    world.given(hq)
    assert world.when(RenameUnit(command_id=cid(), unit_id=hq.unit_id, name=hq.name)) == []


def test_a_move_records_the_previous_parent(world: World, c1: UUID) -> None:
    """Moving a group from one sub-command to another emits UnitMoved with both parents."""
    hq = unit(c1)
    a, b = unit(c1, "sub_command", hq.unit_id, "甲"), unit(c1, "sub_command", hq.unit_id, "乙")
    g = unit(c1, "group", a.unit_id, "督导组")
    world.given(hq, a, b, g)
    (event,) = world.then(MoveUnit(command_id=cid(), unit_id=g.unit_id, parent_id=b.unit_id))
    assert isinstance(event, UnitMoved) and (event.parent_id, event.previous_parent_id) == (b.unit_id, a.unit_id)
    assert world.state("unit", g.unit_id, Unit).parent_id == b.unit_id


def test_moving_a_unit_under_its_own_descendant_is_a_cycle(world: World, c1: UUID) -> None:
    """A unit cannot move under its grandchild, nor under itself: 422 cycle."""
    hq = unit(c1)
    a = unit(c1, "sub_command", hq.unit_id, "甲")
    b = unit(c1, "department", a.unit_id, "乙")
    c = unit(c1, "department", b.unit_id, "丙")
    world.given(hq, a, b, c)
    world.rejects(MoveUnit(command_id=cid(), unit_id=a.unit_id, parent_id=c.unit_id), "cycle", 422)
    world.rejects(MoveUnit(command_id=cid(), unit_id=a.unit_id, parent_id=a.unit_id), "cycle", 422)


def test_moving_a_unit_under_a_parent_of_another_campaign_is_rejected(world: World, c1: UUID) -> None:
    """The new parent must be in the unit's campaign: 422 wrong_campaign."""
    c2 = uuid4()
    hq, other_hq = unit(c1), unit(c2)
    d = unit(c1, "department", hq.unit_id, "市城管局")
    world.given(campaign(c2), hq, other_hq, d)
    world.rejects(MoveUnit(command_id=cid(), unit_id=d.unit_id, parent_id=other_hq.unit_id), "wrong_campaign", 422)


def test_moving_a_non_hq_unit_to_the_top_is_rejected(world: World, c1: UUID) -> None:
    """A department cannot lose its parent: 422 parent_required."""
    hq = unit(c1)
    d = unit(c1, "department", hq.unit_id, "市城管局")
    world.given(hq, d)
    world.rejects(MoveUnit(command_id=cid(), unit_id=d.unit_id, parent_id=None), "parent_required", 422)


def test_a_retired_unit_accepts_no_rename_or_move_and_retiring_again_is_a_no_op(world: World, c1: UUID) -> None:
    """After UnitRetired, rename and move are 422 retired; a second retirement decides nothing."""
    hq = unit(c1)
    d = unit(c1, "department", hq.unit_id, "市城管局")
    world.given(hq, d)
    world.then(RetireUnit(command_id=cid(), unit_id=d.unit_id, reason="机构改革"))
    assert world.state("unit", d.unit_id, Unit).retired
    world.rejects(RenameUnit(command_id=cid(), unit_id=d.unit_id, name="新名"), "retired", 422)
    world.rejects(MoveUnit(command_id=cid(), unit_id=d.unit_id, parent_id=hq.unit_id), "retired", 422)
    assert world.when(RetireUnit(command_id=cid(), unit_id=d.unit_id, reason="再次")) == []


@pytest.mark.parametrize("make", [
    lambda u: RenameUnit(command_id=cid(), unit_id=u, name="x"),
    lambda u: MoveUnit(command_id=cid(), unit_id=u, parent_id=None),
    lambda u: RetireUnit(command_id=cid(), unit_id=u, reason="x"),
])
def test_changing_an_unknown_unit_is_not_found(world: World, make: Any) -> None:
    """Rename, move and retire of an unknown unit: 404 unit_not_found."""
    world.rejects(make(uuid4()), "unit_not_found", 404)


# Places ------------------------------------------------------------------------------------------


def test_places_stand_at_the_top_or_nest_and_keep_their_grid_number(world: World, c1: UUID) -> None:
    """A street at the top level and a numbered grid within it both register."""
    street, grid = uuid4(), uuid4()
    world.then(RegisterPlace(command_id=cid(), place_id=street, campaign_id=c1, name="瑞州街道", place_kind="street"))
    world.then(RegisterPlace(command_id=cid(), place_id=grid, campaign_id=c1, name="第7网格", place_kind="grid",
                             parent_id=street, number=7))
    state = world.state("place", grid, Place)
    assert (state.parent_id, state.number, state.names) == (street, 7, ("第7网格",))


@pytest.mark.parametrize("setup, code, status", [
    ("no_campaign", "campaign_not_found", 404),
    ("no_parent", "parent_not_found", 404),
    ("other_campaign", "wrong_campaign", 422),
    ("retired_parent", "parent_retired", 422),
    ("existing_id", "already_exists", 409),
])
def test_a_place_registration_breaking_a_rule_is_rejected(world: World, c1: UUID, setup: str, code: str,
                                                          status: int) -> None:
    """Registering a place checks campaign, parent existence, campaign and activity, and id uniqueness."""
    c2 = uuid4()
    mine, theirs, gone = place(c1, "street", name="甲街道"), place(c2, "street", name="乙街道"), place(c1, "street")
    world.given(campaign(c2), mine, theirs, gone, PlaceRetired(meta=META, place_id=gone.place_id, reason="合并"))
    parent = {"no_parent": uuid4(), "other_campaign": theirs.place_id, "retired_parent": gone.place_id}.get(setup)
    world.rejects(RegisterPlace(
        command_id=cid(), place_id=mine.place_id if setup == "existing_id" else uuid4(),
        campaign_id=uuid4() if setup == "no_campaign" else c1, name="某小区", place_kind="compound", parent_id=parent,
    ), code, status)


def test_moving_a_place_into_its_own_subtree_is_a_cycle(world: World, c1: UUID) -> None:
    """A street cannot move into the road that lies within it: 422 cycle."""
    street = place(c1, "street", name="筠阳街道")
    road = place(c1, "road", street.place_id, "高安大道")
    world.given(street, road)
    world.rejects(MovePlace(command_id=cid(), place_id=street.place_id, parent_id=road.place_id), "cycle", 422)


def test_a_place_can_move_to_the_top_level_and_back(world: World, c1: UUID) -> None:
    """Places may have no parent: moving out and back in records both parents."""
    street = place(c1, "street", name="筠阳街道")
    market = place(c1, "market", street.place_id, "农贸市场")
    world.given(street, market)
    (out,) = world.then(MovePlace(command_id=cid(), place_id=market.place_id, parent_id=None))
    (back,) = world.then(MovePlace(command_id=cid(), place_id=market.place_id, parent_id=street.place_id))
    assert isinstance(out, PlaceMoved) and (out.parent_id, out.previous_parent_id) == (None, street.place_id)
    assert isinstance(back, PlaceMoved) and (back.parent_id, back.previous_parent_id) == (street.place_id, None)


def test_a_place_rename_keeps_history_and_a_retired_place_accepts_no_change(world: World, c1: UUID) -> None:
    """PlaceRenamed carries the old name; after retirement rename and move are 422 retired."""
    alley = place(c1, "alley", name="后街")
    world.given(alley)
    (event,) = world.then(RenamePlace(command_id=cid(), place_id=alley.place_id, name="文明后街"))
    assert isinstance(event, PlaceRenamed) and event.previous_name == "后街"
    assert world.state("place", alley.place_id, Place).names == ("后街", "文明后街")
    world.then(RetirePlace(command_id=cid(), place_id=alley.place_id, reason="拆迁"))
    world.rejects(RenamePlace(command_id=cid(), place_id=alley.place_id, name="x"), "retired", 422)
    world.rejects(MovePlace(command_id=cid(), place_id=alley.place_id, parent_id=None), "retired", 422)


def test_a_unit_id_given_as_a_place_parent_is_a_kind_mismatch(world: World, c1: UUID) -> None:
    """A parent id that names a unit, not a place, is a typed 409 rather than a crash."""
    hq = unit(c1)
    world.given(hq)
    world.rejects(RegisterPlace(command_id=cid(), place_id=uuid4(), campaign_id=c1, name="某点位", place_kind="site",
                                parent_id=hq.unit_id), "id_kind_mismatch", 409)


# People ------------------------------------------------------------------------------------------


def test_a_person_registers_only_in_an_existing_campaign_and_only_once(world: World, c1: UUID) -> None:
    """RegisterPerson needs the campaign (404) and a new id (409)."""
    pid = uuid4()
    (event,) = world.then(RegisterPerson(command_id=cid(), person_id=pid, campaign_id=c1, name="李四", title="主任"))
    assert isinstance(event, PersonRegistered) and event.title == "主任"
    world.rejects(RegisterPerson(command_id=cid(), person_id=pid, campaign_id=c1, name="李四"), "already_exists", 409)
    world.rejects(RegisterPerson(command_id=cid(), person_id=uuid4(), campaign_id=uuid4(), name="王五"),
                  "campaign_not_found", 404)


def test_a_person_joins_a_unit_with_roles_and_rejoining_replaces_them(world: World, c1: UUID) -> None:
    """Joining records the roles (duplicates dropped); the same roles again is a no-op; other roles replace them."""
    hq, p = unit(c1), person(c1)
    world.given(hq, p)
    (event,) = world.then(JoinUnit(command_id=cid(), person_id=p.person_id, unit_id=hq.unit_id,
                                   roles=("hq_office", "liaison", "hq_office")))
    assert isinstance(event, PersonJoinedUnit) and event.roles == ("hq_office", "liaison")
    assert world.when(JoinUnit(command_id=cid(), person_id=p.person_id, unit_id=hq.unit_id,
                               roles=("liaison", "hq_office"))) == []
    world.then(JoinUnit(command_id=cid(), person_id=p.person_id, unit_id=hq.unit_id, roles=("unit_head",)))
    assert world.state("person", p.person_id, Person).memberships == {hq.unit_id: ("unit_head",)}


@pytest.mark.parametrize("setup, code, status", [
    ("unknown_unit", "unit_not_found", 404),
    ("other_campaign", "wrong_campaign", 422),
    ("retired_unit", "unit_retired", 422),
    ("retired_person", "retired", 422),
])
def test_a_person_joins_only_an_active_unit_of_their_campaign(world: World, c1: UUID, setup: str, code: str,
                                                             status: int) -> None:
    """Joining an unknown, foreign or retired unit, or as a retired person, is rejected."""
    c2 = uuid4()
    hq, other_hq, p = unit(c1), unit(c2), person(c1)
    world.given(campaign(c2), hq, other_hq, p)
    if setup == "retired_unit":
        world.given(UnitRetired(meta=META, unit_id=hq.unit_id, reason="撤并"))
    if setup == "retired_person":
        world.given(PersonRetired(meta=META, person_id=p.person_id, reason="退休"))
    target = {"unknown_unit": uuid4(), "other_campaign": other_hq.unit_id}.get(setup, hq.unit_id)
    world.rejects(JoinUnit(command_id=cid(), person_id=p.person_id, unit_id=target, roles=("leader",)), code, status)


def test_leaving_needs_a_membership(world: World, c1: UUID) -> None:
    """Leaving a unit one is not in is 422 not_member; leaving one is in removes the membership."""
    hq, p = unit(c1), person(c1)
    world.given(hq, p, PersonJoinedUnit(meta=META, person_id=p.person_id, unit_id=hq.unit_id, roles=("leader",)))
    world.rejects(LeaveUnit(command_id=cid(), person_id=p.person_id, unit_id=uuid4(), reason="调动"), "not_member", 422)
    world.then(LeaveUnit(command_id=cid(), person_id=p.person_id, unit_id=hq.unit_id, reason="调动"))
    assert world.state("person", p.person_id, Person).memberships == {}


def test_retiring_a_person_leaves_every_unit_first_and_blocks_later_changes(world: World, c1: UUID) -> None:
    """RetirePerson emits PersonLeftUnit per membership then PersonRetired; afterwards rename is 422 retired."""
    hq, p = unit(c1), person(c1)
    office = unit(c1, "office", hq.unit_id, "办公室")
    world.given(hq, office, p,
                PersonJoinedUnit(meta=META, person_id=p.person_id, unit_id=hq.unit_id, roles=("leader",)),
                PersonJoinedUnit(meta=META, person_id=p.person_id, unit_id=office.unit_id, roles=("unit_head",)))
    events = world.then(RetirePerson(command_id=cid(), person_id=p.person_id, reason="退休"))
    assert [type(e) for e in events] == [PersonLeftUnit, PersonLeftUnit, PersonRetired]
    state = world.state("person", p.person_id, Person)
    assert state.retired and state.memberships == {}
    world.rejects(RenamePerson(command_id=cid(), person_id=p.person_id, name="x"), "retired", 422)
    assert world.when(RetirePerson(command_id=cid(), person_id=p.person_id, reason="x")) == []


def test_a_person_rename_keeps_history(world: World, c1: UUID) -> None:
    """PersonRenamed carries the previous name and the state's names keep both."""
    p = person(c1, "张三")
    world.given(p)
    (event,) = world.then(RenamePerson(command_id=cid(), person_id=p.person_id, name="张叁"))
    assert isinstance(event, PersonRenamed) and event.previous_name == "张三"
    assert world.state("person", p.person_id, Person).names == ("张三", "张叁")


@pytest.mark.parametrize("make", [
    lambda: RenamePerson(command_id=cid(), person_id=uuid4(), name="x"),
    lambda: JoinUnit(command_id=cid(), person_id=uuid4(), unit_id=uuid4()),
    lambda: LeaveUnit(command_id=cid(), person_id=uuid4(), unit_id=uuid4(), reason="x"),
    lambda: RetirePerson(command_id=cid(), person_id=uuid4(), reason="x"),
])
def test_changing_an_unknown_person_is_not_found(world: World, make: Any) -> None:
    """Rename, join, leave and retire of an unknown person: 404 person_not_found."""
    world.rejects(make(), "person_not_found", 404)


# The edge and the loader ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: RegisterUnit(command_id="k", unit_id=uuid4(), campaign_id=uuid4(), name="x" * 201, unit_kind="hq"),
    lambda: RegisterUnit(command_id="k", unit_id=uuid4(), campaign_id=uuid4(), name="   ", unit_kind="hq"),
    lambda: RegisterUnit(command_id="k", unit_id=uuid4(), campaign_id=uuid4(), name="x", unit_kind="committee"),  # type: ignore[arg-type]  # unknown on purpose
    lambda: RegisterPlace(command_id="k", place_id=uuid4(), campaign_id=uuid4(), name="x", place_kind="grid", number=0),
    lambda: RegisterPerson(command_id="k", person_id=uuid4(), campaign_id=uuid4(), name="x", title="t" * 201),
    lambda: JoinUnit(command_id="k", person_id=uuid4(), unit_id=uuid4(), roles=("emperor",)),  # type: ignore[arg-type]  # unknown on purpose
    lambda: RetireUnit(command_id="k", unit_id=uuid4(), reason=""),
])
def test_oversize_blank_or_unknown_input_is_rejected_at_the_edge(make: Any) -> None:
    """Names over 200 chars, blank names, unknown kinds or roles, bad numbers and empty reasons fail validation."""
    with pytest.raises(ValidationError):
        make()


def test_the_ancestor_walk_stops_on_a_loop_in_corrupt_history(c1: UUID) -> None:
    """Even if stored history held a loop, the lineage walk ends and lists each ancestor once."""
    a, b = unit(c1, "department", uuid4(), "甲"), unit(c1, "department", uuid4(), "乙")
    world = World().given(a, b, UnitMoved(meta=META, unit_id=a.unit_id, parent_id=b.unit_id, previous_parent_id=None),
                          UnitMoved(meta=META, unit_id=b.unit_id, parent_id=a.unit_id, previous_parent_id=None))
    assert lineage(world, "unit", Unit, a.unit_id) == (a.unit_id, b.unit_id)


def test_loading_a_person_id_as_a_unit_is_a_kind_mismatch(c1: UUID) -> None:
    """Folding another kind's history as a unit raises a typed 409 instead of returning a wrong state."""
    p = person(c1)
    with pytest.raises(DomainError) as err:
        World().given(p).state("unit", p.person_id, Unit)
    assert err.value.code == "id_kind_mismatch"
