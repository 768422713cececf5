"""Handlers for bulletins (通报): draft, edit, issue (HQ only) and acknowledgement by the units named.

A correction reads the bulletin it corrects; acknowledging reads the acting person's units. The
pre-filled draft (红黑榜 from the rankings, level-3 escalations) is a query: GET
/campaigns/{id}/bulletins/draft, whose contents HQ posts back as DraftBulletin.
"""

from __future__ import annotations

from uuid import UUID

from domain.consequences import bulletin as bu
from domain.kernel.roles import HQ_ROLES, PERSON_ROLES
from infra.commands import Handler, Reader, actor_unit_ids, register
from infra.commands.references import TARGET, Each, Of, Spec


def gather_draft(cmd: bu.DraftBulletin, reader: Reader) -> bu.BulletinRefs:
    return bu.BulletinRefs(corrected=reader.get(bu.KIND, cmd.corrects, bu.Bulletin) if cmd.corrects else None)


def gather_ack(cmd: bu.AcknowledgeBulletin, reader: Reader) -> bu.BulletinRefs:
    return bu.BulletinRefs(actor_unit_ids=actor_unit_ids(reader))


def _target(cmd: bu.DraftBulletin | bu.EditBulletin | bu.IssueBulletin | bu.AcknowledgeBulletin) -> UUID:
    return cmd.bulletin_id


UNIT, STEP = Of("unit"), Of("escalation")
# Everyone a bulletin names — units ranked or flagged, the steps it lists, the leaders — is of its campaign.
CONTENTS: dict[str, Spec] = {
    "bulletin_id": TARGET, "red_list": Each({"unit_id": UNIT}), "black_list": Each({"unit_id": UNIT}),
    "flags": Each({"unit_id": UNIT}), "listed_escalations": Each({"step_id": STEP, "unit_id": UNIT}),
    "liaison_duties": Each({"person_id": Of("person"), "step_ids": STEP}),
}

register(
    Handler(bu.DraftBulletin, bu.KIND, _target, bu.draft_bulletin, gather_draft, roles=HQ_ROLES,
            refs={**CONTENTS, "corrects": Of(bu.KIND, missing="corrected_bulletin_not_found")}),
    Handler(bu.EditBulletin, bu.KIND, _target, bu.edit_bulletin, roles=HQ_ROLES, refs=CONTENTS),
    Handler(bu.IssueBulletin, bu.KIND, _target, bu.issue_bulletin, roles=HQ_ROLES, refs={"bulletin_id": TARGET}),
    Handler(bu.AcknowledgeBulletin, bu.KIND, _target, bu.acknowledge_bulletin, gather_ack, roles=PERSON_ROLES,
            refs={"bulletin_id": TARGET, "unit_id": UNIT}),
)
