// Every page's frame: the login check, the header (navigation, the campaign, the instant read at, logout), the
// status line, and the `data-ready` mark the browser tests wait on. A page calls `startPage(...)`, renders
// into `ctx.main`, and calls `ctx.ready()` once its figures are on screen.

import { ApiError, campaigns, chooseCampaign, forget, requireLogin } from "./api.js";
import { $, clear, el, pageLink, params, withParams } from "./dom.js";

export const PAGES = [
  ["index.html", "总览"],
  ["ledger.html", "整改台账"],
  ["escalations.html", "督办清单"],
  ["liaison.html", "挂钩联系"],
  ["rankings.html", "排名与通报"],
  ["audit.html", "审计"],
  ["matrix.html", "责任矩阵"],
];

function nav(current) {
  return el("nav", { "aria-label": "主导航" },
    el("ul", {}, PAGES.map(([href, label]) =>
      el("li", {}, el("a", { href: pageLink(href), "aria-current": href === current ? "page" : null }, label)))));
}

function campaignPicker(list, chosen) {
  const select = el("select", { id: "campaign-select", name: "campaign" },
    list.map((c) => el("option", { value: c.campaign_id, selected: c.campaign_id === chosen?.campaign_id }, c.name)));
  select.addEventListener("change", () => {
    chooseCampaign(select.value);
    location.assign(withParams({ campaign: select.value }));
  });
  return el("div", { class: "field" }, el("label", { for: "campaign-select" }, "创建活动"), select);
}

/** The instant every read is made at: ?as_of= (a local date-time in the campaign's zone), or now. */
function asOfForm() {
  const current = params().get("as_of") || "";
  const input = el("input", { id: "as-of", name: "as_of", type: "datetime-local", value: current.slice(0, 16) });
  const form = el("form", { class: "as-of", role: "search", "aria-label": "数据时点" },
    el("label", { for: "as-of" }, "数据时点"), input,
    el("button", { type: "submit" }, "查看"),
    current ? el("a", { href: withParams({ as_of: null }) }, "回到现在") : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.assign(withParams({ as_of: input.value ? `${input.value}:00` : null }));
  });
  return form;
}

function logout() {
  const button = el("button", { type: "button", class: "logout" }, "退出");
  button.addEventListener("click", () => {
    forget();
    location.assign("login.html");
  });
  return button;
}

/** Explain an API refusal in words (403: what this token may not read; others: the API's message). */
export function describeError(error) {
  if (error instanceof ApiError) {
    const code = error.body?.code ? `（${error.body.code}）` : "";
    if (error.status === 403) return `无权查看：${error.message}${code}`;
    return `读取失败：${error.message}${code}`;
  }
  return `读取失败：${error?.message || error}`;
}

export async function startPage(current) {
  if (!requireLogin()) return null;
  const header = $("#top");
  const main = $("#main");
  const status = $("#status");
  const ctx = {
    main, asOf: params().get("as_of") || null, campaign: null, campaignId: null,
    say(text) { status.textContent = text; },
    fail(error) {
      status.textContent = describeError(error);
      status.classList.add("error");
      document.body.dataset.ready = "error";
    },
    ready(text = "") {
      status.textContent = text;
      if (!document.body.dataset.readyMs) document.body.dataset.readyMs = String(Math.round(performance.now()));
      document.body.dataset.ready = "true";
    },
  };
  try {
    const { list, chosen } = await campaigns();
    ctx.campaign = chosen;
    ctx.campaignId = chosen?.campaign_id || null;
    clear(header,
      el("div", { class: "brand" }, el("span", { class: "brand-title" }, "督导驾驶舱"),
        el("span", { class: "brand-sub" }, chosen ? chosen.name : "无可查看的创建活动")),
      nav(current),
      el("div", { class: "controls" }, list.length ? campaignPicker(list, chosen) : null, asOfForm(), logout()));
    if (!chosen) ctx.fail(new Error("该令牌看不到任何创建活动"));
  } catch (error) {
    clear(header, el("div", { class: "brand" }, el("span", { class: "brand-title" }, "督导驾驶舱")), nav(current));
    ctx.fail(error);
    return null;
  }
  return ctx.campaignId ? ctx : null;
}

/** A page section with a heading; returns [section, body] so callers fill the body. */
export function section(id, title, ...extra) {
  const heading = el("h2", { id: `${id}-title` }, title);
  const body = el("div", { class: "section-body" });
  const node = el("section", { id, class: "panel", "aria-labelledby": `${id}-title` }, heading, ...extra, body);
  return [node, body];
}
