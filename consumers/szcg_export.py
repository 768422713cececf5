"""数字城管 export: problem events kept as one case row per problem, shaped for a city's platform.

`szcg_cases` holds the case number (案卷号 `DD` + report date + 6 digits), category, place,
responsible unit, state with the platform's stage name (立案/派遣/处置/核查/结案/作废) and the key
times. The 6 digits are the report's position in the notification log modulo 10⁶, so they are the
same on every rebuild and unique within a day below a million events a day. A row changes only
for an event of a higher aggregate version than the one it last took (last writer wins).
An event it cannot apply holds its partition (dead-letter policy `wait`): a version applied
after a missing one would make the missing one unappliable later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Cursor

from consumers.base import KafkaOptions, TrackedConsumer
from consumers.envelope import Delivery
from domain import problem as pr
from domain.kernel.base import DomainEvent
from domain.kernel.timefmt import local_day_stamp

DEFAULT_GROUP = "dudao-szcg-export"

DDL = (
    """CREATE TABLE IF NOT EXISTS szcg_cases (
        case_no text PRIMARY KEY, problem_id uuid NOT NULL UNIQUE, campaign_id uuid, category text NOT NULL,
        severity text, place_id uuid NOT NULL, description text, unit_id uuid, state text NOT NULL,
        stage text NOT NULL, parked bool NOT NULL DEFAULT false, reported_at timestamptz NOT NULL,
        assigned_at timestamptz, deadline timestamptz, closed_at timestamptz, updated_at timestamptz NOT NULL,
        version int NOT NULL, last_event_id text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS szcg_cases_updated ON szcg_cases (updated_at)",
)

# Problem state → the platform's stage (案件阶段).
STAGES = {
    "reported": "立案", "assigned": "派遣", "acknowledged": "处置", "rework": "处置",
    "rectification_submitted": "核查", "verified": "核查", "closed": "结案", "withdrawn": "作废", "merged": "作废",
}
STATE_OF: dict[type[DomainEvent], str] = {
    pr.ProblemAssigned: "assigned", pr.ProblemAcknowledged: "acknowledged",
    pr.RectificationSubmitted: "rectification_submitted", pr.RectificationVerified: "verified",
    pr.RectificationRejected: "rework", pr.ProblemClosed: "closed", pr.ProblemWithdrawn: "withdrawn",
    pr.ProblemMerged: "merged",
    pr.ProblemTransferred: "assigned",  # 转办: handed to the new unit, which has yet to sign for it
}
ENDING = (pr.ProblemClosed, pr.ProblemWithdrawn, pr.ProblemMerged)


def case_no(reported_at: datetime, notification_id: int) -> str:
    """The case number: DD, the report's date in China, and six digits from its log position."""
    return f"DD{local_day_stamp(reported_at)}{notification_id % 1_000_000:06d}"


def changes(event: DomainEvent) -> dict[str, Any]:
    """The columns one (non-report) problem event sets."""
    at = event.meta.occurred_at
    cols: dict[str, Any] = {}
    if (state := STATE_OF.get(type(event))) is not None:
        cols |= {"state": state, "stage": STAGES[state]}
    if isinstance(event, pr.ProblemAssigned):
        cols |= {"unit_id": event.unit_id, "assigned_at": at, "deadline": event.deadline}
    elif isinstance(event, pr.ProblemTransferred):
        cols |= {"unit_id": event.to_unit_id}
    elif isinstance(event, pr.ExtensionApproved):
        cols |= {"deadline": event.new_deadline}
    elif isinstance(event, pr.ProblemParked):
        cols |= {"parked": True}
    elif isinstance(event, pr.ProblemResumed):
        cols |= {"parked": False} | ({"deadline": event.new_deadline} if event.new_deadline else {})
    elif isinstance(event, ENDING):
        cols |= {"closed_at": at}
    return cols


class SzcgExport(TrackedConsumer):
    """Maintains `szcg_cases` from the problem topic."""

    ddl = DDL

    def __init__(self, database_url: str, kafka: KafkaOptions, *, group_id: str = DEFAULT_GROUP,
                 prefix: str = "dudao") -> None:
        super().__init__(database_url, kafka, group_id, [f"{prefix}.{pr.KIND}"])

    def wants(self, event_type: str) -> bool:
        return event_type.startswith(f"dudao.{pr.KIND}.")

    def handle(self, curs: Cursor[Any], delivery: Delivery) -> None:
        event = delivery.event
        if isinstance(event, pr.ProblemReported):
            self.reported(curs, delivery, event)
            return
        cols = changes(event) | {"version": delivery.version, "updated_at": event.meta.recorded_at,
                                 "last_event_id": delivery.event_id}
        sets = ", ".join(f"{c} = %s" for c in cols)  # column names come from `changes`, never from data
        curs.execute(f"UPDATE szcg_cases SET {sets} WHERE problem_id = %s AND version < %s",
                     (*cols.values(), delivery.originator_id, delivery.version))
        if curs.rowcount == 0:
            self.log.info("szcg_case_not_updated", problem_id=str(delivery.originator_id), version=delivery.version)

    def reported(self, curs: Cursor[Any], delivery: Delivery, e: pr.ProblemReported) -> None:
        curs.execute(
            "INSERT INTO szcg_cases (case_no, problem_id, campaign_id, category, severity, place_id, description,"
            " state, stage, reported_at, updated_at, version, last_event_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'reported', %s, %s, %s, %s, %s) ON CONFLICT (problem_id) DO NOTHING",
            (case_no(e.meta.occurred_at, delivery.notification_id), e.problem_id, e.campaign_id, e.category,
             str(e.severity), e.place_id, e.description, STAGES["reported"], e.meta.occurred_at,
             e.meta.recorded_at, delivery.version, delivery.event_id),
        )
