"""The relay under faults: crashes at random points, a crash between acknowledgement and checkpoint,
a broker outage while commands continue, and two relays at once. Each time: exactly once.

The tests share one broker per module, each under a topic prefix of its own; the outage test stops and
restarts a broker of its own."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psutil
import pytest
import structlog

from domain.structure.campaign import RenameCampaign, StartCampaign
from infra.bootstrap import System
from infra.runtime.embedded import EmbeddedKafka
from infra.streams.relay import PublishFailed, Relay
from tests.integration.test_relay import (HQ, assert_exactly_once, head, make_relay, mixed_events, read_topics,
                                          relay_position, stored_ids, system, write_events)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
__all__ = ["system"]  # a fixture shared with test_relay

REPO = Path(__file__).resolve().parents[2]


# A parent that imports everything once and forks a relay per request: each starts in milliseconds,
# so twenty kills cost seconds, not twenty interpreter start-ups.
ZYGOTE = """
import os, signal, sys
from infra.bootstrap import load_handlers
from infra.streams.relay import main
load_handlers()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        main()
        os._exit(0)
    print(pid, flush=True)
"""


class Relays:
    """Relay processes (`infra.streams.relay.main`) forked on demand, all logging JSON lines to `log_path`."""

    def __init__(self, system: System, kafka: EmbeddedKafka, prefix: str, log_path: Path, batch_size: int = 100) -> None:
        env = {**os.environ, "DUDAO_DATABASE_URL": system.database_url, "DUDAO_KAFKA_BOOTSTRAP": kafka.bootstrap,
               "DUDAO_TOPIC_PREFIX": prefix, "DUDAO_RELAY_BATCH_SIZE": str(batch_size), "DUDAO_RELAY_STANDBY_SECONDS": "0.1",
               "DUDAO_LOG_FORMAT": "json", "DUDAO_CREATE_TABLES": "n"}
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.parent = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=REPO, env=env, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=log)

    def spawn(self) -> int:
        assert self.parent.stdin and self.parent.stdout
        self.parent.stdin.write(b"\n")
        self.parent.stdin.flush()
        return int(self.parent.stdout.readline())

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def stop(self, pid: int, sig: int = signal.SIGKILL) -> None:
        os.kill(pid, sig)
        wait_until(lambda: not self.alive(pid), f"relay {pid} to exit", 15, interval_s=0.01)

    def close(self) -> None:
        assert self.parent.stdin
        self.parent.stdin.close()
        self.parent.wait(10)


def log_events(log_path: Path) -> list[str]:
    found = []
    for line in log_path.read_text().splitlines():
        try:
            found.append(json.loads(line)["event"])
        except (ValueError, KeyError, TypeError):
            continue
    return found


def test_a_relay_killed_twenty_times_at_random_points_still_publishes_every_event_once(
        system: System, kafka: EmbeddedKafka, prefix: str, tmp_path: Path, rng: random.Random) -> None:
    """SIGKILL lands 20 times in the middle of publication; after the last restart each event is on Kafka once."""
    write_events(system, mixed_events(6_000, seed=21))
    relays = Relays(system, kafka, prefix, tmp_path / "relay.log")
    try:
        for _ in range(20):
            if head(system) - relay_position(system) < 600:
                write_events(system, mixed_events(1_500, seed=rng.randrange(10**6)))
            target = relay_position(system) + rng.randint(1, 250)
            pid = relays.spawn()
            wait_until(lambda: relay_position(system) >= target or not relays.alive(pid),  # noqa: B023  # waited on before the loop moves on
                       "relay progress", 30, interval_s=0.002)
            assert relays.alive(pid), relays.log_path.read_text()[-2000:]
            time.sleep(rng.uniform(0, 0.03))  # the kill point: somewhere inside the next batch
            relays.stop(pid)
        pid = relays.spawn()
        wait_until(lambda: relay_position(system) >= head(system), "the last relay to catch up", 60)
        relays.stop(pid, signal.SIGTERM)
    finally:
        relays.close()
    assert log_events(relays.log_path).count("relay_active") == 21
    assert_exactly_once(read_topics(kafka.bootstrap, prefix), stored_ids(system))


class CrashBeforeCheckpoint(Relay):
    """A relay whose first checkpoint write fails after the broker acknowledged the batch."""

    crashed = False

    def _record_position(self, lock: Any, position: int) -> None:
        if not self.crashed:
            self.crashed = True
            raise PublishFailed("simulated crash between acknowledgement and checkpoint")
        super()._record_position(lock, position)


def test_a_batch_acknowledged_but_not_checkpointed_is_skipped_on_resume_not_republished(
        system: System, kafka: EmbeddedKafka, prefix: str) -> None:
    """The partition tails show the unrecorded batch is on the broker, so the resumed relay skips all of it."""
    write_events(system, mixed_events(1_200, seed=5))
    with structlog.testing.capture_logs() as logs:
        relay = CrashBeforeCheckpoint(system.app, system.database_url, kafka.bootstrap, prefix, batch_size=500)
        relay.run_until()
    assert relay.crashed
    batches = [entry for entry in logs if entry["event"] == "relay_batch"]
    assert batches[0]["skipped"] == 500 and batches[0]["count"] == 0
    assert_exactly_once(read_topics(kafka.bootstrap, prefix), stored_ids(system))


def keep_writing(system: System, stop: threading.Event, rng: random.Random) -> None:
    """Commands keep arriving: new campaigns and renames, one every ~20 ms."""
    ids: list[UUID] = []
    n = 0
    while not stop.is_set():
        n += 1
        if n % 3 == 1 or not ids:
            ids.append(uuid4())
            system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=ids[-1], name=f"活动{n}",
                                                jurisdiction="高安市", launched_on=date(2021, 12, 3)), HQ)
        else:
            system.service.handle(RenameCampaign(command_id=str(uuid4()), campaign_id=rng.choice(ids),
                                                 name=f"活动{n}"), HQ)
        stop.wait(0.02)


# The broker stays down at least this long, and until the relay has failed to reach it twice (its first
# reconnect failed too) and 100 commands were handled meanwhile: a longer outage proves nothing more.
OUTAGE_S = 5.0


def test_a_broker_outage_loses_nothing_and_duplicates_nothing(
        system: System, own_kafka: EmbeddedKafka, prefix: str, rng: random.Random) -> None:
    """While the broker is down (5 s and two failed attempts at least) commands go on and the position stays put;
    after it returns (empty: memory storage) every event after the position is published once."""
    kafka = own_kafka
    stop_writing = threading.Event()
    with structlog.testing.capture_logs() as logs:
        # A 3 s broker timeout instead of 10 s: the relay gives up on the dead broker sooner, nothing else changes.
        relay = make_relay(system, kafka, prefix, poll_seconds=0.05, timeout_s=3.0)
        threads = [threading.Thread(target=relay.run_forever, daemon=True),
                   threading.Thread(target=keep_writing, args=(system, stop_writing, rng), daemon=True)]

        def broker_errors() -> int:
            return sum(entry["event"] == "relay_broker_error" for entry in list(logs))

        for t in threads:
            t.start()
        try:
            wait_until(lambda: relay_position(system) >= 30, "the relay to start publishing", 20)
            errors_before = broker_errors()
            # The broker dies (a graceful stop would wait 5 s for its connected clients, then kill it all the same).
            kafka.process.kill()
            kafka.process.wait()
            down_since = time.monotonic()
            wait_until(lambda: broker_errors() > errors_before, "the relay to find the broker gone", 30)
            frozen, head_at_stop = relay_position(system), head(system)
            wait_until(lambda: time.monotonic() - down_since >= OUTAGE_S and broker_errors() >= errors_before + 2
                       and head(system) > head_at_stop + 100,
                       f"{OUTAGE_S} s of outage, a failed reconnect and 100 commands handled during it", 60)
            assert relay_position(system) == frozen, "the position moved while the broker was down"
            kafka.restart()
            head_at_restart = head(system)
            wait_until(lambda: head(system) > head_at_restart + 10, "commands after the broker's return", 20)
            stop_writing.set()
            threads[1].join(10)
            wait_until(lambda: relay_position(system) >= head(system), "the relay to catch up", 40)
        finally:
            stop_writing.set()
            relay.stop()
            threads[0].join(15)
    expected = {eid: nid for eid, nid in stored_ids(system).items() if nid > frozen}
    assert_exactly_once(read_topics(kafka.bootstrap, prefix), expected)


def test_of_two_relays_only_one_publishes_and_the_standby_takes_over_when_it_dies(
        system: System, kafka: EmbeddedKafka, prefix: str, tmp_path: Path) -> None:
    """Two relay processes: one holds the lock and publishes, the other waits; SIGKILL the first, the second finishes.

    Both must have taken their roles before the killing starts (a second process still starting on a busy machine
    proves nothing), and the history grows after that, on a writer thread still writing when the first relay is killed
    (a relay woken by each commit keeps pace with a writer that has finished), so it is killed in the middle of it."""
    write_events(system, mixed_events(6_000, seed=9))
    relays = [Relays(system, kafka, prefix, tmp_path / "a.log"), Relays(system, kafka, prefix, tmp_path / "b.log")]
    try:
        pids = [r.spawn() for r in relays]

        def roles() -> tuple[int, int] | None:
            logs = [log_events(r.log_path) for r in relays]
            active = [i for i in (0, 1) if "relay_active" in logs[i]]
            waiting = [i for i in (0, 1) if "relay_standby" in logs[i]]
            return (active[0], waiting[0]) if len(active) == 1 and len(waiting) == 1 else None

        taken = wait_until(roles, "one relay active and the other standing by", 60, interval_s=0.05)
        assert taken is not None  # wait_until returns only a truthy value
        active, standby = taken
        first = head(system)
        writer = threading.Thread(target=write_events, args=(system, mixed_events(20_000, seed=10), 100))
        writer.start()
        try:
            wait_until(lambda: relay_position(system) >= first + 1_000, "publication to go on", 30, interval_s=0.002)
            relays[active].stop(pids[active])
            killed_at, before = relay_position(system), log_events(relays[standby].log_path)
        finally:
            writer.join(120)
        assert "relay_standby" in before and "relay_batch" not in before
        assert killed_at < head(system), "the first relay finished before it was killed"
        wait_until(lambda: relay_position(system) >= head(system), "the standby to finish", 30)
        relays[standby].stop(pids[standby], signal.SIGTERM)
    finally:
        for r in relays:
            r.close()
    assert "relay_active" in log_events(relays[standby].log_path)
    assert_exactly_once(read_topics(kafka.bootstrap, prefix), stored_ids(system))
