"""Handlers for supervision visit (督导/督查) commands: log a whole visit, or open, add findings, close.

The gather reads the places the command names, the campaign policy, the ledger's matching
problems for each finding's place and category (duplicates, relapses), and which of the
findings' problem ids are already taken.
"""

from __future__ import annotations

from uuid import UUID

from domain import visit as vi
from domain.kernel.base import Command
from domain.problem import Problem
from infra.commands import Handler, Reader, register
from infra.commands.references import NEW, TARGET, Each, Of, Spec
from infra.commands.problem import auto_dispatch, campaign_policy, place_in_campaign, uploaded_evidence
from projections.ledger import matches_for


def findings_of(cmd: Command) -> tuple[vi.Finding, ...]:
    if isinstance(cmd, vi.LogVisit):
        return cmd.findings
    return (cmd.finding,) if isinstance(cmd, vi.AddFinding) else ()


def id_taken(reader: Reader, problem_id: UUID) -> bool:
    """A problem with this id exists, or the id belongs to another kind of aggregate."""
    if reader.get("problem", problem_id, Problem) is not None:
        return True
    other_kind = getattr(reader, "taken_by_other_kind", None)  # the store's reader knows; a test double may not
    return bool(other_kind and other_kind("problem", problem_id))


def gather_visit(cmd: vi.OpenVisit | vi.AddFinding, reader: Reader) -> vi.VisitRefs:
    visit = reader.get("visit", cmd.visit_id, vi.Visit) if isinstance(cmd, vi.AddFinding) else None
    campaign_id = visit.campaign_id if visit is not None else getattr(cmd, "campaign_id", None)
    if campaign_id is None:
        return vi.VisitRefs(known_place_ids=frozenset())  # the decision answers visit_not_found
    base = visit.place_id if visit is not None else None
    keys = vi.finding_keys(cmd, base)
    policy = campaign_policy(reader, campaign_id)
    return vi.VisitRefs(
        known_place_ids=frozenset(p for p in vi.place_ids(cmd, base) if place_in_campaign(reader, p, campaign_id)),
        policy=policy, dispatch=auto_dispatch(reader, policy, {place for place, _ in keys}),
        matches=reader.query(matches_for, campaign_id, keys) if keys else {},
        existing_problem_ids=frozenset(f.problem_id for f in findings_of(cmd) if id_taken(reader, f.problem_id)),
        known_evidence=uploaded_evidence(reader, findings_of(cmd), campaign_id),
    )


def _visit(cmd: vi.OpenVisit | vi.AddFinding | vi.CloseVisit) -> UUID:
    return cmd.visit_id


VISIT: dict[str, Spec] = {"visit_id": TARGET}
FINDING = Each({"problem_id": NEW, "place_id": Of("place")})  # a finding reports a new problem, maybe at a place inside
OPENED: dict[str, Spec] = {**VISIT, "place_id": Of("place"), "participants": Of("person")}

register(
    Handler(vi.LogVisit, "visit", _visit, vi.log_visit, gather_visit, roles=vi.VISITOR_ROLES,
            refs={**OPENED, "findings": FINDING}),
    Handler(vi.OpenVisit, "visit", _visit, vi.open_visit, gather_visit, roles=vi.VISITOR_ROLES, refs=OPENED),
    Handler(vi.AddFinding, "visit", _visit, vi.add_finding, gather_visit, roles=vi.VISITOR_ROLES,
            refs={**VISIT, "finding": FINDING}),
    Handler(vi.CloseVisit, "visit", _visit, vi.close_visit, roles=vi.VISITOR_ROLES, refs=VISIT),
)
