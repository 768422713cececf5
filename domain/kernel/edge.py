"""The edge (边界): where input from outside becomes a command, and how its refusals read.

A command is checked strictly when it is validated — from an HTTP body, a CLI argument or code —
and only then. The kernel's value types (text kinds, instants, days) also describe events and
states, and a stored event must always read back as it was written: events are facts, and a rule
added later must not make yesterday's log unreadable (a poison event is handled by the readers'
dead letters, not by refusing to decode it). So those types apply their rules only while a
`Command` is being validated: `Command` opens the edge around its own validation (`at_the_edge`),
and every nested value model validated inside it (a visit's findings, a bulletin's lists) is
checked with it. Reading a query parameter opens the edge the same way.

`describe` turns the validation errors of a refused input into the one error of the API: a
machine code (`control_character`, `naive_timestamp`, `time_out_of_range`, `time_format`,
`unknown_time_zone`, else `invalid_input`) and zh-CN/en messages naming the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic_core import PydanticCustomError

T = TypeVar("T")

_AT_THE_EDGE: ContextVar[bool] = ContextVar("dudao_at_the_edge", default=False)


@contextmanager
def at_the_edge() -> Iterator[None]:
    """While inside, the kernel's edge rules apply to every value validated (a command, a query parameter)."""
    token = _AT_THE_EDGE.set(True)
    try:
        yield
    finally:
        _AT_THE_EDGE.reset(token)


def is_at_the_edge() -> bool:
    return _AT_THE_EDGE.get()


def edge_rule(check: Callable[[T], T]) -> Callable[[T], T]:
    """`check` applied only at the edge; elsewhere (a stored event being read) the value passes as it is."""

    def rule(value: T) -> T:
        return check(value) if is_at_the_edge() else value

    rule.__name__ = check.__name__
    rule.__doc__ = check.__doc__
    return rule


# code → (zh, en) message templates; `{fields}` is the list of refused fields.
MESSAGES: dict[str, tuple[str, str]] = {
    "control_character": ("{fields} 含有不允许的控制字符（如 NUL、单行文本中的换行、方向控制符）",
                          "{fields}: contains a control character that is not allowed "
                          "(e.g. NUL, a line break in single-line text, a direction override)"),
    "naive_timestamp": ("{fields} 须带时区偏移（如 2021-12-03T09:00:00+08:00）",
                        "{fields}: a timestamp needs a UTC offset (e.g. 2021-12-03T09:00:00+08:00)"),
    "time_out_of_range": ("{fields} 须在 2000-01-01 至 2100-01-01（UTC）之间",
                          "{fields}: must lie between 2000-01-01 and 2100-01-01 (UTC)"),
    "time_format": ("{fields} 须为 ISO 8601 格式的日期或时间字符串（不接受数字）",
                    "{fields}: must be an ISO 8601 date or date-time string (numbers are not accepted)"),
    "unknown_time_zone": ("{fields} 不是 IANA 时区数据库中的时区（如 Asia/Shanghai）",
                          "{fields}: not a time zone of the IANA database (e.g. Asia/Shanghai)"),
}
INVALID_INPUT = ("invalid_input", "输入数据不合法", "invalid input")
# pydantic's own error types that mean one of ours (a lone surrogate never reaches our rule: pydantic refuses it)
ALIASES = {"timezone_aware": "naive_timestamp", "string_unicode": "control_character"}


def refusal(code: str, message: str, **context: Any) -> PydanticCustomError:
    """A validation error with one of the edge's codes (its `type`), to raise from a value's rule."""
    assert code in MESSAGES, code
    return PydanticCustomError(code, message, context)


def code_of(error_type: str) -> str | None:
    """The edge code a pydantic error type stands for, if any."""
    code = ALIASES.get(error_type, error_type)
    return code if code in MESSAGES else None


def field_name(loc: Sequence[Any]) -> str:
    """`("body", "findings", 0, "description")` → `findings[0].description` (the request part left out)."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def describe(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """(code, message_zh, message_en) of a refused input: an edge code when every error is of that one kind."""
    codes = {code_of(str(e.get("type", ""))) for e in errors}
    if len(codes) != 1 or None in codes:
        return INVALID_INPUT
    code = codes.pop()
    assert code is not None
    fields = ", ".join(dict.fromkeys(field_name(e.get("loc", ())) for e in errors))
    zh, en = MESSAGES[code]
    return code, zh.format(fields=fields), en.format(fields=fields)
