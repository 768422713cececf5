"""The published contract (对外契约): JSON Schema per event type and an AsyncAPI 3.0 document.

Both are generated from the code (the pydantic event models and the envelope of
`infra.streams.cloudevents`), written by `dudao schema export DIR` and checked in under `contract/`;
`check(DIR)` lists every difference, and a test fails the build when the checked-in contract is
stale. Files: `asyncapi.json` and one `<event name>.schema.json` per registered event type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from domain.kernel.base import DomainEvent, event_registry
from infra.streams.cloudevents import CONTENT_TYPE, DATA_CONTENT_TYPE, DEFAULT_PREFIX, DEFAULT_SOURCE, EXTENSIONS, \
    INTEGER_EXTENSIONS, SPECVERSION, dataschema_urn, topic_for

ASYNCAPI_FILE = "asyncapi.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
OPTIONAL_EXTENSIONS = frozenset({"dudaoactorid", "dudaocausationid", "dudaocampaignid"})
UUID_EXTENSIONS = frozenset({"dudaoactorid", "dudaocorrelationid", "dudaocausationid", "dudaocampaignid"})


def registered_events() -> dict[str, type[DomainEvent]]:
    """Every event type, by stable name, after importing every handler module (which registers them)."""
    from infra.bootstrap import load_handlers

    load_handlers()
    # Only the product's own events: a test may register throwaway event classes in-process.
    return dict(sorted((n, c) for n, c in event_registry().items() if c.__module__.startswith("domain.")))


def schema_file(cls: type[DomainEvent]) -> str:
    return f"{cls.event_name}.schema.json"


def event_schema(cls: type[DomainEvent]) -> dict[str, Any]:
    """JSON Schema of an event's `data` exactly as the relay serialises it."""
    body = cls.model_json_schema(mode="serialization")
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": dataschema_urn(cls), **body,
            "x-dudao-kind": cls.kind, "x-dudao-aggregate-id-field": cls.id_field,
            "x-dudao-class-version": cls.class_version}


def _summary(cls: type[DomainEvent]) -> str:
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def envelope_schema() -> dict[str, Any]:
    """The CloudEvents 1.0 structured envelope every message carries."""
    ext: dict[str, Any] = {}
    for name, text in EXTENSIONS.items():
        prop: dict[str, Any] = {"type": "integer", "minimum": 1} if name in INTEGER_EXTENSIONS else {"type": "string"}
        if name in UUID_EXTENSIONS:
            prop["format"] = "uuid"
        elif name == "dudaorecordedat":
            prop["format"] = "date-time"
        ext[name] = {**prop, "description": text}
    return {
        "type": "object",
        "description": "CloudEvents 1.0 structured-mode envelope (JSON) with dudao extension attributes.",
        "properties": {
            "specversion": {"const": SPECVERSION},
            "id": {"type": "string", "minLength": 1,
                   "description": "`<aggregate id>:<version>`: unique and stable, deduplicate by it."},
            "source": {"type": "string", "minLength": 1, "format": "uri-reference",
                       "description": f"the deployment that recorded the event (default `{DEFAULT_SOURCE}`)"},
            "type": {"type": "string", "description": "stable event name, `dudao.<kind>.<Event>`"},
            "time": {"type": "string", "format": "date-time", "description": "when it happened in the field"},
            "subject": {"type": "string", "format": "uuid", "description": "the aggregate id (also the Kafka key)"},
            "datacontenttype": {"const": DATA_CONTENT_TYPE},
            "dataschema": {"type": "string", "format": "uri",
                           "description": "URN of the event's JSON Schema; ends in `:v<class version>`"},
            "data": {"type": "object", "description": "the event, including its `meta`"},
            **ext,
        },
        "required": ["specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema",
                     "data", *(n for n in EXTENSIONS if n not in OPTIONAL_EXTENSIONS)],
        "additionalProperties": False,
    }


def headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "content-type": {"const": CONTENT_TYPE, "description": "marks CloudEvents structured mode"},
            "event_id": {"type": "string", "description": "same as the envelope's `id`"},
            "notification_id": {"type": "string", "pattern": "^[0-9]+$",
                                "description": "same as `dudaonotificationid`, as decimal text"},
        },
        "required": ["content-type", "event_id", "notification_id"],
    }


def message(cls: type[DomainEvent]) -> dict[str, Any]:
    return {
        "name": cls.__name__,
        "title": cls.event_name,
        "summary": _summary(cls),
        "contentType": CONTENT_TYPE.split(";")[0],
        "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
        "payload": {"$ref": f"#/components/schemas/{cls.event_name}"},
        "correlationId": {"location": "$message.payload#/dudaocorrelationid"},
        "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION, "key": {
            "type": "string", "format": "uuid",
            "description": f"the aggregate id (`{cls.id_field}`): one aggregate's events stay in order"}}},
    }


def message_payload(cls: type[DomainEvent]) -> dict[str, Any]:
    return {
        "allOf": [{"$ref": "#/components/schemas/CloudEvent"}],
        "properties": {"type": {"const": cls.event_name}, "dataschema": {"const": dataschema_urn(cls)},
                       "data": {"$ref": schema_file(cls)}},
    }


INFO_DESCRIPTION = (
    "Every event stored by dudao (督导) is published once, in notification order, to the topic of its "
    "aggregate kind. Key = aggregate id, so one aggregate's events are ordered within a partition. "
    "Value = a CloudEvents 1.0 structured JSON envelope; `data` is the event with its `meta` "
    "(actor, occurred/recorded times, correlation, causation, command and campaign ids). "
    "Consumers deduplicate by the envelope `id` and may order globally by `dudaonotificationid`."
)


def asyncapi(events: dict[str, type[DomainEvent]], prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    kinds = sorted({cls.kind for cls in events.values()})
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for kind in kinds:
        members = [cls for cls in events.values() if cls.kind == kind]
        channels[kind] = {
            "address": topic_for(kind, prefix),
            "description": f"events of aggregate kind `{kind}`",
            "messages": {cls.__name__: {"$ref": f"#/components/messages/{cls.event_name}"} for cls in members},
            "bindings": {"kafka": {"topic": topic_for(kind, prefix), "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[f"publish_{kind}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{kind}"},
            "summary": f"the relay publishes every `{kind}` event exactly once",
            "messages": [{"$ref": f"#/channels/{kind}/messages/{cls.__name__}"} for cls in members],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "dudao 督导 event streams", "version": "1.0.0", "description": INFO_DESCRIPTION},
        "defaultContentType": CONTENT_TYPE.split(";")[0],
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                              "description": "`make run` (embedded broker; production sets DUDAO_KAFKA_BOOTSTRAP)"}},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {name: message(cls) for name, cls in events.items()},
            "schemas": {"CloudEvent": envelope_schema(), "KafkaHeaders": headers_schema(),
                        **{name: message_payload(cls) for name, cls in events.items()}},
        },
    }


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """File name → content of the whole contract."""
    events = registered_events()
    files = {schema_file(cls): _dump(event_schema(cls)) for cls in events.values()}
    files[ASYNCAPI_FILE] = _dump(asyncapi(events, prefix))
    return files


def _ours(path: Path) -> bool:
    return path.name == ASYNCAPI_FILE or path.name.endswith(".schema.json")


def export(directory: Path | str) -> list[str]:
    """Write the contract into `directory` (removing schemas of events that no longer exist)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    files = render()
    for path in target.iterdir():
        if _ours(path) and path.name not in files:
            path.unlink()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    return sorted(files)


def check(directory: Path | str) -> list[str]:
    """Differences between `directory` and a fresh export: `missing: f`, `stale: f`, `extra: f`."""
    target = Path(directory)
    files = render()
    problems = []
    for name, text in sorted(files.items()):
        path = target / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"stale: {name}")
    if target.is_dir():
        problems += [f"extra: {p.name}" for p in sorted(target.iterdir()) if _ours(p) and p.name not in files]
    return problems


if __name__ == "__main__":  # python -m infra.streams.contract export|check DIR
    action, where = sys.argv[1], sys.argv[2]
    if action == "export":
        print("\n".join(export(where)))
    else:
        found = check(where)
        print("\n".join(found) or "contract is up to date")
        sys.exit(1 if found else 0)
