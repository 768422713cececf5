"""Every field of every registered command is a kernel edge type, proven one field at a time.

Generated from the handler registry: a command added tomorrow is walked like the others, down
through its nested value models (a visit's findings, a bulletin's lists, a policy's limits). Each
text field must carry a text kind and refuse a NUL; each integer, number and flag must refuse a
string and a boolean (or a number); each instant must refuse a number, a naive time and year 9999;
each day must refuse year 1. Both parse paths are tried: JSON (the CLI, a raw body) and Python
objects (FastAPI hands the endpoint a parsed body). So a command cannot ship a bare `str`.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from domain.kernel.base import Command
from domain.kernel.text import TextKind
from infra.bootstrap import load_handlers
from infra.commands import HANDLERS
from tests.support.samples import sample, sample_model

pytestmark = pytest.mark.unit

KEY = object()  # a path step that names a dict's key rather than its value


@dataclass(frozen=True)
class Leaf:
    """One scalar field reached from a command: where it sits in a sample body, its type and its annotations."""

    command: type[Command]
    path: tuple[Any, ...]
    type: Any
    metadata: tuple[Any, ...]

    @property
    def name(self) -> str:
        path = self.path[:self.path.index(KEY)] + ("{key}",) if KEY in self.path else self.path
        steps = "".join(f"[{p}]" if isinstance(p, int) else (p if p == "{key}" else f".{p}") for p in path)
        return f"{self.command.__name__}{steps}"

    @property
    def text_kind(self) -> TextKind | None:
        return next((m for m in self.metadata if isinstance(m, TextKind)), None)


def _unwrap(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    meta: tuple[Any, ...] = ()
    while get_origin(tp) is Annotated:
        tp, *extra = get_args(tp)
        meta += tuple(m for e in extra for m in (getattr(e, "metadata", None) or [e]))
    return tp, meta


def _annotated(field: Any) -> Any:
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _leaves(command: type[Command], tp: Any, value: Any, path: tuple[Any, ...]) -> Iterator[Leaf]:
    tp, meta = _unwrap(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if value is not None and len(options) == 1:
            yield from _leaves(command, Annotated[(options[0], *meta)] if meta else options[0], value, path)
        return
    if origin in (tuple, list, set, frozenset):
        item = next(a for a in get_args(tp) if a is not Ellipsis)
        for i, v in enumerate(value):
            yield from _leaves(command, item, v, (*path, i))
        return
    if origin is dict:
        key_type, value_type = get_args(tp)
        for k, v in value.items():
            yield from _leaves(command, key_type, k, (*path, KEY, k))
            yield from _leaves(command, value_type, v, (*path, k))
        return
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            yield from _leaves(command, _annotated(field), value[name], (*path, name))
        return
    if origin is typing.Literal or tp is Any or tp is UUID or (isinstance(tp, type) and issubclass(tp, Enum)):
        return  # ids, enums and literals admit only their own values
    yield Leaf(command, path, tp, meta)


def _registered() -> list[type[Command]]:
    load_handlers()
    return sorted((c for c in HANDLERS if not c.__module__.startswith("tests.")), key=lambda c: c.__name__)


def _sample(command: type[Command]) -> dict[str, Any]:
    """A valid body of `command` as JSON-ready values, every field present (the envelope's `reason` too)."""
    sample_model(command)  # the sample is valid as a whole
    body: dict[str, Any] = to_jsonable_python({name: sample(f.annotation, f.metadata, 0, name)
                                                for name, f in command.model_fields.items()})
    return body


def _every_leaf() -> list[Leaf]:
    return [leaf for c in _registered() for leaf in _leaves(c, c, _sample(c), ())]


LEAVES = _every_leaf()
SCALARS = (str, int, float, bool, datetime, AwareDatetime, date)

# leaf type → the hostile values it must refuse, each with the error types that may name it
HOSTILE: dict[Any, list[tuple[Any, set[str]]]] = {
    str: [("\u0000", {"control_character", "string_pattern_mismatch"}),
          ("名\u0000称", {"control_character", "string_pattern_mismatch"})],
    int: [("3", {"int_type"}), (True, {"int_type"})],
    float: [("0.5", {"float_type"}), (True, {"float_type"})],
    bool: [("true", {"bool_type"}), (1, {"bool_type"})],
    datetime: [(0.5, {"time_format"}), ("2021-12-03T09:00:00", {"timezone_aware"}),
               ("9999-12-31T23:59:59-14:00", {"time_out_of_range"}), ("1999-12-31T23:59:59Z", {"time_out_of_range"})],
    date: [(20211203, {"time_format"}), ("0001-01-01", {"time_out_of_range"}), ("9999-12-31", {"time_out_of_range"})],
}
HOSTILE[AwareDatetime] = HOSTILE[datetime]


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of `body` with `value` at `path` (for a dict key: the key renamed to `value`)."""
    out = copy.deepcopy(body)
    node: Any = out
    steps = list(path)
    while len(steps) > 1 and steps[0] is not KEY:
        node = node[steps.pop(0)]
    if steps[0] is KEY:
        node[value] = node.pop(steps[1])
    else:
        node[steps[0]] = value
    return out


def _loc(path: tuple[Any, ...], hostile: Any) -> tuple[Any, ...]:
    """The loc pydantic reports for the value at `path` (a dict key: the key itself, then `[key]`)."""
    if KEY in path:
        i = path.index(KEY)
        return (*path[:i], hostile, "[key]")
    return path


def _cases() -> list[Any]:
    cases = []
    for leaf in LEAVES:
        for value, types_ in HOSTILE.get(leaf.type, []):
            cases.append(pytest.param(leaf, value, types_, id=f"{leaf.name}={value!r}"))
    return cases


def test_the_walk_reaches_every_registered_command_and_its_nested_fields() -> None:
    """The generator sees every command, nested text (a finding's description), the envelope's reason (理由) on
    every command, and every scalar kind."""
    names = {leaf.name for leaf in LEAVES}
    assert {c for c in _registered()} == {leaf.command for leaf in LEAVES}
    assert {"LogVisit.findings[0].description", "LogVisit.command_id", "SetDeadlinePolicy.default.amount",
            "IssueNotice.fields{key}", "StartCampaign.launched_on"} <= names
    assert {f"{c.__name__}.reason" for c in _registered()} <= names
    assert {leaf.type for leaf in LEAVES} <= set(SCALARS), {leaf.type for leaf in LEAVES} - set(SCALARS)


def test_every_text_field_of_every_command_has_a_text_kind() -> None:
    """No command field is a bare `str`: each names its kind (single-line or free text) from domain.kernel.text."""
    bare = [leaf.name for leaf in LEAVES if leaf.type is str and leaf.text_kind is None]
    assert not bare, f"bare str fields (use a kind from domain/kernel/text.py): {bare}"


@pytest.mark.parametrize(("leaf", "hostile", "expected"), _cases())
def test_every_command_field_refuses_hostile_input_in_json_and_in_python(leaf: Leaf, hostile: Any,
                                                                         expected: set[str]) -> None:
    """The field refuses the hostile value with an error at its own location, parsed from JSON and from objects."""
    body = _with(_sample(leaf.command), leaf.path, hostile)
    loc = _loc(leaf.path, hostile)
    for parse in (lambda: leaf.command.model_validate_json(json.dumps(body)),
                  lambda: leaf.command.model_validate(body)):
        with pytest.raises(ValidationError) as refused:
            parse()
        found = {e["type"] for e in refused.value.errors() if tuple(e["loc"]) == loc}
        assert found & expected, (leaf.name, hostile, refused.value.errors(include_url=False))
