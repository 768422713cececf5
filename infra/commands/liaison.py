"""Handlers for liaison duties (挂钩联系): designating leaders, links and handovers, exemptions, the duty policy,
and the duty work the escalator issues (reminder, unmet record, resolution) or HQ closes.

The gathers read the person, officer and target (place or unit) states, whether a new link id is
another leader's already (from the liaison read model), the campaign calendar, and — for a duty —
every fact its verdict is re-judged from: the leader's record, the policy versions, the places
where visits count and the leader's visits in the period (read models, brought up to date by the
escalator before it issues anything). An unmet duty plugs into the escalator as the work-item
kind `liaison_duty` through `item_adapter`, addressed to the HQ office; who is told at each step
names the leader (and their 联络员) as the liaison leader and as the subject of any proposal.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain import liaison as li
from domain.liaison.duty import KIND as DUTY_KIND
from domain.liaison.links import KIND as LEADER_KIND
from domain.liaison.periods import period_at
from domain.liaison.policy import KIND as POLICY_KIND
from domain.escalation.notice import Party
from domain.kernel.calendar import WorkCalendar
from domain.kernel.roles import HQ_ROLES, STEP_ROLES
from domain.structure.campaign import Campaign
from domain.structure.person import Person
from domain.structure.place import Place
from domain.structure.unit import Unit
from infra.commands import Handler, Reader, register
from infra.commands.references import NEW, OWN, KindIn, Of, Spec
from infra.commands.escalation import LATEST, ItemView, calendar_for, item_adapter, parties_for
from infra.commands.indicator import get_of_kind
from projections import liaison_duties as ld
from projections.escalation_lists import hq_unit, place_name

_STATES: dict[str, type[Any]] = {"person": Person, "place": Place, "unit": Unit}


def subject(reader: Reader, kind: str, entity_id: UUID | None) -> li.Subject | None:
    """A person's, place's or unit's campaign, retired flag and name (None: no such entity of that kind)."""
    if entity_id is None:
        return None
    state = get_of_kind(reader, kind, entity_id, _STATES[kind])
    if state is None:
        return None
    return li.Subject(campaign_id=state.campaign_id, retired=getattr(state, "retired", False), name=state.name)


def leader_record(reader: Reader, person_id: UUID) -> li.LeaderRecord | None:
    return get_of_kind(reader, LEADER_KIND, li.liaison_id_for(person_id), li.LeaderRecord)


def _link_taken(reader: Reader, link_id: UUID, person_id: UUID) -> bool:
    owner = reader.query(ld.link_owner, link_id)
    return owner is not None and owner != person_id


def _tz_of(reader: Reader, campaign_id: UUID | None) -> Any:
    return calendar_for(reader, campaign_id).tz if campaign_id is not None else None


# --- gathers ---------------------------------------------------------------------------------------


def gather_designate(cmd: li.DesignateLeader, reader: Reader) -> li.LinkRefs:
    return li.LinkRefs(person=subject(reader, "person", cmd.person_id),
                       officer=subject(reader, "person", cmd.liaison_officer_id))


def gather_link(cmd: li.LinkLiaison, reader: Reader) -> li.LinkRefs:
    return li.LinkRefs(person=subject(reader, "person", cmd.person_id),
                       target=subject(reader, cmd.target_kind, cmd.target_id),
                       link_id_taken=_link_taken(reader, cmd.link_id, cmd.person_id))


def gather_handover(cmd: li.HandOverLiaison, reader: Reader) -> li.LinkRefs:
    return li.LinkRefs(other=leader_record(reader, cmd.to_person_id),
                       other_person=subject(reader, "person", cmd.to_person_id),
                       link_id_taken=_link_taken(reader, cmd.new_link_id, cmd.to_person_id))


def gather_exemption(cmd: li.GrantDutyExemption, reader: Reader) -> li.LinkRefs:
    record = leader_record(reader, cmd.person_id)
    return li.LinkRefs(tz=_tz_of(reader, record.campaign_id if record else None))


def gather_policy(cmd: li.SetLiaisonDutyPolicy, reader: Reader) -> li.PolicyRefs:
    return li.PolicyRefs(campaign_exists=reader.get("campaign", cmd.campaign_id, Campaign) is not None)


def _party(reader: Reader, person_id: UUID | None) -> Party | None:
    found = subject(reader, "person", person_id)
    return None if found is None or person_id is None else Party(party_kind="person", party_id=person_id,
                                                                 name=found.name)


def _target_name(reader: Reader, link: li.Link) -> str | None:
    if link.target_kind == "place":
        return reader.query(place_name, link.target_id)
    found = subject(reader, "unit", link.target_id)
    return found.name if found else None


def gather_duty(cmd: li.RemindLiaisonDuty | li.RecordUnmetLiaisonDuty | li.ResolveLiaisonDuty,
                reader: Reader) -> li.DutyFacts:
    """Every fact the duty's verdict is re-judged from, as the read models and the leader's record have them."""
    calendar = calendar_for(reader, cmd.campaign_id)
    record = leader_record(reader, cmd.person_id)
    link = record.link(cmd.link_id) if record is not None and record.campaign_id == cmd.campaign_id else None
    timeline = li.PolicyTimeline(reader.query(ld.policy_versions, cmd.campaign_id, LATEST), calendar.tz)
    if record is None or link is None:
        return li.DutyFacts(link=None, timeline=timeline, places=li.LinkPlaces(exact=frozenset()), calendar=calendar)
    places = reader.query(ld.link_places, [link])[link.link_id]
    period = period_at(timeline.stretches, cmd.period_start)
    visits = reader.query(ld.visits_of, cmd.campaign_id, [cmd.person_id], LATEST, period.starts_at(calendar.tz),
                          period.ends_at(calendar.tz))[cmd.person_id]
    hq = reader.query(hq_unit, cmd.campaign_id)
    return li.DutyFacts(link=link, timeline=timeline, places=places, exemptions=record.exemptions,
                        visits=tuple(visits), calendar=calendar, leader=_party(reader, cmd.person_id),
                        officer=_party(reader, record.liaison_officer_id), target_name=_target_name(reader, link),
                        rank=record.rank, hq_unit_id=hq["unit_id"] if hq else None)


# --- the duty as the escalator's work item ---------------------------------------------------------


@item_adapter(li.ITEM_KIND)
def liaison_duty_item(reader: Reader, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    """An unmet duty: addressed to the HQ office; the leader (and 联络员) told as liaison leader and named as subject."""
    duty = reader.get(DUTY_KIND, item_id, li.Duty)
    if duty is None:
        return None
    item = li.duty_work_item(duty)
    leader, record = _party(reader, duty.person_id), leader_record(reader, duty.person_id)
    officer = _party(reader, record.liaison_officer_id) if record else None
    around = parties_for(reader, item)
    told = tuple(p for p in (leader, officer) if p is not None)
    parties = around.model_copy(update={"liaison_leader": told, "sub_command_or_grid_lead": (),
                                        "subject": (leader,) if leader else ()})
    where = reader.query(place_name, item.place_id) if item.place_id else None
    return ItemView(item, {"subject": duty.summary_zh or "挂钩联系未履职", "place": where or "挂钩联系点"},
                    parties=parties)


def _duty_target(cmd: li.RemindLiaisonDuty) -> UUID:
    return cmd.duty_id


def _leader_target(cmd: Any) -> UUID:
    return li.liaison_id_for(cmd.person_id)


_DUTY, _LEADER = DUTY_KIND, LEADER_KIND
# The leader, their 联络员 and the places or units they are linked to are of the campaign (checked by the service).
PERSON = Of("person")
LEADER: dict[str, Spec] = {"person_id": PERSON}
DUTY: dict[str, Spec] = {"person_id": PERSON, "link_id": OWN}

register(
    Handler(li.DesignateLeader, _LEADER, _leader_target, li.designate_leader, gather_designate, roles=HQ_ROLES,
            refs={**LEADER, "liaison_officer_id": PERSON}),
    Handler(li.LinkLiaison, _LEADER, _leader_target, li.link_liaison, gather_link, roles=HQ_ROLES,
            refs={**LEADER, "link_id": NEW, "target_id": KindIn("target_kind")}),
    Handler(li.EndLiaisonLink, _LEADER, _leader_target, li.end_liaison_link, roles=HQ_ROLES, refs=DUTY),
    Handler(li.HandOverLiaison, _LEADER, _leader_target, li.hand_over_liaison, gather_handover, roles=HQ_ROLES,
            refs={**DUTY, "to_person_id": PERSON, "new_link_id": NEW}),
    Handler(li.GrantDutyExemption, _LEADER, _leader_target, li.grant_duty_exemption, gather_exemption, roles=HQ_ROLES,
            refs={**LEADER, "exemption_id": NEW}),
    Handler(li.RevokeDutyExemption, _LEADER, _leader_target, li.revoke_duty_exemption, roles=HQ_ROLES,
            refs={**LEADER, "exemption_id": OWN}),
    Handler(li.SetLiaisonDutyPolicy, POLICY_KIND, lambda cmd: li.duty_policy_id(cmd.campaign_id),
            li.set_duty_policy, gather_policy, roles=HQ_ROLES),
    Handler(li.RemindLiaisonDuty, _DUTY, _duty_target, li.remind_liaison_duty, gather_duty, roles=STEP_ROLES,
            refs=DUTY),
    Handler(li.RecordUnmetLiaisonDuty, _DUTY, _duty_target, li.record_unmet_liaison_duty, gather_duty,
            roles=STEP_ROLES, refs=DUTY),
    Handler(li.ResolveLiaisonDuty, _DUTY, _duty_target, li.resolve_liaison_duty, gather_duty, roles=STEP_ROLES,
            refs=DUTY),
    Handler(li.CloseLiaisonDuty, _DUTY, _duty_target, li.close_liaison_duty, roles=HQ_ROLES, refs=DUTY),
)
