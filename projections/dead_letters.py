"""Dead letters (死信): events a reader could not apply, set aside instead of stopping everything.

A reader is a projection run by the projector (its position is a notification id) or a Kafka
consumer group (its position is a topic, partition and offset). When applying one event fails
for a reason that retrying will not cure (bad data, a bug), the reader records the event here in
the same transaction that stores its position *before* the event, and waits there: nothing is
skipped silently. Every other reader goes on. A failure that retrying does cure (the database
restarting, a deadlock, a timeout: `projections.outage.is_database_unavailable`) is never recorded:
the reader simply tries again.

An operator then retries the event (after fixing the cause) or skips it, and the decision, the
reason and the operator's name are kept in the row (`state` open → retried | skipped). A skip is
remembered: a rebuild that meets the same event failing again passes over it without a new letter.

This is the read side's bookkeeping shared by the projector (infra) and the consumers, so it sits
beside `projections.base`; it is not a read model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import Connection, Cursor, sql
from psycopg.rows import dict_row

TABLE = "dudao_dead_letters"
ReaderKind = Literal["projection", "consumer"]
State = Literal["open", "retried", "skipped"]
MAX_MESSAGE_CHARS = 2000


class NotWaiting(LookupError):
    """The reader has no open dead letter at that position, or is not waiting before it."""


@dataclass(frozen=True)
class Failure:
    """One event a reader could not apply: where it is, what it is, and the error."""

    position: int  # notification id (projection) or offset (consumer)
    error: BaseException
    event_id: str | None = None
    event_type: str | None = None
    notification_id: int | None = None
    topic: str = ""  # consumers only
    partition: int = -1  # consumers only
    message: bytes | None = None  # consumers only: the record's value, so a retry needs no broker

    @property
    def error_class(self) -> str:
        return type(self.error).__name__

    @property
    def error_message(self) -> str:
        return storable(str(self.error))[:MAX_MESSAGE_CHARS]


def storable(text: str) -> str:
    """Text PostgreSQL accepts: a NUL (which is often the very cause) is written as the escape `\\x00`."""
    return text.replace("\x00", "\\x00")


def ddl(schema: str = "public") -> list[sql.Composed]:
    t = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY,"
            " reader_kind text NOT NULL CHECK (reader_kind IN ('projection', 'consumer')), reader text NOT NULL,"
            " topic text NOT NULL DEFAULT '', partition int NOT NULL DEFAULT -1, position bigint NOT NULL,"
            " notification_id bigint NULL, event_id text NULL, event_type text NULL,"
            " error_class text NOT NULL, error_message text NOT NULL, message bytea NULL,"
            " first_seen timestamptz NOT NULL DEFAULT clock_timestamp(),"
            " last_seen timestamptz NOT NULL DEFAULT clock_timestamp(), attempts int NOT NULL DEFAULT 1,"
            " state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'retried', 'skipped')),"
            " reason text NULL, resolved_by text NULL, resolved_at timestamptz NULL)"
        ).format(t),
        # At most one open letter per reader and position; resolved ones stay as history.
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS dudao_dead_letters_open_position ON {}"
                " (reader_kind, reader, topic, partition, position) WHERE state = 'open'").format(t),
    ]


def _table(schema: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))


def record(curs: Cursor[Any], schema: str, kind: ReaderKind, reader: str, failure: Failure) -> int:
    """Open a dead letter, or count one more failed attempt on the open one; returns its attempts."""
    curs.execute(sql.SQL(
        "INSERT INTO {t} AS d (reader_kind, reader, topic, partition, position, notification_id, event_id, event_type,"
        " error_class, error_message, message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (reader_kind, reader, topic, partition, position) WHERE state = 'open'"
        " DO UPDATE SET attempts = d.attempts + 1, last_seen = clock_timestamp(),"
        " error_class = EXCLUDED.error_class, error_message = EXCLUDED.error_message RETURNING d.attempts"
    ).format(t=_table(schema)), (kind, reader, failure.topic, failure.partition, failure.position,
                                 failure.notification_id, failure.event_id and storable(failure.event_id),
                                 failure.event_type and storable(failure.event_type),
                                 failure.error_class, failure.error_message, failure.message))
    row = curs.fetchone()
    assert row is not None
    return int(row["attempts"] if isinstance(row, Mapping) else row[0])


def find(curs: Cursor[Any], schema: str, kind: ReaderKind, reader: str, position: int, *, state: State = "open",
         topic: str = "", partition: int = -1) -> dict[str, Any] | None:
    """The latest letter of that reader and position in that state (locked until the transaction ends)."""
    curs.execute(sql.SQL(
        "SELECT id, position, event_id, event_type, error_class, error_message, message, attempts FROM {t}"
        " WHERE reader_kind = %s AND reader = %s AND topic = %s AND partition = %s AND position = %s AND state = %s"
        " ORDER BY id DESC LIMIT 1 FOR UPDATE"
    ).format(t=_table(schema)), (kind, reader, topic, partition, position, state))
    row = curs.fetchone()
    if row is None:
        return None
    return dict(row) if isinstance(row, Mapping) else dict(zip([d.name for d in curs.description or ()], row, strict=True))


def resolve(curs: Cursor[Any], schema: str, letter_id: int, state: State, *, reason: str, by: str,
            attempted: bool) -> None:
    """Close one letter as retried (it applied) or skipped, with the reason and who decided."""
    curs.execute(sql.SQL(
        "UPDATE {t} SET state = %s, reason = %s, resolved_by = %s, resolved_at = clock_timestamp(),"
        " attempts = attempts + %s, last_seen = CASE WHEN %s THEN clock_timestamp() ELSE last_seen END WHERE id = %s"
    ).format(t=_table(schema)), (state, storable(reason), storable(by), int(attempted), attempted, letter_id))


def resolve_applied(curs: Cursor[Any], schema: str, kind: ReaderKind, reader: str, after: int, upto: int, *,
                    reason: str, by: str, topic: str = "", partition: int = -1) -> list[int]:
    """Mark open letters in positions (after, upto] as retried: the reader just applied them. Returns their positions."""
    curs.execute(sql.SQL(
        "UPDATE {t} SET state = 'retried', reason = %s, resolved_by = %s, resolved_at = clock_timestamp(),"
        " attempts = attempts + 1, last_seen = clock_timestamp() WHERE state = 'open' AND reader_kind = %s"
        " AND reader = %s AND topic = %s AND partition = %s AND position > %s AND position <= %s RETURNING position"
    ).format(t=_table(schema)), (storable(reason), storable(by), kind, reader, topic, partition, after, upto))
    return [int(r["position"] if isinstance(r, Mapping) else r[0]) for r in curs.fetchall()]


def exists(conn: Connection[Any], schema: str = "public") -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{TABLE}",)).fetchone()
    return bool(row and (row[0] if not isinstance(row, Mapping) else next(iter(row.values()))))


def listing(conn: Connection[Any], schema: str = "public", *, reader_kind: ReaderKind | None = None,
            reader: str | None = None, state: State | None = None) -> list[dict[str, Any]]:
    """Dead letters, oldest first, optionally of one reader kind, reader or state (the raw message left out)."""
    if not exists(conn, schema):
        return []
    with conn.cursor(row_factory=dict_row) as curs:
        curs.execute(sql.SQL(
            "SELECT id, reader_kind, reader, topic, partition, position, notification_id, event_id, event_type,"
            " error_class, error_message, first_seen, last_seen, attempts, state, reason, resolved_by, resolved_at"
            " FROM {t} WHERE (%(kind)s::text IS NULL OR reader_kind = %(kind)s)"
            " AND (%(reader)s::text IS NULL OR reader = %(reader)s) AND (%(state)s::text IS NULL OR state = %(state)s)"
            " ORDER BY first_seen, id"
        ).format(t=_table(schema)), {"kind": reader_kind, "reader": reader, "state": state})
        return curs.fetchall()


def open_summary(conn: Connection[Any], schema: str = "public") -> dict[tuple[str, str], dict[str, Any]]:
    """Per (reader kind, reader) with open letters: how many, the oldest one's age in seconds and its position."""
    if not exists(conn, schema):
        return {}
    with conn.cursor(row_factory=dict_row) as curs:
        curs.execute(sql.SQL(
            "SELECT DISTINCT ON (reader_kind, reader) reader_kind, reader, topic, partition, position,"
            " count(*) OVER (PARTITION BY reader_kind, reader) AS open,"
            " extract(epoch FROM clock_timestamp() - first_seen) AS age FROM {t} WHERE state = 'open'"
            " ORDER BY reader_kind, reader, first_seen, id"
        ).format(t=_table(schema)))
        return {(r["reader_kind"], r["reader"]): {
            "open": int(r["open"]), "oldest_age_seconds": round(float(r["age"]), 3),
            "oldest_position": (f"{r['topic']}:{r['partition']}:{r['position']}" if r["topic"] else r["position"]),
        } for r in curs.fetchall()}


@dataclass(frozen=True)
class Waiting:
    """A reader waiting before a dead letter at `position`: when to try again, and the pause that led there."""

    position: int
    delay_s: float
    until: float

    def due(self) -> bool:
        return time.monotonic() >= self.until


def wait_again(previous: Waiting | None, position: int, first_s: float, cap_s: float) -> Waiting:
    """The next wait before retrying `position`: doubled after each failure there, never above `cap_s`."""
    delay = first_s if previous is None or previous.position != position else min(previous.delay_s * 2, cap_s)
    return Waiting(position, delay, time.monotonic() + delay)
