"""The one way a test waits: on a condition, with a deadline, failing with what it waited for (STYLE.md: no
sleeps to wait). Six hand-rolled copies had drifted apart in argument order and in what a timeout said.

By default the wait polls quickly at first and then less often (10 ms growing to a quarter second): most waits end
within a few polls, while a long one — 1,000 escalation steps, a consumer group joining — no longer runs its
condition (often a query and a fresh connection) twenty times a second on the 2-core machine, taking CPU from the
very processes and threads it waits on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_INTERVAL_S = 0.01
LONGEST_INTERVAL_S = 0.25
BACKOFF = 1.5


def wait_until(condition: Callable[[], T], what: str, deadline_s: float, *, interval_s: float | None = None,
               ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """Poll `condition` until it returns something truthy, and return that; after `deadline_s` fail naming `what`.

    `interval_s` fixes the pause between polls; without it the pause grows from FIRST_INTERVAL_S to
    LONGEST_INTERVAL_S. An exception of an `ignoring` type counts as "not yet" (a server still starting, say); a
    timeout quotes the last one. Any other exception ends the wait at once.
    """
    deadline = time.monotonic() + deadline_s
    pause = FIRST_INTERVAL_S if interval_s is None else interval_s
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignoring as exc:
            last_error = exc
        else:
            if value:
                return value
        now = time.monotonic()
        if now >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}{detail}")
        time.sleep(min(pause, deadline - now))  # the last poll falls on the deadline, not a pause after it
        if interval_s is None:
            pause = min(pause * BACKOFF, LONGEST_INTERVAL_S)
