"""Handlers for campaign policy (创建活动政策) commands: deadlines, relapse window, routing, categories, calendar days,
late-entry window (补录时限) and automatic assignment (自动交办).

Every policy command records a version on the campaign's one policy aggregate; the gather reads
whether the campaign exists and which of the units a routing names exist.
"""

from __future__ import annotations

from uuid import UUID

from domain.policy import commands as pc
from domain.kernel.roles import HQ_ROLES
from domain.policy.campaign import PolicyRefs, policy_id_for
from domain.structure.campaign import Campaign
from domain.structure.unit import Unit
from infra.commands import Handler, Reader, register
from infra.commands.references import Each, Of


def gather_policy(cmd: pc.PolicyCommand, reader: Reader) -> PolicyRefs:
    named = {r.unit_id for r in cmd.routes} if isinstance(cmd, pc.SetCategoryRouting) else set()
    return PolicyRefs(
        campaign_exists=reader.get("campaign", cmd.campaign_id, Campaign) is not None,
        known_unit_ids=frozenset(u for u in named if reader.get("unit", u, Unit) is not None),
    )


def _target(cmd: pc.PolicyCommand) -> UUID:
    return policy_id_for(cmd.campaign_id)


register(*(
    Handler(command, "campaign_policy", _target, pc.set_policy, gather_policy, roles=HQ_ROLES,
            refs={"routes": Each({"unit_id": Of("unit")})} if command is pc.SetCategoryRouting else {})
    for command in (pc.SetDeadlinePolicy, pc.SetRelapseWindow, pc.SetCategoryRouting, pc.ConfigureCategories,
                    pc.SetCalendarDays, pc.SetLateEntryWindow, pc.SetAutoAssignment)
))
