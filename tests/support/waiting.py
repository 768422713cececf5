"""The one way a test waits: on a condition, with a deadline, failing with what it waited for (STYLE.md: no
sleeps to wait). Six hand-rolled copies had drifted apart in argument order and in what a timeout said."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, deadline_s: float, *, interval_s: float = 0.05,
               ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """Poll `condition` until it returns something truthy, and return that; after `deadline_s` fail naming `what`.

    An exception of an `ignoring` type counts as "not yet" (a server still starting, say); a timeout quotes the
    last one. Any other exception ends the wait at once.
    """
    deadline = time.monotonic() + deadline_s
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignoring as exc:
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}{detail}")
        time.sleep(interval_s)
