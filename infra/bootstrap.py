"""Composition root: the only place that turns settings into connections and wires the parts."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable
from datetime import datetime

from infra.clock import DeploymentClock, start_drill, wall_clock
from infra.commands.service import CommandService
from infra.store.projector import Projector
from infra.settings import Settings
from infra.store.event_store import DEFAULT_TIMEOUTS, Dudao, StoreTimeouts, open_store
from consumers.registry import load_events
from projections.base import Projection


def load_handlers() -> None:
    """Import every domain module (registers every event) and every module of infra.commands (handlers)."""
    import infra.commands

    load_events()
    for info in pkgutil.iter_modules(infra.commands.__path__):
        importlib.import_module(f"infra.commands.{info.name}")


def all_projections() -> list[Projection]:
    """One instance of every Projection subclass defined in the projections package."""
    import projections

    for info in pkgutil.iter_modules(projections.__path__):
        importlib.import_module(f"projections.{info.name}")
    found: list[Projection] = []
    stack = list(Projection.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.name:
            found.append(cls())
    return sorted(found, key=lambda p: p.name)


@dataclass
class System:
    database_url: str
    app: Dudao
    service: CommandService
    clock: Callable[[], datetime]
    projector: Projector

    def close(self) -> None:
        self.app.close()


def bootstrap(database_url: str, *, clock: Callable[[], datetime] = wall_clock, create_tables: bool = True,
              pool_size: int = 5, command_retries: int = 10, timeouts: StoreTimeouts = DEFAULT_TIMEOUTS) -> System:
    load_handlers()
    app = open_store(database_url, create_table=create_tables, pool_size=pool_size, timeouts=timeouts)
    projector = Projector(app, database_url, all_projections())
    if create_tables:
        projector.create_tables()
    return System(database_url, app, CommandService(app, clock, command_retries), clock, projector)


def database_url_from(settings: Settings) -> str:
    """DUDAO_DATABASE_URL when set; otherwise the embedded PostgreSQL under <var>/pg (started if needed)."""
    if settings.database_url:
        return settings.database_url
    from infra.runtime.embedded import start_postgres

    return start_postgres(settings.var_dir / "pg").uri


def store_timeouts(settings: Settings) -> StoreTimeouts:
    """The store connection bounds among the settings (lock, statement, idle, connect, pool wait)."""
    return StoreTimeouts(lock_s=settings.db_lock_timeout_seconds, statement_s=settings.db_statement_timeout_seconds,
                         idle_in_transaction_s=settings.db_idle_in_transaction_timeout_seconds,
                         connect_s=settings.db_connect_timeout_seconds, pool_wait_s=settings.db_pool_wait_seconds)


def bootstrap_from_settings(settings: Settings, **kwargs: Any) -> System:
    """A process's system: the store, the projector and the command service on the deployment's clock — the
    shared drill clock when the database holds one (DUDAO_DRILL_CLOCK starts it, refused on a real history), else
    the wall clock."""
    database_url = database_url_from(settings)
    if settings.drill_clock is not None:
        start_drill(database_url, settings.drill_clock)
    kwargs.setdefault("clock", DeploymentClock(database_url))
    kwargs.setdefault("create_tables", settings.create_tables)
    kwargs.setdefault("timeouts", store_timeouts(settings))
    return bootstrap(database_url, command_retries=settings.command_retries, **kwargs)
