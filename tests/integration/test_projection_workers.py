"""Scale-out projection workers (横向扩展读模型) against the real PostgreSQL and the Tansu broker: built
from the relay's messages, their tables in schema `scaleout` equal the in-process projector's."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from psycopg import sql
from psycopg.rows import dict_row

from consumers.base import KafkaOptions, TrackedConsumer
from consumers.envelope import Delivery
from consumers.lag import consumer_lag
from consumers.projection_worker import NotPartitionLocal, ProjectionWorker, projection_topics
from consumers.szcg_export import SzcgExport
from domain import problem as pr
from domain.kernel.base import Actor, Command
from domain.structure.indicator import DefineIndicator
from domain.tasks import DefineTask
from domain.structure.person import JoinUnit, LeaveUnit, RegisterPerson, RenamePerson
from domain.structure.place import RenamePlace
from domain.structure.responsibility import AssignResponsibility, RevokeResponsibility, new_assignment_id, responsibility_id
from domain.structure.responsibility import PartyKind, Role, ScopeKind
from domain.structure.unit import RenameUnit
from infra.bootstrap import System, bootstrap
from infra.streams.cloudevents import KafkaRecord, to_kafka_record
from infra.streams.relay import Relay
from infra.demo.structure import DemoLoader, demo_clock, load_structure, scenario
from infra.runtime.embedded import EmbeddedKafka
from infra.commands.service import CommandService
from projections.base import Projection
from projections.structure import list_places, list_units
from tests.support.waiting import wait_until
from tests.support.problem_world import build_world, photo

pytestmark = pytest.mark.integration

ADMIN = Actor(person_id=uuid4(), role="admin", name="测试管理员")
DEADLINE_S = 45.0
PARTITIONS = 4




@pytest.fixture
def system(database_url: str, clock: Any) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


def history(system: System) -> None:
    """The 高安 demo structure, then renames, superseded and revoked leads, people joining and leaving, a 包保人."""
    data = scenario()
    clock = demo_clock(data)
    loader = DemoLoader(CommandService(system.app, clock), clock)
    load_structure(loader, data)
    campaign = loader.campaign_id
    system.projector.catch_up()
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        grids = [p["place_id"] for p in list_places(conn, campaign) if p["place_kind"] == "grid"]
        depts = [u["unit_id"] for u in list_units(conn, campaign) if u["unit_kind"] == "department"]

    def send(cmd: Command) -> None:
        system.service.handle(cmd, ADMIN)

    def assign(scope: UUID, party: UUID, role: Role, scope_kind: ScopeKind = "place", party_kind: PartyKind = "unit") -> UUID:
        cmd = AssignResponsibility(command_id=str(uuid4()), campaign_id=campaign, scope_kind=scope_kind,
                                   scope_id=scope, party_kind=party_kind, party_id=party, role=role,
                                   reason="职能调整")
        send(cmd)
        return new_assignment_id(responsibility_id(campaign, scope_kind, scope), cmd.command_id)

    for i, grid in enumerate(grids[:12]):
        assign(grid, depts[(i + 5) % len(depts)], "lead")
        co = assign(grid, depts[(i + 7) % len(depts)], "co")
        if i % 3 == 0:
            send(RevokeResponsibility(command_id=str(uuid4()), campaign_id=campaign, scope_kind="place", scope_id=grid,
                                      assignment_id=co, reason="职能调整"))
    for i, grid in enumerate(grids[12:17]):
        send(RenamePlace(command_id=str(uuid4()), place_id=grid, name=f"改名网格{i}"))
    for i, dept in enumerate(depts[:4]):
        send(RenameUnit(command_id=str(uuid4()), unit_id=dept, name=f"改名单位{i}"))
    people = [uuid4() for _ in range(8)]
    for i, person in enumerate(people):
        send(RegisterPerson(command_id=str(uuid4()), person_id=person, campaign_id=campaign, name=f"人员{i}"))
        send(JoinUnit(command_id=str(uuid4()), person_id=person, unit_id=depts[i % len(depts)]))
    send(LeaveUnit(command_id=str(uuid4()), person_id=people[0], unit_id=depts[0], reason="调离"))
    send(RenamePerson(command_id=str(uuid4()), person_id=people[1], name="王建国"))
    indicator, task = uuid4(), uuid4()
    send(DefineIndicator(command_id=str(uuid4()), indicator_id=indicator, campaign_id=campaign, code="3.2",
                         name="背街小巷"))
    send(DefineTask(command_id=str(uuid4()), task_id=task, campaign_id=campaign, indicator_id=indicator,
                    name="清理乱贴乱画", due_on=date(2022, 1, 31)))
    assign(task, people[2], "bao_bao", scope_kind="task", party_kind="person")
    problems(system)
    system.projector.catch_up()


def problems(system: System) -> None:
    """A second campaign with problems (问题): closed, awaiting 复查, assigned, withdrawn."""
    w = build_world(system)
    for n, steps in enumerate((6, 3, 1, 0)):
        pid = uuid4()
        w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category="sanitation",
               place_id=w[f"s{n % 3 + 1}"], description=f"路面有垃圾堆积{n}", evidence=(photo(f"b{n}"),),
               source="hotline")
        officer = "officer_a" if n % 3 < 2 else "officer_b"
        flow: list[tuple[str, type[Command], dict[str, Any]]] = [("hq", pr.AssignProblem, {}), (officer, pr.AcknowledgeProblem, {}),
                (officer, pr.SubmitRectification, {"evidence": (photo(f"a{n}"),)}),
                ("supervisor", pr.VerifyRectification, {}), ("hq", pr.CloseProblem, {})]
        for who, build, fields in flow[:min(steps, len(flow))]:
            w.send(who, build, problem_id=pid, **fields)
        if steps == 0:
            w.send("hq", pr.WithdrawProblem, problem_id=pid, reason="重复上报")


def relay_records(system: System, prefix: str) -> list[KafkaRecord]:
    """Every stored event as the relay publishes it, in notification order."""
    notifications = system.app.recorder.select_notifications(1, limit=1_000_000)
    return [to_kafka_record(system.app.decode(n), n.id, prefix) for n in notifications]


def create_topics(kafka: EmbeddedKafka, topics: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    finally:
        admin.close()


def publish(kafka: EmbeddedKafka, records: list[KafkaRecord]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    for r in records:
        producer.send(r.topic, key=r.key, value=r.value, headers=r.headers)
    producer.flush()
    producer.close()


def options(kafka: EmbeddedKafka) -> KafkaOptions:
    return KafkaOptions(kafka.bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=500, poll_timeout_ms=100,
                        max_poll_interval_ms=15000, metadata_max_age_ms=1000, max_poll_records=25)


@contextmanager
def running(*members: TrackedConsumer) -> Iterator[dict[TrackedConsumer, BaseException]]:
    """Run members in threads; yields where their crashes land; stops the rest on exit."""
    crashes: dict[TrackedConsumer, BaseException] = {}

    def target(member: TrackedConsumer) -> None:
        try:
            member.run()
        except BaseException as exc:  # noqa: BLE001 - the test inspects the crash
            crashes[member] = exc

    threads = [threading.Thread(target=target, args=(m,), daemon=True) for m in members]
    for t in threads:
        t.start()
    try:
        yield crashes
    finally:
        for m in members:
            m.stop()
        for t in threads:
            t.join(20)


@contextmanager
def end_offsets(kafka: EmbeddedKafka, topics: list[str]) -> Iterator[Callable[[], dict[tuple[str, int], int]]]:
    """A function returning the end offset of every partition of `topics`."""
    probe = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    try:
        yield lambda: {(tp.topic, tp.partition): end for tp, end in probe.end_offsets(tps).items()}
    finally:
        probe.close()


def caught_up(kafka: EmbeddedKafka, database_url: str, group: str, topics: list[str]) -> None:
    """Wait until the group's stored offsets reach the end of every partition of its topics."""

    def stored() -> dict[tuple[str, int], int]:
        with psycopg.connect(database_url) as conn:
            return {(t, p): n for t, p, n in conn.execute(
                "SELECT topic, partition, next_offset FROM dudao_consumer_offsets WHERE group_id = %s", (group,))}

    with end_offsets(kafka, topics) as ends:
        wait_until(lambda: all(stored().get(tp, 0) >= end for tp, end in ends().items()), f"group {group} to catch up",
                   DEADLINE_S)


def tables(database_url: str, schema: str, projections: list[Projection]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projections' tables in `schema`, in a stable order."""
    with psycopg.connect(database_url) as conn:
        return {t: sorted(conn.execute(sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema),
                                                                               sql.Identifier(t))).fetchall(), key=repr)
                for p in projections for t in p.tables}


def read_models(system: System) -> list[Projection]:
    return [p for p in system.projector.projections if p.name in ("matrix", "structure", "ledger")]


class Killed(BaseException):
    """Stands for the worker process dying: a BaseException, like the signal that ends a process, because an
    Exception from a handler no longer ends the member (it becomes a dead letter)."""


class DiesMidBatch(ProjectionWorker):
    """Once it has committed a batch, dies halfway through its next batch of two or more events."""

    def process(self, batch: Any) -> Any:
        self.batch_size, self.applied = sum(len(r) for r in batch.values()), 0
        return super().process(batch)

    def handle(self, curs: Any, delivery: Delivery) -> None:
        super().handle(curs, delivery)
        self.applied += 1
        if self.stats["batches"] >= 1 and self.batch_size >= 2 and self.applied == self.batch_size // 2:
            raise Killed(f"killed after {self.applied} of {self.batch_size} events")


def test_three_workers_one_killed_mid_batch_build_the_same_tables_as_the_projector(
        system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """Three members share the partitions; one dies mid-batch; the survivors take over and the scaleout tables equal the in-process ones."""
    history(system)
    projections = read_models(system)
    expected = tables(system.database_url, "public", projections)
    records, topics, group = relay_records(system, prefix), projection_topics(projections, prefix), f"{prefix}-proj"
    create_topics(kafka, topics)
    doomed, *survivors = members = [
        cls(system.database_url, options(kafka), read_models(system), group_id=group, prefix=prefix)
        for cls in (DiesMidBatch, ProjectionWorker, ProjectionWorker)]
    doomed.create_tables()
    with running(*members) as crashes:
        wait_until(lambda: sum(len(m.assigned) for m in members) == len(topics) * PARTITIONS
                   and all(m.assigned for m in members), "the three members to share the partitions", DEADLINE_S)
        half = len(records) // 2
        publish(kafka, records[:half])
        wait_until(lambda: doomed.stats["batches"] >= 1, "the doomed worker's first committed batch", DEADLINE_S)
        publish(kafka, records[half:])
        wait_until(lambda: doomed in crashes, "the doomed worker to die mid-batch", DEADLINE_S)
        caught_up(kafka, system.database_url, group, topics)
    assert isinstance(crashes[doomed], Killed) and not set(crashes) - {doomed}
    assert all(s.stats["handled"] for s in survivors)
    assert tables(system.database_url, "scaleout", projections) == expected
    assert tables(system.database_url, "public", projections) == expected  # the in-process tables were not touched


def test_the_whole_stream_delivered_twice_changes_nothing(system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """The relay's stream published a second time is skipped event by event: the tables stay equal to the projector's."""
    history(system)
    projections = read_models(system)
    expected = tables(system.database_url, "public", projections)
    records, topics, group = relay_records(system, prefix), projection_topics(projections, prefix), f"{prefix}-proj"
    create_topics(kafka, topics)
    publish(kafka, records)
    publish(kafka, records)
    worker = ProjectionWorker(system.database_url, options(kafka), projections, group_id=group, prefix=prefix)
    worker.create_tables()
    with running(worker) as crashes:
        caught_up(kafka, system.database_url, group, topics)
    assert not crashes
    handled = sum(1 for r in records if r.topic in topics)
    assert (worker.stats["handled"], worker.stats["duplicates"]) == (handled, handled)
    assert tables(system.database_url, "scaleout", projections) == expected



def test_workers_fed_by_the_relay_build_the_same_tables_and_reach_zero_lag(system: System, kafka: EmbeddedKafka,
                                                                           prefix: str) -> None:
    """End to end: the relay's transactional stream, read by two workers and the 数字城管 export, gives the projector's
    tables, a case per problem in the ledger's state, and no lag."""
    history(system)
    projections = read_models(system)
    expected = tables(system.database_url, "public", projections)
    topics, group = projection_topics(projections, prefix), f"{prefix}-proj"
    Relay(system.app, system.database_url, kafka.bootstrap, prefix, partitions=PARTITIONS).run_until()
    members: list[TrackedConsumer] = [
        ProjectionWorker(system.database_url, options(kafka), read_models(system), group_id=group, prefix=prefix)
        for _ in range(2)]
    export = SzcgExport(system.database_url, options(kafka), group_id=f"{prefix}-szcg", prefix=prefix)
    for m in (members[0], export):
        m.create_tables()

    def settled(conn: psycopg.Connection[Any]) -> bool:
        report = consumer_lag(conn, kafka.bootstrap)
        return (report.get(group, {}).get("lag") == 0 and report.get(export.group_id, {}).get("lag") == 0
                and len(report[group]["partitions"]) == len(topics) * PARTITIONS)

    with running(*members, export) as crashes, psycopg.connect(system.database_url) as conn:
        wait_until(lambda: settled(conn), "zero lag on every partition", DEADLINE_S)
    assert not crashes
    assert tables(system.database_url, "scaleout", projections) == expected
    with psycopg.connect(system.database_url) as conn:
        cases = conn.execute("SELECT c.state, l.state FROM szcg_cases c JOIN ledger_problems l USING (problem_id)"
                             " ORDER BY c.case_no").fetchall()
    assert sorted(c for c, _ in cases) == ["assigned", "closed", "rectification_submitted", "withdrawn"]
    assert all(case == ledger for case, ledger in cases)


def test_a_projection_that_reads_other_aggregates_rows_is_refused(system: System, kafka: EmbeddedKafka) -> None:
    """work_items joins a notice to its problem while applying, so building it partition by partition is refused."""
    work_items = [p for p in system.projector.projections if p.name == "work_items"]
    with pytest.raises(NotPartitionLocal):
        ProjectionWorker(system.database_url, options(kafka), work_items)

# A worker process for the SIGKILL test. It reports on stdout when it holds partitions and when it is
# in the middle of a batch (the victim then waits there, its transaction open, to be killed).
WORKER_PROCESS = """
import sys, threading, structlog
from consumers.base import KafkaOptions
from consumers.projection_worker import ProjectionWorker
from infra.bootstrap import all_projections

database_url, bootstrap, prefix, group, victim = sys.argv[1:6]
structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))

def say(line):
    print(line, flush=True)

class Worker(ProjectionWorker):
    def partitions_assigned(self, consumer, tps):
        super().partitions_assigned(consumer, tps)
        say("assigned")

    def process(self, batch):
        self.applied = 0
        offsets = super().process(batch)
        say(f"committed {self.stats['batches']}")
        return offsets

    def handle(self, curs, delivery):
        super().handle(curs, delivery)
        self.applied += 1
        if victim == "yes" and self.stats["batches"] >= 1 and self.applied == 2:
            say("mid-batch")
            threading.Event().wait(120)

projections = [p for p in all_projections() if p.name in ("matrix", "structure", "ledger")]
options = KafkaOptions(bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=500, poll_timeout_ms=100,
                       max_poll_interval_ms=15000, metadata_max_age_ms=1000, max_poll_records=10)
Worker(database_url, options, projections, group_id=group, prefix=prefix).run()
"""


class WorkerProcess:
    """A projection worker in a process of its own, its stdout lines collected by a reader thread."""

    def __init__(self, database_url: str, kafka: EmbeddedKafka, prefix: str, group: str, victim: bool,
                 log: Path) -> None:
        argv = [sys.executable, "-c", WORKER_PROCESS, database_url, kafka.bootstrap, prefix, group,
                "yes" if victim else "no"]
        with open(log, "wb") as stderr:  # the worker's own log, kept for a post-mortem
            self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                            cwd=Path(__file__).resolve().parents[2])
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def said(self, word: str) -> bool:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return any(line.startswith(word) for line in self.seen)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        self.process.wait(20)


def test_a_worker_process_killed_mid_batch_leaves_the_survivors_to_build_the_same_tables(
        system: System, kafka: EmbeddedKafka, prefix: str, tmp_path: Path) -> None:
    """SIGKILL a worker process with a batch half applied: its session expires, the others resume from the stored offsets."""
    history(system)
    projections = read_models(system)
    expected = tables(system.database_url, "public", projections)
    records, topics, group = relay_records(system, prefix), projection_topics(projections, prefix), f"{prefix}-proj"
    create_topics(kafka, topics)
    ProjectionWorker(system.database_url, options(kafka), projections, group_id=group, prefix=prefix).create_tables()
    workers = [WorkerProcess(system.database_url, kafka, prefix, group, victim=(i == 0), log=tmp_path / f"worker{i}.log")
               for i in range(3)]
    victim = workers[0]
    try:
        wait_until(lambda: all(w.said("assigned") for w in workers), "the three processes to join", DEADLINE_S)
        publish(kafka, records)
        wait_until(lambda: victim.said("mid-batch"), "the victim to be half-way through a batch", DEADLINE_S)
        victim.stop(signal.SIGKILL)
        caught_up(kafka, system.database_url, group, topics)
    finally:
        for w in workers:
            w.stop()
    assert victim.process.returncode == -signal.SIGKILL
    assert tables(system.database_url, "scaleout", projections) == expected
