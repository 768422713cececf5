"""Handlers for campaign commands."""

from domain.structure import campaign as c
from domain.kernel.roles import HQ_ROLES
from infra.commands import Handler, register

register(
    Handler(c.StartCampaign, "campaign", lambda cmd: cmd.campaign_id, c.start_campaign, roles=HQ_ROLES),
    Handler(c.RenameCampaign, "campaign", lambda cmd: cmd.campaign_id, c.rename_campaign, roles=HQ_ROLES),
)
