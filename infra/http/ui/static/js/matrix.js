// 责任矩阵: who answers for each place, task and indicator — lead (牵头), co-units (配合), liaison leader (挂钩领导),
// 包保责任人 — now (from the matrix read model) or as of a date (replayed from the stored events).

import { apiUrl, getJSON } from "./api.js";
import { el, num, pageLink, params, ROLE_ZH, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

const SCOPES = { place: "地点", task: "任务", indicator: "测评指标" };

function form(q) {
  const keep = ["campaign"].filter((k) => q.get(k)).map((k) => el("input", { type: "hidden", name: k, value: q.get(k) }));
  const select = (name, label, options) => el("div", { class: "field" }, el("label", { for: `matrix-${name}` }, label),
    el("select", { id: `matrix-${name}`, name }, el("option", { value: "" }, "全部"),
      Object.entries(options).map(([v, t]) => el("option", { value: v, selected: v === q.get(name) }, t))));
  return el("form", { class: "filters", method: "get", action: "matrix.html", "aria-label": "责任矩阵条件" }, keep,
    el("div", { class: "field" }, el("label", { for: "matrix-date" }, "截至日期（空为现在）"),
      el("input", { id: "matrix-date", name: "as_of", type: "date", value: (q.get("as_of") || "").slice(0, 10) })),
    select("scope_kind", "范围", SCOPES), select("role", "职责", ROLE_ZH),
    el("button", { type: "submit" }, "查看"), el("a", { href: pageLink("matrix.html", { as_of: null }) }, "现在"));
}

async function main() {
  const ctx = await startPage("matrix.html");
  if (!ctx) return;
  const q = params();
  const url = apiUrl(`/campaigns/${ctx.campaignId}/matrix`, { as_of: ctx.asOf });
  try {
    const body = await getJSON(url);
    const rows = body.rows.filter((r) => (!q.get("scope_kind") || r.scope_kind === q.get("scope_kind"))
      && (!q.get("role") || r.role === q.get("role")));
    const [choice, choiceBody] = section("choice", "条件");
    choiceBody.append(form(q));
    const source = body.source === "projection" ? "责任矩阵读模型（现在）" : `由事件库重放（截至 ${when(body.as_of)}）`;
    const [table, tableBody] = section("matrix", `责任矩阵 ${num(rows.length)} 条`);
    tableBody.append(el("p", { class: "note", id: "matrix-source" }, `来源：${source}`), sortableTable([
      { key: "scope_kind", label: "范围", render: (r) => SCOPES[r.scope_kind] || r.scope_kind },
      { key: "scope_name", label: "名称" },
      { key: "role", label: "职责", render: (r) => ROLE_ZH[r.role] || r.role },
      { key: "party_name", label: "责任方", render: (r) => (r.party_kind === "person"
        ? el("a", { href: pageLink("leader.html", { person: r.party_id }) }, r.party_name) : r.party_name) },
      { key: "valid_from", label: "起", render: (r) => when(r.valid_from) },
      { key: "valid_to", label: "止", render: (r) => when(r.valid_to) },
    ], rows, { caption: `责任矩阵（截至 ${when(body.as_of)}）`, id: "matrix-table",
      rowAttrs: (r) => ({ "data-role": r.role, "data-scope-kind": r.scope_kind }) }), dataLink(url));
    ctx.main.append(choice, table);
    ctx.ready(`截至 ${when(body.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
