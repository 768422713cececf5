"""One time convention in every response (时间格式): ISO 8601 in the campaign's time zone, with its offset.

Bodies are built from many sources — states folded from events (pydantic renders UTC as `Z`), rows read from
PostgreSQL (the session's zone), instants the route computed in the campaign's zone — and one body used to mix
`2021-12-14T01:00:00Z` with `2021-12-14T09:00:00+08:00`. So every JSON response passes through here: each string
that is a whole ISO 8601 date-time with an offset (or `Z`) is re-rendered as the same instant in the zone the route
answered for — the campaign's (`respond_in`, called when a route reads a campaign), else the product's default,
China time (Asia/Shanghai) — e.g. `2021-12-14T09:00:00+08:00`. Days (`2021-12-14`), free text and other strings are
left as they are; CSV and XLSX exports print local times of their own (`domain.kernel.timefmt`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.kernel.calendar import CHINA_TZ

INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")
DEFAULT_ZONE: tzinfo = ZoneInfo("Asia/Shanghai")
STATE_KEY = "response_zone"


def zone_named(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name else DEFAULT_ZONE
    except (ZoneInfoNotFoundError, ValueError):
        return CHINA_TZ


def respond_in(request: Request, timezone: str | None) -> None:
    """Render this response's instants in `timezone` (a campaign's zone name)."""
    request.scope.setdefault("state", {})[STATE_KEY] = zone_named(timezone)


def in_zone(value: Any, tz: tzinfo) -> Any:
    """`value` (parsed JSON) with every ISO 8601 instant string re-rendered in `tz`."""
    if isinstance(value, str):
        if INSTANT.fullmatch(value):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz).isoformat()
        return value
    if isinstance(value, dict):
        return {k: in_zone(v, tz) for k, v in value.items()}
    if isinstance(value, list):
        return [in_zone(v, tz) for v in value]
    return value


def render(body: bytes, tz: tzinfo) -> bytes:
    """A JSON body with its instants in `tz` (the same bytes when there is none, or when it is not JSON)."""
    if b"T" not in body:
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    converted = in_zone(parsed, tz)
    if converted == parsed:
        return body
    return json.dumps(converted, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class LocalTimestamps:
    """ASGI middleware: every JSON response's instants in the zone the route answered for (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not headers.get("content-type", "").startswith("application/json"):
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            tz = scope.get("state", {}).get(STATE_KEY, DEFAULT_ZONE)
            body = render(b"".join(chunks), tz)
            headers = MutableHeaders(scope=start)
            headers["content-length"] = str(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, buffered)
