"""`make bench`: throughput figures on a fresh embedded PostgreSQL, printed as numbers and ratios.

Measures: command throughput through the command service with 1 and 8 client threads, and the
projection rebuild rate. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from uuid import UUID, uuid4

from domain.kernel.base import Actor
from domain.structure.campaign import StartCampaign
from domain.structure.place import RegisterPlace
from domain.structure.responsibility import AssignResponsibility
from domain.structure.unit import RegisterUnit
from infra.bootstrap import System, bootstrap
from infra.runtime.embedded import start_postgres

ADMIN = Actor(person_id=uuid4(), role="admin", name="bench")


def setup(system: System) -> tuple[UUID, UUID]:
    cid, hq = uuid4(), uuid4()
    system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=cid, name="基准测试", jurisdiction="测试市",
                                        launched_on=date(2021, 12, 3)), ADMIN)
    system.service.handle(RegisterUnit(command_id=str(uuid4()), unit_id=hq, campaign_id=cid, name="总指挥部", unit_kind="hq"), ADMIN)
    return cid, hq


def register_place_and_lead(system: System, cid: UUID, unit: UUID) -> None:
    pid = uuid4()
    system.service.handle(RegisterPlace(command_id=str(uuid4()), place_id=pid, campaign_id=cid, name=f"点位{pid.hex[:6]}",
                                        place_kind="site"), ADMIN)
    system.service.handle(AssignResponsibility(command_id=str(uuid4()), campaign_id=cid, scope_kind="place", scope_id=pid,
                                               party_kind="unit", party_id=unit, role="lead"), ADMIN)


def commands_per_second(system: System, clients: int, pairs: int) -> float:
    cid, hq = setup(system)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: register_place_and_lead(system, cid, hq), range(pairs)))
    return 2 * pairs / (time.perf_counter() - started)


def rebuild_rate(system: System) -> tuple[int, float]:
    system.projector.catch_up()
    head = system.projector.head()
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        for p in system.projector.projections:
            system.projector.rebuild(p)
        rates.append(head / (time.perf_counter() - started))
    return head, statistics.median(rates)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pg = start_postgres(Path(tmp) / "pg")
        try:
            system = bootstrap(pg.uri, pool_size=10)
            one = commands_per_second(system, 1, 500)
            eight = commands_per_second(system, 8, 1500)
            head, rate = rebuild_rate(system)
            print(f"commands/s, 1 client : {one:8.0f}")
            print(f"commands/s, 8 clients: {eight:8.0f}  ({eight / one:.2f}x of 1 client)")
            print(f"projection rebuild   : {rate:8.0f} events/s over {head} events, all {len(system.projector.projections)} projections (median of 3)")
            system.close()
        finally:
            pg.stop()


def all_benchmarks() -> None:
    """Every benchmark of the project, one after another (each starts its own servers)."""
    import importlib

    main()
    for name in ("tests.bench_visit", "tests.bench_relay", "tests.bench_latency", "tests.bench_escalator",
                 "tests.bench_metrics"):
        print(f"--- {name}")
        importlib.import_module(name).main()


if __name__ == "__main__":
    all_benchmarks()
