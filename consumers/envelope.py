"""Reads the relay's CloudEvents 1.0 envelopes (structured JSON) back into deliveries.

A `Delivery` keeps the envelope's raw `data` so adapters can read fields of event types this
process does not know (e.g. a newer producer's); `event` turns the payload back into the domain
event through the registry, upcasting an older payload (its class version is the `:vN` ending
of the envelope's `dataschema` URN) the same way the event store does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

from domain.kernel.base import DomainEvent, event_class
from projections.base import RecordedEvent

SPEC_VERSION = "1.0"


class BadEnvelope(ValueError):
    """The message is not a CloudEvents envelope as the relay writes it."""


@dataclass(frozen=True)
class Delivery:
    """One event as delivered on a topic: its id, type, log position, aggregate, version and payload."""

    event_id: str
    type: str
    notification_id: int
    originator_id: UUID
    version: int
    data: Mapping[str, Any]
    class_version: int = 1
    correlation_id: str | None = None

    @cached_property
    def event(self) -> DomainEvent:
        """The domain event (KeyError when this process does not know the type)."""
        return decode_event(self.type, dict(self.data), self.class_version)

    def recorded(self) -> RecordedEvent:
        """The delivery as the projections' handlers expect it."""
        return RecordedEvent(self.notification_id, self.originator_id, self.version, self.event)


def decode_event(name: str, data: dict[str, Any], class_version: int = 1) -> DomainEvent:
    """Validate a payload of `class_version` into its event class, upcasting step by step.

    Mirrors `infra.store.event_store.decode_event` (consumers may not import infra); `data` is consumed.
    """
    cls = event_class(name)
    version = data.pop("class_version", class_version)
    while version < cls.class_version:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
        version += 1
    return cls.model_validate(data)


def decode(value: bytes | str) -> Delivery:
    """Parse one message value; raises BadEnvelope when it is not a relay envelope."""
    try:
        envelope = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEnvelope(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict) or envelope.get("specversion") != SPEC_VERSION:
        raise BadEnvelope("not a CloudEvents 1.0 structured envelope")
    try:
        return _delivery(envelope)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEnvelope(f"incomplete envelope: {exc!r}") from exc


def schema_version(dataschema: Any) -> int:
    """The payload's class version, from the `dataschema` URN (`urn:dudao:schema:<type>:v2` → 2)."""
    if not isinstance(dataschema, str) or ":v" not in dataschema:
        return 1
    return int(dataschema.rsplit(":v", 1)[1])


def _delivery(envelope: dict[str, Any]) -> Delivery:
    event_id = str(envelope["id"])
    originator, _, version = event_id.rpartition(":")
    data = envelope["data"]
    if not isinstance(data, dict):
        raise TypeError("data is not an object")
    return Delivery(
        event_id=event_id,
        type=str(envelope["type"]),
        notification_id=int(envelope["dudaonotificationid"]),
        originator_id=UUID(str(envelope.get("subject") or originator)),
        version=int(envelope.get("dudaoversion", version)),
        data=data,
        class_version=schema_version(envelope.get("dataschema")),
        correlation_id=envelope.get("dudaocorrelationid"),
    )
