// 总览 (HQ overview): open problems by light, per grid and sub-command; the weekly 结案率/按期结案率 trend;
// escalations by level; notices awaiting 签收; the current 红黑榜. It reads the API again every `refresh` seconds
// (?refresh=N, default 30, at least 2) and says how fresh the read models are: the event log's head and how many
// events the slowest read model it used still has to apply (projection lag).

import { apiUrl, getJSON, lagOf } from "./api.js";
import { COLORS, disposeCharts, drawChart, stackedLights } from "./charts.js";
import { $, clear, day, el, figure, LIGHT_ZH, num, pageLink, params, pct, when } from "./dom.js";
import { describeError, section, startPage } from "./layout.js";
import { dataLink, sortableTable } from "./table.js";

const LIGHTS = ["red", "yellow", "green", "unassigned"];
const WEEKS = 8;

function tiles(lights, escalations, pending) {
  const tile = (key, label, value, href) => el("li", { class: `tile tile-${key}`, "data-key": key },
    el("a", { href }, el("span", { class: "tile-value", "data-value": String(value) }, num(value)),
      el("span", { class: "tile-label" }, label)));
  const pendingText = pending.rows.length >= 5000 ? "≥5000" : pending.rows.length;
  return el("ul", { class: "tiles", "aria-label": "关键数字" },
    tile("open", "未销号问题", lights.open, pageLink("ledger.html", { open: "1" })),
    ...LIGHTS.map((l) => tile(l, LIGHT_ZH[l], lights.by_light[l], pageLink("ledger.html", { light: l, open: "1" }))),
    tile("overdue", "超期未整改", lights.overdue, pageLink("ledger.html", { overdue: "1", open: "1" })),
    tile("pending", "待签收通知", pendingText, "#pending"),
    tile("escalations", "督办中事项", escalations.total, pageLink("escalations.html")));
}

function lightChart(body, lights, url) {
  const box = el("div", { class: "chart chart-small", id: "chart-lights" });
  body.append(box, dataLink(url));
  drawChart(box, {
    tooltip: { trigger: "item" },
    grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: LIGHTS.map((l) => LIGHT_ZH[l]) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", name: "未销号问题", label: { show: true, position: "top" },
      data: LIGHTS.map((l) => ({ value: lights.by_light[l], itemStyle: { color: COLORS[l] }, light: l })) }],
  }, {
    label: `未销号问题按三色：${LIGHTS.map((l) => `${LIGHT_ZH[l]} ${lights.by_light[l]}`).join("，")}`,
    onClick: (p) => location.assign(pageLink("ledger.html", { light: LIGHTS[p.dataIndex], open: "1" })),
  });
}

function groupChart(body, id, groups, filterKey, url, what) {
  const shown = groups.filter((g) => g.open > 0);
  const box = el("div", { class: "chart", id, style: `height:${Math.max(160, 40 + shown.length * 24)}px` });
  const links = el("ul", { class: "chart-links" }, shown.map((g) => el("li", {},
    el("a", { href: pageLink("ledger.html", { [filterKey]: g.id || "none", open: "1" }) }, g.name || "（未归属）"),
    ` ${g.open}（红 ${g.red}）`)));
  body.append(box, el("details", {}, el("summary", {}, `${what}明细`), links), dataLink(url));
  drawChart(box, stackedLights(shown, LIGHTS, LIGHT_ZH), {
    label: `${what}未销号问题按三色，共 ${shown.length} 组`,
    onClick: (p) => location.assign(pageLink("ledger.html",
      { [filterKey]: shown[p.dataIndex].id || "none", light: LIGHTS[p.seriesIndex], open: "1" })),
  });
}

/** The Monday-to-Sunday weeks ending with the one that holds `until` (oldest first), as days inside them. */
function weekDays(until) {
  const end = new Date(`${until}T12:00:00Z`);
  return Array.from({ length: WEEKS }, (_, i) => {
    const d = new Date(end.getTime() - (WEEKS - 1 - i) * 7 * 86400000);
    return d.toISOString().slice(0, 10);
  });
}

async function trend(ctx, lights) {
  const until = day(lights.trend_until || lights.as_of);
  const urls = weekDays(until).map((d) => apiUrl(`/campaigns/${ctx.campaignId}/metrics`,
    { by: "campaign", period: "week", day: d, as_of: ctx.asOf }));
  const bodies = await Promise.all(urls.map(getJSON));
  return { urls, bodies };
}

function trendChart(body, { urls, bodies }) {
  const box = el("div", { class: "chart", id: "chart-trend" });
  const labels = bodies.map((b) => b.period.start.slice(5));
  const rate = (key) => bodies.map((b) => b.totals.figures[key].value === null ? null
    : Math.round(b.totals.figures[key].value * 1000) / 10);
  const latest = bodies[bodies.length - 1];
  const rows = bodies.map((b, i) => ({ week: b.period.label_zh, day: b.period.start, url: urls[i],
    closure: b.totals.figures.closure_rate, onTime: b.totals.figures.on_time_closure_rate }));
  body.append(
    el("p", { class: "note" }, `截至 ${latest.period.label_zh}（最近有问题到期的一周）；每周按期内应结案问题计算。`),
    box,
    sortableTable([
      { key: "week", label: "周", value: (r) => r.day, render: (r) => el("a", { href: pageLink("rankings.html",
        { period: "week", day: r.day }) }, r.week) },
      { key: "closure", label: "结案率", numeric: true, value: (r) => r.closure.value, render: (r) => figure(r.closure) },
      { key: "onTime", label: "按期结案率", numeric: true, value: (r) => r.onTime.value, render: (r) => figure(r.onTime) },
    ], rows, { caption: "每周结案率与按期结案率（分子/分母）", id: "trend-table" }),
    el("details", {}, el("summary", {}, "数据（每周一个 JSON）"), urls.map((u) => dataLink(u))));
  drawChart(box, {
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "—" : `${v}%`) },
    legend: { top: 0 },
    grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: labels },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: [
      { name: "结案率", type: "line", data: rate("closure_rate"), connectNulls: false, itemStyle: { color: "#1565c0" } },
      { name: "按期结案率", type: "line", data: rate("on_time_closure_rate"), itemStyle: { color: "#6a1b9a" } },
    ],
  }, {
    label: `近${WEEKS}周结案率与按期结案率，最近一周结案率 ${pct(latest.totals.figures.closure_rate.value)}`,
    onClick: (p) => location.assign(pageLink("rankings.html", { period: "week", day: rows[p.dataIndex].day })),
  });
}

function levelChart(body, escalations, url) {
  const levels = escalations.overview.by_level;
  const box = el("div", { class: "chart chart-small", id: "chart-levels" });
  body.append(box, sortableTable([
    { key: "level", label: "级别", numeric: true },
    { key: "level_zh", label: "措施", render: (r) => el("a", { href: pageLink("escalations.html", { level: r.level }) },
      r.level_zh) },
    { key: "open", label: "事项", numeric: true },
  ], levels, { caption: "督办事项按级别", id: "levels-table" }), dataLink(url));
  drawChart(box, {
    tooltip: { trigger: "item" },
    grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: levels.map((l) => `${l.level}级 ${l.level_zh}`) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", name: "督办事项", data: levels.map((l) => l.open), itemStyle: { color: "#ad1457" },
      label: { show: true, position: "top" } }],
  }, {
    label: `督办事项按级别：${levels.map((l) => `${l.level_zh} ${l.open}`).join("，")}`,
    onClick: (p) => location.assign(pageLink("escalations.html", { level: levels[p.dataIndex].level })),
  });
}

function pendingTable(body, pending, url) {
  const rows = pending.rows.slice(0, 10);
  body.append(el("p", {}, `待签收通知 ${pending.rows.length >= 5000 ? "≥5000" : pending.rows.length} 件，最新 ${rows.length} 件：`),
    sortableTable([
      { key: "issued_at", label: "下发时间", render: (r) => when(r.issued_at) },
      { key: "to", label: "接收单位", value: (r) => r.recipients.map((x) => x.name).join("、") },
      { key: "text_zh", label: "内容", render: (r) => r.subject_kind === "problem"
        ? el("a", { href: pageLink("problem.html", { id: r.subject_id }) }, r.text_zh) : r.text_zh },
      { key: "ack_due_at", label: "签收期限", render: (r) => when(r.ack_due_at) },
    ], rows, { caption: "待签收通知（最新10件）", id: "pending-table", empty: "没有待签收的通知" }), dataLink(url));
}

function redBlack(body, bulletins, url) {
  const issued = bulletins.rows.filter((b) => b.issued_at).sort((a, b) => (a.issued_at < b.issued_at ? 1 : -1));
  const latest = issued[0];
  if (!latest) {
    body.append(el("p", {}, "尚无已发布的通报。"), dataLink(url));
    return;
  }
  const list = (rows, caption, id) => sortableTable([
    { key: "rank", label: "名次", numeric: true },
    { key: "name", label: "单位" },
    { key: "on_time_rate", label: "按期整改率", numeric: true, render: (r) => pct(r.on_time_rate) },
  ], rows, { caption, id });
  body.append(el("p", {}, el("a", { href: pageLink("rankings.html") }, latest.title), `（${when(latest.issued_at)} 发布）`),
    el("div", { class: "two" }, list(latest.red_list, "红榜", "red-list"), list(latest.black_list, "黑榜", "black-list")),
    dataLink(url));
}

function freshness(bodies) {
  const lags = bodies.map(lagOf).filter((v) => v !== null);
  const lag = lags.length ? Math.max(...lags) : null;
  const head = Math.max(...bodies.map((b) => b.log_head || 0));
  const node = $("#freshness");
  node.dataset.lag = String(lag);
  node.dataset.logHead = String(head);
  const refreshes = Number(node.dataset.refreshes || 0) + 1;
  node.dataset.refreshes = String(refreshes);
  const stamp = new Date().toLocaleTimeString("zh-CN", { hour12: false });
  clear(node, el("strong", {}, lag === 0 ? "数据实时" : `读模型滞后 ${lag} 条事件`),
    `：事件日志位置 ${head}，页面更新于 ${stamp}（第 ${refreshes} 次读取）`);
  node.classList.toggle("stale", lag !== 0);
}

async function load(ctx, layout) {
  const c = ctx.campaignId;
  const urls = {
    lights: apiUrl(`/campaigns/${c}/ledger/lights`, { as_of: ctx.asOf }),
    escalations: apiUrl(`/campaigns/${c}/escalations`, { limit: 1, as_of: ctx.asOf }),
    pending: apiUrl(`/campaigns/${c}/notices`, { pending: "true", limit: 5000 }),
    bulletins: apiUrl(`/campaigns/${c}/bulletins`),
  };
  const [lights, escalations, pending, bulletins] = await Promise.all(
    [urls.lights, urls.escalations, urls.pending, urls.bulletins].map(getJSON));
  const weekly = await trend(ctx, lights);
  disposeCharts(ctx.main);
  clear(layout.tiles, tiles(lights, escalations, pending));
  clear(layout.lights); lightChart(layout.lights, lights, urls.lights);
  clear(layout.grids); groupChart(layout.grids, "chart-grids", lights.by_grid, "grid_id", urls.lights, "各网格");
  clear(layout.subs); groupChart(layout.subs, "chart-subs", lights.by_sub_command, "sub_command_id", urls.lights, "各分指挥部");
  clear(layout.levels); levelChart(layout.levels, escalations, urls.escalations);
  clear(layout.pending); pendingTable(layout.pending, pending, urls.pending);
  clear(layout.bulletin); redBlack(layout.bulletin, bulletins, urls.bulletins);
  clear(layout.trend); trendChart(layout.trend, weekly);
  freshness([lights, escalations, pending, bulletins, ...weekly.bodies]);
}

async function main() {
  const ctx = await startPage("index.html");
  if (!ctx) return;
  const panels = [["lights", "未销号问题（三色）"], ["trend", "本周结案率与按期结案率走势"], ["levels", "督办事项按级别"],
    ["grids", "各网格未销号问题"], ["subs", "各分指挥部未销号问题"], ["pending", "待签收"], ["bulletin", "红黑榜（最新通报）"]];
  const layout = { tiles: el("div", { id: "tiles" }) };
  const grid = el("div", { class: "board" });
  for (const [id, title] of panels) {
    const [node, body] = section(id, title);
    layout[id] = body;
    grid.append(node);
  }
  ctx.main.append(el("p", { id: "freshness", class: "freshness", role: "status", "aria-live": "polite" }, "正在读取…"),
    layout.tiles, grid);
  const every = Math.max(2, Number(params().get("refresh") || 30));
  const tick = async () => {
    try {
      await load(ctx, layout);
      ctx.ready(`每 ${every} 秒自动刷新`);
    } catch (error) {
      ctx.fail(error);
      $("#freshness").textContent = describeError(error);
    }
    setTimeout(tick, every * 1000);
  };
  await tick();
}

main();
