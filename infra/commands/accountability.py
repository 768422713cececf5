"""Handlers for summons (约谈) and accountability cases (问责).

The system and HQ propose; people decide: scheduling, holding and cancelling a summons is for
admin, hq_office and discipline; opening a case for hq_office and discipline; measures and appeal
decisions only for discipline (纪委监委) and hq_leader (总指挥长); auditors only read. The role
groups (`domain.kernel.roles`) are checked here (403 before anything is read) and again by the
decisions themselves.
"""

from __future__ import annotations

from typing import Any

from domain.consequences import accountability as ac
from domain.consequences import summons as su
from domain.kernel.roles import (
    CASE_CLOSER_ROLES, CASE_DECIDER_ROLES, CASE_OPENER_ROLES, PERSON_ROLES, PROPOSER_ROLES, SUMMONS_ROLES,
)
from infra.commands import Handler, Reader, actor_unit_ids, register
from infra.commands.references import BASIS, PARTY, TARGET, Spec


def gather_appeal(cmd: ac.FileAppeal, reader: Reader) -> ac.CaseRefs:
    return ac.CaseRefs(actor_unit_ids=actor_unit_ids(reader))


def _case(cmd: Any) -> Any:
    return cmd.case_id


def _summons(cmd: Any) -> Any:
    return cmd.summons_id


SUMMONS_ID: dict[str, Spec] = {"summons_id": TARGET}
CASE_ID: dict[str, Spec] = {"case_id": TARGET}
WITH_BASIS: dict[str, Spec] = {"subject": PARTY, "basis": BASIS}  # whom it is against and what it rests on: all of one campaign

register(
    Handler(su.ProposeSummons, su.SUMMONS, _summons, su.propose_summons, roles=PROPOSER_ROLES,
            refs={**SUMMONS_ID, **WITH_BASIS}),
    Handler(su.ScheduleSummons, su.SUMMONS, _summons, su.schedule_summons, roles=SUMMONS_ROLES,
            refs={**SUMMONS_ID, "convened_by": PARTY}),
    Handler(su.HoldSummons, su.SUMMONS, _summons, su.hold_summons, roles=SUMMONS_ROLES, refs=SUMMONS_ID),
    Handler(su.CancelSummons, su.SUMMONS, _summons, su.cancel_summons, roles=SUMMONS_ROLES, refs=SUMMONS_ID),
    Handler(ac.ProposeAccountability, ac.CASE, _case, ac.propose_accountability, roles=PROPOSER_ROLES,
            refs={**CASE_ID, **WITH_BASIS}),
    Handler(ac.OpenAccountabilityCase, ac.CASE, _case, ac.open_case, roles=CASE_OPENER_ROLES,
            refs={**CASE_ID, **WITH_BASIS}),
    Handler(ac.DeclineAccountabilityProposal, ac.CASE, _case, ac.decline_proposal, roles=CASE_OPENER_ROLES,
            refs=CASE_ID),
    Handler(ac.DecideMeasures, ac.CASE, _case, ac.decide_measures, roles=CASE_DECIDER_ROLES, refs=CASE_ID),
    Handler(ac.FileAppeal, ac.CASE, _case, ac.file_appeal, gather_appeal, roles=PERSON_ROLES, refs=CASE_ID),
    Handler(ac.DecideAppeal, ac.CASE, _case, ac.decide_appeal, roles=CASE_DECIDER_ROLES, refs=CASE_ID),
    Handler(ac.CloseAccountabilityCase, ac.CASE, _case, ac.close_case, roles=CASE_CLOSER_ROLES, refs=CASE_ID),
)
