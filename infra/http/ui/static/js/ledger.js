// 整改台账: the ledger with its filters — grid, unit, sub-command and state are the API's own (and so carried into
// the CSV/XLSX exports); category, light, overdue and "open only" narrow the rows the API returned, on the page.
// Each row links to the problem's page (photos and timeline).

import { apiUrl, getJSON } from "./api.js";
import { el, figure, lightBadge, LIGHT_ZH, num, pageLink, params, STATE_ZH, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, exportLinks, sortableTable } from "./table.js";

const OPEN_STATES = new Set(["reported", "assigned", "acknowledged", "rectification_submitted", "rework"]);
const SERVER_FILTERS = ["grid_id", "unit_id", "sub_command_id", "state"];

function select(name, label, options, current) {
  const id = `filter-${name}`;
  return el("div", { class: "field" }, el("label", { for: id }, label),
    el("select", { id, name }, el("option", { value: "" }, "全部"),
      options.map(([value, text]) => el("option", { value, selected: value === current }, text))));
}

function filterForm(q, units, grids, categories) {
  const keep = ["campaign", "as_of"].filter((k) => q.get(k)).map((k) =>
    el("input", { type: "hidden", name: k, value: q.get(k) }));
  const subs = units.filter((u) => u.unit_kind === "sub_command");
  return el("form", { class: "filters", method: "get", action: "ledger.html", "aria-label": "台账筛选" }, keep,
    select("grid_id", "网格", grids.map((g) => [g.place_id, g.name]), q.get("grid_id")),
    select("unit_id", "责任单位", units.filter((u) => u.unit_kind !== "sub_command")
      .map((u) => [u.unit_id, u.name]), q.get("unit_id")),
    select("sub_command_id", "分指挥部", [["none", "（未归属分指挥部）"], ...subs.map((u) => [u.unit_id, u.name])],
      q.get("sub_command_id")),
    select("state", "状态", Object.entries(STATE_ZH), q.get("state")),
    select("category", "类别", categories, q.get("category")),
    select("light", "三色", Object.entries(LIGHT_ZH), q.get("light")),
    select("overdue", "超期", [["1", "仅超期"]], q.get("overdue")),
    select("open", "办理", [["1", "仅未销号"]], q.get("open")),
    el("button", { type: "submit" }, "筛选"),
    el("a", { href: pageLink("ledger.html") }, "清除筛选"));
}

function onPage(q) {
  return (r) => (!q.get("category") || r.category === q.get("category"))
    && (!q.get("light") || (r.light || "unassigned") === q.get("light"))
    && (q.get("overdue") !== "1" || r.overdue)
    && (q.get("open") !== "1" || OPEN_STATES.has(r.state))
    && (q.get("sub_command_id") !== "none" || !r.sub_command_id)
    && (q.get("grid_id") !== "none" || !r.grid_id);
}

const COLUMNS = [
  { key: "description", label: "问题", render: (r) => el("a", { href: pageLink("problem.html", { id: r.problem_id }),
    class: "problem-link", "data-problem-id": r.problem_id }, r.description) },
  { key: "grid_name", label: "网格", value: (r) => r.grid_number ?? r.grid_name, render: (r) => r.grid_name || "—" },
  { key: "place_name", label: "点位" },
  { key: "unit_name", label: "责任单位" },
  { key: "category_name", label: "类别" },
  { key: "state", label: "状态", render: (r) => STATE_ZH[r.state] || r.state },
  { key: "deadline", label: "整改期限", render: (r) => when(r.deadline) },
  { key: "hours_used", label: "已用工作时", numeric: true },
  { key: "light", label: "三色", value: (r) => ["red", "yellow", "green"].indexOf(r.light), render: (r) => lightBadge(r.light) },
  { key: "overdue", label: "超期", value: (r) => (r.overdue ? 1 : 0), render: (r) => (r.overdue ? "是" : "否") },
  { key: "closed_on_time", label: "按期结案", render: (r) => (r.closed_on_time === null ? "—" : r.closed_on_time ? "是" : "否") },
];

async function main() {
  const ctx = await startPage("ledger.html");
  if (!ctx) return;
  const q = params();
  const c = ctx.campaignId;
  const query = { as_of: ctx.asOf };
  for (const k of SERVER_FILTERS) if (q.get(k) && q.get(k) !== "none") query[k] = q.get(k);
  const url = apiUrl(`/campaigns/${c}/ledger`, query);
  try {
    const [ledger, units, places] = await Promise.all([url, `/campaigns/${c}/units`, `/campaigns/${c}/places`]
      .map(getJSON));
    const categories = [...new Map(ledger.rows.map((r) => [r.category, r.category_name])).entries()];
    const rows = ledger.rows.filter(onPage(q));
    const grids = places.rows.filter((p) => p.place_kind === "grid");
    const [filters, filterBody] = section("filters", "筛选");
    filterBody.append(filterForm(q, units.rows, grids, categories),
      el("p", { class: "note" }, "网格、责任单位、分指挥部、状态由 API 筛选，导出文件同样筛选；类别、三色、超期、办理在页面上进一步筛选。"));
    const s = ledger.summary;
    const [summary, summaryBody] = section("summary", `台账汇总（${s.period.label_zh}）`);
    summaryBody.append(el("dl", { class: "facts" },
      ["rectification_rate", "closure_rate", "on_time_closure_rate"].map((k) => [
        el("dt", {}, s.formulas[k].name_zh),
        el("dd", { "data-rate": k }, figure(s.rates[k]), el("span", { class: "note" }, ` ${s.formulas[k].formula_zh}`))])));
    const [table, tableBody] = section("rows", `问题 ${num(rows.length)} 条`);
    tableBody.append(exportLinks(`/campaigns/${c}/ledger`, query),
      sortableTable(COLUMNS, rows, { caption: "整改台账", id: "ledger-table",
        rowAttrs: (r) => ({ "data-problem-id": r.problem_id, "data-light": r.light || "unassigned" }) }),
      dataLink(url));
    ctx.main.append(filters, summary, table);
    ctx.ready(`截至 ${when(ledger.as_of)}；台账共 ${ledger.rows.length} 条，筛选后 ${rows.length} 条`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
