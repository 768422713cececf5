"""Handlers for campaign commands."""

from domain.structure import campaign as c
from infra.commands import Handler, register

HQ = frozenset({"admin", "hq_office"})

register(
    Handler(c.StartCampaign, "campaign", lambda cmd: cmd.campaign_id, c.start_campaign, roles=HQ),
    Handler(c.RenameCampaign, "campaign", lambda cmd: cmd.campaign_id, c.rename_campaign, roles=HQ),
)
