"""Read scope over HTTP (查询范围): what a token may see inside the campaign it may read.

The same rule as for writes (`infra.commands.authorization`, DESIGN §9): a unit officer or unit
head sees their units' work only — problems handed to their units, notices addressed to them or
to themselves; a leader (挂钩领导) sees the problems and escalations at their linked places and
the places inside them; a supervisor sees their group's visits (督导组: recorded by or with a member of one of
their units); a token's own unit or place scope narrows any role. Lists leave out what
is outside; a single problem or notice outside answers 403 `out_of_scope` (the id alone is no secret:
ids are random, and saying "not yours" helps the caller more than a 404 that hides nothing).
Structure, the matrix, bulletins and grid totals are campaign-wide and stay visible to all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import Request

from domain.kernel.base import Forbidden
from infra.commands import actor_unit_ids
from infra.commands.authorization import ReadScope, places_inside, read_scope
from infra.commands.grants import Grant
from infra.commands.service import StoreReader


def _ids(values: Iterable[UUID] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(str(v) for v in values)


def _get(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, Mapping) else getattr(item, name)


@dataclass(frozen=True)
class Visible:
    """A grant's read scope, its places expanded to everything inside them (None: not restricted); ids compared
    as text, so rows read from the projections and states folded from events are judged alike."""

    person_id: str | None
    unit_ids: frozenset[str] | None
    place_ids: frozenset[str] | None
    group: frozenset[str] | None = None  # a supervisor's group: the people of their units, themself included

    @property
    def restricted(self) -> bool:
        return self.unit_ids is not None or self.place_ids is not None or self.group is not None

    def problem(self, unit_id: Any, place_id: Any) -> bool:
        """A problem (or any work at a place, handed to a unit) is visible."""
        return ((self.unit_ids is None or str(unit_id) in self.unit_ids)
                and (self.place_ids is None or str(place_id) in self.place_ids))

    def rows(self, rows: list[Any]) -> list[Any]:
        """The rows (each with `unit_id` and `place_id`) this scope may see."""
        return rows if not self.restricted else [r for r in rows if self.problem(r.get("unit_id"), r.get("place_id"))]

    def visit(self, logged_by: Any, participants: Iterable[Any]) -> bool:
        """A visit is visible to a supervisor when someone of their group recorded it or took part."""
        return self.group is None or any(str(p) in self.group for p in (logged_by, *participants) if p is not None)

    def notice(self, recipients: Iterable[Any]) -> bool:
        """A notice is visible to a unit role when addressed to one of its units or to the person themself."""
        if self.unit_ids is None:
            return True
        return any((_get(r, "party_kind") == "unit" and str(_get(r, "party_id")) in self.unit_ids)
                   or (_get(r, "party_kind") == "person" and str(_get(r, "party_id")) == self.person_id)
                   for r in recipients)


def visible(request: Request, grant: Grant) -> Visible:
    """The grant's read scope now (memberships and links as the store has them; places from the structure)."""
    reader = StoreReader(request.app.state.system.app, grant.actor)
    reader.grant = grant
    scope: ReadScope = read_scope(grant, reader, request.app.state.system.clock())
    places = None
    if scope.place_ids is not None:
        with request.app.state.read_pool.connection() as conn:
            places = places_inside(conn, scope.place_ids)
    me = grant.actor.person_id
    group = None
    if grant.actor.role == "supervisor":
        with request.app.state.read_pool.connection() as conn:
            group = group_of(conn, me, actor_unit_ids(reader))
    return Visible(str(me) if me else None, _ids(scope.unit_ids), _ids(places), group)


def group_of(conn: Any, person_id: UUID | None, unit_ids: frozenset[UUID]) -> frozenset[str]:
    """The person and everyone who belongs to one of their units (structure read model)."""
    rows = conn.execute("SELECT DISTINCT person_id FROM structure_memberships WHERE unit_id = ANY(%s)",
                        (list(unit_ids),)).fetchall()
    found = {str(r["person_id"] if isinstance(r, dict) else r[0]) for r in rows}
    return frozenset(found | ({str(person_id)} if person_id else set()))


def out_of_scope(kind: str, entity_id: UUID) -> Forbidden:
    return Forbidden("out_of_scope", "无权查看本单位或挂钩点位以外的事项", "outside what this token may see",
                     kind=kind, id=str(entity_id))


def ensure_problem_visible(request: Request, grant: Grant, problem: Any) -> None:
    """403 `out_of_scope` for a problem handed to another unit, or at a place outside the grant's places."""
    if not visible(request, grant).problem(problem.unit_id, problem.place_id):
        raise out_of_scope("problem", problem.problem_id)


def ensure_notice_visible(request: Request, grant: Grant, notice: Any) -> None:
    """403 `out_of_scope` for a notice addressed neither to the unit role's units nor to the person."""
    if not visible(request, grant).notice(notice.recipients):
        raise out_of_scope("notice", notice.notice_id)
