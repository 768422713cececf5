// 排名与通报: the period's ranking by one figure with its numerator and denominator (and the formula), as a chart and
// a table with CSV/XLSX exports; and the bulletins (通报) issued, with their 红黑榜 and 红黄旗.

import { apiUrl, getJSON } from "./api.js";
import { drawChart } from "./charts.js";
import { day, el, pageLink, params, pct, when } from "./dom.js";
import { section, startPage } from "./layout.js";
import { dataLink, exportLinks, sortableTable } from "./table.js";

const METRICS = [["on_time_closure_rate", "按期结案率"], ["closure_rate", "结案率"], ["rectification_rate", "整改率"],
  ["rework_rate", "返工率"], ["extension_rate", "延期率"], ["overdue_open_rate", "超期未处置率"], ["relapse_rate", "反弹率"],
  ["ack_timeliness", "签收及时率"], ["mean_hours_to_close", "平均结案用时（工作时）"], ["report_timeliness", "任务报送及时率"]];
const BY = [["unit", "责任单位"], ["grid", "网格"], ["sub_command", "分指挥部"]];
const PERIODS = [["week", "周"], ["month", "月"], ["two_month", "双月"], ["all", "创建以来"], ["custom", "自定义"]];
const FILTER_OF = { unit: "unit_id", grid: "grid_id", sub_command: "sub_command_id" };

function select(name, label, options, current) {
  const id = `rank-${name}`;
  return el("div", { class: "field" }, el("label", { for: id }, label),
    el("select", { id, name }, options.map(([v, t]) => el("option", { value: v, selected: v === current }, t))));
}

function form(q, chosen) {
  const keep = ["campaign", "as_of"].filter((k) => q.get(k)).map((k) =>
    el("input", { type: "hidden", name: k, value: q.get(k) }));
  const date = (name, label, value) => el("div", { class: "field" }, el("label", { for: `rank-${name}` }, label),
    el("input", { id: `rank-${name}`, name, type: "date", value: value || "" }));
  return el("form", { class: "filters", method: "get", action: "rankings.html", "aria-label": "排名条件" }, keep,
    select("by", "分组", BY, chosen.by), select("metric", "指标", METRICS, chosen.metric),
    select("period", "周期", PERIODS, chosen.period), date("day", "周期内某日", chosen.day),
    date("start", "自定义起", chosen.start), date("end", "自定义止", chosen.end),
    el("button", { type: "submit" }, "排名"));
}

const shown = (metric, value) => (value === null ? "—" : metric === "mean_hours_to_close" ? value.toFixed(2) : pct(value));

function chart(box, body, chosen) {
  const rows = body.rows.filter((r) => r.value !== null);
  box.style.height = `${Math.max(160, 40 + rows.length * 22)}px`;
  const hours = chosen.metric === "mean_hours_to_close";
  drawChart(box, {
    tooltip: { trigger: "item" },
    grid: { left: 8, right: 48, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: "value", max: hours ? null : 100, axisLabel: { formatter: hours ? "{value}" : "{value}%" } },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => `${r.rank}. ${r.name}`) },
    series: [{ type: "bar", name: body.metric_zh, itemStyle: { color: "#1565c0" },
      label: { show: true, position: "right", formatter: (p) => shown(chosen.metric, rows[p.dataIndex].value) },
      data: rows.map((r) => (hours ? r.value : Math.round(r.value * 1000) / 10)) }],
  }, {
    label: `${body.period.label_zh}${body.metric_zh}排名，共 ${rows.length} 个`,
    onClick: (p) => location.assign(pageLink("ledger.html", { [FILTER_OF[chosen.by]]: rows[p.dataIndex].key })),
  });
}

function bulletins(body) {
  const names = (list) => (list || []).map((x) => x.name).join("、") || "—";
  return sortableTable([
    { key: "title", label: "通报", render: (b) => el("details", {}, el("summary", {}, b.title),
      el("p", { class: "bulletin-body" }, b.body_zh)) },
    { key: "period_start", label: "期间", render: (b) => el("a", { href: pageLink("rankings.html",
      { period: "custom", start: b.period_start, end: b.period_end }) }, `${b.period_start} 至 ${b.period_end}`) },
    { key: "issued_at", label: "发布", render: (b) => (b.issued_at ? when(b.issued_at) : "草稿") },
    { key: "red_list", label: "红榜", value: (b) => names(b.red_list) },
    { key: "black_list", label: "黑榜", value: (b) => names(b.black_list) },
    { key: "flags", label: "红黄旗", value: (b) => (b.flags || []).map((f) => `${f.flag === "red" ? "红旗" : "黄旗"}:${f.name}`).join("、") },
  ], [...body.rows].reverse(), { caption: "通报（新者在前）", id: "bulletins-table", empty: "尚无通报" });
}

async function main() {
  const ctx = await startPage("rankings.html");
  if (!ctx) return;
  const q = params();
  const chosen = { by: q.get("by") || "unit", metric: q.get("metric") || "on_time_closure_rate",
    period: q.get("period") || "month", day: q.get("day") || (ctx.asOf ? day(ctx.asOf) : ""),
    start: q.get("start") || "", end: q.get("end") || "" };
  const query = { by: chosen.by, metric: chosen.metric, period: chosen.period, day: chosen.day || null,
    start: chosen.period === "custom" ? chosen.start : null, end: chosen.period === "custom" ? chosen.end : null,
    as_of: ctx.asOf };
  const url = apiUrl(`/campaigns/${ctx.campaignId}/rankings`, query);
  const bulletinsUrl = `/campaigns/${ctx.campaignId}/bulletins`;
  try {
    const [body, issued] = await Promise.all([url, bulletinsUrl].map(getJSON));
    const [choice, choiceBody] = section("choice", "条件");
    choiceBody.append(form(q, chosen));
    const [rank, rankBody] = section("ranking", `${body.period.label_zh} ${body.metric_zh}排名`);
    const box = el("div", { class: "chart", id: "chart-ranking" });
    rankBody.append(
      el("p", { class: "note", id: "formula" }, `${body.metric_zh} = ${body.formula_zh}（${body.lower_is_better ? "越低越好" : "越高越好"}）；${body.tie_break}；评判时点 ${when(body.judged_at)}`),
      box, exportLinks(`/campaigns/${ctx.campaignId}/rankings`, query),
      sortableTable([
        { key: "rank", label: "名次", numeric: true },
        { key: "name", label: "名称", render: (r) => el("a", { href: pageLink("ledger.html", { [FILTER_OF[chosen.by]]: r.key }) }, r.name) },
        { key: "value", label: body.metric_zh, numeric: true, render: (r) => shown(chosen.metric, r.value) },
        { key: "numerator", label: "分子", numeric: true },
        { key: "denominator", label: "分母", numeric: true },
      ], body.rows, { caption: `${body.metric_zh}排名（分子/分母）`, id: "ranking-table", empty: "该期间没有可排名的数据，请换一个期间",
        rowAttrs: (r) => ({ "data-key": r.key }) }),
      dataLink(url));
    const [bull, bullBody] = section("bulletins", "通报");
    bullBody.append(bulletins(issued), dataLink(bulletinsUrl));
    ctx.main.append(choice, rank, bull);
    chart(box, body, chosen);
    ctx.ready(`截至 ${when(body.as_of)}`);
  } catch (error) {
    ctx.fail(error);
  }
}

main();
