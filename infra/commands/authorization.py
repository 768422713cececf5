"""Authorization (授权) of every command, once, in the generic path: role, campaign, references, scope.

The command service calls `ensure_role_allowed` and then `authorize` for every command, whichever
edge it came through (HTTP, the CLI, the escalator), so a new command is checked by construction:

1. Role: a read-only role is refused everything (403 `read_only_role`); otherwise the handler's
   roles (`domain.kernel.roles` groups) must include the actor's (403 `role_not_allowed`).
2. Campaign: the campaign of a command is the campaign of the entity it acts on (its target
   aggregate); for a command creating a new entity, the campaign named in the body, which must
   exist (404); failing both, the campaign of what it references. A token bound to a campaign
   may act only there (403 `campaign_not_allowed`); admin and process grants bound to none may
   act anywhere. A body naming another campaign than the target's is a cross-campaign reference.
3. References: every entity the command names (`Handler.refs`: units, persons, places, problems,
   notices, bulletins, cases, steps, work items …) must exist (404 `<kind>_not_found`) and belong
   to the command's campaign — else 422 `cross_campaign_reference`, a broken rule about the input
   (the token may well act in both campaigns; it is the command that mixes them).
4. Scope (DESIGN §9): a token may be narrowed to units and/or places; a unit officer or unit head
   acts for the units they belong to (within the token's units), and the domain rules hold them
   to their unit's work (交办给本单位的问题, 发给本单位的通知); a leader (挂钩领导) acts only at
   their linked places and the places inside them; a supervisor adds to or closes only their
   group's visits (督导组: the units of the visit's recorder and participants). Out of scope: 403
   `out_of_scope`. The same scope filters the read routes (`ReadScope`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.kernel.base import Actor, Command, DomainError, Forbidden, NotFound, evolvers
from domain.kernel.roles import UNIT_ROLES, ensure_may_write, ensure_role
from domain.liaison.links import LeaderRecord, liaison_id_for
from domain.structure.person import Person
from domain.structure.place import Place
from domain.visit import Visit
from infra.calendars import official_calendar
from infra.commands import Handler, Reader, actor_unit_ids
from infra.commands.escalation import ITEM_ADAPTERS, open_item
from infra.commands.grants import Grant
from infra.commands.references import Ref, references
from projections.liaison_duties import link_places

KIND_NAMES_ZH = {
    "campaign": "创建活动", "unit": "单位", "place": "点位", "person": "人员", "indicator": "测评指标", "task": "任务",
    "problem": "问题", "visit": "督导记录", "notice": "通知", "bulletin": "通报", "summons": "约谈",
    "accountability_case": "问责案件", "escalation": "督办步骤", "liaison": "挂钩领导", "liaison_duty": "挂钩联系履职",
    "extension_request": "延期申请",
}
MAX_DEPTH = 256  # far deeper than any real place tree; only guards an ancestor walk against corrupt history


def campaign_of(state: object) -> UUID | None:
    value = getattr(state, "campaign_id", None)
    return value if isinstance(value, UUID) else None


def ensure_role_allowed(handler: Handler[Any], actor: Actor) -> None:
    """403 before anything is read: a read-only role never writes; the handler's roles must include the actor's."""
    ensure_may_write(actor)
    if handler.roles is not None:
        ensure_role(actor, handler.roles)


def authorize(handler: Handler[Any], command: Command, grant: Grant, reader: Reader, now: datetime) -> UUID | None:
    """The command's campaign, after checking the grant may act there and every reference and place is in bounds."""
    target = reader.get(handler.kind, handler.target(command), object) if handler.kind != "campaign" else None
    named = handler.campaign(command)
    campaign = (handler.target(command) if handler.kind == "campaign" else campaign_of(target)) or named
    ensure_campaign_allowed(grant, campaign)  # before anything else is read, when the campaign is known already
    refs = [(ref, entity(reader, ref)) for ref in references(command, handler.refs)]
    if campaign is None:
        campaign = next((campaign_of(state) for _, state in refs if state is not None), None)
        ensure_campaign_allowed(grant, campaign)
    if named is not None and named != campaign:
        raise cross_campaign("campaign_id", campaign, named)
    if target is None and named is not None and handler.kind != "campaign" and reader.get("campaign", named, object) is None:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(named))
    for ref, state in refs:
        ensure_reference(ref, state, campaign)
    ensure_in_scope(grant, reader, target, [ref for ref, _ in refs], now, command.occurred_at or now)
    return campaign


def ensure_campaign_allowed(grant: Grant, campaign_id: UUID | None) -> None:
    """403 `campaign_not_allowed` when a campaign-bound grant reaches into another campaign."""
    if campaign_id is not None and not grant.may_see(campaign_id):
        raise Forbidden("campaign_not_allowed", "该令牌无权操作其他创建活动", "this token may not act in another campaign",
                        token_campaign_id=str(grant.campaign_id), campaign_id=str(campaign_id))


def cross_campaign(path: str, campaign_id: UUID | None, found: UUID | None) -> DomainError:
    return DomainError("cross_campaign_reference", "引用了其他创建活动的对象", "the command references another campaign's entity",
                       field=path, campaign_id=str(campaign_id) if campaign_id else None,
                       referenced_campaign_id=str(found) if found else None)


def ensure_reference(ref: Ref, state: object | None, campaign_id: UUID | None) -> None:
    if state is None:
        zh = KIND_NAMES_ZH.get(ref.kind, ref.kind)
        raise NotFound(ref.not_found_code, f"{zh}不存在", f"{ref.kind} not found", field=ref.path, id=str(ref.id))
    if campaign_id is not None and campaign_of(state) != campaign_id:
        raise cross_campaign(ref.path, campaign_id, campaign_of(state))


def entity(reader: Reader, ref: Ref) -> object | None:
    """The referenced entity: an aggregate's state, or (for work-item kinds that are not aggregates, such as an
    extension request) the work item; 422 `unknown_reference_kind` for a kind that names neither."""
    if ref.kind in evolvers():
        return reader.get(ref.kind, ref.id, object)
    if ref.kind in ITEM_ADAPTERS:
        view = open_item(reader, ref.kind, ref.id, official_calendar())
        return view.item if view is not None else None
    raise DomainError("unknown_reference_kind", "引用的对象类型不存在", "no such kind of entity", field=ref.path,
                      kind=ref.kind)


# --- scope ----------------------------------------------------------------------------------------


def linked_place_ids(reader: Reader, person_id: UUID | None, *instants: datetime) -> frozenset[UUID]:
    """A leader's linked places (挂钩联系点) in force at any of `instants`: the places they are linked to, and the
    places a unit they are linked to leads (as the liaison read model finds them, the same places where their
    visits count). The places inside these count through `within`."""
    record = reader.get("liaison", liaison_id_for(person_id), LeaderRecord) if person_id is not None else None
    if record is None:
        return frozenset()
    links = [link for link in record.links
             if any(link.valid_from <= t and (link.valid_to is None or t < link.valid_to) for t in instants)]
    places = {link.target_id for link in links if link.target_kind == "place"}
    if unit_links := [link for link in links if link.target_kind == "unit"]:
        places |= {p for found in reader.query(link_places, unit_links).values() for p in found.exact}
    return frozenset(places)


def place_roots(grant: Grant, reader: Reader, *instants: datetime) -> frozenset[UUID] | None:
    """The places the grant is confined to (with everything inside them), or None when not confined by place."""
    if grant.place_ids is not None:
        return grant.place_ids
    if grant.actor.role == "leader":
        return linked_place_ids(reader, grant.actor.person_id, *instants)
    return None


def within(reader: Reader, place_id: UUID, roots: frozenset[UUID]) -> bool:
    """The place is one of `roots` or lies inside one (walks its ancestors on the write side's own aggregates)."""
    node: UUID | None = place_id
    for _ in range(MAX_DEPTH):
        if node is None:
            return False
        if node in roots:
            return True
        place = reader.get("place", node, Place)
        node = place.parent_id if place is not None else None
    return False


def ensure_in_scope(grant: Grant, reader: Reader, target: object | None, refs: Iterable[Ref], now: datetime,
                    occurred_at: datetime) -> None:
    """403 `out_of_scope` when a place the command touches lies outside the grant's places, or a supervisor acts on
    a visit of another group."""
    roots = place_roots(grant, reader, now, occurred_at)
    if roots is not None:
        touched = {r.id for r in refs if r.kind == "place"} | {p for p in [getattr(target, "place_id", None)] if p}
        if outside := sorted(str(p) for p in touched if not within(reader, p, roots)):
            raise Forbidden("out_of_scope", "超出本令牌的点位范围", "outside the places this token may act on",
                            place_ids=outside)
    if grant.actor.role == "supervisor" and isinstance(target, Visit) and not is_group_visit(reader, target):
        raise Forbidden("out_of_scope", "只能办理本督导组的督导记录", "a supervisor acts only on their group's visits",
                        visit_id=str(target.visit_id))


def is_group_visit(reader: Reader, visit: Visit) -> bool:
    """督导组: the actor recorded the visit or took part, or shares a unit with whoever did."""
    me = reader.actor.person_id if reader.actor is not None else None
    people = {p for p in (visit.logged_by, *visit.participants) if p is not None}
    if me is not None and me in people:
        return True
    mine = actor_unit_ids(reader)
    return any(mine & set(person.memberships) for p in people
               if (person := reader.get("person", p, Person)) is not None)


@dataclass(frozen=True)
class ReadScope:
    """What a grant may read inside its campaign: rows of these units and places only (None: not restricted)."""

    unit_ids: frozenset[UUID] | None = None
    place_ids: frozenset[UUID] | None = None  # the roots; `places_inside` expands them on the read models

    def restricted(self) -> bool:
        return self.unit_ids is not None or self.place_ids is not None


def read_scope(grant: Grant, reader: Reader, now: datetime) -> ReadScope:
    """Unit roles read their units' work; leaders their linked places; a token's own unit/place scope narrows any role."""
    units = actor_unit_ids(reader) if grant.actor.role in UNIT_ROLES else grant.unit_ids
    return ReadScope(unit_ids=units, place_ids=place_roots(grant, reader, now))


def places_inside(conn: Any, roots: Iterable[UUID]) -> frozenset[UUID]:
    """The roots and every place nested under them (structure read model)."""
    rows = conn.execute(
        "WITH RECURSIVE inside(place_id) AS (SELECT unnest(%s::uuid[])"
        " UNION SELECT p.place_id FROM structure_places p JOIN inside i ON p.parent_id = i.place_id)"
        " SELECT place_id FROM inside", (list(roots),)).fetchall()
    return frozenset(r["place_id"] if isinstance(r, dict) else r[0] for r in rows)
