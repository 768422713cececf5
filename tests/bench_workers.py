"""`python -m tests.bench_workers`: why 2 API workers do fewer commands/s than 1 here (issue 14's ≥ 1.6× target).

`dudao serve --workers 1` and `--workers 2` run alternately (twice each) on one embedded PostgreSQL; 8 clients send
1,500 `register_place` commands to each; meanwhile `pg_stat_activity` is sampled every 10 ms and the wait events
of the database's active backends are counted, and the bench client's own CPU is read. Printed per run: the rate,
the client's CPU, and the most frequent waits. What it showed here (docs/performance.md): two workers slower than
one in every run, the client not the cause, and `Lock:relation` waits (the events table's lock, taken by every
append) only with two; why two are slower is not established. Nothing is asserted.
"""

from __future__ import annotations

import collections
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
import psycopg

from infra.bootstrap import bootstrap
from infra.runtime.embedded import start_kafka, start_postgres
from tests import bench as b

COMMANDS = 1500


def sample_waits(url: str, waits: collections.Counter[str], done: threading.Event) -> None:
    """Count the wait events of the database's active backends every 10 ms until `done`."""
    with psycopg.connect(url, autocommit=True) as c:
        while not done.is_set():
            for (wait,) in c.execute("SELECT coalesce(wait_event_type || ':' || wait_event, state) FROM pg_stat_activity"
                                     " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                                     " AND state <> 'idle'"):
                waits[wait] += 1
            time.sleep(0.01)


def main() -> None:
    from infra.commands.grants import create_token, ensure_tokens_table
    from tests.support.problem_world import build_world

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        pg, kafka = start_postgres(tmp / "pg"), start_kafka(tmp / "kafka")
        try:
            url = b.database(pg, "workers")
            system = bootstrap(url, pool_size=4)
            world = build_world(system)
            system.projector.catch_up()
            with psycopg.connect(url, autocommit=True) as conn:
                ensure_tokens_table(conn)
                admin = create_token(conn, "admin", name="bench")
            system.close()
            env = {"DUDAO_DATABASE_URL": url, "DUDAO_VAR_DIR": str(tmp / "var"), "DUDAO_LOG_FORMAT": "json",
                   "DUDAO_CREATE_TABLES": "n", "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap}
            for n in (1, 2, 1, 2):
                with ExitStack() as servers:
                    base = servers.enter_context(b.server([str(b.ROOT / ".venv/bin/dudao"), "serve", "--workers", str(n)],
                                                          env, tmp / f"workers{n}.log"))
                    waits: collections.Counter[str] = collections.Counter()
                    done = threading.Event()
                    sampler = threading.Thread(target=sample_waits, args=(url, waits, done))
                    sampler.start()
                    me = psutil.Process()
                    me.cpu_percent()
                    rate = b.http_rate(base, admin, "/commands/register_place",
                                       lambda _: b.place_body(world.campaign_id), COMMANDS)
                    done.set()
                    sampler.join()
                    print(f"workers={n}: {rate:,.0f} commands/s, bench client CPU {me.cpu_percent():.0f}%, "
                          f"waits per {COMMANDS:,} commands: {waits.most_common(6)}", flush=True)
        finally:
            pg.stop()
            kafka.stop()


if __name__ == "__main__":
    main()
