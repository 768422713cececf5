"""Event store wiring: the one place that knows how events reach PostgreSQL.

One `eventsourcing` application (`Dudao`) holds every event of the deployment in one table with
one notification log, so the audit chain and the relay see a single order. The mapper stores each
event under its stable registry name (not a Python path) as JSON, and upcasts old versions on read.
The recorder is the library's PostgreSQL recorder plus one thing: it writes the command receipt
(idempotency record) in the same transaction as the events (a command that decides no event
writes nothing, so it needs no receipt), so a command is either fully recorded
with its receipt or not at all. Replacing the recorder (e.g. by a faster gap-safe one) touches only
this module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.kernel.base import DomainEvent, event_class


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
        data = self.transcoder.decode(stored_event.state)
        return StoredDomainEvent(
            originator_id=UUID(str(stored_event.originator_id)),
            originator_version=stored_event.originator_version,
            event=decode_event(stored_event.topic, data),
        )


def decode_event(name: str, data: dict[str, Any]) -> DomainEvent:
    """Validate a stored payload into its event class, upcasting older versions step by step."""
    cls = event_class(name)
    version = data.pop("class_version", 1)
    while version < cls.class_version:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
        version += 1
    return cls.model_validate(data)


RECEIPTS_TABLE = "dudao_command_receipts"


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


class DudaoRecorder(PostgresApplicationRecorder):
    """The library's recorder, plus the command receipt written in the events' transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipts = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(RECEIPTS_TABLE))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, command_name text NOT NULL, "
                "payload_sha256 text NOT NULL, result jsonb NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ).format(self.receipts)
        )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        receipt: Receipt | None = kwargs.get("receipt")
        if receipt is not None:
            # Fetching forces the pipeline to sync here, so a duplicate command_id raises
            # psycopg's IntegrityError now and the whole transaction (events too) rolls back.
            curs.execute(
                SQL("INSERT INTO {} (command_id, command_name, payload_sha256, result) "
                    "VALUES (%s, %s, %s, %s) RETURNING command_id").format(self.receipts),
                (receipt.command_id, receipt.command_name, receipt.payload_sha256, json.dumps(receipt.result)),
            )
            curs.fetchone()
        return ids

    def get_receipt(self, command_id: str) -> Receipt | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT command_id, command_name, payload_sha256, result FROM {} WHERE command_id = %s").format(
                    self.receipts
                ),
                (command_id,),
            )
            row = curs.fetchone()
        if row is None:
            return None
        return Receipt(row["command_id"], row["command_name"], row["payload_sha256"], row["result"])


class Dudao(Application[UUID]):
    """The single event-sourced application of a deployment (one table, one notification log)."""

    name = "Dudao"
    env = {
        "MAPPER_TOPIC": get_topic(DudaoMapper),
        "TRANSCODER_TOPIC": get_topic(JSONBytes),
        "APPLICATION_RECORDER_TOPIC": get_topic(DudaoRecorder),
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
    }

    @property
    def store(self) -> DudaoRecorder:
        assert isinstance(self.recorder, DudaoRecorder)
        return self.recorder

    def history(self, aggregate_id: UUID) -> list[StoredDomainEvent]:
        """An aggregate's stored events, oldest first (empty for an unknown id)."""
        return [stored_domain_event(e) for e in self.events.get(aggregate_id)]

    def decode(self, stored: StoredEvent) -> StoredDomainEvent:
        """A stored row (e.g. a notification) as the domain event our mapper makes of it."""
        return stored_domain_event(self.mapper.to_domain_event(stored))


def stored_domain_event(event: object) -> StoredDomainEvent:
    """What the library hands back, as the type `DudaoMapper` always makes (its API says only 'an event')."""
    assert isinstance(event, StoredDomainEvent), type(event)
    return event


def postgres_env(database_url: str, *, create_table: bool = True, pool_size: int = 5) -> dict[str, str]:
    """Translate a libpq DSN (URL or key=value; unix-socket host allowed) into the library's settings."""
    params = conninfo_to_dict(database_url)
    return {
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "localhost")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "20",
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": "y" if create_table else "n",
    }


def open_store(database_url: str, *, create_table: bool = True, pool_size: int = 5) -> Dudao:
    return Dudao(env=postgres_env(database_url, create_table=create_table, pool_size=pool_size))
