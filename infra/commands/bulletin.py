"""Handlers for bulletins (通报): draft, edit, issue (HQ only) and acknowledgement by the units named.

A correction reads the bulletin it corrects; acknowledging reads the acting person's units. The
pre-filled draft (红黑榜 from the rankings, level-3 escalations) is a query: GET
/campaigns/{id}/bulletins/draft, whose contents HQ posts back as DraftBulletin.
"""

from __future__ import annotations

from uuid import UUID

from domain.consequences import bulletin as bu
from domain.kernel.roles import HQ_ROLES
from infra.commands import Handler, Reader, register
from infra.commands.escalation import actor_unit_ids


def gather_draft(cmd: bu.DraftBulletin, reader: Reader) -> bu.BulletinRefs:
    return bu.BulletinRefs(corrected=reader.get(bu.KIND, cmd.corrects, bu.Bulletin) if cmd.corrects else None)


def gather_ack(cmd: bu.AcknowledgeBulletin, reader: Reader) -> bu.BulletinRefs:
    return bu.BulletinRefs(actor_unit_ids=actor_unit_ids(reader))


def _target(cmd: bu.DraftBulletin | bu.EditBulletin | bu.IssueBulletin | bu.AcknowledgeBulletin) -> UUID:
    return cmd.bulletin_id


register(
    Handler(bu.DraftBulletin, bu.KIND, _target, bu.draft_bulletin, gather_draft, roles=HQ_ROLES),
    Handler(bu.EditBulletin, bu.KIND, _target, bu.edit_bulletin, roles=HQ_ROLES),
    Handler(bu.IssueBulletin, bu.KIND, _target, bu.issue_bulletin, roles=HQ_ROLES),
    Handler(bu.AcknowledgeBulletin, bu.KIND, _target, bu.acknowledge_bulletin, gather_ack),
)
