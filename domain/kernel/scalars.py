"""Strict scalars (严格标量): integers, numbers and flags that a command takes only as themselves.

Lax parsing reads `"3"` as 3 and `true` as 1; a client that sends them has a bug the API should
name, not guess around (a days count of `true` is not one day). So a command's integers are
`Count`, its fractional numbers `Number` (an integer is a number; a string or a boolean is not) and
its yes/no fields `Flag`, in JSON and in Python alike. Stored events hold exactly these types, so
the strictness needs no edge of its own.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Strict

Count = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]
