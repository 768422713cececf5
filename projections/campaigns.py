"""The campaigns read model (创建活动列表): one row per campaign, for `GET /campaigns`.

A campaign itself is read from its own events (`GET /campaigns/{id}`); this table only answers
"which campaigns are there" without scanning the store, with when each was started (recorded).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.structure.campaign import CampaignRenamed, CampaignStarted
from projections.base import Projection, RecordedEvent
from projections.batch import ARRAY_OF_TEXT, Keyed

DDL = (
    "CREATE TABLE IF NOT EXISTS campaigns (campaign_id uuid PRIMARY KEY, name text NOT NULL,"
    " jurisdiction text NOT NULL, launched_on date NOT NULL, timezone text NOT NULL, goals text[] NOT NULL,"
    " started_at timestamptz NOT NULL)",
)


class CampaignsProjection(Projection):
    """One row per campaign, renamed in place."""

    name = "campaigns"
    tables = ("campaigns",)
    ddl = DDL
    batched = True

    def register(self) -> None:
        self.on(CampaignStarted)(campaign_started)
        self.on(CampaignRenamed)(campaign_renamed)

    def apply_batch(self, curs: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        """The rows `apply` leaves event by event, written with one or two statements (projections/batch.py)."""
        rows = Keyed("campaigns", "campaign_id", COLUMNS)
        for rec in events:
            e = rec.event
            if isinstance(e, CampaignStarted):
                rows.insert(campaign_id=e.campaign_id, name=e.name, jurisdiction=e.jurisdiction,
                            launched_on=e.launched_on, timezone=e.timezone, goals=list(e.goals),
                            started_at=e.meta.recorded_at)
            elif isinstance(e, CampaignRenamed):
                rows.update(e.campaign_id, name=e.name)
        rows.flush(curs)


COLUMNS = {"campaign_id": "uuid", "name": "text", "jurisdiction": "text", "launched_on": "date", "timezone": "text",
           "goals": ARRAY_OF_TEXT, "started_at": "timestamptz"}


def campaign_started(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, CampaignStarted)
    curs.execute("INSERT INTO campaigns (campaign_id, name, jurisdiction, launched_on, timezone, goals, started_at)"
                 " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 (e.campaign_id, e.name, e.jurisdiction, e.launched_on, e.timezone, list(e.goals), e.meta.recorded_at))


def campaign_renamed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, CampaignRenamed)
    curs.execute("UPDATE campaigns SET name = %s WHERE campaign_id = %s", (e.name, e.campaign_id))


def list_campaigns(conn: Any, only: UUID | None = None, started_by: datetime | None = None) -> list[dict[str, Any]]:
    """Every campaign (or only `only`) started by `started_by` (all when None), newest launch first."""
    curs = conn.execute(
        "SELECT campaign_id, name, jurisdiction, launched_on, timezone, goals, started_at FROM campaigns"
        " WHERE (%(only)s::uuid IS NULL OR campaign_id = %(only)s::uuid)"
        "   AND (%(by)s::timestamptz IS NULL OR started_at <= %(by)s::timestamptz)"
        " ORDER BY launched_on DESC, name, campaign_id", {"only": only, "by": started_by})
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]
