/* Kundensprechen ops console: vanilla JS, no build step, talks only to the alerts API (same origin). */
"use strict";

const API = "/v1";
const POLL_MS = 5000;
const S = {
  lang: "en", dict: {}, en: {}, route: ["board"], cases: [], known: null, current: null,
  es: null, poll: null, sel: -1, pending: {}, lastKey: "", me: "",
};
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/* ---------- i18n ---------- */
function t(key, vars) {
  let s = S.dict[key] ?? S.en[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, v);
  return s;
}
async function loadLang(lang) {
  const get = async (l) => (await fetch(`i18n/${l}.json`)).json();
  if (!Object.keys(S.en).length) S.en = await get("en");
  S.dict = lang === "en" ? S.en : await get(lang);
  S.lang = lang;
  document.documentElement.lang = lang;
  localStorage.setItem("ksp.lang", lang);
  $("#lang").value = lang;
  for (const el of $$("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of $$("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  document.title = `Kundensprechen – ${t("subtitle")}`;
  setConn($("#conn").dataset.state);
}
const num = (v, digits = 0) => v == null || Number.isNaN(+v) ? "–"
  : new Intl.NumberFormat(S.lang, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v);
const when = (v) => v ? new Intl.DateTimeFormat(S.lang, { dateStyle: "short", timeStyle: "medium" }).format(new Date(v)) : "–";
const tp = (v) => v == null ? t("all") : S.dict[`tp.${v}`] ?? S.en[`tp.${v}`] ?? v;
const label = (prefix, v) => v == null || v === "" ? "–" : t(`${prefix}.${v}`);

/* ---------- DOM helpers ---------- */
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}
function svg(tag, attrs = {}, ...kids) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, v);
  for (const kid of kids.flat(Infinity)) if (kid != null) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
}
function toast(text, error = false) {
  const el = $("#toast");
  el.textContent = text;
  el.className = error ? "toast error" : "toast";
  el.setAttribute("role", error ? "alert" : "status");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, error ? 8000 : 4000);
}
function announce(text) {
  const el = $("#announce");
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 50);
}

/* ---------- API ---------- */
async function api(path, opts = {}) {
  const init = { headers: { accept: "application/json" }, ...opts };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers["content-type"] = "application/json";
  }
  const r = await fetch(API + path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const d = data && data.detail;
    throw new Error(typeof d === "string" ? d : d ? JSON.stringify(d) : `HTTP ${r.status}`);
  }
  return data;
}
const qs = (obj) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v != null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
};
const formData = (form) => Object.fromEntries(new FormData(form).entries());
const list = (d, ...keys) => Array.isArray(d) ? d : (keys.map((k) => d && d[k]).find(Array.isArray) || []);

/* Accept a Case (schemas/cases.py), or a bare Alert, and give a Case-like object. */
function normCase(c) {
  if (!c) return null;
  if (c.case && !c.case_id) c = { ...c.case, ...c, case: undefined };
  if (!c.alert && c.alert_id) c = { case_id: c.alert_id, alert: c, state: c.status === "resolved" ? "resolved" : "firing", opened_at: c.starts_at };
  c.alert = c.alert || {};
  c.alert.labels = c.alert.labels || {};
  c.alert.evidence = c.alert.evidence || {};
  c.case_id = c.case_id || c.alert.alert_id;
  c.history = c.history || c.events || [];
  return c;
}

/* ---------- Quality board ---------- */
const METRICS = [
  { key: "nps", min: -100, max: 100, digits: 0 },
  { key: "csat", min: 0, max: 100, digits: 0 },
  { key: "ces", min: 0, max: 100, digits: 0 },
  { key: "sentiment", min: -1, max: 1, digits: 2 },
];
function metricOf(row, key) {
  const m = row[key], o = m && typeof m === "object" ? m : {};
  const pick = (...vs) => vs.find((v) => v != null && !Number.isNaN(+v));
  return {
    value: pick(o.value, o.mean, typeof m === "number" ? m : undefined),
    low: pick(o.low, o.interval_low, o.ci_low, row[`${key}_low`], row[`${key}_ci_low`]),
    high: pick(o.high, o.interval_high, o.ci_high, row[`${key}_high`], row[`${key}_ci_high`]),
    n: pick(o.n, row[`${key}_n`]),
  };
}
function ciBar(m, spec, name) {
  const W = 100, H = 14, x = (v) => 4 + (W - 8) * (Math.min(Math.max(v, spec.min), spec.max) - spec.min) / (spec.max - spec.min);
  const kids = [svg("rect", { class: "track", x: 4, y: 5, width: W - 8, height: 4, rx: 2 })];
  if (spec.min < 0) kids.push(svg("line", { class: "zero", x1: x(0), x2: x(0), y1: 1, y2: H - 1 }));
  if (m.low != null && m.high != null) kids.push(svg("rect", { class: "iv", x: x(m.low), y: 3, width: Math.max(2, x(m.high) - x(m.low)), height: 8, rx: 2 }));
  if (m.value != null) kids.push(svg("circle", { cx: x(m.value), cy: 7, r: 3.5 }));
  const desc = m.value == null ? `${name}: –` : m.low != null
    ? t("ci.aria", { name, value: num(m.value, spec.digits), low: num(m.low, spec.digits), high: num(m.high, spec.digits) })
    : `${name}: ${num(m.value, spec.digits)}`;
  return svg("svg", { class: "ci-bar", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": desc }, svg("title", {}, desc), kids);
}
function sparkline(series) {
  const W = 100, H = 26;
  const pts = series.map((p) => ({ v: p.nps ?? p.value ?? p.sqi ?? (p.nps_value), n: p.n })).filter((p) => p.v != null);
  const desc = pts.length ? t("spark.aria", { n: pts.length, first: num(pts[0].v), last: num(pts[pts.length - 1].v) }) : t("spark.none");
  const el = svg("svg", { class: "spark", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": desc }, svg("title", {}, desc));
  if (!pts.length) return el;
  const lo = Math.min(...pts.map((p) => p.v)), hi = Math.max(...pts.map((p) => p.v)), span = hi - lo || 1;
  const xy = pts.map((p, i) => [pts.length === 1 ? W / 2 : 3 + (W - 6) * i / (pts.length - 1), H - 3 - (H - 6) * (p.v - lo) / span]);
  el.append(svg("polyline", { points: xy.map((p) => p.map((c) => c.toFixed(1)).join(",")).join(" ") }));
  const last = xy[xy.length - 1];
  el.append(svg("circle", { cx: last[0], cy: last[1], r: 2.2 }));
  return el;
}
function themeTags(row) {
  const themes = list(row.top_themes ?? row.themes ?? [], "items").slice(0, 4);
  return h("div", { class: "themes" }, themes.map((th) => {
    const name = typeof th === "string" ? th : th.theme ?? th.name;
    const n = typeof th === "object" ? th.mentions ?? th.n ?? th.count : null;
    const neg = typeof th === "object" ? th.negative_mentions ?? 0 : 0;
    const title = n != null ? t("theme.aria", { theme: name, n: num(n), neg: num(neg) }) : name;
    return h("span", { class: neg * 2 > (n || 0) && neg > 0 ? "tag up" : "tag", title, "aria-label": title },
      name, n != null ? ` ${num(n)}` : "", neg ? ` (−${num(neg)})` : "");
  }));
}
async function loadBoard() {
  const f = formData($("#board-filter"));
  const d = await api(`/quality${qs(f)}`);
  renderBoard(d);
}
function renderBoard(d) {
  const rows = list(d, "scopes", "rows", "groups", "items", "quality", "touchpoints");
  rows.sort((a, b) => `${a.touchpoint}/${a.unit}`.localeCompare(`${b.touchpoint}/${b.unit}`));
  const body = $("#board-body");
  body.replaceChildren(...rows.map((r) => h("tr", { "data-touchpoint": r.touchpoint, "data-unit": r.unit },
    h("th", { scope: "row", class: "scope" }, tp(r.touchpoint), h("small", {}, r.unit ?? t("all"))),
    h("td", { class: "num n" }, num(r.n ?? r.count ?? r.responses)),
    METRICS.map((spec) => {
      const m = metricOf(r, spec.key), name = spec.key === "sentiment" ? t("col.sentiment") : spec.key.toUpperCase();
      return h("td", { "data-metric": spec.key }, h("div", { class: "metric" },
        h("span", { class: "v" }, num(m.value, spec.digits)),
        h("span", { class: "ci", "aria-hidden": "true" }, m.low != null ? `${num(m.low, spec.digits)} … ${num(m.high, spec.digits)}` : ""),
        ciBar(m, spec, name)));
    }),
    h("td", {}, sparkline(list(r.series ?? r.hourly ?? r.sparkline ?? [], "points"))),
    h("td", {}, themeTags(r)))));
  $("#board-empty").hidden = rows.length > 0;
}

/* ---------- Alert inbox ---------- */
function scopeText(a) {
  const l = a.labels || {};
  return [l.touchpoint && tp(l.touchpoint), l.unit, l.theme].filter(Boolean).join(" / ") || "–";
}
async function loadCases() {
  const f = formData($("#alert-filter"));
  const seq = (S.casesSeq = (S.casesSeq || 0) + 1);
  const d = await api(`/alerts${qs(f)}`);
  if (seq !== S.casesSeq) return;
  const cases = list(d, "cases", "items", "alerts", "firing").map(normCase);
  const fresh = S.known ? cases.filter((c) => !S.known.has(c.case_id)) : [];
  S.known = S.known || new Set();
  for (const c of cases) S.known.add(c.case_id);
  S.cases = cases;
  if (fresh.length) {
    const c = fresh[0];
    const msg = fresh.length === 1 ? t("announce.new", { severity: label("sev", c.alert.severity), summary: c.alert.summary || c.case_id })
      : t("announce.many", { n: fresh.length });
    announce(msg);
    toast(msg);
  }
  renderInbox(new Set(fresh.map((c) => c.case_id)));
}
function renderInbox(fresh = new Set()) {
  const order = { firing: 0, acknowledged: 1, assigned: 2, resolved: 3 }, sev = { critical: 0, warning: 1, info: 2 };
  const cases = [...S.cases].sort((a, b) => (order[a.state] ?? 9) - (order[b.state] ?? 9)
    || (sev[a.alert.severity] ?? 9) - (sev[b.alert.severity] ?? 9)
    || String(b.opened_at ?? "").localeCompare(String(a.opened_at ?? "")));
  S.cases = cases;
  $("#inbox-body").replaceChildren(...cases.map((c, i) => {
    const a = c.alert, cust = a.labels.customer_id;
    return h("tr", { "data-case": c.case_id, "data-state": c.state, class: [fresh.has(c.case_id) && "new", c.state === "resolved" && "resolved", i === S.sel && "sel"].filter(Boolean).join(" "),
      onclick: (e) => { if (!e.target.closest("a")) location.hash = `#/alerts/${encodeURIComponent(c.case_id)}`; } },
      h("td", {}, h("span", { class: `badge sev-${a.severity}` }, label("sev", a.severity))),
      h("td", {}, h("span", { class: `badge st-${c.state}` }, label("state", c.state)), c.escalated ? h("span", { class: "meta" }, ` ${t("escalated")}`) : null),
      h("td", {}, label("kind", a.kind)),
      h("td", {}, scopeText(a), cust && !cust.startsWith("event:") ? h("div", {}, h("a", { href: `#/customers/${encodeURIComponent(cust)}` }, cust)) : null),
      h("td", {}, h("a", { href: `#/alerts/${encodeURIComponent(c.case_id)}`, class: "open" }, a.summary || c.case_id)),
      h("td", {}, c.assignee || "–"),
      h("td", { class: "meta" }, when(c.opened_at ?? a.starts_at)));
  }));
  $("#inbox-empty").hidden = cases.length > 0;
}

/* ---------- Alert detail ---------- */
async function loadDetail(id) {
  const seq = (S.detailSeq = (S.detailSeq || 0) + 1);
  const d = await api(`/alerts/${encodeURIComponent(id)}`);
  const c = normCase(d);
  c.examples = list(d.examples ?? d.example_events ?? [], "items");
  // Responses can overtake each other (SSE refresh vs. an action): never show an older case.
  const cur = S.current;
  if (seq !== S.detailSeq || (cur && cur.case_id === c.case_id && c.history.length < cur.history.length)) return;
  if (!c.examples.length && cur && cur.case_id === c.case_id) c.examples = cur.examples || [];
  S.current = c;
  renderDetail();
  if (!c.examples.length) loadExamples(c, 0);
}
/* The API gives example event ids; for a customer's case their contents come from the customer's
   timeline (retried for a few seconds: the alert can be faster than the write to ClickHouse). */
async function loadExamples(c, attempt) {
  const cust = c.alert.labels.customer_id, ids = c.alert.evidence.example_event_ids || [];
  if (!cust || cust.startsWith("event:")) return;
  const tl = list(await api(`/customers/${encodeURIComponent(cust)}/timeline?limit=50`).catch(() => []), "events");
  const hit = tl.filter((e) => ids.includes(e.event_id));
  if (S.current !== c && S.current?.case_id !== c.case_id) return;
  if (hit.length || (!ids.length && tl.length)) {
    S.current.examples = hit.length ? hit : tl.slice(0, 3);
    renderDetail();
  } else if (attempt < 10) setTimeout(() => loadExamples(S.current, attempt + 1), 1500);
}
function fact(dl, key, value) { if (value != null && value !== "") dl.append(h("dt", {}, t(key)), h("dd", {}, value)); }
function renderDetail() {
  const c = S.current, a = c.alert, ev = a.evidence, cust = a.labels.customer_id;
  $("#h-detail").textContent = a.summary || c.case_id;
  const facts = $("#detail-facts");
  facts.replaceChildren();
  fact(facts, "col.state", h("span", { class: `badge st-${c.state}`, id: "detail-state", "data-state": c.state }, label("state", c.state)));
  fact(facts, "col.severity", h("span", { class: `badge sev-${a.severity}` }, label("sev", a.severity)));
  fact(facts, "col.kind", label("kind", a.kind));
  fact(facts, "col.scope", Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(", "));
  if (cust && !cust.startsWith("event:")) fact(facts, "detail.customer", h("a", { href: `#/customers/${encodeURIComponent(cust)}` }, t("detail.timeline", { id: cust })));
  fact(facts, "col.assignee", c.assignee);
  fact(facts, "f.outcome", c.outcome && label("outcome", c.outcome));
  fact(facts, "col.opened", when(c.opened_at ?? a.starts_at));
  fact(facts, "detail.due", c.due_at && when(c.due_at));
  fact(facts, "detail.rule", a.rule && `${a.rule} (${a.detector_version ?? ""})`);
  if (c.condition_cleared) fact(facts, "detail.condition", t("detail.cleared"));
  if (c.recovered != null) fact(facts, "detail.recovered", t(c.recovered ? "yes" : "no"));
  renderEvidence(ev, a.kind);
  const ef = $("#evidence-facts");
  ef.replaceChildren();
  fact(ef, "ev.metric", ev.metric);
  fact(ef, a.kind === "churn_risk" && ev.baseline == null ? "ev.nps_answer" : "ev.observed", ev.observed != null ? fmtEv(ev, ev.observed) : null);
  fact(ef, "ev.baseline", ev.baseline != null ? fmtEv(ev, ev.baseline) : null);
  fact(ef, "ev.interval", ev.interval_low != null ? `${fmtEv(ev, ev.interval_low, true)} … ${fmtEv(ev, ev.interval_high, true)}` : null);
  fact(ef, "ev.n", `${num(ev.n)}${ev.baseline_n ? ` / ${num(ev.baseline_n)}` : ""}`);
  fact(ef, "ev.window", ev.window_start ? `${when(ev.window_start)} – ${when(ev.window_end)}` : null);
  const more = Object.entries(ev.details || {});
  $("#evidence-details").replaceChildren(...more.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "number" ? num(v, v % 1 ? 3 : 0) : v)]));
  $("#ev-more").hidden = !more.length;
  const ids = ev.example_event_ids || [];
  $("#examples").replaceChildren(...c.examples.map((e) => feedbackItem(e)));
  if (!c.examples.length) {
    $("#examples").append(h("li", { class: "empty" }, ids.length
      ? [t("detail.example_ids"), " ", ids.map((id, i) => [i ? ", " : "", h("code", {}, id)])] : t("detail.no_examples")));
  }
  $("#history").replaceChildren(...c.history.map((e) => h("li", {},
    h("strong", {}, label("action", e.action)), " ", h("span", { class: "meta" }, `${when(e.at)} · ${e.by ?? ""}`),
    e.assignee ? h("div", {}, `${t("col.assignee")}: ${e.assignee}`) : null,
    e.outcome ? h("div", {}, `${t("f.outcome")}: ${label("outcome", e.outcome)}`) : null,
    e.note ? h("blockquote", {}, e.note) : null)));
  if (S.shownCase !== c.case_id) {  // a different case: fresh forms, a fitting default outcome
    S.shownCase = c.case_id;
    for (const f of $$("#view-detail form")) f.reset();
    $("#form-resolve select").value = a.kind === "churn_risk" ? "contacted_recovered" : "fixed_root_cause";
  }
  const open = c.state !== "resolved";
  $("#act-ack").disabled = c.state !== "firing";
  for (const b of $$("#form-assign button, #form-resolve button")) b.disabled = !open;
}
const isShare = (ev) => /share|top_box|rate/.test(ev.metric || "");
function fmtEv(ev, v, signed = false) {
  if (v == null) return "–";
  const s = isShare(ev) ? `${num(v * 100, 1)} %` : num(v, Math.abs(v) < 2 && v % 1 ? 2 : v % 1 ? 1 : 0);
  return signed && v > 0 ? `+${s}` : s;
}
/* Window vs baseline as bars; the 95% interval of the change drawn around the window's value. */
function renderEvidence(ev, kind) {
  const fig = $("#evidence-chart");
  fig.replaceChildren();
  const rows = [];
  if (ev.baseline != null) rows.push({ name: t("ev.baseline"), v: ev.baseline, n: ev.baseline_n, cls: "base" });
  const churn = kind === "churn_risk" && ev.metric === "churn_intent";
  if (ev.observed != null) rows.push({ name: t(churn ? "ev.nps_answer" : "ev.window"), v: ev.observed, n: ev.n, cls: "win",
    lo: ev.baseline != null && ev.interval_low != null ? ev.baseline + ev.interval_low : null,
    hi: ev.baseline != null && ev.interval_high != null ? ev.baseline + ev.interval_high : null });
  if (!rows.length) { fig.append(h("p", { class: "empty" }, t("ev.none"))); return; }
  const vals = rows.flatMap((r) => [r.v, r.lo, r.hi]).filter((v) => v != null);
  let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
  if (churn) { lo = 0; hi = 10; }
  const span = hi - lo || 1, step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(span / 4))).find((s) => span / s <= 5);
  lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step) * step;
  const W = 560, L = 120, R = 70, rowH = 34, H = rows.length * rowH + 34;
  const x = (v) => L + (W - L - R) * (v - lo) / (hi - lo);
  const g = [svg("line", { class: "axis", x1: x(0), x2: x(0), y1: 6, y2: H - 22 })];
  rows.forEach((r, i) => {
    const y = 10 + i * rowH;
    g.push(svg("text", { x: 4, y: y + 13 }, r.name), svg("text", { x: 4, y: y + 27, class: "muted" }, `n = ${num(r.n)}`));
    g.push(svg("rect", { class: r.cls, x: Math.min(x(0), x(r.v)), y: y + 4, width: Math.max(1.5, Math.abs(x(r.v) - x(0))), height: 16, rx: 2 }));
    if (r.lo != null) {
      g.push(svg("line", { class: "iv", x1: x(r.lo), x2: x(r.hi), y1: y + 12, y2: y + 12 }),
        svg("line", { class: "iv", x1: x(r.lo), x2: x(r.lo), y1: y + 6, y2: y + 18 }),
        svg("line", { class: "iv", x1: x(r.hi), x2: x(r.hi), y1: y + 6, y2: y + 18 }));
    }
    g.push(svg("text", { x: Math.max(x(r.v), x(0), r.hi != null ? x(r.hi) : 0) + 6, y: y + 17 }, fmtEv(ev, r.v)));
  });
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(svg("text", { x: x(v), y: H - 6, class: "muted", "text-anchor": "middle" }, fmtEv(ev, Math.round(v * 1e6) / 1e6)));
  const desc = t("ev.aria", { metric: ev.metric, observed: fmtEv(ev, ev.observed), baseline: fmtEv(ev, ev.baseline),
    low: fmtEv(ev, ev.interval_low, true), high: fmtEv(ev, ev.interval_high, true) });
  fig.append(svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": desc, id: "evidence-svg" }, svg("title", {}, desc), g, ticks));
  const delta = ev.observed != null && ev.baseline != null ? ev.observed - ev.baseline : null;
  fig.append(h("figcaption", {}, delta != null
    ? t("ev.caption", { metric: ev.metric, delta: fmtEv(ev, delta, true), low: fmtEv(ev, ev.interval_low, true), high: fmtEv(ev, ev.interval_high, true) })
    : t(churn ? "ev.caption_churn" : "ev.caption_single", { metric: ev.metric })));
}
function feedbackItem(e, highlight) {
  const cat = e.nps_category || (e.nps != null ? (e.nps >= 9 ? "promoter" : e.nps >= 7 ? "passive" : "detractor") : "");
  const comment = typeof e.comment === "object" && e.comment ? e.comment.text : e.comment;
  const scores = [["NPS", e.nps, 0], ["CSAT", e.csat, 0], ["CES", e.ces, 0], [t("col.sentiment"), e.sentiment, 2]]
    .filter(([, v]) => v != null).map(([k, v, d]) => `${k} ${num(v, d)}`).join(" · ");
  const themes = e.themes || [];
  return h("li", { class: [cat, highlight && "hl"].filter(Boolean).join(" "), "data-event": e.event_id },
    h("div", { class: "meta" }, [when(e.occurred_at), e.touchpoint && tp(e.touchpoint), e.unit].filter((x) => x && x !== "–").join(" · ") || e.event_id),
    scores ? h("div", {}, scores, e.churn_intent ? h("span", { class: "tag up" }, t("churn_intent")) : null) : null,
    comment ? h("blockquote", { lang: e.language && e.language !== "und" ? e.language : null }, comment) : null,
    themes.length ? h("div", { class: "themes" }, themes.map((th) => h("span", { class: "tag" }, th))) : null,
    !comment && !scores ? h("code", {}, e.event_id) : null);
}
async function act(path, body, okKey) {
  const c = S.current;
  try {
    const d = await api(`/alerts/${encodeURIComponent(c.case_id)}/${path}`, { method: "POST", body: { by: me(), ...body } });
    const next = d && (d.case_id || d.case) ? normCase(d) : null;
    if (next && next.state) {
      S.detailSeq = (S.detailSeq || 0) + 1;
      next.examples = c.examples;
      S.current = next;
      renderDetail();
    } else await loadDetail(c.case_id);
    toast(t(okKey));
    announce(t(okKey));
    loadCases().catch(() => {});
  } catch (err) { toast(`${t("error")}: ${err.message}`, true); }
}
const me = () => ($("#me").value || "").trim() || "operator";

/* ---------- Customer timeline ---------- */
async function loadTimeline(id) {
  $("#h-customer").textContent = t("timeline.title", { id });
  const d = await api(`/customers/${encodeURIComponent(id)}/timeline`);
  const items = list(d, "events", "timeline", "items", "feedback");
  items.sort((a, b) => String(b.occurred_at).localeCompare(String(a.occurred_at)));
  const ids = new Set(S.current ? S.current.alert.evidence.example_event_ids || [] : []);
  $("#timeline").replaceChildren(...items.map((e) => feedbackItem(e, ids.has(e.event_id))));
  $("#customer-cases").replaceChildren(...list(d, "cases").map(normCase).map((c) => h("li", {},
    h("a", { href: `#/alerts/${encodeURIComponent(c.case_id)}`, class: `badge st-${c.state}` },
      `${label("kind", c.alert.kind)}: ${label("state", c.state)}`))));
  $("#timeline-empty").hidden = items.length > 0;
}

/* ---------- Silences, deliveries, recovery ---------- */
async function loadSilences() {
  const d = await api("/silences");
  const items = list(d, "silences", "items");
  $("#silences-body").replaceChildren(...items.map((s) => h("tr", { "data-silence": s.silence_id },
    h("td", {}, Object.entries(s.matchers || {}).map(([k, v]) => `${k}=${v}`).join(", ")),
    h("td", {}, when(s.ends_at)), h("td", {}, s.created_by || "–"), h("td", {}, s.comment || ""),
    h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": t("silences.delete_aria", { id: s.silence_id }),
      onclick: async () => {
        try { await api(`/silences/${encodeURIComponent(s.silence_id)}`, { method: "DELETE" }); toast(t("silences.deleted")); loadSilences(); }
        catch (err) { toast(`${t("error")}: ${err.message}`, true); }
      } }, t("silences.delete"))))));
  $("#silences-empty").hidden = items.length > 0;
}
async function createSilence(matchers, hours, comment) {
  const now = new Date();
  await api("/silences", { method: "POST", body: { matchers, starts_at: now.toISOString(),
    ends_at: new Date(now.getTime() + hours * 3600e3).toISOString(), created_by: me(), comment } });
  toast(t("silences.created"));
}
async function loadSystem() {
  const [parked, rec] = await Promise.all([api("/deliveries/parked").catch(() => []), api("/recovery").catch(() => ({}))]);
  const items = list(parked, "deliveries", "parked", "items");
  $("#parked").replaceChildren(...items.map((p) => h("li", { "data-delivery": p.delivery_id },
    h("strong", {}, p.receiver ?? p.channel ?? ""), ` ${p.channel && p.receiver && p.channel !== p.receiver ? `(${p.channel}) ` : ""}`,
    p.alert_id ? h("a", { href: `#/alerts/${encodeURIComponent(p.alert_id)}` }, p.alert_id) : "",
    h("div", { class: "meta" }, [p.attempts != null && t("system.attempts", { n: p.attempts }), p.updated_at && when(p.updated_at), p.error].filter(Boolean).join(" · ")),
    p.delivery_id ? h("button", { type: "button", class: "secondary", "aria-label": t("system.replay_aria", { id: p.delivery_id }),
      onclick: async () => {
        try { await api(`/deliveries/parked/${encodeURIComponent(p.delivery_id)}/replay`, { method: "POST" }); toast(t("system.replayed")); loadSystem(); }
        catch (err) { toast(`${t("error")}: ${err.message}`, true); }
      } }, t("system.replay")) : null)));
  $("#parked-empty").hidden = items.length > 0;
  const dl = $("#recovery");
  dl.replaceChildren();
  const pct = (v) => v == null ? "–" : `${num(v * 100, 1)} %`;
  const name = (k) => S.dict[`rec.${k}`] ?? S.en[`rec.${k}`] ?? k;
  for (const [k, v] of Object.entries(rec || {})) {
    if (k === "rate_low" || k === "rate_high" || (v && typeof v === "object")) continue;
    dl.append(h("dt", {}, name(k)), h("dd", { "data-key": k }, k === "rate"
      ? `${pct(v)}${rec.rate_low != null ? ` (${t("rec.interval")} ${pct(rec.rate_low)} … ${pct(rec.rate_high)})` : ""}` : typeof v === "number" ? num(v) : String(v)));
  }
  for (const [outcome, o] of Object.entries(rec?.by_outcome || {})) {
    dl.append(h("dt", {}, label("outcome", outcome)), h("dd", {}, t("rec.by_outcome", { recovered: num(o.recovered), followed: num(o.followed_up) })));
  }
  if (!dl.children.length) dl.append(h("dt", {}, "–"), h("dd", {}, t("system.no_recovery")));
}

/* ---------- Routing ---------- */
const VIEWS = { board: "board", alerts: "alerts", silences: "silences", system: "system", customers: "customer" };
async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let view = parts[0] || "board";
  if (view === "alerts" && parts[1]) view = "detail";
  else if (!VIEWS[view]) view = "board";
  const id = VIEWS[view] || view, section = view === "detail" || view === "customers" ? "alerts" : view;
  S.route = [view, parts[1]];
  for (const sec of $$(".view")) sec.hidden = sec.id !== `view-${id}`;
  for (const a of $$("nav a")) {
    if (a.dataset.route === section) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    await refreshView();
    const heading = $(`#view-${id} h2`);
    if (view === "detail" || view === "customers") heading.focus();
  } catch (err) { toast(`${t("error")}: ${err.message}`, true); }
}
async function refreshView() {
  const [view, arg] = S.route;
  if (view === "board") return loadBoard();
  if (view === "alerts") return loadCases();
  if (view === "detail") return loadDetail(arg);
  if (view === "customers") return loadTimeline(arg);
  if (view === "silences") return loadSilences();
  if (view === "system") return loadSystem();
}

/* ---------- Live updates: SSE, falling back to polling every 5 s ---------- */
function setConn(state) {
  const el = $("#conn");
  el.dataset.state = state;
  el.textContent = t(`conn.${state}`);
}
function throttled(name, fn, ms = 1000) {
  if (S.pending[name]) return;
  S.pending[name] = setTimeout(() => { S.pending[name] = null; fn().catch(() => {}); }, ms);
}
function onCaseEvent(e) {
  let d = null;
  try { d = JSON.parse(e.data); } catch { /* a bare ping */ }
  throttled("cases", async () => {
    await loadCases();
    const id = d && (d.case_id || d.alert_id || d.case?.case_id);
    if (S.route[0] === "detail" && (!id || id === S.route[1])) await loadDetail(S.route[1]);
  }, 300);
}
function onQuality() { if (S.route[0] === "board") throttled("board", loadBoard, 300); }
function startPolling() {
  if (S.poll) return;
  setConn("polling");
  S.poll = setInterval(() => {
    loadCases().catch(() => setConn("offline"));
    if (S.route[0] !== "alerts") refreshView().then(() => setConn(S.es && S.es.readyState === 1 ? "live" : "polling")).catch(() => setConn("offline"));
  }, POLL_MS);
}
function stopPolling() { clearInterval(S.poll); S.poll = null; }
function connect() {
  if (!("EventSource" in window)) return startPolling();
  const es = new EventSource(`${API}/stream`);
  S.es = es;
  es.onopen = () => { stopPolling(); setConn("live"); };
  es.onerror = () => {
    startPolling();
    if (es.readyState === EventSource.CLOSED) { S.es = null; setTimeout(connect, 15000); }
  };
  for (const name of ["case", "cases", "case_event", "alert", "alerts"]) es.addEventListener(name, onCaseEvent);
  es.addEventListener("quality", onQuality);
  es.addEventListener("silence", () => { if (S.route[0] === "silences") throttled("silences", loadSilences, 300); });
  es.addEventListener("delivery", () => { if (S.route[0] === "system") throttled("system", loadSystem, 300); });
  es.onmessage = (e) => {
    let d = null;
    try { d = JSON.parse(e.data); } catch { return; }
    if (d && (d.type === "quality" || d.event === "quality")) onQuality(); else onCaseEvent(e);
  };
}

/* ---------- Keyboard ---------- */
function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
  if (e.key === "Escape" && typing) { e.target.blur(); return; }
  if (typing) return;
  const k = e.key, prev = S.lastKey;
  S.lastKey = k;
  if (prev === "g") {
    const dest = { b: "#/board", a: "#/alerts", s: "#/silences", d: "#/system" }[k];
    if (dest) { location.hash = dest; e.preventDefault(); return; }
  }
  const [view] = S.route;
  if (view === "alerts" && (k === "j" || k === "k") && S.cases.length) {
    S.sel = Math.max(0, Math.min(S.cases.length - 1, S.sel + (k === "j" ? 1 : -1)));
    $$("#inbox-body tr").forEach((tr, i) => tr.classList.toggle("sel", i === S.sel));
    $$("#inbox-body a.open")[S.sel]?.focus();
    e.preventDefault();
  } else if (k === "/") {
    $(".view:not([hidden])").querySelector("form input, form select, form textarea")?.focus();
    e.preventDefault();
  } else if (view === "detail" && k === "a" && !$("#act-ack").disabled) { $("#act-ack").click(); }
  else if (view === "detail" && k === "r") { $("#form-resolve select").focus(); e.preventDefault(); }
  else if (view === "detail" && k === "c") { $("#form-comment textarea").focus(); e.preventDefault(); }
  else if (view === "detail" && k === "s") { $("#form-silence select").focus(); e.preventDefault(); }
  else if (k === "?") toast(t("keys.help"));
}

/* ---------- Start ---------- */
function wire() {
  $("#lang").addEventListener("change", async (e) => { await loadLang(e.target.value); refreshView().catch(() => {}); if (S.route[0] === "alerts") renderInbox(); });
  $("#me").value = localStorage.getItem("ksp.me") || "";
  $("#me").placeholder = "operator";
  $("#me").addEventListener("change", (e) => localStorage.setItem("ksp.me", e.target.value.trim()));
  $("#board-filter").addEventListener("submit", (e) => { e.preventDefault(); loadBoard().catch((err) => toast(err.message, true)); });
  $("#board-filter select").addEventListener("change", () => loadBoard().catch(() => {}));
  $("#alert-filter").addEventListener("submit", (e) => { e.preventDefault(); S.known = null; loadCases().catch((err) => toast(err.message, true)); });
  for (const sel of $$("#alert-filter select")) sel.addEventListener("change", () => { S.known = null; loadCases().catch(() => {}); });
  $("#act-ack").addEventListener("click", () => act("acknowledge", {}, "ok.acknowledged"));
  $("#form-assign").addEventListener("submit", (e) => { e.preventDefault(); act("assign", { assignee: formData(e.target).assignee.trim() }, "ok.assigned"); });
  $("#form-resolve").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = formData(e.target);
    act("resolve", { outcome: f.outcome, note: f.note || null }, "ok.resolved");
  });
  $("#form-comment").addEventListener("submit", async (e) => {
    e.preventDefault();
    await act("comments", { note: formData(e.target).note }, "ok.commented");
    e.target.reset();
  });
  $("#form-silence").addEventListener("submit", async (e) => {
    e.preventDefault();
    const l = S.current.alert.labels, m = {};
    for (const k of ["customer_id", "touchpoint", "unit", "theme"]) if (l[k]) { m[k] = l[k]; if (k === "customer_id") break; }
    try { await createSilence(Object.keys(m).length ? m : { ...l }, +formData(e.target).hours, S.current.alert.summary || ""); }
    catch (err) { toast(`${t("error")}: ${err.message}`, true); }
  });
  $("#form-new-silence").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = formData(e.target), matchers = {};
    for (const pair of f.matchers.split(",")) {
      const [k, ...v] = pair.split("=");
      if (k.trim() && v.length) matchers[k.trim()] = v.join("=").trim();
    }
    if (!Object.keys(matchers).length) return toast(t("silences.bad"), true);
    try { await createSilence(matchers, +f.hours, f.comment || ""); e.target.reset(); loadSilences(); }
    catch (err) { toast(`${t("error")}: ${err.message}`, true); }
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
}
async function main() {
  const saved = localStorage.getItem("ksp.lang");
  const lang = saved || ((navigator.language || "en").toLowerCase().startsWith("de") ? "de" : "en");
  wire();
  await loadLang(lang);
  setConn("offline");
  await loadCases().catch(() => {});
  await route();
  connect();
}
main();
