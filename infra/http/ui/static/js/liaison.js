// 挂钩联系: leaders × linked places × months as a compliance grid (已履职 / 未履职 / 逾期履职 / 免除 / 待定), each cell
// linking to the visits that count for it; the window is ?period_from/?period_to (default: the six months to as_of).

import { apiUrl, getJSON } from "./api.js";
import { el, num, pageLink, params, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

const STATUS_SHORT = { met: "✓ 已履职", met_late: "△ 逾期履职", unmet: "✗ 未履职", exempt: "免 免除", pending: "… 进行中",
  not_due: "— 未到期" };

function monthsBack(asOf, n) {
  const d = asOf ? new Date(`${asOf.slice(0, 10)}T12:00:00Z`) : new Date();
  const first = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - (n - 1), 1));
  return first.toISOString().slice(0, 10);
}

function windowForm(q, from, to) {
  const keep = ["campaign", "as_of"].filter((k) => q.get(k)).map((k) =>
    el("input", { type: "hidden", name: k, value: q.get(k) }));
  return el("form", { class: "filters", method: "get", action: "liaison.html", "aria-label": "期间" }, keep,
    el("div", { class: "field" }, el("label", { for: "period-from" }, "起始日期"),
      el("input", { id: "period-from", name: "period_from", type: "date", value: from })),
    el("div", { class: "field" }, el("label", { for: "period-to" }, "截止日期"),
      el("input", { id: "period-to", name: "period_to", type: "date", value: to || "" })),
    el("button", { type: "submit" }, "查看"));
}

function cell(row) {
  const href = pageLink("visits.html", { place_id: row.target_id, person_id: row.person_id, date_from: row.period_start,
    date_to: row.period_end });
  const label = `${row.leader_name} ${row.target_name} ${row.period_zh}：${row.status_zh}，应督查 ${row.due} 次，实到 ${row.done} 次`;
  return el("td", { class: "cell", "data-status": row.status, "data-duty-id": row.duty_id },
    el("a", { href, class: `badge status-${row.status}`, title: label },
      `${STATUS_SHORT[row.status] || row.status_zh} ${row.done}/${row.due}`,
      el("span", { class: "sr-only" }, `：${row.leader_name} ${row.target_name} ${row.period_zh}，应督查 ${row.due} 次，实到 ${row.done} 次`)));
}

function grid(rows) {
  const periods = [...new Map(rows.map((r) => [r.period, r.period_zh])).entries()].sort();
  const pairs = new Map();
  for (const r of rows) {
    const key = `${r.person_id}|${r.target_id}`;
    if (!pairs.has(key)) pairs.set(key, { leader: r, cells: new Map() });
    pairs.get(key).cells.set(r.period, r);
  }
  const sorted = [...pairs.values()].sort((a, b) => (a.leader.leader_name + a.leader.target_name)
    .localeCompare(b.leader.leader_name + b.leader.target_name, "zh-CN"));
  return el("div", { class: "table-wrap" }, el("table", { class: "data", id: "compliance-grid" },
    el("caption", {}, "挂钩联系履职情况（单元格：状态 实到/应到，点击查看督导记录）"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "挂钩领导"), el("th", { scope: "col" }, "挂钩点位"),
      periods.map(([, zh]) => el("th", { scope: "col" }, zh)))),
    el("tbody", {}, sorted.map(({ leader, cells }) => el("tr", {},
      el("th", { scope: "row" }, el("a", { href: pageLink("leader.html", { person: leader.person_id }) }, leader.leader_name),
        el("br"), el("span", { class: "note" }, leader.rank || "")),
      el("td", {}, leader.target_name),
      periods.map(([p]) => (cells.has(p) ? cell(cells.get(p)) : el("td", { class: "cell" }, "—"))))))));
}

async function main() {
  const ctx = await startPage("liaison.html");
  if (!ctx) return;
  const q = params();
  const from = q.get("period_from") || monthsBack(ctx.asOf, 6);
  const to = q.get("period_to") || null;
  const url = apiUrl(`/campaigns/${ctx.campaignId}/duties`, { period_from: from, period_to: to, as_of: ctx.asOf });
  try {
    const body = await getJSON(url);
    const [win, winBody] = section("window", "期间");
    winBody.append(windowForm(q, from, to));
    const s = body.summary;
    const [summary, summaryBody] = section("summary", "履职汇总");
    summaryBody.append(sortableTable([
      { key: "status", label: "状态", render: (r) => el("span", { class: `badge status-${r.status}` }, STATUS_SHORT[r.status]) },
      { key: "n", label: "领导×点位×月", numeric: true },
    ], Object.entries(s.by_status).map(([status, n]) => ({ status, n })), { caption: `应督查 ${s.due} 次，实到 ${s.done} 次`,
      id: "compliance-summary" }));
    const [table, tableBody] = section("grid", `履职网格（${num(body.rows.length)} 项）`);
    tableBody.append(grid(body.rows), dataLink(url));
    ctx.main.append(win, summary, table);
    ctx.ready(`截至 ${when(body.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
