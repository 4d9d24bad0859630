// Executions: filters kept in the URL (namespace, flow, state, labels, time range), paged; bulk
// kill, restart and replay of the selected ones.
import { STATES, act, api, badge, content, debounce, duration, el, execHref, field, flowHref, fmtDate,
  fmtDuration, namespaces, namespaceSelect, showError, status, table, clearError } from "../lib.js";

const SIZE = 25;
const RANGES = [["", "Any time"], ["PT1H", "Last hour"], ["PT24H", "Last 24 hours"], ["P7D", "Last 7 days"], ["P30D", "Last 30 days"]];

export async function render() {
  const params = new URLSearchParams(location.search);
  const ns = namespaceSelect(params.get("namespace") || "", await namespaces());
  const flow = el("input", { name: "flowId", value: params.get("flowId") || "", placeholder: "flow id" });
  const state = el("select", { name: "state", multiple: true, size: 4 },
    STATES.map((s) => el("option", { value: s, selected: params.getAll("state").includes(s) }, s)));
  const labels = el("input", { name: "labels", value: params.getAll("labels").join(", "), placeholder: "key:value, …" });
  const range = el("select", { name: "timeRange" }, RANGES.map(([v, l]) => el("option", { value: v, selected: v === (params.get("timeRange") || "") }, l)));
  const start = el("input", { type: "datetime-local", name: "startDate", value: (params.get("startDate") || "").slice(0, 16) });
  const end = el("input", { type: "datetime-local", name: "endDate", value: (params.get("endDate") || "").slice(0, 16) });
  const q = el("input", { type: "search", name: "q", value: params.get("q") || "", placeholder: "id, flow, label" });
  const list = el("div", { id: "executions-list" });
  const selected = new Set();
  let page = Number(params.get("page") || 1);
  let shown = [];

  const bulkBar = el("div", { class: "toolbar", id: "bulk" });
  function bulk(label, fn) {
    return el("button", { class: label === "Kill" ? "danger" : "secondary", type: "button", onclick: async () => {
      const ids = [...selected];
      if (!ids.length) { status("Select executions first (the boxes in the first column)"); return; }
      if (!confirm(`${label} ${ids.length} execution(s)?`)) return;
      await act(`${label} ${ids.length} execution(s)`, async () => {
        const failures = [];
        for (const id of ids) { try { await fn(id); } catch (err) { failures.push(`${id}: ${err.message}`); } }
        if (failures.length) throw new Error(failures.join("\n"));
      });
      selected.clear();
      load();
    } }, `${label} selected`);
  }
  bulkBar.append(
    bulk("Kill", (id) => api(`/executions/${id}/kill`, { method: "DELETE" })),
    bulk("Restart", (id) => api(`/executions/${id}/restart`, { method: "POST" })),
    bulk("Replay", (id) => api(`/executions/${id}/replay`, { method: "POST" })));

  function urlParams() {
    const p = new URLSearchParams();
    if (ns.value) p.set("namespace", ns.value);
    if (flow.value) p.set("flowId", flow.value);
    for (const o of state.selectedOptions) p.append("state", o.value);
    for (const l of labels.value.split(",").map((s) => s.trim()).filter(Boolean)) p.append("labels", l);
    if (range.value) p.set("timeRange", range.value);
    if (start.value) p.set("startDate", new Date(start.value).toISOString());
    if (end.value) p.set("endDate", new Date(end.value).toISOString());
    if (q.value) p.set("q", q.value);
    return p;
  }

  async function load() {
    const p = urlParams();
    if (page > 1) p.set("page", String(page));
    history.replaceState(null, "", `${location.pathname}${p.toString() ? "?" + p : ""}`);
    p.set("page", String(page));
    p.set("size", String(SIZE));
    try {
      const res = await api(`/executions/search?${p}`);
      clearError();
      shown = res.results;
      list.replaceChildren(view(res));
    } catch (err) { showError(err); }
  }

  function view(res) {
    if (!res.results.length) return el("p", {}, "No execution matches these filters.");
    const all = el("input", { type: "checkbox", "aria-label": "Select all on this page", onchange: (e) => {
      for (const ex of shown) { if (e.target.checked) selected.add(ex.id); else selected.delete(ex.id); }
      list.querySelectorAll("input[data-id]").forEach((c) => { c.checked = e.target.checked; });
    } });
    const rows = res.results.map((ex) => el("tr", { "data-id": ex.id },
      el("td", {}, el("input", { type: "checkbox", "data-id": ex.id, "aria-label": `Select ${ex.id}`, checked: selected.has(ex.id),
        onchange: (e) => { if (e.target.checked) selected.add(ex.id); else selected.delete(ex.id); } })),
      el("td", {}, el("a", { href: execHref(ex.id) }, ex.id)),
      el("td", {}, el("a", { href: flowHref(ex.namespace, ex.flowId) }, `${ex.namespace}.${ex.flowId}`)),
      el("td", {}, badge(ex.state.current)),
      el("td", {}, fmtDate(ex.state.startDate)),
      el("td", {}, fmtDuration(duration(ex.state))),
      el("td", {}, ex.labels.map((l) => `${l.key}:${l.value}`).join(", "))));
    const pages = Math.max(1, Math.ceil(res.total / SIZE));
    const t = table(["", "Execution", "Flow", "State", "Start", "Duration", "Labels"], rows, { "aria-label": "Executions" });
    t.querySelector("th").replaceChildren(all);
    return el("div", {}, t, el("div", { class: "toolbar" },
      el("button", { class: "secondary", disabled: page <= 1, onclick: () => { page -= 1; load(); } }, "Previous"),
      el("span", {}, `page ${page} of ${pages} · ${res.total} executions`),
      el("button", { class: "secondary", disabled: page >= pages, onclick: () => { page += 1; load(); } }, "Next")));
  }

  const reload = () => { page = 1; load(); };
  for (const c of [ns, state, range, start, end]) c.addEventListener("change", reload);
  for (const c of [flow, labels, q]) c.addEventListener("input", debounce(reload, 300));
  content().append(el("form", { class: "toolbar", role: "search", "aria-label": "Filters", onsubmit: (e) => e.preventDefault() },
    field("Namespace", ns), field("Flow", flow), field("State", state, "Ctrl+click: several"),
    field("Labels", labels), field("Time range", range), field("From", start), field("To", end), field("Search", q)),
  bulkBar, list);
  await load();
  // Executions move and new ones match the filters (a kill just asked for, a schedule firing): the
  // page of results is read again every 2 s while it is shown; it stops once the page is left.
  const timer = setInterval(() => {
    if (!list.isConnected) { clearInterval(timer); return; }
    if (!document.hidden) load();
  }, 2000);
}
