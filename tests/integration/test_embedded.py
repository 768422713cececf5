"""Embedded PostgreSQL, embedded Tansu broker, and the process supervisor (DESIGN.md §10)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer

from infra.runtime.embedded import EmbeddedKafka, start_kafka, start_postgres
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def postgres_pids(data_dir: Path) -> list[int]:
    """Live (non-zombie) postgres processes serving `data_dir`."""
    return [p.pid for p in psutil.process_iter(["name", "cmdline", "status"])
            if p.info["name"] == "postgres" and p.info["status"] != psutil.STATUS_ZOMBIE
            and str(data_dir) in (p.info["cmdline"] or [])]


def round_trip(bootstrap: str) -> bytes:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        producer.send(topic, b"hello").get(timeout=10)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    try:
        return next(iter(consumer)).value
    finally:
        consumer.close()


def test_postgres_starts_answers_and_stops_cleanly(tmp_path: Path) -> None:
    """PostgreSQL starts in a tmp dir, answers `select 1`, and stop() leaves no process."""
    data_dir = (tmp_path / "pg").resolve()
    pg = start_postgres(data_dir)
    try:
        with psycopg.connect(pg.uri) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert postgres_pids(data_dir)
    finally:
        pg.stop()
    assert postgres_pids(data_dir) == []


def test_postgres_second_start_reuses_running_server(tmp_path: Path) -> None:
    """start_postgres on a data dir whose server is running reuses it, and a stop restarts."""
    data_dir = (tmp_path / "pg").resolve()
    first = start_postgres(data_dir)
    try:
        pids = postgres_pids(data_dir)
        again = start_postgres(data_dir)
        assert again.uri == first.uri and postgres_pids(data_dir) == pids
        first.stop()
        restarted = start_postgres(data_dir)
        with psycopg.connect(restarted.uri) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        start_postgres(data_dir).stop()
    assert postgres_pids(data_dir) == []


def test_kafka_round_trip_and_stop(tmp_path: Path) -> None:
    """Tansu starts, a produced message is consumed back, and stop() leaves no process."""
    broker = start_kafka(tmp_path / "var")
    try:
        assert (tmp_path / "var" / "tansu.pid").read_text().strip() == str(broker.process.pid)
        assert round_trip(broker.bootstrap) == b"hello"
    finally:
        broker.stop()
    assert broker.process.returncode is not None and gone(broker.process.pid)
    assert "tansu" in (tmp_path / "var" / "tansu.log").read_text()


def test_kafka_restart_gives_empty_broker_on_same_port(own_kafka: EmbeddedKafka) -> None:
    """restart() brings back a working broker on the same port with no topics."""
    from kafka import KafkaAdminClient

    kafka = own_kafka

    assert round_trip(kafka.bootstrap) == b"hello"
    old_pid, bootstrap = kafka.process.pid, kafka.bootstrap
    kafka.restart()
    assert kafka.bootstrap == bootstrap and gone(old_pid)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert admin.list_topics() == []
    finally:
        admin.close()
    assert round_trip(kafka.bootstrap) == b"hello"


def test_kafka_start_kills_stale_broker_from_pid_file(tmp_path: Path) -> None:
    """A broker left running by a previous run (pid file) is killed by the next start."""
    stale = start_kafka(tmp_path / "var")
    fresh = start_kafka(tmp_path / "var")
    try:
        wait_until(lambda: stale.process.poll() is not None, "the stale broker to exit", 20)
        assert round_trip(fresh.bootstrap) == b"hello"
    finally:
        fresh.stop()
        stale.stop()


SUPERVISOR_SNIPPET = textwrap.dedent("""
    import sys
    from infra.runtime.supervisor import Supervisor
    sup = Supervisor()
    for name, code in {children!r}:
        sup.add(name, [sys.executable, "-c", code])
    print("PIDS", *[c.process.pid for c in sup.children], flush=True)
    sys.exit(sup.run_until_stopped())
""")
SLEEP = "import time; time.sleep(60)"


def spawn_supervisor(children: list[tuple[str, str]]) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR_SNIPPET.format(children=children)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[0] == "PIDS", first
    return proc, [int(pid) for pid in first[1:]]


def test_supervisor_sigterm_stops_all_children() -> None:
    """After the supervisor gets SIGTERM, both sleeping children are gone and it exits 0."""
    proc, pids = spawn_supervisor([("a", SLEEP), ("b", SLEEP)])
    assert all(not gone(pid) for pid in pids)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    wait_until(lambda: all(gone(pid) for pid in pids), "both children to be gone", 20)

# A child exiting on its own no longer stops the rest (issue 9): see tests/integration/test_supervisor.py.
