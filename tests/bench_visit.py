"""`python -m tests.bench_visit`: the time to log a 10-finding supervision visit over HTTP.

A real uvicorn server on a free port over a fresh embedded PostgreSQL, the projector running
beside it (so duplicate lookups hit a growing ledger), and an httpx client uploading ~200 visits
one after another, each with 10 findings carrying a photo reference. Prints median and p99 of
the request round trip. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import logging
import socket
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import structlog
import uvicorn

from infra.http import create_app
from infra.http.auth import create_token
from infra.http.routes_problems import router
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.runtime.embedded import start_postgres
from infra.store.uploads import EvidenceStore
from tests.support.problem_world import PNG, World, build_world

UPLOADS = 200
START = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)  # a Tuesday, 09:00 in China
CATEGORIES = ("sanitation", "clutter", "vehicle_parking", "illegal_ads", "street_stalls")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(world: World, uploads: Path) -> tuple[uvicorn.Server, threading.Thread, str]:
    app = create_app(world.system, max_body_bytes=64 * 1024 * 1024)
    if not any(getattr(r, "path", None) == "/evidence" for r in app.routes):
        app.include_router(router)
    app.state.evidence_store = EvidenceStore(uploads)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def visit(world: World, n: int, ref: dict[str, Any]) -> dict[str, Any]:
    findings = [{"problem_id": str(uuid4()), "category": CATEGORIES[(n + i) % 5], "description": f"第{i + 1}处问题",
                 "evidence": [ref], "place_id": str(world[("s1", "s2", "s3")[i % 3]])} for i in range(10)]
    return {"command_id": str(uuid4()), "occurred_at": (world.system.clock() - timedelta(hours=1)).isoformat(),
            "visit_id": str(uuid4()), "campaign_id": str(world.campaign_id), "place_id": str(world["grid1"]),
            "participants": [str(world["supervisor"])], "findings": findings,
            "checklist": [{"item": "门前三包", "result": "fail"}]}


def measure(world: World, base: str) -> list[float]:
    actor = world.actors["supervisor"]
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name)
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        ref = client.post("/evidence", files={"file": ("p.png", PNG, "image/png")},
                          data={"campaign_id": str(world.campaign_id)}).raise_for_status().json()
        for n in range(UPLOADS + 10):
            body = visit(world, n, ref)
            started = time.perf_counter()
            response = client.post("/commands/log_visit", json=body)
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise RuntimeError(f"visit upload failed: {response.status_code} {response.text}")
            if n >= 10:  # the first ten warm the pools
                timings.append(elapsed * 1000)
    return timings


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        pg = start_postgres(Path(tmp) / "pg")
        try:
            system = bootstrap(pg.uri, clock=SimulatedClock(START), pool_size=10)
            world = build_world(system)
            projector = threading.Thread(target=system.projector.run_forever, daemon=True)
            projector.start()
            server, thread, base = serve(world, Path(tmp) / "uploads")
            try:
                timings = sorted(measure(world, base))
            finally:
                server.should_exit = True
                thread.join(10)
                system.projector.stop()
                projector.join(10)
            p99 = timings[min(len(timings) - 1, round(0.99 * len(timings)) - 1)]
            print(f"log a 10-finding visit over HTTP (uvicorn + httpx, {len(timings)} uploads): "
                  f"median {statistics.median(timings):.1f} ms, p99 {p99:.1f} ms, max {timings[-1]:.1f} ms")
            system.close()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
