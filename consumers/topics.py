"""Kafka clients that never create a topic (主题只由转发器和 `dudao migrate` 创建).

`allow_auto_create_topics=False` is not enough with kafka-python 3.0: the consumer keeps the option,
but its cluster metadata (which builds every MetadataRequest) is made without it and asks the broker
to auto-create every topic it subscribes to — with the broker's own default partition count (Tansu:
4), not ours. `never_creating` sets the option where the request is built. Every consumer we open
(group members, lag probes, tail readers) goes through it, so only `create_event_topics`
(infra.streams.broker) ever makes a topic.
"""

from __future__ import annotations

from typing import Any, TypeVar

C = TypeVar("C")


def never_creating(client: C) -> C:
    """`client` (a KafkaConsumer) with auto topic creation off in the metadata requests it sends."""
    inner: Any = getattr(client, "_client", None)  # no public handle on the metadata the client sends
    cluster = getattr(inner, "cluster", None)
    if cluster is not None:
        cluster.config["allow_auto_create_topics"] = False
    return client
