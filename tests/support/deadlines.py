"""Run a call that might hang in a daemon thread, so a regression fails the test at a deadline instead of hanging the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def in_background(fn: Callable[[], T]) -> Callable[[float], T]:
    """Start `fn()` now; the returned `wait(deadline_s)` gives its result, re-raises its error, or fails the test."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread by wait()
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait(deadline_s: float) -> T:
        thread.join(deadline_s)
        if thread.is_alive():
            pytest.fail(f"still waiting after {deadline_s} s: the call is stuck")
        if "error" in box:
            raise box["error"]
        return box["value"]

    return wait


def within(deadline_s: float, fn: Callable[[], T]) -> T:
    """`fn()`'s result, or a test failure if it has not returned after `deadline_s`."""
    return in_background(fn)(deadline_s)
