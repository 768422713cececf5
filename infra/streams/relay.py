"""Relay (转发器): publishes every stored event, in notification order, to Kafka, exactly once.

One topic per aggregate kind (`<prefix>.<kind>`), key = aggregate id, value = the CloudEvents
envelope of `infra.streams.cloudevents`. The position (`dudao_relay_position`) is the highest
notification id known to be on the broker. Only one relay is active: it holds a PostgreSQL
advisory lock on a dedicated connection (which also records the position); standbys poll for the
lock, and PostgreSQL releases it the moment the active relay's connection dies. Once caught up, the active
relay waits for the store's commit notification (infra/store/wakeup.py), `poll_seconds` at most.

Why each event lands exactly once, without Kafka transactions (the broker used by `make run`,
Tansu, does not hide aborted transactional records from read_committed consumers, so a scheme
relying on that could not be verified here; this one holds on Tansu and on Apache Kafka alike):

1. Partition order. Events are sent in notification order to an explicitly computed partition
   (murmur2 of the key, as Kafka's default partitioner), one in-flight request, no producer
   retries (`retries=0`: a failure surfaces instead of being resent blindly).
2. A relay batch is atomic per partition. It is bounded in bytes so each partition's share fits
   in ONE producer record batch (`batch_size` 1 MiB, no compression, `linger_ms` long so nothing
   is drained before `flush()`); a record batch is appended whole or not at all. The next batch
   is sent only after every future of this one succeeded. Hence each partition holds a gap-free
   prefix of the events destined to it.
3. The position is recorded only after the broker acknowledged the whole batch. A crash between
   acknowledgement and recording leaves the position behind, never ahead.
4. On start and after ANY producer error the relay drops the producer, backs off (exponential,
   capped), reconnects and reads the tail (last message) of every partition. By (1)+(2) "the
   tail's notification id ≥ n" ⇔ "event n (of that partition) is already published", so it
   resumes at position + 1 and skips exactly the events already there.

Assumptions, stated: a produce request that failed on the client is settled by the broker
(appended or dropped) before the back-off ends and the tails are read (the first back-off is
0.5 s); the partition count of a topic does not change under a running relay. If the broker
lost its data (Tansu's memory storage after a restart) the tails are empty and everything after
the position is published again: events up to the position are gone with the broker.
Reading a tail trusts the fetch, not ListOffsets (Tansu answers the last record batch's base
offset + 1 there): see `scan_partitions`.
The idempotent producer is not used: kafka-python refuses it with `retries=0`, and the tail check
already covers what it would (a resent request) for the request that failed.

A database outage of any length is ridden out the same way: the lock and the position live on one
connection, so losing it ends the active term (the broker session is dropped too); the relay backs
off, logs the outage once when it starts and once when it ends, takes the lock again and resumes by
point 4. Nothing is lost (the position never runs ahead) and nothing is doubled (the tails).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import Notification, PersistenceError
from kafka import KafkaProducer
from kafka.errors import KafkaError

from infra.streams.broker import CONNECT_TIMEOUT_MS, create_event_topics, discard_producer, partition_for, read_tails
from infra.streams.cloudevents import DEFAULT_PREFIX, DEFAULT_SOURCE, KafkaRecord, to_kafka_record
from infra.outage import DATABASE_UNAVAILABLE, Backoff, Outage
from infra.settings import Settings
from infra.store.event_store import Dudao
from infra.store.wakeup import Wakeup

log = structlog.get_logger("dudao.relay")

POSITION_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_relay_position ("
    " name text PRIMARY KEY, position bigint NOT NULL DEFAULT 0,"
    " updated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)
PAGE_LIMIT = 1000  # notifications read per batch at most: memory stays bounded
RECORD_BATCH_BYTES = 1 << 20  # producer batch_size; also Kafka's default max message (batch) size
BATCH_BYTES = 900_000  # a relay batch stays below one record batch, whatever the partitioning
LINGER_S = 0.01  # after a batch that emptied the log, wait this long so the next commits go in one batch
LINGER_MS = 60_000  # only flush() sends: a relay batch never leaves half-appended
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 5.0
CONNECT_TIMEOUT_S = 5  # libpq connect_timeout of the lock connection (a dead host must not hang the relay)


class PublishFailed(Exception):
    """The broker did not acknowledge every message of a relay batch."""


def lock_key(name: str) -> int:
    """The advisory-lock key of relay `name` (a stable signed 64-bit number)."""
    return int.from_bytes(hashlib.sha256(f"dudao.relay.{name}".encode()).digest()[:8], "big", signed=True)


@dataclass
class Session:
    """One connection to the broker: the producer, partition counts and the tails read at start."""

    producer: KafkaProducer
    partitions: dict[str, int]
    tails: dict[tuple[str, int], int]

    def partition(self, record: KafkaRecord) -> int:
        return partition_for(record.key, self.partitions[record.topic])

    def close(self) -> None:
        discard_producer(self.producer)


class ReadAhead:
    """The next relay batch, read from the log and made into records on a helper thread while the current batch is
    sent and awaited (the wait for the broker's acknowledgement releases the GIL), when that batch was full (a batch
    that emptied the log is followed by a short linger instead, so commits arriving meanwhile go out together
    rather than one tiny batch, flush and checkpoint each). Reading has no effect, so reading
    early changes nothing in the argument above: a batch is still *sent* only after the previous one succeeded."""

    def __init__(self, read: Callable[[int], list[KafkaRecord]]) -> None:
        self.read = read
        self._pool: ThreadPoolExecutor | None = None
        self._after = -1
        self._next: Future[list[KafkaRecord]] | None = None

    def start(self, after: int) -> None:
        """Begin reading the batch that follows notification `after`."""
        self._pool = self._pool or ThreadPoolExecutor(1, thread_name_prefix="relay-read-ahead")
        self._after, self._next = after, self._pool.submit(self.read, after)

    def take(self, after: int) -> list[KafkaRecord]:
        """The batch after `after`: the one read ahead when it starts there and is not empty, else one read now
        (a batch read ahead of an empty log is read again: events may have been stored since)."""
        ahead, self._next = self._next, None
        if ahead is not None and self._after == after:
            records = ahead.result()  # a failed read raises here, as the read done now would
            if records:
                return records
        return self.read(after)

    def close(self) -> None:
        self._next = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class Relay:
    """Publishes the notification log to Kafka; see the module docstring for the argument."""

    def __init__(self, app: Dudao, database_url: str, bootstrap: str, prefix: str = DEFAULT_PREFIX,
                 partitions: int = 3, batch_size: int = 500, *, name: str = "kafka",
                 source: str = DEFAULT_SOURCE, max_batch_bytes: int = BATCH_BYTES, poll_seconds: float = 0.2,
                 standby_seconds: float = 1.0, timeout_s: float = 10.0, linger_s: float = LINGER_S) -> None:
        self.app, self.database_url, self.bootstrap, self.prefix = app, database_url, bootstrap, prefix
        self.partitions, self.name, self.source = partitions, name, source
        self.batch_size = max(1, min(batch_size, PAGE_LIMIT))
        self.max_batch_bytes = min(max_batch_bytes, BATCH_BYTES)
        self.poll_seconds, self.standby_seconds, self.timeout_s = poll_seconds, standby_seconds, timeout_s
        self.linger_s = linger_s
        self.lock_key = lock_key(name)
        self.log = log.bind(relay=name)
        self.outage = Outage(self.log, backoff=Backoff(BACKOFF_START_S, BACKOFF_CAP_S))
        self.ahead = ReadAhead(self._read)
        self._stop = threading.Event()

    # ------------------------------------------------------------------ public

    def run_forever(self) -> None:
        """Stand by until active, then publish until stop(); survives broker and database outages."""
        self._run(lambda position: False)

    def run_until(self, head: int | None = None) -> None:
        """Publish until the position reaches `head` (default: the log head now), then return."""
        target = (self.app.recorder.max_notification_id() or 0) if head is None else head
        self._run(lambda position: position >= target)

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ leadership

    def _run(self, done: Callable[[int], bool]) -> None:
        try:
            self._terms(done)
        finally:
            self.ahead.close()

    def _terms(self, done: Callable[[int], bool]) -> None:
        while not self._stop.is_set():
            lock = self._acquire()
            if lock is None:
                return
            try:
                if self._lead(lock, done):
                    return
            except DATABASE_UNAVAILABLE as exc:  # the position is safe in the database: resume once it is back
                self._stop.wait(self.outage.failed(exc))
            except (psycopg.Error, PersistenceError) as exc:
                self.log.warning("relay_database_error", error=str(exc))
                self._stop.wait(BACKOFF_START_S)
            finally:
                with suppress(psycopg.Error):
                    lock.close()

    def _acquire(self) -> psycopg.Connection[Any] | None:
        """A connection holding the relay lock (None once stopped); stands by while another holds it."""
        announced = False
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                conn = conn or psycopg.connect(self.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                locked = self._try_lock(conn)
            except psycopg.Error as exc:
                if conn is not None:
                    with suppress(psycopg.Error):
                        conn.close()
                conn = None
                self._stop.wait(self.outage.failed(exc))
                continue
            if locked:
                self.log.info("relay_active")
                return conn
            self.outage.recovered()  # a standby: the database answered, that is all it needs
            if not announced:
                self.log.info("relay_standby")
                announced = True
            self._stop.wait(self.standby_seconds)
        if conn is not None:
            conn.close()
        return None

    def _try_lock(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,)).fetchone()
        if not (row and row[0]):
            return False
        conn.execute(POSITION_DDL)
        conn.execute("INSERT INTO dudao_relay_position (name) VALUES (%s) ON CONFLICT DO NOTHING", (self.name,))
        return True

    def _lead(self, lock: psycopg.Connection[Any], done: Callable[[int], bool]) -> bool:
        """Publish while active; True when `done`. Broker trouble: drop the session, back off, resume."""
        backoff = Backoff()
        with Wakeup(self.database_url, self.app.store.channel_name, self._stop) as wakeup:
            while not self._stop.is_set():
                session: Session | None = None
                try:
                    session = self._open_session(self._position(lock))
                    backoff.reset()
                    while not self._stop.is_set():
                        position = self._position(lock)
                        if done(position):
                            return True
                        published = self._publish_batch(lock, session, position)
                        self.outage.recovered()  # back once the log could be read (the store's pool may lag the lock)
                        if not published:
                            wakeup.wait(self.poll_seconds)  # an append's commit ends the wait (infra/store/wakeup.py)
                        elif published < self.batch_size:
                            self._stop.wait(self.linger_s)  # let the next commits gather into one batch
                except (KafkaError, OSError, PublishFailed) as exc:
                    delay = backoff.next()
                    self.log.warning("relay_broker_error", error=f"{type(exc).__name__}: {exc}", retry_in_s=delay)
                    if session is not None:
                        session.close()
                        session = None
                    self._stop.wait(delay)
                finally:
                    if session is not None:
                        session.close()
        return False

    def _position(self, lock: psycopg.Connection[Any]) -> int:
        row = lock.execute("SELECT position FROM dudao_relay_position WHERE name = %s", (self.name,)).fetchone()
        assert row is not None, "relay position row missing"
        return int(row[0])

    def _record_position(self, lock: psycopg.Connection[Any], position: int) -> None:
        lock.execute("UPDATE dudao_relay_position SET position = GREATEST(position, %s), updated_at = clock_timestamp() "
                     "WHERE name = %s", (position, self.name))

    # ------------------------------------------------------------------ publishing

    def _publish_batch(self, lock: psycopg.Connection[Any], session: Session, position: int) -> int:
        """Publish the next batch after `position`, then record it; returns how many events it covered."""
        started = time.perf_counter()
        records = self.ahead.take(position)
        if not records:
            return 0
        if self._full(records):  # more is likely waiting: read it while this batch is sent
            self.ahead.start(records[-1].notification_id)
        futures, skipped = [], 0
        for r in records:
            partition = session.partition(r)
            if session.tails.get((r.topic, partition), 0) >= r.notification_id:
                skipped += 1  # already on the broker (see the module docstring, point 4)
                continue
            futures.append(session.producer.send(r.topic, key=r.key, value=r.value, headers=r.headers,
                                                 partition=partition))
        session.producer.flush(timeout=self.timeout_s)
        failures = [f.exception for f in futures if not f.is_done or f.failed()]
        if failures:
            raise PublishFailed(f"{len(failures)} of {len(futures)} messages not acknowledged: {failures[0]!r}")
        last = records[-1].notification_id
        self._record_position(lock, last)
        self.log.info("relay_batch", count=len(futures), skipped=skipped, first=records[0].notification_id,
                      last=last, duration_ms=round((time.perf_counter() - started) * 1000, 1))
        return len(records)

    def _full(self, records: list[KafkaRecord]) -> bool:
        """Whether a batch was cut by the batch's limits rather than by the end of the log."""
        return len(records) >= self.batch_size or sum(r.size for r in records) * 2 >= self.max_batch_bytes

    def _read(self, after: int) -> list[KafkaRecord]:
        """The records of the next relay batch after notification `after` (empty when the log ends there)."""
        notifications = self.app.recorder.select_notifications(after + 1, limit=self.batch_size)
        return self._records(notifications) if notifications else []

    def _records(self, notifications: Sequence[Notification]) -> list[KafkaRecord]:
        """Envelopes of the leading notifications that fit in one relay batch (at least one)."""
        records: list[KafkaRecord] = []
        size = 0
        for n in notifications:
            record = to_kafka_record(self.app.decode(n), n.id, self.prefix, self.source)
            size += record.size
            if records and size > self.max_batch_bytes:
                break
            records.append(record)
        return records

    # ------------------------------------------------------------------ broker session

    def _open_session(self, position: int) -> Session:
        topics = create_event_topics(self.bootstrap, self.prefix, self.partitions, self.timeout_s)
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=f"dudao-relay-{self.name}", acks="all",
            enable_idempotence=False, retries=0, max_in_flight_requests_per_connection=1,
            batch_size=RECORD_BATCH_BYTES, linger_ms=LINGER_MS, compression_type=None,
            request_timeout_ms=int(self.timeout_s * 1000), delivery_timeout_ms=LINGER_MS + 60_000,
            max_block_ms=int(self.timeout_s * 1000), bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
        )
        try:
            counts = {t: len(producer.partitions_for(t)) for t in topics}
            tails = read_tails(self.bootstrap, counts, self.timeout_s)
        except BaseException:
            discard_producer(producer)
            raise
        self.log.info("relay_session", position=position, topics=len(topics),
                      resume_skips_through=max(tails.values(), default=None))
        return Session(producer, counts, tails)


def main(settings: Settings | None = None) -> None:
    """One relay process: `dudao relay` passes its settings; `python -m infra.streams.relay` reads DUDAO_*."""
    import signal

    from infra.bootstrap import database_url_from, load_handlers
    from infra.logging import configure_logging
    from infra.store.event_store import open_store

    settings = settings or Settings.from_env()
    configure_logging(settings.log_format)
    load_handlers()
    database_url = database_url_from(settings)
    app = open_store(database_url, create_table=settings.create_tables, pool_size=2)
    relay = Relay(app, database_url, settings.kafka_servers, settings.topic_prefix, settings.kafka_partitions,
                  settings.relay_batch_size, standby_seconds=settings.relay_standby_seconds)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    try:
        relay.run_forever()
    finally:
        app.close()


if __name__ == "__main__":
    main()
