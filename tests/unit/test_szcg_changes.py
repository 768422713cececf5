"""The 数字城管 export's columns per problem event, without a broker: what `consumers.szcg_export.changes` sets."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest

from consumers.szcg_export import STAGES, changes
from domain.kernel.base import Actor, Meta
from domain import problem as pr

pytestmark = pytest.mark.unit

NOW = datetime(2022, 1, 3, 1, 0, tzinfo=timezone.utc)


def test_a_transferred_case_is_assigned_again_to_its_new_unit() -> None:
    """After 转办 the case is back at 'assigned' (the new unit has yet to sign) with the new unit, not left at the
    stage the old unit had reached."""
    to_unit = uuid4()
    meta = Meta(actor=Actor(role="hq_office"), occurred_at=NOW, recorded_at=NOW, correlation_id=uuid4(), command_id="t")
    event = pr.ProblemTransferred(meta=meta, problem_id=uuid4(), from_unit_id=uuid4(), to_unit_id=to_unit,
                                  reason="职能调整", mode="hq_direct")
    assert changes(event) == {"state": "assigned", "stage": STAGES["assigned"], "unit_id": to_unit}
