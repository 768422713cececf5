// 审计: the hash chain's state (what `dudao verify` recomputes), and for one entity its trail (履历) with each event's
// causation chain, the entity as of an instant (with who answered for it then), and the knowledge view (知情视图):
// what had happened by then against what HQ could see by then. Audit readers only (auditor, discipline, HQ): the
// API refuses other roles, and the page says so.

import { apiUrl, download, getJSON } from "./api.js";
import { el, num, pageLink, params, when } from "./dom.js";
import { describeError, section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

const KINDS = [["problems", "问题"], ["visits", "督导记录"], ["tasks", "任务"], ["units", "单位"], ["persons", "人员"],
  ["places", "地点"], ["notices", "通知"], ["bulletins", "通报"], ["summons", "约谈"], ["accountability_cases", "问责案件"],
  ["escalation_steps", "督办步骤"], ["liaisons", "挂钩联系"], ["liaison_duties", "履职期"], ["campaigns", "创建活动"]];

/** The audit routes want an instant with its offset: a local as_of takes the campaign's (from an instant it sent). */
function withOffset(asOf, sample) {
  if (!asOf || /([+-]\d{2}:\d{2}|Z)$/.test(asOf)) return asOf;
  const offset = (sample || "").match(/([+-]\d{2}:\d{2})$/);
  return `${asOf}${offset ? offset[1] : "+08:00"}`;
}

function form(q) {
  const keep = ["campaign", "as_of"].filter((k) => q.get(k)).map((k) =>
    el("input", { type: "hidden", name: k, value: q.get(k) }));
  return el("form", { class: "filters", method: "get", action: "audit.html", "aria-label": "审计对象" }, keep,
    el("div", { class: "field" }, el("label", { for: "audit-kind" }, "对象类型"),
      el("select", { id: "audit-kind", name: "kind" }, KINDS.map(([v, t]) => el("option", { value: v, selected: v === q.get("kind") }, t)))),
    el("div", { class: "field" }, el("label", { for: "audit-id" }, "编号（UUID）"),
      el("input", { id: "audit-id", name: "id", value: q.get("id") || "", size: 38, required: true })),
    el("button", { type: "submit" }, "查阅"));
}

function chainFacts(chain) {
  const d = chain.latest_digest;
  const fact = (dt, dd, key) => [el("dt", {}, dt), el("dd", { "data-field": key }, dd)];
  return el("dl", { class: "facts", id: "chain-facts" },
    fact("哈希链已覆盖", `至第 ${num(chain.chain_position)} 条事件`, "chain_position"),
    fact("事件日志", `共 ${num(chain.log_head)} 条`, "log_head"),
    fact("尚未入链", num(chain.unchained), "unchained"),
    fact("链头哈希", el("code", {}, chain.head_hash), "head_hash"),
    fact("最新签名摘要", d ? `第 ${num(d.position)} 条，${when(d.signed_at)} 由密钥 ${d.key_id} 签名（${d.algorithm}）` : "尚无",
      "latest_digest"),
    fact("完整性校验", "运行 dudao verify 从头重新计算哈希链并核对已发布的签名摘要", "verify"));
}

function trailTable(trail) {
  return sortableTable([
    { key: "notification_id", label: "日志位置", numeric: true },
    { key: "event_type", label: "事件", value: (r) => r.event_type.split(".").pop() },
    { key: "actor", label: "操作人", value: (r) => `${r.actor?.name || ""}（${r.actor?.role || ""}）` },
    { key: "occurred_at", label: "发生时间", render: (r) => when(r.occurred_at) },
    { key: "recorded_at", label: "录入时间", render: (r) => when(r.recorded_at) },
    { key: "reason", label: "理由" },
    { key: "causation_chain", label: "因果链", value: (r) => r.causation_chain.length,
      render: (r) => (r.causation_chain.length ? el("ol", {}, r.causation_chain.map((c) => el("li", {},
        `${c.type.split(".").pop()} · ${c.actor?.name || c.actor?.role || ""} · ${when(c.recorded_at)}`))) : "（直接指令）") },
  ], trail.rows, { caption: `履历（共 ${trail.total} 条，显示 ${trail.rows.length} 条）`, id: "trail-table" });
}

function knowledgeTable(k) {
  const known = new Set(k.known.map((e) => e.event_id));
  const rows = k.happened.map((e) => ({ ...e, known: known.has(e.event_id) }));
  return sortableTable([
    { key: "position", label: "日志位置", numeric: true },
    { key: "type", label: "事件", value: (e) => e.type.split(".").pop() },
    { key: "occurred_at", label: "发生时间", render: (e) => when(e.occurred_at) },
    { key: "recorded_at", label: "录入时间", render: (e) => when(e.recorded_at) },
    { key: "known", label: "当时可知", render: (e) => (e.known ? "是" : "否（事后补录）") },
  ], rows, { caption: `截至 ${when(k.as_of)}：已发生 ${k.happened.length} 件，当时已录入 ${k.known.length} 件`, id: "knowledge-table" });
}

async function entity(ctx, q, chain) {
  const kind = q.get("kind") || "problems";
  const id = q.get("id");
  const at = withOffset(ctx.asOf, chain.latest_digest?.signed_at || ctx.campaign.started_at);
  const urls = {
    trail: apiUrl(`/${kind}/${id}/trail`, { limit: 500 }),
    csv: apiUrl(`/${kind}/${id}/trail`, { format: "csv" }),
    asOf: apiUrl(`/${kind}/${id}/as_of`, { as_of: at }),
    knowledge: apiUrl(`/${kind}/${id}/knowledge`, { as_of: at }),
  };
  const [trail, asOf, knowledge] = await Promise.all([urls.trail, urls.asOf, urls.knowledge].map(getJSON));
  const [t, tBody] = section("trail", "履历与因果链");
  const csv = el("a", { href: urls.csv, class: "export export-csv", "data-api": urls.csv }, "CSV");
  csv.addEventListener("click", (event) => {
    event.preventDefault();
    download(urls.csv, "trail.csv");
  });
  tBody.append(el("p", { class: "exports" }, "导出：", csv), trailTable(trail), dataLink(urls.trail));
  const [a, aBody] = section("as-of", `截至 ${when(asOf.as_of)} 的状态`);
  aBody.append(el("p", {}, asOf.existed ? `当时已存在，计入事件 ${asOf.events_counted}/${asOf.events_total} 件。` : "当时尚不存在。"),
    sortableTable([
      { key: "scope_name", label: "范围", value: (r) => r.scope_name || r.scope_id },
      { key: "role", label: "职责" },
      { key: "party_name", label: "责任方", value: (r) => r.party_name || r.party_id },
      { key: "valid_from", label: "起", render: (r) => when(r.valid_from) },
    ], asOf.responsible || [], { caption: "当时的责任方", id: "responsible-then", empty: "无" }),
    el("details", {}, el("summary", {}, "当时的完整状态（JSON）"), el("pre", { class: "json" }, JSON.stringify(asOf.state, null, 2))),
    dataLink(urls.asOf));
  const [k, kBody] = section("knowledge", "知情视图");
  kBody.append(knowledgeTable(knowledge), dataLink(urls.knowledge));
  ctx.main.append(t, a, k);
}

async function main() {
  const ctx = await startPage("audit.html");
  if (!ctx) return;
  const q = params();
  const [pick, pickBody] = section("pick", "查阅对象");
  pickBody.append(form(q));
  ctx.main.append(pick);
  try {
    const chainUrl = "/audit/chain";
    const chain = await getJSON(chainUrl);
    const [c, cBody] = section("chain", "哈希链与签名摘要");
    cBody.append(chainFacts(chain), dataLink(chainUrl));
    ctx.main.append(c);
    if (q.get("id")) await entity(ctx, q, chain);
    ctx.ready(q.get("id") ? "" : "选择对象类型并输入编号查阅履历；问题页有直达链接。");
  } catch (error) {
    ctx.fail(error);
    pickBody.append(el("p", { class: "error", id: "audit-refused" }, describeError(error)));
  }
}

main();
