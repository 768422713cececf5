"""Fixtures shared by the integration tests: one real Tansu broker per module, a topic prefix per test, a broker of
its own for a test that stops or restarts it (it would pull the shared one from under the rest), and the problem
world (tests/support/problem_world.py) in this test's database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from pathlib import Path
from uuid import uuid4

import pytest

from infra.bootstrap import bootstrap
from infra.runtime.embedded import EmbeddedKafka, start_kafka
from tests.support.problem_world import World, build_world


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    broker = start_kafka(Path(tmp_path_factory.mktemp("kafka")))
    yield broker
    broker.stop()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker for this test alone, free to be stopped and restarted."""
    broker = start_kafka(tmp_path / "own-kafka")
    yield broker
    broker.stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, so tests sharing the broker never see each other's messages."""
    return f"t{uuid4().hex[:10]}"


@pytest.fixture
def world(database_url: str, clock: Any) -> Iterator[World]:
    """The problem world on this test's database and clock (a module defining its own `world` overrides it)."""
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()
