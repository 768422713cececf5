"""`python -m tests.bench_workers`: how 2 API workers compare with 1 here (issue 14's ≥ 1.6× target), and what bounds it.

`dudao serve --workers 1` and `--workers 2` run alternately (three times each) on one embedded PostgreSQL; 8 clients
send 1,500 `register_place` commands to each; meanwhile `pg_stat_activity` is sampled every 10 ms and the wait events
of the database's active backends are counted. Printed per run: the rate, the share of the machine left idle, the CPU
milliseconds a command cost the API server (all its processes), PostgreSQL (all its processes) and the bench client,
and the most frequent waits. What it showed (docs/performance.md): with the workers' sockets fixed (TCP_NODELAY) and
the lean client, 2 workers leave ~10 % of the 2 cores idle, so they are bounded by CPU: at most 2 × server /
(server + PostgreSQL + client) CPU per command against one worker's 1 / server. Nothing is asserted.
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


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of the processes still alive."""
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def groups() -> dict[str, list[psutil.Process]]:
    """The processes whose CPU is counted: the API server and its workers, and PostgreSQL's."""
    found: dict[str, list[psutil.Process]] = {"server": [], "postgres": []}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres":
            found["postgres"].append(proc)
        elif "bin/dudao serve" in cmdline:
            found["server"] += [proc, *proc.children(recursive=True)]
    return found


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
            for n in (1, 2, 1, 2, 1, 2):
                with ExitStack() as servers:
                    base = servers.enter_context(b.server([str(b.ROOT / ".venv/bin/dudao"), "serve", "--workers", str(n)],
                                                          env, tmp / f"workers{n}.log"))
                    waits: collections.Counter[str] = collections.Counter()
                    done = threading.Event()
                    sampler = threading.Thread(target=sample_waits, args=(url, waits, done))
                    sampler.start()
                    me = psutil.Process()
                    counted = {**groups(), "client": [me]}
                    before = {name: cpu_seconds(procs) for name, procs in counted.items()}
                    busy_before = psutil.cpu_times()
                    me.cpu_percent()
                    rate = b.http_rate(base, admin, "/commands/register_place",
                                       lambda _: b.place_body(world.campaign_id), COMMANDS)
                    busy_after = psutil.cpu_times()
                    per_command = {name: (cpu_seconds(procs) - before[name]) / COMMANDS * 1000
                                   for name, procs in counted.items()}
                    done.set()
                    sampler.join()
                    idle = (busy_after.idle - busy_before.idle) / (sum(busy_after) - sum(busy_before))
                    print(f"workers={n}: {rate:,.0f} commands/s, bench client CPU {me.cpu_percent():.0f}%, "
                          f"machine idle {idle:.0%}, CPU ms per command "
                          + ", ".join(f"{k} {v:.2f}" for k, v in per_command.items())
                          + f" (the 2 cores' ceiling at that cost: {2000 / sum(per_command.values()):,.0f}/s)"
                          + f"; waits per {COMMANDS:,} commands: {waits.most_common(6)}", flush=True)
        finally:
            pg.stop()
            kafka.stop()


if __name__ == "__main__":
    main()
