"""Test kit for liaison duties (挂钩联系): the escalation world plus a street with a grid inside, two roads, three
leaders (one with a liaison officer), their links, and helpers to log a leader's visit and run the escalator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from domain import liaison as li
from domain import visit as vi
from domain.kernel.base import Actor
from domain.structure.person import RegisterPerson
from domain.structure.place import RegisterPlace
from infra.bootstrap import System
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from tests.support.escalation_kit import at, escalation_world
from tests.support.problem_world import ADMIN, World

LINKED_FROM = at("2021-12-01", "00:00")


def liaison_world(system: System) -> World:
    """李 (副市长, 政府, 联络员 li_officer) linked to the street and road 1; 王 (人大) to road 2; 周 (政协) to road 1.

    Places: street (街道) with grid9 (网格) inside it, road1 and road2 at the top level.
    """
    w = escalation_world(system)
    for name, kind, parent in (("street", "street", None), ("grid9", "grid", "street"), ("road1", "road", None),
                               ("road2", "road", None)):
        w.send(ADMIN, RegisterPlace, place_id=w[name], campaign_id=w.campaign_id, name=name, place_kind=kind,
               parent_id=w[parent] if parent else None, number=9 if kind == "grid" else None)
    for name in ("li_officer", "wang", "zhou", "nobody"):
        w.send(ADMIN, RegisterPerson, person_id=w[name], campaign_id=w.campaign_id, name=name)
        w.actors[name] = Actor(person_id=w[name], role="leader", name=name)
    designate(w, "li", "government", "副市长", officer="li_officer")
    designate(w, "wang", "people_congress", "人大常委会副主任")
    designate(w, "zhou", "cppcc", "政协副主席")
    for leader, place in (("li", "street"), ("li", "road1"), ("wang", "road2"), ("zhou", "road1")):
        link(w, leader, place)
    w.catch_up()
    return w


def designate(w: World, leader: str, body: str, rank: str, officer: str | None = None) -> None:
    w.send("hq", li.DesignateLeader, person_id=w[leader], campaign_id=w.campaign_id, body=body, rank=rank,
           liaison_officer_id=w[officer] if officer else None, reason="市委常委会确定挂钩联系分工")


def link(w: World, leader: str, place: str, start: datetime = LINKED_FROM) -> UUID:
    link_id = w[f"link:{leader}:{place}"]
    w.send("hq", li.LinkLiaison, link_id=link_id, person_id=w[leader], campaign_id=w.campaign_id,
           target_id=w[place], valid_from=start, reason="创建动员大会确定挂钩联系点")
    return link_id


def log_visit(w: World, leader: str, place: str, occurred: datetime, visit_id: UUID | None = None,
              others: tuple[str, ...] = ()) -> UUID:
    """The leader logs a visit at `place` that occurred at `occurred` (recorded now, on the world's clock)."""
    visit_id = visit_id or uuid4()
    w.send(leader, vi.LogVisit, occurred_at=occurred, visit_id=visit_id, campaign_id=w.campaign_id,
           place_id=w[place], participants=(w[leader], *(w[o] for o in others)))
    return visit_id


def run_every(escalator: Escalator, clock: SimulatedClock, until: datetime, hours: int = 3,
              actions: dict[datetime, Callable[[], object]] | None = None) -> None:
    """Move the clock `hours` at a time to `until`; at each step do the actions due by then, then tick."""
    actions = dict(actions or {})
    while True:
        for when in sorted(t for t in actions if t <= clock()):
            clock.set(max(clock(), when))
            actions.pop(when)()
        escalator.tick()
        if clock() + timedelta(hours=hours) > until:
            return
        clock.advance(timedelta(hours=hours))
