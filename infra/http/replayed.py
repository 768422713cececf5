"""`as_of` on the entity and matrix routes (截至某时): answered by replaying the stored events, never from a projection.

`GET /{kind}/{id}?as_of=T` (campaigns, units, places, persons, indicators, tasks, bulletins, notices, summons,
accountability cases, escalation steps, problems) answers the entity as the event store had it at T: its events
recorded by T, folded as a command folds them (`infra.audit.history`). The body has the same fields as without
`as_of`, with `version` the number of events counted, `as_of`, and `names_in_force`: the names (then in force) of
the units, places, persons, campaigns, indicators and tasks it names — a unit renamed since answers with its old
name. An entity not yet recorded at T is 404 `<kind>_not_found` (with `as_of`). Access is the route's own: the
token that may read the entity now may read its past.

`GET /campaigns/{id}/matrix?as_of=T` folds the responsibility and liaison aggregates (`infra.audit.asof.matrix_at`):
by default every assignment the store holds that is in force at T (`basis=stored`, the projection's question:
a handover entered later but effective before T counts), or only what had been recorded by T (`basis=recorded`:
what HQ could know then). Without `as_of` the matrix projection answers "now".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi.encoders import jsonable_encoder

from domain.kernel.base import NotFound
from infra.audit import asof
from infra.audit.history import AsOfReader, Cutoff, History
from infra.store.event_store import Dudao

MATRIX_BASES = ("stored", "recorded")


def folded_at(app: Dudao, kind: str, zh: str, entity_id: UUID, at: datetime) -> tuple[Any, int, AsOfReader]:
    """The entity's state from its events recorded by `at`, how many were counted, and the reader (404 if none)."""
    reader = AsOfReader(History(app), Cutoff(recorded_by=at))
    state = reader.get(kind, entity_id, object)
    if state is None:
        raise NotFound(f"{kind}_not_found", f"{zh}在该时间尚不存在", f"the {kind} was not recorded yet at as_of",
                       id=str(entity_id), as_of=at.isoformat())
    return state, len(reader.events(entity_id)), reader


def entity_at(app: Dudao, kind: str, zh: str, entity_id: UUID, at: datetime) -> dict[str, Any]:
    """The body of `GET /{kind}/{id}?as_of=T`: the entity's fields then, its version then, and the names then."""
    state, version, reader = folded_at(app, kind, zh, entity_id, at)
    body: dict[str, Any] = jsonable_encoder(state)
    return {**body, "version": version, "as_of": at.isoformat(), "names_in_force": names_then(reader, body)}


def names_then(reader: AsOfReader, body: Any) -> dict[str, str]:
    """The names, as recorded by the reader's cut-off, of the named entities a JSON-ready body mentions."""
    return asof.names_at(reader, asof.uuids_named(body))


def matrix_at(app: Dudao, campaign_id: UUID, at: datetime, basis: str) -> dict[str, Any]:
    """The body of `GET /campaigns/{id}/matrix?as_of=T`: the rows folded from the store, and how."""
    rows = asof.matrix_at(app, campaign_id, at, basis=basis)
    return {"rows": jsonable_encoder(rows), "source": "event_store", "basis": basis,
            "log_head": app.recorder.max_notification_id() or 0}
