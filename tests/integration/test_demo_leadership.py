"""The demo's city leadership (四套班子): December's liaison duties met, unmet, met late and exempt, shown by the
compliance read model, the escalation list per leader and each leader's duty trail after the January run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from infra.bootstrap import System, bootstrap
from infra.calendars import official_calendar
from projections import escalation_lists as el
from projections import liaison_duties as ld
from tests.support.databases import Databases
from tests.support.demo_data import Demo, copy_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(databases: Databases, loaded_demo: Demo) -> Iterator[tuple[System, dict[str, Any]]]:
    """The session's demo (loaded as `dudao demo` loads it, read models caught up), in a copy of this module's own."""
    system = bootstrap(copy_of(databases, loaded_demo, "demo_leaders").database_url, create_tables=False)
    yield system, loaded_demo.summary
    system.close()


def test_the_leadership_has_four_leaders_each_on_a_street_or_township_and_two_roads(
        demo: tuple[System, dict[str, Any]]) -> None:
    """市委, 人大, 政府 and 政协 each have a leader linked to one street or township and two roads (12 links)."""
    system, summary = demo
    leadership = summary["leadership"]
    assert (leadership["leaders"], leadership["links"]) == (4, 12)
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        rows = ld.linked_in_force(conn, UUID(summary["campaign_id"]), system.clock())
    assert {r["body"] for r in rows} == {"party_committee", "people_congress", "government", "cppcc"}


def test_december_is_met_unmet_met_late_and_exempt_as_the_scenario_says(demo: tuple[System, dict[str, Any]]) -> None:
    """陈 misses 高安大道, 刘 凤凰路; 黄's 解放路 is met late; 周 is exempt; the rest met — two unmet duties escalated."""
    _, summary = demo
    december = summary["leadership"]["december"]
    assert december["陈建华·高安大道"] == "unmet" and december["刘国平·凤凰路"] == "unmet"
    assert december["黄志勇·解放路"] == "met_late"
    assert {v for k, v in december.items() if k.startswith("周丽萍")} == {"exempt"}
    assert december["陈建华·瑞州街道"] == "met"  # by a visit to the community inside the street
    assert summary["leadership"]["unmet_duties_escalated"] == 3  # 陈, 刘, and 黄 before his late upload


def test_the_escalation_list_shows_the_open_unmet_duty_per_leader_and_not_the_resolved_ones(
        demo: tuple[System, dict[str, Any]]) -> None:
    """At the end of January 陈's unmet duty is on the list (past 通报 listing); 刘's (closed by HQ) and 黄's are not."""
    system, summary = demo
    ids = summary["leadership"]["leader_ids"]
    campaign = UUID(summary["campaign_id"])
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        def duties(name: str) -> list[dict[str, Any]]:
            return [r for r in el.open_escalations(conn, campaign, leader_id=UUID(ids[name]), at=system.clock())
                    if r["item_kind"] == "liaison_duty"]

        (chen,) = duties("陈建华")
        assert chen["level"] >= 3 and "高安大道" in chen["summary"]
        assert duties("刘国平") == [] and duties("黄志勇") == []


def test_each_leaders_trail_shows_what_happened_to_their_duties(demo: tuple[System, dict[str, Any]]) -> None:
    """黄's trail has the late visit, the unmet record and its resolution as met late; 刘's the closure by HQ with its
    reason; 周's the exemption — each with actor and both times."""
    system, summary = demo
    ids, campaign = summary["leadership"]["leader_ids"], UUID(summary["campaign_id"])
    calendar, now = official_calendar(), system.clock()
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        def trail(name: str) -> list[dict[str, Any]]:
            return ld.trail(conn, campaign, UUID(ids[name]), calendar, now)

        huang = trail("黄志勇")
        resolved = next(e for e in huang if e["entry_kind"] == "resolved")
        assert resolved["details"]["resolution"] == "met_late" and resolved["actor"]["role"] == "system"
        assert any(e["entry_kind"] == "found_unmet" for e in huang)
        liu = next(e for e in trail("刘国平") if e["entry_kind"] == "resolved")
        assert liu["details"]["resolution"] == "closed_by_hq" and "补充督查" in liu["reason"]
        zhou = trail("周丽萍")
        assert any(e["entry_kind"] == "exemption_granted" and e["reason"] for e in zhou)
        assert all(e["occurred_at"] is not None for e in zhou)
