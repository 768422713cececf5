"""The relay's Kafka record is built by a faster path than `to_cloudevent` (pydantic's encoder for the attributes and
the data); it must still be the very bytes `encode(to_cloudevent(...))` gives, whatever a client put in its ids."""

from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import uuid4

import pytest

from domain.kernel.base import Actor, Meta
from domain.structure.campaign import CampaignStarted
from infra.store.event_store import StoredDomainEvent
from infra.streams.cloudevents import encode, to_cloudevent, to_kafka_record

pytestmark = pytest.mark.unit

NOW = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)
AWKWARD = ['plain-1', 'quote " backslash \\ slash /', "line\nbreak\ttab\x00nul\x1funit\x7fdel", "sep\u2028\u2029",
           "高安市“三城同创”😀", ""]


@pytest.mark.parametrize("command_id", AWKWARD)
def test_the_record_value_is_the_envelope_json_byte_for_byte(command_id: str) -> None:
    """Quotes, backslashes, control characters, line separators, CJK and emoji in a client's command id (and in the
    event) come out exactly as `encode(to_cloudevent(...))` writes them, and the key is the aggregate id."""
    cid = uuid4()
    meta = Meta(actor=Actor(person_id=uuid4(), role="hq_office"), occurred_at=NOW, recorded_at=NOW,
                correlation_id=uuid4(), causation_id=None, command_id=command_id, campaign_id=cid)
    stored = StoredDomainEvent(cid, 3, CampaignStarted(meta=meta, campaign_id=cid, name=f"活动 {command_id}",
                                                       jurisdiction="高安市", launched_on=date(2021, 12, 3)))
    record = to_kafka_record(stored, 77)
    assert record.value == encode(to_cloudevent(stored, 77))
    assert record.key == str(cid).encode()
