"""The readers ride out a PostgreSQL outage (停机): a Kafka consumer-group member and the projector, each running
while the server stops for 5 s and for 20 s, neither exits, each logs the outage once when it starts and once when
it ends (no line per attempt), and after it every message's effect is applied exactly once.

The outage hits the consumers where it used to end them: records arrive during it, and a second member joins the
group then (a restarted one would too), so on the rebalance `partitions_assigned` cannot read the stored offsets
(and kafka-python re-raises a listener's error from `poll()`). The projector meets it between and inside batches.
The server is this module's own, in a temp dir, so stopping it disturbs no other test. The effects are tallies with
no unique key, so an effect applied twice would show as two rows.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
import structlog
from psycopg import Cursor
from psycopg.conninfo import make_conninfo
from structlog.testing import capture_logs

import consumers.base as consumers_base
import infra.store.projector as projector_module
from consumers.base import TrackedConsumer
from consumers.envelope import Delivery
from domain.kernel.base import Actor
from domain.structure.campaign import CampaignStarted, StartCampaign
from infra.bootstrap import System, bootstrap
from infra.runtime.embedded import EmbeddedKafka, EmbeddedPostgres, start_postgres
from infra.store.projector import Projector
from projections.base import Projection, RecordedEvent
from projections.outage import DATABASE_UNAVAILABLE
from tests.integration.test_consumers import create_topic, notice, options, party, publish, running
from tests.integration.test_dead_letters import running as projecting
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

OUTAGES_S = [5, 20]
REBALANCE_DEADLINE_S = 30.0  # the outage lasts at least until the group rebalanced during it
RECOVERY_DEADLINE_S = 60.0
HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")


@dataclass
class Server:
    """This module's own PostgreSQL, free to be stopped; a new database per test."""

    base: Path
    pg: EmbeddedPostgres

    def database(self) -> str:
        name = f"outage_{uuid4().hex[:12]}"
        with psycopg.connect(self.pg.uri, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_conninfo(self.pg.uri, dbname=name)

    @contextmanager
    def down(self, seconds: float) -> Iterator[None]:
        """Stop the server for at least `seconds` (longer if the block takes longer), then start it again."""
        self.pg.stop()
        until = time.monotonic() + seconds
        try:
            yield
            time.sleep(max(0.0, until - time.monotonic()))  # the outage itself, not a wait for something
        finally:
            uri = self.pg.uri
            self.pg = start_postgres(self.pg.data_dir)
            assert self.pg.uri == uri  # same socket: the readers reconnect to what they know


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    base = Path(tempfile.mkdtemp(prefix="dudao-reader-outage-"))
    base.chmod(0o755)  # the server runs as its own system user when we are root
    s = Server(base, start_postgres(base / "pg"))
    try:
        yield s
    finally:
        s.pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def said(logs: Sequence[Mapping[str, Any]], **match: Any) -> list[str]:
    """The events of the captured lines at warning level or above that carry every `match` field."""
    return [e["event"] for e in logs if e["log_level"] in ("warning", "error", "critical")
            and all(e.get(k) == v for k, v in match.items())]


def count(logs: Sequence[Mapping[str, Any]], event: str, **match: Any) -> int:
    return sum(1 for e in logs if e["event"] == event and all(e.get(k) == v for k, v in match.items()))


def assert_one_outage(logs: Sequence[Mapping[str, Any]], **match: Any) -> None:
    """One `database_unavailable` and nothing else at warning level, and one `database_available` afterwards."""
    assert said(logs, **match) == ["database_unavailable"]
    assert count(logs, "database_available", **match) == 1


# --- a Kafka consumer-group member ---------------------------------------------------------------------------


class Tally(TrackedConsumer):
    """A member whose effect is one row per event applied, with no unique key."""

    ddl = ("CREATE TABLE IF NOT EXISTS outage_tally (group_id text NOT NULL, event_id text NOT NULL)",)

    def handle(self, curs: Cursor[Any], delivery: Delivery) -> None:
        curs.execute("INSERT INTO outage_tally (group_id, event_id) VALUES (%s, %s)", (self.group_id, delivery.event_id))


def tallied(url: str, group: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT event_id FROM outage_tally WHERE group_id = %s", (group,)).fetchall()
    return Counter(event_id for (event_id,) in rows)


def next_offsets(url: str, group: str) -> dict[str, int]:
    """Per topic, the sum of the stored next offsets of its partitions."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT topic, sum(next_offset)::int FROM dudao_consumer_offsets WHERE group_id = %s"
                            " GROUP BY topic", (group,)).fetchall()
    return dict(rows)


def notices(topic: str, n: int, first: int) -> tuple[list[tuple[str, bytes, bytes]], list[str]]:
    """`n` issued notices for `topic` (keys spread them over its partitions), and their event ids."""
    ids = [uuid4() for _ in range(n)]
    return ([(topic, str(i).encode(), notice(i, [party("瑞州街道")], first + k)) for k, i in enumerate(ids)],
            [f"{i}:1" for i in ids])


def member(url: str, kafka: EmbeddedKafka, group: str, topic: str, name: str, monkeypatch: pytest.MonkeyPatch
           ) -> Tally:
    """A member of `group` whose log lines carry `member=name`: it binds its logger from the module's, replaced
    here by one first used now (under the test's capture, whatever the session configured before)."""
    monkeypatch.setattr(consumers_base, "log", structlog.get_logger("consumer-under-test").bind(member=name))
    return Tally(url, options(kafka), group, [topic])


@pytest.mark.parametrize("outage_s", OUTAGES_S)
def test_consumer_members_ride_out_a_postgres_outage_and_a_rebalance_during_it(
        server: Server, kafka: EmbeddedKafka, prefix: str, monkeypatch: pytest.MonkeyPatch, outage_s: int) -> None:
    """Records arriving during the outage and a second member joining then (a rebalance whose new offsets cannot be
    read) end neither member nor make them log a line per attempt; after it every record is applied exactly once and
    the stored offsets reach the topic's end."""
    url, group, topic = server.database(), f"{prefix}-tally", f"{prefix}.notice"
    create_topic(kafka, topic, 4)
    before, before_ids = notices(topic, 10, 1)
    during, during_ids = notices(topic, 10, 11)
    publish(kafka, before)
    with capture_logs() as logs, ExitStack() as members:
        first = member(url, kafka, group, topic, "first", monkeypatch)
        second = member(url, kafka, group, topic, "second", monkeypatch)
        first.create_tables()
        crashes = [members.enter_context(running(first))]

        def exited() -> list[BaseException]:
            return [crash for crashed in crashes for crash in crashed]

        wait_until(lambda: exited() or sum(tallied(url, group).values()) == 10, "the records before the outage",
                   RECOVERY_DEADLINE_S)
        with server.down(outage_s):
            publish(kafka, during)
            crashes.append(members.enter_context(running(second)))  # a member restarted, or one more started
            wait_until(lambda: exited() or (second.assigned and len(first.assigned) < 4),
                       "the second member to join during the outage", REBALANCE_DEADLINE_S)
            assert not exited(), f"a member exited during the outage: {exited()[0]!r}"
        wait_until(lambda: exited() or next_offsets(url, group) == {topic: 20}, "every record applied after the outage",
                   RECOVERY_DEADLINE_S, ignoring=DATABASE_UNAVAILABLE)
        assert not exited(), f"a member exited after the outage: {exited()[0]!r}"
    assert tallied(url, group) == Counter(before_ids + during_ids)  # each exactly once
    for name in ("first", "second"):
        assert_one_outage(logs, member=name)


# --- the projector -------------------------------------------------------------------------------------------


class OutageTally(Projection):
    """A read model of one row per campaign started, with no unique key."""

    tables = ("outage_tally",)
    ddl = ("CREATE TABLE IF NOT EXISTS outage_tally (notification_id bigint NOT NULL, event_id text NOT NULL)",)

    def __init__(self) -> None:
        super().__init__()
        # Named on the instance only: all_projections() picks up every subclass with a class-level name, and
        # would add this one to every system the other tests of the session bootstrap.
        object.__setattr__(self, "name", "outage_tally")

    def register(self) -> None:
        @self.on(CampaignStarted)
        def started(curs: Cursor[Any], recorded: RecordedEvent) -> None:
            curs.execute("INSERT INTO outage_tally (notification_id, event_id) VALUES (%s, %s)",
                         (recorded.notification_id, recorded.event_id))


def start_campaign() -> StartCampaign:
    return StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="停库演练", jurisdiction="高安市",
                         launched_on=date(2021, 12, 3))


def projected(url: str) -> Counter[int]:
    with psycopg.connect(url) as conn:
        return Counter(n for (n,) in conn.execute("SELECT notification_id FROM outage_tally").fetchall())


def deliver(system: System, command: StartCampaign) -> None:
    """Send the command until the store takes it (the same command_id each time, so a retry never writes twice)."""
    wait_until(lambda: system.service.handle(command, HQ), "a write after the outage", RECOVERY_DEADLINE_S,
               ignoring=DATABASE_UNAVAILABLE)


@pytest.mark.parametrize("outage_s", OUTAGES_S)
def test_the_projector_rides_out_a_postgres_outage_logging_it_once_each_way(
        server: Server, monkeypatch: pytest.MonkeyPatch, outage_s: int) -> None:
    """The projector, stopped short in its batches by the outage, keeps running with one line when it starts and one
    when it ends; afterwards every event, old and new, is projected exactly once and its position is the log head."""
    url = server.database()
    system = bootstrap(url, pool_size=2)
    try:
        for _ in range(20):
            system.service.handle(start_campaign(), HQ)
        with capture_logs() as logs:
            # The projector logs through its module's logger, bound to this test before the projector is built.
            monkeypatch.setattr(projector_module, "log", structlog.get_logger("projector-under-test").bind(test=url))
            tally = OutageTally()
            projector = Projector(system.app, url, [tally], batch_size=1)
            projector.create_tables()
            with projecting(projector) as thread:
                wait_until(lambda: len(projected(url)) >= 5, "the projector under way", RECOVERY_DEADLINE_S)
                with server.down(outage_s):
                    pass
                for _ in range(10):
                    deliver(system, start_campaign())
                head = system.app.recorder.max_notification_id()
                wait_until(lambda: projector.position(tally) == head, "the projector at the log head",
                           RECOVERY_DEADLINE_S, ignoring=DATABASE_UNAVAILABLE)
                assert thread.is_alive(), "the projector exited"
        stored = [n.id for n in system.app.recorder.select_notifications(1, limit=1000)]
        assert len(stored) == 30 and projected(url) == Counter(stored)  # each exactly once
        assert_one_outage(logs, test=url)
    finally:
        system.close()
