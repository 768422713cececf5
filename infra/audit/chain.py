"""The hash chain (哈希链): every stored event hashed, in notification order, onto the one before it.

Canonical encoding of one stored record (version 1), all integers big-endian:

    record = int8 notification_id ‖ uuid originator_id (16 bytes) ‖ int8 originator_version
             ‖ int4 len(topic) ‖ topic (UTF-8) ‖ state (the stored bytes: payload and envelope)
    link   = SHA-256( previous link's hash ‖ int8 previous link's notification id ‖ record )

The first link follows 32 zero bytes and id 0. Each link keeps the notification id of the link
before it, so the log may have gaps (a rolled-back write consumes sequence numbers and leaves a
hole that no event fills): the chain links what is stored, and an event deleted later leaves a
link without its event (or, if its link went too, a link whose predecessor is missing).

The chain process (`dudao chain`, one of `dudao run`'s children) reads the log in order in
batches and writes each batch's links in one transaction with its position, the position row
locked FOR UPDATE for the batch (as the projector does): so no event is skipped or chained twice,
whatever runs concurrently. It relies, as the relay does, on the store assigning notification ids
in commit order (the recorder writes under the events table's EXCLUSIVE lock); were an event ever
to appear below the chained position later, `dudao verify` reports it as an insertion.

The record is built by PostgreSQL (`RECORD_SQL`, the same bytes as `encode_record`), so a chain
batch and a verification read one bytea per event instead of five columns.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Composed, Identifier

GENESIS = bytes(32)
CHAIN_TABLE = "dudao_chain"
POSITION_TABLE = "dudao_chain_position"
DDL = (
    f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (notification_id bigint PRIMARY KEY, prev_id bigint NOT NULL,"
    " originator_id uuid NOT NULL, originator_version bigint NOT NULL, hash bytea NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (name text PRIMARY KEY, position bigint NOT NULL,"
    " head_hash bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    f"INSERT INTO {POSITION_TABLE} (name, position, head_hash) VALUES ('chain', 0, '\\x{GENESIS.hex()}')"
    " ON CONFLICT DO NOTHING",
)
RECORD_SQL = ("int8send(notification_id) || uuid_send(originator_id) || int8send(originator_version)"
              " || int4send(octet_length(convert_to(coalesce(topic, ''), 'UTF8')))"
              " || convert_to(coalesce(topic, ''), 'UTF8') || coalesce(state, ''::bytea)")
_HEAD = struct.Struct(">q16sqI")
_ID = struct.Struct(">q")


def encode_record(notification_id: int, originator_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of one stored event (what `RECORD_SQL` builds in the database)."""
    name = topic.encode()
    return _HEAD.pack(notification_id, originator_id.bytes, version, len(name)) + name + state


def link_hash(prev_hash: bytes, prev_id: int, record: bytes) -> bytes:
    """The hash of one link: the previous link's hash and id, then the record."""
    return hashlib.sha256(prev_hash + _ID.pack(prev_id) + record).digest()


def events_of(schema: str, table: str) -> Composed:
    return SQL("{}.{}").format(Identifier(schema), Identifier(table))


def create_tables(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_chain_ddl'))")
        for statement in DDL:
            conn.execute(statement)


@dataclass(frozen=True)
class Head:
    """How far the chain reaches: the last chained notification id and its link hash."""

    position: int
    hash: bytes


def head(conn: psycopg.Connection[Any]) -> Head:
    row = conn.execute(f"SELECT position, head_hash FROM {POSITION_TABLE} WHERE name = 'chain'").fetchone()
    if row is None:
        return Head(0, GENESIS)
    position, hash_ = (row["position"], row["head_hash"]) if isinstance(row, dict) else row
    return Head(int(position), bytes(hash_))


class Chainer:
    """Extends the chain by batches, each in one transaction with the locked position (exactly once)."""

    def __init__(self, database_url: str, events: Composed, batch_size: int = 5000) -> None:
        self.database_url = database_url
        self.events = events
        self.batch_size = batch_size

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, connect_timeout=5)

    def run_once(self) -> int:
        """Chain the next batch of stored events; how many were chained (0 when caught up)."""
        with self.connect() as conn, conn.transaction(), conn.cursor(binary=True) as curs:
            row = curs.execute(f"SELECT position, head_hash FROM {POSITION_TABLE} WHERE name = 'chain' FOR UPDATE").fetchone()
            assert row is not None, "chain tables missing (create_tables first)"
            prev_id, prev_hash = int(row[0]), bytes(row[1])
            rows = curs.execute(SQL("SELECT notification_id, originator_id, originator_version, " + RECORD_SQL
                                    + " FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s")
                                .format(self.events), (prev_id, self.batch_size)).fetchall()
            if not rows:
                return 0
            links = []
            for nid, originator_id, version, record in rows:
                prev_hash = link_hash(prev_hash, prev_id, record)
                links.append((nid, prev_id, originator_id, version, prev_hash))
                prev_id = nid
            with curs.copy(f"COPY {CHAIN_TABLE} (notification_id, prev_id, originator_id, originator_version, hash)"
                           " FROM STDIN") as copy:
                for link in links:
                    copy.write_row(link)
            curs.execute(f"UPDATE {POSITION_TABLE} SET position = %s, head_hash = %s, updated_at = clock_timestamp()"
                         " WHERE name = 'chain'", (prev_id, prev_hash))
            return len(rows)

    def catch_up(self) -> int:
        """Chain everything stored now; how many events were chained."""
        total = 0
        while moved := self.run_once():
            total += moved
        return total
