// The login page: the token is checked against the API (GET /campaigns) and kept in sessionStorage for this tab.

import { apiUrl, forget, saveToken } from "./api.js";

const form = document.getElementById("login-form");
const status = document.getElementById("status");
document.body.dataset.ready = "true";

function next() {
  const wanted = new URLSearchParams(location.search).get("next") || "index.html";
  return /^[a-z]+\.html(\?.*)?$/.test(wanted) ? wanted : "index.html";  // only a page of this dashboard
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = form.token.value.trim();
  status.textContent = "正在验证…";
  const response = await fetch(apiUrl("/campaigns"), { headers: { Authorization: `Bearer ${value}` } });
  if (!response.ok) {
    forget();
    status.textContent = response.status === 401 ? "令牌无效、已撤销或已过期" : `登录失败（HTTP ${response.status}）`;
    status.classList.add("error");
    return;
  }
  saveToken(value);
  location.assign(next());
});
