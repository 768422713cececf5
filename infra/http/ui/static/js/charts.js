// Charts with Apache ECharts (vendored: vendor/echarts, 6.1.0, loaded by the page before this module). Each chart
// is an image to assistive technology with a label saying what it shows; its figures are also in a table or a
// list of links on the page, so nothing is reachable by mouse alone.

export const ECHARTS_VERSION = "6.1.0";
export const COLORS = { red: "#c62828", yellow: "#f9a825", green: "#2e7d32", unassigned: "#607d8b" };

const charts = new Set();
window.addEventListener("resize", () => charts.forEach((c) => c.resize()));

/** Draw `option` into `container` (replacing any chart there); `onClick(params)` on a data item. */
export function drawChart(container, option, { label, onClick } = {}) {
  const echarts = window.echarts;
  if (!echarts) throw new Error("ECharts 未加载");
  let chart = echarts.getInstanceByDom(container);
  if (!chart) {
    chart = echarts.init(container, null, { renderer: "canvas", locale: "ZH" });
    charts.add(chart);
  }
  container.setAttribute("role", "img");
  if (label) container.setAttribute("aria-label", label);
  chart.setOption({ animation: false, aria: { enabled: false }, textStyle: { fontFamily: "Noto Sans CJK SC, sans-serif" },
    ...option }, true);
  chart.off("click");
  if (onClick) chart.on("click", onClick);
  container.dataset.drawn = "true";
  return chart;
}

/** Dispose of the charts drawn under `root` before it is redrawn (the overview redraws on every poll). */
export function disposeCharts(root) {
  for (const node of root.querySelectorAll("[data-drawn]")) {
    const chart = window.echarts?.getInstanceByDom(node);
    if (chart) {
      charts.delete(chart);
      chart.dispose();
    }
  }
}

/** Stacked bars per group (one series per light), categories down the side. */
export function stackedLights(groups, lights, names) {
  return {
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    legend: { top: 0 },
    grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: groups.map((g) => g.name || "（未归属）") },
    series: lights.map((light) => ({
      name: names[light], type: "bar", stack: "open", itemStyle: { color: COLORS[light] },
      data: groups.map((g) => g[light]),
    })),
  };
}
