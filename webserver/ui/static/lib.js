// Shared helpers of the UI's pages: the API client, DOM building, formatting.
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, message, errors) {
    super(message);
    this.status = status;
    this.errors = errors || [];
  }
}

// One call to the REST API; the error carries the server's message (shown to the person as is).
export async function api(path, { method = "GET", body, json, headers = {}, text = false } = {}) {
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const r = await fetch(API + path, init);
  if (!r.ok) {
    let message = `${method} ${path}: HTTP ${r.status}`;
    let errors = [];
    try {
      const doc = await r.json();
      if (doc.message) message = doc.message;
      errors = doc.errors || [];
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(r.status, message, errors);
  }
  if (text) return r.text();
  if (r.status === 204 || r.headers.get("content-length") === "0") return null;
  const ctype = r.headers.get("content-type") || "";
  return ctype.includes("json") ? r.json() : r.text();
}

// el("a", {href: "/x", class: "c"}, "text", child...): attributes starting with "on" are listeners.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const content = () => document.getElementById("content");
export const body = () => document.body.dataset;

export function status(message, kind = "info") {
  const box = document.getElementById("status");
  box.textContent = message || "";
  box.className = message ? `status ${kind}` : "";
}

// A page that loaded fine again clears an error it showed, never a message an action left.
export function clearError() {
  const box = document.getElementById("status");
  if (box.classList.contains("error")) status("");
}

export function showError(err) {
  status(err instanceof Error ? err.message : String(err), "error");
}

export function fmtDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(2)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function duration(state) {
  if (!state || !state.startDate) return null;
  const end = state.endDate ? Date.parse(state.endDate) : Date.now();
  return end - Date.parse(state.startDate);
}

export const TERMINAL = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"]);
export const STATES = ["CREATED", "QUEUED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS",
  "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRYING", "RETRIED", "SKIPPED"];

export function badge(state) {
  return el("span", { class: `badge st-${state}`, "data-state": state }, state);
}

export const flowHref = (ns, id) => `/ui/flows/${encodeURIComponent(ns)}/${encodeURIComponent(id)}`;
export const execHref = (id) => `/ui/executions/${encodeURIComponent(id)}`;
export const flowPath = (ns, id) => `/flows/${encodeURIComponent(ns)}/${encodeURIComponent(id)}`;

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input,
    hint ? el("small", {}, hint) : null);
}

export function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
}

export function pre(value) {
  return el("pre", { class: "json" }, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

export function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

export async function namespaces() {
  try { return await api("/flows/distinct-namespaces"); } catch (_) { return []; }
}

export function namespaceSelect(current, all, { any = "All namespaces", name = "namespace" } = {}) {
  const sel = el("select", { name });
  if (any) sel.append(el("option", { value: "" }, any));
  for (const ns of all) sel.append(el("option", { value: ns, selected: ns === current }, ns));
  return sel;
}

// Confirm an action with the person, run it, and report its outcome in the status line.
export async function act(label, fn) {
  try {
    status(`${label}…`);
    const out = await fn();
    status(`${label}: done`, "ok");
    return out ?? true; // an answer without a body (204) is a success too

  } catch (err) {
    showError(err);
    return undefined;
  }
}

// A namespace field: the deployed flows' namespaces offered, any other typed; kept in the URL.
export async function namespacePicker(onChange) {
  const all = await namespaces();
  const params = new URLSearchParams(location.search);
  const list = el("datalist", { id: "namespaces" }, all.map((n) => el("option", { value: n })));
  const input = el("input", { name: "namespace", list: "namespaces", value: params.get("namespace") || all[0] || "",
    placeholder: "company.team" });
  const apply = () => {
    const p = new URLSearchParams(location.search);
    p.set("namespace", input.value);
    history.replaceState(null, "", `${location.pathname}?${p}`);
    onChange(input.value);
  };
  input.addEventListener("change", apply);
  return { node: el("span", {}, field("Namespace", input), list), value: () => input.value, apply };
}

export const nsPath = (ns) => `/namespaces/${encodeURIComponent(ns)}`;

// The API creates an execution at once; the projection may take a moment to show it, so a page
// waits through the search (always 200) before opening the execution's own page.
export async function whenIndexed(id) {
  for (let i = 0; i < 100; i++) {
    const res = await api(`/executions/search?q=${encodeURIComponent(id)}&size=1`);
    if (res.results.some((e) => e.id === id)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
