"""Handlers for notices (通知): issuing one by hand (交办单/提醒/催办单/督办单) and acknowledging it (签收).

Issuing reads the campaign calendar and the acknowledgement limit of the ladder in force (latest
version); acknowledging reads the units the acting person belongs to.
"""

from __future__ import annotations

from domain.escalation import notice as no
from domain.escalation.ladder import ladder_in_force
from domain.kernel.roles import NOTICE_ISSUER_ROLES
from infra.commands import Handler, Reader, register
from infra.commands.escalation import LATEST, actor_unit_ids, calendar_for, ladders_of


def gather_issue(cmd: no.IssueNotice, reader: Reader) -> no.NoticeRefs:
    ladder = ladder_in_force(ladders_of(reader, cmd.campaign_id), LATEST)
    return no.NoticeRefs(calendar=calendar_for(reader, cmd.campaign_id),
                         ack_working_hours=ladder.notice_ack_working_hours)


def gather_ack(cmd: no.AcknowledgeNotice, reader: Reader) -> no.AckRefs:
    return no.AckRefs(actor_unit_ids=actor_unit_ids(reader))


register(
    Handler(no.IssueNotice, no.KIND, lambda cmd: cmd.notice_id, no.issue_notice, gather_issue, roles=NOTICE_ISSUER_ROLES),
    Handler(no.AcknowledgeNotice, no.KIND, lambda cmd: cmd.notice_id, no.acknowledge_notice, gather_ack),
)
