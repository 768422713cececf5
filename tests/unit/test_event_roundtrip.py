"""Every registered event survives the store's mapper unchanged, read straight from its JSON or through the upcasters
alike; old versions are upcast on read."""

from __future__ import annotations

import json
from typing import ClassVar
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain.kernel.base import DomainEvent, event_registry
from infra.bootstrap import load_handlers
from infra.store.event_store import DudaoMapper, JSONBytes, StoredDomainEvent, decode_event, decode_stored
from tests.support.samples import sample_model

pytestmark = pytest.mark.unit

load_handlers()
EVENTS = sorted(event_registry().items())


def test_every_aggregate_kind_has_registered_events() -> None:
    """The registry is populated by the command modules (a missing import would make this list short)."""
    kinds = {cls.kind for _, cls in EVENTS}
    assert {"campaign", "unit", "place", "person", "responsibility"} <= kinds


@pytest.mark.parametrize(("name", "cls"), EVENTS, ids=[n for n, _ in EVENTS])
def test_event_round_trips_through_the_mapper(name: str, cls: type[DomainEvent]) -> None:
    """Encoding an event for storage and decoding it gives an equal event of the same type and name."""
    event = sample_model(cls)
    mapper = DudaoMapper(transcoder=JSONBytes())
    stored = mapper.to_stored_event(StoredDomainEvent(UUID(int=7), 3, event))
    assert stored.topic == name
    back = mapper.to_domain_event(stored)
    assert back.event == event and type(back.event) is cls
    assert (back.originator_id, back.originator_version) == (UUID(int=7), 3)


@pytest.mark.parametrize(("name", "cls"), EVENTS, ids=[n for n, _ in EVENTS])
def test_a_stored_row_read_straight_from_its_json_is_the_event_the_upcasting_path_reads(
        name: str, cls: type[DomainEvent]) -> None:
    """With nothing to upcast the mapper hands the stored bytes to pydantic; that gives the same event as parsing them
    to a dict and going through `decode_event`, and a row that names class version 1 still reads (by that path)."""
    event = sample_model(cls)
    state = DudaoMapper(transcoder=JSONBytes()).to_stored_event(StoredDomainEvent(UUID(int=7), 3, event)).state
    assert decode_stored(name, state, JSONBytes()) == decode_event(name, json.loads(state)) == event
    if cls.class_version == 1:
        named = JSONBytes().encode(json.loads(state) | {"class_version": 1})
        assert decode_stored(name, named, JSONBytes()) == event


class Inspected(DomainEvent):
    """Test-only event, version 2: a v1 payload had `finding` (one string) instead of `findings`."""

    kind = "test_upcast"
    id_field = "item_id"
    class_version: ClassVar[int] = 2
    item_id: UUID
    findings: tuple[str, ...]

    @staticmethod
    def upcast_v1_v2(data: dict) -> None:
        data["findings"] = [data.pop("finding")]


def test_a_version_1_payload_is_upcast_to_the_current_class() -> None:
    """A stored v1 event (no class_version) is read back as v2 by the declared upcaster; v2 is stored with its version."""
    sample = sample_model(Inspected)
    v1 = sample.model_dump(mode="json", exclude={"findings"}) | {"finding": "垃圾乱倒"}
    upcast = decode_event(Inspected.event_name, dict(v1))
    assert isinstance(upcast, Inspected) and upcast.findings == ("垃圾乱倒",)
    mapper = DudaoMapper(transcoder=JSONBytes())
    stored = mapper.to_stored_event(StoredDomainEvent(UUID(int=1), 1, sample))
    assert b'"class_version":2' in stored.state
    legacy = StoredEvent(UUID(int=1), 1, Inspected.event_name, JSONBytes().encode(v1))
    read = mapper.to_domain_event(legacy).event
    assert isinstance(read, Inspected) and read.findings == ("垃圾乱倒",)
