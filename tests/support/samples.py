"""Builds a valid sample instance of any pydantic model from its field types (for round-trip tests)."""

from __future__ import annotations

import enum
import re
import types
import typing
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import annotated_types
from pydantic import BaseModel

PATTERN_CANDIDATES = ("a" * 64, "image/png", "sanitation", "problem", "a", "abc", "A1", "1")
T0 = datetime(2021, 12, 14, 9, 30, tzinfo=timezone(timedelta(hours=8)))
M = TypeVar("M", bound=BaseModel)


def sample_model(cls: type[M], depth: int = 0) -> M:
    values = {}
    for name, field in cls.model_fields.items():
        values[name] = sample(field.annotation, field.metadata, depth, name)
    return cls.model_validate(values)


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None, int | None]:
    lo = hi = None
    min_len = None
    for m in metadata:
        if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
            lo = getattr(m, "ge", None) if isinstance(m, annotated_types.Ge) else m.gt + 1  # type: ignore[operator]  # our models bound numbers only
        if isinstance(m, (annotated_types.Le, annotated_types.Lt)):
            hi = getattr(m, "le", None) if isinstance(m, annotated_types.Le) else m.lt - 1  # type: ignore[operator]  # our models bound numbers only
        if isinstance(m, annotated_types.MinLen):
            min_len = m.min_length
    return lo, hi, min_len


def sample(tp: Any, metadata: list[Any] | None = None, depth: int = 0, name: str = "") -> Any:
    metadata = metadata or []
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *extra = get_args(tp)
        flat = [m for e in extra for m in (getattr(e, "metadata", None) or [e])]
        return sample(base, [*metadata, *flat], depth, name)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        return sample(options[0], metadata, depth, name)
    if origin is Literal:
        return get_args(tp)[0]
    if origin in (tuple, list, set, frozenset):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        item = sample(args[0], [], depth + 1) if args else "样例"
        values = [item] if depth < 3 else []
        return tuple(values) if origin is tuple else origin(values)
    if origin is dict:
        k, v = get_args(tp)
        return {sample(k, [], depth + 1): sample(v, [], depth + 1)}
    return _scalar(tp, metadata, depth, name)


def _scalar(tp: Any, metadata: list[Any], depth: int, name: str) -> Any:
    lo, hi, min_len = _bounds(metadata)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return sample_model(tp, depth + 1)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if tp is UUID:
        return UUID(int=(hash(name) % (1 << 64)) or 1)
    if tp is bool:
        return True
    if tp is int:
        return int(lo) if lo is not None else (int(hi) if hi is not None and hi < 1 else 1)
    if tp is float:
        return float(lo) if lo is not None else 0.5
    if tp is str:
        if any(getattr(getattr(m, "func", None), "__name__", "") == "known_time_zone" for m in metadata):
            return "Asia/Shanghai"  # a TimeZoneName: only IANA zones pass
        pattern = next((getattr(m, "pattern", None) for m in metadata if getattr(m, "pattern", None)), None)
        if pattern:
            return next(c for c in PATTERN_CANDIDATES if re.fullmatch(pattern, c))
        return "样例" * max(1, (min_len or 1))
    if tp is datetime or getattr(tp, "__name__", "") == "AwareDatetime":
        return T0
    if tp is date:
        return T0.date()
    if tp is Any or tp is object:
        return "样例"
    raise TypeError(f"no sample for {tp!r} ({name})")
