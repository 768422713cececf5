"""`python -m tests.bench_scale`: memory and the costs that matter at 100k and at 1M events in the store (issue 14,
"Memory and scale"), each 1M figure beside the same figure at 100k as its baseline, so the ratio says whether the
cost grows with history (target ≈ 1.0; RSS at most 1.25×, rates at least 0.8×).

The processes are the real ones, started as `dudao run` starts them: `dudao project run`, `dudao relay`, `dudao
serve`, each a subprocess whose peak RSS psutil samples every 50 ms. The store is filled fast: one chunk of mixed
events (campaigns, units, persons, places; tests.integration.test_relay's) is saved through the application, then
copied by SQL with every UUID in it renamed per copy (its first eight hex digits are the copy number), so each copy
is a fresh set of aggregates with complete histories and unique event ids, encoded as the recorder encodes them.

At each size: the projector applies the last `--project` events (positions moved back by that much, on a copy
boundary, so every aggregate's history is whole); the relay publishes the whole log under a fresh topic prefix (so
a process keeping per-event state would grow with it); the API takes `--commands` register_place commands from 8
clients, then 200 from one client (latency). Also printed: each process's RSS once 20% of its work was done, beside
its peak (growth within one run is per-event state too). Rates are counted from the process's first progress, so
start-up is left out. The read models hold only what was applied (the projector skips most of the history), so
the projector's figure says what a longer log costs it, not what larger read-model tables do. On a machine shared
with other work, latencies swing with the load: repeat a run before believing a ratio far from 1. Not a test:
nothing asserts a speed or a size.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import structlog

from infra.bootstrap import bootstrap
from infra.runtime.embedded import EmbeddedKafka, EmbeddedPostgres, start_kafka, start_postgres
from tests.bench import ROOT, Figure, Run, database, http_rate, load, place_body, process, server, setup, table

CHUNK = 20_000  # events in the template chunk (and in each copy of it)
SAMPLE_S = 0.05
UUID_RE = r"\m[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\M"


# ---------------------------------------------------------------------------------------------- the store


def grow(url: str, table_name: str, target: int) -> int:
    """Append copies of the template chunk (notification ids 1..CHUNK) until the log holds `target` events."""
    with psycopg.connect(url, autocommit=True) as conn:
        head = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {table_name}").fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        while head < target:
            copy = head // CHUNK  # a new first eight hex digits for every UUID of this copy
            prefix = f"{copy:08x}"
            conn.execute(
                f"INSERT INTO {table_name} (originator_id, originator_version, topic, state)"
                f" SELECT overlay(originator_id::text PLACING %s FROM 1)::uuid, originator_version, topic,"
                f" convert_to(regexp_replace(convert_from(state, 'UTF8'), %s, %s || '\\1', 'g'), 'UTF8')"
                f" FROM {table_name} WHERE notification_id <= %s ORDER BY notification_id",
                (prefix, UUID_RE, prefix, min(CHUNK, target - head)))
            head = conn.execute(f"SELECT max(notification_id) FROM {table_name}").fetchone()[0]  # type: ignore[index]
            if copy % 10 == 0 or head >= target:
                print(f"    store: {head:,} events ({time.perf_counter() - started:.0f} s)", flush=True)
        conn.execute(f"VACUUM ANALYZE {table_name}")
    return int(head)


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Sampled:
    """Peak RSS of one process, and its RSS when the work passed 20%."""

    peak: int = 0
    early: int = 0
    samples: list[int] = field(default_factory=list)


@contextmanager
def sampling(pid: int, progress: Callable[[], float]) -> Iterator[Sampled]:
    """Samples the process's RSS every SAMPLE_S seconds in a thread while the block runs."""
    out, stop = Sampled(), threading.Event()
    proc = psutil.Process(pid)

    def sample() -> None:
        while not stop.is_set():
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                return
            out.peak = max(out.peak, rss)
            if not out.early and progress() >= 0.2:
                out.early = rss
            stop.wait(SAMPLE_S)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()


def rate_until(position: Callable[[], int], target: int, proc: subprocess.Popen[bytes], log: Path, what: str,
               deadline_s: float = 1800) -> float:
    """Events/s from the first move of `position` (start-up excluded) until it reaches `target`; polls with a
    deadline and fails at once if the process died."""
    deadline = time.monotonic() + deadline_s
    first: tuple[int, float] | None = None
    last_print = time.monotonic()
    while (now := position()) < target:
        if first is None and now > 0:
            first = (now, time.perf_counter())
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not done within {deadline_s:.0f} s")
        if time.monotonic() - last_print > 30:
            print(f"      {what}: {now:,} of {target:,}", flush=True)
            last_print = time.monotonic()
        time.sleep(0.2)
    start, at = first or (0, time.perf_counter())
    return (target - start) / max(1e-3, time.perf_counter() - at)


def scalar(url: str, sql: str, *args: Any) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


NAMES: list[str] = []  # the projections `dudao project run` runs
DUDAO = [str(ROOT / ".venv/bin/dudao")]


@dataclass
class Stage:
    """What one size measured: peak and early RSS (bytes) and rates of each process."""

    size: int
    rss: dict[str, Sampled] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)


def project(stage: Stage, url: str, env: dict[str, str], tmp: Path, head: int, count: int) -> None:
    """`dudao project run` applies the last `count` events (every projection moved back by that much)."""
    start = max(0, head - count)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE dudao_projection_positions SET position = %s WHERE name = ANY(%s)", (start, NAMES))
    left = lambda: scalar(url, "SELECT min(position) FROM dudao_projection_positions WHERE name = ANY(%s)",  # noqa: E731
                          NAMES)
    log = tmp / f"project-{stage.size}.log"
    with process([*DUDAO, "project", "run"], env, log) as proc, \
            sampling(proc.pid, lambda: (left() - start) / max(1, head - start)) as rss:
        moved = rate_until(lambda: max(0, left() - start), head - start, proc, log, "dudao project run")
        stage.rate["projector"] = moved
    stage.rss["projector"] = rss


def relay(stage: Stage, url: str, env: dict[str, str], tmp: Path, head: int) -> None:
    """`dudao relay` publishes the whole log, from position 0, under a topic prefix of this size's own."""
    position = lambda: scalar(url, "SELECT max(position) FROM dudao_relay_position")  # noqa: E731
    log = tmp / f"relay-{stage.size}.log"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS dudao_relay_position (name text PRIMARY KEY, position bigint NOT NULL"
                     " DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        conn.execute("DELETE FROM dudao_relay_position")
    with process([*DUDAO, "relay"], env | {"DUDAO_TOPIC_PREFIX": f"scale{stage.size}"}, log) as proc, \
            sampling(proc.pid, lambda: position() / head) as rss:
        stage.rate["relay"] = rate_until(position, head, proc, log, "dudao relay")
    stage.rss["relay"] = rss


def serve(stage: Stage, url: str, env: dict[str, str], tmp: Path, commands: int) -> None:
    """`dudao serve` takes `commands` register_place commands from 8 clients, then 200 one at a time (latency)."""
    from infra.commands.grants import create_token, ensure_tokens_table

    system = bootstrap(url, pool_size=2)
    cid, _ = setup(system)
    system.close()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_tokens_table(conn)
        token = create_token(conn, "admin", name=f"scale{stage.size}")
    done = [0]
    with server([*DUDAO, "serve"], env, tmp / f"serve-{stage.size}.log") as base:
        pid = next(p.pid for p in psutil.Process().children() if "serve" in " ".join(p.cmdline()))
        with sampling(pid, lambda: done[0] / commands) as rss:
            stage.rate["api"] = http_rate(base, token, "/commands/register_place", lambda n: place_body(cid), commands)
            done[0] = commands
            stage.rate["api p50"], stage.rate["api p99"] = one_at_a_time(base, token, lambda: place_body(cid), 200)
    stage.rss["api"] = rss


def one_at_a_time(base: str, token: str, body: Callable[[], dict[str, Any]], count: int) -> tuple[float, float]:
    """p50 and p99 (ms) of `count` commands sent one after the other."""
    took = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        for _ in range(count):
            started = time.perf_counter()
            r = c.post("/commands/register_place", json=body())
            took.append((time.perf_counter() - started) * 1000)
            if r.status_code != 201:
                raise RuntimeError(f"register_place: {r.status_code} {r.text[:300]}")
    cuts = statistics.quantiles(took, n=100)
    return cuts[49], cuts[98]


def measure(size: int, url: str, table_name: str, env: dict[str, str], tmp: Path, args: argparse.Namespace) -> Stage:
    print(f"--- {size:,} events (load {load()})", flush=True)
    head = grow(url, table_name, size)
    stage = Stage(head)
    # The API first: the relay's million messages leave the broker and the database busy for a while after.
    for what, step in (("api", lambda: serve(stage, url, env, tmp, args.commands)),
                       ("projector", lambda: project(stage, url, env, tmp, head, args.project)),
                       ("relay", lambda: relay(stage, url, env, tmp, head))):
        started = time.perf_counter()
        step()
        s = stage.rss[what]
        print(f"    {what}: peak RSS {s.peak / 2**20:,.0f} MiB (at 20%: {s.early / 2**20:,.0f} MiB), "
              f"{stage.rate[what]:,.0f}/s, {time.perf_counter() - started:.0f} s (load {load()})", flush=True)
    return stage


def figures(run: Run, small: Stage, big: Stage) -> None:
    mib = 2**20
    for what in ("api", "projector", "relay"):
        a, b = small.rss[what], big.rss[what]
        run.add(Figure("scale", f"{what} peak RSS at {big.size:,} events", b.peak / mib, "MiB",
                       f"peak RSS at {small.size:,} events", a.peak / mib, note="RSS ratio ≈ 1.0 wanted"),
                Figure("scale", f"{what} RSS peak / at 20% of the work, {big.size:,}", b.peak / mib, "MiB",
                       f"RSS at 20% of the work, {big.size:,}", (b.early or b.peak) / mib))
    for what, unit in (("projector", "events/s"), ("relay", "events/s"), ("api", "commands/s")):
        run.add(Figure("scale", f"{what} rate at {big.size:,} events", big.rate[what], unit,
                       f"{what} rate at {small.size:,} events", small.rate[what], 0.8))
    for what in ("api p50", "api p99"):
        run.add(Figure("scale", f"command latency {what[4:]} at {big.size:,}", big.rate[what], "ms",
                       f"command latency {what[4:]} at {small.size:,}", small.rate[what], lower_is_better=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="the two store sizes, small first")
    parser.add_argument("--project", type=int, default=20_000,
                        help="events the projector applies at each size (whole copies of the 20k-event template)")
    parser.add_argument("--commands", type=int, default=1000, help="commands over HTTP at each size")
    args = parser.parse_args(argv if argv is not None else [] if __name__ != "__main__" else None)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    small, big = (int(s) for s in args.sizes.split(","))
    args.project = max(CHUNK, args.project // CHUNK * CHUNK)  # whole copies: every aggregate's history is whole
    run = Run(started=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), size=big, load_before=load(),
              cores=os.cpu_count())
    print(f"bench_scale {run.started}: sizes {small:,} and {big:,}, load {run.load_before}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dudao-scale-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        pg, kafka = start_postgres(tmp / "pg"), start_kafka(tmp / "kafka")
        try:
            url, table_name = template(pg)
            env = {"DUDAO_DATABASE_URL": url, "DUDAO_VAR_DIR": str(tmp / "var"), "DUDAO_LOG_FORMAT": "json",
                   "DUDAO_CREATE_TABLES": "n", "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap}
            stages = [measure(n, url, table_name, env, tmp, args) for n in (small, big)]
        finally:
            stop(kafka, pg)
    run.load_after = load()
    figures(run, *stages)
    print()
    print(table(run))
    print(f"load average: before {run.load_before}, after {run.load_after} on {run.cores} cores")
    return 0


def template(pg: EmbeddedPostgres) -> tuple[str, str]:
    """A database with every table and the template chunk saved through the application."""
    from tests.integration.test_relay import mixed_events

    url = database(pg, "scale")
    system = bootstrap(url, pool_size=2)
    events = mixed_events(CHUNK, aggregates=CHUNK // 10)
    for i in range(0, CHUNK, 2000):
        system.app.save(*events[i:i + 2000])
    system.projector.catch_up()
    table_name = f"public.{system.app.store.events_table_name}"
    NAMES[:] = [p.name for p in system.projector.projections]
    system.close()
    return url, table_name


def stop(kafka: EmbeddedKafka, pg: EmbeddedPostgres) -> None:
    try:
        kafka.stop()
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
