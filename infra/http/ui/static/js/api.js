// The dashboard's one door to the JSON API: the bearer token kept for this browser session (sessionStorage,
// set by the login page), URLs with their query, GETs that send the token, and downloads of the CSV/XLSX
// exports (a plain link cannot carry the Authorization header, so the file is fetched and saved).
// Nothing here decides what a role may see: the API answers with what the token may read, and a refusal
// (401/403) is shown as such.

const TOKEN_KEY = "dudao.token";
const CAMPAIGN_KEY = "dudao.campaign";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(CAMPAIGN_KEY);
}

export function loginUrl() {
  const here = location.pathname.split("/").pop() + location.search;
  return `login.html?next=${encodeURIComponent(here)}`;
}

/** Send the browser to the login page unless a token is kept; true when one is. */
export function requireLogin() {
  if (token()) return true;
  location.replace(loginUrl());
  return false;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message_zh || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** An API path with its query string; null, undefined and "" values are left out. */
export function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") query.set(k, String(v));
  }
  const q = query.toString();
  return q ? `${path}?${q}` : path;
}

function headers(accept) {
  return { Authorization: `Bearer ${token()}`, Accept: accept };
}

async function refusal(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 401) {
    forget();
    location.replace(loginUrl());
  }
  return new ApiError(response.status, body);
}

/** GET a JSON body with the session's token; throws ApiError for any non-2xx answer (401: back to login). */
export async function getJSON(url) {
  const response = await fetch(url, { headers: headers("application/json") });
  if (!response.ok) throw await refusal(response);
  return response.json();
}

/** GET a binary body (a photo) as an object URL the page may show. */
export async function getBlobUrl(url) {
  const response = await fetch(url, { headers: headers("*/*") });
  if (!response.ok) throw await refusal(response);
  return URL.createObjectURL(await response.blob());
}

function filenameOf(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const star = disposition.match(/filename\*=UTF-8''([^;]+)/i);
  if (star) return decodeURIComponent(star[1]);
  const plain = disposition.match(/filename="([^"]+)"/i);
  return plain ? plain[1] : fallback;
}

/** Fetch an export with the token and save it under the name the API gives it. */
export async function download(url, fallbackName) {
  const response = await fetch(url, { headers: headers("*/*") });
  if (!response.ok) throw await refusal(response);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filenameOf(response, fallbackName);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 0);
}

/** The campaign the pages read: ?campaign= in the URL, else the last one chosen, else the newest the token sees. */
export async function campaigns() {
  const body = await getJSON(apiUrl("/campaigns", {}));
  const wanted = new URLSearchParams(location.search).get("campaign") || sessionStorage.getItem(CAMPAIGN_KEY);
  const chosen = body.rows.find((c) => c.campaign_id === wanted) || body.rows[0] || null;
  if (chosen) sessionStorage.setItem(CAMPAIGN_KEY, chosen.campaign_id);
  return { list: body.rows, chosen };
}

export function chooseCampaign(campaignId) {
  sessionStorage.setItem(CAMPAIGN_KEY, campaignId);
}

/** The read model's lag behind the event log, from a list body's positions (null when it has none). */
export function lagOf(body) {
  if (!body || typeof body.log_head !== "number" || typeof body.projection_position !== "number") return null;
  return Math.max(body.log_head - body.projection_position, 0);
}
