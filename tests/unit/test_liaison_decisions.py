"""Liaison decisions as given-events / when-command / then-events: designation, links, handover, exemptions, the
duty policy, and a duty's reminder, unmet record and resolution judged from the facts at the command's instant."""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar
from uuid import UUID, uuid4

import pytest

from domain import liaison as li
from domain.escalation.notice import NoticeIssued, Party
from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, Forbidden, Meta, NotFound, fold
from domain.kernel.calendar import CHINA_TZ
from infra.calendars import official_calendar

pytestmark = pytest.mark.unit

CAMPAIGN, LEADER, OFFICER, PLACE = uuid4(), uuid4(), uuid4(), uuid4()
HQ = Actor(person_id=uuid4(), role="hq_office", name="督办员")
SYSTEM = Actor(role="system", name="督办引擎")
CAL = official_calendar()


def bj(day: str, hhmm: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


def ctx(now: datetime, actor: Actor = HQ) -> CommandContext:
    return CommandContext(meta=Meta(actor=actor, occurred_at=now, recorded_at=now, correlation_id=uuid4(),
                                    command_id=str(uuid4()), campaign_id=CAMPAIGN))


def person(retired: bool = False) -> li.Subject:
    return li.Subject(campaign_id=CAMPAIGN, retired=retired, name="李")


def designated(person_id: UUID = LEADER) -> li.LeaderRecord:
    events = li.designate_leader(None, li.DesignateLeader(command_id="d", person_id=person_id, campaign_id=CAMPAIGN,
                                                          body="government", rank="副市长",
                                                          liaison_officer_id=OFFICER),
                                 ctx(bj("2021-11-30")), li.LinkRefs(person=person(), officer=person()))
    return fold(li.links.KIND, events, li.LeaderRecord)


def linked(record: li.LeaderRecord, link_id: UUID, start: str = "2021-12-01", place: UUID = PLACE) -> li.LeaderRecord:
    cmd = li.LinkLiaison(command_id="l", link_id=link_id, person_id=record.person_id, campaign_id=CAMPAIGN,
                         target_id=place, valid_from=bj(start, "00:00"), reason="挂钩")
    events = li.link_liaison(record, cmd, ctx(bj("2021-11-30")), li.LinkRefs(person=person(), target=person()))
    return fold(li.links.KIND, events, li.LeaderRecord, record)


def test_designating_records_body_rank_and_officer_once() -> None:
    """The same designation again is a no-op; the officer cannot be the leader; a retired person cannot be one."""
    record = designated()
    assert (record.body, record.rank, record.liaison_officer_id) == ("government", "副市长", OFFICER)
    again = li.DesignateLeader(command_id="d2", person_id=LEADER, campaign_id=CAMPAIGN, body="government",
                               rank="副市长", liaison_officer_id=OFFICER)
    assert li.designate_leader(record, again, ctx(bj("2021-12-01")), li.LinkRefs(person=person(),
                                                                                   officer=person())) == []
    with pytest.raises(DomainError) as err:
        li.designate_leader(None, again.model_copy(update={"liaison_officer_id": LEADER}), ctx(bj("2021-12-01")),
                            li.LinkRefs(person=person(), officer=person()))
    assert err.value.code == "officer_is_leader"
    with pytest.raises(DomainError) as retired:
        li.designate_leader(None, again, ctx(bj("2021-12-01")), li.LinkRefs(person=person(retired=True)))
    assert retired.value.code == "person_retired"


def test_linking_needs_a_leader_a_known_target_and_no_overlap() -> None:
    """Not designated → 422; unknown place → 404; the same place overlapping → 409; an open link is in force."""
    cmd = li.LinkLiaison(command_id="l", link_id=uuid4(), person_id=LEADER, campaign_id=CAMPAIGN, target_id=PLACE,
                         valid_from=bj("2021-12-01", "00:00"), reason="挂钩")
    refs = li.LinkRefs(person=person(), target=person())
    with pytest.raises(DomainError) as not_leader:
        li.link_liaison(None, cmd, ctx(bj("2021-11-30")), refs)
    assert not_leader.value.code == "not_a_leader"
    with pytest.raises(NotFound):
        li.link_liaison(designated(), cmd, ctx(bj("2021-11-30")), li.LinkRefs(person=person()))
    record = linked(designated(), uuid4())
    with pytest.raises(Conflict) as overlap:
        li.link_liaison(record, cmd.model_copy(update={"link_id": uuid4(), "valid_from": bj("2022-06-01")}),
                        ctx(bj("2021-11-30")), refs)
    assert overlap.value.code == "link_overlaps"
    assert [x.target_id for x in li.links_in_force(record.links, bj("2021-12-15"))] == [PLACE]


def test_a_handover_ends_and_starts_at_the_same_instant_naming_each_other() -> None:
    """交接: the outgoing link ends at `at`, the incoming leader's starts at `at`, each pointing at the other."""
    old, new = uuid4(), uuid4()
    outgoing, incoming = linked(designated(), old), designated(uuid4())
    cmd = li.HandOverLiaison(command_id="h", person_id=LEADER, link_id=old, to_person_id=incoming.person_id,
                             new_link_id=new, at=bj("2021-12-10", "00:00"), reason="工作调整")
    ended, started = li.hand_over_liaison(outgoing, cmd, ctx(bj("2021-12-10")),
                                          li.LinkRefs(other=incoming, other_person=person()))
    assert isinstance(ended, li.LiaisonLinkEnded) and isinstance(started, li.LiaisonLinked)
    assert ended.valid_to == started.valid_from == bj("2021-12-10", "00:00")
    assert (ended.handover_to, started.handover_from) == (new, old)
    assert ended.aggregate_id != started.aggregate_id


def test_an_exemption_must_overlap_a_link_and_end_after_it_starts() -> None:
    """Before every link → 422 exemption_overlaps_nothing; inverted → 422; the id used twice → 409."""
    record = linked(designated(), uuid4())
    refs = li.LinkRefs(tz=CHINA_TZ)
    base = li.GrantDutyExemption(command_id="e", person_id=LEADER, exemption_id=uuid4(), exemption_kind="sick_leave",
                                 starts_on=date(2021, 11, 1), ends_on=date(2021, 11, 30), reason="病假")
    with pytest.raises(DomainError) as nothing:
        li.grant_duty_exemption(record, base, ctx(bj("2021-12-05")), refs)
    assert nothing.value.code == "exemption_overlaps_nothing"
    with pytest.raises(DomainError) as inverted:
        li.grant_duty_exemption(record, base.model_copy(update={"starts_on": date(2021, 12, 9),
                                                                "ends_on": date(2021, 12, 8)}), ctx(bj("2021-12-05")), refs)
    assert inverted.value.code == "exemption_ends_before_start"
    granted = base.model_copy(update={"ends_on": date(2021, 12, 1)})
    record = fold(li.links.KIND, li.grant_duty_exemption(record, granted, ctx(bj("2021-12-05")), refs),
                  li.LeaderRecord, record)
    with pytest.raises(Conflict):
        li.grant_duty_exemption(record, granted, ctx(bj("2021-12-05")), refs)
    with pytest.raises(DomainError) as no_leader:
        li.grant_duty_exemption(None, granted, ctx(bj("2021-12-05")), refs)
    assert no_leader.value.code == "not_a_leader"


def test_policy_versions_need_a_reason_and_may_not_go_back_in_time() -> None:
    """A version before the previous one → 422; the same rules again → no event; only HQ sets them."""
    cmd = li.SetLiaisonDutyPolicy(command_id="p", campaign_id=CAMPAIGN, visits_per_place=2,
                                  effective_from=bj("2022-01-01", "00:00"), reason="加密督查")
    (event,) = li.set_duty_policy(None, cmd, ctx(bj("2021-12-20")), li.PolicyRefs())
    history = fold(li.policy.KIND, [event], li.DutyPolicyHistory)
    assert history.versions[0].version == 1 and history.versions[0].reason == "加密督查"
    assert li.set_duty_policy(history, cmd.model_copy(update={"effective_from": bj("2022-02-01")}),
                              ctx(bj("2021-12-20")), li.PolicyRefs()) == []
    with pytest.raises(DomainError) as regressed:
        li.set_duty_policy(history, cmd.model_copy(update={"visits_per_place": 3, "effective_from": bj("2021-12-01")}),
                           ctx(bj("2021-12-20")), li.PolicyRefs())
    assert regressed.value.code == "policy_effective_from_regressed"
    with pytest.raises(Forbidden):
        li.set_duty_policy(None, cmd, ctx(bj("2021-12-20"), Actor(role="leader")), li.PolicyRefs())


def facts(record: li.LeaderRecord, link_id: UUID, visits: tuple[li.VisitFact, ...] = ()) -> li.DutyFacts:
    return li.DutyFacts(link=record.link(link_id), timeline=li.PolicyTimeline([], CHINA_TZ),
                        places=li.LinkPlaces(exact=frozenset({PLACE})), exemptions=record.exemptions, visits=visits,
                        calendar=CAL, leader=Party(party_kind="person", party_id=LEADER, name="李"),
                        officer=Party(party_kind="person", party_id=OFFICER, name="联络员"), target_name="解放路",
                        rank="副市长", hq_unit_id=uuid4())


D = TypeVar("D", li.RemindLiaisonDuty, li.RecordUnmetLiaisonDuty, li.ResolveLiaisonDuty)


def duty_cmd(cls: type[D], link_id: UUID) -> D:
    return cls(command_id=str(uuid4()), campaign_id=CAMPAIGN, person_id=LEADER, link_id=link_id,
               period_start=date(2021, 12, 1))


def test_a_duty_is_reminded_once_from_its_time_recorded_unmet_after_its_grace_and_resolved_by_a_late_visit() -> None:
    """Reminded on 29 December 09:00 with a notice to the leader and officer; unmet on 7 January; a visit of the
    29th uploaded on the 10th resolves it as met late, naming the visit."""
    link_id = uuid4()
    record = linked(designated(), link_id)
    with pytest.raises(DomainError) as early:
        li.remind_liaison_duty(None, duty_cmd(li.RemindLiaisonDuty, link_id), ctx(bj("2021-12-28"), SYSTEM),
                               facts(record, link_id))
    assert early.value.code == "reminder_not_due"
    reminded, notice = li.remind_liaison_duty(None, duty_cmd(li.RemindLiaisonDuty, link_id),
                                              ctx(bj("2021-12-29", "09:00"), SYSTEM), facts(record, link_id))
    assert isinstance(notice, NoticeIssued) and {r.party_id for r in notice.recipients} == {LEADER, OFFICER}
    assert "解放路" in notice.text_zh and notice.subject_kind == li.ITEM_KIND
    duty = fold(li.duty.KIND, [reminded], li.Duty)
    with pytest.raises(Conflict):
        li.remind_liaison_duty(duty, duty_cmd(li.RemindLiaisonDuty, link_id), ctx(bj("2021-12-30"), SYSTEM),
                               facts(record, link_id))
    with pytest.raises(DomainError):
        li.record_unmet_liaison_duty(duty, duty_cmd(li.RecordUnmetLiaisonDuty, link_id),
                                     ctx(bj("2022-01-06", "23:59"), SYSTEM), facts(record, link_id))
    (unmet,) = li.record_unmet_liaison_duty(duty, duty_cmd(li.RecordUnmetLiaisonDuty, link_id),
                                            ctx(bj("2022-01-07", "00:00"), SYSTEM), facts(record, link_id))
    duty = fold(li.duty.KIND, [unmet], li.Duty, duty)
    item = li.duty_work_item(duty)
    assert not item.closed and item.deadline == bj("2022-01-07", "00:00") and "副市长" in (duty.summary_zh or "")
    late = li.VisitFact(visit_id=uuid4(), place_id=PLACE, participants=(LEADER,), occurred_at=bj("2021-12-29", "15:00"),
                        recorded_at=bj("2022-01-10", "09:30"))
    with pytest.raises(DomainError) as still:
        li.resolve_liaison_duty(duty, duty_cmd(li.ResolveLiaisonDuty, link_id), ctx(bj("2022-01-09"), SYSTEM),
                                facts(record, link_id, (late,)))
    assert still.value.code == "duty_still_unmet"
    (resolved,) = li.resolve_liaison_duty(duty, duty_cmd(li.ResolveLiaisonDuty, link_id),
                                          ctx(bj("2022-01-10", "10:00"), SYSTEM), facts(record, link_id, (late,)))
    assert isinstance(resolved, li.LiaisonDutyResolved)
    assert resolved.resolution == "met_late" and resolved.visit_ids == (late.visit_id,)
    assert li.duty_work_item(fold(li.duty.KIND, [resolved], li.Duty, duty)).closed


def test_hq_closes_an_unmet_duty_with_a_reason_and_nothing_twice() -> None:
    """CloseLiaisonDuty resolves an unmet duty as closed by HQ; again → 409; the system may not close by hand."""
    link_id = uuid4()
    record = linked(designated(), link_id)
    (unmet,) = li.record_unmet_liaison_duty(None, duty_cmd(li.RecordUnmetLiaisonDuty, link_id),
                                            ctx(bj("2022-01-07", "09:00"), SYSTEM), facts(record, link_id))
    duty = fold(li.duty.KIND, [unmet], li.Duty)
    close = li.CloseLiaisonDuty(command_id="c", campaign_id=CAMPAIGN, person_id=LEADER, link_id=link_id,
                                period_start=date(2021, 12, 1), reason="已补充督查并作说明")
    (closed,) = li.close_liaison_duty(duty, close, ctx(bj("2022-01-13")))
    assert isinstance(closed, li.LiaisonDutyResolved) and closed.resolution == "closed_by_hq"
    with pytest.raises(Conflict):
        li.close_liaison_duty(fold(li.duty.KIND, [closed], li.Duty, duty), close, ctx(bj("2022-01-14")))
    with pytest.raises(Forbidden):
        li.close_liaison_duty(duty, close, ctx(bj("2022-01-13"), SYSTEM))


def test_the_duty_id_is_derived_from_link_and_period() -> None:
    """The same link and period always give the same duty id (the escalator's commands derive from it)."""
    link_id = uuid4()
    assert li.duty_id_for(link_id, date(2021, 12, 1)) == li.duty_id_for(link_id, date(2021, 12, 1))
    assert li.duty_id_for(link_id, date(2021, 12, 1)) != li.duty_id_for(link_id, date(2022, 1, 1))
