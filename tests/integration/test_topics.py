"""Stable topic layout against the real Tansu broker: every `<prefix>.<kind>` topic is made by us, with the
configured partition count, before any consumer starts; nothing that only reads (a consumer group member, the
lag probe, `dudao status`) ever creates a topic, and `dudao status --json` reports each topic's partitions.

Issue 12: some topics came out with 4 partitions instead of 3, differing per run, because a consumer that
subscribed first had the broker auto-create them with its own default.
"""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from consumers.base import KafkaOptions
from consumers.lag import end_offsets
from infra.runtime.embedded import EmbeddedKafka
from infra.streams.broker import create_event_topics, event_topics, topic_partitions
from infra.streams.status import status

pytestmark = pytest.mark.integration


def test_every_event_topic_is_created_with_the_configured_partition_count(kafka: EmbeddedKafka, prefix: str) -> None:
    """create_event_topics makes one topic per aggregate kind, each with exactly the partitions asked for."""
    made = create_event_topics(kafka.bootstrap, prefix, 5)
    assert made == event_topics(prefix) and f"{prefix}.problem" in made and f"{prefix}.visit" in made
    assert topic_partitions(kafka.bootstrap, prefix, 10.0) == {t: 5 for t in made}


def test_an_existing_topic_keeps_its_partition_count(kafka: EmbeddedKafka, prefix: str) -> None:
    """Creating again with another count changes nothing: a topic's partitioning never moves under its keys."""
    create_event_topics(kafka.bootstrap, prefix, 3)
    create_event_topics(kafka.bootstrap, prefix, 7)
    assert set(topic_partitions(kafka.bootstrap, prefix, 10.0).values()) == {3}


def test_a_consumer_subscribed_before_the_topics_exist_creates_none(database_url: str, kafka: EmbeddedKafka,
                                                                     prefix: str) -> None:
    """A group member polling topics that do not exist yet, the lag probe and `status` leave the broker without them."""
    consumer = KafkaOptions(kafka.bootstrap, metadata_max_age_ms=200).consumer(f"{prefix}-group")
    try:
        consumer.subscribe(event_topics(prefix))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # several metadata refreshes (every 200 ms) asking for the topics
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close()
    assert end_offsets(kafka.bootstrap, event_topics(prefix)) == {}
    assert status(database_url, kafka.bootstrap, prefix=prefix)["topics"] == {}
    assert topic_partitions(kafka.bootstrap, prefix, 10.0) == {}


def test_dudao_status_json_reports_each_topics_partition_count(database_url: str, kafka: EmbeddedKafka,
                                                                prefix: str) -> None:
    """After `dudao migrate` made the topics (3 partitions as configured), `dudao status --json` lists each with 3."""
    from infra.cli.main import app

    env = {"DUDAO_DATABASE_URL": database_url, "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap, "DUDAO_TOPIC_PREFIX": prefix,
           "DUDAO_KAFKA_PARTITIONS": "3"}
    migrated = CliRunner().invoke(app, ["migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert "topics (3 partitions each)" in migrated.output
    result = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["topics"] == {t: {"partitions": 3} for t in event_topics(prefix)}
    assert "kafka_error" not in report
