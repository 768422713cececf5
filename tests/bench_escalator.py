"""`python -m tests.bench_escalator`: the escalator's tick time over 100k open work items.

The work-item rows are inserted directly in bulk (no events), so the figures are the escalator's
own work: one candidate query, judging each candidate by the domain's ladder rules, and saving
each item's next due instant. Printed: a cold tick (an empty schedule, as on the first start or
after a policy change: every open item counts as changed), the first tick of a new escalator
process over the kept schedule (a restart), a warm tick that finds few due steps, and one that
finds many. Ticks run as a dry run (the due steps are counted, not taken): taking a step is an
ordinary command, measured by `make bench`. The cold tick is also printed as a figure against
issue 14's target (< 1 s). Not a test: nothing asserts a speed.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import structlog

from domain.kernel.calendar import CHINA_TZ
from infra.bootstrap import System, bootstrap
from infra.clock import SimulatedClock
from infra.runtime.embedded import start_postgres
from infra.escalator.engine import Escalator, TickReport
from tests.bench import Figure, Run, load, table

ITEMS = 100_000
FEW, MANY = 100, 10_000
NOW = datetime(2022, 3, 1, 10, 0, tzinfo=CHINA_TZ)  # a Tuesday


def insert_items(system: System, campaign_id: UUID) -> None:
    """100k open problems: FEW fall due at NOW, MANY more a week later, the rest weeks to months ahead."""
    with psycopg.connect(system.database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY work_items (item_kind, item_id, campaign_id, responsible_unit_id, summary, state,"
                      " opened_at, deadline, row_version) FROM STDIN") as copy:
            for i in range(ITEMS):
                if i < FEW:
                    deadline = NOW + timedelta(hours=22)  # the reminder (deadline − 1 working day) is due at NOW
                elif i < FEW + MANY:
                    deadline = NOW + timedelta(days=8)
                else:
                    deadline = NOW + timedelta(days=20 + i % 60)
                copy.write_row(("problem", uuid4(), campaign_id, uuid4(), f"基准问题{i}", "assigned",
                                NOW - timedelta(days=3), deadline, i + 1))
        # As if the projection had applied events up to the last row's version.
        cur.execute("UPDATE dudao_projection_positions SET position = %s WHERE name = 'work_items'", (ITEMS,))


def timed(escalator: Escalator) -> tuple[TickReport, float]:
    started = time.perf_counter()
    report = escalator.tick()
    return report, time.perf_counter() - started


def line(label: str, report: TickReport, seconds: float) -> str:
    return (f"{label:<34} {seconds * 1000:>9,.0f} ms   candidates judged {report.items_read:>7,}"
            f"   due steps {report.due:>6,}")


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    run = Run(started=datetime.now().astimezone().isoformat(timespec="seconds"), size=ITEMS, load_before=load(),
              cores=os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres(Path(tmp) / "pg")
        try:
            clock = SimulatedClock(NOW)
            system = bootstrap(server.uri, clock=clock)
            insert_items(system, uuid4())
            escalator = Escalator.for_system(system, dry_run=True)
            print(f"escalator tick over {ITEMS:,} open work items (dry run: due steps counted, not taken),"
                  f" load {run.load_before}")
            cold = timed(escalator)
            print(line("cold (empty schedule)", *cold))
            escalator.close()
            escalator = Escalator.for_system(system, dry_run=True)
            print(line("restart (new escalator, same now)", *timed(escalator)))
            print(line("warm, few due", *timed(escalator)))
            clock.set(NOW + timedelta(days=7))
            print(line("first tick a week later (many due)", *timed(escalator)))
            print(line("warm, many due", *timed(escalator)))
            escalator.close()
            system.close()
        finally:
            server.stop()
    run.add(Figure("escalator", f"cold tick over {ITEMS:,} open items", cold[1] * 1000, "ms", target=1000.0,
                   lower_is_better=True, note=f"{cold[0].items_read:,} candidates read and judged in full"))
    print(table(run))


if __name__ == "__main__":
    main()
