"""Handlers for campaign commands."""

from domain.structure import campaign as c
from domain.kernel.roles import HQ_ROLES
from infra.commands import Handler, register
from infra.commands.references import TARGET

register(
    Handler(c.StartCampaign, "campaign", lambda cmd: cmd.campaign_id, c.start_campaign, roles=HQ_ROLES,
            refs={"campaign_id": TARGET}),
    Handler(c.RenameCampaign, "campaign", lambda cmd: cmd.campaign_id, c.rename_campaign, roles=HQ_ROLES,
            refs={"campaign_id": TARGET}),
)
