// A flow: topology (laid out by the server), revisions with a diff, triggers, source, recent executions.
import { api, badge, body, content, el, execHref, fmtDate, field, flowHref, flowPath, pre, showError, status, table, clearError } from "../lib.js";

export function tabs(panels, initial) {
  const bar = el("div", { class: "tabs", role: "tablist" });
  const area = el("div", { class: "panel" });
  const buttons = [];
  const shown = new Set();
  function select(i, focus = false) {
    buttons.forEach((b, j) => { b.setAttribute("aria-selected", String(i === j)); b.tabIndex = i === j ? 0 : -1; });
    const [name, make] = panels[i];
    area.setAttribute("aria-label", name);
    if (!shown.has(i)) { shown.add(i); panels[i][2] = make(); }
    area.replaceChildren(panels[i][2]);
    if (focus) buttons[i].focus();
  }
  function choose(i, focus = false) { // a person's choice is kept in the URL (back, reload, share)
    select(i, focus);
    const url = new URL(location.href);
    url.hash = panels[i][0].toLowerCase().replace(/\W+/g, "-");
    history.replaceState(null, "", url);
  }
  panels.forEach(([name], i) => {
    const b = el("button", { role: "tab", id: `tab-${i}`, type: "button", onclick: () => choose(i) }, name);
    b.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight") choose((i + 1) % panels.length, true);
      if (e.key === "ArrowLeft") choose((i - 1 + panels.length) % panels.length, true);
    });
    buttons.push(b);
    bar.append(b);
  });
  area.setAttribute("role", "tabpanel");
  const fromHash = panels.findIndex(([n]) => `#${n.toLowerCase().replace(/\W+/g, "-")}` === location.hash);
  select(fromHash >= 0 ? fromHash : initial || 0);
  return el("div", {}, bar, area);
}

export async function topology(ns, id, revision) {
  const wrap = el("div", { class: "topo-wrap", id: "topology" });
  const q = revision ? `?revision=${revision}` : "";
  wrap.innerHTML = await api(`${flowPath(ns, id)}/topology${q}`, { text: true }); // the server's own SVG
  return wrap;
}

function revisionsPanel(ns, id, revisions) {
  const list = revisions.slice().reverse();
  const numbers = list.filter((r) => !r.deleted).map((r) => r.revision);
  const from = el("select", { name: "from" }, numbers.map((n, i) => el("option", { value: n, selected: i === 1 }, `revision ${n}`)));
  const to = el("select", { name: "to" }, numbers.map((n, i) => el("option", { value: n, selected: i === 0 }, `revision ${n}`)));
  const out = el("div", { id: "diff" });
  async function diff() {
    try {
      const d = await api(`${flowPath(ns, id)}/diff?from=${from.value}&to=${to.value}`);
      out.replaceChildren(el("div", { class: "diff", "aria-label": `diff of revision ${d.from} and ${d.to}` },
        d.lines.map((l) => el("div", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : "" }, `${l.op} ${l.text}`))));
    } catch (err) { showError(err); }
  }
  from.addEventListener("change", diff);
  to.addEventListener("change", diff);
  const rows = list.map((r) => el("tr", {}, el("td", {}, String(r.revision)), el("td", {}, r.deleted ? "deleted" : ""),
    el("td", {}, `${(r.source || "").split("\n").length} lines`)));
  const panel = el("div", {}, table(["Revision", "", "Source"], rows, { "aria-label": "Revisions" }));
  if (numbers.length > 1) {
    panel.append(el("h2", {}, "Compare"), el("div", { class: "toolbar" }, field("From", from), field("To", to)), out);
    diff();
  } else {
    panel.append(el("p", { class: "hint" }, "One revision only: save a change in the editor to compare revisions."));
  }
  return panel;
}

function triggersPanel(ns, id) {
  const box = el("div", {}, "Loading triggers…");
  api(`/triggers/${encodeURIComponent(ns)}/${encodeURIComponent(id)}?size=100`).then((res) => {
    if (!res.results.length) { box.replaceChildren(el("p", {}, "This flow has no triggers.")); return; }
    box.replaceChildren(table(["Trigger", "Type", "State", "Next", "Last execution"], res.results.map((t) => el("tr", {},
      el("td", {}, t.triggerId), el("td", {}, t.type), el("td", {}, t.disabled ? `disabled (${t.disabledReason})` : "enabled"),
      el("td", {}, fmtDate(t.nextExecutionDate)),
      el("td", {}, t.executionId ? el("a", { href: execHref(t.executionId) }, t.executionId) : "")))),
    el("p", {}, el("a", { href: `/ui/triggers?namespace=${encodeURIComponent(ns)}&flowId=${encodeURIComponent(id)}` }, "Manage triggers and backfills")));
  }).catch((err) => box.replaceChildren(el("p", { class: "status error" }, err.message)));
  return box;
}

function executionsPanel(ns, id) {
  const box = el("div", {}, "Loading executions…");
  api(`/executions/search?namespace=${encodeURIComponent(ns)}&flowId=${encodeURIComponent(id)}&size=10`).then((res) => {
    box.replaceChildren(res.results.length ? table(["Execution", "State", "Start"], res.results.map((e) => el("tr", {},
      el("td", {}, el("a", { href: execHref(e.id) }, e.id)), el("td", {}, badge(e.state.current)),
      el("td", {}, fmtDate(e.state.startDate))))) : el("p", {}, "No execution yet."),
    el("a", { href: `/ui/executions?namespace=${encodeURIComponent(ns)}&flowId=${encodeURIComponent(id)}` }, "All executions of this flow"));
  }).catch((err) => box.replaceChildren(el("p", { class: "status error" }, err.message)));
  return box;
}

export async function render() {
  const { ns, flow: id } = body();
  let flow, revisions;
  try {
    [flow, revisions] = await Promise.all([api(flowPath(ns, id)), api(`${flowPath(ns, id)}/revisions`)]);
  } catch (err) { showError(err); return; }
  clearError();
  const actions = el("div", { class: "toolbar" },
    el("a", { class: "button", id: "execute", href: `${flowHref(ns, id)}/execute` }, "Execute"),
    el("a", { class: "button secondary", href: `${flowHref(ns, id)}/edit` }, "Edit"),
    el("span", {}, `namespace ${ns} · revision ${flow.revision}`));
  const topo = await topology(ns, id).catch((err) => el("p", { class: "status error" }, err.message));
  content().append(
    flow.description ? el("p", {}, flow.description) : "",
    actions,
    tabs([
      ["Topology", () => topo],
      ["Revisions", () => revisionsPanel(ns, id, revisions)],
      ["Triggers", () => triggersPanel(ns, id)],
      ["Executions", () => executionsPanel(ns, id)],
      ["Source", () => pre(flow.source)],
    ]));
}
