"""督导驾驶舱 in headless Chromium on the 高安 demo: each page logs in, shows the figures the JSON API gives the token
(the very URL the page names as its data), clicks through from a chart to the problems it counts, passes axe-core
with zero violations, works from the keyboard, and a unit officer's pages show only their unit's work. A screenshot
of each page is saved under var/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import AXE, UNIT, Site

pytestmark = pytest.mark.browser

DEMO_MONTH_END = "2022-01-31T12:00:00"  # inside the demo's story: lights, duties and escalations all vary then


def sign_in(page: Page, site: Site, who: str = "admin") -> None:
    """Keep a role's token for the session, as the login page does (the login form has a test of its own)."""
    page.context.add_init_script(f"sessionStorage.setItem('dudao.token', {json.dumps(site.tokens[who])})")


def open_page(page: Page, site: Site, path: str, who: str = "admin") -> Page:
    """Open a dashboard page as `who` and wait until its figures are on screen (data-ready), failing on its error."""
    sign_in(page, site, who)
    page.goto(site.ui(path))
    page.wait_for_selector("body[data-ready]")
    assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
    return page


def data_url(page: Page, within: str) -> str:
    """The API URL a panel says its figures come from."""
    url = page.get_attribute(f"{within} a.data-link", "data-api")
    assert url, f"no data link in {within}"
    return url


def cells(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def click_bar(page: Page, chart: str, series: int, index: int) -> None:
    """Click the centre of one bar of an ECharts chart, as a person would (the chart draws on a canvas)."""
    box = page.evaluate("""([sel, s, i]) => {
        const node = document.querySelector(sel);
        node.scrollIntoView({block: "center"});
        const layout = echarts.getInstanceByDom(node).getModel().getSeriesByIndex(s).getData().getItemLayout(i);
        const rect = node.getBoundingClientRect();
        return {x: rect.left + layout.x + layout.width / 2, y: rect.top + layout.y + layout.height / 2};
    }""", [chart, series, index])
    page.mouse.click(box["x"], box["y"])


def figure_text(f: dict[str, Any]) -> str:
    """A figure as the pages print it: "72.8%（126/173）", "—（0/0）" when there is nothing to divide."""
    value = "—" if f["value"] is None else f"{f['value'] * 100:.1f}%"
    return f"{value}（{f['numerator']}/{f['denominator']}）"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_the_login_page_refuses_a_wrong_token_and_keeps_a_good_one_for_the_session(page: Page, site: Site) -> None:
    """A wrong token is refused in words; the right one opens the 总览, and logging out forgets it."""
    page.goto(site.ui("index.html"))
    expect(page).to_have_url(re.compile(r"login\.html\?next=index\.html"))
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_contain_text("令牌无效")
    page.fill("#token", site.tokens["hq_office"])
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready='true']")
    expect(page.locator(".brand-sub")).to_have_text(site.api("/campaigns")["rows"][0]["name"])
    page.click("button.logout")
    expect(page).to_have_url(re.compile(r"login\.html"))
    assert page.evaluate("sessionStorage.getItem('dudao.token')") is None


def test_the_overview_shows_the_light_board_escalations_pending_signatures_and_red_black_list(page: Page,
                                                                                           site: Site) -> None:
    """Each tile, the levels table, the pending 签收 count and the 红黑榜 are the API's figures for this token."""
    open_page(page, site, f"index.html?as_of={DEMO_MONTH_END}")
    lights = site.api(data_url(page, "#lights"))
    tile = lambda key: page.get_attribute(f".tile-{key} .tile-value", "data-value")  # noqa: E731
    assert [tile(k) for k in ("open", "red", "yellow", "green", "unassigned", "overdue")] == [
        str(lights["open"]), *(str(lights["by_light"][k]) for k in ("red", "yellow", "green", "unassigned")),
        str(lights["overdue"])]
    escalations = site.api(data_url(page, "#levels"))
    assert tile("escalations") == str(escalations["total"])
    assert cells(page, "#levels-table tbody td:nth-child(3)") == [str(lv["open"]) for lv in escalations["overview"]["by_level"]]
    pending = site.api(data_url(page, "#pending"))
    assert tile("pending") == str(len(pending["rows"]))
    bulletins = site.api(data_url(page, "#bulletin"))
    latest = max((b for b in bulletins["rows"] if b["issued_at"]), key=lambda b: b["issued_at"])
    assert cells(page, "#red-list tbody td:nth-child(2)") == [u["name"] for u in latest["red_list"]]
    assert cells(page, "#black-list tbody td:nth-child(2)") == [u["name"] for u in latest["black_list"]]
    weeks = page.locator("#trend a.data-link").all()
    last_week = site.api(weeks[-1].get_attribute("data-api") or "")
    assert len(weeks) == 8 and cells(page, "#trend-table tbody tr:last-child td:nth-child(2)") == [
        figure_text(last_week["totals"]["figures"]["closure_rate"])]


def test_the_overview_refreshes_by_itself_and_says_how_fresh_the_read_models_are(page: Page, site: Site) -> None:
    """With ?refresh=2 the 总览 reads the API again on its own and shows the log head and the projection lag."""
    open_page(page, site, "index.html?refresh=2")
    page.wait_for_selector("#freshness[data-refreshes='2']")
    lights = site.api(data_url(page, "#lights"))
    freshness = page.locator("#freshness")
    assert freshness.get_attribute("data-log-head") == str(lights["log_head"])
    assert freshness.get_attribute("data-lag") == str(lights["log_head"] - lights["projection_position"])
    expect(freshness).to_contain_text(f"事件日志位置 {lights['log_head']}")


def test_a_red_bar_of_a_grid_opens_the_problems_it_counts_and_one_of_them(page: Page, site: Site) -> None:
    """Clicking the red part of the reddest grid's bar lists exactly its red open problems; a row opens the problem."""
    open_page(page, site, f"index.html?as_of={DEMO_MONTH_END}")
    grid = site.api(data_url(page, "#grids"))["by_grid"][0]
    assert grid["red"] > 0
    click_bar(page, "#chart-grids", 0, 0)  # series 0: red; row 0: the grid with the most red
    page.wait_for_url(re.compile(r"ledger\.html"))
    page.wait_for_selector("body[data-ready='true']")
    assert (query_of(page.url)["grid_id"], query_of(page.url)["light"], query_of(page.url)["open"]) == (grid["id"], "red", "1")
    rows = page.locator("#ledger-table tbody tr[data-problem-id]")
    expect(rows).to_have_count(grid["red"])
    assert set(cells(page, "#ledger-table tbody td:nth-child(2)")) == {grid["name"]}
    problem_id = rows.first.get_attribute("data-problem-id")
    rows.first.locator("a.problem-link").click()
    page.wait_for_selector("body[data-ready='true']")
    shown = site.api(data_url(page, "#timeline"))
    assert shown["problem"]["problem_id"] == problem_id and shown["clock"]["light"] == "red"
    expect(page.locator("[data-field='light']")).to_have_text("红灯")


def test_the_ledger_lists_the_api_rows_with_its_summary_and_exports(page: Page, site: Site) -> None:
    """All rows the API gives, the 整改率/结案率/按期结案率 with numerator and denominator, and a CSV with a BOM."""
    open_page(page, site, f"ledger.html?as_of={DEMO_MONTH_END}")
    body = site.api(data_url(page, "#rows"))
    expect(page.locator("#ledger-table tbody tr[data-problem-id]")).to_have_count(len(body["rows"]))
    for key in ("rectification_rate", "closure_rate", "on_time_closure_rate"):
        f = body["summary"]["rates"][key]
        expect(page.locator(f"[data-rate='{key}']")).to_contain_text(f"（{f['numerator']}/{f['denominator']}）")
    with page.expect_download() as download:
        page.click("a.export-csv")
    path = Path(download.value.path())
    assert download.value.suggested_filename.startswith("整改台账-") and path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(path.read_text(encoding="utf-8-sig").strip().splitlines()) == len(body["rows"]) + 1


def test_the_problem_page_shows_its_timeline_and_each_photo_it_cites(page: Page, site: Site) -> None:
    """Every timeline event the API lists is a row; every cited photo has its figure (the demo stores no files)."""
    problem = site.api(f"/campaigns/{site.campaign_id}/ledger")["rows"][0]
    open_page(page, site, f"problem.html?id={problem['problem_id']}")
    body = site.api(data_url(page, "#timeline"))
    expect(page.locator("#timeline-table tbody tr")).to_have_count(len(body["timeline"]))
    cited = [e["sha256"] for e in body["problem"]["evidence"] + body["problem"]["submitted_evidence"]]
    assert [f.get_attribute("data-sha256") for f in page.locator(".photos figure").all()] == cited
    expect(page.locator("[data-field='unit']")).to_have_text(problem["unit_name"])


def test_the_escalation_list_shows_each_item_and_the_leaders_lists(page: Page, site: Site) -> None:
    """The 督办清单 shows every open escalation by level with its next step, and the per-leader counts."""
    open_page(page, site, f"escalations.html?as_of={DEMO_MONTH_END}")
    body = site.api(data_url(page, "#list"))
    assert [int(x) for x in page.locator("#escalations-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.level)")] == [r["level"] for r in body["rows"]]
    by_leader = site.api(data_url(page, "#by-leader"))
    assert cells(page, "#by-leader-table tbody td:nth-child(3)") == [str(g["open"]) for g in by_leader["leaders"]]
    level = body["rows"][0]["level"]
    page.select_option("#filter-level", str(level))
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("body[data-ready='true']")
    assert query_of(data_url(page, "#list"))["level"] == str(level)
    expect(page.locator("#escalations-table tbody tr")).to_have_count(sum(r["level"] == level for r in body["rows"]))


def test_the_liaison_grid_shows_each_duty_and_a_cell_opens_the_visits_it_counts(page: Page, site: Site) -> None:
    """Leaders × places × months: one cell per duty with its status; a met cell lists the visits that met it."""
    open_page(page, site, f"liaison.html?as_of={DEMO_MONTH_END}&period_from=2021-12-01")
    body = site.api(data_url(page, "#grid"))
    expect(page.locator("#compliance-grid td[data-duty-id]")).to_have_count(len(body["rows"]))
    met = next(r for r in body["rows"] if r["status"] == "met")
    page.click(f"td[data-duty-id='{met['duty_id']}'] a")
    page.wait_for_selector("body[data-ready='true']")
    visits = site.api(data_url(page, "#visits"))
    assert {v["visit_id"] for v in visits["rows"]} == {v["visit_id"] for v in met["visits"]}
    expect(page.locator("#visits-table tbody tr[data-visit-id]")).to_have_count(len(met["visits"]))


def test_a_leaders_own_page_shows_their_places_and_each_periods_verdict(page: Page, site: Site) -> None:
    """挂钩领导本人视图: each linked place, and one row per place and month as the API judges them."""
    leader = site.api(f"/campaigns/{site.campaign_id}/leaders")["rows"][0]
    open_page(page, site, f"leader.html?person={leader['person_id']}&as_of={DEMO_MONTH_END}")
    view = site.api(data_url(page, "#links"))
    assert cells(page, "#leader-links tbody td:nth-child(1)") == [link["target_name"] for link in view["links"]]
    periods = site.api(data_url(page, "#periods"))
    expect(page.locator("#leader-periods tbody tr")).to_have_count(len(periods["rows"]))


def test_the_ranking_shows_each_groups_numerator_and_denominator_and_the_bulletins(page: Page, site: Site) -> None:
    """December's 按期结案率 ranking row by row as the API ranks it, its formula, and the issued bulletins."""
    open_page(page, site, "rankings.html?period=month&day=2021-12-15")
    body = site.api(data_url(page, "#ranking"))
    assert body["rows"], "December has problems due"
    shown = page.locator("#ranking-table tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
    assert [[r[0], r[1], r[3], r[4]] for r in shown] == [
        [str(r["rank"]), r["name"], str(r["numerator"]), str(r["denominator"])] for r in body["rows"]]
    expect(page.locator("#formula")).to_contain_text(body["formula_zh"])
    bulletins = site.api(data_url(page, "#bulletins"))
    expect(page.locator("#bulletins-table tbody tr")).to_have_count(len(bulletins["rows"]))
    assert page.get_attribute("a.export-xlsx", "data-api", timeout=1000) is not None


def test_the_audit_page_shows_the_chain_a_trail_with_causes_and_the_knowledge_view(page: Page, site: Site) -> None:
    """An auditor sees the hash chain's state, the problem's trail (every event, with causation), and what was known."""
    problem = site.api(f"/campaigns/{site.campaign_id}/ledger")["rows"][0]["problem_id"]
    open_page(page, site, f"audit.html?kind=problems&id={problem}&as_of={DEMO_MONTH_END}", "auditor")
    chain = site.api(data_url(page, "#chain"), "auditor")
    expect(page.locator("[data-field='log_head']")).to_contain_text(f"{chain['log_head']:,}")
    trail = site.api(data_url(page, "#trail"), "auditor")
    expect(page.locator("#trail-table tbody tr")).to_have_count(len(trail["rows"]))
    knowledge = site.api(data_url(page, "#knowledge"), "auditor")
    expect(page.locator("#knowledge-table tbody tr")).to_have_count(len(knowledge["happened"]))


def test_the_matrix_shows_now_from_the_read_model_and_a_past_date_replayed(page: Page, site: Site) -> None:
    """Now: every matrix row of the projection; as of 2021-12-10: the rows then in force, from the event store."""
    open_page(page, site, "matrix.html")
    now = site.api(data_url(page, "#matrix"))
    expect(page.locator("#matrix-table tbody tr")).to_have_count(len(now["rows"]))
    page.fill("#matrix-date", "2021-12-10")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("body[data-ready='true']")
    then = site.api(data_url(page, "#matrix"))
    assert then["source"] == "event_store" and len(then["rows"]) < len(now["rows"])
    expect(page.locator("#matrix-table tbody tr")).to_have_count(len(then["rows"]))
    expect(page.locator("#matrix-source")).to_contain_text("事件库")


def test_a_unit_officer_sees_only_their_units_work(page: Page, site: Site) -> None:
    """文广新旅局's officer: the ledger, the light board and the 督办清单 hold its problems only, as its token reads."""
    everyone = site.api(f"/campaigns/{site.campaign_id}/ledger")["rows"]
    open_page(page, site, "ledger.html", "unit_officer")
    mine = site.api(data_url(page, "#rows"), "unit_officer")["rows"]
    assert 0 < len(mine) < len(everyone) and {r["unit_name"] for r in mine} == {UNIT}
    assert set(cells(page, "#ledger-table tbody td:nth-child(4)")) == {UNIT}
    expect(page.locator("#ledger-table tbody tr[data-problem-id]")).to_have_count(len(mine))
    open_page(page, site, "index.html", "unit_officer")
    lights = site.api(data_url(page, "#lights"), "unit_officer")
    assert page.get_attribute(".tile-open .tile-value", "data-value") == str(lights["open"])
    assert lights["open"] == sum(r["state"] not in ("verified", "closed", "withdrawn", "merged") for r in mine)
    open_page(page, site, "escalations.html", "unit_officer")
    assert set(cells(page, "#escalations-table tbody td:nth-child(4)")) <= {UNIT}
    sign_in(page, site, "unit_officer")
    page.goto(site.ui("audit.html"))
    page.wait_for_selector("body[data-ready='error']")
    expect(page.locator("#audit-refused")).to_contain_text("无权查看")


def test_the_pages_work_from_the_keyboard(page: Page, site: Site) -> None:
    """Tab reaches the skip link first, then the navigation; a column sorts with Enter and says so (aria-sort)."""
    open_page(page, site, f"ledger.html?as_of={DEMO_MONTH_END}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到正文"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "总览"
    header = page.locator("#ledger-table thead th").nth(7)  # 已用工作时
    header.locator("button").focus()
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    hours = [float(h) for h in cells(page, "#ledger-table tbody td:nth-child(8)")]
    assert hours == sorted(hours)
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "descending")


def pages(site: Site) -> dict[str, tuple[str, str]]:
    """Every page of the dashboard on the demo: name → (path, role)."""
    problem = site.api(f"/campaigns/{site.campaign_id}/ledger")["rows"][0]
    leader = site.api(f"/campaigns/{site.campaign_id}/leaders")["rows"][0]["person_id"]
    return {
        "overview": (f"index.html?as_of={DEMO_MONTH_END}", "hq_office"),
        "ledger": (f"ledger.html?as_of={DEMO_MONTH_END}", "hq_office"),
        "problem": (f"problem.html?id={problem['problem_id']}", "hq_office"),
        "escalations": (f"escalations.html?as_of={DEMO_MONTH_END}", "hq_office"),
        "liaison": (f"liaison.html?as_of={DEMO_MONTH_END}&period_from=2021-12-01", "hq_office"),
        "leader": (f"leader.html?person={leader}&as_of={DEMO_MONTH_END}", "hq_office"),
        "visits": (f"visits.html?place_id={problem['place_id']}", "hq_office"),
        "rankings": ("rankings.html?period=month&day=2021-12-15", "hq_office"),
        "audit": (f"audit.html?kind=problems&id={problem['problem_id']}&as_of={DEMO_MONTH_END}", "auditor"),
        "matrix": ("matrix.html", "hq_office"),
        "unit-ledger": ("ledger.html", "unit_officer"),
    }


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's findings on the page as it stands (every rule axe runs by default: WCAG A/AA and best practice)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate("""async () => (await axe.run(document)).violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
    return found


def test_every_page_passes_axe_and_is_saved_as_a_screenshot(page: Page, site: Site, screenshots: Path) -> None:
    """Each page (and the login page), with its data on screen: zero axe-core violations; a full-page PNG saved."""
    page.goto(site.ui("login.html"))
    page.wait_for_selector("body[data-ready='true']")
    page.screenshot(path=str(screenshots / "login.png"), full_page=True)
    found = {"login": axe_violations(page)}
    for name, (path, who) in pages(site).items():
        open_page(page, site, path, who)
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        found[name] = axe_violations(page)
    assert {k: v for k, v in found.items() if v} == {}
    assert {p.stem for p in screenshots.glob("*.png")} >= {"login", *pages(site)}
