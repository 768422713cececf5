"""The escalator's liaison round (挂钩联系履职): reminders, unmet records and resolutions, each once.

Every tick, before the ladder is judged, the escalator computes each campaign's liaison verdicts at
its clock's now (`projections.liaison_duties.judge`, the domain's rules) and issues, as the system:
`RemindLiaisonDuty` for a duty whose reminder time has come while nothing is recorded, and
`RecordUnmetLiaisonDuty` for one whose grace ran out unmet — which makes it a work item the ladder
then climbs in the same tick; and `ResolveLiaisonDuty` for an unmet one that a late upload, an
exemption or a changed link has met, excused or made not due. Command ids derive from the duty id,
and each decision refuses a second reminder, record or resolution (409), so a doubled or restarted
escalator does each at most once; the decisions re-judge from fresh facts, so a stale round only
gets refusals. Each command names its cause (`causation_id`): the link that owes the visits, or
what met or excused the duty (`infra.audit.causes.duty_cause`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import structlog

from domain import liaison as li
from domain.kernel.base import Actor, Command, DomainError
from domain.kernel.calendar import WorkCalendar
from infra.audit.causes import duty_cause
from infra.commands.escalation import calendar_for
from infra.commands.service import CommandService, StoreReader
from projections import liaison_duties as ld

log = structlog.get_logger("dudao.escalator.liaison")

ALREADY = frozenset({"duty_already_reminded", "duty_already_judged", "duty_already_resolved"})
NOT_NOW = frozenset({"reminder_not_due", "reminder_not_needed", "duty_not_unmet", "duty_still_unmet",
                     "duty_not_found", "unmet_duty_not_found"})


@dataclass
class RoundReport:
    reminded: int = 0
    found_unmet: int = 0
    resolved: int = 0
    already: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def written(self) -> int:
        return self.reminded + self.found_unmet + self.resolved


def campaigns_with_links(conn: Any) -> list[UUID]:
    return [r["campaign_id"] if isinstance(r, dict) else r[0]
            for r in conn.execute("SELECT DISTINCT campaign_id FROM liaison_links ORDER BY campaign_id").fetchall()]


def _open_records(conn: Any, campaign_id: UUID) -> list[dict[str, Any]]:
    curs = conn.execute("SELECT duty_id, person_id, link_id, period_start FROM liaison_duties WHERE campaign_id = %s"
                        " AND found_unmet_at IS NOT NULL AND resolved_at IS NULL", (campaign_id,))
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


def duty_commands(conn: Any, campaign_id: UUID, calendar: WorkCalendar, now: datetime) -> list[DutyCommand]:
    """What the round issues for one campaign at `now` (reminders, unmet records, resolutions)."""
    return [cmd for cmd, _ in planned_commands(conn, campaign_id, calendar, now)]


def planned_commands(conn: Any, campaign_id: UUID, calendar: WorkCalendar,
                     now: datetime) -> list[tuple[DutyCommand, li.Verdict | None]]:
    """`duty_commands` with the verdict each answers (None: a record whose duty is judged no more), for its cause."""
    judged = ld.judge(conn, campaign_id, calendar, now)
    records = ld.duty_records(conn, [v.duty_id for v in judged.verdicts])
    out: list[tuple[DutyCommand, li.Verdict | None]] = []
    for v in judged.verdicts:
        record = records.get(v.duty_id) or {}
        if li.needs_reminder(v, now, calendar.tz) and record.get("reminded_at") is None:
            out.append((_command(li.RemindLiaisonDuty, "remind", campaign_id, v.person_id, v.link_id, v.period.start), v))
        elif li.is_unmet(v) and record.get("found_unmet_at") is None:
            out.append((_command(li.RecordUnmetLiaisonDuty, "unmet", campaign_id, v.person_id, v.link_id,
                                 v.period.start), v))
        elif record.get("found_unmet_at") is not None and record.get("resolved_at") is None and not li.is_unmet(v):
            out.append((_command(li.ResolveLiaisonDuty, "resolve", campaign_id, v.person_id, v.link_id,
                                 v.period.start), v))
    seen = {v.duty_id for v in judged.verdicts}
    out += [(_command(li.ResolveLiaisonDuty, "resolve", campaign_id, r["person_id"], r["link_id"], r["period_start"]),
             None) for r in _open_records(conn, campaign_id) if r["duty_id"] not in seen and r["period_start"] is not None]
    return out


DutyCommand = li.RemindLiaisonDuty | li.RecordUnmetLiaisonDuty | li.ResolveLiaisonDuty


def _command(cls: type[DutyCommand], verb: str, campaign_id: UUID, person_id: UUID, link_id: UUID,
             period_start: date) -> DutyCommand:
    """The command for one duty, its id derived from the duty (so a repeat is the same command)."""
    return cls(command_id=f"liaison-{verb}:{li.duty_id_for(link_id, period_start)}", campaign_id=campaign_id,
               person_id=person_id, link_id=link_id, period_start=period_start)


def run_round(conn: Any, service: CommandService, actor: Actor, now: datetime) -> RoundReport:
    """One liaison round over every campaign with links; each command's outcome is counted, none stops the rest."""
    report = RoundReport()
    reader = StoreReader(service.app)
    for campaign_id in campaigns_with_links(conn):
        issue(service, actor, planned_commands(conn, campaign_id, calendar_for(reader, campaign_id), now), report)
    if report.written or report.failed:
        log.info("liaison_round", at=now.isoformat(), reminded=report.reminded, found_unmet=report.found_unmet,
                 resolved=report.resolved, already=report.already, skipped=report.skipped, failed=report.failed)
    return report


_COUNTS: dict[type[Command], str] = {li.RemindLiaisonDuty: "reminded", li.RecordUnmetLiaisonDuty: "found_unmet",
                                     li.ResolveLiaisonDuty: "resolved"}


def issue(service: CommandService, actor: Actor, planned: Iterable[tuple[DutyCommand, li.Verdict | None]],
          report: RoundReport) -> None:
    """Issue each command, caused by the event it answers (`infra.audit.causes.duty_cause`)."""
    for cmd, verdict in planned:
        try:
            result = service.handle(cmd, actor, causation_id=duty_cause(service.app, cmd, verdict))
        except DomainError as err:
            outcome = "already" if err.code in ALREADY else "skipped" if err.code in NOT_NOW else "failed"
            if outcome == "failed":
                log.warning("liaison_command_failed", command=type(cmd).__name__, code=err.code, details=err.details)
            setattr(report, outcome, getattr(report, outcome) + 1)
            continue
        outcome = "already" if result.replayed else _COUNTS[type(cmd)]
        setattr(report, outcome, getattr(report, outcome) + 1)
