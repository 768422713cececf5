"""The dashboard (督导驾驶舱): zh-CN pages served by the API's own app under `/ui/`, from files shipped in this package.

Plain HTML, one stylesheet and small JavaScript modules (no build step), with Apache ECharts vendored under
`static/vendor/echarts` — nothing is fetched from outside, so the dashboard works offline. The files hold no data
and need no token: every figure a page shows it reads from the JSON API with the bearer token its login page keeps
for the browser session, so a role sees on a page exactly what the API lets it read. The pages are served with a
Content-Security-Policy that allows only this origin's scripts and data (photos are fetched with the token and
shown as blob: URLs; ECharts styles its tooltips inline).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/ui"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new release's pages and modules are never mixed with old ones
}


class WithHeaders:
    """Adds the dashboard's security headers to every response of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard's files under `/ui/` (`/ui/` itself is the 总览, index.html)."""
    app.mount(PREFIX, WithHeaders(StaticFiles(directory=STATIC_DIR, html=True)), name="ui")
