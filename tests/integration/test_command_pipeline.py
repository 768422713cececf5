"""The command pipeline against the real PostgreSQL: idempotency, conflicts, nothing written on rejection."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from uuid import uuid4

import pytest

from domain.kernel.base import Actor, Conflict, Forbidden
from domain.structure.campaign import CampaignRenamed, RenameCampaign, StartCampaign
from infra.bootstrap import System, bootstrap

pytestmark = pytest.mark.integration

HQ = Actor(person_id=uuid4(), role="hq_office", name="总指挥部办公室")


@pytest.fixture
def system(database_url: str, clock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock, pool_size=10)
    yield s
    s.close()


def start(cid=None, command_id=None, name="高安市“三城同创”") -> StartCampaign:
    return StartCampaign(command_id=command_id or str(uuid4()), campaign_id=cid or uuid4(), name=name,
                         jurisdiction="江西省宜春市高安市", launched_on=date(2021, 12, 3))


def log_size(system: System) -> int:
    return system.app.recorder.max_notification_id() or 0


def test_the_same_command_delivered_twice_writes_once_and_returns_the_first_result(system: System) -> None:
    """A retried command (same command_id, same payload) writes nothing and returns the first result."""
    cmd = start()
    first = system.service.handle(cmd, HQ)
    second = system.service.handle(cmd, HQ)
    assert second.replayed and not first.replayed
    assert second.events == first.events
    assert log_size(system) == 1


def test_twenty_concurrent_deliveries_of_one_command_write_once(system: System) -> None:
    """20 threads delivering the same command at once produce exactly one stored event."""
    cmd = start()
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: system.service.handle(cmd, HQ), range(20)))
    assert log_size(system) == 1
    assert sum(not r.replayed for r in results) == 1
    assert len({tuple(e["event_id"] for e in r.events) for r in results}) == 1


def test_a_reused_command_id_with_a_different_payload_is_rejected(system: System) -> None:
    """The same command_id carrying another payload is a 409, and nothing more is written."""
    cid = uuid4()
    system.service.handle(start(cid, "k1"), HQ)
    with pytest.raises(Conflict) as err:
        system.service.handle(start(cid, "k1", name="别的名字"), HQ)
    assert err.value.code == "command_id_reused"
    assert log_size(system) == 1


def rename_outcome(system: System, cid, name: str) -> str | None:
    try:
        system.service.handle(RenameCampaign(command_id=str(uuid4()), campaign_id=cid, name=name), HQ)
        return name
    except Conflict as err:
        assert err.code == "concurrent_modification"
        return None


def test_two_writers_on_one_aggregate_lose_no_update(system: System) -> None:
    """Two writers renaming one campaign at once: both land as successive versions (or one gets 409), none is lost."""
    cid = uuid4()
    system.service.handle(start(cid), HQ)
    for round_ in range(10):
        with ThreadPoolExecutor(2) as pool:
            accepted = [n for n in pool.map(lambda n: rename_outcome(system, cid, n), [f"甲{round_}", f"乙{round_}"]) if n]
        assert accepted
    stored = list(system.app.events.get(cid))
    assert [s.originator_version for s in stored] == list(range(1, len(stored) + 1))
    assert len(stored) >= 11


def test_eight_writers_on_one_aggregate_record_every_accepted_change(system: System) -> None:
    """Under heavy contention every accepted rename is stored exactly once and rejected ones are 409s."""
    cid = uuid4()
    system.service.handle(start(cid), HQ)
    names = [f"名称{i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        accepted = [n for n in pool.map(lambda n: rename_outcome(system, cid, n), names) if n]
    stored = system.app.history(cid)
    assert sorted(s.event.name for s in stored[1:] if isinstance(s.event, CampaignRenamed)) == sorted(accepted)
    assert [s.originator_version for s in stored] == list(range(1, len(stored) + 1))


def test_a_rejected_command_writes_nothing(system: System) -> None:
    """Starting a campaign that exists is refused with a typed error and no event."""
    cid = uuid4()
    system.service.handle(start(cid), HQ)
    with pytest.raises(Conflict) as err:
        system.service.handle(start(cid), HQ)
    assert err.value.code == "campaign_exists"
    assert log_size(system) == 1


def test_a_role_without_permission_is_forbidden_and_writes_nothing(system: System) -> None:
    """A supervisor may not start a campaign."""
    with pytest.raises(Forbidden):
        system.service.handle(start(), Actor(person_id=uuid4(), role="supervisor"))
    assert log_size(system) == 0


def test_every_event_names_its_actor_and_both_times(system: System, clock) -> None:
    """The stored event carries the actor, occurred_at, recorded_at and the command id."""
    cmd = start()
    system.service.handle(cmd, HQ)
    (stored,) = system.app.history(cmd.campaign_id)
    meta = stored.event.meta
    assert meta.actor == HQ and meta.recorded_at == clock() and meta.occurred_at == clock()
    assert meta.command_id == cmd.command_id and meta.campaign_id == cmd.campaign_id
