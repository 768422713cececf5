"""Dead letters (死信) of the Kafka consumers against the real PostgreSQL and the Tansu broker: a record whose
effect fails is set aside instead of ending the member; the notice gateway goes on past it (policy `skip`),
the 数字城管 export waits before it (policy `wait`) until an operator retries or skips it with a reason."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar
from uuid import uuid4

import psycopg
import pytest
from kafka import KafkaProducer, TopicPartition
from psycopg.rows import dict_row
from structlog.testing import capture_logs
from typer.testing import CliRunner

from consumers.base import DeadLetterPolicy, TrackedConsumer
from consumers.envelope import Delivery
from consumers.notice_gateway import NoticeGateway
from consumers.szcg_export import SzcgExport
from infra.cli.main import app
from infra.runtime.embedded import EmbeddedKafka
from infra.streams.status import status
from projections import dead_letters as dl
from tests.integration.test_consumers import (
    create_topic, fake_records, gateway, notice, options, outbound, party, problem_life, publish, relay_messages,
    running,
)

pytestmark = pytest.mark.integration

DEADLINE_S = 45.0


def wait_until(condition: Callable[[], bool], what: str, crashes: list[BaseException]) -> None:
    """Wait for `condition`, failing at once if the member crashed meanwhile."""
    deadline = time.monotonic() + DEADLINE_S
    pause = threading.Event()
    while not condition():
        assert not crashes, f"the consumer crashed while waiting for {what}: {crashes[0]!r}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)


def letters(database_url: str, **filters: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        return dl.listing(conn, **filters)


def next_offsets(database_url: str, group: str) -> dict[int, int]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        found = conn.execute("SELECT partition, next_offset FROM dudao_consumer_offsets WHERE group_id = %s",
                             (group,)).fetchall()
    return {r["partition"]: r["next_offset"] for r in found}


def with_nul_description(value: bytes) -> bytes:
    """A relayed 问题上报 whose description ends in a NUL, as stored before the edge refused control characters."""
    envelope = json.loads(value)
    envelope["data"]["description"] += "\u0000"
    return json.dumps(envelope, ensure_ascii=False).encode()


def test_a_notice_that_cannot_be_queued_is_set_aside_and_the_gateway_goes_on(database_url: str, kafka: EmbeddedKafka,
                                                                               prefix: str) -> None:
    """A notice whose recipient name holds a NUL becomes one open dead letter with its topic, partition, offset and
    event id; the member keeps running and, its policy being `skip`, queues the next notice of the same partition."""
    topic = f"{prefix}.notice"
    create_topic(kafka, topic, 1)
    bad, good = uuid4(), uuid4()
    publish(kafka, [(topic, b"k", notice(bad, [party("筠阳\u0000社区")], 1, channels=["sms"])),
                    (topic, b"k", notice(good, [party("瑞州街道")], 2, channels=["sms"]))])
    g = gateway(database_url, kafka, prefix)
    with running(g) as crashes:
        wait_until(lambda: g.stats["handled"] == 1 and g.stats["dead_letters"] == 1, "the good notice", crashes)
    assert [(m["event_id"], m["recipient_name"]) for m in outbound(database_url)] == [(f"{good}:1", "瑞州街道")]
    assert next_offsets(database_url, g.group_id) == {0: 2}
    [letter] = letters(database_url, reader_kind="consumer")
    assert (letter["reader"], letter["topic"], letter["partition"], letter["position"], letter["event_id"],
            letter["event_type"], letter["error_class"], letter["state"]) == (
        g.group_id, topic, 0, 0, f"{bad}:1", "dudao.notice.NoticeIssued", "DataError", "open")
    assert g.retry_dead_letter(topic, 0, 0, reason="再试一次", by="张三") is False
    g.skip_dead_letter(topic, 0, 0, reason="接收单位名称含控制字符，已人工通知", by="张三")
    [closed] = letters(database_url, reader_kind="consumer")
    assert (closed["state"], closed["reason"], closed["resolved_by"], closed["attempts"]) == (
        "skipped", "接收单位名称含控制字符，已人工通知", "张三", 2)
    g.close_connection()


def test_the_szcg_export_waits_before_a_report_it_cannot_apply_and_goes_on_once_it_is_skipped(
        database_url: str, kafka: EmbeddedKafka, prefix: str) -> None:
    """The partition holding a poisoned 问题上报 waits before it (offset kept, later records of that partition not
    applied), the other partition reaches its end, and an operator's skip from another process moves it on."""
    topic = f"{prefix}.problem"
    create_topic(kafka, topic, 2)
    poisoned = relay_messages(problem_life(uuid4(), uuid4(), uuid4())[:2], prefix, first_notification=1)
    healthy = relay_messages(problem_life(uuid4(), uuid4(), uuid4()), prefix, first_notification=3)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    producer.send(topic, key=poisoned[0][1], value=with_nul_description(poisoned[0][2]), partition=0)
    producer.send(topic, key=poisoned[1][1], value=poisoned[1][2], partition=0)
    for _, key, value in healthy:
        producer.send(topic, key=key, value=value, partition=1)
    producer.flush()
    producer.close()
    group = f"{prefix}-szcg"
    export = SzcgExport(database_url, options(kafka), group_id=group, prefix=prefix)
    export.create_tables()
    with running(export) as crashes:
        wait_until(lambda: next_offsets(database_url, group).get(1) == len(healthy)
                   and bool(letters(database_url, reader=group)), "the healthy partition and one dead letter", crashes)
        assert next_offsets(database_url, group)[0] == 0
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM szcg_cases").fetchone() == (1,)
        operator = SzcgExport(database_url, options(kafka), group_id=group, prefix=prefix)
        with pytest.raises(dl.NotWaiting):
            operator.skip_dead_letter(topic, 0, 1, reason="误操作", by="李四")
        operator.skip_dead_letter(topic, 0, 0, reason="描述含控制字符，案卷已在平台手工立案", by="李四")
        operator.close_connection()
        wait_until(lambda: next_offsets(database_url, group).get(0) == 2, "the waiting partition moving on", crashes)
    [letter] = letters(database_url, reader=group)
    assert (letter["position"], letter["state"], letter["resolved_by"]) == (0, "skipped", "李四")
    assert export.stats["handled"] == len(healthy) + 1  # the poisoned problem's assignment found no case to update


class FussyGateway(NoticeGateway):
    """A notice gateway that waits before a dead letter and cannot queue notices to 坏 while it is `broken`
    (stands for a bug fixed by a release)."""

    dead_letter_policy: ClassVar[DeadLetterPolicy] = "wait"
    broken = True

    def handle(self, curs: psycopg.Cursor[Any], delivery: Delivery) -> None:
        names = [r.get("name") for r in delivery.data.get("recipients") or ()]
        if self.broken and "坏" in names:
            raise ValueError("cannot queue a notice to 坏")
        super().handle(curs, delivery)


def test_retrying_a_waiting_consumer_dead_letter_after_the_fix_applies_it_and_moves_the_partition_on(
        database_url: str, kafka: EmbeddedKafka, prefix: str) -> None:
    """Under `wait` a failing record keeps the partition's offset; `retry` fails while the cause remains (one more
    attempt), and after the fix applies the stored record, moves the offset past it and records who and why."""
    tp = TopicPartition(f"{prefix}.notice", 0)
    g = FussyGateway(database_url, options(kafka), group_id=f"{prefix}-notices", prefix=prefix)
    g.create_tables()
    bad, good = uuid4(), uuid4()
    batch = fake_records(tp, [notice(bad, [party("坏")], 1), notice(good, [party("好")], 2)])
    assert g.process(batch) == {tp: 0}
    assert (outbound(database_url), g.stats["dead_letters"]) == ([], 1)
    with pytest.raises(dl.NotWaiting):
        g.retry_dead_letter(tp.topic, 0, 1, reason="误操作", by="王五")
    assert g.retry_dead_letter(tp.topic, 0, 0, reason="修复后重试", by="王五") is False
    g.broken = False
    assert g.retry_dead_letter(tp.topic, 0, 0, reason="修复后重试", by="王五") is True
    assert next_offsets(database_url, g.group_id) == {0: 1}
    [letter] = letters(database_url)
    assert (letter["state"], letter["reason"], letter["resolved_by"], letter["attempts"]) == ("retried", "修复后重试",
                                                                                              "王五", 3)
    assert g.process(batch) == {tp: 2} and g.stats["stale"] == 1
    assert sorted(m["recipient_name"] for m in outbound(database_url)) == ["坏", "好"]
    g.close_connection()


def test_a_record_that_applies_on_the_automatic_retry_closes_its_dead_letter(database_url: str, kafka: EmbeddedKafka,
                                                                             prefix: str) -> None:
    """When the waiting partition's record applies on a later pass, its dead letter is closed as retried by the
    consumer; the new dead letter was logged as one `dead_letter` error line with where it is."""
    tp = TopicPartition(f"{prefix}.notice", 0)
    with capture_logs() as logged:
        g = FussyGateway(database_url, options(kafka), group_id=f"{prefix}-notices", prefix=prefix)
        g.create_tables()
        batch = fake_records(tp, [notice(uuid4(), [party("坏")], 1)])
        assert g.process(batch) == {tp: 0} and tp in g.waiting
        g.broken = False
        assert g.process(batch) == {tp: 1} and tp not in g.waiting
    assert [(e["event"], e["log_level"], e.get("topic"), e.get("offset")) for e in logged
            if "dead_letter" in e["event"]] == [("dead_letter", "error", tp.topic, 0),
                                               ("dead_letter_retried", "info", tp.topic, 0)]
    [letter] = letters(database_url)
    assert (letter["state"], letter["resolved_by"], letter["attempts"]) == ("retried", f"consumer {g.group_id}", 2)
    g.close_connection()


class Hiccup(NoticeGateway):
    """Loses its database connection in the middle of its first effect (an operational error)."""

    def handle(self, curs: psycopg.Cursor[Any], delivery: Delivery) -> None:
        if not self.stats["hiccups"]:
            self.stats["hiccups"] += 1
            with psycopg.connect(self.database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (curs.connection.info.backend_pid,))
        super().handle(curs, delivery)


def test_a_database_outage_under_an_effect_is_retried_and_never_dead_lettered(database_url: str, kafka: EmbeddedKafka,
                                                                               prefix: str) -> None:
    """A connection lost inside `handle` propagates as the operational error it is (the batch is read again), and
    leaves no dead letter; the next pass applies the record."""
    tp = TopicPartition(f"{prefix}.notice", 0)
    g: TrackedConsumer = gateway(database_url, kafka, prefix, cls=Hiccup)
    batch = fake_records(tp, [notice(uuid4(), [party("甲")], 1)])
    with pytest.raises(psycopg.OperationalError):
        g.process(batch)
    assert letters(database_url) == []
    g.close_connection()
    assert g.process(batch) == {tp: 1} and len(outbound(database_url)) == 1
    assert letters(database_url) == []
    g.close_connection()


def test_status_counts_a_consumer_dead_letter_and_the_cli_closes_it_with_a_reason(
        database_url: str, kafka: EmbeddedKafka, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` shows the group's open dead letter; `dudao consume skip notices TOPIC:PARTITION:OFFSET` records who and
    why, after which the group has none open."""
    tp = TopicPartition(f"{prefix}.notice", 0)
    g = gateway(database_url, kafka, prefix)
    assert g.process(fake_records(tp, [notice(uuid4(), [party("\u0000")], 1)])) == {tp: 1}
    g.close_connection()
    assert status(database_url, None)["dead_letters"]["consumer"][g.group_id]["open"] == 1
    monkeypatch.setenv("DUDAO_DATABASE_URL", database_url)
    out = CliRunner().invoke(app, ["consume", "skip", "notices", f"{tp.topic}:0:0", "--group", g.group_id,
                                   "--reason", "已人工通知", "--by", "孙七"])
    assert out.exit_code == 0, out.output
    assert status(database_url, None)["dead_letters"]["consumer"][g.group_id]["open"] == 0
    [letter] = letters(database_url)
    assert (letter["state"], letter["reason"], letter["resolved_by"]) == ("skipped", "已人工通知", "孙七")
