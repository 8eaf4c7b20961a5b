// govgate security console: talks to the admin API (/api/…). Every value from an event is
// attacker-controlled, so text is only ever set with textContent, never as HTML.
"use strict";

const T = {
  zh: {
    title: "安全控制台", logout: "退出", login: "登录", login_help: "安全人员（角色 security）请输入控制台密码。", password: "密码",
    from: "从", to: "到", ip: "IP / CIDR", app_name: "应用", rule: "规则", tag: "标签", kind: "类型", action: "处置", text: "全文",
    any: "全部", search: "查询", over_time: "攻击趋势（每小时）", top_sources: "主要来源 IP", top_rules: "主要规则", time: "时间",
    request: "请求", rules: "规则", prev: "上一页", next: "下一页", detail: "事件详情", close: "关闭", false_positive: "标记为误报",
    bans: "封禁", network: "IP 或网段", expires: "期限", forever: "永久", reason: "原因", by: "操作人", ban: "封禁", unban: "解除",
    ban_source: "封禁来源", summary: (n, a, b) => `共 ${n} 条事件，显示第 ${a}–${b} 条`, banned: (n) => `已封禁 ${n}`,
    unbanned: (n) => `已解除封禁 ${n}`, wrong: "密码错误", locked: "尝试次数过多，请稍后再试", exclusion: "在策略中加入以下排除规则可消除此误报：",
    no_exclusion: "已标记为误报（此事件没有可排除的 WAF 规则）", none: "无", lang: "English",
  },
  en: {
    title: "Security console", logout: "Log out", login: "Log in", login_help: "Security staff (role security): enter the console password.", password: "Password",
    from: "From", to: "To", ip: "IP / CIDR", app_name: "App", rule: "Rule", tag: "Tag", kind: "Kind", action: "Action", text: "Text",
    any: "Any", search: "Search", over_time: "Attacks over time (per hour)", top_sources: "Top source IPs", top_rules: "Top rules", time: "Time",
    request: "Request", rules: "Rules", prev: "Previous", next: "Next", detail: "Event", close: "Close", false_positive: "Mark as false positive",
    bans: "Bans", network: "IP or network", expires: "Expires", forever: "never", reason: "Reason", by: "By", ban: "Ban", unban: "Unban",
    ban_source: "Ban source", summary: (n, a, b) => `${n} events, showing ${a}–${b}`, banned: (n) => `Banned ${n}`,
    unbanned: (n) => `Unbanned ${n}`, wrong: "Wrong password", locked: "Too many attempts: try again later", exclusion: "Add this exclusion to the policy to stop this false positive:",
    no_exclusion: "Marked as a false positive (no WAF rule to exclude)", none: "none", lang: "中文",
  },
};

let lang = localStorage.getItem("govgate.lang") || document.documentElement.lang || "zh";
let csrf = null;
// Where "Log out" goes when staff signed in through single sign-on (the gateway's logout).
let logoutUrl = null;
let offset = 0;
const PAGE = 50;
const $ = (id) => document.getElementById(id);
const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("lang").textContent = t("lang");
  document.title = "govgate · " + t("title");
}

async function api(method, path, body) {
  // A redirect means the single sign-on session is over: reloading the page logs in again.
  const opts = { method, credentials: "same-origin", redirect: "manual", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && csrf) opts.headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, opts);
  if (r.type === "opaqueredirect") {
    location.reload();
    return { status: 0, data: null };
  }
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (r.status === 401 && path !== "/api/login") showLogin();
  return { status: r.status, data };
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function showLogin() {
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "";
  $("password").focus();
}

async function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  await refresh();
}

function filterQuery() {
  const p = new URLSearchParams();
  for (const name of ["from", "to", "ip", "app", "rule", "tag", "kind", "action", "q"]) {
    const v = document.querySelector(`#filters [name=${name}]`).value.trim();
    if (v) p.set(name, v);
  }
  return p;
}

async function refresh() {
  await Promise.all([loadEvents(), loadCharts(), loadBans()]);
}

async function loadEvents() {
  const p = filterQuery();
  p.set("limit", PAGE);
  p.set("offset", offset);
  const r = await api("GET", "/api/events?" + p);
  $("filter-error").textContent = r.status === 200 ? "" : (r.data && r.data.message) || r.status;
  if (r.status !== 200) return;
  const body = $("events").querySelector("tbody");
  body.replaceChildren();
  for (const e of r.data.events) {
    const tr = el("tr", null, "event" + (e.false_positive ? " fp" : ""));
    tr.dataset.incident = e.incident_id;
    tr.appendChild(el("td", (e.time || "").replace("T", " ").slice(0, 19)));
    tr.appendChild(el("td", e.kind));
    tr.appendChild(el("td", e.action));
    tr.appendChild(el("td", e.client_ip || "-", "ip"));
    tr.appendChild(el("td", e.app));
    tr.appendChild(el("td", `${e.method} ${e.uri}`, "uri"));
    tr.appendChild(el("td", (e.rules || []).filter((x) => !(x.tags || []).includes("anomaly-evaluation")).map((x) => x.id).join(", ")));
    const cell = el("td");
    if (e.client_ip) {
      const b = el("button", t("ban_source"), "ban-ip");
      b.type = "button";
      b.dataset.ip = e.client_ip;
      b.addEventListener("click", (ev) => { ev.stopPropagation(); ban(e.client_ip, "24h", `incident ${e.incident_id}`); });
      cell.appendChild(b);
    }
    tr.appendChild(cell);
    tr.addEventListener("click", () => showDetail(e.incident_id));
    body.appendChild(tr);
  }
  const n = r.data.total;
  $("summary").textContent = t("summary")(n, n ? offset + 1 : 0, offset + r.data.events.length);
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + PAGE >= n;
}

function barChart(svg, items, label, horizontal) {
  svg.replaceChildren();
  const W = Number(svg.viewBox.baseVal.width), H = Number(svg.viewBox.baseVal.height);
  if (!items.length) { svg.appendChild(svgEl("text", { x: 8, y: 20 }, t("none"))); return; }
  const max = Math.max(1, ...items.map((i) => i.count));
  if (horizontal) {
    const rowH = Math.min(28, (H - 4) / items.length);
    items.forEach((it, i) => {
      const w = Math.max(2, ((W - 190) * it.count) / max);
      const y = 2 + i * rowH;
      svg.appendChild(svgEl("text", { x: 2, y: y + rowH * 0.65 }, label(it).slice(0, 30)));
      svg.appendChild(svgEl("rect", { x: 160, y: y + 2, width: w, height: rowH - 5, fill: "#b3261e", class: "bar" }));
      svg.appendChild(svgEl("text", { x: 164 + w, y: y + rowH * 0.65 }, it.count));
    });
  } else {
    const bw = (W - 20) / items.length;
    items.forEach((it, i) => {
      const h = Math.max(1, ((H - 30) * it.count) / max);
      const r = svgEl("rect", { x: 10 + i * bw, y: H - 15 - h, width: Math.max(1, bw - 2), height: h, fill: "#13315c", class: "bar" });
      r.appendChild(svgEl("title", {}, `${label(it)}: ${it.count}`));
      svg.appendChild(r);
    });
    svg.appendChild(svgEl("text", { x: 10, y: H - 2 }, label(items[0])));
    svg.appendChild(svgEl("text", { x: W - 10, y: H - 2, "text-anchor": "end" }, label(items[items.length - 1])));
    svg.appendChild(svgEl("text", { x: 10, y: 10 }, `max ${max}`));
  }
}

// Every hour from the first with events (at most two weeks back, at least a day) to now,
// with zero where nothing happened.
function hourly(perHour) {
  const now = Math.floor(Date.now() / 3600000) * 3600;
  const counts = new Map(perHour.map((h) => [h.key, h.count]));
  const first = Math.max(now - 14 * 24 * 3600, Math.min(now - 23 * 3600, ...perHour.map((h) => h.key)));
  const out = [];
  for (let h = first; h <= now; h += 3600) out.push({ key: h, count: counts.get(h) || 0 });
  return out;
}

async function loadCharts() {
  const p = filterQuery();
  p.set("top", 5);
  const r = await api("GET", "/api/aggregates?" + p);
  if (r.status !== 200) return;
  const hour = (it) => new Date(it.key * 1000).toISOString().slice(5, 13).replace("T", " ") + "h";
  barChart($("chart-hours"), hourly(r.data.per_hour), hour, false);
  barChart($("chart-ips"), r.data.top_ips, (it) => it.key, true);
  barChart($("chart-rules"), r.data.top_rules, (it) => `${it.rule} ${it.message}`, true);
}

async function showDetail(id) {
  const r = await api("GET", "/api/events/" + encodeURIComponent(id));
  if (r.status !== 200) return;
  $("detail").hidden = false;
  $("detail").dataset.incident = id;
  $("detail-id").textContent = id;
  $("detail-exclusion").hidden = true;
  $("detail-json").textContent = JSON.stringify(r.data.events, null, 2);
  $("detail").scrollIntoView({ block: "nearest" });
}

async function markFalsePositive() {
  const id = $("detail").dataset.incident;
  const r = await api("POST", `/api/events/${encodeURIComponent(id)}/false-positive`, { false_positive: true });
  if (r.status !== 200) return;
  const box = $("detail-exclusion");
  box.hidden = false;
  box.textContent = r.data.exclusion ? `${t("exclusion")}\n\n${r.data.exclusion}` : t("no_exclusion");
  await loadEvents();
}

async function loadBans() {
  const r = await api("GET", "/api/bans");
  if (r.status !== 200) return;
  const body = $("bans").querySelector("tbody");
  body.replaceChildren();
  for (const b of r.data.bans) {
    const tr = el("tr");
    tr.dataset.network = b.network;
    tr.appendChild(el("td", b.network));
    tr.appendChild(el("td", b.expires_ms ? new Date(b.expires_ms).toISOString().replace("T", " ").slice(0, 19) : t("forever")));
    tr.appendChild(el("td", b.reason));
    tr.appendChild(el("td", b.created_by));
    const cell = el("td");
    const u = el("button", t("unban"), "unban");
    u.type = "button";
    u.addEventListener("click", () => unban(b.network));
    cell.appendChild(u);
    tr.appendChild(cell);
    body.appendChild(tr);
  }
}

async function ban(network, expires, reason) {
  const body = { network, reason };
  if (expires) body.expires_in = expires;
  const r = await api("POST", "/api/bans", body);
  $("ban-status").textContent = r.status === 201 ? t("banned")(r.data.network) : (r.data && r.data.message) || r.status;
  await loadBans();
}

async function unban(network) {
  const r = await api("DELETE", "/api/bans?network=" + encodeURIComponent(network));
  $("ban-status").textContent = r.status === 200 ? t("unbanned")(network) : (r.data && r.data.message) || r.status;
  await loadBans();
}

document.addEventListener("DOMContentLoaded", async () => {
  applyLanguage();
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("govgate.lang", lang);
    applyLanguage();
    refresh();
  });
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/login", { password: $("password").value });
    $("password").value = "";
    if (r.status === 200) {
      csrf = r.data.csrf;
      $("login-error").textContent = "";
      $("who").textContent = "admin · security";
      await showApp();
    } else {
      $("login-error").textContent = r.status === 429 ? t("locked") : r.status === 401 ? t("wrong") : (r.data && r.data.message) || r.status;
    }
  });
  $("logout").addEventListener("click", async () => {
    if (logoutUrl) {
      location.href = logoutUrl;
      return;
    }
    await api("POST", "/api/logout");
    csrf = null;
    showLogin();
  });
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; refresh(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadEvents(); });
  $("next").addEventListener("click", () => { offset += PAGE; loadEvents(); });
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  $("detail-fp").addEventListener("click", markFalsePositive);
  $("ban-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    ban($("ban-network").value.trim(), $("ban-expires").value, $("ban-reason").value);
  });
  const s = await api("GET", "/api/session");
  if (s.status === 200) {
    csrf = s.data.csrf;
    logoutUrl = s.data.logout || null;
    $("who").textContent = `${s.data.user} · ${s.data.roles.join(", ")}`;
    await showApp();
  } else {
    showLogin();
  }
});
