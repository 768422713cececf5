"""Signed digests (签名摘要) of the chain: (position, head hash, time) signed with HMAC-SHA256, kept twice.

The chain process signs the chain's head every `DUDAO_AUDIT_DIGEST_SECONDS` (when it moved) and
keeps the digest in `dudao_chain_digests` and on the `<prefix>.digests` Kafka topic. Copies held
downstream are what make a rewrite of both the events and the chain visible: whoever rewrites
history must also recompute the chain, and then the head hash no longer matches a digest that
consumers already hold (and cannot forge one without the key).

The message signed (version 1), UTF-8, lines joined by "\\n":
`dudao-digest-v1`, position, head hash (hex), signed_at (ISO-8601 UTC), key id.
The key (`DUDAO_AUDIT_KEY`) is a secret shared by the chain process and whoever verifies: HMAC
proves the digest came from a holder of the key, so keep it out of the database, give it to the
discipline body's verifier, and rotate it by a new key id: the old key moves to the retired keys
(`DUDAO_AUDIT_RETIRED_KEYS`, `id:key,id:key`), which only check the digests signed before (a
`Keyring`); a digest under a key id the verifier does not hold is reported, never trusted. Without a
configured key, `dudao run` and `dudao chain` make one under the var directory (`audit.key`,
readable by its owner only) — fine for a trial, not for production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.topics import never_creating
from infra.streams.broker import CONNECT_TIMEOUT_MS, discard_producer, ensure_topics

TABLE = "dudao_chain_digests"
DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (position bigint PRIMARY KEY, head_hash bytea NOT NULL,"
       " signed_at timestamptz NOT NULL, key_id text NOT NULL, algorithm text NOT NULL, signature text NOT NULL,"
       " published_at timestamptz NULL)",)
ALGORITHM = "HMAC-SHA256"


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    secret: bytes

    def sign(self, message: bytes) -> str:
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def load_key(key: str | None, key_id: str, var_dir: Path) -> SigningKey:
    """The configured key (`DUDAO_AUDIT_KEY`, hex or text), else the one kept under var (made on first use)."""
    if key:
        return SigningKey(key_id, secret_of(key))
    path = var_dir / "audit.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return SigningKey(key_id, bytes.fromhex(path.read_text().strip()))


@dataclass(frozen=True)
class Keyring:
    """The key that signs now and the retired ones that still check older digests (key rotation)."""

    current: SigningKey
    retired: tuple[SigningKey, ...] = ()

    def get(self, key_id: str) -> SigningKey | None:
        return next((k for k in (self.current, *self.retired) if k.key_id == key_id), None)


def secret_of(text: str) -> bytes:
    """A key given as hex, or else as text."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode()


def retired_keys(text: str | None) -> tuple[SigningKey, ...]:
    """`id:key,id:key` (each key hex or text) as signing keys; empty when unset."""
    pairs = [item.split(":", 1) for item in (text or "").split(",") if item.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError("DUDAO_AUDIT_RETIRED_KEYS: give id:key pairs separated by commas")
    return tuple(SigningKey(key_id.strip(), secret_of(key.strip())) for key_id, key in pairs)


def load_keyring(key: str | None, key_id: str, retired: str | None, var_dir: Path) -> Keyring:
    """The current key (`load_key`) and the retired ones."""
    return Keyring(load_key(key, key_id, var_dir), retired_keys(retired))


@dataclass(frozen=True)
class Digest:
    """One signed statement of the chain's head."""

    position: int
    head_hash: bytes
    signed_at: datetime
    key_id: str
    signature: str
    algorithm: str = ALGORITHM
    source: str = "table"

    def message(self) -> bytes:
        return message(self.position, self.head_hash, self.signed_at, self.key_id)

    def signed_by(self, key: SigningKey) -> bool:
        return key.key_id == self.key_id and hmac.compare_digest(key.sign(self.message()), self.signature)

    def as_json(self) -> dict[str, Any]:
        return {"position": self.position, "head_hash": self.head_hash.hex(), "signed_at": self.signed_at.isoformat(),
                "key_id": self.key_id, "algorithm": self.algorithm, "signature": self.signature}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> Digest:
        return cls(int(data["position"]), bytes.fromhex(data["head_hash"]), datetime.fromisoformat(data["signed_at"]),
                   data["key_id"], data["signature"], data.get("algorithm", ALGORITHM), source)


def message(position: int, head_hash: bytes, signed_at: datetime, key_id: str) -> bytes:
    at = signed_at.astimezone(timezone.utc).isoformat()
    return "\n".join(("dudao-digest-v1", str(position), head_hash.hex(), at, key_id)).encode()


def make(position: int, head_hash: bytes, at: datetime, key: SigningKey) -> Digest:
    at = at.astimezone(timezone.utc)
    return Digest(position, head_hash, at, key.key_id, key.sign(message(position, head_hash, at, key.key_id)))


def create_table(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_chain_ddl'))")
        for statement in DDL:
            conn.execute(statement)


def record(conn: psycopg.Connection[Any], digest: Digest) -> None:
    conn.execute(f"INSERT INTO {TABLE} (position, head_hash, signed_at, key_id, algorithm, signature)"
                 " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (position) DO NOTHING",
                 (digest.position, digest.head_hash, digest.signed_at, digest.key_id, digest.algorithm, digest.signature))


def from_row(row: Any) -> Digest:
    r = row if isinstance(row, dict) else dict(zip(("position", "head_hash", "signed_at", "key_id", "algorithm",
                                                     "signature"), row, strict=False))
    return Digest(int(r["position"]), bytes(r["head_hash"]), r["signed_at"], r["key_id"], r["signature"], r["algorithm"])


def stored(conn: psycopg.Connection[Any]) -> list[Digest]:
    """Every digest in the table, oldest first (none when the chain process never ran)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    if not exists or not (exists["?column?"] if isinstance(exists, dict) else exists[0]):
        return []
    rows = conn.execute(f"SELECT position, head_hash, signed_at, key_id, algorithm, signature FROM {TABLE}"
                        " ORDER BY position").fetchall()
    return [from_row(r) for r in rows]


def latest(conn: psycopg.Connection[Any]) -> tuple[Digest, datetime | None] | None:
    """The newest digest and when it reached Kafka (None: not yet)."""
    found = stored(conn)
    if not found:
        return None
    row = conn.execute(f"SELECT published_at FROM {TABLE} WHERE position = %s", (found[-1].position,)).fetchone()
    published = (row["published_at"] if isinstance(row, dict) else row[0]) if row else None
    return found[-1], published


def unpublished(conn: psycopg.Connection[Any]) -> list[Digest]:
    rows = conn.execute(f"SELECT position, head_hash, signed_at, key_id, algorithm, signature FROM {TABLE}"
                        " WHERE published_at IS NULL ORDER BY position").fetchall()
    return [from_row(r) for r in rows]


def topic_name(prefix: str) -> str:
    return f"{prefix}.digests"


def publish(bootstrap: str, topic: str, digests: list[Digest], timeout_s: float = 10.0) -> None:
    """Send the digests to the topic (one partition, key "digest") and wait for the broker's acknowledgement."""
    ensure_topics(bootstrap, [topic], 1, timeout_s)
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="dudao-chain", acks="all",
                             request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=CONNECT_TIMEOUT_MS)
    try:
        futures = [producer.send(topic, key=b"digest", value=json.dumps(d.as_json()).encode(), partition=0)
                   for d in digests]
        producer.flush(timeout=timeout_s)
        for f in futures:
            f.get(timeout=timeout_s)
    finally:
        discard_producer(producer)


def mark_published(conn: psycopg.Connection[Any], digests: list[Digest]) -> None:
    conn.execute(f"UPDATE {TABLE} SET published_at = clock_timestamp() WHERE position = ANY(%s)",
                 ([d.position for d in digests],))


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[Digest]:
    """Every digest held on the topic, oldest first (what downstream holds; empty when the topic is empty)."""
    consumer = never_creating(KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="dudao-verify",
        fetch_max_wait_ms=50, bootstrap_timeout_ms=CONNECT_TIMEOUT_MS, request_timeout_ms=int(timeout_s * 1000) + 1000,
        allow_auto_create_topics=False))
    try:
        if topic not in (consumer.topics() or set()):
            return []
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        found: list[Digest] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=200).values():
                found += [Digest.from_json(json.loads(m.value), "kafka") for m in messages]
            end = consumer.highwater(tp)
            if end is not None and consumer.position(tp) >= end:
                break
        return found
    finally:
        consumer.close()
