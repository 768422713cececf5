"""Already recorded (已记录): a decision's answer when the same intent is stored already.

A field app that retries an upload may send it again under a new command_id. The client's id of what
the upload creates (the visit id, the problem id) is its business key: under a used key, the same
content is the same intent, and other content is a conflict. The same intent is no error and writes
nothing: the decision returns `AlreadyRecorded`, an event list that is empty but says where the intent
is stored, and the service answers with the result of the command that stored it. A conflict names the
fields that differ (`differing_fields`), so the client can tell a retry gone wrong from a reused id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from domain.kernel.base import DomainEvent


class AlreadyRecorded(list[DomainEvent]):
    """No event to write: the intent is stored as version `version` of aggregate `aggregate_id` (1: its creation)."""

    def __init__(self, aggregate_id: UUID, version: int = 1) -> None:
        super().__init__()
        self.aggregate_id = aggregate_id
        self.version = version

    def __repr__(self) -> str:
        return f"AlreadyRecorded({self.aggregate_id}, {self.version})"


def differing_fields(stored: object, given: BaseModel, names: Iterable[str]) -> list[str]:
    """The `names` whose value in `given` differs from `stored`'s, sorted; within a model, its differing fields
    are named `field.subfield` (so a changed finding names what changed in it)."""
    out: list[str] = []
    for name in names:
        old, new = getattr(stored, name, None), getattr(given, name)
        if old == new:
            continue
        if isinstance(old, BaseModel) and isinstance(new, BaseModel) and type(old) is type(new):
            out += [f"{name}.{inner}" for inner in differing_fields(old, new, type(new).model_fields)]
        else:
            out.append(name)
    return sorted(out)


def same_content(stored: Any, given: BaseModel, names: Iterable[str]) -> bool:
    return not differing_fields(stored, given, names)
