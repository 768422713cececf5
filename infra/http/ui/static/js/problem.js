// A problem's page: its state and clock (三色) at the instant read, its photos (fetched with the token), and its
// timeline (履历) — every event with who, when it happened and when it was recorded.

import { apiUrl, ApiError, getBlobUrl, getJSON } from "./api.js";
import { el, lightBadge, pageLink, params, STATE_ZH, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

async function nameOf(kind, id) {
  if (!id) return "—";
  try {
    return (await getJSON(`/${kind}/${id}`)).name;
  } catch {
    return id;
  }
}

function photo(ref, what) {
  const caption = el("figcaption", {}, `${what} · ${ref.media_type} · ${Math.round(ref.size / 1024)} KB · ${ref.sha256.slice(0, 12)}…`);
  const figure = el("figure", { "data-sha256": ref.sha256 }, caption);
  getBlobUrl(`/evidence/${ref.sha256}`).then((src) => {
    figure.prepend(el("img", { src, alt: `${what}照片 ${ref.sha256.slice(0, 12)}` }));
  }).catch((error) => {
    const why = error instanceof ApiError && error.status === 404 ? "照片文件未存放在本系统（只登记了指纹）" : "照片读取失败";
    caption.append(el("br"), why);
  });
  return el("li", {}, figure);
}

async function main() {
  const ctx = await startPage("ledger.html");
  if (!ctx) return;
  const id = params().get("id");
  const url = apiUrl(`/problems/${id}`, { as_of: ctx.asOf });
  try {
    const body = await getJSON(url);
    const p = body.problem;
    const [place, unit] = await Promise.all([nameOf("places", p.place_id), nameOf("units", p.unit_id)]);
    document.title = `${p.description} · 督导驾驶舱`;
    ctx.main.querySelector("h1").textContent = `问题：${p.description}`;
    const [facts, factsBody] = section("facts", "问题概况");
    const fact = (dt, dd) => [el("dt", {}, dt), el("dd", {}, dd)];
    factsBody.append(el("dl", { class: "facts", id: "problem-facts", "data-problem-id": p.problem_id },
      fact("状态", el("span", { "data-field": "state" }, STATE_ZH[p.state] || p.state)),
      fact("三色", el("span", { "data-field": "light" }, body.clock.light ? lightBadge(body.clock.light) : "未交办")),
      fact("超期", body.clock.overdue ? "是" : "否"),
      fact("已用工作时", `${body.clock.hours_used}（限 ${p.limit_hours} 工作时）`),
      fact("点位", el("span", { "data-field": "place" }, place)),
      fact("责任单位", el("span", { "data-field": "unit" }, unit)),
      fact("类别 / 严重程度", `${p.category} / ${p.severity}`),
      fact("发现", when(p.found_at)), fact("上报", when(p.reported_at)), fact("交办", when(p.assigned_at)),
      fact("整改期限", when(p.deadline)), fact("签收", when(p.acknowledged_at)),
      fact("反馈整改", when(p.last_submitted_at)), fact("销号", when(p.closed_at)),
      fact("返工 / 延期 / 转办", `${p.rework_count} / ${p.extension_count} / ${p.transfer_count}`)),
    el("p", {}, el("a", { href: pageLink("audit.html", { kind: "problems", id: p.problem_id }) }, "审计履历与知情视图")));
    const [photos, photosBody] = section("photos", "照片");
    const refs = [...p.evidence.map((r) => [r, "发现"]), ...p.submitted_evidence.map((r) => [r, "整改"])];
    photosBody.append(refs.length ? el("ul", { class: "photos" }, refs.map(([r, what]) => photo(r, what)))
      : el("p", {}, "没有照片。"));
    const [timeline, timelineBody] = section("timeline", `履历（${body.timeline.length} 条）`);
    timelineBody.append(sortableTable([
      { key: "version", label: "序号", numeric: true },
      { key: "occurred_at", label: "发生时间", render: (r) => when(r.occurred_at) },
      { key: "recorded_at", label: "录入时间", render: (r) => when(r.recorded_at) },
      { key: "actor_name", label: "操作人", value: (r) => `${r.actor_name || ""}（${r.actor_role}）` },
      { key: "summary_zh", label: "事项" },
    ], body.timeline, { caption: "问题履历", id: "timeline-table" }), dataLink(url));
    ctx.main.append(facts, photos, timeline);
    ctx.ready(`截至 ${when(body.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
