"""A Kafka consumer-group member whose effects happen exactly once (仅一次).

Its offsets live in PostgreSQL (consumers/offsets.py), written in the same transaction as its
effects, so a crash anywhere leaves effects and position in step. One poll batch is one
transaction: it locks the batch's offset rows (FOR UPDATE) and skips records below the stored
offset, so a zombie member still holding records after a rebalance changes nothing. Each event
id is recorded in the same transaction: an event the relay published twice is skipped (its
offset still advances). On assignment a member seeks to the stored offsets; the Kafka commit
that follows each transaction is only a hint for lag tools.

A record whose effect fails for a reason retrying will not cure (bad data, a bug) never stops the
member (DESIGN §12): the batch is rolled back and done again with that record set aside as a dead
letter (死信, projections/dead_letters.py) in the same transaction as the offsets. What happens next
is the subclass's `dead_letter_policy`:
- `wait` (the default): the partition's stored offset stays on the record and the partition is
  paused, retried with a growing pause until it applies or an operator skips it (`dudao consume
  retry|skip`). Use it when the order of one aggregate's events matters. It holds up the other
  aggregates of that partition too (a partition carries many), which is the price of not applying
  an aggregate's later events on top of a missing one; the open dead letter alerts.
- `skip`: the offset moves past the record and the partition goes on; the letter stays open until
  an operator retries it (applied out of order) or closes it as skipped. Only for effects that do
  not depend on one another.
A failure of the database itself (connection lost, deadlock, timeout) is never a dead letter: the
batch is read again once the database answers.

A PostgreSQL outage of any length is ridden out (DESIGN §12): every step that meets the database
unreachable (a batch, the dead-letter check, storing an idle position, creating the tables) backs off
(0.5 s doubling to 5 s) within one `Outage`, logged once as `database_unavailable` and once as
`database_available`. A rebalance during the outage cannot read the stored offsets, so the assigned
partitions are paused with their position unknown, and the main loop seeks and resumes them once the
database answers: no record is fetched from a position the member did not read from PostgreSQL.

A subclass sets `ddl` (its tables), may narrow `wants(type)`, implements `handle(curs, delivery)`,
and may set `dead_letter_policy`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
from consumers.topics import never_creating
from projections import dead_letters as dl
from projections.outage import CONNECT_TIMEOUT_S, DATABASE_UNAVAILABLE, Outage, is_database_unavailable

log = structlog.get_logger("dudao.consumer")

Batch = dict[TopicPartition, list[ConsumerRecord]]
Conn = psycopg.Connection[dict[str, Any]]
DeadLetterPolicy = Literal["wait", "skip"]
AUTOMATIC_REASON = "applied on a later attempt (自动重试成功)"


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
    # How long the broker may hold a fetch that finds too little. Tansu polls its storage within that wait and
    # answers only after it (half of it at 500 ms, kafka-python's default, even with records at hand): a record
    # then reached us p50 127 ms / p99 258 ms after it was acknowledged, at 20 ms p50 7 / p99 18 ms. Apache Kafka
    # answers as soon as a record arrives; there the value only sets how often an idle member asks.
    fetch_max_wait_ms: int = 20
    client_id: str | None = None

    def consumer(self, group_id: str) -> KafkaConsumer:
        return never_creating(KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=group_id, client_id=self.client_id or group_id,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms, heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_poll_records=self.max_poll_records, max_poll_interval_ms=self.max_poll_interval_ms,
            metadata_max_age_ms=self.metadata_max_age_ms, fetch_max_wait_ms=self.fetch_max_wait_ms,
            allow_auto_create_topics=False,  # the relay creates topics with their partition count
        ))


class Unapplied(Exception):
    """One record's effect failed (not a database outage): the record goes to a dead letter."""

    def __init__(self, tp: TopicPartition, failure: dl.Failure) -> None:
        super().__init__(f"{failure.event_type} at {tp.topic}:{tp.partition}:{failure.position}: "
                         f"{failure.error_class}: {failure.error_message}")
        self.tp = tp
        self.failure = failure


class TrackedConsumer:
    """A consumer-group member that applies each event once, tracking offsets in PostgreSQL.

    `schema` (optional) is the search_path of the effect tables (e.g. `scaleout`); the bookkeeping
    tables (offsets, seen event ids, dead letters) always live in `bookkeeping_schema`, so `dudao
    status` finds every group's. `stats` counts committed work: handled, duplicates, stale, unwanted,
    undecodable, dead_letters, batches.
    """

    ddl: ClassVar[tuple[str, ...]] = ()
    dead_letter_policy: ClassVar[DeadLetterPolicy] = "wait"
    first_backoff_s: ClassVar[float] = 1.0
    max_backoff_s: ClassVar[float] = 60.0

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
        self.waiting: dict[TopicPartition, dl.Waiting] = {}  # partitions paused before a dead letter
        self.unplaced: set[TopicPartition] = set()  # assigned during an outage: paused, stored offset not read yet
        self._stop = threading.Event()
        self._conn: Conn | None = None
        self.log = log.bind(group=group_id)
        self.outage = Outage(self.log)

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
        conn = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row,
                               connect_timeout=CONNECT_TIMEOUT_S)
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    def create_tables(self) -> None:
        """Create the bookkeeping tables, the effect schema and the subclass's tables (idempotent)."""
        with self.connect() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_consumer_ddl'))")
            for statement in [*offsets.ddl(self.bookkeeping), *dl.ddl(self.bookkeeping)]:
                curs.execute(statement)
            if self.schema:
                curs.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            self.create(curs)

    def create_tables_when_available(self) -> bool:
        """`create_tables`, retried with backoff through a database outage; False if stopped before it could."""
        while not self._stop.is_set():
            try:
                self.create_tables()
            except DATABASE_UNAVAILABLE as exc:
                self._stop.wait(self.outage.failed(exc))
                continue
            self.outage.recovered()
            return True
        return False

    def run(self) -> None:
        """Consume until `stop()`; a record it cannot apply becomes a dead letter, a database outage a retry."""
        consumer = self.kafka.consumer(self.group_id)
        consumer.subscribe(list(self.topics), listener=_Listener(self, consumer))
        self.log.info("consumer_started", topics=list(self.topics))
        try:
            while not self._stop.is_set():
                # Each step that finds the database unreachable waits out its backoff and says so (False);
                # one wait before a poll at most, so a long outage never keeps the member from polling.
                answered = self.place_unplaced(consumer) and self.resume_due(consumer)
                batch = consumer.poll(timeout_ms=self.kafka.poll_timeout_ms)
                batch = {tp: records for tp, records in batch.items() if tp not in self.unplaced}
                if batch:
                    self.run_batch(consumer, batch)
                elif answered:
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

    def _unavailable(self, exc: BaseException) -> None:
        """The database could not be reached: drop the connection and wait (only the outage's first failure is logged)."""
        self.close_connection()
        self._stop.wait(self.outage.failed(exc))

    # --- one batch ---------------------------------------------------------------------------------

    def run_batch(self, consumer: KafkaConsumer, batch: Batch) -> None:
        try:
            stored = self.process(batch)
        except DATABASE_UNAVAILABLE as exc:
            # The database went away or a lock deadlocked: nothing was committed, so read the
            # batch again from its first record once the database answers.
            for tp, records in batch.items():
                if tp in consumer.assignment():
                    consumer.seek(tp, records[0].offset)
            self._unavailable(exc)
            return
        self.outage.recovered()
        for tp, records in batch.items():
            if tp not in consumer.assignment():
                continue
            if self._waits(tp, stored[tp]):  # fetching went past the dead letter: back to it, and pause
                consumer.seek(tp, stored[tp])
                consumer.pause(tp)
            elif stored[tp] > records[-1].offset + 1:  # jump over records another member already applied
                consumer.seek(tp, stored[tp])
        self.commit_hint(consumer, stored)

    def process(self, batch: Batch) -> dict[TopicPartition, int]:
        """Apply a poll batch in one transaction; returns each partition's stored next offset.

        A record that cannot be applied rolls the batch back; the batch is then done again with that
        record set aside as a dead letter (each pass sets aside one more, so this ends).
        """
        aside: dict[tuple[TopicPartition, int], dl.Failure] = {}
        while True:
            try:
                stored, letters = self._process(batch, aside)
                break
            except Unapplied as unapplied:
                aside[(unapplied.tp, unapplied.failure.position)] = unapplied.failure
        for tp, failure, attempts in letters:
            self._report(tp, failure, attempts)
        for tp in [tp for tp, w in self.waiting.items() if stored.get(tp, w.position) > w.position]:
            del self.waiting[tp]  # it applied (or an operator moved the offset): the partition goes on
        return stored

    def _process(self, batch: Batch, aside: dict[tuple[TopicPartition, int], dl.Failure]
                 ) -> tuple[dict[TopicPartition, int], list[tuple[TopicPartition, dl.Failure, int]]]:
        conn, counts = self.connection(), Counter(batches=1)
        letters: list[tuple[TopicPartition, dl.Failure, int]] = []
        with conn.transaction(), conn.cursor() as curs:
            stored = offsets.lock(curs, self.bookkeeping, self.group_id, batch.keys())
            start = dict(stored)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < stored[tp]:
                        counts["stale"] += 1  # another member (or our past self) already did it
                        continue
                    failure = aside.get((tp, record.offset))
                    if failure is None:
                        counts[self._consume(curs, tp, record.offset, record.value)] += 1
                        stored[tp] = record.offset + 1
                        continue
                    attempts = dl.record(curs, self.bookkeeping, "consumer", self.group_id, failure)
                    letters.append((tp, failure, attempts))
                    counts["dead_letters"] += 1
                    if self.dead_letter_policy == "wait":
                        break  # the stored offset stays on this record: the partition waits before it
                    stored[tp] = record.offset + 1
            if self.dead_letter_policy == "wait":
                self._close_applied(curs, start, stored)
            offsets.save(curs, self.bookkeeping, self.group_id, stored)
        self.stats.update(counts)  # counted once committed: never includes a rolled-back batch
        self.known.update(stored)
        return stored, letters

    def _close_applied(self, curs: Cursor[Any], start: dict[TopicPartition, int],
                       stored: dict[TopicPartition, int]) -> None:
        """Open dead letters among the records this batch applied did apply this time: close them as retried."""
        for tp, upto in stored.items():
            if upto > start[tp]:
                for position in dl.resolve_applied(curs, self.bookkeeping, "consumer", self.group_id, start[tp] - 1,
                                                   upto - 1, reason=AUTOMATIC_REASON, by=f"consumer {self.group_id}",
                                                   topic=tp.topic, partition=tp.partition):
                    self.log.info("dead_letter_retried", topic=tp.topic, partition=tp.partition, offset=position)

    def _report(self, tp: TopicPartition, failure: dl.Failure, attempts: int) -> None:
        """Log the dead letter (one error line when it is new) and, under `wait`, when to try it again."""
        fields = {"reader_kind": "consumer", "reader": self.group_id, "topic": tp.topic, "partition": tp.partition,
                  "offset": failure.position, "event_id": failure.event_id, "event_type": failure.event_type,
                  "error_class": failure.error_class, "error": failure.error_message, "attempts": attempts,
                  "policy": self.dead_letter_policy}
        if attempts == 1:
            self.log.error("dead_letter", **fields)
        else:
            self.log.warning("dead_letter_still_failing", **fields)
        if self.dead_letter_policy == "wait":
            self.waiting[tp] = dl.wait_again(self.waiting.get(tp), failure.position, self.first_backoff_s,
                                             self.max_backoff_s)

    def _waits(self, tp: TopicPartition, stored: int) -> bool:
        waiting = self.waiting.get(tp)
        return waiting is not None and waiting.position == stored

    def _consume(self, curs: Cursor[Any], tp: TopicPartition, offset: int, value: bytes) -> str:
        """Apply one record unless it is junk, unwanted or a duplicate; returns which it was.

        Raises Unapplied when the effect fails for a reason other than a database outage.
        """
        with structlog.contextvars.bound_contextvars(topic=tp.topic, partition=tp.partition, offset=offset):
            try:
                delivery = decode(value)
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
                try:
                    self.handle(curs, delivery)
                except Exception as exc:
                    if is_database_unavailable(exc):
                        raise
                    raise Unapplied(tp, dl.Failure(
                        position=offset, error=exc, event_id=delivery.event_id, event_type=delivery.type,
                        notification_id=delivery.notification_id, topic=tp.topic, partition=tp.partition,
                        message=bytes(value))) from exc
                return "handled"

    def resume_due(self, consumer: KafkaConsumer) -> bool:
        """Resume paused partitions whose pause is over, or whose stored offset an operator moved (retry, skip).

        False when the database could not be asked (after waiting out the backoff).
        """
        if not self.waiting:
            return True
        try:
            moved = self._stored_offsets(self.connection())
        except DATABASE_UNAVAILABLE as exc:  # the pause goes on; the next loop asks again
            self._unavailable(exc)
            return False
        self.outage.recovered()
        paused = consumer.paused()
        for tp, waiting in list(self.waiting.items()):
            if tp not in consumer.assignment():
                del self.waiting[tp]
                continue
            at = moved.get((tp.topic, tp.partition), waiting.position)
            if tp in paused and (waiting.due() or at != waiting.position):
                consumer.seek(tp, at)
                consumer.resume(tp)
        return True

    # --- operator actions on a dead letter --------------------------------------------------------

    def retry_dead_letter(self, topic: str, partition: int, offset: int, *, reason: str, by: str) -> bool:
        """Apply the dead letter's stored record now (after its cause was fixed); True when it applied.

        Under `wait` the partition's offset moves past it in the same transaction; a running member
        notices on its next loop and goes on from there.
        """
        tp, conn = TopicPartition(topic, partition), self.connection()
        try:
            with conn.transaction(), conn.cursor() as curs:
                letter = self._waiting_at(curs, tp, offset)
                self._consume(curs, tp, offset, bytes(letter["message"]))
                if self.dead_letter_policy == "wait":
                    offsets.save(curs, self.bookkeeping, self.group_id, {tp: offset + 1})
                dl.resolve(curs, self.bookkeeping, letter["id"], "retried", reason=reason, by=by, attempted=True)
        except Unapplied as unapplied:
            with conn.transaction(), conn.cursor() as curs:
                attempts = dl.record(curs, self.bookkeeping, "consumer", self.group_id, unapplied.failure)
            self._report(tp, unapplied.failure, attempts)
            return False
        self.log.info("dead_letter_retry", topic=topic, partition=partition, offset=offset, by=by, reason=reason,
                      applied=True)
        return True

    def skip_dead_letter(self, topic: str, partition: int, offset: int, *, reason: str, by: str) -> None:
        """Record the dead letter as skipped (who, why); under `wait`, move the partition past it at once."""
        tp, conn = TopicPartition(topic, partition), self.connection()
        with conn.transaction(), conn.cursor() as curs:
            letter = self._waiting_at(curs, tp, offset)
            dl.resolve(curs, self.bookkeeping, letter["id"], "skipped", reason=reason, by=by, attempted=False)
            if self.dead_letter_policy == "wait":
                offsets.save(curs, self.bookkeeping, self.group_id, {tp: offset + 1})
        self.log.warning("dead_letter_skipped", topic=topic, partition=partition, offset=offset,
                         event_id=letter["event_id"], event_type=letter["event_type"], by=by, reason=reason)

    def _waiting_at(self, curs: Cursor[Any], tp: TopicPartition, offset: int) -> dict[str, Any]:
        """The open dead letter at that offset, locked with the partition's offset row; NotWaiting otherwise."""
        stored = offsets.lock(curs, self.bookkeeping, self.group_id, [tp])[tp]
        letter = dl.find(curs, self.bookkeeping, "consumer", self.group_id, offset, topic=tp.topic,
                         partition=tp.partition)
        where = f"{tp.topic}:{tp.partition}:{offset}"
        if letter is None or letter["message"] is None:
            raise dl.NotWaiting(f"consumer group {self.group_id} has no open dead letter at {where}")
        if self.dead_letter_policy == "wait" and stored != offset:
            raise dl.NotWaiting(f"consumer group {self.group_id} is at offset {stored}, not waiting before {where}")
        return letter

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
        except DATABASE_UNAVAILABLE as exc:  # only bookkeeping: the next idle poll tries again
            self._unavailable(exc)
            return
        self.outage.recovered()
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
        """Seek newly assigned partitions to their stored offsets (to the start when none is stored).

        If the database cannot be reached, the partitions are paused instead, their position unknown,
        and the main loop places them once it answers (`place_unplaced`): an error raised here would
        come out of `poll()` and end the member.
        """
        try:  # its own short-lived connection: this runs on the client's I/O thread, not the member's
            with psycopg.connect(self.database_url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                stored = self._stored_offsets(conn)
        except DATABASE_UNAVAILABLE as exc:
            self.outage.failed(exc)  # no waiting here (it would hold up the client's heartbeats): the main loop waits
            consumer.pause(*tps)
            self.unplaced |= set(tps)
            self.assigned |= set(tps)
            self.log.info("partitions_assigned", partitions=_names(tps), placed=False)
            return
        self._place(consumer, tps, stored)
        self.assigned |= set(tps)
        self.log.info("partitions_assigned", partitions=_names(tps), placed=True)

    def place_unplaced(self, consumer: KafkaConsumer) -> bool:
        """Seek the partitions assigned during an outage to their stored offsets and resume them, once the database
        answers; False when it still does not (after waiting out the backoff)."""
        self.unplaced &= consumer.assignment()
        if not self.unplaced:
            return True
        try:
            stored = self._stored_offsets(self.connection())
        except DATABASE_UNAVAILABLE as exc:
            self._unavailable(exc)
            return False
        self.outage.recovered()
        placed, self.unplaced = self.unplaced, set()
        self._place(consumer, placed, stored)
        consumer.resume(*placed)
        self.log.info("partitions_placed", partitions=_names(placed))
        return True

    def _stored_offsets(self, conn: psycopg.Connection[Any]) -> dict[offsets.Key, int]:
        return offsets.stored(conn, self.bookkeeping, self.group_id).get(self.group_id, {})

    def _place(self, consumer: KafkaConsumer, tps: Collection[TopicPartition], stored: dict[offsets.Key, int]) -> None:
        for tp in tps:
            if (tp.topic, tp.partition) in stored:
                self.known[tp] = stored[(tp.topic, tp.partition)]
                consumer.seek(tp, self.known[tp])
            else:
                consumer.seek_to_beginning(tp)

    def partitions_revoked(self, tps: Collection[TopicPartition]) -> None:
        self.assigned -= set(tps)
        self.unplaced -= set(tps)
        for tp in tps:
            self.known.pop(tp, None)
            self.waiting.pop(tp, None)  # the next owner meets the dead letter again and waits likewise
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
