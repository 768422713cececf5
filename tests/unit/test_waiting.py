"""The tests' one waiting helper: it must return what it waited for, and a timeout must say what that was."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.unit


def test_wait_until_returns_the_first_truthy_value_of_the_condition() -> None:
    """Polling stops at the first truthy answer, which is handed back."""
    answers: Iterator[object] = iter([None, 0, [], "ready", "later"])
    assert wait_until(lambda: next(answers), "an answer", 1.0, interval_s=0.001) == "ready"


def test_a_timeout_names_what_was_awaited() -> None:
    """A condition that never holds fails after the deadline with the awaited thing in the message."""
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for the broker to answer"):
        wait_until(lambda: False, "the broker to answer", 0.05, interval_s=0.01)


def test_listed_errors_mean_not_yet_and_the_last_is_quoted_on_timeout() -> None:
    """An `ignoring` error is retried (and quoted if the wait times out); any other error ends the wait at once."""
    calls = itertools.count()

    def flaky() -> bool:
        if next(calls) < 2:
            raise ConnectionRefusedError("not yet")
        return True

    assert wait_until(flaky, "the server", 1.0, interval_s=0.001, ignoring=(OSError,)) is True

    def refusing() -> bool:
        raise ConnectionRefusedError("still starting")

    with pytest.raises(AssertionError, match=r"waiting for the server \(last error: ConnectionRefusedError"):
        wait_until(refusing, "the server", 0.05, interval_s=0.01, ignoring=(OSError,))
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, "a division", 1.0, ignoring=(OSError,))


def test_without_an_interval_the_polls_come_quickly_then_less_often_and_the_last_on_the_deadline() -> None:
    """The default pause grows from 10 ms to a quarter second, and no pause runs past the deadline."""
    polled: list[float] = []

    def never() -> bool:
        polled.append(time.monotonic())
        return False

    with pytest.raises(AssertionError, match="timed out after 1.5 s"):
        wait_until(never, "nothing", 1.5)
    pauses = [b - a for a, b in itertools.pairwise(polled)]
    assert pauses[0] < 0.15 and 0.2 <= max(pauses) < 0.25 + 0.15  # it began quick and grew to its cap
    assert polled[-1] - polled[0] >= 1.5 - 0.05 and polled[-1] - polled[0] < 1.5 + 0.2
