"""Poison events (毒事件) for dead-letter tests: stored straight into the event store, past the edge.

The edge refuses control characters in text, but events stored before it did (or by a future bug)
are still in the log; these helpers put such an event there the way the command service would have.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from domain import problem as pr
from infra.store.event_store import Dudao


def stored_payload(app: Dudao, originator_id: UUID) -> tuple[int, dict[str, Any]]:
    """The last stored version of an aggregate and that event's JSON payload."""
    last = max((n for n in app.recorder.select_notifications(1, limit=1_000_000)
                if UUID(str(n.originator_id)) == originator_id), key=lambda n: n.originator_version)
    return last.originator_version, json.loads(last.state)


def store_raw(app: Dudao, originator_id: UUID, version: int, event_name: str, payload: dict[str, Any]) -> int:
    """Append one event as stored JSON (no validation on the way in); returns its notification id."""
    state = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    app.recorder.insert_events([StoredEvent(originator_id=originator_id, originator_version=version,
                                            topic=event_name, state=state)])
    return app.recorder.max_notification_id() or 0


def store_transfer_request_with_nul(app: Dudao, problem_id: UUID, unit_id: UUID) -> int:
    """A unit's 申请转办 whose reason ends in a NUL byte, as the API accepted it before the edge checked."""
    version, previous = stored_payload(app, problem_id)
    meta = dict(previous["meta"], command_id=str(uuid4()), correlation_id=str(uuid4()))
    payload = {"meta": meta, "problem_id": str(problem_id), "unit_id": str(unit_id), "reason": "x\u0000"}
    return store_raw(app, problem_id, version + 1, pr.TransferRequested.event_name, payload)
