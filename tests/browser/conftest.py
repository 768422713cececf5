"""Fixtures of the browser tests: the demo loaded once, the real app served over HTTP, one headless Chromium.

Per module: the 高安 demo in a brand-new database (`tests.support.demo_data`, the slow part, done once), the
FastAPI app of `dudao serve` on a free loopback port under uvicorn in a thread, and Debian's Chromium driven by
Playwright (the Python package only; its own browser download cannot be used here). A missing Chromium fails
every test with what to install — never a skip: `make test` installs it first when it runs as root
(tests/browser/ensure_chromium.sh). Each test gets a fresh browser context, so no token leaks between tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from infra.bootstrap import bootstrap
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.databases import Databases
from tests.support.demo_data import Demo, copy_of
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
UNIT = "文广新旅局"  # a demo unit with open, overdue problems; its 创建联络员 is a unit officer
DEADLINE_MS = 20_000  # a page's figures are on screen well within this on the shared 2-core machine


def chromium_path() -> str:
    """Debian's Chromium (or DUDAO_CHROMIUM); a clear failure, never a skip, when it is missing."""
    found = os.environ.get("DUDAO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is missing: the browser tests need Debian's chromium and fonts-noto-cjk "
                    "(apt-get install -y chromium fonts-noto-cjk; `make test` installs them when run as root)",
                    pytrace=False)
    return found


@dataclass(frozen=True)
class Site:
    """The served app: its base URL, the demo's campaign, tokens per role, and a client of the JSON API."""

    base: str
    campaign_id: UUID
    tokens: dict[str, str]
    demo: Demo

    def ui(self, page: str) -> str:
        return f"{self.base}/ui/{page}"

    def api(self, path: str, who: str = "admin") -> Any:
        """GET a JSON body with a role's token (the same request a page makes)."""
        response = httpx.get(self.base + path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        return response.json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def issue_tokens(demo: Demo) -> dict[str, str]:
    """The demo's admin token, and one each for HQ, an auditor and the unit officer of UNIT."""
    campaign_id = UUID(demo.summary["campaign_id"])
    with psycopg.connect(demo.database_url, autocommit=True) as conn:
        officer = conn.execute(
            "SELECT m.person_id FROM structure_memberships m JOIN structure_units u USING (unit_id)"
            " WHERE u.name = %s AND 'unit_officer' = ANY(m.roles) LIMIT 1", (UNIT,)).fetchone()
        assert officer is not None, f"the demo has no unit officer in {UNIT}"
        return {"admin": demo.summary["token"],
                "hq_office": create_token(conn, "hq_office", name="总指挥部办公室", campaign_id=campaign_id),
                "auditor": create_token(conn, "auditor", name="纪委监委", campaign_id=campaign_id),
                "unit_officer": create_token(conn, "unit_officer", person_id=officer[0], name=f"{UNIT}创建联络员",
                                             campaign_id=campaign_id)}


@pytest.fixture(scope="module")
def site(databases: Databases, loaded_demo: Demo) -> Iterator[Site]:
    """The session's demo (a copy of this module's own) and the real app serving it (API and dashboard) on a free
    port."""
    demo = copy_of(databases, loaded_demo, "demo_site")
    var_dir = demo.var_dir
    system = bootstrap(demo.database_url, create_tables=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(system, uploads_dir=var_dir / "uploads"), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the dashboard server to start", 30)
    try:
        yield Site(f"http://127.0.0.1:{port}", UUID(demo.summary["campaign_id"]), issue_tokens(demo), demo)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        system.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (--no-sandbox: CI runs as root)."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no token kept from another test), zh-CN, a desktop-sized window."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(DEADLINE_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
