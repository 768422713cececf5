"""`dudao verify`: recompute the chain over the stored events and compare it with the stored links and the signed digests.

Every link is checked on its own: its hash must equal SHA-256 of the previous stored link's hash and
id and the event's canonical record, and it must name the previous link's id. So the first row that
disagrees is reported exactly, whatever follows it: a changed byte (the event's hash differs), a
deleted event (a link without its event; with its link deleted too, a link naming a predecessor that
is missing), an insertion (an event without a link), a reordering (two events exchanged their
positions: both records differ from what was chained). Then each digest — from the table and, when
given, from the Kafka topic downstream holds — must carry a valid signature and the hash of the link
at its position: an administrator who rewrote events and recomputed the chain to match is caught by
the first digest after the change (the change lies between the last digest that matches and it).

What it cannot see: events stored after the chain's head (`unchained`, reported) are not yet
protected; someone holding both write access and the key can forge digests that were never sent
downstream, which is why the Kafka copy matters.

Everything is read in one REPEATABLE READ snapshot, in two passes of which the second is nearly always skipped:

- the quick pass reads each event with its record (built by PostgreSQL, `chain.RECORD_SQL`) and its own link,
  merge-joined on the notification id, from one server-side cursor fetched by a thread one batch ahead while a
  tight loop hashes (one row per event to decode instead of two, and no merging in Python). It proves the range
  intact when every event has its link, every link names the one before and hashes onto it, and the links in the
  range are exactly as many as the events (so none is left whose event is gone);
- anything else sends the whole range through the careful merge of two cursors (events, links), which names each
  place where history disagrees, exactly as if there had been no quick pass.

Digests are checked after the walk, each against the stored link at its position (which the walk has shown to be
the recomputed chain's, or reported where not). The hashes are recomputed here, never by the database being verified.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed

from infra.audit import chain, digests
from infra.audit.chain import CHAIN_TABLE, GENESIS, RECORD_SQL

FETCH = 5_000  # rows per batch (each cursor fetch, each stream chunk): small enough that reading the next overlaps
#                hashing these
MAX_FINDINGS = 100
_ID = chain._ID.pack  # the previous link's id, as hashed
INFINITY = float("inf")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Finding:
    """One place where stored history disagrees with the chain or a digest."""

    position: int
    what: str  # changed | deleted | inserted | digest_mismatch | digest_signature | head_mismatch
    detail: str
    aggregate_id: UUID | None = None
    version: int | None = None
    kind: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"position": self.position, "what": self.what, "detail": self.detail,
                "aggregate_id": str(self.aggregate_id) if self.aggregate_id else None, "version": self.version,
                "kind": self.kind}


@dataclass
class Report:
    """What a verification found, from position `start` (exclusive) to `checked_to`."""

    start: int
    checked_to: int
    head_hash: bytes = GENESIS
    events: int = 0
    links: int = 0
    digests_checked: int = 0
    unchained: int = 0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    last_good_digest: digests.Digest | None = None

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.position) if self.findings else None

    def as_json(self) -> dict[str, Any]:
        first = self.first
        return {"intact": self.intact, "checked_from": self.start, "checked_to": self.checked_to,
                "head_hash": self.head_hash.hex(), "events": self.events, "links": self.links,
                "digests_checked": self.digests_checked, "unchained": self.unchained,
                "first": first.as_json() if first else None, "findings": [f.as_json() for f in self.findings],
                "seconds": round(self.seconds, 3),
                "last_good_digest": self.last_good_digest.as_json() if self.last_good_digest else None}


class _Walk:
    """The running state of one verification: the previous stored link and the findings."""

    def __init__(self, report: Report, prev_id: int, prev_hash: bytes) -> None:
        self.report, self.prev_id, self.prev_hash = report, prev_id, prev_hash

    def find(self, position: int, what: str, detail: str) -> None:
        if len(self.report.findings) < MAX_FINDINGS:
            self.report.findings.append(Finding(position, what, detail))

    def quick(self, rows: list[Any]) -> bool:
        """Events in order, each with its own link or None: whether every one has its link, which names the previous
        link and hashes onto it (the walk moves on while they do; the first that does not stops it)."""
        sha, prev_id, prev_hash = hashlib.sha256, self.prev_id, self.prev_hash
        clean = True
        for nid, record, link_prev, link_hash in rows:
            if link_prev != prev_id or link_hash != sha(prev_hash + _ID(prev_id) + record).digest():
                clean = False
                break
            prev_id, prev_hash = nid, link_hash
        self.prev_id, self.prev_hash = prev_id, prev_hash
        return clean

    def aligned(self, events: list[Any], links: list[Any]) -> None:
        """Events and links with the same ids: each checked, each mismatch named."""
        sha, prev_id, prev_hash = hashlib.sha256, self.prev_id, self.prev_hash
        for (nid, record), (_, link_prev, link_hash) in zip(events, links, strict=True):
            if link_prev != prev_id or link_hash != sha(prev_hash + _ID(prev_id) + record).digest():
                self.prev_id, self.prev_hash = prev_id, prev_hash
                self.mismatch(nid, link_prev)
            prev_id, prev_hash = nid, link_hash
        self.prev_id, self.prev_hash = prev_id, prev_hash

    def mismatch(self, nid: int, link_prev: int) -> None:
        if link_prev > self.prev_id:
            self.find(link_prev, "deleted", f"the link at {nid} follows {link_prev}, which is gone (event and link deleted)")
        elif link_prev != self.prev_id:
            self.find(nid, "changed", f"the link at {nid} names {link_prev} before it, not {self.prev_id}")
        else:
            self.find(nid, "changed", f"the event at {nid} is not what was chained (hash differs)")

    def merged(self, events: list[Any], links: list[Any]) -> None:
        """Events and links whose ids differ somewhere: merge them one by one."""
        i = j = 0
        while i < len(events) or j < len(links):
            e = events[i] if i < len(events) else None
            k = links[j] if j < len(links) else None
            if k is None or (e is not None and e[0] < k[0]):
                assert e is not None
                self.find(e[0], "inserted", f"an event is stored at {e[0]} that was never chained")
                i += 1
            elif e is None or k[0] < e[0]:
                self.find(k[0], "deleted", f"the event chained at {k[0]} is no longer stored")
                self.prev_id, self.prev_hash = k[0], bytes(k[2])
                j += 1
            else:
                self.aligned([e], [k])
                i, j = i + 1, j + 1


class _Digests:
    """The digests due in the range, each checked against the stored link at its position, in position order (a
    mismatch names the last digest that matched before it)."""

    def __init__(self, report: Report, due: list[digests.Digest], keys: digests.Keyring | None) -> None:
        self.report, self.due, self.keys = report, sorted(due, key=lambda d: d.position), keys
        self.findings: list[Finding] = []

    def find(self, position: int, what: str, detail: str) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(position, what, detail))

    def check(self, link_hashes: dict[int, bytes]) -> None:
        """`link_hashes`: the stored link's hash at each due position that has one."""
        for d in self.due:
            self.report.digests_checked += 1
            position = d.position
            key = self.keys.get(d.key_id) if self.keys is not None else None
            if self.keys is not None and key is None:
                self.find(position, "digest_signature", f"the {d.source} digest at {position} "
                          f"(signed {d.signed_at.isoformat()}) names key {d.key_id}, which this verifier does not hold "
                          "(a retired key goes in DUDAO_AUDIT_RETIRED_KEYS)")
            elif key is not None and not d.signed_by(key):
                self.find(position, "digest_signature", f"the {d.source} digest at {position} "
                          f"(signed {d.signed_at.isoformat()}, key {d.key_id}) has no valid signature")
            elif d.head_hash != link_hashes.get(position, b""):
                after = self.report.last_good_digest.position if self.report.last_good_digest else self.report.start
                self.find(position, "digest_mismatch", f"the {d.source} digest signed {d.signed_at.isoformat()} holds "
                          f"another head hash at {position}: history was changed after position {after} and up to "
                          f"{position}, and the chain recomputed to hide it")
            else:
                self.report.last_good_digest = d


def verify(conn: psycopg.Connection[Any], events: Composed, *, key: digests.SigningKey | digests.Keyring | None,
           extra_digests: Iterable[digests.Digest] = (), start: int = 0, upto: int | None = None,
           progress: Progress | None = None) -> Report:
    """Verify links and digests in (start, upto] (default: the whole chain) in one snapshot.

    `key`: the key (or the keyring, retired keys included) each digest's signature is checked with; None checks
    the digests' hashes only."""
    began = time.perf_counter()
    fresh = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction():
        if fresh:  # inside a caller's transaction (a test's uncommitted tampering) its snapshot is the one read
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = chain.head(conn)
        hi = head.position if upto is None else min(upto, head.position)
        report = Report(start=start, checked_to=hi, head_hash=head.hash)
        prev_id, prev_hash = _link_before(conn, start)
        due = [d for d in [*digests.stored(conn), *extra_digests] if start < d.position <= hi]
        keys = digests.Keyring(key) if isinstance(key, digests.SigningKey) else key
        walk = _Walk(report, prev_id, prev_hash)
        if not _quick(conn, events, walk, start, hi, progress):
            report.events = report.links = 0
            walk = _Walk(report, prev_id, prev_hash)
            _walk(conn, events, walk, start, hi, progress)
        checked = _Digests(report, due, keys)
        checked.check(_link_hashes(conn, sorted({d.position for d in due})))
        found = sorted(report.findings + checked.findings, key=lambda f: f.position)  # stable: a link's before a digest's
        if upto is None and hi and walk.prev_hash != head.hash:
            found.append(Finding(hi, "head_mismatch", "the chain's recorded head hash is not its last link's"))
        report.findings = found[:MAX_FINDINGS]
        report.unchained = _count_after(conn, events, head.position)
        _name_entities(conn, events, report)
    report.seconds = time.perf_counter() - began
    return report


def _link_before(conn: psycopg.Connection[Any], position: int) -> tuple[int, bytes]:
    if position <= 0:
        return 0, GENESIS
    row = conn.execute(f"SELECT notification_id, hash FROM {CHAIN_TABLE} WHERE notification_id <= %s"
                       " ORDER BY notification_id DESC LIMIT 1", (position,)).fetchone()
    if row is None:
        return 0, GENESIS
    values = list(row.values()) if isinstance(row, dict) else list(row)
    return int(values[0]), bytes(values[1])


def _link_hashes(conn: psycopg.Connection[Any], positions: list[int]) -> dict[int, bytes]:
    if not positions:
        return {}
    with conn.cursor(binary=True, row_factory=tuple_row) as cur:
        rows = cur.execute(f"SELECT notification_id, hash FROM {CHAIN_TABLE} WHERE notification_id = ANY(%s)",
                           (positions,)).fetchall()
    return {int(n): bytes(h) for n, h in rows}


def _quick(conn: psycopg.Connection[Any], events: Composed, walk: _Walk, lo: int, hi: int,
           progress: Progress | None) -> bool:
    """The quick pass over (lo, hi]: whether it proves the range intact (the walk then stands at its last link)."""
    with conn.cursor(binary=True, row_factory=tuple_row) as cur:
        row = cur.execute(f"SELECT count(*) FROM {CHAIN_TABLE} WHERE notification_id > %s AND notification_id <= %s",
                          (lo, hi)).fetchone()
    links = int(row[0]) if row else 0
    seen = 0
    with closing(_stream(conn, events, lo, hi)) as batches:
        for rows in batches:
            if not walk.quick(rows):
                return False  # the cursor is closed (a FETCH cursor stops cleanly) and the careful pass reads anew
            seen += len(rows)
            if progress:
                progress(max(rows[-1][0] - lo, 0), max(hi - lo, 0))
    if seen != links:
        return False
    walk.report.events = walk.report.links = seen
    return True


def _stream(conn: psycopg.Connection[Any], events: Composed, lo: int, hi: int) -> Generator[list[Any], None, None]:
    """Batches of (notification id, record, link's previous id, link's hash) in order, fetched from one server-side
    cursor by a thread one batch ahead. Each fetch waits for its rows with the GIL released and decodes them in one
    call, so PostgreSQL produces the next batch while the walk hashes this one (a streamed query, decoded row by row in
    that thread, contended for the GIL with the walk and left the server idle more than half the time)."""
    query = SQL("SELECT e.notification_id, e.record, l.prev_id, l.hash FROM (SELECT notification_id, " + RECORD_SQL
                + " AS record FROM {} WHERE notification_id > %s AND notification_id <= %s) e"
                f" LEFT JOIN {CHAIN_TABLE} l ON l.notification_id = e.notification_id"
                " ORDER BY e.notification_id").format(events)
    def read(put: Callable[[list[Any]], None], stop: threading.Event) -> None:
        with conn.cursor(name="verify_quick", binary=True, row_factory=tuple_row) as cur:
            cur.execute(query, (lo, hi))
            while not stop.is_set() and (batch := cur.fetchmany(FETCH)):
                put(batch)

    yield from _read_ahead(read)


def _walk(conn: psycopg.Connection[Any], events: Composed, walk: _Walk, lo: int, hi: int,
          progress: Progress | None) -> None:
    ev: list[Any] = []
    ln: list[Any] = []
    with closing(_batches(conn, events, lo, hi)) as batches:
        for more_ev, more_ln, ev_done, ln_done in batches:
            ev += more_ev
            ln += more_ln
            if not ev and not ln:
                break
            ev, ln = _step(walk, ev, ln, ev_done, ln_done)
            if progress:
                progress(max(walk.prev_id - lo, 0), max(hi - lo, 0))


def _step(walk: _Walk, ev: list[Any], ln: list[Any], ev_done: bool, ln_done: bool) -> tuple[list[Any], list[Any]]:
    """Check the events and links up to the last id both sides are known to; return what is left of each."""
    cut = min(INFINITY if ev_done else ev[-1][0], INFINITY if ln_done else ln[-1][0])
    ev_ids, ln_ids = [r[0] for r in ev], [r[0] for r in ln]
    k, m = bisect_right(ev_ids, cut), bisect_right(ln_ids, cut)
    if ev_ids[:k] == ln_ids[:m]:
        walk.aligned(ev[:k], ln[:m])
    else:
        walk.merged(ev[:k], ln[:m])
    walk.report.events += k
    walk.report.links += m
    return ev[k:], ln[m:]


Batch = tuple[list[Any], list[Any], bool, bool]  # events, links, and whether each cursor is exhausted


def _batches(conn: psycopg.Connection[Any], events: Composed, lo: int, hi: int) -> Generator[Batch, None, None]:
    """The next batch of each cursor, read by a thread one step ahead: PostgreSQL reads and sends the next rows
    while the walk hashes these (the connection is only ever used by that thread meanwhile)."""

    def read(put: Callable[[Batch], None], stop: threading.Event) -> None:
        with conn.cursor(name="verify_events", binary=True, row_factory=tuple_row) as ev_cur, \
                conn.cursor(name="verify_links", binary=True, row_factory=tuple_row) as ln_cur:
            ev_cur.execute(SQL("SELECT notification_id, " + RECORD_SQL + " FROM {} WHERE notification_id > %s"
                               " AND notification_id <= %s ORDER BY notification_id").format(events), (lo, hi))
            ln_cur.execute(f"SELECT notification_id, prev_id, hash FROM {CHAIN_TABLE} WHERE notification_id > %s"
                           " AND notification_id <= %s ORDER BY notification_id", (lo, hi))
            ev_done = ln_done = False
            while not stop.is_set() and not (ev_done and ln_done):
                ev = [] if ev_done else ev_cur.fetchmany(FETCH)
                ln = [] if ln_done else ln_cur.fetchmany(FETCH)
                ev_done, ln_done = ev_done or len(ev) < FETCH, ln_done or len(ln) < FETCH
                put((ev, ln, ev_done, ln_done))

    for item in _read_ahead(read):
        yield item
        if item[2] and item[3]:
            return


T = TypeVar("T")


def _read_ahead(read: Callable[[Callable[[T], None], threading.Event], None]) -> Generator[T, None, None]:
    """What `read` puts, read by a thread one step ahead of the walk; ends when `read` returns. A walk that ends
    early sets `read`'s stop event, frees it from a full queue and waits for it."""
    ready: queue.Queue[tuple[T] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def run() -> None:
        try:
            read(lambda item: ready.put((item,)), stop)
            ready.put(None)
        except BaseException as exc:  # noqa: BLE001  # handed to the walk, which raises it
            ready.put(exc)

    reader = threading.Thread(target=run, name="dudao-verify-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item[0]
    finally:
        stop.set()
        while reader.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


def _count_after(conn: psycopg.Connection[Any], events: Composed, position: int) -> int:
    row = conn.execute(SQL("SELECT count(*) FROM {} WHERE notification_id > %s").format(events), (position,)).fetchone()
    return int(list(row.values())[0] if isinstance(row, dict) else row[0]) if row else 0


def _name_entities(conn: psycopg.Connection[Any], events: Composed, report: Report) -> None:
    """Name the aggregate (kind, id, version) each finding belongs to, from the stored event or its link."""
    from infra.audit.history import kind_of_topic

    named = []
    for f in report.findings:
        row = conn.execute(SQL("SELECT originator_id, originator_version FROM {} WHERE notification_id = %s")
                           .format(events), (f.position,)).fetchone()
        if row is None:
            row = conn.execute(f"SELECT originator_id, originator_version FROM {CHAIN_TABLE} WHERE notification_id = %s",
                               (f.position,)).fetchone()
        if row is None:
            named.append(f)
            continue
        oid, version = (row["originator_id"], row["originator_version"]) if isinstance(row, dict) else row
        first = conn.execute(SQL("SELECT topic FROM {} WHERE originator_id = %s ORDER BY originator_version LIMIT 1")
                             .format(events), (oid,)).fetchone()
        kind = None
        if first is not None:
            try:
                kind = kind_of_topic(first["topic"] if isinstance(first, dict) else first[0])
            except KeyError:
                kind = None
        named.append(Finding(f.position, f.what, f.detail, oid, int(version), kind))
    report.findings = named
