"""The envelope and the contract, in memory: CloudEvents attributes, round trip, and JSON Schema agreement."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from typing import Any
from uuid import uuid4

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from domain.kernel.base import Actor, Meta
from domain.structure.campaign import CampaignRenamed, CampaignStarted
from infra.streams.cloudevents import EXTENSIONS, from_cloudevent, to_cloudevent, to_kafka_record
from infra.streams.contract import asyncapi, registered_events, render
from infra.store.event_store import StoredDomainEvent

pytestmark = pytest.mark.unit

NOW = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)


def stored(causation: bool = True, campaign: bool = True, person: bool = True) -> StoredDomainEvent:
    cid = uuid4()
    meta = Meta(actor=Actor(person_id=uuid4() if person else None, role="hq_office"), occurred_at=NOW,
                recorded_at=NOW, correlation_id=uuid4(), causation_id=uuid4() if causation else None,
                command_id="c-1", campaign_id=cid if campaign else None)
    event = CampaignStarted(meta=meta, campaign_id=cid, name="高安市“三城同创”", jurisdiction="高安市",
                            launched_on=date(2021, 12, 3))
    return StoredDomainEvent(cid, 1, event)


def test_the_envelope_carries_the_cloudevents_attributes_and_every_extension() -> None:
    """id, source, type, time, subject, dataschema and all nine dudao extensions are present and well typed."""
    s = stored()
    envelope = to_cloudevent(s, 42)
    assert envelope["specversion"] == "1.0" and envelope["id"] == f"{s.originator_id}:1"
    assert envelope["type"] == "dudao.campaign.CampaignStarted" and envelope["source"] == "urn:dudao"
    assert envelope["time"] == "2021-12-14T01:00:00Z" and envelope["subject"] == str(s.originator_id)
    assert envelope["dataschema"] == "urn:dudao:schema:dudao.campaign.CampaignStarted:v1"
    assert envelope["dudaonotificationid"] == 42 and envelope["dudaoversion"] == 1
    assert set(EXTENSIONS) <= set(envelope)
    assert all(re.fullmatch("[a-z0-9]+", k) and isinstance(v, (str, int)) for k, v in envelope.items() if k != "data")
    assert envelope["data"] == s.event.model_dump(mode="json")


def test_absent_causation_campaign_and_actor_ids_are_omitted_not_null() -> None:
    """CloudEvents attributes may not be null, so missing optional ids leave the attribute out."""
    envelope = to_cloudevent(stored(causation=False, campaign=False, person=False), 1)
    assert not {"dudaocausationid", "dudaocampaignid", "dudaoactorid"} & set(envelope)


def test_an_envelope_decodes_back_to_the_same_event() -> None:
    """from_cloudevent returns the notification id, aggregate id, version and an equal event."""
    s = stored()
    assert from_cloudevent(json.loads(json.dumps(to_cloudevent(s, 7)))) == (7, s.originator_id, 1, s.event)


def test_the_kafka_record_is_read_as_a_structured_cloudevent_by_the_sdk() -> None:
    """The SDK's auto-detecting reader sees structured mode (no ce_ headers) and gets our attributes."""
    record = to_kafka_record(stored(), 9, prefix="city")
    assert record.topic == "city.campaign"
    assert not any(name.startswith("ce_") for name, _ in record.headers)
    event = from_kafka_event(KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value))
    assert event.get_type() == "dudao.campaign.CampaignStarted"
    assert event.get_extension("dudaonotificationid") == 9


def validator_for(event_name: str) -> Draft202012Validator:
    base = "https://contract.dudao.invalid/"
    resources = []
    for name, text in render().items():
        document = json.loads(text)
        resources += [(base + name, DRAFT202012.create_resource(document))]
        if "$id" in document:
            resources += [(document["$id"], DRAFT202012.create_resource(document))]
    registry: Registry[Any] = Registry().with_resources(resources)
    return Draft202012Validator({"$ref": f"{base}asyncapi.json#/components/schemas/{event_name}"}, registry=registry)


def test_an_envelope_validates_against_its_message_schema_and_a_wrong_one_does_not() -> None:
    """The generated schema accepts the real envelope and rejects a changed type or a broken payload."""
    envelope = to_cloudevent(stored(), 3)
    validator = validator_for("dudao.campaign.CampaignStarted")
    assert not list(validator.iter_errors(envelope))
    assert list(validator.iter_errors({**envelope, "type": "dudao.campaign.CampaignRenamed"}))
    broken = {**envelope, "data": {k: v for k, v in envelope["data"].items() if k != "name"}}
    assert list(validator.iter_errors(broken))
    assert list(validator_for("dudao.campaign.CampaignRenamed").iter_errors(envelope))


def test_every_registered_event_has_a_schema_file_a_message_and_a_channel() -> None:
    """The contract covers every event type: one schema file, one message, listed on its kind's channel."""
    events = registered_events()
    files = render()
    document = asyncapi(events)
    assert CampaignRenamed.event_name in events
    for name, cls in events.items():
        assert f"{name}.schema.json" in files
        assert name in document["components"]["messages"]
        assert document["channels"][cls.kind]["address"] == f"dudao.{cls.kind}"
        assert cls.__name__ in document["channels"][cls.kind]["messages"]
    assert document["asyncapi"] == "3.0.0"


def test_rendering_the_contract_twice_gives_identical_bytes() -> None:
    """Export is deterministic, so the checked-in contract only changes when the code does."""
    assert render() == render()
