// Small DOM and formatting helpers shared by every page: building elements without innerHTML (API text is
// never parsed as markup), numbers and rates as the 数字城管 reports print them, instants in the campaign's zone.

/** An element: el("a", {href: "x", class: "c"}, "text", child, ...); attributes set to null are left out. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** A rate (0..1) as a percentage with one decimal, "—" when there is nothing to divide. */
export function pct(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}

/** A figure {value, numerator, denominator} as "72.8%（126/173）". */
export function figure(f) {
  if (!f) return "—";
  return `${pct(f.value)}（${f.numerator}/${f.denominator}）`;
}

export function num(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString("zh-CN");
}

/** An ISO instant (the API already renders it in the campaign's zone) as "2021-12-21 09:00". */
export function when(iso) {
  if (!iso) return "—";
  const m = String(iso).match(/^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/);
  return m ? `${m[1]} ${m[2]}` : String(iso);
}

export function day(iso) {
  return iso ? String(iso).slice(0, 10) : "—";
}

export const LIGHT_ZH = { red: "红灯", yellow: "黄灯", green: "绿灯", unassigned: "未交办" };
export const STATE_ZH = {
  reported: "已上报", assigned: "已交办", acknowledged: "已签收", rectification_submitted: "已反馈待复查",
  rework: "返工", verified: "复查通过", closed: "已销号", withdrawn: "已作废", merged: "已合并",
};
export const ROLE_ZH = { lead: "牵头", co: "配合", liaison: "挂钩领导", bao_bao: "包保责任人" };

/** A traffic light as a labelled badge (colour and text, so colour is never the only cue). */
export function lightBadge(light) {
  const key = light || "unassigned";
  return el("span", { class: `badge light-${key}` }, LIGHT_ZH[key] || key);
}

export function params() {
  return new URLSearchParams(location.search);
}

/** This page's URL with some query parameters changed (null removes one). */
export function withParams(changes, path = location.pathname) {
  const query = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") query.delete(k);
    else query.set(k, v);
  }
  const q = query.toString();
  return q ? `${path}?${q}` : path;
}

/** A link to another dashboard page that keeps the chosen campaign and as_of. */
export function pageLink(page, extra = {}) {
  const keep = params();
  const query = new URLSearchParams();
  for (const k of ["campaign", "as_of"]) if (keep.get(k)) query.set(k, keep.get(k));
  for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined && v !== "") query.set(k, v);
  const q = query.toString();
  return q ? `${page}?${q}` : page;
}
