"""Group commit (成组提交) in the event store: concurrent commands' appends share one write, each keeping its own outcome.

`GroupCommit` is exercised here with a fake batch writer standing in for the database call, so the behaviours that
matter to a command can be pinned down exactly: a lone append is written at once by its own thread; appends that
arrive while a batch is being written go together in the next one; one command's conflict fails only that command;
a failure of the whole call reaches every command of the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from infra.store.event_store import Append, GroupCommit, failure
from tests.support.deadlines import in_background
from tests.support.waiting import wait_until


def numbering(batches: list[list[str]]) -> Callable[[Sequence[Append]], None]:
    """A writer that records each batch (by the appends' first event) and numbers their events."""
    counter = iter(range(1, 1_000_000))

    def write(batch: Sequence[Append]) -> None:
        batches.append([a.events[0] for a in batch])
        for a in batch:
            a.outcome = [next(counter) for _ in a.events]

    return write


def appending(commit: GroupCommit, name: str) -> Callable[[], list[int]]:
    """A call that appends one event named `name`."""
    return lambda: commit.append(Append([name], None))


def test_a_lone_append_is_written_at_once_by_its_own_thread() -> None:
    """With no batch being written, an append is written right away, in the calling thread, as a batch of one."""
    batches: list[list[str]] = []
    writers: list[threading.Thread] = []
    write = numbering(batches)

    def recording(batch: Sequence[Append]) -> None:
        writers.append(threading.current_thread())
        write(batch)

    commit = GroupCommit(recording)
    assert commit.append(Append(["a", "a2"], None)) == [1, 2]
    assert batches == [["a"]] and writers == [threading.current_thread()]


def test_appends_arriving_while_a_batch_is_written_are_written_together_in_the_next() -> None:
    """Three appends made while the first batch is being written wait for it, then go in one batch, each with its ids."""
    batches: list[list[str]] = []
    write = numbering(batches)
    release = threading.Event()

    def slow_first(batch: Sequence[Append]) -> None:
        if not batches:
            assert release.wait(10), "the test never released the first batch"
        write(batch)

    commit = GroupCommit(slow_first)
    first = in_background(lambda: commit.append(Append(["first"], None)))
    wait_until(lambda: commit._writing, "the first batch being written", 10)
    later = [in_background(appending(commit, name)) for name in ("b", "c", "d")]
    wait_until(lambda: len(commit._queue) == 3, "three appends waiting", 10)
    release.set()
    assert first(10) == [1]
    assert sorted(wait(10)[0] for wait in later) == [2, 3, 4]
    assert batches[0] == ["first"] and sorted(batches[1]) == ["b", "c", "d"] and len(batches) == 2
    assert not commit._writing and not commit._queue


def test_one_commands_conflict_fails_only_that_command() -> None:
    """In a batch where one command's version was taken, that command gets an IntegrityError and the others their ids."""

    def write(batch: Sequence[Append]) -> None:
        for n, a in enumerate(batch):
            a.outcome = failure("23505", "duplicate key") if a.events == ["taken"] else [n + 1]

    commit = GroupCommit(write)
    with pytest.raises(IntegrityError) as refused:
        commit.append(Append(["taken"], None))
    assert type(refused.value.__cause__).__name__ == "UniqueViolation"
    assert commit.append(Append(["free"], None)) == [1]


def test_a_failure_of_the_whole_call_reaches_every_command_of_the_batch() -> None:
    """When the write itself fails (a lock timeout, say), the leader and every command waiting in its batch raise it."""
    release = threading.Event()
    calls: list[int] = []

    def failing(batch: Sequence[Append]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            assert release.wait(10), "the test never released the first batch"
            _ids(batch)
            return
        raise OperationalError("lock timeout")

    commit = GroupCommit(failing)
    first = in_background(lambda: commit.append(Append(["first"], None)))
    wait_until(lambda: commit._writing, "the first batch being written", 10)
    later = [in_background(appending(commit, name)) for name in ("b", "c")]
    wait_until(lambda: len(commit._queue) == 2, "two appends waiting", 10)
    release.set()
    assert first(10) == [1]
    for wait in later:
        with pytest.raises(OperationalError, match="lock timeout"):
            wait(10)
    assert calls == [1, 2] and not commit._writing


def _ids(batch: Sequence[Append]) -> None:
    for n, a in enumerate(batch):
        a.outcome = [n + 1]
