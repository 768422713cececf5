"""Text kinds (文本类型): the only string types a command may have, each with the characters it allows.

Every text field of a command is one of these, so no text reaches the store that a reader cannot
handle (a NUL byte cannot go into PostgreSQL `jsonb`; a lone surrogate cannot be encoded) or that
reads as something else (a line break inside a name, a right-to-left override hiding a file's
real name). Two kinds:

- single-line (单行): names, titles, codes, ids, items — no control character at all;
- free text (多行文本): reasons, notes, descriptions, bulletin bodies — line breaks (`\\n`) and tabs
  (`\\t`) allowed, a Windows line end (`\\r\\n`) read as `\\n`, every other control character refused.

Refused in both: C0 and C1 controls and DEL (Unicode Cc), surrogates (Cs), the line and paragraph
separators U+2028/U+2029 (Zl, Zp) and the bidirectional embedding, override and isolate marks
(U+202A–U+202E, U+2066–U+2069). Leading and trailing white space is trimmed first.

A field whose bounds differ from the named kinds below says so in its annotation, e.g.
`Annotated[str, free_text(500)]`, or a machine code `Annotated[str, single_line(64, pattern=...)]`.
The rules apply at the edge only (see `edge`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from domain.kernel.edge import is_at_the_edge, refusal

_ALWAYS_REFUSED = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_SINGLE_LINE_REFUSED = re.compile(f"[{_ALWAYS_REFUSED}\t\n\r]")
_FREE_TEXT_REFUSED = re.compile(f"[{_ALWAYS_REFUSED}\r]")


def refused_character(value: str, *, multiline: bool) -> str | None:
    """The first character `value` may not contain (as text of that kind), or None when it is clean."""
    found = (_FREE_TEXT_REFUSED if multiline else _SINGLE_LINE_REFUSED).search(value)
    return found.group() if found else None


@dataclass(frozen=True)
class TextKind:
    """A text kind with its bounds, as a field's annotation: `Annotated[str, free_text(500)]`.

    Its schema is a string schema (trimmed, bounded, optionally a pattern) followed by the kind's
    rule; tests find every text field's kind by this marker.
    """

    multiline: bool
    min_length: int | None = None
    max_length: int | None = None
    strip: bool = True
    pattern: str | None = None

    def check(self, value: str) -> str:
        if not is_at_the_edge():
            return value
        if self.multiline:
            value = value.replace("\r\n", "\n")
        char = refused_character(value, multiline=self.multiline)
        if char is not None:
            kind = "free text" if self.multiline else "single-line text"
            raise refusal("control_character", f"U+{ord(char):04X} is not allowed in {kind}",
                          character=f"U+{ord(char):04X}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        text = core_schema.str_schema(strip_whitespace=self.strip, min_length=self.min_length,
                                      max_length=self.max_length, pattern=self.pattern)
        return core_schema.no_info_after_validator_function(self.check, text)


def single_line(max_length: int | None = None, *, min_length: int | None = 1, strip: bool = True,
                pattern: str | None = None) -> TextKind:
    """Single-line text (单行): no control character at all (a pattern needs no bounds of its own)."""
    return TextKind(False, min_length, max_length, strip, pattern)


def free_text(max_length: int | None, *, min_length: int | None = 1) -> TextKind:
    """Free text (多行文本): line breaks and tabs allowed, no other control character."""
    return TextKind(True, min_length, max_length)


# single-line kinds
Name = Annotated[str, single_line(200)]
"""A name or title (名称): units, places, persons, campaigns, indicators, checklist items."""
Line = Annotated[str, single_line(500)]
"""One line of text longer than a name: a goal, a place list in a bulletin."""
CommandId = Annotated[str, single_line(128, strip=False)]
"""A client's idempotency key (指令编号): compared as given, never trimmed."""
Label = Annotated[str, single_line(min_length=None)]
"""Single-line text bounded only by the request's size: in value models whose published event schema has no bound."""
Prose = Annotated[str, free_text(None, min_length=None)]
"""Free text bounded only by the request's size, for the same value models."""

# free-text kinds
Text = Annotated[str, free_text(2000)]
"""A required reason or description (理由/描述)."""
Note = Annotated[str, free_text(2000, min_length=None)]
"""An optional remark (备注); may be empty."""
LongText = Annotated[str, free_text(4000)]
"""A longer statement: a notice's text, minutes of a talk, a decision's reasons."""
Document = Annotated[str, free_text(20000)]
"""A document's body (正文), e.g. a bulletin."""
