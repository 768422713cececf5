"""Handlers for problem (问题) commands: reporting and every step of the lifecycle, with their gather functions.

Each lifecycle command gets its handler from what it declares beside its fields (`roles`, `reads`,
`references`) and from the decision marked `@decides(it)`: there is no table here to extend. Roles
are checked by the service before anything is read and again inside the domain decisions. Gathering reads aggregates from the store (the
problem, the acting person's units, the campaign policy, named units, a merge target) and read
models where only they can answer: the matrix's lead unit of a place, the members of a unit
(structure projection), and matching problems at a place and category (the ledger).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain import problem as pr
from domain.problem.assignment_notice import (AssignmentNames, assignment_notice_id, with_assignment_notice,
                                      with_notice_acknowledged)
from domain.kernel.base import CommandContext
from domain.escalation.notice import Notice
from domain.policy.campaign import CampaignPolicy, campaign_calendar, policy_id_for
from domain.structure.place import Place
from domain.structure.unit import Unit
from domain.problem.commands import AutoDispatch, ProblemCommand
from domain.kernel.roles import INSPECTOR_ROLES
from infra.calendars import official_calendar
from infra.commands import Handler, Reader, actor_unit_ids, register
from infra.commands.references import TARGET, Of
from infra.store.uploads import cited_evidence, known_evidence
from projections.ledger import problem_matches
from projections.matrix import lead_unit_for_place, lead_units_for_place


def unit_member_ids(conn: Any, unit_id: UUID) -> frozenset[UUID]:
    """The persons who are members of `unit_id` (structure projection)."""
    rows = conn.execute("SELECT person_id FROM structure_memberships WHERE unit_id = %s", (unit_id,)).fetchall()
    return frozenset(r["person_id"] if isinstance(r, dict) else r[0] for r in rows)


def campaign_policy(reader: Reader, campaign_id: UUID) -> CampaignPolicy | None:
    return reader.get("campaign_policy", policy_id_for(campaign_id), CampaignPolicy)


def place_in_campaign(reader: Reader, place_id: UUID, campaign_id: UUID) -> bool:
    """The place exists and belongs to the campaign (another campaign's place reads as unknown)."""
    place = reader.get("place", place_id, Place)
    return place is not None and place.campaign_id == campaign_id


def uploaded_evidence(reader: Reader, cmd: Any, campaign_id: UUID) -> pr.KnownEvidence:
    """The photos the command cites that were uploaded to the campaign (the upload registry)."""
    cited = {e.sha256 for e in cited_evidence(cmd)}
    return reader.query(known_evidence, campaign_id, cited) if cited else {}


def auto_dispatch(reader: Reader, policy: CampaignPolicy | None, place_ids: Iterable[UUID]) -> AutoDispatch | None:
    """What automatic assignment (自动交办) reads for problems reported at `place_ids` — only gathered when the campaign
    ever turned it on (the decision judges whether it is on at the time): the matrix's lead units of each place, and
    the names of the places and of every unit a 交办单 could be addressed to."""
    if policy is None or not any(v.enabled for v in policy.auto_assignments):
        return None
    places = set(place_ids)
    leads = {p: reader.query(lead_units_for_place, p) for p in places}
    units = {u for found in leads.values() for u in found} | {r.unit_id for v in policy.routings for r in v.routes}
    unit_names = {u: unit.name for u in units if (unit := reader.get("unit", u, Unit)) is not None}
    place_names = {p: place.name for p in places if (place := reader.get("place", p, Place)) is not None}
    return AutoDispatch(calendar=official_calendar(), matrix_leads=leads, unit_names=unit_names, place_names=place_names)


def gather_report(cmd: pr.ReportProblem, reader: Reader) -> pr.ReportRefs:
    if not place_in_campaign(reader, cmd.place_id, cmd.campaign_id):
        return pr.ReportRefs(place_exists=False)
    policy = campaign_policy(reader, cmd.campaign_id)
    return pr.ReportRefs(
        place_exists=True, policy=policy,
        matches=reader.query(problem_matches, cmd.campaign_id, cmd.place_id, cmd.category),
        known_evidence=uploaded_evidence(reader, cmd, cmd.campaign_id),
        dispatch=auto_dispatch(reader, policy, (cmd.place_id,)),
    )


def named_unit(cmd: ProblemCommand) -> UUID | None:
    """The unit a command names (交办 override, transfer target or suggestion), if any."""
    for name in ("unit_id", "to_unit_id", "suggested_unit_id"):
        if (value := getattr(cmd, name, None)) is not None:
            return value
    return None


def unit_exists(reader: Reader, unit_id: UUID | None, campaign_id: UUID) -> bool:
    if unit_id is None:
        return True
    unit = reader.get("unit", unit_id, Unit)
    return unit is not None and unit.campaign_id == campaign_id


def gather_problem(cmd: ProblemCommand, reader: Reader) -> pr.ProblemRefs:
    """Exactly the refs the command's decision reads (its `reads`), for the problem the command targets."""
    needed = cmd.reads
    problem = reader.get("problem", cmd.problem_id, pr.Problem)
    if problem is None:
        return pr.ProblemRefs(calendar=official_calendar())  # the decision answers problem_not_found
    refs: dict[str, Any] = {"calendar": official_calendar()}
    if "policy" in needed:
        refs["policy"] = campaign_policy(reader, problem.campaign_id)
    if "actor_unit_ids" in needed:
        refs["actor_unit_ids"] = actor_unit_ids(reader)
    if "rectifying_unit_member_ids" in needed and problem.unit_id is not None:
        refs["rectifying_unit_member_ids"] = reader.query(unit_member_ids, problem.unit_id)
    if "matrix_unit_id" in needed:
        refs["matrix_unit_id"] = reader.query(lead_unit_for_place, problem.place_id)
    if "named_unit_exists" in needed:
        refs["named_unit_exists"] = unit_exists(reader, named_unit(cmd), problem.campaign_id)
    if "merge_target" in needed and isinstance(cmd, pr.MergeProblem):
        refs["merge_target"] = reader.get("problem", cmd.into_problem_id, pr.Problem)
    if "known_evidence" in needed:
        refs["known_evidence"] = uploaded_evidence(reader, cmd, problem.campaign_id)
    return pr.ProblemRefs(**refs)


def _problem(cmd: ProblemCommand) -> UUID:
    return cmd.problem_id


@dataclass(frozen=True)
class WithNotice:
    """The problem refs plus what the 交办单 that travels with a handing-over (or a 签收) needs."""

    problem: pr.ProblemRefs
    names: AssignmentNames
    open_notice: Notice | None


def gather_with_notice(cmd: ProblemCommand, reader: Reader) -> WithNotice:
    refs = gather_problem(cmd, reader)
    problem = reader.get("problem", cmd.problem_id, pr.Problem)
    if problem is None:
        return WithNotice(refs, AssignmentNames(), None)
    pending = problem.pending_transfer
    candidates = {u for u in (problem.unit_id, named_unit(cmd), refs.matrix_unit_id,
                              pending.suggested_unit_id if pending else None) if u is not None}
    units = {u: reader.get("unit", u, Unit) for u in candidates}
    place = reader.get("place", problem.place_id, Place)
    open_notice = None
    if problem.unit_id is not None:
        open_notice = reader.get(
            "notice", assignment_notice_id(problem.problem_id, problem.unit_id, problem.transfer_count), Notice
        )
    names = AssignmentNames(unit_names={u: unit.name for u, unit in units.items() if unit is not None},
                            place_name=place.name if place is not None else None)
    return WithNotice(refs, names, open_notice)


def lifecycle_handler(command: type[ProblemCommand], decide: pr.Decision) -> Handler[Any]:
    """A lifecycle command's handler, from what the command declares beside its fields: the roles that may issue it,
    the entities it names besides the problem itself (`references`), and (read by `gather_problem`) its `reads`."""
    roles = getattr(command, "roles", None)
    if roles is None:  # Handler(roles=None) would let every writing role issue it
        raise TypeError(f"{command.__name__} declares no `roles` (who may issue it) beside its fields")
    named = {name: Of(kind) for name, kind in command.references.items()}
    return Handler(command, "problem", _problem, with_notices(decide), gather_with_notice, roles=roles,
                   refs={"problem_id": TARGET, **named})


def with_notices(decide: Any) -> Any:
    """The lifecycle decision, then the 交办单 it implies (issued on handing-over, acknowledged on 签收)."""

    def decision(state: pr.Problem | None, cmd: ProblemCommand, ctx: CommandContext, refs: WithNotice) -> list[Any]:
        events = decide(state, cmd, ctx, refs.problem)
        calendar = campaign_calendar(refs.problem.calendar, refs.problem.policy, ctx.now)
        events = with_assignment_notice(state, events, ctx, calendar, refs.names)
        return with_notice_acknowledged(state, events, ctx, refs.open_notice)

    return decision


register(
    Handler(pr.ReportProblem, "problem", lambda c: c.problem_id, pr.report_problem, gather_report,
            roles=INSPECTOR_ROLES, refs={"problem_id": TARGET, "place_id": Of("place")}),
    *(lifecycle_handler(command, decide) for command, decide in pr.lifecycle().items()),
)
