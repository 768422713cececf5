"""The relay against the real PostgreSQL and the real broker: every event on its topic exactly once,
in per-aggregate order, in an envelope valid for the CloudEvents SDK and the published JSON Schema.

The tests share one broker per module (tests/integration/conftest.py); each publishes under a topic
prefix of its own, so none sees another's messages or consumer groups."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event
from jsonschema import Draft202012Validator
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from domain.kernel.base import Actor, DomainEvent, Meta
from domain.structure.campaign import CampaignRenamed, CampaignStarted
from domain.structure.person import PersonRegistered, PersonRenamed
from domain.structure.place import PlaceRegistered, PlaceRenamed
from domain.structure.unit import UnitRegistered, UnitRenamed
from infra.bootstrap import System, bootstrap
from infra.streams.cloudevents import from_cloudevent
from infra.runtime.embedded import EmbeddedKafka
from infra.streams.broker import scan_partitions
from infra.streams.relay import Relay
from infra.streams.contract import render
from infra.streams.status import metrics_text, status
from infra.store.event_store import StoredDomainEvent
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)
HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")
KINDS = ("campaign", "unit", "person", "place")


# ---------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def system(database_url: str, clock: Any) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock, pool_size=10)
    yield s
    s.close()


def meta(n: int, campaign_id: UUID) -> Meta:
    moment = T0 + timedelta(seconds=n)
    return Meta(actor=HQ, occurred_at=moment - timedelta(minutes=5), recorded_at=moment, correlation_id=uuid4(),
                causation_id=uuid4() if n % 3 == 0 else None, command_id=f"cmd-{n}",
                campaign_id=campaign_id if n % 4 else None)


def first_event(kind: str, aid: UUID, cid: UUID, m: Meta) -> DomainEvent:
    if kind == "campaign":
        return CampaignStarted(meta=m, campaign_id=aid, name="高安市“三城同创”", jurisdiction="江西省宜春市高安市",
                               launched_on=date(2021, 12, 3), goals=("全国文明城市",))
    if kind == "unit":
        return UnitRegistered(meta=m, unit_id=aid, campaign_id=cid, name="市城管局", unit_kind="department", parent_id=None)
    if kind == "person":
        return PersonRegistered(meta=m, person_id=aid, campaign_id=cid, name="张三", title="副局长")
    return PlaceRegistered(meta=m, place_id=aid, campaign_id=cid, name="瑞阳大道", place_kind="road", parent_id=None)


def next_event(kind: str, aid: UUID, version: int, m: Meta) -> DomainEvent:
    name, previous = f"名称{version}", f"名称{version - 1}"
    if kind == "campaign":
        return CampaignRenamed(meta=m, campaign_id=aid, name=name)
    if kind == "unit":
        return UnitRenamed(meta=m, unit_id=aid, name=name, previous_name=previous)
    if kind == "person":
        return PersonRenamed(meta=m, person_id=aid, name=name, previous_name=previous)
    return PlaceRenamed(meta=m, place_id=aid, name=name, previous_name=previous)


def mixed_events(count: int, aggregates: int = 400, seed: int = 7) -> list[StoredDomainEvent]:
    """`count` events of four kinds, interleaved at random over `aggregates` aggregates."""
    rng = random.Random(seed)
    cid = uuid4()
    pool = [(KINDS[i % len(KINDS)], uuid4()) for i in range(aggregates)]
    versions: dict[UUID, int] = defaultdict(int)
    out = []
    for n in range(count):
        kind, aid = rng.choice(pool)
        versions[aid] += 1
        v = versions[aid]
        m = meta(n, cid)
        out.append(StoredDomainEvent(aid, v, first_event(kind, aid, cid, m) if v == 1 else next_event(kind, aid, v, m)))
    return out


def write_events(system: System, events: list[StoredDomainEvent], chunk: int = 500) -> None:
    for i in range(0, len(events), chunk):
        system.app.save(*events[i:i + chunk])


def head(system: System) -> int:
    return system.app.recorder.max_notification_id() or 0


def stored_ids(system: System) -> dict[str, int]:
    """Event id → notification id of everything in the store."""
    found: dict[str, int] = {}
    position = 0
    while page := system.app.recorder.select_notifications(position + 1, limit=1000):
        for n in page:
            found[f"{n.originator_id}:{n.originator_version}"] = n.id
        position = page[-1].id
    return found


def make_relay(system: System, kafka: EmbeddedKafka, prefix: str, **kwargs: Any) -> Relay:
    return Relay(system.app, system.database_url, kafka.bootstrap, prefix, **kwargs)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    @property
    def envelope(self) -> dict[str, Any]:
        return json.loads(self.value)


def read_topics(bootstrap: str, prefix: str, timeout_s: float = 30.0) -> list[Message]:
    """Every message of every `<prefix>.*` topic, in offset order per partition (each offset once)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 << 20, fetch_max_wait_ms=50)
    try:
        tps = [TopicPartition(t, p) for t in consumer.topics() if t.startswith(f"{prefix}.")
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = {tp: end for tp, (end, _) in scan_partitions(consumer, tps, timeout_s).items()}
        consumer.seek_to_beginning(*tps)
        seen: dict[tuple[str, int, int], Message] = {}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, f"read {len(seen)} messages, then nothing more"
            for tp, records in consumer.poll(timeout_ms=200, max_records=10000).items():
                for r in records:
                    seen[(tp.topic, tp.partition, r.offset)] = Message(
                        tp.topic, tp.partition, r.offset, r.key, r.value, dict(r.headers))
        return [seen[k] for k in sorted(seen)]
    finally:
        consumer.close()


def assert_exactly_once(messages: list[Message], expected: dict[str, int]) -> None:
    """Each expected event id once (no more, no fewer) and per-partition order by notification id."""
    counts = Counter(m.headers["event_id"].decode() for m in messages)
    duplicates = {k: c for k, c in counts.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} events published more than once, e.g. {list(duplicates)[:3]}"
    missing = set(expected) - set(counts)
    assert not missing, f"{len(missing)} events missing, e.g. {sorted(missing)[:3]}"
    assert not set(counts) - set(expected), "unexpected events on the topics"
    assert_partition_order(messages)


def assert_partition_order(messages: list[Message]) -> None:
    by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
    for m in messages:
        by_partition[(m.topic, m.partition)].append(m)
    for found in by_partition.values():
        nids = [int(m.headers["notification_id"]) for m in found]
        assert nids == sorted(nids), "a partition is out of notification order"


# ---------------------------------------------------------------------------- contract validation


def contract_validators() -> dict[str, Draft202012Validator]:
    """Event type → validator of its whole envelope, from a fresh export of the contract."""
    base = "https://contract.dudao.invalid/"
    resources = []
    for name, text in render().items():
        document = json.loads(text)
        resource = DRAFT202012.create_resource(document)
        resources.append((base + name, resource))
        if "$id" in document:
            resources.append((document["$id"], resource))
    registry: Registry[Any] = Registry().with_resources(resources)
    schemas = json.loads(render()["asyncapi.json"])["components"]["schemas"]
    return {name: Draft202012Validator({"$ref": f"{base}asyncapi.json#/components/schemas/{name}"},
                                       registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
            for name in schemas if name.startswith("dudao.")}


# ---------------------------------------------------------------------------- tests


def test_ten_thousand_mixed_events_reach_their_topics_exactly_once_in_aggregate_order(
        system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """10,000 events of four kinds are each published once, on `<prefix>.<kind>`, keyed and ordered by aggregate."""
    events = mixed_events(10_000)
    write_events(system, events)
    make_relay(system, kafka, prefix).run_until()
    messages = read_topics(kafka.bootstrap, prefix)
    expected = stored_ids(system)
    assert len(expected) == 10_000
    assert_exactly_once(messages, expected)
    versions: dict[bytes, list[int]] = defaultdict(list)
    for m in messages:
        envelope = m.envelope
        assert m.topic == f"{prefix}.{envelope['type'].split('.')[1]}"
        assert m.key.decode() == envelope["subject"]
        assert envelope["dudaonotificationid"] == expected[envelope["id"]]
        versions[m.key].append(envelope["dudaoversion"])
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values()), "an aggregate's events are out of order"
    assert {m.topic for m in messages} == {f"{prefix}.{k}" for k in KINDS}


def test_every_envelope_is_a_valid_cloudevent_and_matches_the_published_schema(
        system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """Each message parses with the CloudEvents SDK (structured mode) and validates against the contract."""
    events = mixed_events(2_000, seed=11)
    write_events(system, events)
    make_relay(system, kafka, prefix).run_until()
    validators = contract_validators()
    originals = {e.event_id: e for e in events}
    for m in read_topics(kafka.bootstrap, prefix):
        event = from_kafka_event(KafkaMessage(headers=m.headers, key=m.key, value=m.value))
        envelope = m.envelope
        assert event.get_id() == envelope["id"] and event.get_type() == envelope["type"]
        assert event.get_data() == envelope["data"]
        errors = sorted(validators[envelope["type"]].iter_errors(envelope), key=str)
        assert not errors, f"{envelope['type']}: {errors[0].message}"
        _, aggregate_id, version, decoded = from_cloudevent(envelope)
        assert decoded == originals[f"{aggregate_id}:{version}"].event


def test_the_relay_publishes_new_events_as_they_are_written(system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """A running relay picks up events written after it started, within a fraction of a second."""
    import threading

    relay = make_relay(system, kafka, prefix, poll_seconds=0.05)
    worker = threading.Thread(target=relay.run_forever, daemon=True)
    worker.start()
    try:
        events = mixed_events(300, aggregates=30, seed=3)
        for i in range(0, 300, 50):
            write_events(system, events[i:i + 50])
        wait_until(lambda: relay_position(system) >= head(system), "the relay to catch up", 20)
    finally:
        relay.stop()
        worker.join(10)
    assert_exactly_once(read_topics(kafka.bootstrap, prefix), stored_ids(system))


def relay_position(system: System, name: str = "kafka") -> int:
    import psycopg

    with psycopg.connect(system.database_url) as conn:
        if conn.execute("SELECT to_regclass('dudao_relay_position')").fetchone() == (None,):
            return 0
        row = conn.execute("SELECT position FROM dudao_relay_position WHERE name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------- status and metrics


def test_status_reports_relay_lag_in_events_and_seconds_then_zero_once_caught_up(
        system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """Before the relay runs, the lag is every event and the age of the oldest; afterwards both are 0."""
    write_events(system, mixed_events(120, aggregates=12))
    now = T0 + timedelta(minutes=10)
    before = status(system.database_url, kafka.bootstrap, prefix=prefix, now=now)
    assert (before["log_head"], before["relay_position"], before["relay_lag_events"]) == (120, 0, 120)
    assert before["relay_lag_seconds"] == 600.0
    assert all(p == {"position": 0, "lag": 120} for p in before["projections"].values())
    make_relay(system, kafka, prefix).run_until()
    after = status(system.database_url, kafka.bootstrap, prefix=prefix, now=now)
    assert (after["relay_position"], after["relay_lag_events"], after["relay_lag_seconds"]) == (120, 0, 0.0)
    assert after["consumer_groups"] == {} and "kafka_error" not in after


def test_status_reports_a_consumer_groups_lag_per_partition(system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """A group that committed offset 1 on one partition lags by that partition's end offset minus 1."""
    write_events(system, mixed_events(200, aggregates=8))
    make_relay(system, kafka, prefix).run_until()
    sizes = Counter((m.topic, m.partition) for m in read_topics(kafka.bootstrap, prefix))
    (topic, partition), end = sizes.most_common(1)[0]
    tp = TopicPartition(topic, partition)
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=f"{prefix}-downstream", enable_auto_commit=False)
    consumer.assign([tp])
    consumer.commit({tp: OffsetAndMetadata(1, "", -1)})
    consumer.close()
    report = status(system.database_url, kafka.bootstrap, prefix=prefix)
    group = report["consumer_groups"][f"{prefix}-downstream"]
    assert group["lag"] == end - 1
    assert group["partitions"] == [{"topic": topic, "partition": partition, "committed": 1, "end": end, "lag": end - 1}]
    text = metrics_text(report)
    assert f'dudao_consumer_group_lag{{group="{prefix}-downstream",topic="{topic}",partition="{partition}"}} {end - 1}' in text
    assert "dudao_relay_lag_events 0" in text and "# TYPE dudao_log_head gauge" in text


def test_status_still_answers_when_kafka_is_unreachable(system: System) -> None:
    """With no broker, the database figures are reported and the Kafka error is named, not raised."""
    from infra.runtime.embedded import free_port

    write_events(system, mixed_events(5, aggregates=2))
    report = status(system.database_url, f"127.0.0.1:{free_port()}")
    assert report["log_head"] == 5 and report["consumer_groups"] == {} and report["kafka_error"]
    assert "dudao_kafka_up 0" in metrics_text(report)


def test_dudao_status_json_prints_the_head_the_relay_position_and_the_groups(system: System, kafka: EmbeddedKafka,
                                                                              prefix: str) -> None:
    """`dudao status --json` answers with log_head, relay_position and consumer_groups."""
    import typer
    from typer.testing import CliRunner

    from infra.cli.streams import register

    write_events(system, mixed_events(30, aggregates=5))
    make_relay(system, kafka, prefix).run_until()
    app = typer.Typer()
    register(app)
    env = {"DUDAO_DATABASE_URL": system.database_url, "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "DUDAO_TOPIC_PREFIX": prefix}
    result = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["log_head"], report["relay_position"], report["consumer_groups"]) == (30, 30, {})
