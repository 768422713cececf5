// 挂钩领导本人视图: a leader's linked places with this period's duty, what is due next and by when, the open problems
// and escalations at those places, every period's verdict, and the duty trail (履职轨迹) as CSV.

import { apiUrl, download, getJSON } from "./api.js";
import { el, pageLink, params, STATE_ZH, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

async function main() {
  const ctx = await startPage("liaison.html");
  if (!ctx) return;
  const person = params().get("person");
  const url = apiUrl(`/persons/${person}/duties`, { as_of: ctx.asOf });
  const complianceUrl = apiUrl(`/persons/${person}/duties/compliance`, { as_of: ctx.asOf });
  const trailCsv = apiUrl(`/persons/${person}/duties/trail`, { as_of: ctx.asOf, format: "csv" });
  try {
    const [view, compliance] = await Promise.all([url, complianceUrl].map(getJSON));
    ctx.main.querySelector("h1").textContent = `挂钩领导：${view.name}（${view.rank || view.body_zh || ""}）`;
    const [links, linksBody] = section("links", "挂钩点位与本期履职");
    linksBody.append(sortableTable([
      { key: "target_name", label: "挂钩点位" },
      { key: "status", label: "本期", value: (l) => l.this_period?.status_zh, render: (l) => (l.this_period
        ? el("span", { class: `badge status-${l.this_period.status}` }, `${l.this_period.period_zh} ${l.this_period.status_zh}`) : "—") },
      { key: "done", label: "实到/应到", value: (l) => l.this_period?.done, render: (l) => (l.this_period
        ? `${l.this_period.done}/${l.this_period.due}` : "—") },
      { key: "due_next", label: "下次应督查", value: (l) => l.due_next?.by, render: (l) => (l.due_next
        ? `${l.due_next.visits} 次，${when(l.due_next.by)} 前` : "—") },
      { key: "last_visit_at", label: "最近督查", render: (l) => when(l.last_visit_at) },
      { key: "unmet_periods", label: "未履职期数", numeric: true },
    ], view.links, { caption: "挂钩点位", id: "leader-links" }), dataLink(url));
    const [problems, problemsBody] = section("problems", "挂钩点位的未销号问题与督办");
    problemsBody.append(sortableTable([
      { key: "place_name", label: "问题", render: (p) => el("a", { href: pageLink("problem.html", { id: p.problem_id }) },
        `${p.place_name} · ${p.category}`) },
      { key: "unit_name", label: "责任单位" },
      { key: "state", label: "状态", render: (p) => STATE_ZH[p.state] || p.state },
      { key: "deadline", label: "整改期限", render: (p) => when(p.deadline) },
    ], view.open_problems, { caption: "未销号问题", id: "leader-problems", empty: "没有未销号问题" }),
    sortableTable([
      { key: "level", label: "级别", numeric: true, render: (r) => `${r.level} ${r.level_zh}` },
      { key: "summary", label: "督办事项" },
      { key: "overdue_working_hours", label: "超期工作时", numeric: true },
    ], view.escalations, { caption: "督办事项", id: "leader-escalations", empty: "没有督办事项" }));
    const [periods, periodsBody] = section("periods", "各期履职");
    const csv = el("a", { href: trailCsv, class: "export export-csv", "data-api": trailCsv }, "履职轨迹 CSV");
    csv.addEventListener("click", (event) => { event.preventDefault(); download(trailCsv, "duty-trail.csv"); });
    periodsBody.append(el("p", { class: "exports" }, "导出：", csv), sortableTable([
      { key: "period", label: "期间", render: (r) => r.period_zh },
      { key: "target_name", label: "点位" },
      { key: "status", label: "状态", render: (r) => el("span", { class: `badge status-${r.status}` }, r.status_zh) },
      { key: "done", label: "实到", numeric: true },
      { key: "due", label: "应到", numeric: true },
      { key: "visits", label: "督导记录", value: (r) => r.visits.length, render: (r) => el("a", { href: pageLink("visits.html",
        { place_id: r.target_id, person_id: r.person_id, date_from: r.period_start, date_to: r.period_end }) },
        `${r.visits.length} 次`) },
    ], compliance.rows, { caption: "各期履职（每个挂钩点位每月）", id: "leader-periods" }), dataLink(complianceUrl));
    ctx.main.append(links, problems, periods);
    ctx.ready(`截至 ${when(view.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
