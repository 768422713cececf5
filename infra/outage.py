"""Riding out an outage (停机): the processes in `infra` (API, relay, escalator, projector, supervisor) reach the
shared backoff, outage tracker and "database unavailable" error list here.

They live in `projections.outage`, so that the Kafka consumers and the dead letters, which the layers forbid
to import `infra`, decide by the same list and log outages the same way.
"""

from __future__ import annotations

from projections.outage import CONNECT_TIMEOUT_S, DATABASE_UNAVAILABLE, Backoff, Outage, is_database_unavailable

__all__ = ["CONNECT_TIMEOUT_S", "DATABASE_UNAVAILABLE", "Backoff", "Outage", "is_database_unavailable"]
