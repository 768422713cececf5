"""The HTTP API application (FastAPI): `create_app(system)` wires routes, auth, errors and logging.

One ASGI middleware wraps every request: it takes or makes the correlation id (`X-Correlation-ID`,
echoed back), refuses bodies over 1 MiB (413) before anything parses them, answers 503 at once while
the database gate is closed (PostgreSQL unreachable; see `infra.http.availability`), turns an
unexpected exception into a logged 500, and logs one line per request.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from pathlib import Path
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4
from weakref import WeakKeyDictionary

import structlog
from fastapi import APIRouter, FastAPI
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.http.auth import ensure_tokens_table
from infra.http.availability import DatabaseGate
from infra.http.commands import command_router
from infra.http.errors import (
    COMMON_ERRORS, database_unavailable, error_response, install_error_handlers, internal_error, too_large,
)
from infra.http.params import RefuseControlCharacters, RestoreUnencodedPlus
from infra.http.queries import query_router
from infra.http.timestamps import LocalTimestamps
from infra.http.ui import PREFIX as DASHBOARD_PREFIX, mount_dashboard
from domain.problem.events import MAX_EVIDENCE_BYTES
from infra.bootstrap import System, load_handlers
from infra.settings import Settings
from infra.store.event_store import DEFAULT_TIMEOUTS
from infra.store.uploads import EvidenceStore, ensure_evidence_table

log = structlog.get_logger("dudao.http")

MAX_BODY_BYTES = 1024 * 1024
CORRELATION_HEADER = "x-correlation-id"
READ_POOL_WAIT_S = 3.0  # a read waits this long for a pooled connection before its 503
# Give up a failed reconnection this soon, so after an outage the pool connects again on demand
# instead of waiting out a backoff that doubled all through the outage (the store's pool has the same bound).
READ_POOL_RECONNECT_S = float(DEFAULT_TIMEOUTS.reconnect_s)
READ_POOL_CHECK_IDLE_S = 1.0  # a read connection last taken longer ago than this is pinged before use
# Paths that answer without the database (or report on it themselves): the gate lets them through.
UNGATED_PATHS = frozenset({"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def create_app(system: System, *, kafka_bootstrap: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
               read_pool_size: int = 10, uploads_dir: Path | None = None) -> FastAPI:
    """The API over one bootstrapped system; reads go through its own small connection pool.

    The caller (the composition root) passes what it read from the settings: the broker to report
    on in /health and the photo directory (default: the product default `var/uploads`). Routes find
    them, and the system, on `app.state`.
    """
    load_handlers()
    gate = DatabaseGate(system.database_url)

    last_taken: WeakKeyDictionary[Connection[Any], float] = WeakKeyDictionary()

    def check(conn: Connection[Any]) -> None:
        """The pool's pre-use check, on a connection that sat in the pool for a while (`READ_POOL_CHECK_IDLE_S`); a
        failure makes the gate look at the database at once. A connection taken again within that time was working
        a moment ago: pinging it would cost every request a round trip (the token lookup's connection is taken for
        each command) to learn what the request itself finds out (a failure answers 503 and alerts the gate)."""
        now = time.monotonic()
        taken_before, last_taken[conn] = last_taken.get(conn), now
        if taken_before is not None and now - taken_before < READ_POOL_CHECK_IDLE_S:
            return
        try:
            ConnectionPool.check_connection(conn)
        except Exception as exc:
            gate.suspect(exc)
            raise

    pool = ConnectionPool(system.database_url, min_size=1, max_size=read_pool_size, timeout=READ_POOL_WAIT_S,
                          open=True, kwargs={"row_factory": dict_row, "autocommit": True}, check=check,
                          reconnect_timeout=READ_POOL_RECONNECT_S, name="dudao-read")
    with pool.connection() as conn:
        ensure_tokens_table(conn)
        ensure_evidence_table(conn)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        gate.close()
        pool.close()

    app = FastAPI(title="dudao 督导 API", version="0.1.0", lifespan=lifespan, responses=COMMON_ERRORS,
                  description="创建活动督导：指挥体系、责任分工与责任矩阵。所有写操作以访问令牌对应的身份记录。")
    app.state.system = system
    app.state.read_pool = pool
    app.state.database_gate = gate
    app.state.kafka_bootstrap = kafka_bootstrap
    app.state.evidence_store = EvidenceStore(uploads_dir or Settings().uploads_dir)
    install_error_handlers(app)
    app.include_router(command_router())
    app.include_router(query_router())
    for router in feature_routers():
        app.include_router(router)
    mount_dashboard(app)  # the 督导驾驶舱 pages under /ui/: static files; their data comes from the routes above
    app.add_middleware(LocalTimestamps)  # every instant of a JSON body in the campaign's zone, with its offset
    app.add_middleware(RestoreUnencodedPlus)  # ?as_of=...T09:00:00 08:00 meant +08:00
    app.add_middleware(RefuseControlCharacters)  # inside RequestMiddleware: logged, with its correlation id
    app.add_middleware(RequestMiddleware, max_body_bytes=max_body_bytes, gate=gate)
    return app


class RequestMiddleware:
    """Correlation id, body size limit, the database gate, last-resort 500, and the one log line per request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, gate: DatabaseGate | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        correlation_id = parse_uuid(headers.get(CORRELATION_HEADER))
        scope.setdefault("state", {})["correlation_id"] = correlation_id or uuid4()
        response = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.update(status=message["status"], started=True)
                cid = str(scope["state"]["correlation_id"]).encode()
                message["headers"] = [*message.get("headers", []), (CORRELATION_HEADER.encode(), cid)]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=str(scope["state"]["correlation_id"])):
            try:
                await self._dispatch(scope, receive, send_with_id, headers, correlation_id)
            except Exception:
                log.exception("unhandled_error", method=scope["method"], path=scope["path"])
                if not response["started"]:
                    await internal_error()(scope, receive, send_with_id)
            finally:
                log.info("request", method=scope["method"], path=scope["path"], status=response["status"],
                         duration_ms=round((time.perf_counter() - started) * 1000, 2))

    def limit_for(self, path: str) -> int:
        """Photo uploads may be as large as the domain allows (plus multipart framing); all else 1 MiB."""
        if path == "/evidence":
            return max(self.max_body_bytes, MAX_EVIDENCE_BYTES + 64 * 1024)
        return self.max_body_bytes

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, headers: Headers,
                        correlation_id: UUID | None) -> None:
        if headers.get(CORRELATION_HEADER) is not None and correlation_id is None:
            await error_response(400, "invalid_correlation_id", "X-Correlation-ID 必须是 UUID",
                                 "X-Correlation-ID must be a UUID")(scope, receive, send)
            return
        if self.gate is not None and self.gate.closed and not ungated(scope["path"]):
            await database_unavailable()(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if declared_length(headers) > limit:
            await too_large(limit)(scope, receive, send)
            return
        body = await read_body(receive, limit)
        if body is None:
            await too_large(limit)(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)


def ungated(path: str) -> bool:
    """Paths served without the database: health, metrics, the API docs and the dashboard's static files (whose
    pages then show the API's 503 in words)."""
    return path in UNGATED_PATHS or path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")


def feature_routers() -> list[APIRouter]:
    """The `router` of every `infra/api/routes_*.py` module (problems, escalation, ...)."""
    import infra.http

    modules = sorted(i.name for i in pkgutil.iter_modules(infra.http.__path__) if i.name.startswith("routes_"))
    return [importlib.import_module(f"infra.http.{name}").router for name in modules]


def parse_uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def declared_length(headers: Headers) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it exceeds `limit` bytes (chunked bodies too)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # client went away; let the app see an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the buffered body to the app once, then defers to the real one."""
    delivered = False

    async def receive_again() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
