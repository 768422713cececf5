"""Event store wiring: the one place that knows how events reach PostgreSQL.

One `eventsourcing` application (`Dudao`) holds every event of the deployment in one table with
one notification log, so the audit chain and the relay see a single order. The mapper stores each
event under its stable registry name (not a Python path) as JSON, and upcasts old versions on read.
The recorder is the library's PostgreSQL recorder with these changes: it writes the command receipt
(idempotency record) in the same transaction as the events (a command that decides no event
writes nothing, so it needs no receipt), so a command is either fully recorded with its receipt or
not at all; it writes with one call of a server-side function instead of seven statements in
psycopg's pipeline mode (see `DudaoRecorder.insert_events` for why); it reads a command's receipt
and the aggregates it will read in one query (`DudaoRecorder.load`); and instead of pinging every
connection it takes from the pool it retries once when a connection turns out dropped
(`on_live_connection`). A command is thus two round trips, one read and one write (it was 14).
Replacing the recorder (e.g. by a faster gap-safe one) touches only this module.

Besides the library's indexes (the aggregate's key, the notification id) the table has one partial index,
`<table>_holders_idx`: the events that create responsibility (责任分工) and liaison (挂钩) holders, so the audit's
as-of view finds who answered for a scope by folding those aggregates from the store without reading the whole
log. It covers only those few events (nothing to maintain for the rest), and is created with the tables — on an
existing database by the next `dudao migrate` or bootstrap that creates tables (IF NOT EXISTS).

No wait is unbounded (DESIGN §12): every store connection carries a lock timeout, a statement
timeout and an idle-in-transaction timeout, opening one gives up after a connect timeout, and
taking one from the pool after a pool wait (`StoreTimeouts`). A write that hits any of them fails
with `eventsourcing.persistence.OperationalError` (or `InterfaceError` for a dropped connection)
instead of hanging; the write path does not retry them, so the caller decides (HTTP answers 503).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Iterable
from typing import Any, Callable, Sequence, TypeVar
from uuid import UUID

from eventsourcing.application import Application
import psycopg
import psycopg_pool
from eventsourcing.persistence import (
    DataError, IntegrityError, InterfaceError, InternalError, Mapper, Notification, OperationalError, PersistenceError,
    StoredEvent, Transcoder,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment, EnvType, get_topic
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import IdleInTransactionSessionTimeout
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal
from psycopg.types.json import Jsonb

from domain.kernel.base import DomainEvent, event_class
from domain.liaison.links import LiaisonLinked
from domain.structure.responsibility import ResponsibilityAssigned


@dataclass(frozen=True)
class StoredDomainEvent:
    """A domain event placed in an aggregate's sequence (what the library stores and returns)."""

    originator_id: UUID
    originator_version: int
    event: DomainEvent

    @property
    def timestamp(self) -> datetime:
        return self.event.meta.recorded_at

    @property
    def event_id(self) -> str:
        return event_id(self.originator_id, self.originator_version)


def event_id(originator_id: UUID, version: int) -> str:
    """Globally unique, stable id of a stored event (used by consumers to deduplicate)."""
    return f"{originator_id}:{version}"


class JSONBytes(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class DudaoMapper(Mapper[UUID]):
    """Maps events to stored rows by stable name; upcasts `class_version` on the way back."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        assert isinstance(domain_event, StoredDomainEvent)
        event = domain_event.event
        state = event.model_dump(mode="json")
        if event.class_version > 1:
            state["class_version"] = event.class_version
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=event.event_name,
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> StoredDomainEvent:
        return StoredDomainEvent(
            originator_id=UUID(str(stored_event.originator_id)),
            originator_version=stored_event.originator_version,
            event=decode_stored(stored_event.topic, stored_event.state, self.transcoder),
        )


def decode_stored(name: str, state: bytes, transcoder: Transcoder) -> DomainEvent:
    """A stored row's event. When its class has never changed and the row names no class version (nothing to
    upcast), pydantic validates the stored JSON bytes itself, about twice as fast as parsing them to a dict first
    (what an audit replaying thousands of events waits on); otherwise the dict goes through the upcasters."""
    cls = event_class(name)
    if cls.class_version == 1 and b'"class_version"' not in state:
        return cls.model_validate_json(state)
    return decode_event(name, transcoder.decode(state))


def decode_event(name: str, data: dict[str, Any]) -> DomainEvent:
    """Validate a stored payload into its event class, upcasting older versions step by step."""
    cls = event_class(name)
    version = data.pop("class_version", 1)
    while version < cls.class_version:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
        version += 1
    return cls.model_validate(data)


T = TypeVar("T")
RECEIPTS_TABLE = "dudao_command_receipts"
HOLDER_TOPICS = (ResponsibilityAssigned.event_name, LiaisonLinked.event_name)  # what `<table>_holders_idx` covers


def holder_topics_sql(topics: Sequence[str] = HOLDER_TOPICS) -> Composed:
    """`topic IN (...)` with the topics as literals, as the holders index's predicate is written (a query that
    repeats it word for word is one the planner can answer from the index)."""
    return SQL("topic IN ({})").format(SQL(", ").join(Literal(t) for t in topics))


@dataclass(frozen=True)
class Receipt:
    """The idempotency record of one accepted command."""

    command_id: str
    command_name: str
    payload_sha256: str
    result: dict[str, Any]


def payload_digest(command_name: str, payload: dict[str, Any]) -> str:
    body = json.dumps([command_name, payload], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(eq=False)
class Append:
    """One command's events (as the recorder's composite rows) and receipt, waiting to be written; then its outcome:
    the events' notification ids, or the error to raise in the command's thread."""

    events: list[Any]
    receipt: Receipt | None
    outcome: list[int] | BaseException | None = None
    lead: bool = False  # this append's thread writes the next batch
    woken: threading.Event = field(default_factory=threading.Event)


def failure(sqlstate: str, message: str) -> PersistenceError:
    """One command's failed insert inside a batch, as the library would raise it on its own (an IntegrityError for a
    version or receipt already taken, which the command service retries), caused by psycopg's error for the state."""
    cause = psycopg.errors.lookup(sqlstate)(message)
    kind: type[PersistenceError] = (IntegrityError if sqlstate.startswith("23") else
                                    DataError if sqlstate.startswith("22") else PersistenceError)
    error = kind(message)
    error.__cause__ = cause
    return error


class GroupCommit:
    """Group commit: the appends of concurrent commands written in one transaction, so they share one table lock and
    one WAL flush (a durable commit costs about a millisecond here, and the table lock makes commits take turns).

    No thread of its own: the first command to append while no batch is being written writes one (leader), taking
    every append queued by then (at most `max_batch`); appends arriving meanwhile wait, and when the batch is done
    the oldest of them writes the next. A lone command thus writes at once, as without batching. Every append keeps
    its own outcome: notification ids, or its own error (another command's conflict fails only that command), or,
    for a failure of the whole call (lock or statement timeout, dropped connection), that error in every command of
    the batch. A waiting command gives up after `wait_s` (OperationalError; its append may still be written, which
    its receipt makes safe to retry).
    """

    def __init__(self, write: Callable[[Sequence[Append]], None], max_batch: int = 64, wait_s: float = 60.0) -> None:
        self.write = write
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._mutex = threading.Lock()
        self._queue: list[Append] = []
        self._writing = False

    def append(self, item: Append) -> list[int]:
        with self._mutex:
            self._queue.append(item)
            if not self._writing:
                self._writing = item.lead = True
        if not item.lead:
            item.woken.wait(self.wait_s)
            with self._mutex:
                if item.outcome is None and not item.lead:
                    if item in self._queue:
                        self._queue.remove(item)
                    raise OperationalError(f"no batch wrote this command's events within {self.wait_s:g} s")
        if item.outcome is None:
            self._lead()
        if isinstance(item.outcome, BaseException):
            raise item.outcome
        assert item.outcome is not None
        return item.outcome

    def _lead(self) -> None:
        with self._mutex:
            batch = self._queue[:self.max_batch]
            del self._queue[:len(batch)]
        try:
            self.write(batch)
        except Exception as exc:  # noqa: BLE001 - the whole call failed: every command of the batch hears of it
            for i, item in enumerate(batch):
                item.outcome = exc if i == 0 else copy_error(exc)
        finally:
            for item in batch:
                if item.outcome is None:
                    item.outcome = OperationalError("the batch returned no outcome for this command")
            with self._mutex:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].woken.set()
                else:
                    self._writing = False
            for item in batch[1:]:
                item.woken.set()


def copy_error(exc: BaseException) -> BaseException:
    """The same error for another thread to raise (each with its own traceback), with the same cause."""
    try:
        copy = type(exc)(*exc.args)
    except TypeError:
        copy = OperationalError(str(exc))
    copy.__cause__ = exc.__cause__
    return copy


class DudaoRecorder(PostgresApplicationRecorder):
    """The library's recorder, appending in one round trip (a server-side function) with the command receipt in the
    events' transaction, reading a command's receipt and aggregates in one more, and retrying a dropped connection
    instead of pinging every connection it takes from the pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        self.receipts = SQL("{}.{}").format(schema, Identifier(RECEIPTS_TABLE))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, command_name text NOT NULL, "
                "payload_sha256 text NOT NULL, result jsonb NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ).format(self.receipts)
        )
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (topic, originator_id) WHERE {}").format(
                Identifier(f"{self.events_table_name}_holders_idx"), schema, table, holder_topics_sql())
        )
        append = Identifier(self.datastore.schema, f"{self.events_table_name}_append")
        # The library's write, statement for statement (table lock, NOTIFY, insert), plus each command's receipt, for a
        # batch of commands (group commit): one call in autocommit, so the lock is held from the first insert to the
        # commit and no longer, as before. Command i's events are events[starts[i]:ends[i]]; each command's inserts run
        # in a subtransaction of their own (a plpgsql exception block), so one that fails (a version or receipt
        # already taken) is rolled back alone and reported by its SQLSTATE while the others commit. A lock, statement
        # or connection failure is not caught here and fails the whole batch.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {append}(events {schema}.{event_type}[], starts int[], ends int[], "
                "receipt_ids text[], receipt_names text[], receipt_sha256s text[], receipt_results jsonb[]) "
                "RETURNS TABLE (command_no int, notification_ids bigint[], failed_state text, failed_message text) "
                "LANGUAGE plpgsql AS $BODY$ BEGIN "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "FOR i IN 1 .. coalesce(array_length(starts, 1), 0) LOOP "
                "command_no := i; notification_ids := NULL; failed_state := NULL; failed_message := NULL; "
                "BEGIN "
                "WITH inserted AS (INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                "FROM unnest(events[starts[i]:ends[i]]) AS e RETURNING {table}.notification_id) "
                "SELECT array_agg(inserted.notification_id ORDER BY inserted.notification_id) INTO notification_ids "
                "FROM inserted; "
                "IF receipt_ids[i] IS NOT NULL THEN "
                "INSERT INTO {receipts} (command_id, command_name, payload_sha256, result) "
                "VALUES (receipt_ids[i], receipt_names[i], receipt_sha256s[i], receipt_results[i]); "
                "END IF; "
                "EXCEPTION WHEN OTHERS THEN "
                "notification_ids := NULL; failed_state := SQLSTATE; failed_message := SQLERRM; "
                "END; "
                "RETURN NEXT; "
                "END LOOP; "
                "END; $BODY$"
            ).format(append=append, schema=schema, table=table, event_type=Identifier(self.stored_event_type_name),
                     channel=Identifier(self.channel_name), receipts=self.receipts)
        )
        self.append_statement = SQL(
            "SELECT command_no, notification_ids, failed_state, failed_message "
            "FROM {}(%s, %s::int[], %s::int[], %s::text[], %s::text[], %s::text[], %s::jsonb[])"
        ).format(append)
        self.group_commit = GroupCommit(self._append_batch)
        self.load_statement = SQL(
            "SELECT 0 AS part, NULL::uuid AS originator_id, NULL::bigint AS originator_version, NULL::text AS topic, "
            "NULL::bytea AS state, (SELECT to_jsonb(r) FROM {receipts} r WHERE r.command_id = %s) AS receipt "
            "UNION ALL "
            "SELECT 1, originator_id, originator_version, topic, state, NULL FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) "
            "ORDER BY part, originator_id, originator_version"
        ).format(receipts=self.receipts, schema=schema, table=table)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Lock the events table, insert the events and the receipt, commit: one statement, one round trip.

        The library sends these statements in psycopg's pipeline mode, and psycopg (3.3.9 here, C and
        Python implementations alike; cf. psycopg issue #685) stops flushing its output buffer once its
        queue of pipelined commands is empty, even when libpq has not sent every byte yet. It then
        waits for a result the server cannot produce, because the server is still reading the rest
        of the statement. So a statement larger than the socket's send buffer (a ~1 MB command, or
        ~1,000 events in one save) hung forever with the table's EXCLUSIVE lock already taken. Here
        the whole write is one call of `<table>_append` (created with the tables; on an existing database by the next
        `dudao migrate`), sent completely before
        its result is awaited, in autocommit: the table lock, NOTIFY and inserts run server-side as the
        library runs them, with no round trip between them (it was seven: BEGIN, SET, LOCK, NOTIFY, INSERT,
        INSERT receipt, COMMIT).

        A lock or pool timeout is not retried (the library's ten retries turned one into ten; retrying a write is
        the caller's decision, and its receipt makes that safe). A connection found dropped is, once: the
        retry either writes or, if the first attempt committed after all, meets its own rows and fails as a
        concurrent write would (IntegrityError), after which the service finds the receipt.
        """
        if not stored_events:
            return None
        events = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                  for e in stored_events]
        return self.group_commit.append(Append(events, kwargs.get("receipt")))

    def _append_batch(self, batch: Sequence[Append]) -> None:
        """Write a batch of commands' appends in one call (see `GroupCommit`), setting each one's outcome."""
        events: list[Any] = []
        starts, ends = [], []
        for a in batch:
            starts.append(len(events) + 1)
            events += a.events
            ends.append(len(events))
        receipts = [a.receipt for a in batch]
        params = (events, starts, ends, [r.command_id if r else None for r in receipts],
                  [r.command_name if r else None for r in receipts], [r.payload_sha256 if r else None for r in receipts],
                  [Jsonb(r.result) if r else None for r in receipts])

        def append(conn: Connection[DictRow]) -> list[tuple[Any, ...]]:
            with conn.cursor(row_factory=tuple_row) as curs:
                return curs.execute(self.append_statement, params, prepare=True).fetchall()

        for no, ids, state, message in self.on_live_connection(append):
            batch[no - 1].outcome = list(ids) if state is None else failure(state, message)

    def load(self, command_id: str, aggregate_ids: Iterable[UUID]) -> tuple[Receipt | None, dict[UUID, list[StoredEvent]]]:
        """A command's receipt (None if it was never accepted) and the stored events of the given aggregates, oldest
        first (absent: no events), in one round trip: what a command reads before it decides."""
        ids = list(dict.fromkeys(aggregate_ids))

        def read(conn: Connection[DictRow]) -> tuple[Receipt | None, dict[UUID, list[StoredEvent]]]:
            with conn.cursor() as curs:
                rows = curs.execute(self.load_statement, (command_id, ids), prepare=True).fetchall()
            found = rows[0]["receipt"]
            receipt = Receipt(found["command_id"], found["command_name"], found["payload_sha256"],
                              found["result"]) if found is not None else None
            histories: dict[UUID, list[StoredEvent]] = {}
            for row in rows[1:]:
                histories.setdefault(row["originator_id"], []).append(StoredEvent(
                    originator_id=row["originator_id"], originator_version=row["originator_version"],
                    topic=row["topic"], state=bytes(row["state"])))
            return receipt, histories

        return self.on_live_connection(read)

    def on_live_connection(self, work: Callable[[Connection[DictRow]], T]) -> T:
        """`work(conn)` on a pooled connection; if that connection turns out dropped (the server restarted, or the
        network cut it, while it sat in the pool), the pool's idle connections are replaced and `work` runs once
        more. This stands in for a ping before every use, a round trip per checkout that only ever found out the
        same thing. A failure on a connection that still works (a lock or statement timeout, a constraint) and a
        pool timeout (no connection to be had) are raised as they are."""
        for attempt in (1, 2):
            taken: list[Connection[DictRow]] = []
            try:
                with self.datastore.get_connection() as conn:
                    taken.append(conn)
                    return work(conn)
            except (InterfaceError, OperationalError, InternalError) as exc:
                if isinstance(exc, InternalError) and isinstance(exc.__cause__, IdleInTransactionSessionTimeout):
                    # The server ended this session mid-write: as unavailable as a dropped connection.
                    raise OperationalError(str(exc)) from exc.__cause__
                if attempt == 2 or not taken or not (taken[0].broken or taken[0].closed):
                    raise
                self.datastore.pool.drain()
        raise AssertionError("unreachable")

    def read_on_live_connection(self, read: Callable[[], T]) -> T:
        """`read()` (one of the library's reads, which take their own pooled connection); once more, after the
        pool's idle connections are replaced, if the connection it took had been ended (the server restarted while
        it sat in the pool). After an outage every pooled connection is such a one, and without this the first read
        on each failed: the relay logged a second outage a second after the first had ended. Reads only, as
        `on_live_connection` does for writes; a timeout, a pool wait given up or any other error is raised as is."""
        try:
            return read()
        except (InterfaceError, OperationalError) as exc:
            if not connection_ended(exc):
                raise
            self.datastore.pool.drain()
            return read()

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        """The library's read without its ten retries: during an outage the caller hears of it after one pool wait."""
        return self.read_on_live_connection(
            lambda: _without_retry(PostgresAggregateRecorder.select_events)(self, originator_id, **kwargs))

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None, topics: Sequence[str] = (),
                             *, inclusive_of_start: bool = True) -> Sequence[Notification]:
        """The library's read without its ten retries (up to ten pool waits, ~30 s): the projector, the relay and the
        audit meet an outage at once and ride it out with their own backoff, logging it; with the retries a short
        outage in the middle of a projector's pass went by unseen, the pass hanging through it."""
        return self.read_on_live_connection(lambda: _without_retry(PostgresApplicationRecorder.select_notifications)(
            self, start, limit, stop, topics, inclusive_of_start=inclusive_of_start))

    def max_notification_id(self) -> int | None:
        """The library's query without its ten retries (the API reads it for health and freshness)."""
        return self.read_on_live_connection(lambda: _without_retry(PostgresApplicationRecorder.max_notification_id)(self))

    def latest_versions(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, int]:
        """The current version of each given aggregate that has events (one query, whatever the number)."""
        ids = list(aggregate_ids)
        if not ids:
            return {}
        table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

        def read(conn: Connection[DictRow]) -> dict[UUID, int]:
            with conn.cursor() as curs:
                curs.execute(SQL("SELECT originator_id, max(originator_version) AS version FROM {} "
                                 "WHERE originator_id = ANY(%s) GROUP BY originator_id").format(table), (ids,))
                return {row["originator_id"]: row["version"] for row in curs.fetchall()}

        return self.on_live_connection(read)

    def get_receipt(self, command_id: str) -> Receipt | None:
        receipt, _ = self.load(command_id, ())
        return receipt


def connection_ended(exc: BaseException) -> bool:
    """The error says the connection itself is gone (closed, dropped, or ended by the server: admin or crash
    shutdown, SQLSTATE class 08 or 57P0x), not that the statement failed on a live one (a timeout, a lock not
    available, a conflict) nor that no connection could be had (the pool's wait given up)."""
    cause = exc.__cause__ if isinstance(exc, PersistenceError) and exc.__cause__ is not None else exc
    if isinstance(cause, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
        return False
    if isinstance(cause, psycopg.InterfaceError):
        return True
    if not isinstance(cause, psycopg.OperationalError):
        return False
    state = cause.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _without_retry(method: Any) -> Any:
    """The undecorated function under one of the library's `@retry(...)` methods."""
    return getattr(method, "__wrapped__", method)


@dataclass(frozen=True)
class StoreTimeouts:
    """Bounds on every wait of a store connection, in whole seconds (0 turns one off).

    A statement waiting for a lock is cut off by whichever of the lock and statement timeouts comes
    first, so the statement timeout should be the larger.

    lock_s: lock_timeout, the longest wait for any lock (the events table's, a row's, an advisory one).
    statement_s: statement_timeout, the longest any single statement may run.
    idle_in_transaction_s: idle_in_transaction_session_timeout: the server ends a session whose
        transaction sits idle this long, which releases its locks.
    connect_s: libpq's connect_timeout for opening a connection (libpq reads 1 as 2).
    pool_wait_s: the longest wait for a connection from the pool (psycopg_pool.PoolTimeout after it).
    reconnect_s: how long the pool keeps retrying a lost connection before giving it up; the next request for a
        connection then starts afresh. The pool's pause between retries doubles each time (1, 2, 4, 8 ... s) and by
        default it retries for five minutes, so after an outage it could sit out a pause as long as half the outage
        before connecting again; with this bound, reads and writes resume within seconds of the database's return.
    """

    lock_s: int = 5
    statement_s: int = 30
    idle_in_transaction_s: int = 10
    connect_s: int = 3
    pool_wait_s: int = 3
    reconnect_s: int = 10


DEFAULT_TIMEOUTS = StoreTimeouts()


class DudaoFactory(PostgresFactory):
    """The library's PostgreSQL factory, plus libpq's connect timeout and session lock and statement timeouts.

    The library sets idle_in_transaction_session_timeout on each new connection and lock_timeout only
    around its own table lock; it has no statement timeout and no libpq connect timeout. Both go
    into the pool's connection parameters here, before the pool opens (the recorder opens it), and the
    pool's reconnection retries are bounded (`StoreTimeouts.reconnect_s`).
    """

    POSTGRES_STATEMENT_TIMEOUT = "POSTGRES_STATEMENT_TIMEOUT"
    POSTGRES_LIBPQ_CONNECT_TIMEOUT = "POSTGRES_LIBPQ_CONNECT_TIMEOUT"
    POSTGRES_RECONNECT_TIMEOUT = "POSTGRES_RECONNECT_TIMEOUT"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        statement_s = int(self.env.get(self.POSTGRES_STATEMENT_TIMEOUT) or 0)
        connect_s = int(self.env.get(self.POSTGRES_LIBPQ_CONNECT_TIMEOUT) or 0)
        if reconnect_s := int(self.env.get(self.POSTGRES_RECONNECT_TIMEOUT) or 0):
            self.datastore.pool.reconnect_timeout = reconnect_s  # read by each retry the pool starts (StoreTimeouts)
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        kwargs["options"] = f"-c lock_timeout={self.datastore.lock_timeout}s -c statement_timeout={statement_s}s"
        if connect_s:
            kwargs["connect_timeout"] = connect_s


class Dudao(Application[UUID]):
    """The single event-sourced application of a deployment (one table, one notification log)."""

    name = "Dudao"
    env = {
        "MAPPER_TOPIC": get_topic(DudaoMapper),
        "TRANSCODER_TOPIC": get_topic(JSONBytes),
        "APPLICATION_RECORDER_TOPIC": get_topic(DudaoRecorder),
        "PERSISTENCE_MODULE": get_topic(DudaoFactory),
    }

    @property
    def store(self) -> DudaoRecorder:
        assert isinstance(self.recorder, DudaoRecorder)
        return self.recorder

    def history(self, aggregate_id: UUID) -> list[StoredDomainEvent]:
        """An aggregate's stored events, oldest first (empty for an unknown id)."""
        return [stored_domain_event(e) for e in self.events.get(aggregate_id)]

    def event_at(self, aggregate_id: UUID, version: int) -> StoredDomainEvent | None:
        """One stored event of an aggregate, by version (None if there is none)."""
        found = list(self.events.get(aggregate_id, gt=version - 1, lte=version))
        return stored_domain_event(found[0]) if found else None

    def decode(self, stored: StoredEvent) -> StoredDomainEvent:
        """A stored row (e.g. a notification) as the domain event our mapper makes of it."""
        return stored_domain_event(self.mapper.to_domain_event(stored))


def stored_domain_event(event: object) -> StoredDomainEvent:
    """What the library hands back, as the type `DudaoMapper` always makes (its API says only 'an event')."""
    assert isinstance(event, StoredDomainEvent), type(event)
    return event


def postgres_env(database_url: str, *, create_table: bool = True, pool_size: int = 5,
                 timeouts: StoreTimeouts = DEFAULT_TIMEOUTS) -> dict[str, str]:
    """Translate a libpq DSN (URL or key=value; unix-socket host allowed) and the timeouts into the library's settings."""
    params = conninfo_to_dict(database_url)
    return {
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "localhost")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "20",
        "POSTGRES_PRE_PING": "n",  # a dropped connection is retried instead (`on_live_connection`)
        "POSTGRES_LOCK_TIMEOUT": str(timeouts.lock_s),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(timeouts.idle_in_transaction_s),
        # The library's "connect timeout" is the pool's wait for a connection, not libpq's.
        "POSTGRES_CONNECT_TIMEOUT": str(timeouts.pool_wait_s),
        DudaoFactory.POSTGRES_LIBPQ_CONNECT_TIMEOUT: str(timeouts.connect_s),
        DudaoFactory.POSTGRES_STATEMENT_TIMEOUT: str(timeouts.statement_s),
        DudaoFactory.POSTGRES_RECONNECT_TIMEOUT: str(timeouts.reconnect_s),
        "CREATE_TABLE": "y" if create_table else "n",
    }


def open_store(database_url: str, *, create_table: bool = True, pool_size: int = 5,
               timeouts: StoreTimeouts = DEFAULT_TIMEOUTS) -> Dudao:
    return Dudao(env=postgres_env(database_url, create_table=create_table, pool_size=pool_size, timeouts=timeouts))
