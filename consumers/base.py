"""A Kafka consumer-group member whose effects happen exactly once (仅一次).

Its offsets live in PostgreSQL (consumers/offsets.py), written in the same transaction as its
effects, so a crash anywhere leaves effects and position in step. One poll batch is one
transaction: it locks the batch's offset rows (FOR UPDATE) and skips records below the stored
offset, so a zombie member still holding records after a rebalance changes nothing. Each event
id is recorded in the same transaction: an event the relay published twice is skipped (its
offset still advances). On assignment a member seeks to the stored offsets; the Kafka commit
that follows each transaction is only a hint for lag tools.

A subclass sets `ddl` (its tables), may narrow `wants(type)`, and implements `handle(curs, delivery)`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from psycopg import Cursor, sql
from psycopg.rows import dict_row

from consumers import offsets
from consumers.envelope import BadEnvelope, Delivery, decode
from consumers.registry import load_events

log = structlog.get_logger("dudao.consumer")

Batch = dict[TopicPartition, list[ConsumerRecord]]
Conn = psycopg.Connection[dict[str, Any]]
RETRY_PAUSE_S = 1.0


@dataclass(frozen=True)
class KafkaOptions:
    """How to reach the broker and how quickly a dead member is noticed (short in tests)."""

    bootstrap_servers: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_poll_records: int = 500
    poll_timeout_ms: int = 500
    max_poll_interval_ms: int = 300_000  # also bounds how long a rebalance waits for a silent member
    metadata_max_age_ms: int = 5_000  # how soon a topic created after we subscribed is seen
    client_id: str | None = None

    def consumer(self, group_id: str) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=group_id, client_id=self.client_id or group_id,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms, heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_poll_records=self.max_poll_records, max_poll_interval_ms=self.max_poll_interval_ms,
            metadata_max_age_ms=self.metadata_max_age_ms,
            allow_auto_create_topics=False,  # the relay creates topics with their partition count
        )


class TrackedConsumer:
    """A consumer-group member that applies each event once, tracking offsets in PostgreSQL.

    `schema` (optional) is the search_path of the effect tables (e.g. `scaleout`); the bookkeeping
    tables always live in `bookkeeping_schema`, so `dudao status` finds every group's offsets.
    `stats` counts committed work: handled, duplicates, stale, unwanted, undecodable, batches.
    """

    ddl: ClassVar[tuple[str, ...]] = ()

    def __init__(self, database_url: str, kafka: KafkaOptions, group_id: str, topics: Iterable[str], *,
                 schema: str | None = None, bookkeeping_schema: str = "public") -> None:
        load_events()
        self.database_url = database_url
        self.kafka = kafka
        self.group_id = group_id
        self.topics = tuple(sorted(set(topics)))
        self.schema = schema
        self.bookkeeping = bookkeeping_schema
        self.stats: Counter[str] = Counter()
        self.assigned: set[TopicPartition] = set()
        self.known: dict[TopicPartition, int] = {}  # stored next offsets as last read or written
        self._stop = threading.Event()
        self._conn: Conn | None = None
        self.log = log.bind(group=group_id)

    # --- what a subclass provides ------------------------------------------------------------------

    def wants(self, event_type: str) -> bool:
        """Whether events of this type concern us (others advance the offset untouched)."""
        return True

    def handle(self, curs: Cursor[Any], delivery: Delivery) -> None:
        """Apply one event inside the batch transaction (never commit here)."""
        raise NotImplementedError

    def create(self, curs: Cursor[Any]) -> None:
        for statement in self.ddl:
            curs.execute(statement)

    # --- lifecycle ---------------------------------------------------------------------------------

    def connect(self) -> Conn:
        conn = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    def create_tables(self) -> None:
        """Create the bookkeeping tables, the effect schema and the subclass's tables (idempotent)."""
        with self.connect() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_consumer_ddl'))")
            for statement in offsets.ddl(self.bookkeeping):
                curs.execute(statement)
            if self.schema:
                curs.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            self.create(curs)

    def run(self) -> None:
        """Consume until `stop()`; a handler's error rolls its batch back and ends the run (crash)."""
        consumer = self.kafka.consumer(self.group_id)
        consumer.subscribe(list(self.topics), listener=_Listener(self, consumer))
        self.log.info("consumer_started", topics=list(self.topics))
        try:
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=self.kafka.poll_timeout_ms)
                if batch:
                    self.run_batch(consumer, batch)
                else:
                    self.advance_idle(consumer)
            self.commit_hint(consumer, dict(self.known), sync=True)
        except Exception:
            self.log.exception("consumer_crashed")
            raise
        finally:
            consumer.close(autocommit=False)
            self.close_connection()
            self.log.info("consumer_stopped", **self.stats)

    def stop(self) -> None:
        self._stop.set()

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    # --- one batch ---------------------------------------------------------------------------------

    def run_batch(self, consumer: KafkaConsumer, batch: Batch) -> None:
        try:
            stored = self.process(batch)
        except psycopg.OperationalError as exc:
            # The database went away or a lock deadlocked: nothing was committed, so read the
            # batch again from its first record once the database answers.
            self.log.warning("consumer_batch_failed", error=str(exc))
            self.close_connection()
            for tp, records in batch.items():
                if tp in consumer.assignment():
                    consumer.seek(tp, records[0].offset)
            self._stop.wait(RETRY_PAUSE_S)
            return
        for tp, records in batch.items():  # jump over records another member already applied
            if tp in consumer.assignment() and stored[tp] > records[-1].offset + 1:
                consumer.seek(tp, stored[tp])
        self.commit_hint(consumer, stored)

    def process(self, batch: Batch) -> dict[TopicPartition, int]:
        """Apply a poll batch in one transaction; returns each partition's stored next offset."""
        conn, counts = self.connection(), Counter(batches=1)
        with conn.transaction(), conn.cursor() as curs:
            stored = offsets.lock(curs, self.bookkeeping, self.group_id, batch.keys())
            for tp, records in batch.items():
                for record in records:
                    if record.offset < stored[tp]:
                        counts["stale"] += 1  # another member (or our past self) already did it
                        continue
                    counts[self._consume(curs, tp, record)] += 1
                    stored[tp] = record.offset + 1
            offsets.save(curs, self.bookkeeping, self.group_id, stored)
        self.stats.update(counts)  # counted once committed: never includes a rolled-back batch
        self.known.update(stored)
        return stored

    def _consume(self, curs: Cursor[Any], tp: TopicPartition, record: ConsumerRecord) -> str:
        """Apply one record unless it is junk, unwanted or a duplicate; returns which it was."""
        with structlog.contextvars.bound_contextvars(topic=tp.topic, partition=tp.partition, offset=record.offset):
            try:
                delivery = decode(record.value)
            except BadEnvelope as exc:
                self.log.error("message_undecodable", error=str(exc))
                return "undecodable"
            if not self.wants(delivery.type):
                return "unwanted"
            with structlog.contextvars.bound_contextvars(event_id=delivery.event_id,
                                                         correlation_id=delivery.correlation_id):
                if not offsets.first_sighting(curs, self.bookkeeping, self.group_id, delivery.event_id):
                    self.log.debug("event_duplicate_skipped", event_type=delivery.type)
                    return "duplicates"
                self.handle(curs, delivery)
                return "handled"

    def advance_idle(self, consumer: KafkaConsumer) -> None:
        """Store positions that moved without records: past transaction markers and aborted records,
        which read_committed never returns, so the lag a status page shows can reach zero."""
        moved = {tp: pos for tp in consumer.assignment() if tp in self.known
                 and (pos := consumer.position(tp, timeout_ms=0) or 0) > self.known[tp]}
        if not moved:
            return
        try:
            conn = self.connection()
            with conn.transaction(), conn.cursor() as curs:
                stored = offsets.lock(curs, self.bookkeeping, self.group_id, moved.keys())
                stored = {tp: max(stored[tp], pos) for tp, pos in moved.items()}
                offsets.save(curs, self.bookkeeping, self.group_id, stored)
        except psycopg.OperationalError as exc:  # only bookkeeping: the next idle poll tries again
            self.log.warning("consumer_advance_failed", error=str(exc))
            self.close_connection()
            return
        self.known.update(stored)
        self.commit_hint(consumer, stored)

    def commit_hint(self, consumer: KafkaConsumer, stored: dict[TopicPartition, int], sync: bool = False) -> None:
        """Tell Kafka how far we are, for lag tools only: the stored offsets are what counts."""
        hint = {tp: OffsetAndMetadata(n, "", -1) for tp, n in stored.items() if tp in consumer.assignment()}
        if not hint:
            return
        try:
            if sync:
                consumer.commit(hint)
            else:
                consumer.commit_async(hint)
        except Exception as exc:  # noqa: BLE001 - a lost hint is harmless; the stored offsets count
            self.log.info("offset_hint_failed", error=str(exc))

    # --- rebalance (called on kafka-python's I/O thread) ---------------------------------------------

    def partitions_assigned(self, consumer: KafkaConsumer, tps: Collection[TopicPartition]) -> None:
        """Seek newly assigned partitions to their stored offsets (to the start when none is stored)."""
        with psycopg.connect(self.database_url) as conn:  # its own connection: this is another thread
            stored = offsets.stored(conn, self.bookkeeping, self.group_id).get(self.group_id, {})
        for tp in tps:
            if (tp.topic, tp.partition) in stored:
                self.known[tp] = stored[(tp.topic, tp.partition)]
                consumer.seek(tp, self.known[tp])
            else:
                consumer.seek_to_beginning(tp)
        self.assigned |= set(tps)
        self.log.info("partitions_assigned", partitions=_names(tps))

    def partitions_revoked(self, tps: Collection[TopicPartition]) -> None:
        self.assigned -= set(tps)
        for tp in tps:
            self.known.pop(tp, None)
        if tps:
            self.log.info("partitions_revoked", partitions=_names(tps))


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: TrackedConsumer, consumer: KafkaConsumer) -> None:
        self.owner = owner
        self.consumer = consumer

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        self.owner.partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self.owner.partitions_assigned(self.consumer, assigned)


def _names(tps: Iterable[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in tps)
