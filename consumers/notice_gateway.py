"""Notice gateway (通知网关): turns issued notices into outbound messages for SMS/WeChat senders.

One row per recipient × channel in `dudao_outbound_messages`, status `pending`: the hand-off
point where a sender picks messages up. The message id is derived from the event id, the
recipient and the channel, so a redelivered event can never queue a message twice.

It reads the fields it needs from the envelope's `data` and matches the event type by its
`NoticeIssued` suffix, so it needs no notice event class and keeps working when that module changes.

Its dead-letter policy is `skip`: each issued notice makes its own messages and reads nothing
another event wrote, so one notice it cannot queue must not hold up every other unit's notices in
that partition; the letter stays open (and alerts) until an operator retries or closes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from psycopg import Cursor
from psycopg.types.json import Jsonb

from consumers.base import DeadLetterPolicy, KafkaOptions, TrackedConsumer
from consumers.envelope import Delivery
from domain.kernel.base import derived_id

DEFAULT_GROUP = "dudao-notice-gateway"
DEFAULT_CHANNEL = "in_app"  # 站内消息, when a notice names no channel

DDL = (
    """CREATE TABLE IF NOT EXISTS dudao_outbound_messages (
        message_id uuid PRIMARY KEY, event_id text NOT NULL, notice_id text, recipient_kind text,
        recipient_id text, recipient_name text, channel text NOT NULL, text_zh text NOT NULL,
        issued_at timestamptz, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        status text NOT NULL DEFAULT 'pending', recipient jsonb NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS dudao_outbound_messages_pending ON dudao_outbound_messages (channel, created_at)"
    " WHERE status = 'pending'",
)


def is_notice_issued(event_type: str) -> bool:
    return event_type.endswith("NoticeIssued")


def channels_of(data: Mapping[str, Any], recipient: Mapping[str, Any]) -> list[str]:
    """The recipient's own channels if it names any, else the notice's, else the default."""
    for source in (recipient, data):
        found = source.get("channels") or source.get("channel")
        if found:
            return sorted({found} if isinstance(found, str) else {str(c) for c in found})
    return [DEFAULT_CHANNEL]


def outbound_rows(delivery: Delivery) -> Iterable[tuple[Any, ...]]:
    """(message_id, event_id, notice_id, kind, id, name, channel, text, issued_at, recipient) per message."""
    data = delivery.data
    issued_at = (data.get("meta") or {}).get("recorded_at")
    for recipient in data.get("recipients") or ():
        kind, party, name = recipient.get("party_kind"), recipient.get("party_id"), recipient.get("name")
        for channel in channels_of(data, recipient):
            message_id = derived_id("outbound", delivery.event_id, kind, party, channel)
            yield (message_id, delivery.event_id, _text(data.get("notice_id")), kind, _text(party), name, channel,
                   data.get("text_zh") or "", issued_at, Jsonb(dict(recipient)))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class NoticeGateway(TrackedConsumer):
    """Queues one outbound message per recipient and channel of every issued notice."""

    ddl = DDL
    dead_letter_policy: ClassVar[DeadLetterPolicy] = "skip"

    def __init__(self, database_url: str, kafka: KafkaOptions, *, group_id: str = DEFAULT_GROUP,
                 prefix: str = "dudao") -> None:
        super().__init__(database_url, kafka, group_id, [f"{prefix}.notice"])

    def wants(self, event_type: str) -> bool:
        return is_notice_issued(event_type)

    def handle(self, curs: Cursor[Any], delivery: Delivery) -> None:
        rows = list(outbound_rows(delivery))
        curs.executemany(
            "INSERT INTO dudao_outbound_messages (message_id, event_id, notice_id, recipient_kind, recipient_id,"
            " recipient_name, channel, text_zh, issued_at, recipient) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (message_id) DO NOTHING",
            rows,
        )
        self.log.info("notice_queued", notice_id=delivery.data.get("notice_id"), messages=len(rows))
