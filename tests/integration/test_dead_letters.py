"""Dead letters (死信) of the projector against the real PostgreSQL: an event a projection cannot apply
is set aside, that projection waits just before it, every other one goes on, and an operator retries
or skips it with a recorded reason."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from structlog.testing import capture_logs
from typer.testing import CliRunner

from domain import problem as pr
from infra.cli.main import app
from infra.http.app import create_app
from infra.streams.status import status
from infra.store.projector import Projector
from projections import dead_letters as dl
from tests.support.poison import store_transfer_request_with_nul
from tests.support.problem_world import World, report_at

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
POISONED = {"ledger", "work_items", "trail", "metrics"}  # the read models that store a transfer request's reason (the trail and the metrics keep it too)


def poisoned_world(w: World) -> tuple[int, int]:
    """A problem handed to 城管局, then its NUL transfer request, then a later good report; (poison, head)."""
    pid = report_at(w, "s1")
    w.send("hq", pr.AssignProblem, problem_id=pid)
    poison = store_transfer_request_with_nul(w.system.app, pid, w["unit_a"])
    report_at(w, "s3")
    return poison, w.log_head()


def positions(w: World) -> dict[str, int]:
    return {p.name: w.system.projector.position(p) for p in w.system.projector.projections}


def letters(w: World, **filters: Any) -> list[dict[str, Any]]:
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        return dl.listing(conn, **filters)


def wait_until(condition: Callable[[], bool], what: str, alive: threading.Thread | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    pause = threading.Event()
    while not condition():
        assert alive is None or alive.is_alive(), f"the projector exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)


@contextmanager
def running(projector: Projector) -> Iterator[threading.Thread]:
    """Run the projector's loop in a thread, as `dudao project run` does; stop it on exit."""
    thread = threading.Thread(target=projector.run_forever, kwargs={"poll_seconds": 0.05}, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        projector.stop()
        thread.join(20)


def test_a_poison_event_waits_in_a_dead_letter_while_the_other_projections_reach_the_head(world: World) -> None:
    """A stored 申请转办 whose reason holds a NUL leaves one open dead letter per projection that stores it, each
    waiting just before it, while every other projection reaches the head and the projector keeps running."""
    poison, head = poisoned_world(world)
    healthy = {p.name for p in world.system.projector.projections} - POISONED
    with running(world.system.projector) as thread:
        wait_until(lambda: all(positions(world)[n] == head for n in healthy)
                   and {d["reader"] for d in letters(world)} == POISONED, "the healthy projections and a dead letter for each poisoned one",
                   alive=thread)
        assert thread.is_alive()
    found = letters(world, state="open")
    assert {(d["reader_kind"], d["reader"], d["position"], d["event_type"], d["state"]) for d in found} == {
        ("projection", name, poison, pr.TransferRequested.event_name, "open") for name in POISONED}
    assert all(d["error_class"] and d["attempts"] >= 1 and d["event_id"].endswith(":3") for d in found)
    assert {n: p for n, p in positions(world).items() if n in POISONED} == {n: poison - 1 for n in POISONED}


def test_skipping_a_dead_letter_records_who_and_why_and_moves_the_projection_past_it(world: World) -> None:
    """`skip` marks the dead letter skipped with the operator and reason and moves the position past it in the same
    transaction; the projection then reaches the head, and a rebuild honours the recorded skip."""
    poison, head = poisoned_world(world)
    projector = world.system.projector
    projector.catch_up()
    ledger = next(p for p in projector.projections if p.name == "ledger")
    projector.skip("ledger", poison, reason="转办理由含控制字符，已电话核实", by="张三")
    assert projector.position(ledger) == poison
    [skipped] = letters(world, reader="ledger")
    assert (skipped["state"], skipped["reason"], skipped["resolved_by"]) == ("skipped", "转办理由含控制字符，已电话核实", "张三")
    assert skipped["resolved_at"] is not None
    projector.catch_up()
    assert projector.position(ledger) == head
    projector.rebuild(ledger)
    assert projector.position(ledger) == head
    assert [d["state"] for d in letters(world, reader="ledger")] == ["skipped"]


def test_a_rebuild_sets_a_poison_event_aside_the_same_way(world: World) -> None:
    """Rebuilding a projection from zero stops just before the poison event with one open dead letter (logged once as
    an error; a later failure there counts an attempt), and returns."""
    poison, _ = poisoned_world(world)
    projector = world.system.projector
    ledger = next(p for p in projector.projections if p.name == "ledger")
    with capture_logs() as logged:
        projector.rebuild(ledger)
        assert projector.position(ledger) == poison - 1
        assert [(d["position"], d["state"]) for d in letters(world, reader="ledger")] == [(poison, "open")]
        projector.rebuild(ledger)
    [again] = letters(world, reader="ledger")
    assert (again["position"], again["state"], again["attempts"]) == (poison, "open", 2)
    assert [(e["event"], e["log_level"], e["reader"], e["position"]) for e in logged if "dead_letter" in e["event"]] == [
        ("dead_letter", "error", "ledger", poison), ("dead_letter_still_failing", "warning", "ledger", poison)]


def test_retrying_after_the_cause_is_fixed_applies_the_event_and_moves_on(world: World) -> None:
    """An event that failed because a column was too narrow (a data error) applies on `retry` once the column is
    widened: the projection reaches the head and the dead letter is marked retried with the reason given."""
    projector = world.system.projector
    with psycopg.connect(world.system.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_timeline ALTER COLUMN summary_zh TYPE varchar(4)")
    report_at(world, "s1")
    projector.catch_up()
    ledger = next(p for p in projector.projections if p.name == "ledger")
    [letter] = letters(world, reader="ledger", state="open")
    assert letter["error_class"] == "StringDataRightTruncation"
    assert projector.position(ledger) == letter["position"] - 1
    assert projector.retry("ledger", letter["position"], reason="摘要列已加宽", by="李四") is False
    with psycopg.connect(world.system.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_timeline ALTER COLUMN summary_zh TYPE text")
    assert projector.retry("ledger", letter["position"], reason="摘要列已加宽", by="李四") is True
    projector.catch_up()
    assert projector.position(ledger) == world.log_head()
    [done] = letters(world, reader="ledger")
    assert (done["state"], done["reason"], done["resolved_by"], done["attempts"]) == ("retried", "摘要列已加宽", "李四", 3)


def test_an_operator_cannot_act_on_a_dead_letter_the_projection_is_not_waiting_at(world: World) -> None:
    """Retrying or skipping a position that has no open dead letter of that projection is refused, changing nothing."""
    poison, _ = poisoned_world(world)
    projector = world.system.projector
    projector.catch_up()
    with pytest.raises(dl.NotWaiting):
        projector.skip("matrix", poison, reason="误操作", by="王五")
    with pytest.raises(dl.NotWaiting):
        projector.retry("ledger", poison + 1, reason="误操作", by="王五")
    assert [d["state"] for d in letters(world, reader="ledger")] == ["open"]


def test_a_database_hiccup_is_retried_and_never_becomes_a_dead_letter(world: World) -> None:
    """A connection killed in the middle of a batch (an operational error) leaves no dead letter: the batch is
    retried and the projection reaches the head."""
    report_at(world, "s1")
    projector = world.system.projector
    ledger = next(p for p in projector.projections if p.name == "ledger")
    original = ledger.handlers[pr.ProblemReported]
    killed: list[int] = []

    def hiccup(curs: Any, recorded: Any) -> None:
        if not killed:
            killed.append(1)
            with psycopg.connect(world.system.database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (curs.connection.info.backend_pid,))
        original(curs, recorded)

    ledger.handlers[pr.ProblemReported] = hiccup
    with running(projector) as thread:
        wait_until(lambda: projector.position(ledger) == world.log_head(), "the ledger at the head", alive=thread)
    assert killed == [1]
    assert letters(world) == []


def test_status_and_metrics_show_the_open_dead_letters_of_every_reader(world: World) -> None:
    """`status` and `GET /metrics` give each projection's open dead letters (zero included) and the oldest one's age."""
    poison, _ = poisoned_world(world)
    world.system.projector.catch_up()
    report = status(world.system.database_url, None)
    assert {n: d["open"] for n, d in report["dead_letters"]["projection"].items()} == {
        p.name: int(p.name in POISONED) for p in world.system.projector.projections}
    assert report["dead_letters"]["projection"]["ledger"]["oldest_position"] == poison
    assert report["dead_letters"]["projection"]["ledger"]["oldest_age_seconds"] >= 0
    with TestClient(create_app(world.system, kafka_bootstrap=None)) as client:
        lines = client.get("/metrics").text.splitlines()
    assert 'dudao_dead_letters_open{reader_kind="projection",reader="ledger"} 1' in lines
    assert 'dudao_dead_letters_open{reader_kind="projection",reader="matrix"} 0' in lines
    assert any(line.startswith('dudao_dead_letters_oldest_age_seconds{reader_kind="projection",reader="ledger"} ')
               for line in lines)


def test_the_cli_lists_skips_and_refuses_with_a_recorded_reason(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dudao deadletters` lists the open letters, `dudao project skip` records who and why and moves the projection,
    and `dudao project retry` of a position nothing waits at exits 1."""
    poison, _ = poisoned_world(world)
    world.system.projector.catch_up()
    monkeypatch.setenv("DUDAO_DATABASE_URL", world.system.database_url)
    runner = CliRunner()
    listed = runner.invoke(app, ["deadletters"])
    assert listed.exit_code == 0 and f"dudao project retry|skip ledger {poison}" in listed.output
    skipped = runner.invoke(app, ["project", "skip", "work_items", str(poison), "--reason", "已核实", "--by", "赵六"])
    assert skipped.exit_code == 0, skipped.output
    [letter] = letters(world, reader="work_items")
    assert (letter["state"], letter["reason"], letter["resolved_by"]) == ("skipped", "已核实", "赵六")
    refused = runner.invoke(app, ["project", "retry", "matrix", str(poison), "--reason", "误操作"])
    assert refused.exit_code == 1
    assert "skipped" in runner.invoke(app, ["deadletters", "--all"]).output
