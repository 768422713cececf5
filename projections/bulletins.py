"""Bulletins (通报), summons (约谈) and accountability cases (问责) as lists, and what rankings already led to.

`bulletins` keeps each bulletin's lists (红榜/黑榜/红黄旗/listed escalations) so the next draft
leaves out escalations already listed in an issued bulletin, and the escalator can walk the
history of 黑榜 (a correction's list replaces the list it corrects). `proposals` holds every
summons and case with its status and basis; a proposal made because of a bulletin's 黑榜 names
that bulletin in its basis, which is how the escalator knows the consequence was proposed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.consequences import accountability as ac
from domain.consequences import bulletin as bu
from domain.consequences import summons as su
from domain.kernel.base import DomainEvent
from projections.base import Projection, RecordedEvent

Row = dict[str, Any]

DDL = (
    """CREATE TABLE IF NOT EXISTS bulletins (
        bulletin_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, period_start date NOT NULL, period_end date NOT NULL,
        title text NOT NULL, body_zh text NOT NULL, red_list jsonb NOT NULL, black_list jsonb NOT NULL,
        flags jsonb NOT NULL, listed_escalations jsonb NOT NULL, listed_step_ids uuid[] NOT NULL DEFAULT '{}',
        liaison_duties jsonb NOT NULL DEFAULT '[]', liaison_step_ids uuid[] NOT NULL DEFAULT '{}',
        corrects uuid NULL, drafted_at timestamptz NOT NULL, issued_at timestamptz NULL,
        issued_notification bigint NULL, acknowledged_by uuid[] NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS bulletins_campaign ON bulletins (campaign_id, issued_at)",
    # The 挂钩联系履职 section, for databases whose bulletins table predates it.
    "ALTER TABLE bulletins ADD COLUMN IF NOT EXISTS liaison_duties jsonb NOT NULL DEFAULT '[]'",
    "ALTER TABLE bulletins ADD COLUMN IF NOT EXISTS liaison_step_ids uuid[] NOT NULL DEFAULT '{}'",
    """CREATE TABLE IF NOT EXISTS proposals (
        kind text NOT NULL, id uuid NOT NULL, campaign_id uuid NOT NULL, subject_kind text NOT NULL,
        subject_id uuid NOT NULL, subject_name text NULL, convener text NULL, reason_zh text NOT NULL,
        source text NOT NULL, basis jsonb NOT NULL, basis_ids uuid[] NOT NULL, status text NOT NULL,
        proposed_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, scheduled_at timestamptz NULL,
        minutes_zh text NULL, commitments text[] NOT NULL DEFAULT '{}', measures text[] NOT NULL DEFAULT '{}',
        PRIMARY KEY (kind, id))""",
    "CREATE INDEX IF NOT EXISTS proposals_campaign ON proposals (campaign_id, kind, status)",
    "CREATE INDEX IF NOT EXISTS proposals_basis ON proposals USING gin (basis_ids)",
)

_LISTS = ("title", "body_zh", "red_list", "black_list", "flags", "listed_escalations", "liaison_duties")


class BulletinsProjection(Projection):
    """通报、约谈、问责 lists."""

    name = "bulletins"
    tables = ("bulletins", "proposals")
    ddl = DDL

    def register(self) -> None:
        self.on(bu.BulletinDrafted)(drafted)
        self.on(bu.BulletinEdited)(edited)
        self.on(bu.BulletinIssued)(issued)
        self.on(bu.BulletinAcknowledged)(acknowledged)
        self.on(su.SummonsProposed, ac.AccountabilityProposed, ac.AccountabilityOpened)(proposed)
        self.on(su.SummonsScheduled, su.SummonsHeld, su.SummonsCancelled, ac.AccountabilityProposalDeclined,
                ac.MeasureDecided, ac.AppealFiled, ac.AppealDecided, ac.AccountabilityClosed)(progressed)


def _list_values(e: DomainEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _LISTS:
        value = getattr(e, name, None)
        if value is None:
            continue
        out[name] = value if isinstance(value, str) else Jsonb([v.model_dump(mode="json") for v in value])
        if name == "listed_escalations":
            out["listed_step_ids"] = [v.step_id for v in value]
        if name == "liaison_duties":
            out["liaison_step_ids"] = [step for v in value for step in v.step_ids]
    return out


def drafted(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, bu.BulletinDrafted)
    cols = {"bulletin_id": e.bulletin_id, "campaign_id": e.campaign_id, "period_start": e.period_start,
            "period_end": e.period_end, "corrects": e.corrects, "drafted_at": e.meta.recorded_at, **_list_values(e)}
    curs.execute(f"INSERT INTO bulletins ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
                 " ON CONFLICT (bulletin_id) DO NOTHING", tuple(cols.values()))


def edited(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, bu.BulletinEdited)
    cols = _list_values(e)
    if cols:
        sets = ", ".join(f"{c} = %s" for c in cols)
        curs.execute(f"UPDATE bulletins SET {sets} WHERE bulletin_id = %s", (*cols.values(), e.bulletin_id))


def issued(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    curs.execute("UPDATE bulletins SET issued_at = %s, issued_notification = %s WHERE bulletin_id = %s",
                 (e.meta.recorded_at, rec.notification_id, e.aggregate_id))


def acknowledged(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, bu.BulletinAcknowledged)
    curs.execute("UPDATE bulletins SET acknowledged_by = array_append(acknowledged_by, %s)"
                 " WHERE bulletin_id = %s AND NOT (%s = ANY(acknowledged_by))", (e.unit_id, e.bulletin_id, e.unit_id))


def proposed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, (su.SummonsProposed, ac.AccountabilityProposed, ac.AccountabilityOpened))
    kind = su.SUMMONS if isinstance(e, su.SummonsProposed) else ac.CASE
    status = "open" if isinstance(e, ac.AccountabilityOpened) else "proposed"
    basis = [b.model_dump(mode="json") for b in e.basis]
    updated = curs.execute(
        "UPDATE proposals SET status = %s, updated_at = %s, basis = basis || %s, basis_ids = basis_ids || %s"
        " WHERE kind = %s AND id = %s", (status, e.meta.recorded_at, Jsonb(basis), [b.id for b in e.basis], kind,
                                         e.aggregate_id))
    if updated.rowcount:
        return
    curs.execute(
        "INSERT INTO proposals (kind, id, campaign_id, subject_kind, subject_id, subject_name, convener, reason_zh,"
        " source, basis, basis_ids, status, proposed_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s)",
        (kind, e.aggregate_id, e.campaign_id, e.subject.party_kind, e.subject.party_id, e.subject.name,
         getattr(e, "convener", None), e.reason_zh, getattr(e, "source", "manual"), Jsonb(basis),
         [b.id for b in e.basis], status, e.meta.recorded_at, e.meta.recorded_at))


_STATUS: dict[type[DomainEvent], str] = {
    su.SummonsScheduled: "scheduled", su.SummonsHeld: "held", su.SummonsCancelled: "cancelled",
    ac.AccountabilityProposalDeclined: "declined", ac.MeasureDecided: "decided", ac.AppealFiled: "appealed",
    ac.AppealDecided: "appeal_decided", ac.AccountabilityClosed: "closed",
}


def progressed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    kind = su.SUMMONS if e.kind == su.SUMMONS else ac.CASE
    extra: dict[str, Any] = {}
    if isinstance(e, su.SummonsScheduled):
        extra["scheduled_at"] = e.at
    if isinstance(e, su.SummonsHeld):
        extra.update(minutes_zh=e.minutes_zh, commitments=list(e.commitments))
    if isinstance(e, (ac.MeasureDecided, ac.AppealDecided)) and (e.measures or isinstance(e, ac.MeasureDecided)):
        extra["measures"] = list(e.measures)
    if isinstance(e, ac.AppealDecided) and e.outcome == "overturned":
        extra["measures"] = []
    sets = ", ".join(f"{c} = %s" for c in ("status", "updated_at", *extra))
    curs.execute(f"UPDATE proposals SET {sets} WHERE kind = %s AND id = %s",
                 (_STATUS[type(e)], e.meta.recorded_at, *extra.values(), kind, e.aggregate_id))


# Queries ------------------------------------------------------------------------------------------


def _rows(conn: Any, sql: str, params: Any) -> list[Row]:
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


def list_bulletins(conn: Any, campaign_id: UUID) -> list[Row]:
    return _rows(conn, "SELECT * FROM bulletins WHERE campaign_id = %s ORDER BY drafted_at, bulletin_id",
                 (campaign_id,))


def listed_step_ids(conn: Any, campaign_id: UUID) -> set[UUID]:
    """Level-3 escalations already listed in an issued bulletin, either section (not listed again)."""
    rows = _rows(conn, "SELECT DISTINCT unnest(listed_step_ids || liaison_step_ids) AS step_id FROM bulletins"
                       " WHERE campaign_id = %s AND issued_at IS NOT NULL", (campaign_id,))
    return {r["step_id"] for r in rows}


def issued_black_lists(conn: Any) -> list[Row]:
    """Every issued bulletin with its 黑榜 unit ids, oldest first, corrections replacing the corrected list."""
    rows = _rows(conn, "SELECT bulletin_id, campaign_id, corrects, black_list, issued_at, period_start, period_end FROM bulletins"
                       " WHERE issued_at IS NOT NULL ORDER BY issued_notification", ())
    corrected = {r["corrects"] for r in rows if r["corrects"] is not None}
    return [r for r in rows if r["bulletin_id"] not in corrected]


def proposals_naming(conn: Any, basis_id: UUID) -> list[Row]:
    return _rows(conn, "SELECT kind, id, subject_id, source FROM proposals WHERE %s = ANY(basis_ids)", (basis_id,))


def list_proposals(conn: Any, campaign_id: UUID, kind: str, status: str | None = None) -> list[Row]:
    return _rows(conn, "SELECT * FROM proposals WHERE campaign_id = %s AND kind = %s"
                       " AND (%s::text IS NULL OR status = %s::text) ORDER BY proposed_at, id",
                 (campaign_id, kind, status, status))
