"""`dudao escalate`: the escalator process (督办引擎), standing by until it holds the escalator lock.

`register(app)` adds the command to the CLI. Several may run: one is active, the others take over
within `--poll` seconds when it dies. `--once` ticks once (if no other escalator is active) and exits.
"""

from __future__ import annotations

import signal
from types import FrameType

import typer

from infra.bootstrap import bootstrap_from_settings
from infra.escalator.engine import Escalator
from infra.cli import load_settings


def register(app: typer.Typer) -> None:
    @app.command()
    def escalate(
        once: bool = typer.Option(False, "--once", help="Tick once and exit (nothing if another escalator is active)."),
        interval: float = typer.Option(60.0, "--interval", min=0.1, help="Seconds between ticks."),
        poll: float = typer.Option(2.0, "--poll", min=0.1, help="Seconds between a standby's attempts to take over."),
        workers: int = typer.Option(4, "--workers", min=1, max=64, help="Work items escalated in parallel."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Judge and log the due steps, take none."),
    ) -> None:
        """Run the escalator: take every ladder step that fell due (催办 → 督办 → 通报 → 约谈 → 问责), exactly once."""
        settings = load_settings(configure_logs=True)
        system = bootstrap_from_settings(settings)
        escalator = Escalator.for_system(system, interval=interval, poll=poll, workers=workers, dry_run=dry_run)

        def stop(_signum: int, _frame: FrameType | None) -> None:
            escalator.stop()

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            escalator.run(once=once)
        except KeyboardInterrupt:
            escalator.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
            escalator.close()
            system.close()
