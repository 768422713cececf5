"""Queries over HTTP (GET): health, single entities from the event store, matrix and structure lists
from the projections.

Entities are folded from their own events, so they are never stale. Projection reads report
`projection_position` (the log position their rows reflect) next to `log_head`, so a client sees
how far behind the read model is. A campaign-bound token only sees its campaign.
"""

from __future__ import annotations

import socket
from datetime import datetime, tzinfo
from typing import Any, Callable, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from domain.kernel.base import DomainError, NotFound, event_registry
from domain.kernel.instants import is_in_sane_range
from domain.kernel.calendar import CHINA_TZ
from infra.http.auth import Grant, current_grant, ensure_campaign
from infra.commands.service import StoreReader
from infra.http.errors import error_responses
from infra.http import replayed
from infra.http.params import AsOf, ReadInstant
from infra.http.timestamps import respond_in
from infra.store.event_store import Dudao
from projections import matrix as mx
from projections import structure as st

# Kinds readable at /{plural}/{id}, with their Chinese names for the 404 message.
ENTITY_KINDS = {
    "campaign": ("campaigns", "创建活动"), "unit": ("units", "单位"), "place": ("places", "地点"),
    "person": ("persons", "人员"), "indicator": ("indicators", "测评指标"), "task": ("tasks", "任务"),
}
SCOPE_KINDS = ("place", "indicator", "task")
T = TypeVar("T")
MATRIX_MODELS = ("matrix", "structure", "liaison_duties")  # the matrix shows liaison leaders from their links

ERRORS = error_responses(401, 403, 404)  # a read's own; 400, 413, 422 and 503 are every route's (the app's)


def load_state(app: Dudao, kind: str, aggregate_id: UUID) -> tuple[Any, int] | None:
    """An aggregate's folded state and version, or None when no aggregate of `kind` has this id.

    Read by the command service's own `StoreReader`, so a query folds exactly as a command does.
    """
    reader = StoreReader(app)
    state = reader.get(kind, aggregate_id, object)
    return None if state is None else (state, reader.version(aggregate_id))


def existing(app: Dudao, kind: str, aggregate_id: UUID) -> tuple[Any, int]:
    found = load_state(app, kind, aggregate_id)
    if found is None:
        zh = ENTITY_KINDS.get(kind, (kind, kind))[1]
        raise NotFound(f"{kind}_not_found", f"{zh}不存在", f"{kind} not found", id=str(aggregate_id))
    return found


def campaign_of(state: Any) -> UUID | None:
    value = getattr(state, "campaign_id", None)
    return value if isinstance(value, UUID) else None


class DatabaseHealth(BaseModel):
    ok: bool
    log_head: int | None


class BrokerHealth(BaseModel):
    ok: bool | None
    bootstrap: str | None


class Health(BaseModel):
    status: str
    database: DatabaseHealth
    broker: BrokerHealth


def broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when a TCP connection to any of the bootstrap servers succeeds."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port or 9092)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def database_health(request: Request) -> DatabaseHealth:
    try:
        with request.app.state.read_pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
        return DatabaseHealth(ok=True, log_head=request.app.state.system.app.recorder.max_notification_id() or 0)
    except Exception:  # noqa: BLE001  # any failure here is reported, not raised: that is what /health is for
        return DatabaseHealth(ok=False, log_head=None)


router = APIRouter()


@router.get("/health", response_model=Health, tags=["health"])
def health(request: Request) -> Health:
    """The state of the database and broker connections (always 200; `status` says ok or degraded)."""
    database = database_health(request)
    bootstrap = request.app.state.kafka_bootstrap
    broker = BrokerHealth(ok=broker_reachable(bootstrap) if bootstrap else None, bootstrap=bootstrap)
    ok = database.ok and broker.ok is not False
    return Health(status="ok" if ok else "degraded", database=database, broker=broker)


def entity_endpoint(kind: str) -> Callable[..., dict[str, Any]]:
    def endpoint(entity_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                 grant: Grant = Depends(current_grant)) -> dict[str, Any]:
        app = request.app.state.system.app
        state, version = existing(app, kind, entity_id)
        if grant.campaign_id is not None:
            ensure_campaign(grant, campaign_of(state))
        if as_of is not None:
            at = instant(as_of, timezone_of(app, state), request.app.state.system.clock)
            return replayed.entity_at(app, kind, ENTITY_KINDS[kind][1], entity_id, at)
        return {**jsonable_encoder(state), "version": version}

    endpoint.__name__ = f"get_{kind}"
    endpoint.__doc__ = (f"The {kind} ({ENTITY_KINDS[kind][1]}) folded from its events, with its version; with `as_of`, "
                        "folded from the events recorded by then, with the names then in force (`names_in_force`).")
    return endpoint


def timezone_of(app: Dudao, state: Any) -> str:
    """The time zone a naive `as_of` about this entity is read in: its campaign's (China time when it has none)."""
    own = getattr(state, "timezone", None)  # a campaign
    if isinstance(own, str):
        return own
    campaign_id = campaign_of(state)
    found = load_state(app, "campaign", campaign_id) if campaign_id is not None else None
    return str(found[0].timezone) if found is not None else "Asia/Shanghai"


def visible_campaign(request: Request, grant: Grant, campaign_id: UUID) -> Any:
    """The campaign's state, after checking it exists (404) and the token may see it (403); the response's instants
    are then rendered in its time zone (`infra.http.timestamps`)."""
    ensure_campaign(grant, campaign_id)
    state, _ = existing(request.app.state.system.app, "campaign", campaign_id)
    respond_in(request, state.timezone)
    return state


def instant(as_of: datetime | None, timezone: str, clock: Callable[[], datetime]) -> datetime:
    """`as_of` made timezone-aware (naive → the campaign's zone); the clock's now when absent.

    An instant outside 2000–2100 once in its zone is refused (422 `time_out_of_range`): no read model,
    calendar or export can hold it.
    """
    if as_of is None:
        return clock()
    at = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=zone(timezone))
    if not is_in_sane_range(at):
        raise DomainError("time_out_of_range", "查询时间须在 2000-01-01 至 2100-01-01（UTC）之间",
                          "the instant to read at must lie between 2000-01-01 and 2100-01-01 (UTC)")
    return at


def zone(name: str) -> tzinfo:
    """The campaign's time zone; China time when the stored name is not a known zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return CHINA_TZ


def snapshot(request: Request, read_models: tuple[str, ...], read: Callable[[Any], T]) -> tuple[T, dict[str, int]]:
    """`read(conn)` in one REPEATABLE READ snapshot, with the read models' (lowest) position and the log head."""
    with request.app.state.read_pool.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute("SELECT min(position) AS position FROM dudao_projection_positions WHERE name = ANY(%s)",
                           (list(read_models),)).fetchone()
        result = read(conn)
    head = request.app.state.system.app.recorder.max_notification_id() or 0
    return result, {"projection_position": int(row["position"] or 0) if row else 0, "log_head": head}


def read_consistently(request: Request, read_models: tuple[str, ...], read: Callable[[Any], Any]) -> dict[str, Any]:
    """A list body from one `snapshot`: its rows (JSON-ready), `projection_position` and `log_head`."""
    rows, positions = snapshot(request, read_models, read)
    return {"rows": jsonable_encoder(rows), **positions}


@router.get("/campaigns/{campaign_id}/matrix", tags=["matrix"], responses=ERRORS)
def campaign_matrix(campaign_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                    basis: str = Query("stored", pattern="^(stored|recorded)$",
                                       description="with as_of: stored (every assignment the store holds, in force "
                                                   "then) or recorded (only those recorded by then)"),
                    grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The responsibility matrix (责任矩阵): one row per (scope, party, role) in force at `as_of` (default now).

    Now: from the matrix projection (`projection_position`, `log_head`). With `as_of`: replayed from the stored
    events, with the names then in force (`source: event_store`; `infra.http.replayed`)."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    if as_of is not None:
        return {"campaign_id": str(campaign_id), "as_of": at.isoformat(),
                **replayed.matrix_at(request.app.state.system.app, campaign_id, at, basis)}
    body = read_consistently(request, MATRIX_MODELS,
                             lambda conn: mx.matrix(conn, campaign_id, at))
    return {"campaign_id": str(campaign_id), "as_of": at.isoformat(), "source": "projection", **body}


def structure_endpoint(noun: str, list_rows: Callable[[Any, UUID], list[dict[str, Any]]]) -> Callable[..., Any]:
    def endpoint(campaign_id: UUID, request: Request, grant: Grant = Depends(current_grant)) -> dict[str, Any]:
        visible_campaign(request, grant, campaign_id)
        body = read_consistently(request, (st.StructureProjection.name,), lambda conn: list_rows(conn, campaign_id))
        return {"campaign_id": str(campaign_id), **body}

    endpoint.__name__ = f"list_{noun}"
    endpoint.__doc__ = f"The campaign's {noun} as the structure projection has them."
    return endpoint


def responsible_endpoint(kind: str) -> Callable[..., Any]:
    def endpoint(entity_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                 grant: Grant = Depends(current_grant)) -> dict[str, Any]:
        state, _ = existing(request.app.state.system.app, kind, entity_id)
        campaign_id = campaign_of(state)
        ensure_campaign(grant, campaign_id)
        campaign = visible_campaign(request, grant, campaign_id) if campaign_id else None
        at = instant(as_of, campaign.timezone if campaign else "UTC", request.app.state.system.clock)
        body = read_consistently(request, MATRIX_MODELS,
                                 lambda conn: mx.responsible_for(conn, kind, entity_id, at))
        return {"scope_kind": kind, "scope_id": str(entity_id), "as_of": at.isoformat(), **body}

    endpoint.__name__ = f"responsible_for_{kind}"
    endpoint.__doc__ = f"Who answers for this {kind} (谁负责) at `as_of`, lead (牵头) first."
    return endpoint


def query_router() -> APIRouter:
    """Health (open) plus every authenticated GET route; entity routes only for kinds that exist."""
    kinds = {cls.kind for cls in event_registry().values()}
    api = APIRouter()
    api.include_router(router)
    for noun, list_rows in (("units", st.list_units), ("places", st.list_places), ("persons", st.list_persons)):
        api.add_api_route(f"/campaigns/{{campaign_id}}/{noun}", structure_endpoint(noun, list_rows),
                          methods=["GET"], tags=["structure"], responses=ERRORS)
    for kind, (plural, _) in ENTITY_KINDS.items():
        if kind not in kinds:
            continue
        api.add_api_route(f"/{plural}/{{entity_id}}", entity_endpoint(kind), methods=["GET"],
                          tags=["entities"], responses=ERRORS)
        if kind in SCOPE_KINDS:
            api.add_api_route(f"/{plural}/{{entity_id}}/responsible", responsible_endpoint(kind),
                              methods=["GET"], tags=["matrix"], responses=ERRORS)
    return api
