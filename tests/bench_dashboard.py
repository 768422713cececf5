"""`python -m tests.bench_dashboard`: the 总览's time to first render in headless Chromium with 100k problems in the
store, against the raw API calls it makes as the baseline.

The structure and the 100k problems of January 2022 are made as `tests.bench_metrics` makes them (the structure
through the command service; the problems' metric rows written directly with COPY, because issuing 100k commands
here takes over an hour). The dashboard's light board reads the ledger, so each problem's ledger row — the state the
ledger projection would have folded, from the same generated history — is written with COPY too, and both read
models' positions set to the log head. The real app is served by uvicorn on a loopback port; Debian's Chromium
opens the 总览 at 2022-01-31 12:00 (about 30k problems still open then) and the figure is the page's own
`performance.now()` when every panel is drawn (`data-ready-ms`), from the navigation's start. The escalation list,
notices and bulletins are empty here (their read models are not generated), so those calls are cheap. Not a test:
nothing asserts a speed.
"""

from __future__ import annotations

import logging
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import structlog
import uvicorn
from psycopg.types.json import Jsonb
from playwright.sync_api import sync_playwright

from domain.kernel.calendar import CHINA_TZ
from domain.problem.state import Problem
from infra.bootstrap import System, bootstrap
from infra.http import create_app
from infra.http.auth import create_token
from infra.runtime.embedded import start_postgres
from tests.bench_metrics import JANUARY, load, problem_rows, structure
from tests.browser.conftest import chromium_path, free_port
from tests.support.waiting import wait_until

AS_OF = "2022-01-31T12:00:00"
HOURS_PER_DAY = 8
LEDGER_COLUMNS = ("problem_id", "campaign_id", "place_id", "unit_id", "category", "severity", "state", "source",
                  "found_at", "reported_at", "assigned_at", "deadline", "limit_hours", "submitted_at", "closed_at",
                  "rework_count", "relapse_count", "parked_since", "pauses", "likely_duplicate_of", "relapse_of",
                  "version", "state_json")


def ledger_row(last: tuple[Any, ...], count: int) -> tuple[Any, ...]:
    """The ledger row of a problem whose last metric version is `last` (of `count` versions)."""
    (pid, _, cid, start, _, site, unit, state, reported, assigned, deadline, submitted, closed, rework, ext, parked,
     relapse_of, _) = last
    problem = Problem.model_validate({
        "problem_id": pid, "campaign_id": cid, "category": "sanitation", "severity": "normal", "place_id": site,
        "description": "路面垃圾未及时清扫", "evidence": (), "source": "assessment", "visit_id": None,
        "found_at": reported, "reported_at": reported, "reported_by": None,
        "state": state, "relapse_of": relapse_of, "unit_id": unit,
        "assigned_at": assigned, "deadline": deadline, "limit_hours": float(HOURS_PER_DAY * (3 + 5 * ext)),
        "last_submitted_at": submitted, "submission_count": 1 if submitted else 0, "closed_at": closed,
        "rework_count": rework, "extension_count": ext, "parked_since": start if parked else None})
    return (pid, cid, site, unit, problem.category, problem.severity.value, problem.state.value, problem.source,
            problem.found_at, problem.reported_at, assigned, deadline, problem.limit_hours, submitted, closed, rework, 0,
            problem.parked_since, Jsonb([]), [], relapse_of, count + 1, Jsonb(problem.model_dump(mode="json")))


def load_ledger(system: System, versions: list[tuple[Any, ...]]) -> int:
    """One ledger row per problem (its last version), written with COPY; the ledger's position set to the head."""
    last: dict[UUID, tuple[Any, ...]] = {}
    counts: dict[UUID, int] = {}
    for v in versions:
        last[v[0]] = v
        counts[v[0]] = counts.get(v[0], 0) + 1
    with psycopg.connect(system.database_url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ledger_problems ({', '.join(LEDGER_COLUMNS)}) FROM STDIN") as copy:
            for pid, v in last.items():
                copy.write_row(ledger_row(v, counts[pid]))
        cur.execute("UPDATE dudao_projection_positions SET position = %s WHERE name = 'ledger'",
                    (system.projector.head(),))
        cur.execute("ANALYZE ledger_problems")
    return len(last)


def timed(fn: Callable[[], Any], runs: int = 3) -> tuple[float, float]:
    """(first run s, median of the next `runs` s)."""
    started = time.perf_counter()
    fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times)


def overview_calls(base: str, token: str, cid: UUID) -> list[str]:
    """The requests the 总览 makes before it draws (the eight weekly metrics follow the light board's trend_until)."""
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    lights = client.get(f"/campaigns/{cid}/ledger/lights", params={"as_of": AS_OF}).json()
    until = datetime.fromisoformat(lights["trend_until"]).date()
    weeks = [until.fromordinal(until.toordinal() - 7 * k).isoformat() for k in range(8)]
    return [f"/campaigns/{cid}/ledger/lights?as_of={AS_OF}", f"/campaigns/{cid}/escalations?limit=1&as_of={AS_OF}",
            f"/campaigns/{cid}/notices?pending=true&limit=5000", f"/campaigns/{cid}/bulletins",
            *(f"/campaigns/{cid}/metrics?by=campaign&period=week&day={d}&as_of={AS_OF}" for d in weeks)]


def api_baseline(base: str, token: str, cid: UUID) -> None:
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    calls = overview_calls(base, token, cid)
    for path in calls[:2]:
        first, median = timed(partial(client.get, path))
        print(f"API {path.split('?')[0].rsplit('/', 1)[-1]:<12}: first {first * 1000:7.0f} ms, then {median * 1000:7.0f} ms")
    first, median = timed(lambda: [client.get(p).raise_for_status() for p in calls])
    print(f"API, all {len(calls)} calls of the 总览 one after another: first {first * 1000:7.0f} ms, then {median * 1000:7.0f} ms")


def first_render(base: str, token: str, runs: int = 4) -> list[int]:
    """The page's own time from navigation start to every panel drawn, per fresh page load (ms)."""
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        for _ in range(runs):
            context = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
            context.add_init_script(f"sessionStorage.setItem('dudao.token', '{token}')")
            page = context.new_page()
            page.goto(f"{base}/ui/index.html?as_of={AS_OF}")
            page.wait_for_selector("body[data-ready]", timeout=300_000)
            assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
            times.append(int(page.get_attribute("body", "data-ready-ms") or 0))
            context.close()
        browser.close()
    return times


def main() -> None:
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as tmp:
        pg = start_postgres(Path(tmp) / "pg")
        try:
            system = bootstrap(pg.uri, pool_size=10)
            cid, units, sites = structure(system)
            versions, acks = problem_rows(cid, units, sites, JANUARY, datetime(2022, 1, 1, tzinfo=CHINA_TZ), rng)
            load(system, versions, acks)
            print(f"store: {load_ledger(system, versions)} problems (ledger rows) and {len(versions)} metric versions")
            with psycopg.connect(pg.uri, autocommit=True) as conn:
                token = create_token(conn, "admin", name="bench")
            server = uvicorn.Server(uvicorn.Config(create_app(system), host="127.0.0.1", port=free_port(),
                                                   log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            wait_until(lambda: server.started, "the app to start", 30)
            base = f"http://127.0.0.1:{server.config.port}"
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
                board = c.get(f"/campaigns/{cid}/ledger/lights", params={"as_of": AS_OF}).json()
            print(f"open at {AS_OF}: {board['open']} problems, by light {board['by_light']}")
            api_baseline(base, token, cid)
            times = first_render(base, token)
            print(f"总览 time to first render (navigation start → every panel drawn), Chromium: first {times[0]} ms, "
                  f"then median {statistics.median(times[1:]):.0f} ms of {len(times) - 1}")
            server.should_exit = True
            thread.join(timeout=30)
            system.close()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
