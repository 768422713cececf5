// 督办清单: the open escalations by level, filtered by unit, grid and 挂钩领导 (the API's own filters), each with
// what is overdue since when and the next step due and when; and the list per liaison leader.

import { apiUrl, getJSON } from "./api.js";
import { drawChart } from "./charts.js";
import { el, num, pageLink, params, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

const FILTERS = ["level", "unit_id", "grid_id", "leader_id"];
const LEVELS = [[4, "问责"], [3, "通报/约谈"], [2, "督办"], [1, "催办"], [0, "提醒"]];

function select(name, label, options, current) {
  const id = `filter-${name}`;
  return el("div", { class: "field" }, el("label", { for: id }, label),
    el("select", { id, name }, el("option", { value: "" }, "全部"),
      options.map(([value, text]) => el("option", { value, selected: String(value) === current }, text))));
}

function filterForm(q, units, grids, leaders) {
  const keep = ["campaign", "as_of"].filter((k) => q.get(k)).map((k) =>
    el("input", { type: "hidden", name: k, value: q.get(k) }));
  return el("form", { class: "filters", method: "get", action: "escalations.html", "aria-label": "督办清单筛选" }, keep,
    select("level", "级别", LEVELS.map(([lv, zh]) => [lv, `${lv}级 ${zh}`]), q.get("level")),
    select("unit_id", "责任单位", units.map((u) => [u.unit_id, u.name]), q.get("unit_id")),
    select("grid_id", "网格", grids.map((g) => [g.place_id, g.name]), q.get("grid_id")),
    select("leader_id", "挂钩领导", leaders.map((l) => [l.person_id, l.leader_name]), q.get("leader_id")),
    el("button", { type: "submit" }, "筛选"), el("a", { href: pageLink("escalations.html") }, "清除筛选"));
}

function item(r) {
  if (r.item_kind === "problem") return el("a", { href: pageLink("problem.html", { id: r.item_id }) }, r.summary);
  if (r.item_kind === "liaison_duty" && r.person_id) {
    return el("a", { href: pageLink("leader.html", { person: r.person_id }) }, r.summary);
  }
  return r.summary;
}

const COLUMNS = [
  { key: "level", label: "级别", numeric: true, render: (r) => `${r.level} ${r.level_zh}` },
  { key: "item_kind_zh", label: "类型" },
  { key: "summary", label: "督办事项", render: item },
  { key: "unit", label: "责任单位", value: (r) => r.unit?.name },
  { key: "grid", label: "网格", value: (r) => r.grid?.name },
  { key: "overdue_since", label: "超期起", render: (r) => when(r.overdue_since) },
  { key: "overdue_working_hours", label: "超期工作时", numeric: true },
  { key: "next", label: "下一步", value: (r) => r.next_step?.due_at || "",
    render: (r) => (r.next_step ? `${r.next_step.step_name_zh}（${when(r.next_step.due_at)}${r.next_step.due ? "，已到期" : ""}）` : "—") },
];

async function main() {
  const ctx = await startPage("escalations.html");
  if (!ctx) return;
  const q = params();
  const c = ctx.campaignId;
  const query = { as_of: ctx.asOf, limit: 5000 };
  for (const k of FILTERS) if (q.get(k)) query[k] = q.get(k);
  const url = apiUrl(`/campaigns/${c}/escalations`, query);
  const byLeaderUrl = apiUrl(`/campaigns/${c}/escalations/by_leader`, { as_of: ctx.asOf });
  try {
    const [body, byLeader, units, places, leaders] = await Promise.all([url, byLeaderUrl, `/campaigns/${c}/units`,
      `/campaigns/${c}/places`, apiUrl(`/campaigns/${c}/leaders`, { as_of: ctx.asOf })].map(getJSON));
    const uniqueLeaders = [...new Map(leaders.rows.map((l) => [l.person_id, l])).values()];
    const [filters, filterBody] = section("filters", "筛选");
    filterBody.append(filterForm(q, units.rows, places.rows.filter((p) => p.place_kind === "grid"), uniqueLeaders));
    const [levels, levelsBody] = section("levels", "按级别");
    const chartBox = el("div", { class: "chart chart-small", id: "chart-escalation-levels" });
    levelsBody.append(chartBox, dataLink(url));
    const [list, listBody] = section("list", `督办事项 ${num(body.total)} 件（超期 ${num(body.overview.overdue)} 件）`);
    listBody.append(sortableTable(COLUMNS, body.rows, { caption: "督办清单（级别高、超期久者在前）", id: "escalations-table",
      rowAttrs: (r) => ({ "data-level": r.level, "data-kind": r.item_kind }) }), dataLink(url));
    const [leadersPanel, leadersBody] = section("by-leader", "按挂钩领导");
    leadersBody.append(sortableTable([
      { key: "name", label: "挂钩领导", render: (g) => el("a", { href: pageLink("leader.html", { person: g.person_id }) },
        g.name || g.person_id) },
      { key: "rank", label: "职务" },
      { key: "open", label: "督办事项", numeric: true, render: (g) => el("a", {
        href: pageLink("escalations.html", { leader_id: g.person_id }) }, String(g.open)) },
      { key: "overdue", label: "超期", numeric: true },
      { key: "unmet_duties", label: "未履职", numeric: true },
    ], byLeader.leaders, { caption: `按挂钩领导（另有 ${byLeader.without_leader} 件无挂钩领导）`, id: "by-leader-table" }),
    dataLink(byLeaderUrl));
    ctx.main.append(filters, levels, list, leadersPanel);
    const by = body.overview.by_level;
    drawChart(chartBox, {
      tooltip: { trigger: "item" },
      grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: by.map((l) => `${l.level}级 ${l.level_zh}`) },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", name: "督办事项", data: by.map((l) => l.open), itemStyle: { color: "#ad1457" },
        label: { show: true, position: "top" } }],
    }, {
      label: `督办事项按级别：${by.map((l) => `${l.level_zh} ${l.open}`).join("，")}`,
      onClick: (p) => location.assign(pageLink("escalations.html", { ...Object.fromEntries(
        FILTERS.filter((k) => q.get(k)).map((k) => [k, q.get(k)])), level: by[p.dataIndex].level })),
    });
    ctx.ready(`截至 ${when(body.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
