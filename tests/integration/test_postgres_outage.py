"""PostgreSQL stopped for 5 s, 30 s and 120 s under a write loop, with the real processes running.

A server of this module's own (in a temp dir: the session's shared server is never stopped) serves
`dudao serve`, `dudao escalate`, `dudao relay` and `dudao project run`, each a subprocess as `dudao
run` starts them. A client writes `start_campaign` commands one after another, retrying a refused
command with the same command_id as a field app would. Each outage must show: every answer during it
a 503 `database_unavailable` with `Retry-After` and none slower than a bound (the longest stall is
printed), writes accepted again soon after the server returns, every acknowledged write stored
exactly once, every event on Kafka exactly once, the projections and the escalator going on, the
outage logged once per process when it starts and once when it ends, and no process exited.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from infra.bootstrap import bootstrap
from infra.http.auth import create_token
from infra.runtime.embedded import EmbeddedKafka, EmbeddedPostgres, free_port, start_postgres
from tests.integration.test_relay import assert_exactly_once, read_topics

pytestmark = pytest.mark.integration

DUDAO = str(Path(sys.executable).with_name("dudao"))
PROCESSES = {
    "api": ["serve"],
    "escalator": ["escalate", "--interval", "1", "--poll", "0.5"],
    "relay": ["relay"],
    "projector": ["project", "run"],
}
LONGEST_STALL_BOUND_S = 10.0  # no write may hang longer than this, outage or not
RECOVERY_BOUND_S = 30.0  # writes are accepted again at most this long after PostgreSQL is back


def wait_for(condition: Callable[[], Any], deadline_s: float, what: str) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        try:
            if value := condition():
                return value
        except (httpx.HTTPError, psycopg.Error):
            pass
        assert time.monotonic() < end, f"timed out after {deadline_s} s waiting for {what}"
        time.sleep(0.1)


@dataclass
class Deployment:
    """The module's own PostgreSQL, the shared broker, and the four processes writing JSON logs."""

    base: Path
    pg: EmbeddedPostgres
    url: str
    kafka: EmbeddedKafka
    prefix: str
    token: str
    api: str
    events_table: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in (self.base / f"{name}.log").read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def count(self, name: str, event: str) -> int:
        return sum(1 for e in self.log(name) if e.get("event") == event)

    def said(self, name: str, *events: str) -> list[str]:
        """The named log lines of one process, shortened, for a failure message."""
        return [f"{e.get('timestamp')} {e['event']} {e.get('error', '')}"[:240] for e in self.log(name)
                if e.get("event") in events]

    def stop_postgres(self) -> None:
        self.pg.stop()

    def start_postgres(self) -> None:
        uri = self.pg.uri
        self.pg = start_postgres(self.pg.data_dir)
        assert self.pg.uri == uri  # same socket: the processes reconnect to what they know

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, args).fetchall()

    def exited(self) -> dict[str, int | None]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}


@pytest.fixture(scope="module")
def deployment(kafka: EmbeddedKafka) -> Iterator[Deployment]:
    base = Path(tempfile.mkdtemp(prefix="dudao-outage-"))
    base.chmod(0o755)  # the server runs as its own system user when we are root
    pg = start_postgres(base / "pg")
    with psycopg.connect(pg.uri, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "outage"')
    url = make_conninfo(pg.uri, dbname="outage")
    system = bootstrap(url)
    events_table = system.app.store.events_table_name
    system.close()
    with psycopg.connect(url, autocommit=True) as conn:
        token = create_token(conn, role="admin", name="outage test")
    port = free_port()
    d = Deployment(base, pg, url, kafka, f"t{uuid4().hex[:10]}", token, f"http://127.0.0.1:{port}", events_table)
    env = {**os.environ, "DUDAO_DATABASE_URL": url, "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "DUDAO_TOPIC_PREFIX": d.prefix, "DUDAO_CREATE_TABLES": "n", "DUDAO_LOG_FORMAT": "json",
           "DUDAO_HTTP_PORT": str(port), "DUDAO_VAR_DIR": str(base / "var"), "PYTHONUNBUFFERED": "1"}
    try:
        for name, argv in PROCESSES.items():
            with open(base / f"{name}.log", "wb") as out:
                d.processes[name] = subprocess.Popen([DUDAO, *argv], env=env, stdin=subprocess.DEVNULL, stdout=out,
                                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: httpx.get(f"{d.api}/health").json()["database"]["ok"], 60, "the API to answer")
        wait_for(lambda: d.count("escalator", "escalator_tick") > 0, 60, "the escalator's first tick")
        yield d
    finally:
        for p in d.processes.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in d.processes.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        d.pg.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Attempt:
    """One HTTP request of the write loop."""

    command_id: str
    started: float
    seconds: float
    status: int | None  # None: no HTTP answer at all
    code: str | None = None
    retry_after: str | None = None


class Writer:
    """Writes one campaign after another; a refused command is sent again with the same command_id."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.attempts: list[Attempt] = []
        self.campaigns: dict[str, str] = {}  # command_id → campaign_id of every command sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive(), "the writer hung"

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.d.token}"}
        with httpx.Client(base_url=self.d.api, headers=headers, timeout=180) as client:
            while not self._stop.is_set():
                self._deliver(client)

    def _deliver(self, client: httpx.Client) -> None:
        """Send one new command until it is acknowledged (the loop's stop waits for that)."""
        command_id, campaign_id = f"outage-{uuid4()}", str(uuid4())
        self.campaigns[command_id] = campaign_id
        body = {"command_id": command_id, "campaign_id": campaign_id, "name": "停库演练",
                "jurisdiction": "高安市", "launched_on": "2021-12-03"}
        while True:
            started = time.monotonic()
            try:
                r = client.post("/commands/start_campaign", json=body)
            except httpx.HTTPError:
                self.attempts.append(Attempt(command_id, started, time.monotonic() - started, None))
            else:
                code = r.json().get("code") if r.status_code >= 400 else None
                self.attempts.append(Attempt(command_id, started, time.monotonic() - started, r.status_code, code,
                                             r.headers.get("retry-after")))
                if r.is_success:
                    return
            time.sleep(0.05)  # a client would honour Retry-After; this one probes faster to time the stalls

    def acknowledged(self) -> set[str]:
        return {a.command_id for a in self.attempts if a.status is not None and 200 <= a.status < 300}


def acknowledged_after(writer: Writer, moment: float) -> bool:
    return any(a.started >= moment and a.status in (200, 201) for a in list(writer.attempts))


@pytest.mark.parametrize("outage_s", [5, 30, 120])
def test_every_process_rides_out_a_postgres_outage_and_writes_fail_fast_with_503_then_resume_exactly_once(
        deployment: Deployment, outage_s: int) -> None:
    """During the outage each write is a prompt 503 with Retry-After; after it writes resume, nothing is lost or doubled, and no process exits."""
    d = deployment
    before = {name: d.count(name, "database_unavailable") for name in ("escalator", "relay", "api")}
    before_back = {name: d.count(name, "database_available") for name in ("escalator", "relay", "api")}
    with Writer(d) as writer:
        wait_for(lambda: len(writer.acknowledged()) >= 5, 30, "writes before the outage")
        down_at = time.monotonic()
        d.stop_postgres()
        time.sleep(outage_s)  # the outage itself, not a wait for something
        ticks_while_down = d.count("escalator", "escalator_tick")
        d.start_postgres()
        up_at = time.monotonic()
        wait_for(lambda: acknowledged_after(writer, up_at), RECOVERY_BOUND_S + 30, "a write accepted after the outage")
        recovered_in = min(a.started + a.seconds for a in writer.attempts
                           if a.started >= up_at and a.status in (200, 201)) - up_at
        wait_for(lambda: len([a for a in writer.attempts if a.started > up_at + recovered_in]) >= 20, 60,
                 "writes after the recovery")

    during = [a for a in writer.attempts if a.started + a.seconds >= down_at and a.started <= up_at]
    refused = [a for a in writer.attempts if a.status not in (200, 201)]
    longest = max(a.seconds for a in writer.attempts)
    print(f"\n[outage {outage_s:>3} s] longest write stall {longest:.2f} s; {len(during)} writes during the outage, "
          f"{len(refused)} refused; writes accepted again {recovered_in:.1f} s after PostgreSQL was back; "
          f"{len(writer.acknowledged())} writes acknowledged")

    assert refused and all(a.status == 503 and a.code == "database_unavailable" and a.retry_after == "5"
                           for a in refused), {(a.status, a.code, a.retry_after) for a in refused}
    assert longest <= LONGEST_STALL_BOUND_S
    assert recovered_in <= RECOVERY_BOUND_S
    assert d.exited() == {}

    # Every command acknowledged is stored once, with its one receipt, and nothing else was written.
    acknowledged = writer.acknowledged()
    assert acknowledged == set(writer.campaigns)
    receipts = dict(d.query("SELECT command_id, count(*) FROM dudao_command_receipts WHERE command_id = ANY(%s) "
                            "GROUP BY command_id", list(acknowledged)))
    assert receipts == {c: 1 for c in acknowledged}
    stored = dict(d.query(f"SELECT originator_id::text, count(*) FROM {d.events_table} "
                          "WHERE originator_id = ANY(%s::uuid[]) GROUP BY originator_id",
                          list(writer.campaigns.values())))
    assert stored == {c: 1 for c in writer.campaigns.values()}

    # The projector, the relay and the escalator carry on from where they were.
    head = d.query(f"SELECT coalesce(max(notification_id), 0) FROM {d.events_table}")[0][0]
    wait_for(lambda: all(p >= head for (p,) in d.query("SELECT position FROM dudao_projection_positions")), 60,
             "every projection to reach the log head")
    projected_in = time.monotonic() - up_at
    wait_for(lambda: d.query("SELECT position FROM dudao_relay_position")[0][0] >= head, 60,
             "the relay to publish up to the log head")
    print(f"[outage {outage_s:>3} s] projections at the log head {projected_in:.1f} s after PostgreSQL was back, the "
          f"relay {time.monotonic() - up_at:.1f} s (both counting the writes made meanwhile)")
    expected = {f"{o}:{v}": n for o, v, n in d.query(
        f"SELECT originator_id::text, originator_version, notification_id FROM {d.events_table}")}
    assert_exactly_once(read_topics(d.kafka.bootstrap, d.prefix), expected)
    wait_for(lambda: d.count("escalator", "escalator_tick") > ticks_while_down, 60, "an escalator tick after the outage")

    # Each process said once that the database went, and once that it came back.
    for name in ("escalator", "relay", "api"):
        went = d.count(name, "database_unavailable") - before[name]
        back = d.count(name, "database_available") - before_back[name]
        assert (went, back) == (1, 1), (f"{name} logged the outage {went} times and the recovery {back} times:\n"
                                        + "\n".join(d.said(name, "database_unavailable", "database_available")))
    assert d.exited() == {}
