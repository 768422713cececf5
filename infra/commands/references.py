"""References (引用): which fields of a command name other entities, and of which kind.

Every id a command carries is one of four things: the target (the aggregate it acts on, found by
`Handler.target`), a reference to an entity that must exist and belong to the command's campaign,
an id the command creates (`NEW`), or an id inside the target aggregate that its own decision
checks (`OWN`: a liaison link, an exemption, a responsibility assignment). A handler declares the
last three per field in `Handler.refs`; the service checks every reference the same way
(`infra.commands.authorization`), and `undeclared` names any id-carrying field a handler left
out, so the authorization matrix test fails for a command that would skip the check.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel


@dataclass(frozen=True)
class Of:
    """The field holds ids (one, optional, or a tuple) of entities of `kind`; `missing` is the 404 code if not
    `<kind>_not_found` (kept where the domain named it first, e.g. `parent_not_found`)."""

    kind: str
    missing: str | None = None


@dataclass(frozen=True)
class KindIn:
    """The field holds ids whose kind is named by a sibling field (`party_kind`, `scope_kind`, `item_kind` …)."""

    field: str
    missing: str | None = None


@dataclass(frozen=True)
class Each:
    """The field holds a nested model (or a tuple of them) whose own fields are declared here."""

    fields: Mapping[str, Spec]


@dataclass(frozen=True)
class Unchecked:
    """Not a reference: the target, an id the command creates, or one inside the target (see the module doc)."""

    why: str


Spec = Of | KindIn | Each | Unchecked

TARGET = Unchecked("the aggregate the command acts on")
NEW = Unchecked("an id this command creates")
OWN = Unchecked("an id inside the target aggregate, checked by its decision")
PARTY = Each({"party_id": KindIn("party_kind")})  # a unit or a person (单位/个人)
BASIS = Each({"id": KindIn("kind")})  # a piece of a case's or summons' basis (依据)


@dataclass(frozen=True)
class Ref:
    """One reference found in a command: the entity's kind and id, the field path it came from, its 404 code."""

    kind: str
    id: UUID
    path: str
    missing: str = field(default="")

    @property
    def not_found_code(self) -> str:
        return self.missing or f"{self.kind}_not_found"


def references(command: BaseModel, refs: Mapping[str, Spec]) -> Iterator[Ref]:
    """Every reference `command` makes, by the handler's declaration, in field order."""
    for name, spec in refs.items():
        yield from _walk(getattr(command, name), spec, command, name)


def _walk(value: Any, spec: Spec, owner: BaseModel, path: str) -> Iterator[Ref]:
    if value is None or isinstance(spec, Unchecked):
        return
    if isinstance(value, (tuple, list, frozenset, set)):
        for i, item in enumerate(value):
            yield from _walk(item, spec, owner, f"{path}[{i}]")
        return
    if isinstance(spec, Each):
        assert isinstance(value, BaseModel), f"{path}: a nested model was declared"
        for name, inner in spec.fields.items():
            yield from _walk(getattr(value, name), inner, value, f"{path}.{name}")
        return
    kind = spec.kind if isinstance(spec, Of) else str(getattr(owner, spec.field))
    yield Ref(kind=kind, id=value, path=path, missing=spec.missing or "")


# --- completeness ---------------------------------------------------------------------------------


def undeclared(model: type[BaseModel], refs: Mapping[str, Spec], exempt: frozenset[str] = frozenset()) -> list[str]:
    """The id-carrying fields of `model` (nested models included) that `refs` does not declare."""
    missing: list[str] = []
    for name, info in model.model_fields.items():
        if name in exempt or not _carries_ids(info.annotation):
            continue
        spec = refs.get(name)
        if spec is None:
            missing.append(name)
        elif isinstance(spec, Each):
            missing += [f"{name}.{m}" for nested in _models(info.annotation) for m in undeclared(nested, spec.fields)]
    return missing


def _parts(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _parts(get_args(tp)[0])
    if origin in (Union, types.UnionType, tuple, list, set, frozenset):
        return [p for a in get_args(tp) if a is not Ellipsis for p in _parts(a)]
    return [tp]


def _models(tp: Any) -> list[type[BaseModel]]:
    return [p for p in _parts(tp) if isinstance(p, type) and issubclass(p, BaseModel)]


def _carries_ids(tp: Any) -> bool:
    parts = _parts(tp)
    return UUID in parts or any(_carries_ids(f.annotation) for m in _models(tp) for f in m.model_fields.values())
