"""Makes every event type known to this process, whoever started it.

Event classes register themselves when their domain module is imported; a consumer process that
never imported, say, the notice module could not decode notice events. Importing every module of
the `domain` package (pure code, no I/O) covers aggregates added later without a change here.
"""

from __future__ import annotations

import importlib
import pkgutil

import domain


def load_events() -> None:
    """Import every module of the domain package and its sub-packages, registering every event class."""
    for info in pkgutil.walk_packages(domain.__path__, prefix="domain."):
        importlib.import_module(info.name)
