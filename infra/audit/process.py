"""`dudao chain`: the chain process — chains the log as it grows, signs digests, hands them to Kafka.

Each round: chain every stored event (batches, exactly once: `infra.audit.chain`); when the head
moved and `digest_seconds` passed since the last digest, sign one and keep it in the digest table;
then send every digest not yet on the broker to `<prefix>.digests` and mark it sent. Kafka being
away only delays the sending (the table is the outbox); PostgreSQL being away is ridden out with
the shared back-off, logged once each way, as the relay and escalator do. Caught up, it waits for the
store's commit notification on `channel` (`infra.store.wakeup`), or `poll` seconds at most: the next
round both chains what was stored and signs a digest that fell due meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime

import psycopg
import structlog
from kafka.errors import KafkaError
from psycopg.rows import dict_row
from psycopg.sql import Composed

from infra.audit import chain, digests
from infra.outage import DATABASE_UNAVAILABLE, Outage
from infra.store.wakeup import Wakeup

log = structlog.get_logger("dudao.chain")


class ChainProcess:
    def __init__(self, database_url: str, events: Composed, key: digests.SigningKey, clock: Callable[[], datetime], *,
                 bootstrap: str | None = None, topic: str = "dudao.digests", digest_seconds: float = 60.0,
                 batch_size: int = 5000, poll: float = 5.0, channel: str | None = None) -> None:
        self.database_url = database_url
        self.chainer = chain.Chainer(database_url, events, batch_size)
        self.key, self.clock = key, clock
        self.bootstrap, self.topic = bootstrap, topic
        self.digest_seconds, self.poll, self.channel = digest_seconds, poll, channel
        self.outage = Outage(log)
        self._stop = threading.Event()
        self._ready = False

    def connect(self) -> psycopg.Connection[dict[str, object]]:
        return psycopg.connect(self.database_url, row_factory=dict_row, autocommit=True, connect_timeout=5)

    def prepare(self) -> None:
        if not self._ready:
            with self.connect() as conn:
                chain.create_tables(conn)
                digests.create_table(conn)
            self._ready = True

    def round(self, *, force_digest: bool = False) -> int:
        """One round: chain, maybe sign, send what is unsent; how many events were chained."""
        self.prepare()
        chained = self.chainer.catch_up()
        if chained:
            log.info("chain_extended", events=chained)
        with self.connect() as conn:
            self.sign_if_due(conn, force_digest)
            if self.bootstrap:
                self.send(conn)
        return chained

    def sign_if_due(self, conn: psycopg.Connection[dict[str, object]], force: bool = False) -> digests.Digest | None:
        head = chain.head(conn)
        last = digests.latest(conn)
        now = self.clock()
        if head.position == 0 or (last is not None and last[0].position >= head.position):
            return None
        if not force and last is not None and (now - last[0].signed_at).total_seconds() < self.digest_seconds:
            return None
        digest = digests.make(head.position, head.hash, now, self.key)
        digests.record(conn, digest)
        log.info("chain_digest_signed", position=digest.position, head_hash=digest.head_hash.hex())
        return digest

    def send(self, conn: psycopg.Connection[dict[str, object]]) -> int:
        pending = digests.unpublished(conn)
        if not pending or not self.bootstrap:
            return 0
        try:
            digests.publish(self.bootstrap, self.topic, pending)
        except KafkaError as exc:
            log.warning("chain_digest_not_sent", pending=len(pending), error=str(exc))
            return 0
        digests.mark_published(conn, pending)
        log.info("chain_digest_sent", digests=len(pending), topic=self.topic)
        return len(pending)

    def run_forever(self) -> None:
        """Rounds until `stop()`; between rounds when caught up, a wait that a commit ends (with a `channel`)."""
        with Wakeup(self.database_url, self.channel, self._stop) if self.channel else nullcontext() as wakeup:
            while not self._stop.is_set():
                try:
                    busy = self.round()
                except DATABASE_UNAVAILABLE as exc:
                    self._stop.wait(self.outage.failed(exc))
                    continue
                self.outage.recovered()
                if not busy:
                    if wakeup is None:
                        self._stop.wait(self.poll)
                    else:
                        wakeup.wait(self.poll)

    def stop(self) -> None:
        self._stop.set()
