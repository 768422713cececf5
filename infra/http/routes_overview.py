"""The HQ overview's (总览) light board: open problems by traffic light (三色), in total, per grid and per sub-command.

The dashboard's 总览 (`infra.http.ui`) shows these counts as charts; no other read gives them in one piece short
of the whole ledger, which for a city-sized campaign (100k problems) is too large to ship to a browser every
poll. Each light is the ledger's own (`projections.ledger`, judged by the domain's clock rules at `as_of`), and the
rows are the ledger's rows the token may see (`infra.http.scope`), so every count here is a count of ledger rows
a click on it lists. `trend_until` is the last moment a problem fell due by `as_of`: the weekly 结案率 trend ends in
its week, so a campaign whose work has stopped still shows its last weeks rather than empty ones.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder

from infra.http.auth import Grant, current_grant
from infra.http.params import AsOf, ReadInstant
from infra.http.queries import ERRORS, snapshot
from infra.http.routes_problems import LEDGER_PROJECTIONS, ledger_view
from projections import ledger as lg

router = APIRouter(tags=["ledger"])

LIGHTS = ("red", "yellow", "green", "unassigned")  # unassigned: reported, not yet handed to a unit (no clock yet)


def light_of(row: dict[str, Any]) -> str:
    return row["light"] or "unassigned"


def tally(rows: list[dict[str, Any]], key: str, name: str) -> list[dict[str, Any]]:
    """Per group (`key`, `name`): open problems and how many show each light; largest red count first."""
    groups: dict[Any, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r[key], {"id": r[key], "name": r[name], "open": 0, **dict.fromkeys(LIGHTS, 0)})
        g["open"] += 1
        g[light_of(r)] += 1
    return sorted(groups.values(), key=lambda g: (-g["red"], -g["open"], g["name"] or "", str(g["id"])))


@router.get("/campaigns/{campaign_id}/ledger/lights", responses=ERRORS)
def ledger_lights(campaign_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                  grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """Open problems (未销号) by light at `as_of` (default now): the totals, per grid (网格) and per sub-command
    (分指挥部; `id` null: a unit under none), counted from the ledger rows this token may see; and `trend_until`,
    the last deadline that had passed by then."""
    view = ledger_view(request, grant, campaign_id, as_of)

    def read(conn: Any) -> tuple[list[dict[str, Any]], datetime | None]:
        rows = view.seen.rows(lg.open_ledger(conn, campaign_id, now=view.at, calendar=view.calendar))
        return rows, lg.latest_deadline(conn, campaign_id, view.at)

    (rows, until), positions = snapshot(request, LEDGER_PROJECTIONS, read)
    lights = Counter(light_of(r) for r in rows)
    return jsonable_encoder({
        "campaign_id": campaign_id, "as_of": view.at, "open": len(rows),
        "by_light": {k: lights.get(k, 0) for k in LIGHTS}, "overdue": sum(bool(r["overdue"]) for r in rows),
        "by_grid": tally(rows, "grid_id", "grid_name"), "by_sub_command": tally(rows, "sub_command_id", "sub_command_name"),
        "trend_until": until, **positions})
