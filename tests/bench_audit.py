"""Benchmark of the audit: `dudao verify` speed over 1M events and the as-of latency of an entity with 1,000 events.

Run: `.venv/bin/python -m tests.bench_audit [N]`. A scratch database on an embedded PostgreSQL gets N stored events
(default 1,000,000) by direct INSERT of realistic rows (not through commands), is chained, then verified.

What each figure is, and why (the machine has two cores, usually shared with other work: wall-clock rates move with
the load, so CPU time is printed beside them — it does not):

- raw baseline: one SELECT of exactly what verify reads (each event's canonical record, as PostgreSQL builds it,
  with its link) through a server-side cursor, and the same chained SHA-256 of each record in a plain loop on one
  thread; no comparison, no read-ahead thread, no digests. verify / raw is what checking and reading ahead add.
- bounds: the same SELECT read without hashing (what PostgreSQL and psycopg take to produce the rows), and SHA-256
  alone over records already in memory (one core). With both cores free, verify can go no faster than the slower of
  its two processes allows — the Python one (decoding rows, hashing) or PostgreSQL's (reading both tables, building
  records, sending them) — which is the "two free cores" figure.
- dudao verify: the best of three runs of `infra.audit.verify.verify` (what `dudao verify` runs) on its own
  connection, with the CPU it and its PostgreSQL backend used.

Then one aggregate with 1,000 events (a place renamed 999 times) is read as of a time in its middle, best of five.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
import psycopg
from psycopg.rows import tuple_row

from domain.structure.place import PlaceRegistered, PlaceRenamed
from domain.kernel.base import Actor, Meta
from infra.audit import chain, queries as aq, verify as vf
from infra.audit.chain import CHAIN_TABLE, RECORD_SQL
from infra.audit.history import events_table
from infra.bootstrap import System, bootstrap
from infra.runtime.embedded import start_postgres
from infra.store.event_store import StoredDomainEvent

T0 = datetime(2021, 12, 1, tzinfo=timezone.utc)
STATE = ('{"campaign_id":"%s","category":"sanitation","description":"人行道垃圾堆积，影响市容","meta":{"actor":'
         '{"name":"督导员","person_id":"%s","role":"supervisor"},"campaign_id":"%s","causation_id":null,"command_id":'
         '"%s","correlation_id":"%s","occurred_at":"2021-12-23T02:00:00Z","reason":null,"recorded_at":'
         '"2021-12-23T02:00:00Z"},"place_id":"%s","problem_id":"%s","severity":"normal","source":"hotline"}')
SAMPLE = 100_000  # records hashed in memory for the SHA-256 bound


def fill(url: str, table: str, n: int) -> None:
    """n rows like a reported problem's (~560 bytes of state each), inserted by SQL in 100k-row statements."""
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, n, 100_000):
            conn.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                         " SELECT gen_random_uuid(), 1, 'dudao.problem.ProblemReported',"
                         f" convert_to(format(%s, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),"
                         f" gen_random_uuid(), gen_random_uuid(), gen_random_uuid()), 'UTF8')"
                         f" FROM generate_series(1, %s)", (STATE.replace("%s", "%s"), min(100_000, n - start)))
        conn.execute(f"VACUUM ANALYZE {table}")


class Measured:
    """Wall time and the CPU time of this process and of one connection's PostgreSQL backend over a block."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.backend = psutil.Process(conn.info.backend_pid)

    def __enter__(self) -> Measured:
        self.wall, self.cpu, self.pg = time.perf_counter(), _cpu(os.times()), _cpu(self.backend.cpu_times())
        return self

    def __exit__(self, *_exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = _cpu(os.times()) - self.cpu
        self.pg = _cpu(self.backend.cpu_times()) - self.pg

    def line(self, events: int) -> str:
        return (f"{events / self.wall:>9,.0f} events/s ({self.wall:5.2f} s)   CPU per event: Python {self.cpu / events * 1e6:.2f} µs,"
                f" PostgreSQL {self.pg / events * 1e6:.2f} µs")


def _cpu(times: Any) -> float:
    return float(times.user + times.system)


def stream(conn: psycopg.Connection[Any], table: str, body: Callable[[list[Any]], None]) -> int:
    """Every event's record with its link, as verify's quick pass reads them: one server-side cursor, 5,000 rows a
    fetch, on this thread."""
    count = 0
    query = (f"SELECT e.notification_id, e.record, l.prev_id, l.hash FROM (SELECT notification_id, {RECORD_SQL} AS record"
             f" FROM {table}) e LEFT JOIN {CHAIN_TABLE} l ON l.notification_id = e.notification_id ORDER BY e.notification_id")
    with conn.transaction(), conn.cursor(name="bench", binary=True, row_factory=tuple_row) as cur:
        cur.execute(query)
        while rows := cur.fetchmany(vf.FETCH):
            body(rows)
            count += len(rows)
    return count


def raw_baseline(url: str, table: str) -> tuple[int, Measured]:
    """The SELECT, each record hashed onto the previous hash and id as the chain does, in a plain loop."""
    prev_id, prev_hash = 0, chain.GENESIS
    pack, sha = chain._ID.pack, hashlib.sha256

    def hashed(rows: list[Any]) -> None:
        nonlocal prev_id, prev_hash
        for nid, record, _link_prev, _link_hash in rows:
            prev_id, prev_hash = nid, sha(prev_hash + pack(prev_id) + record).digest()

    with psycopg.connect(url) as conn, Measured(conn) as m:
        n = stream(conn, table, hashed)
    return n, m


def read_alone(url: str, table: str) -> tuple[int, Measured, list[bytes]]:
    """The SELECT without hashing; keeps the first SAMPLE records for the SHA-256 bound."""
    sample: list[bytes] = []

    def keep(rows: list[Any]) -> None:
        if len(sample) < SAMPLE:
            sample.extend(r[1] for r in rows[:SAMPLE - len(sample)])

    with psycopg.connect(url) as conn, Measured(conn) as m:
        n = stream(conn, table, keep)
    return n, m, sample


def sha_alone(records: list[bytes]) -> float:
    """Events/s that SHA-256 of (previous hash ‖ previous id ‖ record), as verify hashes, allows on one core."""
    pack, sha, prev = chain._ID.pack, hashlib.sha256, chain.GENESIS
    began = time.process_time()
    for i, record in enumerate(records):
        prev = sha(prev + pack(i) + record).digest()
    return len(records) / (time.process_time() - began)


def verified(system: System, runs: int = 3) -> tuple[vf.Report, Measured]:
    best: tuple[vf.Report, Measured] | None = None
    for i in range(runs):
        with psycopg.connect(system.database_url) as conn, Measured(conn) as m:
            report = vf.verify(conn, events_table(system.app), key=None)
        assert report.intact, report.as_json()
        print(f"  verify run {i + 1}: {m.line(report.events)}   load {os.getloadavg()[0]:.1f}", flush=True)
        if best is None or m.wall < best[1].wall:
            best = report, m
    assert best is not None
    return best


def as_of_latency(system: System) -> tuple[float, float]:
    """Best wall time and best CPU time of this process, of five as-of reads of a place with 1,000 events."""
    place, campaign = uuid4(), uuid4()
    actor = Actor(role="admin", name="bench")

    def meta(i: int) -> Meta:
        t = T0 + timedelta(minutes=i)
        return Meta(actor=actor, occurred_at=t, recorded_at=t, correlation_id=uuid4(), command_id=f"bench-{i}",
                    campaign_id=campaign)

    events = [StoredDomainEvent(place, 1, PlaceRegistered(meta=meta(0), place_id=place, campaign_id=campaign,
                                                          name="第一网格", place_kind="grid", parent_id=None))]
    events += [StoredDomainEvent(place, i + 1, PlaceRenamed(meta=meta(i), place_id=place, name=f"第一网格{i}", previous_name=f"第一网格{i - 1}"))
               for i in range(1, 1000)]
    system.app.save(*events)
    at = T0 + timedelta(minutes=500)
    walls, cpus = [], []
    for _ in range(5):
        began, cpu = time.perf_counter(), time.process_time()
        view = aq.as_of(system.app, ("place",), place, at, "recorded")
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
    assert view["events_counted"] == 501 and view["events_total"] == 1000
    assert view["state"]["name"] == "第一网格500" and view["responsible"] == []
    return min(walls), min(cpus)


def main(n: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="dudao-bench-audit-"))
    base.chmod(0o755)
    pg = start_postgres(base / "data")
    try:
        system = bootstrap(pg.uri, create_tables=True)
        table = f"public.{system.app.store.events_table_name}"
        began = time.perf_counter()
        fill(pg.uri, table, n)
        print(f"inserted {n:,} events in {time.perf_counter() - began:.1f} s")
        with psycopg.connect(pg.uri, autocommit=True) as conn:
            chain.create_tables(conn)
        began = time.perf_counter()
        chain.Chainer(pg.uri, events_table(system.app), batch_size=20_000).catch_up()
        chaining = time.perf_counter() - began
        print(f"chained {n:,} events in {chaining:.1f} s ({n / chaining:,.0f} events/s)")
        raw_n, raw = raw_baseline(pg.uri, table)
        read_n, read, sample = read_alone(pg.uri, table)
        report, best = verified(system)
        assert report.events == raw_n == read_n == n
        rate, raw_rate = report.events / best.wall, raw_n / raw.wall
        print(f"raw SELECT + sha256, one thread: {raw.line(raw_n)}")
        print(f"dudao verify (best of 3):        {best.line(report.events)}")
        print(f"verify / raw:                    {rate / raw_rate:.2f}")
        print(f"bound, reading alone:            {read.line(read_n)}")
        print(f"bound, SHA-256 alone (1 core):   {sha_alone(sample):>9,.0f} events/s")
        free = n / max(best.cpu, best.pg)
        print(f"bound, two free cores:           {free:>9,.0f} events/s (N / the larger of verify's Python and "
              f"PostgreSQL CPU: {best.cpu:.2f} s, {best.pg:.2f} s)")
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        wall, cpu = as_of_latency(system)
        print(f"as-of of an entity with 1,000 events (fold 501 of them, names then in force): {wall * 1000:.1f} ms"
              f" (best of 5; {cpu * 1000:.1f} ms of Python CPU)")
        system.close()
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
