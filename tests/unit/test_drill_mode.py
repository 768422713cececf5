"""Drill mode (演练模式) at the edges that need no database: the setting, and the envelope's `drill` mark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from domain.kernel.base import Actor, Meta
from infra.settings import Settings

pytestmark = pytest.mark.unit

NOW = datetime(2022, 1, 3, 1, 0, tzinfo=timezone.utc)


def meta(**extra: object) -> Meta:
    return Meta(actor=Actor(role="admin"), occurred_at=NOW, recorded_at=NOW, correlation_id=uuid4(), command_id="c",
                **extra)  # type: ignore[arg-type]  # the optional fields under test


def test_the_drill_setting_is_an_instant_with_its_offset() -> None:
    """DUDAO_DRILL_CLOCK reads as an aware instant; a time without an offset is refused rather than guessed."""
    start = Settings.from_env({"DUDAO_DRILL_CLOCK": "2022-01-03T09:00:00+08:00"}).drill_clock
    assert start == datetime(2022, 1, 3, 9, tzinfo=timezone(timedelta(hours=8)))
    assert Settings.from_env({}).drill_clock is None
    with pytest.raises(ValueError, match="offset"):
        Settings.from_env({"DUDAO_DRILL_CLOCK": "2022-01-03T09:00:00"})


def test_an_envelope_says_drill_only_when_written_under_the_drill_clock() -> None:
    """A drill event's stored envelope carries drill: true; any other leaves the key out, so old events read alike."""
    assert meta(drill=True).model_dump(mode="json")["drill"] is True
    plain = meta().model_dump(mode="json")
    assert "drill" not in plain and Meta.model_validate(plain).drill is None
