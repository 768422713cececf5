"""Benchmark of the audit: `dudao verify` speed over 1M events and the as-of latency of an entity with 1,000 events.

Run: `.venv/bin/python -m tests.bench_audit [N]`. A scratch database on an embedded PostgreSQL gets N stored events
(default 1,000,000) by direct INSERT of realistic rows (not through commands), is chained, then verified; the raw
baseline is one SELECT of the same rows through a server-side cursor with SHA-256 of each row. Then one aggregate
with 1,000 events (a place renamed 999 times) is folded as of a time in its middle.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import psycopg

from domain.structure.place import PlaceRegistered, PlaceRenamed
from domain.kernel.base import Actor, Meta
from infra.audit import chain, queries as aq
from infra.audit.history import events_table
from infra.bootstrap import bootstrap
from infra.runtime.embedded import start_postgres
from infra.store.event_store import StoredDomainEvent

T0 = datetime(2021, 12, 1, tzinfo=timezone.utc)
STATE = ('{"campaign_id":"%s","category":"sanitation","description":"人行道垃圾堆积，影响市容","meta":{"actor":'
         '{"name":"督导员","person_id":"%s","role":"supervisor"},"campaign_id":"%s","causation_id":null,"command_id":'
         '"%s","correlation_id":"%s","occurred_at":"2021-12-23T02:00:00Z","reason":null,"recorded_at":'
         '"2021-12-23T02:00:00Z"},"place_id":"%s","problem_id":"%s","severity":"normal","source":"hotline"}')


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


def raw_baseline(url: str, table: str) -> tuple[int, float]:
    """One SELECT of every row through a server-side cursor, SHA-256 of each row's columns."""
    began = time.perf_counter()
    count = 0
    with psycopg.connect(url) as conn, conn.cursor(name="raw", binary=True) as cur:
        cur.execute(f"SELECT notification_id, originator_id, originator_version, topic, state FROM {table}"
                    " ORDER BY notification_id")
        sha = hashlib.sha256
        while rows := cur.fetchmany(20_000):
            for nid, oid, version, topic, state in rows:
                sha(b"%d|%s|%d|%s|" % (nid, oid.bytes, version, topic.encode()) + state).digest()
            count += len(rows)
    return count, time.perf_counter() - began


def as_of_latency(system: object, app: object) -> float:
    from infra.bootstrap import System

    assert isinstance(system, System)
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
    times = []
    for _ in range(5):
        began = time.perf_counter()
        view = aq.as_of(system.app, ("place",), place, at, "recorded")
        times.append(time.perf_counter() - began)
    assert view["events_counted"] == 501 and view["events_total"] == 1000
    return min(times)


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
        raw_n, raw_s = raw_baseline(pg.uri, table)
        report = aq.verify(system.app, pg.uri, None)
        assert report.intact and report.events == raw_n == n, report.as_json()
        print(f"raw SELECT + sha256: {raw_n / raw_s:,.0f} rows/s ({raw_s:.2f} s)")
        print(f"dudao verify:        {report.events / report.seconds:,.0f} events/s ({report.seconds:.2f} s)")
        print(f"verify / raw:        {(report.events / report.seconds) / (raw_n / raw_s):.2f}")
        latency = as_of_latency(system, system.app)
        print(f"as-of of an entity with 1,000 events (fold 501 of them, names then in force): {latency * 1000:.1f} ms")
        system.close()
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
