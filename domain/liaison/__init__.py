"""Liaison duties (挂钩联系): leaders linked to places and units, the duty policy, period judgement, duty work.

The public API (`from domain import liaison as li`):
`periods` (周/月/双月 in the campaign's time zone, judgement and reminder instants), `policy` (the
versioned duty policy, 履职规则), `links` (the leader's record: designation, links, handovers,
exemptions), `judgement` (what is due and done per link and period, and the verdict, as named
predicates) and `duty` (a duty as work: reminded, found unmet, resolved — the escalator's item).

The pro-rating rule (handover mid-period, exemptions, links begun or ended inside a period) is
stated in `domain.liaison.judgement`; the period rule in `domain.liaison.periods`.
"""

from __future__ import annotations

from domain.liaison.duty import (
    ITEM_KIND, RESOLUTION_NAMES_ZH, CloseLiaisonDuty, Duty, DutyFacts, LiaisonDutyFoundUnmet, LiaisonDutyReminded,
    LiaisonDutyResolved, RecordUnmetLiaisonDuty, RemindLiaisonDuty, ResolveLiaisonDuty, close_liaison_duty,
    duty_work_item, record_unmet_liaison_duty, remind_liaison_duty, resolve_liaison_duty, verdict_now,
)
from domain.liaison.judgement import (
    STATUS_NAMES_ZH, CountedVisit, Due, LinkPlaces, Status, Verdict, VisitFact, duty_id_for, duty_in_period,
    is_counted_visit, is_judged, is_leader_on_visit, is_met_late, is_pending, is_unmet, judge_link, judge_period,
    last_visit, needs_reminder, periods_of_link,
)
from domain.liaison.links import (
    BODY_NAMES_ZH, EXEMPTION_NAMES_ZH, DesignateLeader, DutyExemptionGranted, DutyExemptionRevoked, EndLiaisonLink,
    Exemption, GrantDutyExemption, HandOverLiaison, LeaderDesignated, LeaderRecord, Link, LinkLiaison, LinkRefs,
    LiaisonLinked, LiaisonLinkEnded, RevokeDutyExemption, Subject, designate_leader, end_liaison_link,
    exemption_overlaps_a_link, grant_duty_exemption, hand_over_liaison, intervals_overlap, is_duplicate_link,
    liaison_id_for, link_liaison, links_in_force, revoke_duty_exemption,
)
from domain.liaison.periods import PERIOD_NAMES_ZH, Period, PeriodKind, judged_at, natural_period, remind_at
from domain.liaison.policy import (
    DEFAULT_DUTY_POLICY, DutyPolicy, DutyPolicyHistory, DutyRules, LiaisonDutyPolicySet, PolicyRefs, PolicyTimeline,
    SetLiaisonDutyPolicy, duty_policy_id, set_duty_policy,
)

__all__ = [
    "ITEM_KIND", "RESOLUTION_NAMES_ZH", "CloseLiaisonDuty", "Duty", "DutyFacts", "LiaisonDutyFoundUnmet",
    "LiaisonDutyReminded", "LiaisonDutyResolved", "RecordUnmetLiaisonDuty", "RemindLiaisonDuty", "ResolveLiaisonDuty",
    "close_liaison_duty", "duty_work_item", "record_unmet_liaison_duty", "remind_liaison_duty", "resolve_liaison_duty",
    "verdict_now",
    "STATUS_NAMES_ZH", "CountedVisit", "Due", "LinkPlaces", "Status", "Verdict", "VisitFact", "duty_id_for",
    "duty_in_period", "is_counted_visit", "is_judged", "is_leader_on_visit", "is_met_late", "is_pending", "is_unmet",
    "judge_link", "judge_period", "last_visit", "needs_reminder", "periods_of_link",
    "BODY_NAMES_ZH", "EXEMPTION_NAMES_ZH", "DesignateLeader", "DutyExemptionGranted", "DutyExemptionRevoked",
    "EndLiaisonLink", "Exemption", "GrantDutyExemption", "HandOverLiaison", "LeaderDesignated", "LeaderRecord", "Link",
    "LinkLiaison", "LinkRefs", "LiaisonLinked", "LiaisonLinkEnded", "RevokeDutyExemption", "Subject",
    "designate_leader", "end_liaison_link", "exemption_overlaps_a_link", "grant_duty_exemption", "hand_over_liaison",
    "intervals_overlap", "is_duplicate_link", "liaison_id_for", "link_liaison", "links_in_force",
    "revoke_duty_exemption",
    "PERIOD_NAMES_ZH", "Period", "PeriodKind", "judged_at", "natural_period", "remind_at",
    "DEFAULT_DUTY_POLICY", "DutyPolicy", "DutyPolicyHistory", "DutyRules", "LiaisonDutyPolicySet", "PolicyRefs",
    "PolicyTimeline", "SetLiaisonDutyPolicy", "duty_policy_id", "set_duty_policy",
]
