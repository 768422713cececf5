"""What the 黑榜 leads to (排名后果): after each issued bulletin, the escalator proposes summons and 问责.

For every issued bulletin (a correction's list replacing the list it corrects), the history of
黑榜 up to it goes through the domain's `ranking_consequences` under the ranking policy in force
when it was issued: once → 约谈 by the responsible city leader, twice in a row → by the
organisation department, three times → 问责 proposed. Proposal ids and command ids derive from
(bulletin, unit), and a proposal's basis names the bulletins, so each is proposed once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from domain.consequences.accountability import BasisRef, ProposeAccountability, case_id_for
from domain.kernel.base import Actor, DomainError
from domain.escalation.ladder import EscalationPolicy, escalation_policy_id, ranking_policy_in_force
from domain.escalation.notice import Party
from domain.consequences.ranking import CONSEQUENCE_NAMES_ZH, Consequence, ranking_consequences
from domain.consequences.summons import Convener, ProposeSummons, summons_id_for
from infra.audit.causes import bulletin_issued
from infra.commands.service import CommandService, StoreReader
from projections.bulletins import issued_black_lists

CONVENERS: dict[Consequence, Convener] = {
    "summons_by_city_leader": "city_leader", "summons_by_organisation_department": "organisation_department",
}


def propose_consequences(conn: psycopg.Connection[Any], service: CommandService, actor: Actor) -> int:
    """Propose every consequence not yet proposed; returns how many were proposed now."""
    bulletins = issued_black_lists(conn)
    done = {(row["basis_id"], row["subject_id"]) for row in conn.execute(
        "SELECT unnest(basis_ids) AS basis_id, subject_id FROM proposals WHERE source = 'ranking'").fetchall()}
    by_campaign: dict[UUID, list[dict[str, Any]]] = {}
    for b in bulletins:
        by_campaign.setdefault(b["campaign_id"], []).append(b)
    proposed = 0
    reader = StoreReader(service.app)
    for campaign_id, history in by_campaign.items():
        policy = reader.get("escalation_policy", escalation_policy_id(campaign_id), EscalationPolicy)
        versions = policy.ranking_policies if policy is not None else ()
        for i, b in enumerate(history):
            lists = [frozenset(UUID(e["unit_id"]) for e in h["black_list"]) for h in history[: i + 1]]
            names = {UUID(e["unit_id"]): e["name"] for e in b["black_list"]}
            consequences = ranking_consequences(lists, ranking_policy_in_force(versions, b["issued_at"]))
            for unit in names:  # in 黑榜 order
                what = consequences.get(unit)
                ids = {b["bulletin_id"], b["corrects"]} - {None}
                if what is None or any((bid, unit) in done for bid in ids):
                    continue
                listed = [h["bulletin_id"] for h, units in zip(history, lists, strict=False) if unit in units]  # lists stop at b
                proposed += _propose(service, actor, campaign_id, b, unit, names.get(unit), what, listed)
    return proposed


def _propose(service: CommandService, actor: Actor, campaign_id: UUID, bulletin: dict[str, Any], unit: UUID,
             name: str | None, what: Consequence, listed: list[UUID]) -> int:
    subject = Party(party_kind="unit", party_id=unit, name=name)
    basis = tuple(BasisRef(kind="bulletin", id=b) for b in listed)
    period = f"{bulletin['period_start']:%-m月%-d日}至{bulletin['period_end']:%-m月%-d日}"
    reason = (f"{name or '该单位'}在{period}的通报中列入黑榜（累计{len(listed)}次），"
              f"按排名规则{CONSEQUENCE_NAMES_ZH[what]}。")
    key = f"ranking:{bulletin['bulletin_id']}:{unit}"
    cmd: ProposeSummons | ProposeAccountability
    if what == "accountability_proposed":
        cmd = ProposeAccountability(command_id=key, case_id=case_id_for("ranking", bulletin["bulletin_id"], unit),
                                    campaign_id=campaign_id, subject=subject, reason_zh=reason, basis=basis,
                                    source="ranking")
    else:
        cmd = ProposeSummons(command_id=key, summons_id=summons_id_for("ranking", bulletin["bulletin_id"], unit),
                             campaign_id=campaign_id, subject=subject, convener=CONVENERS[what], reason_zh=reason,
                             basis=basis, source="ranking")
    try:
        cause = bulletin_issued(service.app, bulletin["bulletin_id"])  # the issuing of the list that led here
        return 0 if service.handle(cmd, actor, causation_id=cause).replayed else 1
    except DomainError as err:
        if err.code in ("summons_exists", "case_exists"):
            return 0
        raise
