"""The trail's batch path computes event ids its own faster way; they must be the ids `event_uuid` gives."""

from __future__ import annotations

import random
from uuid import UUID

from domain.kernel.base import event_uuid
from projections.trail import event_uuid_of


def test_the_batch_event_id_is_the_kernels_event_uuid_for_any_aggregate_and_version() -> None:
    """For 2,000 random aggregate ids and versions from 1 to a billion, `event_uuid_of` equals `event_uuid`."""
    rng = random.Random(14)
    for _ in range(2000):
        aggregate, version = UUID(int=rng.getrandbits(128), version=4), rng.randint(1, 10**9)
        assert event_uuid_of(aggregate, version) == event_uuid(aggregate, version)
