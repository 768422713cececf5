// 督导记录: the supervision visits a compliance cell counts (by place, leader and days), newest first, each with its
// findings and the problems they became.

import { apiUrl, getJSON } from "./api.js";
import { el, num, pageLink, params, STATE_ZH, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

function findings(v) {
  if (!v.findings.length) return "无问题";
  return el("ul", {}, v.findings.map((f) => el("li", {},
    el("a", { href: pageLink("problem.html", { id: f.problem_id }) }, f.description || f.problem_id),
    f.problem ? `（${STATE_ZH[f.problem.state] || f.problem.state}）` : "")));
}

async function main() {
  const ctx = await startPage("liaison.html");
  if (!ctx) return;
  const q = params();
  const query = { as_of: ctx.asOf, limit: 500 };
  for (const k of ["person_id", "place_id", "grid_id", "date_from", "date_to"]) if (q.get(k)) query[k] = q.get(k);
  const url = apiUrl(`/campaigns/${ctx.campaignId}/visits`, query);
  try {
    const body = await getJSON(url);
    const [list, listBody] = section("visits", `督导记录 ${num(body.total)} 次`);
    listBody.append(el("p", { class: "note" }, `期间 ${q.get("date_from") || "—"} 至 ${q.get("date_to") || "—"}`),
      sortableTable([
        { key: "occurred_at", label: "督导时间", render: (v) => when(v.occurred_at) },
        { key: "recorded_at", label: "录入时间", render: (v) => when(v.recorded_at) },
        { key: "place_name", label: "地点" },
        { key: "note", label: "说明" },
        { key: "finding_count", label: "发现问题", numeric: true },
        { key: "findings", label: "问题", value: (v) => v.finding_count, render: findings },
      ], body.rows, { caption: "督导记录（新者在前）", id: "visits-table", empty: "该期间没有督导记录",
        rowAttrs: (v) => ({ "data-visit-id": v.visit_id }) }), dataLink(url));
    ctx.main.append(list);
    ctx.ready(`截至 ${when(body.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
