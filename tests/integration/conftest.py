"""Fixtures shared by the Kafka integration tests: one real Tansu broker per module, a topic prefix per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from infra.runtime.embedded import EmbeddedKafka, start_kafka


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    broker = start_kafka(Path(tmp_path_factory.mktemp("kafka")))
    yield broker
    broker.stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, so tests sharing the broker never see each other's messages."""
    return f"t{uuid4().hex[:10]}"
