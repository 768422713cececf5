"""`make bench`: each throughput and latency figure of issue 14 beside its raw baseline, taken in one run on the
same embedded PostgreSQL and Tansu broker, with the ratio and the issue's target (met / not met).

Why side by side: the machine has two cores shared with other work, so an absolute rate says little from one run to
the next; a ratio to what the same servers do with the same work stripped to its bare minimum, measured minutes
apart, says how far the product is from the hardware. Nothing here asserts a speed.

Sections (each in a database of its own on the one server; `--size N` events are put in each store first, so
`--size 100000` / `--size 1000000` show whether cost grows with history):
- writes over HTTP: `dudao serve` as a subprocess (uvicorn as it runs it), 8 concurrent clients, a single-event
  command (register_place) and a 10-finding visit (log_visit), against a bare FastAPI endpoint under the same
  uvicorn set-up that validates a similar body and does one durable INSERT; and `dudao serve --workers 2` against
  `--workers 1` (a socket per worker);
- writes in-process: the command service with 8 threads against raw psycopg single-row durable INSERTs on 8
  connections;
- rebuild: events/s of the log for each projection and for all, against a raw SELECT + JSON decode of the events;
- relay: events/s against a raw kafka-python producer with the relay's batch/linger/acks settings, same broker;
- latency at 100 and 1,000 commands/s (what the machine achieved is printed): command accepted → read model updated
  (the projector's position passing the event), → Kafka consumer effect committed; projector and relay run with
  their production poll intervals in this process, the consumer in a process of its own (as production runs it);
- task import rows/s, and `dudao verify` events/s against its raw baseline (tests.bench_audit's, called here).

The figures are written to var/bench/<UTC timestamp>.json and var/bench/latest.json; when latest.json exists, the
run prints each figure's change against it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import httpx
import psycopg
from psycopg.rows import dict_row, tuple_row
from pydantic import BaseModel, Field

from domain.kernel.base import Actor
from domain.structure.campaign import StartCampaign
from domain.structure.place import RegisterPlace
from domain.structure.responsibility import AssignResponsibility
from domain.structure.unit import RegisterUnit
from infra.bootstrap import System, bootstrap
from infra.runtime.embedded import EmbeddedKafka, EmbeddedPostgres, start_kafka, start_postgres

ADMIN = Actor(person_id=uuid4(), role="admin", name="bench")
ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8
ROUNDS = 3  # HTTP measurements alternate between the servers this many times; the best round counts


# ---------------------------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured figure, its raw baseline and, where issue 14 sets one, the target ratio."""

    section: str
    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: float | None = None  # ratio ≥ target (or, for latencies, value < target)
    lower_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline_value if self.baseline_value else None

    def verdict(self) -> str:
        if self.target is None:
            return ""
        measured = self.value if self.lower_is_better else self.ratio
        if measured is None:
            return ""
        met = measured < self.target if self.lower_is_better else measured >= self.target
        sign = "<" if self.lower_is_better else "≥"
        return f"{sign} {self.target:g}{' ms' if self.lower_is_better else '×'}: {'met' if met else 'NOT met'}"


@dataclass
class Run:
    started: str
    size: int
    load_before: list[float]
    cores: int | None
    figures: list[Figure] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    load_after: list[float] = field(default_factory=list)

    def add(self, *figures: Figure) -> None:
        for f in figures:
            self.figures.append(f)
            print(f"  {f.section}: {f.name} = {f.value:,.1f} {f.unit}"
                  + (f"  (baseline {f.baseline_value:,.1f}, ratio {f.ratio:.3f})" if f.ratio is not None else ""),
                  flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------------------- servers


def database(pg: EmbeddedPostgres, name: str) -> str:
    from tests.support.databases import with_dbname

    with psycopg.connect(pg.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return with_dbname(pg.uri, name)


def prefill(system: System, n: int) -> None:
    """n stored events of history (realistic 问题 reports, by SQL: tests.bench_audit's fill); every projection is
    moved past them, so what follows measures the cost of writing and reading beside a history, not catching up."""
    from tests.bench_audit import fill

    if n <= 0:
        return
    fill(system.database_url, f"public.{system.app.store.events_table_name}", n)
    head = system.projector.head()
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE dudao_projection_positions SET position = %s", (head,))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process logging to `log`, terminated (killed after 15 s) when the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=out, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def server(argv: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A uvicorn process on a free port; yields its base URL once it answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process([*argv, "--port", str(port)], env, log) as proc:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield base


# ---------------------------------------------------------------------------------------------- writes over HTTP


class BareBody(BaseModel):
    """A body like register_place's, validated as strictly (module level: FastAPI resolves the annotation)."""

    command_id: str = Field(min_length=1, max_length=200)
    place_id: UUID
    campaign_id: UUID
    name: str = Field(min_length=1, max_length=200)
    place_kind: Literal["grid", "site", "street", "community", "market"]
    parent_id: UUID | None = None


def bare_app() -> Any:
    """The HTTP ceiling: FastAPI validating a body like register_place's and doing one durable INSERT (autocommit,
    synchronous_commit as the server has it) from a pool of 10 connections, in a sync route as dudao's commands are.
    /commands/noop validates the same body and touches no database: the ceiling of the client and uvicorn. Run by
    uvicorn --factory with BENCH_DSN set."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(os.environ["BENCH_DSN"], min_size=10, max_size=10, kwargs={"autocommit": True}, open=True)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/commands/noop", status_code=201)
    def noop(body: BareBody) -> JSONResponse:
        return JSONResponse({"command_id": body.command_id, "events": 0}, status_code=201)

    @app.post("/commands/register_place", status_code=201)
    def register(body: BareBody) -> JSONResponse:
        with pool.connection() as conn:
            conn.execute("INSERT INTO bench_bare (command_id, body) VALUES (%s, %s)",
                         (body.command_id, body.model_dump_json().encode()))
        return JSONResponse({"command_id": body.command_id, "events": 1}, status_code=201)

    return app


def place_body(campaign: UUID) -> dict[str, Any]:
    pid = uuid4()
    return {"command_id": str(uuid4()), "place_id": str(pid), "campaign_id": str(campaign),
            "name": f"点位{pid.hex[:8]}", "place_kind": "site"}


def http_rate(base: str, token: str, path: str, body: Callable[[int], dict[str, Any]], count: int) -> float:
    """Requests/s of `count` POSTs from CLIENTS concurrent clients (one asyncio loop, one keep-alive connection each),
    after CLIENTS × 3 warm-up requests; every answer must be 201.

    The clients speak HTTP/1.1 over asyncio streams themselves, as a load generator like wrk does: they share the 2
    cores with the servers they measure, and httpx spent ≈ 1.8 ms of CPU a request (a third of the machine at
    ~370 requests/s), which capped what 2 API workers could show. This client spends ≈ 0.1 ms."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()

    async def client(todo: Iterator[int]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for n in todo:
                payload = json.dumps(body(n), ensure_ascii=False).encode()
                writer.write(b"%s%d\r\n\r\n%s" % (head, len(payload), payload))
                headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                length = 0
                for line in headers.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"transfer-encoding":
                        raise RuntimeError(f"{path}: a chunked answer, which this client does not read")
                answer = await reader.readexactly(length)
                if not headers.startswith(b"HTTP/1.1 201 "):
                    status = headers.partition(b"\r\n")[0]
                    raise RuntimeError(f"{path}: {status!r} {answer[:300]!r}")
        finally:
            writer.close()

    async def burst(n: int) -> float:
        todo = iter(range(n))
        started = time.perf_counter()
        await asyncio.gather(*(client(todo) for _ in range(CLIENTS)))
        return time.perf_counter() - started

    asyncio.run(burst(CLIENTS * 3))
    return count / asyncio.run(burst(count))


def writes_over_http(run: Run, pg: EmbeddedPostgres, kafka: EmbeddedKafka, tmp: Path, count: int, visits: int) -> None:
    from infra.commands.grants import create_token, ensure_tokens_table
    from tests.bench_visit import visit
    from tests.support.problem_world import PNG, build_world

    url = database(pg, "http")
    system = bootstrap(url, pool_size=4)
    prefill(system, run.size)
    world = build_world(system)
    system.projector.catch_up()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_tokens_table(conn)
        admin = create_token(conn, "admin", name="bench")
        sup = world.actors["supervisor"]
        supervisor = create_token(conn, sup.role, person_id=sup.person_id, name=sup.name)
        conn.execute("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, command_id text NOT NULL, body bytea NOT NULL)")
    system.close()
    env = {"DUDAO_DATABASE_URL": url, "DUDAO_VAR_DIR": str(tmp / "var"), "DUDAO_LOG_FORMAT": "json",
           "DUDAO_CREATE_TABLES": "n", "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap, "BENCH_DSN": url}
    python = str(ROOT / ".venv/bin/python")
    dudao = [python, "-m", "infra.cli.main", "serve"] if not (ROOT / ".venv/bin/dudao").exists() else [
        str(ROOT / ".venv/bin/dudao"), "serve"]
    uvicorn = [python, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
    with ExitStack() as servers:
        serve = servers.enter_context(server(dudao, env, tmp / "serve.log"))
        bare_base = servers.enter_context(server([*uvicorn, "tests.bench:bare_app"], env, tmp / "bare.log"))
        one, two = (servers.enter_context(server([*dudao, "--workers", str(n)], env, tmp / f"workers{n}.log"))
                    for n in (1, 2))
        ref = httpx.post(serve + "/evidence", headers={"Authorization": f"Bearer {supervisor}"},
                         files={"file": ("p.png", PNG, "image/png")},
                         data={"campaign_id": str(world.campaign_id)}, timeout=30).raise_for_status().json()
        place = (admin, "/commands/register_place", lambda _: place_body(world.campaign_id))
        targets: dict[str, tuple[str, str, str, Callable[[int], dict[str, Any]], int]] = {
            "single": (serve, *place, count), "visit": (serve, supervisor, "/commands/log_visit",
                                                        lambda n: visit(world, n, ref), visits),
            "bare": (bare_base, *place, count), "noop": (bare_base, admin, "/commands/noop", place[2], count),
            "one": (one, *place, count), "two": (two, *place, count)}
        # Rounds alternate the servers, so a change in the shared machine's load hits each about alike; best of 3.
        rates: dict[str, list[float]] = {k: [] for k in targets}
        for _ in range(ROUNDS):
            for k, (base, token, path, body, n) in targets.items():
                rates[k].append(http_rate(base, token, path, body, max(CLIENTS, n // ROUNDS)))
    single, visit_rate, bare, ceiling, workers = (max(rates["single"]), max(rates["visit"]), max(rates["bare"]),
                                                  max(rates["noop"]), {1: max(rates["one"]), 2: max(rates["two"])})
    run.add(Figure("writes/http", f"register_place, {CLIENTS} clients", single, "commands/s",
                   "bare FastAPI + 1 durable INSERT", bare, 0.5),
            Figure("writes/http", f"log_visit (10 findings), {CLIENTS} clients", visit_rate, "visits/s",
                   "bare FastAPI + 1 durable INSERT", bare,
                   note="a visit writes 1 + 10 findings' events in one command"),
            Figure("writes/http", "register_place, dudao serve --workers 2", workers[2], "commands/s",
                   "the same with 1 worker", workers[1], 1.6,
                   note="dudao serve --workers 2 against --workers 1; the 8 clients and PostgreSQL share the 2 cores "
                        "(python -m tests.bench_workers prints the CPU each takes and the ceiling it leaves)"),
            Figure("writes/http", "bare FastAPI + 1 durable INSERT", bare, "requests/s",
                   "bare FastAPI, validation only (no database)", ceiling,
                   note="uvicorn's own ceiling here, with the 8 clients (raw HTTP/1.1, ≈ 0.1 ms of CPU a request) "
                        "on the same cores"))


# ---------------------------------------------------------------------------------------------- writes in-process


def setup(system: System) -> tuple[UUID, UUID]:
    cid, hq = uuid4(), uuid4()
    system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=cid, name="基准测试", jurisdiction="测试市",
                                        launched_on=date(2021, 12, 3)), ADMIN)
    system.service.handle(RegisterUnit(command_id=str(uuid4()), unit_id=hq, campaign_id=cid, name="总指挥部", unit_kind="hq"), ADMIN)
    return cid, hq


def register_place_and_lead(system: System, cid: UUID, unit: UUID) -> None:
    pid = uuid4()
    system.service.handle(RegisterPlace(command_id=str(uuid4()), place_id=pid, campaign_id=cid, name=f"点位{pid.hex[:6]}",
                                        place_kind="site"), ADMIN)
    system.service.handle(AssignResponsibility(command_id=str(uuid4()), campaign_id=cid, scope_kind="place", scope_id=pid,
                                               party_kind="unit", party_id=unit, role="lead"), ADMIN)


def commands_per_second(system: System, clients: int, pairs: int) -> float:
    """Commands/s of `pairs` (register a place, make a unit its lead) issued from `clients` threads."""
    cid, hq = setup(system)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: register_place_and_lead(system, cid, hq), range(pairs)))
    return 2 * pairs / (time.perf_counter() - started)


def raw_inserts(url: str, connections: int, rows: int) -> float:
    """Rows/s of single-row durable INSERTs (autocommit) of an event-sized row from `connections` connections."""
    state = ("x" * 500).encode()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, originator_id uuid NOT NULL,"
                     " originator_version int NOT NULL, topic text NOT NULL, state bytea NOT NULL)")
    conns = [psycopg.connect(url, autocommit=True) for _ in range(connections)]

    def insert(conn: psycopg.Connection[Any]) -> None:
        for _ in range(rows // connections):
            conn.execute("INSERT INTO bench_raw (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)",
                         (uuid4(), "dudao.place.PlaceRegistered", state))

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(insert, conns))
        return connections * (rows // connections) / (time.perf_counter() - started)
    finally:
        for c in conns:
            c.close()


def writes_in_process(run: Run, pg: EmbeddedPostgres, commands: int) -> None:
    url = database(pg, "inproc")
    system = bootstrap(url, pool_size=CLIENTS + 2)
    prefill(system, run.size)
    commands_per_second(system, CLIENTS, 50)  # warm the pool and the code
    service = commands_per_second(system, CLIENTS, commands // 2)
    one = commands_per_second(system, 1, commands // 8)
    system.close()
    raw = raw_inserts(url, CLIENTS, commands * 4)
    raw_one = raw_inserts(url, 1, commands)
    run.add(Figure("writes/in-process", f"command service, {CLIENTS} threads", service, "commands/s",
                   f"raw psycopg INSERT, {CLIENTS} connections", raw, 0.5),
            Figure("writes/in-process", "command service, 1 thread", one, "commands/s",
                   "raw psycopg INSERT, 1 connection", raw_one))


# ---------------------------------------------------------------------------------------------- rebuild and relay


def store_of(pg: EmbeddedPostgres, size: int) -> System:
    """A store holding `size` mixed events (campaigns, units, persons, places; tests.integration.test_relay's)."""
    from tests.integration.test_relay import mixed_events

    system = bootstrap(database(pg, "store"), pool_size=4)
    events = mixed_events(size)
    for i in range(0, size, 500):
        system.app.save(*events[i:i + 500])
    return system


def raw_read_decode(system: System, runs: int = 3) -> float:
    """Events/s of one server-side-cursor SELECT of the events table (5,000 rows a fetch) with json.loads of each;
    the best of `runs` (it is cheap, and one run on the shared machine can land on a busy moment)."""
    table = f"public.{system.app.store.events_table_name}"
    best = 0.0
    with psycopg.connect(system.database_url) as conn:
        for _ in range(runs):
            count, started = 0, time.perf_counter()
            with conn.transaction(), conn.cursor(name="bench", row_factory=tuple_row) as cur:
                cur.execute(f"SELECT notification_id, originator_id, originator_version, topic, state FROM {table}"
                            " ORDER BY notification_id")
                while rows := cur.fetchmany(5000):
                    for row in rows:
                        json.loads(row[4])
                    count += len(rows)
            best = max(best, count / (time.perf_counter() - started))
    return best


def rebuild(run: Run, system: System) -> None:
    system.projector.catch_up()
    head = system.projector.head()
    raw = raw_read_decode(system)
    total = 0.0
    for p in system.projector.projections:
        started = time.perf_counter()
        system.projector.rebuild(p)
        took = time.perf_counter() - started
        total += took
        behind = head - system.projector.position(p)
        run.add(Figure("rebuild", p.name, head / took, "events/s", "raw SELECT + json.loads", raw, 0.3,
                       note=f"stopped {behind} events short (a dead letter)" if behind else ""))
    # All of them as `dudao project rebuild` does it: one pass over the log, each batch read and decoded once.
    started = time.perf_counter()
    system.projector.rebuild_all()
    took = time.perf_counter() - started
    short = [p.name for p in system.projector.projections if system.projector.position(p) < head]
    run.add(Figure("rebuild", f"all {len(system.projector.projections)} projections", head / took, "events/s",
                   "raw SELECT + json.loads", raw, 0.3,
                   note=f"{head:,} events in the log, in one pass; each alone, one after the other: {head / total:,.0f}"
                   " events/s" + (f"; {', '.join(short)} stopped short (a dead letter)" if short else "")))


def relay(run: Run, system: System, kafka: EmbeddedKafka) -> None:
    from infra.streams.broker import ensure_topics
    from infra.streams.cloudevents import to_kafka_record
    from infra.streams.relay import LINGER_MS, RECORD_BATCH_BYTES, Relay
    from tests.bench_relay import raw_send, timed

    head = system.projector.head()
    records = [to_kafka_record(system.app.decode(n), n.id)
               for n in system.app.recorder.select_notifications(1, limit=head)]
    # Rounds alternate the relay (a fresh one, its own topics) and the raw producer (a fresh topic), so a change in
    # the shared machine's load hits each about alike; best of 3 each.
    took, raw = float("inf"), float("inf")
    for i in range(ROUNDS):
        fresh = Relay(system.app, system.database_url, kafka.bootstrap, prefix=f"benchrelay{i}", name=f"bench{i}")
        took = min(took, timed(fresh.run_until))
        ensure_topics(kafka.bootstrap, [f"benchraw{i}.events"], 3, 10)
        raw = min(raw, raw_send(kafka.bootstrap, f"benchraw{i}.events", records, acks="all",
                                batch_size=RECORD_BATCH_BYTES, linger_ms=LINGER_MS, compression_type=None, retries=0,
                                enable_idempotence=False, max_in_flight_requests_per_connection=1))
    run.add(Figure("relay", "relay (read, envelope, send, flush, checkpoint)", head / took, "events/s",
                   "raw kafka-python producer, relay's settings", len(records) / raw, 0.8,
                   note=f"{head:,} events, 3 partitions, Tansu in memory; best of {ROUNDS} rounds alternating the relay"
                        " and the raw producer"))


# ---------------------------------------------------------------------------------------------- latency


POSITIONS_LOG = (
    "CREATE TABLE bench_positions (name text NOT NULL, position bigint NOT NULL,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE FUNCTION bench_log_position() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO bench_positions (name, position) VALUES (NEW.name, NEW.position); RETURN NEW; END $$",
    "CREATE TRIGGER bench_log_position AFTER UPDATE ON dudao_projection_positions FOR EACH ROW"
    " EXECUTE FUNCTION bench_log_position()",
)


def issue(system: System, rate: int, seconds: float) -> tuple[dict[str, datetime], float]:
    """StartCampaign commands on a fixed schedule of `rate`/s (from one thread per 100/s, at most CLIENTS); returns
    each event's acceptance time and the rate achieved (lower than asked when the machine cannot keep up)."""
    threads = max(1, min(CLIENTS, rate // 100))
    interval, total = 1.0 / rate, int(rate * seconds)
    accepted: dict[str, datetime] = {}
    started = time.perf_counter()

    def one_thread(t: int) -> None:
        for i in range(t, total, threads):
            time.sleep(max(0.0, started + i * interval - time.perf_counter()))
            result = system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="延迟测试",
                                                         jurisdiction="测试市", launched_on=date(2021, 12, 3)), ADMIN)
            accepted[result.events[0]["event_id"]] = datetime.now(timezone.utc)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one_thread, range(threads)))
    return accepted, len(accepted) / (time.perf_counter() - started)


def wait_until(check: Callable[[], bool], deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            raise RuntimeError(f"{what} not reached in {deadline_s} s")
        time.sleep(0.1)


def percentiles(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.99) - 1)]


def latency(run: Run, pg: EmbeddedPostgres, kafka: EmbeddedKafka, rates: list[int], seconds: float) -> None:
    from consumers.base import KafkaOptions
    from infra.streams.relay import Relay
    from tests.bench_latency import EffectRecorder, run_effect_recorder

    url = database(pg, "latency")
    system = bootstrap(url, pool_size=CLIENTS + 2)
    prefill(system, run.size)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in POSITIONS_LOG:
            conn.execute(statement)
    relay_ = Relay(system.app, url, kafka.bootstrap, prefix="benchlat")
    EffectRecorder(url, KafkaOptions(kafka.bootstrap), "bench-latency", ["benchlat.campaign"]).create_tables()
    # The consumer runs in a process of its own, as production runs consumers: in this process it would share the
    # GIL with the 8 threads issuing commands (at ~700 commands/s it then took ~1 s a poll of 500 records and the
    # effects lagged seconds behind a relay that kept up; in its own process it keeps up at ~990/s).
    consumer = multiprocessing.get_context("spawn").Process(
        target=run_effect_recorder, args=(url, kafka.bootstrap, "bench-latency", ["benchlat.campaign"]), daemon=True)
    consumer.start()
    threads = [threading.Thread(target=relay_.run_forever, daemon=True),
               threading.Thread(target=system.projector.run_forever, daemon=True)]
    for t in threads:
        t.start()

    def effects() -> dict[str, datetime]:
        with psycopg.connect(url) as conn:
            return dict(conn.execute("SELECT event_id, committed_at FROM bench_effects").fetchall())

    try:
        system.service.handle(StartCampaign(command_id="warm", campaign_id=uuid4(), name="预热", jurisdiction="测试市",
                                            launched_on=date(2021, 12, 3)), ADMIN)
        wait_until(lambda: len(effects()) >= 1, 120 + run.size / 2000, "the first consumer effect")
        relevant = [p.name for p in system.projector.projections if any(t.endswith("CampaignStarted") for t in p.topics)]
        for rate in rates:
            measure_rate(run, system, rate, seconds, relevant, effects)
    finally:
        relay_.stop()
        consumer.terminate()
        consumer.join(10)
        system.projector.stop()
        for t in threads:
            t.join(10)
        system.close()


def measure_rate(run: Run, system: System, rate: int, seconds: float, relevant: list[str],
                 effects: Callable[[], dict[str, datetime]]) -> None:
    """p50/p99 of command accepted → every read model holding campaigns updated, and → consumer effect committed."""
    accepted, achieved = issue(system, rate, seconds)
    wait_until(lambda: accepted.keys() <= effects().keys(), 120, "every consumer effect")
    head = system.projector.head()
    wait_until(lambda: all(system.projector.position(system.projector.projection(n)) >= head for n in relevant),
               120, "every read model")
    done = effects()
    table = f"public.{system.app.store.events_table_name}"
    with psycopg.connect(system.database_url) as conn:
        ids = {f"{o}:{v}": nid for nid, o, v in conn.execute(
            f"SELECT notification_id, originator_id, originator_version FROM {table}"
            " WHERE originator_version = 1 AND notification_id > %s", (run.size,)).fetchall()}
        log: dict[str, tuple[list[int], list[datetime]]] = {}
        for name, position, at in conn.execute("SELECT name, position, at FROM bench_positions ORDER BY name, at"):
            positions, ats = log.setdefault(name, ([], []))
            positions.append(position)
            ats.append(at)

    def read_model_at(nid: int) -> datetime:
        """When the last of the relevant projections first stored a position at or past the event."""
        return max(log[n][1][bisect.bisect_left(log[n][0], nid)] for n in relevant)

    to_consumer = [(done[e] - t).total_seconds() * 1000 for e, t in accepted.items()]
    to_read_model = [(read_model_at(ids[e]) - t).total_seconds() * 1000 for e, t in accepted.items()]
    note = f"asked {rate}/s, achieved {achieved:.0f}/s over {len(accepted)} commands"
    for what, ms, target in (("read model", to_read_model, 50.0), ("consumer", to_consumer, 250.0)):
        p50, p99 = percentiles(ms)
        goal = target if rate == 100 else None
        run.add(Figure("latency", f"{rate}/s → {what} p50", p50, "ms", lower_is_better=True, note=note),
                Figure("latency", f"{rate}/s → {what} p99", p99, "ms", target=goal, lower_is_better=True, note=note))


# ---------------------------------------------------------------------------------------------- import and verify


def task_import(run: Run, pg: EmbeddedPostgres, rows: int) -> None:
    from infra.clock import SimulatedClock
    from infra.imports.tasks import import_tasks
    from tests.integration.test_task_import import big_file
    from tests.support.escalation_kit import at
    from tests.support.problem_world import build_world

    clock = SimulatedClock(at("2021-12-27"))
    system = bootstrap(database(pg, "imports"), clock=clock, pool_size=4)
    world = build_world(system)
    clock.set(at("2021-12-27"))
    world.catch_up()
    data = big_file(rows)
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        started = time.perf_counter()
        report = import_tasks(system.service, conn, world.campaign_id, data, "bench.xlsx", world.actors["hq"])
        took = time.perf_counter() - started
    if report.count("created") != rows:
        raise RuntimeError(f"import created {report.count('created')} of {rows} rows: {report.errors[:3]}")
    run.add(Figure("import", f"task import ({rows} rows, xlsx, check + write)", rows / took, "rows/s"))
    system.close()


def verify(run: Run, pg: EmbeddedPostgres, events: int) -> None:
    from infra.audit import chain
    from infra.audit.history import events_table
    from tests.bench_audit import fill, raw_baseline, verified

    url = database(pg, "audit")
    system = bootstrap(url, pool_size=2)
    table = f"public.{system.app.store.events_table_name}"
    fill(url, table, events)
    with psycopg.connect(url, autocommit=True) as conn:
        chain.create_tables(conn)
    chain.Chainer(url, events_table(system.app), batch_size=20_000).catch_up()
    raw_n, raw = raw_baseline(url, table)
    report, best = verified(system)
    run.add(Figure("verify", f"dudao verify (best of 3, {report.events:,} events)", report.events / best.wall,
                   "events/s", "raw SELECT + chained SHA-256", raw_n / raw.wall))
    system.close()


# ---------------------------------------------------------------------------------------------- report


def table(run: Run) -> str:
    lines = [f"{'section':<18} {'figure':<44} {'value':>12} {'unit':<11} {'baseline':>12}  {'ratio':>6}  target",
             "-" * 130]
    for f in run.figures:
        base = f"{f.baseline_value:>12,.1f}" if f.baseline_value is not None else f"{'—':>12}"
        ratio = f"{f.ratio:>6.3f}" if f.ratio is not None else f"{'':>6}"
        lines.append(f"{f.section:<18} {f.name[:44]:<44} {f.value:>12,.1f} {f.unit:<11} {base}  {ratio}  {f.verdict()}")
    baselines = sorted({f.baseline for f in run.figures if f.baseline})
    lines += ["", "baselines: " + "; ".join(baselines) if baselines else ""]
    notes = [f"{f.section}: {f.note}" for f in run.figures if f.note]
    lines += [f"note: {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines)


def delta(run: Run, previous: dict[str, Any]) -> str:
    before = {(f["section"], f["name"]): f for f in previous.get("figures", [])}
    lines = [f"change against {previous.get('started')} (size {previous.get('size')}, load {previous.get('load_before')}):"]
    for f in run.figures:
        old = before.get((f.section, f.name))
        if old and old["value"]:
            lines.append(f"  {f.section:<18} {f.name[:44]:<44} {old['value']:>12,.1f} → {f.value:>12,.1f}"
                         f"  ({(f.value / old['value'] - 1) * 100:+.0f}%)")
    return "\n".join(lines)


def save(run: Run, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    body = asdict(run) | {"figures": [asdict(f) | {"ratio": f.ratio, "verdict": f.verdict()} for f in run.figures]}
    text = json.dumps(body, ensure_ascii=False, indent=2)
    path = out / f"{run.started.replace(':', '').replace('-', '')}.json"
    path.write_text(text)
    (out / "latest.json").write_text(text)
    return path


SECTIONS = ("http", "inproc", "rebuild", "relay", "latency", "import", "verify")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20_000,
                        help="events in each store before measuring (rebuild and relay read them all; verify reads "
                             "at least 100,000); 100000 or 1000000 for the history runs of issue 14")
    parser.add_argument("--commands", type=int, default=2000, help="commands per write measurement (over HTTP: over 3 rounds)")
    parser.add_argument("--visits", type=int, default=200, help="10-finding visits over HTTP")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of steady load per latency rate")
    parser.add_argument("--rates", default="100,1000", help="commands/s asked for in the latency runs")
    parser.add_argument("--import-rows", type=int, default=500)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--all", action="store_true", help="then run every other tests.bench_* module as well")
    args = parser.parse_args(argv)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    only = set(args.only.split(","))
    run = Run(started=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), size=args.size, load_before=load(),
              cores=os.cpu_count())
    print(f"bench {run.started}: size {args.size:,}, load average {run.load_before} on {run.cores} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="dudao-bench-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        pg, kafka = start_postgres(tmp / "pg"), start_kafka(tmp / "kafka")
        try:
            steps: list[tuple[str, Callable[[], None]]] = [
                ("http", lambda: writes_over_http(run, pg, kafka, tmp, args.commands, args.visits)),
                ("inproc", lambda: writes_in_process(run, pg, args.commands)),
                ("rebuild", lambda: None), ("relay", lambda: None),
                ("latency", lambda: latency(run, pg, kafka, [int(r) for r in args.rates.split(",")], args.seconds)),
                ("import", lambda: task_import(run, pg, args.import_rows)),
                ("verify", lambda: verify(run, pg, max(args.size, 100_000))),
            ]
            store: System | None = None
            for section, step in steps:
                if section not in only:
                    continue
                print(f"--- {section} (load {load()})", flush=True)
                try:
                    if section in ("rebuild", "relay"):
                        store = store or store_of(pg, args.size)
                        rebuild(run, store) if section == "rebuild" else relay(run, store, kafka)
                    else:
                        step()
                except Exception as exc:  # noqa: BLE001  # one broken section must not cost the others; it is reported and fails the run
                    run.errors[section] = f"{type(exc).__name__}: {exc}"
                    print(f"  {section} FAILED: {run.errors[section]}", file=sys.stderr, flush=True)
            if store:
                store.close()
        finally:
            kafka.stop()
            pg.stop()
    run.load_after = load()
    previous = args.out / "latest.json"
    before = json.loads(previous.read_text()) if previous.exists() else None
    print()
    print(table(run))
    print(f"load average: before {run.load_before}, after {run.load_after} on {run.cores} cores")
    if before:
        print(delta(run, before))
    print(f"figures written to {save(run, args.out)} and {args.out / 'latest.json'}")
    if run.errors:
        print(f"FAILED sections: {', '.join(run.errors)}", file=sys.stderr)
    if args.all:
        import importlib

        for module in ("tests.bench_visit", "tests.bench_escalator", "tests.bench_metrics", "tests.bench_liaison",
                       "tests.bench_dashboard", "tests.bench_scale", "tests.bench_workers"):
            print(f"--- {module}", flush=True)
            importlib.import_module(module).main()
    return 1 if run.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
