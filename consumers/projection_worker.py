"""Scale-out projection workers (横向扩展读模型): the in-process read models, built from Kafka.

N workers in one consumer group share the topics' partitions; each runs the same `Projection`
objects the projector runs, on a connection whose search_path is a schema of their own
(`scaleout` by default), so they build the same tables without touching the in-process ones.
That is sound only for projections whose handlers touch nothing but the rows of the event's own
aggregate (an aggregate's events stay in one partition, in order; joins happen at query time):
`SCALE_OUT_SAFE` names them. `work_items` is not one: a notice's row reads its subject problem's
row and a problem's closure updates its notices', so the outcome would depend on how partitions
interleave. An event a worker cannot apply holds its partition (dead-letter policy `wait`), as the
projector does: an aggregate's later events must not land on rows missing an earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import Cursor

from consumers.base import KafkaOptions, TrackedConsumer
from consumers.envelope import Delivery
from projections.base import Projection

DEFAULT_GROUP = "dudao-projections"
DEFAULT_SCHEMA = "scaleout"
SCALE_OUT_SAFE = frozenset({"structure", "matrix", "ledger"})


class NotPartitionLocal(ValueError):
    """The projection's handlers read other aggregates' rows, so it cannot be built partition by partition."""


def scale_out_projections(projections: Iterable[Projection]) -> list[Projection]:
    """The projections among these that workers can build."""
    return [p for p in projections if p.name in SCALE_OUT_SAFE]


def projection_topics(projections: Iterable[Projection], prefix: str = "dudao") -> list[str]:
    """The topics (one per aggregate kind) carrying the events these projections handle."""
    return sorted({f"{prefix}.{event_type.kind}" for p in projections for event_type in p.handlers})


class ProjectionWorker(TrackedConsumer):
    """Applies each delivered event to every projection that handles its type."""

    def __init__(self, database_url: str, kafka: KafkaOptions, projections: Iterable[Projection], *,
                 group_id: str = DEFAULT_GROUP, schema: str = DEFAULT_SCHEMA, prefix: str = "dudao") -> None:
        self.projections = list(projections)
        unsafe = sorted(p.name for p in self.projections if p.name not in SCALE_OUT_SAFE)
        if unsafe:
            raise NotPartitionLocal(f"cannot scale out projection(s) {', '.join(unsafe)}")
        self.by_type = {name: [p for p in self.projections if name in p.topics]
                        for name in {n for p in self.projections for n in p.topics}}
        super().__init__(database_url, kafka, group_id, projection_topics(self.projections, prefix), schema=schema)

    def create(self, curs: Cursor[Any]) -> None:
        for p in self.projections:
            p.create(curs)

    def wants(self, event_type: str) -> bool:
        return event_type in self.by_type

    def handle(self, curs: Cursor[Any], delivery: Delivery) -> None:
        recorded = delivery.recorded()
        for projection in self.by_type[delivery.type]:
            projection.apply(curs, recorded)
