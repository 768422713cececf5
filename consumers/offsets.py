"""Where consumer groups keep their progress in PostgreSQL: next offsets and the event ids they saw.

`dudao_consumer_offsets(group_id, topic, partition, next_offset)` is the source of truth for where
a group resumes (Kafka's committed offsets are only a hint); `dudao_consumer_seen(group_id,
event_id)` deduplicates. Both are written inside the consumer's effect transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from kafka import TopicPartition
from psycopg import Connection, Cursor, sql

Key = tuple[str, int]  # (topic, partition)


def ddl(schema: str) -> list[sql.Composed]:
    s = sql.Identifier(schema)
    return [
        sql.SQL("CREATE TABLE IF NOT EXISTS {}.dudao_consumer_offsets (group_id text NOT NULL, topic text NOT NULL,"
                " partition int NOT NULL, next_offset bigint NOT NULL DEFAULT 0,"
                " updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " PRIMARY KEY (group_id, topic, partition))").format(s),
        sql.SQL("CREATE TABLE IF NOT EXISTS {}.dudao_consumer_seen (group_id text NOT NULL, event_id text NOT NULL,"
                " seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " PRIMARY KEY (group_id, event_id))").format(s),
    ]


def lock(curs: Cursor[Any], schema: str, group: str, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
    """Lock the partitions' offset rows (creating missing ones at 0) and return their next offsets."""
    keys = sorted((tp.topic, tp.partition) for tp in tps)
    topics, partitions = [k[0] for k in keys], [k[1] for k in keys]
    s = sql.Identifier(schema)
    curs.execute(sql.SQL("INSERT INTO {}.dudao_consumer_offsets (group_id, topic, partition)"
                         " SELECT %s, t, p FROM unnest(%s::text[], %s::int[]) AS u(t, p)"
                         " ON CONFLICT DO NOTHING").format(s), (group, topics, partitions))
    # Locked in key order: two members locking overlapping partitions cannot deadlock.
    curs.execute(sql.SQL("SELECT topic, partition, next_offset FROM {}.dudao_consumer_offsets WHERE group_id = %s"
                         " AND (topic, partition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))"
                         " ORDER BY topic, partition FOR UPDATE").format(s), (group, topics, partitions))
    return {TopicPartition(t, p): int(n) for t, p, n in _tuples(curs)}


def save(curs: Cursor[Any], schema: str, group: str, offsets: Mapping[TopicPartition, int]) -> None:
    curs.executemany(sql.SQL("UPDATE {}.dudao_consumer_offsets SET next_offset = %s, updated_at = clock_timestamp()"
                             " WHERE group_id = %s AND topic = %s AND partition = %s").format(sql.Identifier(schema)),
                     [(n, group, tp.topic, tp.partition) for tp, n in sorted(offsets.items())])


def first_sighting(curs: Cursor[Any], schema: str, group: str, event_id: str) -> bool:
    """Record that the group saw this event; False when it already had."""
    curs.execute(sql.SQL("INSERT INTO {}.dudao_consumer_seen (group_id, event_id) VALUES (%s, %s)"
                         " ON CONFLICT DO NOTHING").format(sql.Identifier(schema)), (group, event_id))
    return curs.rowcount == 1


def stored(conn: Connection[Any], schema: str = "public", group: str | None = None) -> dict[str, dict[Key, int]]:
    """Every group's (or one group's) next offsets: {group: {(topic, partition): next_offset}}."""
    query = sql.SQL("SELECT group_id, topic, partition, next_offset FROM {}.dudao_consumer_offsets"
                    " WHERE %(group)s::text IS NULL OR group_id = %(group)s").format(sql.Identifier(schema))
    found: dict[str, dict[Key, int]] = {}
    for g, t, p, n in _tuples(conn.execute(query, {"group": group})):
        found.setdefault(g, {})[(t, p)] = int(n)
    return found


def lag(offsets: Mapping[Key, int], ends: Mapping[Key, int]) -> int:
    """Messages not yet applied: over every partition of the group's topics, end minus next offset."""
    topics = {t for t, _ in offsets}
    return sum(max(0, end - offsets.get(key, 0)) for key, end in ends.items() if key[0] in topics)


def _tuples(curs: Any) -> list[tuple[Any, ...]]:
    """Rows as tuples whatever the connection's row factory."""
    names = [d.name for d in curs.description]
    return [tuple(r[n] for n in names) if isinstance(r, dict) else tuple(r) for r in curs.fetchall()]
