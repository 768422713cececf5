"""The hash chain against real PostgreSQL and a real broker: an untouched store verifies intact; 200 random
single-byte changes, deletions, reorderings and insertions are each found at exactly their first position, at the
edges of the walk's batches too, and so is a link left behind by a re-chain that skipped its deleted event (intact
history is proven in one quick pass; anything else goes through the careful merge); a table whose chain was recomputed
to hide a change is caught by a digest published to Kafka; digests signed before a key rotation check with the
retired key."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg.sql import SQL

from domain.structure.campaign import RenameCampaign, StartCampaign
from infra.audit import chain, digests, verify as vf
from infra.audit.history import events_table
from infra.audit.process import ChainProcess
from infra.bootstrap import System, bootstrap
from infra.clock import SimulatedClock
from infra.runtime.embedded import EmbeddedKafka
from tests.support.escalation_kit import at
from tests.support.problem_world import ADMIN

pytestmark = pytest.mark.integration
KEY = digests.SigningKey("test", b"s" * 32)


@pytest.fixture
def system(database_url: str) -> Iterator[System]:
    s = bootstrap(database_url, clock=SimulatedClock(at("2021-12-01")))
    yield s
    s.close()


def fill(system: System, n: int, gaps_every: int = 40) -> None:
    """`n` events, with holes in the notification ids now and then (as rolled-back writes leave them)."""
    cid = uuid4()
    system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=cid, name="高安", jurisdiction="高安市",
                                        launched_on=at("2021-12-01").date()), ADMIN)
    seq = f"{system.app.store.events_table_name}_notification_id_seq"
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        for i in range(n - 1):
            if i % gaps_every == gaps_every - 1:
                conn.execute("SELECT nextval(%s), nextval(%s)", (seq, seq))  # two ids no event will ever take
            system.service.handle(RenameCampaign(command_id=str(uuid4()), campaign_id=cid, name=f"高安{i}"), ADMIN)


def chained(system: System, kafka: EmbeddedKafka | None = None, topic: str = "t.digests") -> ChainProcess:
    process = ChainProcess(system.database_url, events_table(system.app), KEY, system.clock,
                           bootstrap=kafka.bootstrap if kafka else None, topic=topic)
    process.round(force_digest=True)
    return process


def check(conn: psycopg.Connection[Any], system: System, **kwargs: Any) -> vf.Report:
    return vf.verify(conn, events_table(system.app), key=KEY, **kwargs)


def test_an_untouched_store_verifies_intact_to_its_head_with_its_digest(system: System) -> None:
    """Every event chained, every link and the signed digest agree: intact to the last position."""
    fill(system, 120)
    chained(system)
    with psycopg.connect(system.database_url) as conn:
        report = check(conn, system)
    head = system.app.recorder.max_notification_id()
    assert report.intact and report.checked_to == head and report.events == 120 and report.digests_checked == 1


def ids(conn: psycopg.Connection[Any], table: SQL | Any) -> list[int]:
    return [r[0] for r in conn.execute(SQL("SELECT notification_id FROM {} ORDER BY 1").format(table)).fetchall()]


def tamper(conn: psycopg.Connection[Any], table: Any, rng: random.Random, present: list[int], gaps: list[int],
           how: str | None = None, k: int | None = None) -> int:
    """One random change to the events table (of kind `how` at `k`, when given); returns the first position it affects."""
    how = how or rng.choice(("byte", "delete", "reorder", "insert"))
    k = rng.choice(present) if k is None else k
    if how == "byte":
        length = conn.execute(SQL("SELECT length(state) FROM {} WHERE notification_id = %s").format(table), (k,)).fetchone()
        assert length is not None
        at_byte = rng.randrange(1, length[0] + 1)
        conn.execute(SQL("UPDATE {} SET state = overlay(state placing set_byte('\\x00'::bytea, 0, "
                         "(get_byte(state, %s - 1) + 1 + %s) %% 256) from %s for 1) WHERE notification_id = %s")
                     .format(table), (at_byte, rng.randrange(255), at_byte, k))
        return k
    if how == "delete":
        conn.execute(SQL("DELETE FROM {} WHERE notification_id = %s").format(table), (k,))
        return k
    if how == "reorder":
        j = rng.choice([p for p in present if p != k])
        lo, hi = sorted((k, j))
        conn.execute(SQL("UPDATE {} SET notification_id = -1 WHERE notification_id = %s").format(table), (lo,))
        conn.execute(SQL("UPDATE {} SET notification_id = %s WHERE notification_id = %s").format(table), (lo, hi))
        conn.execute(SQL("UPDATE {} SET notification_id = %s WHERE notification_id = -1").format(table), (hi,))
        return lo
    g = rng.choice(gaps)  # an event slipped into a hole of the log, copied from a real one
    conn.execute(SQL("INSERT INTO {} (originator_id, originator_version, topic, state, notification_id)"
                     " SELECT gen_random_uuid(), 1, topic, state, %s FROM {} WHERE notification_id = %s")
                 .format(table, table), (g, k))
    return g


def test_200_random_changes_deletions_reorderings_and_insertions_are_each_found_at_their_first_position(
        system: System) -> None:
    """Each tampering, applied alone and rolled back after, is reported at exactly the first position it affects."""
    fill(system, 300)
    chained(system)
    table = events_table(system.app)
    rng = random.Random(20211203)
    found = 0
    with psycopg.connect(system.database_url) as conn:
        present = ids(conn, table)
        gaps = sorted(set(range(1, present[-1])) - set(present))
        conn.rollback()
        assert gaps, "the store should have holes to insert into"
        for _ in range(200):
            expected = tamper(conn, table, rng, present, gaps)
            report = check(conn, system)
            conn.rollback()
            assert report.first is not None and report.first.position == expected, (expected, report.findings[:3])
            found += 1
    assert found == 200


def test_changes_at_the_edges_of_the_walks_batches_are_each_found_at_their_first_position(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """With batches of five events, every kind of change to the first or last event of a batch, to the last event,
    and an event deleted with its link there (the stretch between two batches, and after the last event) is reported
    at exactly the first position it affects."""
    fill(system, 60, gaps_every=7)
    chained(system)
    monkeypatch.setattr(vf, "FETCH", 5)
    table = events_table(system.app)
    rng = random.Random(11)
    with psycopg.connect(system.database_url) as conn:
        present = ids(conn, table)
        gaps = sorted(set(range(1, present[-1])) - set(present))
        conn.rollback()
        edges = sorted({present[0], present[-1]} | {p for i, p in enumerate(present) if i % vf.FETCH in (0, vf.FETCH - 1)})
        cases = [(how, k) for how in ("byte", "delete", "reorder") for k in edges] + [("insert", g) for g in gaps]
        for how, k in cases:
            if how == "insert":  # a copy of some event slipped into the hole at k
                expected = tamper(conn, table, rng, present, [k], how)
            else:
                expected = tamper(conn, table, rng, present, gaps, how, k)
            report = check(conn, system)
            conn.rollback()
            assert report.first is not None and report.first.position == expected, (how, k, report.findings[:3])
        gone = [([present[vf.FETCH]], [present[vf.FETCH]], present[vf.FETCH]),  # event and link, a batch's first
                (present[-2:], [], present[-2]),  # the last two events, their links left after the last event
                (present[-1:], present[-1:], present[-1])]  # the last event and its link: the head names it
        for events_gone, links_gone, expected in gone:
            conn.execute(SQL("DELETE FROM {} WHERE notification_id = ANY(%s)").format(table), (events_gone,))
            conn.execute(f"DELETE FROM {chain.CHAIN_TABLE} WHERE notification_id = ANY(%s)", (links_gone,))
            report = check(conn, system)
            conn.rollback()
            assert report.first is not None and report.first.position == expected, (events_gone, report.findings[:3])
    assert len(cases) > 4 * 20


def test_an_intact_store_is_proven_in_one_pass_without_the_careful_merge(system: System,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Untouched history is proven by the quick pass alone, in batches: the careful merge is never needed for it."""
    fill(system, 50)
    chained(system)
    monkeypatch.setattr(vf, "FETCH", 7)

    def careful(*_args: Any) -> None:
        raise AssertionError("the careful merge ran over intact history")

    monkeypatch.setattr(vf, "_walk", careful)
    with psycopg.connect(system.database_url) as conn:
        report = check(conn, system)
    assert report.intact and report.events == report.links == 50 and report.digests_checked == 1


def test_a_link_left_behind_by_a_rechain_that_skipped_its_deleted_event_is_found_at_its_position(
        system: System) -> None:
    """An event deleted and the links after it recomputed to skip it, its own link left in place: every event then has
    a link that follows the one before, but the range holds one link more than events — reported at that link."""
    fill(system, 40)
    chained(system)
    table = events_table(system.app)
    with psycopg.connect(system.database_url) as conn:
        present = ids(conn, table)
        k = present[20]
        conn.execute(SQL("DELETE FROM {} WHERE notification_id = %s").format(table), (k,))
        prev_id, prev_hash = conn.execute(f"SELECT notification_id, hash FROM {chain.CHAIN_TABLE}"
                                          " WHERE notification_id = %s", (present[19],)).fetchone() or (0, b"")
        records = conn.execute(SQL("SELECT notification_id, " + chain.RECORD_SQL + " FROM {} WHERE notification_id > %s"
                                   " ORDER BY notification_id").format(table), (k,)).fetchall()
        for nid, record in records:  # the administrator's re-chain from the event after the deleted one
            link = chain.link_hash(bytes(prev_hash), prev_id, bytes(record))
            conn.execute(f"UPDATE {chain.CHAIN_TABLE} SET prev_id = %s, hash = %s WHERE notification_id = %s",
                         (prev_id, link, nid))
            prev_id, prev_hash = nid, link
        conn.execute(f"UPDATE {chain.POSITION_TABLE} SET head_hash = %s", (prev_hash,))
        report = check(conn, system)
        conn.rollback()
    assert report.first is not None and report.first.position == k and report.first.what == "deleted", report.findings


def test_a_rechained_table_is_caught_by_the_digest_published_to_kafka(system: System, kafka: EmbeddedKafka,
                                                                      prefix: str) -> None:
    """Change an event, rebuild the chain and the digest table to match: the digest Kafka holds still disagrees."""
    fill(system, 80)
    topic = digests.topic_name(prefix)
    chained(system, kafka, topic)
    clock = system.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance(timedelta(minutes=5))
    published = digests.read_topic(kafka.bootstrap, topic)
    assert [d.position for d in published] == [system.app.recorder.max_notification_id()]
    table = events_table(system.app)
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute(SQL("UPDATE {} SET state = convert_to(replace(convert_from(state, 'UTF8'), '高安', '高案'), 'UTF8')"
                         " WHERE notification_id = 10").format(table))
        conn.execute(f"TRUNCATE {chain.CHAIN_TABLE}, {digests.TABLE}")
        conn.execute(f"UPDATE {chain.POSITION_TABLE} SET position = 0, head_hash = %s", (chain.GENESIS,))
    chained(system)  # the administrator recomputes the chain and signs a fresh digest (holding the key)
    with psycopg.connect(system.database_url) as conn:
        alone = check(conn, system)
        with_kafka = check(conn, system, extra_digests=published)
    assert alone.intact
    assert with_kafka.first is not None and with_kafka.first.what == "digest_mismatch"
    assert with_kafka.first.position == published[0].position


def test_after_a_key_rotation_old_digests_check_with_the_retired_key_and_are_reported_without_it(system: System) -> None:
    """Digests signed under k-old, then under k-new after a rotation: a verifier holding both (the old one retired)
    finds history intact; one holding only the new key reports the old digest, naming the key it lacks."""
    old, new = digests.SigningKey("k-old", b"o" * 32), digests.SigningKey("k-new", b"n" * 32)
    fill(system, 40)
    ChainProcess(system.database_url, events_table(system.app), old, system.clock).round(force_digest=True)
    first = system.app.recorder.max_notification_id()
    fill(system, 20)
    ChainProcess(system.database_url, events_table(system.app), new, system.clock).round(force_digest=True)
    retired = digests.retired_keys(f"k-old:{(b'o' * 32).hex()}")  # as DUDAO_AUDIT_RETIRED_KEYS gives it
    with psycopg.connect(system.database_url) as conn:
        both = vf.verify(conn, events_table(system.app), key=digests.Keyring(new, retired))
        only_new = vf.verify(conn, events_table(system.app), key=new)
    assert both.intact and both.digests_checked == 2
    assert only_new.first is not None and only_new.first.what == "digest_signature"
    assert only_new.first.position == first and "k-old" in only_new.first.detail


def test_a_verification_stopped_by_its_caller_frees_its_reader_and_connection(system: System,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The progress callback raises (as Ctrl-C would) while the reader thread is batches ahead: the error reaches the
    caller, the reader ends, and the connection answers the next query."""
    fill(system, 60)
    chained(system)
    monkeypatch.setattr(vf, "FETCH", 5)  # a dozen batches, more than the reader may hold ready

    class Stopped(Exception):
        pass

    def stop(_done: int, _total: int) -> None:
        raise Stopped

    with psycopg.connect(system.database_url) as conn:
        with pytest.raises(Stopped):
            check(conn, system, progress=stop)
        assert not [t for t in threading.enumerate() if t.name == "dudao-verify-reader"]
        assert conn.execute("SELECT 1").fetchone() == (1,)
