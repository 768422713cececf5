"""How far behind everything is: the log head, the relay, the projections and Kafka consumer groups,
and which of them wait before a dead letter (死信, an event they could not apply); and the partition
count of every `<prefix>.*` topic (`topics`), so a topic made with another count than the configured
one is seen at once.

`status()` gathers it (for `dudao status [--json]`); `metrics_text()` renders the same figures in
the Prometheus text exposition format (for a `/metrics` endpoint). Kafka being unreachable is
reported (`kafka_error`), never raised: status is what you run when something is wrong.

Dead letters are reported for every projection and every consumer group with stored offsets, zero
included, so an alert on `dudao_dead_letters_open > 0` has a series to watch from the start.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import psycopg
from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import KafkaError

from infra.streams.cloudevents import DEFAULT_PREFIX
from infra.streams.broker import CONNECT_TIMEOUT_MS, scan_partitions, tail_consumer, topic_partitions
from projections import dead_letters as dl

EVENTS_TABLE = "dudao_events"


def status(database_url: str, bootstrap: str | None, *, relay_name: str = "kafka", prefix: str = DEFAULT_PREFIX,
           now: datetime | None = None, timeout_s: float = 5.0) -> dict[str, Any]:
    """Lag of the relay (events, seconds), of each projection and of each consumer group."""
    now = now or datetime.now(timezone.utc)
    with psycopg.connect(database_url, autocommit=True) as conn:
        head = _scalar(conn, f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}")
        position = _relay_position(conn, relay_name)
        report: dict[str, Any] = {
            "log_head": head,
            "relay_position": position,
            "relay_lag_events": _events_after(conn, position),
            "relay_lag_seconds": _lag_seconds(conn, position, now),
            "projections": _projections(conn),
        }
        report["dead_letters"] = _dead_letters(conn, report["projections"])
    groups, error = consumer_groups(bootstrap, prefix, timeout_s) if bootstrap else ({}, "no Kafka bootstrap given")
    report["consumer_groups"] = groups
    report["topics"] = {}
    if bootstrap and not error:
        try:
            report["topics"] = {t: {"partitions": n} for t, n in topic_partitions(bootstrap, prefix, timeout_s).items()}
        except (KafkaError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    if error:
        report["kafka_error"] = error
    return report


def _scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    return _scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (table,)) is True


def _relay_position(conn: psycopg.Connection[Any], name: str) -> int:
    if not _table_exists(conn, "dudao_relay_position"):
        return 0
    return int(_scalar(conn, "SELECT position FROM dudao_relay_position WHERE name = %s", (name,)) or 0)


def _events_after(conn: psycopg.Connection[Any], position: int) -> int:
    # Counted, not subtracted: rolled-back inserts leave holes in the notification ids.
    return int(_scalar(conn, f"SELECT count(*) FROM {EVENTS_TABLE} WHERE notification_id > %s", (position,)))


def _lag_seconds(conn: psycopg.Connection[Any], position: int, now: datetime) -> float:
    """Age of the oldest event not yet published (0 when caught up)."""
    raw = _scalar(conn, f"SELECT state FROM {EVENTS_TABLE} WHERE notification_id > %s "
                        "ORDER BY notification_id LIMIT 1", (position,))
    if raw is None:
        return 0.0
    recorded = datetime.fromisoformat(json.loads(bytes(raw))["meta"]["recorded_at"].replace("Z", "+00:00"))
    return max(0.0, round((now - recorded).total_seconds(), 3))


def _projections(conn: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    if not _table_exists(conn, "dudao_projection_positions"):
        return {}
    rows = conn.execute("SELECT name, position FROM dudao_projection_positions ORDER BY name").fetchall()
    return {name: {"position": int(pos), "lag": _events_after(conn, int(pos))} for name, pos in rows}


def _dead_letters(conn: psycopg.Connection[Any], projections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per reader kind and reader: open dead letters, the oldest one's age (s) and position (None when none)."""
    groups = ([r[0] for r in conn.execute("SELECT DISTINCT group_id FROM dudao_consumer_offsets")]
              if _table_exists(conn, "dudao_consumer_offsets") else [])
    none = {"open": 0, "oldest_age_seconds": 0.0, "oldest_position": None}
    report: dict[str, dict[str, Any]] = {"projection": {name: dict(none) for name in projections},
                                         "consumer": {group: dict(none) for group in groups}}
    for (kind, reader), found in dl.open_summary(conn).items():
        report.setdefault(kind, {})[reader] = found
    return {kind: dict(sorted(readers.items())) for kind, readers in report.items()}


def consumer_groups(bootstrap: str, prefix: str, timeout_s: float) -> tuple[dict[str, Any], str | None]:
    """Group → total lag and per-partition committed/end offsets on `<prefix>.*` topics (Kafka-committed)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="dudao-status",
                                 request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=CONNECT_TIMEOUT_MS)
    except (KafkaError, OSError) as exc:
        return {}, f"{type(exc).__name__}: {exc}"
    try:
        groups = sorted(g["group_id"] for g in admin.list_groups())
        offsets = admin.list_group_offsets(groups) if groups else {}
        ours = {g: {tp: o.offset for tp, o in found.items() if tp.topic.startswith(f"{prefix}.") and o.offset >= 0}
                for g, found in offsets.items()}
        ends = _end_offsets(bootstrap, {tp for found in ours.values() for tp in found}, timeout_s)
        return {g: _group_lag(found, ends) for g, found in sorted(ours.items()) if found}, None
    except (KafkaError, OSError) as exc:
        return {}, f"{type(exc).__name__}: {exc}"
    finally:
        admin.close()


def _end_offsets(bootstrap: str, tps: set[TopicPartition], timeout_s: float) -> dict[TopicPartition, int]:
    if not tps:
        return {}
    consumer = tail_consumer(bootstrap, timeout_s)
    try:
        return {tp: end for tp, (end, _) in scan_partitions(consumer, sorted(tps), timeout_s).items()}
    finally:
        consumer.close()


def _group_lag(committed: dict[TopicPartition, int], ends: dict[TopicPartition, int]) -> dict[str, Any]:
    partitions = [{"topic": tp.topic, "partition": tp.partition, "committed": off, "end": ends[tp],
                   "lag": max(0, ends[tp] - off)} for tp, off in sorted(committed.items())]
    return {"lag": sum(p["lag"] for p in partitions), "partitions": partitions}


# ---------------------------------------------------------------------------- Prometheus


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _metric(name: str, help_text: str, samples: list[tuple[dict[str, object], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value}" if inner else f"{name} {value}")
    return lines


def metrics_text(report: dict[str, Any]) -> str:
    """The status report in the Prometheus text exposition format (version 0.0.4)."""
    projections = report.get("projections", {})
    groups = report.get("consumer_groups", {})
    letters = [({"reader_kind": kind, "reader": reader}, found) for kind, readers in report.get("dead_letters", {}).items()
               for reader, found in readers.items()]
    lines = [
        *_metric("dudao_log_head", "Highest notification id in the event store.", [({}, report["log_head"])]),
        *_metric("dudao_relay_position", "Highest notification id the relay published.",
                 [({}, report["relay_position"])]),
        *_metric("dudao_relay_lag_events", "Stored events not yet published to Kafka.",
                 [({}, report["relay_lag_events"])]),
        *_metric("dudao_relay_lag_seconds", "Age of the oldest unpublished event (0 when caught up).",
                 [({}, report["relay_lag_seconds"])]),
        *_metric("dudao_projection_position", "Notification id a projection has applied.",
                 [({"projection": n}, p["position"]) for n, p in projections.items()]),
        *_metric("dudao_projection_lag_events", "Events a projection has not applied yet.",
                 [({"projection": n}, p["lag"]) for n, p in projections.items()]),
        *_metric("dudao_consumer_group_lag", "Messages a consumer group has not committed yet, per partition.",
                 [({"group": g, "topic": p["topic"], "partition": p["partition"]}, p["lag"])
                  for g, found in groups.items() for p in found["partitions"]]),
        *_metric("dudao_dead_letters_open", "Events a reader could not apply and waits before (or went past), not yet "
                 "retried or skipped; alert when above 0.", [(labels, found["open"]) for labels, found in letters]),
        *_metric("dudao_dead_letters_oldest_age_seconds", "Age of the reader's oldest open dead letter (0 when none).",
                 [(labels, found["oldest_age_seconds"]) for labels, found in letters]),
        *_metric("dudao_topic_partitions", "Partitions of each event topic.",
                 [({"topic": t}, found["partitions"]) for t, found in report.get("topics", {}).items()]),
        *_metric("dudao_kafka_up", "1 when Kafka answered the status query.",
                 [({}, 0 if report.get("kafka_error") else 1)]),
    ]
    return "\n".join(lines) + "\n"


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
