"use strict";
const $ = (id) => document.getElementById(id);
// groups: per service with instances, { instances, instance_range, last_scale } (its units are in services).
const S = { services: new Map(), order: [], groups: new Map(), control: false, sup: null, version: "", selected: null,
  hist: new Map(), lines: [], paused: false, es: null, clockSkew: 0 };
const MAX_POINTS = 150, MAX_LINES = 2000;
const LABEL = { backoff: "restarting" };

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
function dur(ms) {
  if (ms == null) return "–";
  let s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + "h";
}
function bytes(n) {
  if (n == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n < 10 ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
}
function toast(msg, err) {
  const t = $("toast"); t.textContent = msg; t.className = "show" + (err ? " err" : "");
  clearTimeout(toast.timer); toast.timer = setTimeout(() => t.className = err ? "err" : "", 3500);
}
function token() { return sessionStorage.getItem("sentinel-token") || ""; }

// ----- history and sparklines -------------------------------------------
function pushSample(name, sm) {
  let h = S.hist.get(name);
  if (!h) { h = []; S.hist.set(name, h); }
  if (h.length && h[h.length - 1].time_ms >= sm.time_ms) return;
  h.push(sm); if (h.length > MAX_POINTS) h.shift();
}
function cpuSeries(h) {
  const out = [];
  for (let i = 1; i < h.length; i++) {
    const a = h[i - 1], b = h[i], dt = (b.time_ms - a.time_ms) / 1000;
    out.push(a.cpu_seconds != null && b.cpu_seconds != null && dt > 0 ? Math.max(0, (b.cpu_seconds - a.cpu_seconds) / dt * 100) : 0);
  }
  return out;
}
function spark(values, color, fixedMax) {
  const NS = "http://www.w3.org/2000/svg", W = 140, H = 34;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("preserveAspectRatio", "none");
  if (values.length < 2) {
    const l = document.createElementNS(NS, "line");
    l.setAttribute("x1", 0); l.setAttribute("x2", W); l.setAttribute("y1", H - 1); l.setAttribute("y2", H - 1);
    l.setAttribute("stroke", "#2a323d"); l.setAttribute("stroke-dasharray", "3 3"); svg.appendChild(l); return svg;
  }
  const max = Math.max(fixedMax || 0, ...values) || 1;
  const pts = values.map((v, i) => [i / (values.length - 1) * W, H - 2 - v / max * (H - 5)]);
  const line = pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
  const area = document.createElementNS(NS, "polygon");
  area.setAttribute("points", `0,${H} ${line} ${W},${H}`); area.setAttribute("fill", color); area.setAttribute("fill-opacity", ".15");
  const pl = document.createElementNS(NS, "polyline");
  pl.setAttribute("points", line); pl.setAttribute("fill", "none"); pl.setAttribute("stroke", color);
  pl.setAttribute("stroke-width", "1.6"); pl.setAttribute("vector-effect", "non-scaling-stroke"); pl.setAttribute("stroke-linejoin", "round");
  svg.append(area, pl); return svg;
}

// ----- cards ------------------------------------------------------------
function card(name) {
  const c = el("div", "card"); c.dataset.service = name;
  const top = el("div", "top");
  const nm = el("div", "name", name), gr = el("div", "groups"), st = el("div", "state");
  top.append(nm, gr, st);
  const facts = el("div", "facts");
  const f = {};
  for (const [k, label] of [["pid", "pid"], ["uptime", "uptime"], ["restarts", "restarts"], ["exit", "exit"]]) {
    const b = el("div", "fact"); b.append(el("div", "k", label)); f[k] = el("div", "v", "–"); b.append(f[k]); facts.append(b);
  }
  const sp = el("div", "spark");
  const mk = (label) => { const b = el("div", "sp"), r = el("div", "row"), v = el("span", null, "–"), g = el("div");
    r.append(el("span", null, label), v); b.append(r, g); sp.append(b); return { v, g }; };
  const cpu = mk("cpu"), mem = mk("memory");
  const why = el("div", "why");
  const actions = el("div", "actions");
  const btn = (verb, label) => { const b = el("button", "act", label); b.dataset.verb = verb;
    b.onclick = (e) => { e.stopPropagation(); act(name, verb); }; return b; };
  const bStart = btn("start", "Start"), bStop = btn("stop", "Stop"), bRestart = btn("restart", "Restart");
  const bLogs = el("button", "logs", "Logs"); bLogs.onclick = () => select(name);
  actions.append(bStart, bStop, bRestart, bLogs);
  c.append(top, facts, sp, why, actions);
  c.onclick = () => select(name);
  c._ = { gr, st, f, cpu, mem, why, bStart, bStop, bRestart, actions };
  return c;
}
// ----- services with instances: a group per service, its instances inside --
function groupEl(svc) {
  let g = document.querySelector(`.group[data-group="${CSS.escape(svc)}"]`);
  if (g) return g;
  g = el("section", "group"); g.dataset.group = svc;
  const head = el("div", "ghead"), nm = el("div", "name", svc), count = el("div", "count"), range = el("div", "range");
  const scale = el("div", "scale"), n = el("input"), b = el("button", "act", "Scale");
  n.type = "number"; n.min = "0"; n.step = "1"; n.setAttribute("aria-label", "Instances of " + svc);
  b.dataset.verb = "scale";
  b.onclick = () => { const v = n.value.trim(); if (v !== "") scaleTo(svc, Number(v)); };
  n.onkeydown = (e) => { if (e.key === "Enter") b.click(); };
  scale.append(n, b); head.append(nm, count, range, scale);
  const why = el("div", "why"), inner = el("div", "grid");
  g.append(head, why, inner);
  g._ = { count, range, scale, n, b, why, inner };
  $("grid").querySelector(".empty")?.remove();
  $("grid").append(g);
  return g;
}
function renderGroup(svc) {
  const info = S.groups.get(svc);
  const units = S.order.map((n) => S.services.get(n)).filter((s) => s && s.service === svc);
  const g0 = document.querySelector(`.group[data-group="${CSS.escape(svc)}"]`);
  if (!info || (!units.length && info.instances !== 0)) { if (g0) g0.remove(); S.groups.delete(svc); return; }
  const g = groupEl(svc), u = g._;
  const running = units.filter((s) => s.state === "running").length;
  u.count.textContent = `${running}/${info.instances} running`;
  u.count.dataset.full = String(running === info.instances);
  u.range.textContent = info.instance_range ? `(range ${info.instance_range})` : "";
  u.why.textContent = info.last_scale || ""; u.why.title = u.why.textContent;
  u.scale.hidden = !(S.control && token());
  const [lo, hi] = String(info.instance_range || "").split("-");
  u.n.min = lo || "0"; u.n.max = hi || lo || "";
  u.n.placeholder = String(info.instances);
  if (document.activeElement !== u.n) u.n.value = String(info.instances);
  const q = $("find").value.trim().toLowerCase();
  g.hidden = !!q && !svc.toLowerCase().includes(q) && ![...u.inner.children].some((c) => !c.hidden);
}
// Where a unit's card goes: its group's grid in instance order, or the top grid.
function place(c, s) {
  const box = s.service ? groupEl(s.service)._.inner : $("grid");
  if (c.parentNode === box) return;
  $("grid").querySelector(".empty")?.remove();
  const next = s.service ? [...box.children].find((x) => Number(x.dataset.instance) > s.instance) : null;
  box.insertBefore(c, next || null);
}
// `batch`: the caller renders the groups afterwards (once each).
function render(name, batch) {
  const s = S.services.get(name); if (!s) return;
  let c = document.querySelector(`.card[data-service="${CSS.escape(name)}"]`);
  if (!c) c = card(name);
  if (s.service != null) c.dataset.instance = String(s.instance);
  place(c, s);
  const u = c._;
  c.dataset.state = s.state; u.st.dataset.state = s.state; u.st.textContent = LABEL[s.state] || s.state;
  u.gr.textContent = (s.groups || []).map((g) => "@" + g).join(" ");
  u.f.pid.textContent = s.pid ?? "–";
  u.f.restarts.textContent = s.restarts;
  u.f.exit.textContent = s.last_exit_code ?? "–"; u.f.exit.title = s.last_exit || "";
  u.why.textContent = s.state !== "running" && s.last_error ? s.last_error
    : s.last_exit ? "last: " + s.last_exit : (s.config ? s.config.command.join(" ") : "");
  u.why.title = u.why.textContent;
  const ctl = S.control && token();
  u.actions.hidden = false;
  for (const b of [u.bStart, u.bStop, u.bRestart]) b.hidden = !S.control;
  u.bStart.disabled = !ctl || s.state === "running" || s.state === "stopping";
  u.bStop.disabled = !ctl || ["stopped", "exited", "failed"].includes(s.state);
  u.bRestart.disabled = !ctl;
  c.classList.toggle("selected", S.selected === name);
  const q = $("find").value.trim().toLowerCase();
  c.hidden = q && !name.toLowerCase().includes(q) && !(s.groups || []).some((g) => g.toLowerCase().includes(q));
  tick(c, s); drawSparks(name);
  if (s.service != null && !batch) renderGroup(s.service);
}
function tick(c, s) {
  c._.f.uptime.textContent = s.started_at_ms && s.state !== "backoff" ? dur(Date.now() - S.clockSkew - s.started_at_ms) : "–";
}
function drawSparks(name) {
  const c = document.querySelector(`.card[data-service="${CSS.escape(name)}"]`); if (!c) return;
  const h = S.hist.get(name) || [];
  const cpu = cpuSeries(h), mem = h.map((x) => x.memory_bytes || 0);
  c._.cpu.v.textContent = cpu.length ? cpu[cpu.length - 1].toFixed(1) + "%" : "–";
  const last = h.length ? h[h.length - 1].memory_bytes : null;
  c._.mem.v.textContent = bytes(last);
  c._.cpu.g.replaceChildren(spark(cpu, "#5aa9f5", 5));
  c._.mem.g.replaceChildren(spark(mem, "#a48bf5"));
}
function header() {
  const counts = {};
  for (const s of S.services.values()) counts[s.state] = (counts[s.state] || 0) + 1;
  const chips = $("chips"); chips.replaceChildren();
  for (const st of ["running", "starting", "waiting", "backoff", "stopping", "failed", "stopped", "exited", "completed"]) {
    if (!counts[st]) continue;
    const c = el("span", "chip"); c.append(el("b", null, String(counts[st])), " " + (LABEL[st] || st)); chips.append(c);
  }
  if (S.sup) $("meta").textContent = `v${S.version} · pid ${S.sup.pid} · ${S.sup.role} · up ${dur(S.sup.uptime_ms + (Date.now() - S.supAt))}`
    + (S.sup.shutting_down ? " · shutting down" : "");
  $("tokenbox").hidden = !S.control || !!token();
  $("unlocked").hidden = !S.control || !token();
}
function renderAll() {
  for (const n of S.order) render(n, true);
  for (const g of [...S.groups.keys()]) renderGroup(g);
  header();
  if (!S.order.length && !S.groups.size) $("grid").replaceChildren(el("div", "empty", "No services."));
}

// ----- actions ----------------------------------------------------------
async function act(name, verb) {
  try {
    const r = await fetch(`/api/v1/services/${encodeURIComponent(name)}/${verb}`,
      { method: "POST", headers: { "Authorization": "Bearer " + token() } });
    const body = await r.json().catch(() => ({}));
    if (r.ok) toast(body.message || `${verb}: ${name}`);
    else {
      toast(body.error || `${verb} failed (${r.status})`, true);
      if (r.status === 403 && /token/.test(body.error || "")) { sessionStorage.removeItem("sentinel-token"); renderAll(); }
    }
  } catch (e) { toast(String(e), true); }
}
async function scaleTo(svc, count) {
  if (!Number.isInteger(count) || count < 0) { toast("Give a whole number of instances", true); return; }
  try {
    const r = await fetch(`/api/v1/services/${encodeURIComponent(svc)}/scale`, { method: "POST",
      headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" }, body: JSON.stringify({ count }) });
    const body = await r.json().catch(() => ({}));
    if (r.ok) toast(body.message || `${svc}: scaled to ${count}`);
    else {
      toast(body.error || `scale failed (${r.status})`, true);
      if (r.status === 403 && /token/.test(body.error || "")) { sessionStorage.removeItem("sentinel-token"); renderAll(); }
    }
  } catch (e) { toast(String(e), true); }
}
$("savetoken").onclick = () => {
  const t = $("token").value.trim(); if (!t) return;
  sessionStorage.setItem("sentinel-token", t); $("token").value = ""; renderAll(); toast("Control unlocked for this tab");
};
$("token").onkeydown = (e) => { if (e.key === "Enter") $("savetoken").click(); };
$("forget").onclick = () => { sessionStorage.removeItem("sentinel-token"); renderAll(); };
$("find").oninput = () => renderAll();

// ----- logs -------------------------------------------------------------
function select(name) {
  if (S.selected === name) return;
  S.selected = name; $("logsvc").value = name; S.lines = [];
  renderAll(); loadLogs(); connect();
}
function lineMatches(l) {
  const st = $("stream").value; if (st && l.stream !== st) return false;
  const g = $("grep").value; if (!g) return true;
  try { return new RegExp(g).test(l.text); } catch (e) { return l.text.includes(g); }
}
function lineEl(l) {
  const d = el("div", l.stream === "stderr" ? "stderr" : l.sys ? "sys" : "");
  const t = new Date(l.time_ms); d.append(el("span", "t", t.toLocaleTimeString([], { hour12: false })));
  const g = $("grep").value; let re = null;
  if (g) { try { re = new RegExp(g, "g"); } catch (e) { re = null; } }
  if (re) {
    let last = 0; for (const m of l.text.matchAll(re)) { if (!m[0]) break;
      d.append(l.text.slice(last, m.index), el("mark", null, m[0])); last = m.index + m[0].length; }
    d.append(l.text.slice(last));
  } else d.append(l.text);
  return d;
}
function drawLogs() {
  const box = $("log"), atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.replaceChildren(...S.lines.filter(lineMatches).slice(-500).map(lineEl));
  if (atEnd) box.scrollTop = box.scrollHeight;
  $("logtitle").textContent = S.selected ? "Logs · " + S.selected : "Logs";
}
function addLine(l) {
  S.lines.push(l); if (S.lines.length > MAX_LINES) S.lines.splice(0, S.lines.length - MAX_LINES);
  if (S.paused || !lineMatches(l)) return;
  const box = $("log"), atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.append(lineEl(l)); while (box.childElementCount > 500) box.firstChild.remove();
  if (atEnd) box.scrollTop = box.scrollHeight;
}
async function loadLogs() {
  if (!S.selected) return;
  const name = S.selected;
  try {
    const r = await fetch(`/api/v1/services/${encodeURIComponent(name)}/logs?lines=500`);
    const body = await r.json();
    if (S.selected !== name) return;
    const seen = new Set(S.lines.map((l) => l.seq));
    S.lines = body.lines.filter((l) => !seen.has(l.seq)).concat(S.lines).sort((a, b) => a.seq - b.seq);
    drawLogs();
  } catch (e) { /* the stream retries */ }
}
$("logsvc").onchange = () => select($("logsvc").value);
$("grep").oninput = drawLogs; $("stream").onchange = drawLogs;
$("pause").onclick = () => { S.paused = !S.paused; $("pause").textContent = S.paused ? "Resume" : "Pause"; if (!S.paused) drawLogs(); };

// ----- live updates -----------------------------------------------------
function setLive(on, text) { $("live").className = "live " + (on ? "on" : "off"); $("livetext").textContent = text; }
function upsert(s) {
  if (!S.services.has(s.name)) S.order.push(s.name);
  const old = S.services.get(s.name) || {};
  S.services.set(s.name, Object.assign({}, old, s));
  if (s.service != null) {
    // Every instance carries its service's numbers.
    const g = S.groups.get(s.service) || {};
    S.groups.set(s.service, Object.assign(g, { instances: s.instances, instance_range: s.instance_range,
      last_scale: s.last_scale ?? g.last_scale }));
  }
}
// A unit scaled away or removed (and down): forget it.
function drop(name) {
  const s = S.services.get(name); if (!s) return;
  S.services.delete(name); S.order = S.order.filter((n) => n !== name); S.hist.delete(name);
  document.querySelector(`.card[data-service="${CSS.escape(name)}"]`)?.remove();
  if (s.service != null) renderGroup(s.service);
  if (S.selected === name) { S.selected = null; S.lines = []; drawLogs(); }
}
function syncSelect() {
  const sel = $("logsvc");
  if ([...sel.options].map((o) => o.value).join("\n") !== S.order.join("\n"))
    sel.replaceChildren(...S.order.map((n) => { const o = el("option", null, n); o.value = n; return o; }));
  if (S.selected) sel.value = S.selected;
}
function connect() {
  if (S.es) S.es.close();
  const es = new EventSource("/api/v1/events" + (S.selected ? "?logs=" + encodeURIComponent(S.selected) : ""));
  S.es = es;
  es.onopen = () => setLive(true, "live");
  es.onerror = () => setLive(false, "reconnecting…");
  es.addEventListener("snapshot", (e) => {
    const d = JSON.parse(e.data);
    S.control = d.control; S.version = d.version; S.sup = d.supervisor; S.supAt = Date.now();
    // What went away while disconnected goes from the page too.
    const now = new Set(d.services.map((s) => s.name));
    for (const n of [...S.order]) if (!now.has(n)) drop(n);
    S.groups = new Map((d.totals || []).map((t) => [t.service, { instances: t.instances,
      instance_range: t.instance_range, last_scale: t.last_scale }]));
    for (const s of d.services) upsert(s);
    for (const g of document.querySelectorAll(".group")) if (!S.groups.has(g.dataset.group)) g.remove();
    if (!S.selected && S.order.length) { S.selected = S.order[0]; syncSelect(); es.close(); renderAll(); loadLogs(); loadHistory(); connect(); return; }
    syncSelect();
    renderAll(); loadLogs();
  });
  es.addEventListener("service", (e) => {
    const s = JSON.parse(e.data); const prev = S.services.get(s.name);
    upsert(s); render(s.name); header(); if (!prev) syncSelect();
    if (prev && prev.state !== s.state && s.name === S.selected)
      addLine({ seq: -1, time_ms: Date.now(), stream: "sys", sys: true, text: `— ${s.name}: ${LABEL[prev.state] || prev.state} → ${LABEL[s.state] || s.state}${s.state === "backoff" && s.last_exit ? " (" + s.last_exit + ")" : ""}` });
  });
  es.addEventListener("removed", (e) => {
    drop(JSON.parse(e.data).service); syncSelect(); header();
    if (!S.selected && S.order.length) select(S.order[0]);
  });
  es.addEventListener("scale", (e) => {
    const d = JSON.parse(e.data);
    const g = S.groups.get(d.service) || {};
    S.groups.set(d.service, Object.assign(g, { instances: d.instances, instance_range: d.instance_range, last_scale: d.text }));
    renderGroup(d.service);
    const sel = S.services.get(S.selected);
    if (sel && sel.service === d.service) addLine({ seq: -1, time_ms: Date.now(), stream: "sys", sys: true, text: "— " + d.text });
  });
  es.addEventListener("log", (e) => { const l = JSON.parse(e.data); if (l.service === S.selected) addLine(l); });
  es.addEventListener("stats", (e) => {
    const d = JSON.parse(e.data);
    for (const p of d.services) { pushSample(p.service, p.sample); const s = S.services.get(p.service); if (s) s.restarts = p.sample.restarts; drawSparks(p.service); }
  });
}
async function loadHistory() {
  for (const name of S.order) {
    try {
      const r = await fetch(`/api/v1/stats/${encodeURIComponent(name)}?window=5m`);
      const d = await r.json();
      const h = S.hist.get(name) || [];
      const merged = d.samples.concat(h).sort((a, b) => a.time_ms - b.time_ms);
      S.hist.set(name, merged.filter((x, i) => i === 0 || x.time_ms !== merged[i - 1].time_ms).slice(-MAX_POINTS));
      drawSparks(name);
    } catch (e) { /* later samples fill it */ }
  }
}
setInterval(() => {
  for (const c of document.querySelectorAll(".card")) { const s = S.services.get(c.dataset.service); if (s) tick(c, s); }
  header();
}, 1000);
connect();
