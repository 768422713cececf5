"""Handlers for notices (通知): issuing one by hand (交办单/提醒/催办单/督办单) and acknowledging it (签收).

Issuing reads the campaign calendar and the acknowledgement limit of the ladder in force (latest
version); acknowledging reads the units the acting person belongs to.
"""

from __future__ import annotations

from domain.escalation import notice as no
from domain.escalation.ladder import ladder_in_force
from domain.kernel.roles import NOTICE_ISSUER_ROLES, PERSON_ROLES
from infra.commands import Handler, Reader, actor_unit_ids, register
from infra.commands.escalation import LATEST, calendar_for, ladders_of
from infra.commands.references import PARTY, TARGET, KindIn


def gather_issue(cmd: no.IssueNotice, reader: Reader) -> no.NoticeRefs:
    ladder = ladder_in_force(ladders_of(reader, cmd.campaign_id), LATEST)
    return no.NoticeRefs(calendar=calendar_for(reader, cmd.campaign_id),
                         ack_working_hours=ladder.notice_ack_working_hours)


def gather_ack(cmd: no.AcknowledgeNotice, reader: Reader) -> no.AckRefs:
    return no.AckRefs(actor_unit_ids=actor_unit_ids(reader))


register(
    Handler(no.IssueNotice, no.KIND, lambda cmd: cmd.notice_id, no.issue_notice, gather_issue, roles=NOTICE_ISSUER_ROLES,
            refs={"notice_id": TARGET, "subject_id": KindIn("subject_kind"), "recipients": PARTY}),
    Handler(no.AcknowledgeNotice, no.KIND, lambda cmd: cmd.notice_id, no.acknowledge_notice, gather_ack,
            roles=PERSON_ROLES, refs={"notice_id": TARGET}),
)
