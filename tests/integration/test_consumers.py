"""The consumer base and its downstream adapters against the real PostgreSQL and the Tansu broker:
effects exactly once across duplicates, zombies and a crash between the two commits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from psycopg.rows import dict_row

from consumers.base import KafkaOptions, TrackedConsumer
from consumers.envelope import decode
from consumers.lag import consumer_lag
from consumers.notice_gateway import NoticeGateway
from consumers.szcg_export import SzcgExport, case_no
from domain.escalation import notice as no
from domain import problem as pr
from domain.kernel.base import Actor, DomainEvent, Meta
from domain.policy.campaign import TimeLimit
from domain.kernel.taxonomy import Severity
from infra.bootstrap import bootstrap
from infra.streams.cloudevents import to_kafka_record
from infra.runtime.embedded import EmbeddedKafka
from infra.store.event_store import StoredDomainEvent
from tests.support.waiting import wait_until
from tests.support.problem_world import build_world, photo

pytestmark = pytest.mark.integration

T0 = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)
DEADLINE_S = 30.0




def options(kafka: EmbeddedKafka) -> KafkaOptions:
    return KafkaOptions(kafka.bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=500, poll_timeout_ms=100,
                        max_poll_interval_ms=15000, metadata_max_age_ms=1000)


def create_topic(kafka: EmbeddedKafka, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def publish(kafka: EmbeddedKafka, messages: list[tuple[str, bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    for topic, key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


@contextmanager
def running(consumer: TrackedConsumer) -> Iterator[list[BaseException]]:
    """Run a member in a thread; yields the list its crash (if any) lands in; stops it on exit."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # noqa: BLE001 - the test inspects the crash
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        consumer.stop()
        thread.join(20)


def rows(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


# --- the notice gateway (通知网关) ------------------------------------------------------------------


def notice(notice_id: UUID, recipients: list[dict[str, Any]], n: int, *, event_type: str = "dudao.notice.NoticeIssued",
           channels: list[str] | None = None, version: int = 1) -> bytes:
    """A hand-made envelope of a notice event, shaped as the relay writes them."""
    meta = {"actor": {"person_id": None, "role": "system", "name": None}, "occurred_at": T0.isoformat(),
            "recorded_at": T0.isoformat(), "correlation_id": str(uuid4()), "causation_id": None,
            "command_id": f"c{n}", "campaign_id": None}
    data = {"meta": meta, "notice_id": str(notice_id), "recipients": recipients, "text_zh": "请于3个工作日内完成整改",
            **({"channels": channels} if channels else {})}
    return json.dumps({"specversion": "1.0", "id": f"{notice_id}:{version}", "source": "urn:dudao",
                       "type": event_type, "time": T0.isoformat(), "subject": str(notice_id),
                       "datacontenttype": "application/json", "dudaonotificationid": n, "dudaoversion": version,
                       "data": data}, ensure_ascii=False).encode()


def party(name: str, **extra: Any) -> dict[str, Any]:
    return {"party_kind": "unit", "party_id": str(uuid4()), "name": name, **extra}


def outbound(database_url: str) -> list[dict[str, Any]]:
    return rows(database_url, "SELECT event_id, recipient_name, channel, text_zh, status FROM dudao_outbound_messages"
                              " ORDER BY event_id, recipient_name, channel")


def gateway(database_url: str, kafka: EmbeddedKafka, prefix: str, group: str | None = None,
            cls: type[NoticeGateway] = NoticeGateway) -> NoticeGateway:
    g = cls(database_url, options(kafka), group_id=group or f"{prefix}-notices", prefix=prefix)
    g.create_tables()
    return g


def test_notice_gateway_queues_one_pending_message_per_recipient_and_channel(database_url: str, kafka: EmbeddedKafka,
                                                                              prefix: str) -> None:
    """An issued notice becomes one pending message per recipient × channel; other notice events and junk queue nothing."""
    topic = f"{prefix}.notice"
    create_topic(kafka, topic, 3)
    a, b = uuid4(), uuid4()
    publish(kafka, [
        (topic, str(a).encode(), notice(a, [party("市城管局"), party("瑞州街道")], 1, channels=["sms", "wechat"])),
        (topic, str(b).encode(), notice(b, [party("筠阳社区", channel="wechat")], 2)),
        (topic, str(b).encode(), notice(b, [party("筠阳社区")], 3, event_type="dudao.notice.NoticeRead", version=2)),
        (topic, b"junk", b"not json"),
    ])
    g = gateway(database_url, kafka, prefix)
    with running(g):
        wait_until(lambda: g.stats["handled"] + g.stats["unwanted"] + g.stats["undecodable"] == 4, "four messages",
                   DEADLINE_S)
    assert sorted((r["recipient_name"], r["channel"], r["status"]) for r in outbound(database_url)) == sorted([
        ("市城管局", "sms", "pending"), ("市城管局", "wechat", "pending"),
        ("瑞州街道", "sms", "pending"), ("瑞州街道", "wechat", "pending"),
        ("筠阳社区", "wechat", "pending"),
    ])
    assert {r["text_zh"] for r in outbound(database_url)} == {"请于3个工作日内完成整改"}


def test_a_notice_delivered_twice_queues_its_messages_once(database_url: str, kafka: EmbeddedKafka, prefix: str) -> None:
    """The same event published twice (and again after a restart) is skipped as a duplicate; its offset still advances."""
    topic = f"{prefix}.notice"
    create_topic(kafka, topic, 1)
    a = uuid4()
    twice = notice(a, [party("市城管局")], 1, channels=["sms"])
    publish(kafka, [(topic, str(a).encode(), twice), (topic, str(a).encode(), twice)])
    first = gateway(database_url, kafka, prefix)
    with running(first):
        wait_until(lambda: first.stats["handled"] + first.stats["duplicates"] == 2, "both copies", DEADLINE_S)
    publish(kafka, [(topic, str(a).encode(), twice)])
    second = gateway(database_url, kafka, prefix)
    with running(second):
        wait_until(lambda: second.stats["duplicates"] == 1, "the third copy", DEADLINE_S)
    assert (first.stats["handled"], first.stats["duplicates"], second.stats["handled"]) == (1, 1, 0)
    assert len(outbound(database_url)) == 1
    assert rows(database_url, "SELECT next_offset FROM dudao_consumer_offsets WHERE topic = %s", topic) == [
        {"next_offset": 3}]


def test_a_notice_issued_through_the_service_reaches_the_outbound_table(database_url: str, kafka: EmbeddedKafka,
                                                                         prefix: str, clock: Any) -> None:
    """A real 交办单 to a unit and a person, relayed, becomes sms and wechat messages for each with its rendered text."""
    system = bootstrap(database_url, clock=clock)
    w = build_world(system)
    problem_id, notice_id = uuid4(), uuid4()
    w.send("supervisor", pr.ReportProblem, problem_id=problem_id, campaign_id=w.campaign_id, category="sanitation",
           place_id=w["s1"], description="路面有垃圾堆积", evidence=(photo("b"),), source="hotline")
    w.send("hq", no.IssueNotice, notice_id=notice_id, campaign_id=w.campaign_id, notice_kind="assignment",
           subject_kind="problem", subject_id=problem_id, text_zh="请速处理路面垃圾",
           recipients=(no.Party(party_kind="unit", party_id=w["unit_a"], name="城管局"),
                       no.Party(party_kind="person", party_id=w["officer_a"], name="officer_a")))
    log = [to_kafka_record(system.app.decode(n), n.id, prefix)
           for n in system.app.recorder.select_notifications(1, limit=10_000)]
    system.close()
    create_topic(kafka, f"{prefix}.notice", 1)
    publish(kafka, [(r.topic, r.key, r.value) for r in log if r.topic == f"{prefix}.notice"])
    g = gateway(database_url, kafka, prefix)
    with running(g):
        wait_until(lambda: g.stats["handled"] == 1, "the notice", DEADLINE_S)
    messages = rows(database_url, "SELECT notice_id, recipient_kind, recipient_name, channel, text_zh"
                                  " FROM dudao_outbound_messages ORDER BY recipient_kind, channel")
    assert [(m["recipient_kind"], m["recipient_name"], m["channel"]) for m in messages] == [
        ("person", "officer_a", "sms"), ("person", "officer_a", "wechat"), ("unit", "城管局", "sms"),
        ("unit", "城管局", "wechat")]
    assert {(m["notice_id"], m["text_zh"]) for m in messages} == {(str(notice_id), "请速处理路面垃圾")}


def test_aborted_transactions_are_never_applied_and_lag_reaches_zero_past_the_markers(
        database_url: str, kafka: EmbeddedKafka, prefix: str) -> None:
    """Reading read_committed skips an aborted transaction; the stored offset moves past the commit markers to the end."""
    topic, group = f"{prefix}.notice", f"{prefix}-notices"
    create_topic(kafka, topic, 1)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, transactional_id=f"{prefix}-tx")
    producer.init_transactions()
    for n, outcome in enumerate(("commit", "abort", "commit")):
        producer.begin_transaction()
        producer.send(topic, key=b"k", value=notice(uuid4(), [party(f"{outcome}{n}")], n + 1))
        producer.commit_transaction() if outcome == "commit" else producer.abort_transaction()
    producer.close()
    g = gateway(database_url, kafka, prefix, group)
    with running(g), psycopg.connect(database_url) as conn:
        wait_until(lambda: consumer_lag(conn, kafka.bootstrap).get(group, {}).get("lag") == 0, "lag zero",
                   DEADLINE_S)
        report = consumer_lag(conn, kafka.bootstrap)[group]
    assert sorted(r["recipient_name"] for r in outbound(database_url)) == ["commit0", "commit2"]
    assert report["partitions"][f"{topic}:0"]["next_offset"] == report["partitions"][f"{topic}:0"]["end_offset"] > 3


class Crash(Exception):
    """Stands for the process dying at that point."""


class CrashBeforeKafkaCommit(NoticeGateway):
    """Dies right after its database transaction committed, before telling Kafka its offsets."""

    def commit_hint(self, consumer: Any, offsets: Any, sync: bool = False) -> None:
        raise Crash("killed between the database commit and the Kafka commit")


def test_a_crash_between_the_database_commit_and_the_kafka_commit_applies_nothing_twice(
        database_url: str, kafka: EmbeddedKafka, prefix: str) -> None:
    """After dying between the two commits, the group's next member resumes at the stored offset, not Kafka's."""
    topic, group = f"{prefix}.notice", f"{prefix}-notices"
    create_topic(kafka, topic, 1)
    ids = [uuid4() for _ in range(5)]
    publish(kafka, [(topic, b"k", notice(i, [party(f"单位{n}")], n)) for n, i in enumerate(ids, 1)])
    doomed = gateway(database_url, kafka, prefix, group, cls=CrashBeforeKafkaCommit)
    with running(doomed) as errors:
        wait_until(lambda: bool(errors), "the crash", DEADLINE_S)
    assert isinstance(errors[0], Crash) and len(outbound(database_url)) == 5
    assert kafka_committed(kafka, group, TopicPartition(topic, 0)) is None  # Kafka never heard of the progress

    later = uuid4()
    publish(kafka, [(topic, b"k", notice(later, [party("单位6")], 6))])
    successor = gateway(database_url, kafka, prefix, group)
    with running(successor):
        wait_until(lambda: successor.stats["handled"] == 1, "the new notice", DEADLINE_S)
    assert (successor.stats["duplicates"], successor.stats["stale"]) == (0, 0)  # the old five were never re-read
    assert len(outbound(database_url)) == 6


def kafka_committed(kafka: EmbeddedKafka, group: str, tp: TopicPartition) -> int | None:
    probe = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return probe.committed(tp)
    finally:
        probe.close(autocommit=False)


def fake_records(tp: TopicPartition, values: list[bytes], first_offset: int = 0) -> dict[TopicPartition, list[Any]]:
    return {tp: [SimpleNamespace(offset=first_offset + i, value=v) for i, v in enumerate(values)]}


def test_a_zombie_batch_below_the_stored_offset_changes_nothing(database_url: str, kafka: EmbeddedKafka,
                                                                 prefix: str) -> None:
    """Records a stale member still holds after a rebalance are skipped by offset, even under new event ids."""
    tp = TopicPartition(f"{prefix}.notice", 0)
    member, zombie = gateway(database_url, kafka, prefix), gateway(database_url, kafka, prefix)
    assert member.process(fake_records(tp, [notice(uuid4(), [party("甲")], n) for n in (1, 2, 3)])) == {tp: 3}
    assert zombie.process(fake_records(tp, [notice(uuid4(), [party("乙")], n) for n in (1, 2, 3)])) == {tp: 3}
    assert zombie.process(fake_records(tp, [notice(uuid4(), [party("丙")], 4)], first_offset=3)) == {tp: 4}
    assert [r["recipient_name"] for r in outbound(database_url)].count("乙") == 0
    assert (zombie.stats["stale"], zombie.stats["handled"], len(outbound(database_url))) == (3, 1, 4)
    member.close_connection()
    zombie.close_connection()


class StubConsumer:
    """Stands in for KafkaConsumer where only assignment, seeks and commits matter."""

    def __init__(self, *tps: TopicPartition) -> None:
        self.tps = set(tps)
        self.seeks: list[tuple[int, int]] = []
        self.commits: list[dict[int, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.tps

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))

    def commit_async(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append({tp.partition: m.offset for tp, m in offsets.items()})


def test_a_database_failure_mid_batch_rewinds_the_batch_and_commits_nothing(database_url: str, kafka: EmbeddedKafka,
                                                                            prefix: str, pg_server_url: str) -> None:
    """The connection dies under a batch: nothing is stored, the consumer seeks back to the batch's start, the retry applies it."""
    tp = TopicPartition(f"{prefix}.notice", 0)
    g, consumer = gateway(database_url, kafka, prefix), StubConsumer(tp)
    g.stop()  # a stopped member does not pause before the retry
    batch = fake_records(tp, [notice(uuid4(), [party("甲")], 1), notice(uuid4(), [party("乙")], 2)], first_offset=7)
    pid = g.connection().info.backend_pid
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    g.run_batch(consumer, batch)
    assert (consumer.seeks, consumer.commits, outbound(database_url)) == ([(0, 7)], [], [])
    g.run_batch(consumer, batch)
    assert consumer.commits == [{0: 9}] and len(outbound(database_url)) == 2
    g.close_connection()


# --- the 数字城管 export ----------------------------------------------------------------------------


def problem_life(problem_id: UUID, place_id: UUID, unit_id: UUID) -> list[DomainEvent]:
    def meta(hours: int) -> Meta:
        at = T0 + timedelta(hours=hours)
        return Meta(actor=Actor(role="hq_office"), occurred_at=at, recorded_at=at, correlation_id=uuid4(),
                    command_id=str(uuid4()))

    deadline, extended = T0 + timedelta(days=3), T0 + timedelta(days=5)
    evidence = (pr.EvidenceRef(sha256="a" * 64, media_type="image/jpeg", size=1024),)
    return [
        pr.ProblemReported(meta=meta(0), problem_id=problem_id, campaign_id=uuid4(), category="street_litter",
                           severity=Severity.NORMAL, place_id=place_id, description="背街小巷垃圾堆放", source="visit"),
        pr.ProblemAssigned(meta=meta(1), problem_id=problem_id, unit_id=unit_id, routing="matrix", deadline=deadline,
                           limit=TimeLimit(amount=3), limit_hours=24.0, policy_effective_from=T0),
        pr.ProblemAcknowledged(meta=meta(2), problem_id=problem_id, unit_id=unit_id),
        pr.ExtensionApproved(meta=meta(3), problem_id=problem_id, working_days=2, previous_deadline=deadline,
                             new_deadline=extended, added_hours=16.0),
        pr.RectificationSubmitted(meta=meta(30), problem_id=problem_id, unit_id=unit_id, evidence=evidence),
        pr.RectificationVerified(meta=meta(40), problem_id=problem_id),
        pr.ProblemClosed(meta=meta(41), problem_id=problem_id),
    ]


def relay_messages(events: list[DomainEvent], prefix: str, first_notification: int) -> list[tuple[str, bytes, bytes]]:
    """The events as the relay publishes them (its own encoder)."""
    out = []
    for n, e in enumerate(events):
        rec = to_kafka_record(StoredDomainEvent(e.aggregate_id, n + 1, e), first_notification + n, prefix)
        out.append((rec.topic, rec.key, rec.value))
    return out


def test_szcg_export_follows_a_problem_from_report_to_closure(database_url: str, kafka: EmbeddedKafka,
                                                               prefix: str) -> None:
    """A problem's relayed events make one case row: its number, stage 结案, the extended deadline and its times."""
    create_topic(kafka, f"{prefix}.problem", 3)
    problem_id, place_id, unit_id = uuid4(), uuid4(), uuid4()
    life = problem_life(problem_id, place_id, unit_id)
    publish(kafka, relay_messages(life, prefix, first_notification=1_000_041))
    export = SzcgExport(database_url, options(kafka), group_id=f"{prefix}-szcg", prefix=prefix)
    export.create_tables()
    with running(export):
        wait_until(lambda: export.stats["handled"] == len(life), "the whole life", DEADLINE_S)
    [case] = rows(database_url, "SELECT * FROM szcg_cases")
    assert case["case_no"] == "DD20211214000041" == case_no(T0, 1_000_041)
    assert (case["problem_id"], case["place_id"], case["unit_id"]) == (problem_id, place_id, unit_id)
    assert (case["category"], case["state"], case["stage"], case["version"]) == ("street_litter", "closed", "结案", 7)
    assert (case["reported_at"], case["assigned_at"], case["closed_at"]) == (
        T0, T0 + timedelta(hours=1), T0 + timedelta(hours=41))
    assert case["deadline"] == T0 + timedelta(days=5)
    assert case["last_event_id"] == f"{problem_id}:7"


def test_szcg_export_ignores_an_older_version_than_it_holds(database_url: str, kafka: EmbeddedKafka,
                                                             prefix: str) -> None:
    """An event older than the row's version (e.g. replayed from another source) leaves the case as it is."""
    life = problem_life(uuid4(), uuid4(), uuid4())
    deliveries = [decode(value) for _, _, value in relay_messages(life, prefix, first_notification=1)]
    export = SzcgExport(database_url, options(kafka), prefix=prefix)
    export.create_tables()
    with psycopg.connect(database_url, row_factory=dict_row) as conn, conn.cursor() as curs:
        for d in deliveries[:4] + [deliveries[1]]:
            export.handle(curs, d)
        [case] = curs.execute("SELECT state, version, last_event_id FROM szcg_cases").fetchall()
    assert case == {"state": "acknowledged", "version": 4, "last_event_id": deliveries[3].event_id}
