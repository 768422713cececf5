"""Rankings (排名) of evaluation figures: best first by the figure's direction, stable under ties, nothing-due left out;
figures say "—" (None) when nothing was due; evaluation periods (周, 月, 双月, custom, to date)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings, strategies as st

from domain.consequences.ranking import UnitRate, best_first, tie_break
from projections.metrics import evaluation_period, figure, rank

pytestmark = pytest.mark.unit


def row(name: str, numerator: int, denominator: int, metric: str = "on_time_closure_rate",
        key: UUID | None = None) -> dict[str, Any]:
    return {"key": key or uuid4(), "name": name, "code": None, "figures": {metric: figure(numerator, denominator)}}


def test_equal_rates_are_listed_by_name_then_id_and_nothing_due_is_not_ranked() -> None:
    """0.5 for 乙 and 甲 (same value): 乙 before 甲 by code point; 0/0 is left out; ranks are positions 1, 2, 3."""
    rows = [row("乙网格", 1, 2), row("甲网格", 2, 4), row("丙网格", 3, 3), row("丁网格", 0, 0)]
    ranked = rank(rows)
    assert [(r["rank"], r["name"]) for r in ranked] == [(1, "丙网格"), (2, "乙网格"), (3, "甲网格")]  # 乙 U+4E59 < 甲 U+7532


def test_a_lower_is_better_figure_ranks_the_lowest_first() -> None:
    """超期未处置率: 0/4 ranks above 1/4 above 3/4."""
    metric = "overdue_open_rate"
    ranked = rank([row("b", 1, 4, metric), row("c", 3, 4, metric), row("a", 0, 4, metric)], metric)
    assert [r["name"] for r in ranked] == ["a", "b", "c"]


names = st.sampled_from(["一网格", "二网格", "三网格", "市城管局", "市住建局"])
values = st.tuples(st.integers(0, 4), st.integers(0, 4)).map(lambda t: (min(t), max(t)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, values), min_size=1, max_size=12), st.randoms())
def test_a_ranking_does_not_depend_on_the_order_it_was_read_in(groups: list[tuple[str, tuple[int, int]]],
                                                               rng: Any) -> None:
    """Shuffling the groups never changes the ranking; within a tie the order is (name, id), as the bulletin's."""
    rows = [row(n, a, b) for n, (a, b) in groups]
    shuffled = rows[:]
    rng.shuffle(shuffled)
    first, second = rank(rows), rank(shuffled)
    assert first == second
    for before, after in zip(first, first[1:], strict=False):
        if before["value"] == after["value"]:
            assert tie_break(before["name"], before["key"]) <= tie_break(after["name"], after["key"])
        else:
            assert before["value"] > after["value"]


def test_the_bulletin_and_the_metrics_rank_alike() -> None:
    """The bulletin's best-first order of UnitRates equals the metrics ranking of the same 按期结案率 figures."""
    ids = [uuid4() for _ in range(4)]
    rates = [UnitRate(unit_id=i, name=n, on_time_rate=a / b, due=b, closed_on_time=a)
             for i, n, (a, b) in zip(ids, ["丙", "甲", "乙", "丁"], [(1, 2), (2, 4), (3, 3), (0, 2)], strict=True)]
    rows = [row(r.name, r.closed_on_time, r.due, key=r.unit_id) for r in rates]
    assert [r.unit_id for r in best_first(rates)] == [r["key"] for r in rank(rows)]


def test_a_figure_with_nothing_due_has_no_value() -> None:
    """0/0 is None (shown —), never 0 %; 1/4 is 0.25 with its numerator and denominator."""
    assert figure(0, 0) == {"value": None, "numerator": 0, "denominator": 0}
    assert figure(1, 4) == {"value": 0.25, "numerator": 1, "denominator": 4}


def test_evaluation_periods_are_weeks_months_two_month_blocks_ranges_or_to_date() -> None:
    """Week Mon–Sun, calendar month, 双月 Nov–Dec, a custom range with its last day included, the campaign to a day."""
    day = date(2021, 12, 29)
    assert (evaluation_period("week", day).start, evaluation_period("week", day).end) == (date(2021, 12, 27),
                                                                                           date(2022, 1, 3))
    assert (evaluation_period("month", day).start, evaluation_period("month", day).end) == (date(2021, 12, 1),
                                                                                             date(2022, 1, 1))
    assert evaluation_period("two_month", day).start == date(2021, 11, 1)
    custom = evaluation_period("custom", day, date(2021, 12, 27), date(2021, 12, 31))
    assert (custom.start, custom.end) == (date(2021, 12, 27), date(2022, 1, 1))
    to_date = evaluation_period("all", day, launched_on=date(2021, 12, 3))
    assert (to_date.start, to_date.end, to_date.label_zh) == (date(2021, 12, 3), date(2021, 12, 30), "创建以来（截至12月29日）")
    with pytest.raises(ValueError):
        evaluation_period("custom", day, date(2021, 12, 31), date(2021, 12, 27))
