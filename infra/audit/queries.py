"""What the audit routes and commands ask, in one place: trails with causation chains, as-of and knowledge views,
escalation replay by case, item or campaign, and the dossier with its integrity proof.

`KINDS` maps the plural names used in paths and on the command line to aggregate kinds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from pydantic_core import to_jsonable_python

from domain.kernel.base import NotFound
from infra.audit import asof, chain, digests, dossier, replay as rp, verify as vf
from infra.audit.history import History, events_table
from infra.store.event_store import Dudao
from projections import trail as tr

KINDS: dict[str, tuple[str, ...]] = {
    "problems": ("problem",), "visits": ("visit",), "tasks": ("task",), "units": ("unit",), "persons": ("person",),
    "places": ("place",), "notices": ("notice",), "bulletins": ("bulletin",), "summons": ("summons",),
    "accountability_cases": ("accountability_case",), "campaigns": ("campaign",), "indicators": ("indicator",),
    "escalation_steps": ("escalation",), "liaisons": ("liaison",), "liaison_duties": ("liaison_duty",),
    "policies": ("campaign_policy", "escalation_policy", "liaison_policy"),
}
KIND_OF_NAME = {k: plural for plural, kinds in KINDS.items() for k in kinds}


def kinds_for(name: str) -> tuple[str, ...]:
    """Aggregate kinds for a plural (`problems`) or singular (`problem`) name."""
    if name in KINDS:
        return KINDS[name]
    if name in KIND_OF_NAME:
        return (name,)
    raise NotFound("unknown_kind", "未知的对象类别", f"unknown kind {name!r}; one of {', '.join(KINDS)}")


def existing(app: Dudao, kinds: tuple[str, ...], entity_id: UUID) -> tuple[str, UUID | None]:
    """The entity's kind and campaign (404 unless it exists and is of one of `kinds`)."""
    events = History(app).of(entity_id)
    if not events or events[0].kind not in kinds:
        raise NotFound(f"{kinds[0]}_not_found", "对象不存在", f"{kinds[0]} not found", id=str(entity_id))
    first = events[0].event
    campaign = first.meta.campaign_id or getattr(first, "campaign_id", None)
    return events[0].kind, campaign if isinstance(campaign, UUID) else None


def trail(conn: Any, entity_id: UUID, *, since: datetime | None = None, until: datetime | None = None,
          by: str = "recorded", limit: int = 200, offset: int = 0) -> dict[str, Any]:
    rows = tr.trail(conn, entity_id, since=since, until=until, by=by, limit=limit, offset=offset)
    chains = tr.causation_chains(conn, rows)
    out = []
    for r in rows:
        chain_rows = chains.get(r["event_uuid"], [])
        out.append({**{k: r[k] for k in ("notification_id", "aggregate_id", "version", "kind", "event_type", "actor",
                                          "occurred_at", "recorded_at", "reason", "command_id", "correlation_id",
                                          "causation_id", "relations", "payload")},
                    "event_id": f"{r['aggregate_id']}:{r['version']}",
                    "causation_chain": [{"event_id": f"{c['aggregate_id']}:{c['version']}", "type": c["event_type"],
                                         "actor": c["actor"], "recorded_at": c["recorded_at"],
                                         "command_id": c["command_id"]} for c in chain_rows],
                    "root_command_id": chain_rows[-1]["command_id"] if chain_rows else r["command_id"]})
    return {"entity_id": str(entity_id), "total": tr.trail_size(conn, entity_id), "limit": limit, "offset": offset,
            "rows": to_jsonable_python(out)}


def verify(app: Dudao, database_url: str, key: digests.SigningKey | digests.Keyring | None, *,
           extra: list[digests.Digest] | None = None,
           start: int = 0, upto: int | None = None, progress: vf.Progress | None = None) -> vf.Report:
    with psycopg.connect(database_url) as conn:
        chain.create_tables(conn)
        conn.commit()
        return vf.verify(conn, events_table(app), key=key, extra_digests=extra or [], start=start, upto=upto,
                         progress=progress)


def replay_scope(app: Dudao, conn: Any, *, case: UUID | None = None, item: UUID | None = None,
                 campaign: UUID | None = None, since: datetime | None = None, until: datetime,
                 grace: timedelta = rp.DEFAULT_GRACE) -> rp.Replay:
    """Replay the escalations of one case, one work item or one campaign's period."""
    history = History(app)
    if case is not None:
        _, campaign_id = existing(app, ("accountability_case",), case)
        items = rp.items_of_case(history, case)
    elif item is not None:
        row = conn.execute("SELECT item_kind, campaign_id FROM work_items WHERE item_id = %s", (item,)).fetchone()
        kind, campaign_id = (row["item_kind"], row["campaign_id"]) if row else existing(app, ("problem", "notice"), item)
        items = [(kind, item)]
    elif campaign is not None:
        campaign_id = campaign
        items = rp.items_of_campaign(conn, campaign, since, until)
    else:
        raise NotFound("replay_scope_missing", "请指定案件、督办对象或创建活动", "give a case, an item or a campaign")
    assert campaign_id is not None
    return rp.replay(app, conn, items, campaign_id, until, grace)


def dossier_html(app: Dudao, database_url: str, conn: Any, case_id: UUID, now: datetime,
                 key: digests.SigningKey | digests.Keyring | None) -> str:
    """The case's dossier, with a verification of the chain from the case's first related event to the latest digest."""
    existing(app, ("accountability_case",), case_id)
    with psycopg.connect(database_url) as c:
        chain.create_tables(c)
        digests.create_table(c)
        c.commit()
        last = digests.latest(c)
    upto = last[0].position if last else None
    proof = verify(app, database_url, key, upto=upto)
    return dossier.build(app, conn, case_id, now, proof, last[0] if last else None, last[1] if last else None)


def as_of(app: Dudao, kinds: tuple[str, ...], entity_id: UUID, at: datetime, basis: str) -> dict[str, Any]:
    return asof.entity_as_of(app, kinds, entity_id, at, basis)
