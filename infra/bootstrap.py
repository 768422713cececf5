"""Composition root: the only place that turns settings into connections and wires the parts."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable
from datetime import datetime

from infra.clock import wall_clock
from infra.service import CommandService
from infra.store import Dudao, open_store

# Importing these registers their events (domain) and handlers (infra.commands).
COMMAND_MODULES = ("infra.commands.campaign",)


def load_handlers() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)


@dataclass
class System:
    database_url: str
    app: Dudao
    service: CommandService
    clock: Callable[[], datetime]

    def close(self) -> None:
        self.app.close()


def bootstrap(database_url: str, *, clock: Callable[[], datetime] = wall_clock, create_tables: bool = True,
              pool_size: int = 5, command_retries: int = 10) -> System:
    load_handlers()
    app = open_store(database_url, create_table=create_tables, pool_size=pool_size)
    return System(database_url, app, CommandService(app, clock, command_retries), clock)
