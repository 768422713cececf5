// Sortable tables and the links under every chart and table: the JSON the figures come from (opened with the
// session's token), and the CSV/XLSX exports where the API has them. Sorting is by a column header button,
// so it works from the keyboard, and `aria-sort` tells a screen reader the order.

import { apiUrl, download, getJSON } from "./api.js";
import { clear, el } from "./dom.js";

const MAX_ROWS = 1000;

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined || a === "") return 1;
  if (b === null || b === undefined || b === "") return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "zh-CN", { numeric: true });
}

/**
 * A table: columns [{key, label, value?(row) → sortable value, render?(row) → node/text, numeric?}], rows.
 * Options: caption, id, empty (text when no rows), rowAttrs(row) → attributes of the <tr>.
 */
export function sortableTable(columns, rows, { caption, id, empty = "无数据", rowAttrs } = {}) {
  let order = { key: null, dir: 1 };
  const tbody = el("tbody");
  const valueOf = (col, row) => (col.value ? col.value(row) : row[col.key]);
  const headerCells = columns.map((col) => {
    const button = el("button", { type: "button", class: "sort" }, col.label);
    const th = el("th", { scope: "col", "aria-sort": "none", class: col.numeric ? "num" : null }, button);
    button.addEventListener("click", () => {
      order = { key: col.key, dir: order.key === col.key ? -order.dir : 1 };
      headerCells.forEach((cell) => cell.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", order.dir === 1 ? "ascending" : "descending");
      fill();
    });
    return th;
  });

  function fill() {
    let shown = rows;
    if (order.key !== null) {
      const col = columns.find((c) => c.key === order.key);
      shown = [...rows].sort((a, b) => order.dir * compare(valueOf(col, a), valueOf(col, b)));
    }
    const trs = shown.slice(0, MAX_ROWS).map((row) => el("tr", rowAttrs ? rowAttrs(row) : {},
      columns.map((col) => el("td", { class: col.numeric ? "num" : null },
        col.render ? col.render(row) : valueOf(col, row) ?? "—"))));
    if (!rows.length) trs.push(el("tr", {}, el("td", { colspan: columns.length, class: "empty" }, empty)));
    clear(tbody, trs);
  }

  fill();
  const table = el("table", { id, class: "data" },
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, headerCells)), tbody);
  const note = rows.length > MAX_ROWS
    ? el("p", { class: "note" }, `共 ${rows.length} 行，页面显示前 ${MAX_ROWS} 行；全部数据见导出文件或 JSON。`) : null;
  return el("div", { class: "table-wrap" }, table, note);
}

/** Open a JSON body in a new tab (fetched with the token; the link's href is the API URL, to copy or curl). */
async function openJson(url) {
  const body = await getJSON(url);
  const blob = new Blob([JSON.stringify(body, null, 2)], { type: "application/json" });
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

/** "数据：<the API URL>" — the JSON a chart or table is drawn from. */
export function dataLink(url, label = "数据（JSON）") {
  const link = el("a", { href: url, class: "data-link", "data-api": url }, label);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openJson(url);
  });
  return el("p", { class: "source" }, link, " ", el("code", {}, url));
}

/** Export links (CSV/XLSX) for an API path; the file is fetched with the token and saved. */
export function exportLinks(path, query, formats = ["csv", "xlsx"]) {
  return el("p", { class: "exports" }, "导出：", formats.map((fmt) => {
    const url = apiUrl(`${path}.${fmt}`, query);
    const link = el("a", { href: url, class: `export export-${fmt}`, "data-api": url }, fmt.toUpperCase());
    link.addEventListener("click", (event) => {
      event.preventDefault();
      download(url, `export.${fmt}`);
    });
    return [link, " "];
  }));
}
