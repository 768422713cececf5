"""Times shown to people (时间显示) come from one formatter: Beijing time, one shape per kind of output."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain import problem as pr
from domain.escalation.notice import NoticeIssued
from domain.kernel.timefmt import format_local, format_zh, local_day_stamp, to_local
from domain.problem.assignment_notice import AssignmentNames, with_assignment_notice
from tests.unit.problem_kit import CAL, HQ, Life, cid, ctx

pytestmark = pytest.mark.unit

# 2021-12-16 18:30 UTC is already the 17th in Beijing.
LATE_UTC = datetime(2021, 12, 16, 18, 30, tzinfo=timezone.utc)


def test_an_instant_is_shown_on_the_beijing_wall_clock_whatever_zone_it_arrives_in() -> None:
    """A UTC instant late in the evening is the next morning in China, in every shape."""
    assert to_local(LATE_UTC) == LATE_UTC and to_local(LATE_UTC).utcoffset() == timedelta(hours=8)
    assert format_local(LATE_UTC) == "2021-12-17 02:30"
    assert format_zh(LATE_UTC) == "2021年12月17日 02:30"
    assert local_day_stamp(LATE_UTC) == "20211217"


def test_a_missing_time_shows_the_placeholder_the_output_asks_for() -> None:
    """A dash in timelines by default, an empty cell where the export asks for one."""
    assert format_local(None) == "—" and format_local(None, empty="") == ""


def test_another_campaign_zone_is_honoured() -> None:
    """A campaign in another zone sees its own wall clock (UTC here)."""
    assert format_local(LATE_UTC, timezone.utc) == "2021-12-16 18:30"
    assert local_day_stamp(LATE_UTC, timezone.utc) == "20211216"


def test_the_assignment_notice_prints_its_deadline_like_its_sign_by_time() -> None:
    """The 交办单 shows 整改期限 and 签收时限 in one shape, 2021年12月17日 10:00, not two."""
    life = Life().report()
    before = life.state
    emitted = life.run(pr.assign_problem, pr.AssignProblem(command_id=cid(), problem_id=life.problem_id), HQ)
    after = life.state
    assert after.deadline is not None and after.unit_id is not None
    notice = with_assignment_notice(before, emitted, ctx(HQ, life.now), CAL,
                                    AssignmentNames(unit_names={after.unit_id: "东门街道"}))[-1]
    assert isinstance(notice, NoticeIssued)
    assert f"请于{format_zh(after.deadline)}前整改到位" in notice.text_zh
    assert f"并于{format_zh(notice.ack_due_at)}前签收" in notice.text_zh
