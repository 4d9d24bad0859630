// An execution, live over SSE: state, Gantt of taskruns and attempts, topology coloured by state,
// logs, outputs and files, the actions (kill, restart, replay from a taskrun, resume with inputs),
// and the raw event history with an "as of event N" slider.
import { API, TERMINAL, act, api, badge, body, content, debounce, el, execHref, field, fmtDate, fmtDuration,
  duration, flowHref, pre, showError, status, table, whenIndexed, clearError } from "../lib.js";
import { tabs, topology } from "./flow.js";
import { logView } from "./logview.js";

const RANK = { FAILED: 6, KILLED: 5, RUNNING: 7, PAUSED: 7, CREATED: 7, RETRYING: 7, WARNING: 4, SUCCESS: 3 };

const ROW = 24;

// The Gantt: one row per taskrun (and per attempt when there were several). Only the rows in view
// are in the DOM, so a thousand taskruns cost what twenty do.
function gantt(ex) {
  const runs = ex.taskRunList.slice().sort((a, b) => (a.state.startDate || "").localeCompare(b.state.startDate || ""));
  const t0 = Date.parse(ex.state.startDate);
  const t1 = ex.state.endDate ? Date.parse(ex.state.endDate) : Date.now();
  const span = Math.max(1, t1 - t0);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const bar = (state, cls) => {
    if (!state.startDate) return "";
    const s = Date.parse(state.startDate);
    const e = state.endDate ? Date.parse(state.endDate) : t1;
    const left = ((s - t0) / span) * 100;
    const width = Math.max(0.2, ((e - s) / span) * 100);
    return `<div class="bar st-${state.current} ${cls}" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%" title="${state.current} ${fmtDuration(e - s)}"></div>`;
  };
  const rows = []; // [html of the row without its position]
  for (const tr of runs) {
    const name = `${tr.taskId}${tr.value !== null && tr.value !== undefined ? ` [${tr.value}]` : ""}`;
    rows.push((top) => `<div class="row" role="row" style="top:${top}px" data-taskrun="${esc(tr.id)}" data-task="${esc(tr.taskId)}" data-state="${tr.state.current}">`
      + `<div class="name" role="rowheader" title="${esc(name)}">${esc(name)} <span class="badge st-${tr.state.current}">${tr.state.current}</span></div>`
      + `<div class="track" role="cell">${bar(tr.state, "")}</div>`
      + `<div class="dur" role="cell">${fmtDuration(duration(tr.state))}</div></div>`);
    if (tr.attempts.length > 1) {
      tr.attempts.forEach((a, i) => rows.push((top) => `<div class="row attempt-row" role="row" style="top:${top}px"><div class="name" role="rowheader">&nbsp;&nbsp;attempt ${i + 1} <span class="badge st-${a.state.current}">${a.state.current}</span></div>`
        + `<div class="track" role="cell">${bar(a.state, "attempt")}</div><div class="dur" role="cell">${fmtDuration(duration(a.state))}</div></div>`));
    }
  }
  const spacer = el("div", { class: "spacer", style: `height:${rows.length * ROW}px` });
  const box = el("div", { class: "gantt", id: "gantt", role: "table", tabindex: "0", "aria-label": `Gantt of ${runs.length} taskruns and their attempts`,
    style: `height:${Math.min(Math.max(rows.length, 1) * ROW + 2, 480)}px` }, spacer);
  if (!rows.length) { box.append(el("p", {}, "No taskrun yet.")); return box; }
  let shown = "";
  function paint() {
    const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 5);
    const last = Math.min(rows.length, first + Math.ceil((box.clientHeight || 480) / ROW) + 10);
    if (shown === `${first}:${last}`) return;
    shown = `${first}:${last}`;
    const html = [];
    for (let i = first; i < last; i++) html.push(rows[i](i * ROW));
    spacer.innerHTML = html.join("");
  }
  box.addEventListener("scroll", () => requestAnimationFrame(paint), { passive: true });
  paint();
  return box;
}

function colour(svgBox, ex) {
  const byTask = new Map();
  for (const tr of ex.taskRunList) {
    const was = byTask.get(tr.taskId);
    if (!was || (RANK[tr.state.current] || 0) > (RANK[was] || 0)) byTask.set(tr.taskId, tr.state.current);
  }
  for (const node of svgBox.querySelectorAll("g.node")) {
    const state = byTask.get(node.dataset.task);
    node.setAttribute("class", `node${state ? ` s-${state}` : ""}`);
    if (state) node.setAttribute("data-state", state); else node.removeAttribute("data-state");
  }
}

function header(ex) {
  const labels = ex.labels.map((l) => `${l.key}:${l.value}`).join(", ");
  return el("div", { id: "summary" }, el("table", { "aria-label": "Execution" }, el("tbody", {},
    el("tr", {}, el("th", { scope: "row" }, "State"), el("td", { id: "state" }, badge(ex.state.current))),
    el("tr", {}, el("th", { scope: "row" }, "Flow"), el("td", {}, el("a", { href: flowHref(ex.namespace, ex.flowId) }, `${ex.namespace}.${ex.flowId}`), ` revision ${ex.flowRevision}`)),
    el("tr", {}, el("th", { scope: "row" }, "Started"), el("td", {}, fmtDate(ex.state.startDate))),
    el("tr", {}, el("th", { scope: "row" }, "Duration"), el("td", {}, fmtDuration(duration(ex.state)))),
    el("tr", {}, el("th", { scope: "row" }, "Taskruns"), el("td", { id: "taskrun-count" }, String(ex.taskRunList.length))),
    labels ? el("tr", {}, el("th", { scope: "row" }, "Labels"), el("td", {}, labels)) : "",
    ex.originalId && ex.originalId !== ex.id ? el("tr", {}, el("th", { scope: "row" }, "Replay of"), el("td", {}, el("a", { href: execHref(ex.originalId) }, ex.originalId))) : "",
    Object.keys(ex.inputs || {}).length ? el("tr", {}, el("th", { scope: "row" }, "Inputs"), el("td", {}, pre(ex.inputs))) : "")));
}

function actions(ex, reload) {
  const id = ex.id;
  const state = ex.state.current;
  const box = el("div", { class: "toolbar", id: "actions" });
  const ended = TERMINAL.has(state);
  box.append(el("button", { class: "danger", id: "kill", disabled: ended, onclick: () =>
    confirm(`Kill execution ${id}?`) && act("Kill", () => api(`/executions/${id}/kill`, { method: "DELETE" })) }, "Kill"));
  box.append(el("button", { class: "secondary", id: "restart", disabled: !ended || state === "SUCCESS", onclick: async () => {
    if (await act("Restart", () => api(`/executions/${id}/restart`, { method: "POST" }))) reload();
  } }, "Restart"));
  const from = el("select", { name: "replayFrom" }, el("option", { value: "" }, "the start"));
  const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  from.insertAdjacentHTML("beforeend", ex.taskRunList.map((tr) => `<option value="${esc(tr.id)}">${esc(tr.taskId)}${tr.value != null ? ` [${esc(tr.value)}]` : ""} (${tr.state.current})</option>`).join(""));
  box.append(field("Replay from", from), el("button", { class: "secondary", id: "replay", onclick: async () => {
    const q = from.value ? `?taskRunId=${encodeURIComponent(from.value)}` : "";
    const out = await act("Replay", () => api(`/executions/${id}/replay${q}`, { method: "POST" }));
    if (out && out.id) { await whenIndexed(out.id); location.href = execHref(out.id); }
  } }, "Replay"));
  if (state === "PAUSED") {
    const inputs = el("textarea", { name: "resumeInputs", rows: 2, class: "mono", placeholder: '{"answer": "yes"}' });
    box.append(field("Resume inputs (JSON)", inputs), el("button", { id: "resume", onclick: async () => {
      let values = {};
      try { values = inputs.value.trim() ? JSON.parse(inputs.value) : {}; } catch (err) { showError(`resume inputs: ${err.message}`); return; }
      await act("Resume", () => api(`/executions/${id}/resume`, { method: "POST", json: values }));
    } }, "Resume"));
  }
  return box;
}

function outputsPanel(ex) {
  const rows = ex.taskRunList.filter((tr) => tr.outputs && Object.keys(tr.outputs).length).map((tr) =>
    el("tr", {}, el("td", {}, tr.taskId, tr.value != null ? ` [${tr.value}]` : ""), el("td", {}, pre(tr.outputs))));
  return el("div", { id: "outputs" }, el("h2", {}, "Flow outputs"), pre(ex.outputs || {}),
    el("h2", {}, "Task outputs"), rows.length ? table(["Task", "Outputs"], rows) : el("p", {}, "No task outputs."));
}

function filesPanel(id) {
  const box = el("div", { id: "files" }, "Loading files…");
  api(`/executions/${encodeURIComponent(id)}/files`).then((uris) => {
    box.replaceChildren(uris.length ? el("ul", {}, uris.map((u) => el("li", {},
      el("a", { href: `${API}/executions/${encodeURIComponent(id)}/file?path=${encodeURIComponent(u)}` }, u))))
      : el("p", {}, "No files."));
  }).catch((err) => box.replaceChildren(el("p", { class: "status error" }, err.message)));
  return box;
}

function historyPanel(id) {
  const box = el("div", { id: "history" }, "Loading the history…");
  api(`/executions/${encodeURIComponent(id)}/events`).then((steps) => {
    if (!steps.length) { box.replaceChildren(el("p", {}, "No events.")); return; }
    const slider = el("input", { type: "range", min: 0, max: steps.length - 1, value: steps.length - 1, name: "asOf" });
    const label = el("output", { id: "as-of" });
    const events = el("div", { id: "step-events" });
    const state = el("div", { id: "state-at" });
    const show = debounce(async () => {
      const step = steps[Number(slider.value)];
      label.textContent = `as of event ${Number(slider.value) + 1} of ${steps.length} (sequence ${step.seq})`;
      events.replaceChildren(el("h2", {}, "Events of this step"), pre(step.events));
      try {
        const at = await api(`/executions/${encodeURIComponent(id)}/at/${step.seq}`);
        state.replaceChildren(el("h2", {}, "The execution then"), el("p", {}, "State ", badge(at.state.current),
          ` · ${at.taskRunList.length} taskruns`), table(["Task", "Value", "State"], at.taskRunList.map((tr) =>
          el("tr", {}, el("td", {}, tr.taskId), el("td", {}, tr.value ?? ""), el("td", {}, badge(tr.state.current))))));
      } catch (err) { showError(err); }
    }, 120);
    slider.addEventListener("input", show);
    box.replaceChildren(field("As of event", slider), label, el("div", { class: "grid2" }, state, events));
    show();
  }).catch((err) => box.replaceChildren(el("p", { class: "status error" }, err.message)));
  return box;
}

export async function render() {
  const { id } = body();
  let ex;
  try { ex = await api(`/executions/${encodeURIComponent(id)}`); } catch (err) { showError(err); return; }
  clearError();
  const top = el("div", {});
  const actionBox = el("div", {});
  const ganttBox = el("div", {});
  const topoBox = el("div", {}, "Loading the topology…");
  const logs = logView(id, { live: !TERMINAL.has(ex.state.current) });
  const outputsBox = el("div", {});
  topology(ex.namespace, ex.flowId, ex.flowRevision).then((svg) => { topoBox.replaceChildren(svg); colour(svg, ex); })
    .catch((err) => topoBox.replaceChildren(el("p", { class: "status error" }, err.message)));
  let source = null;
  let actionKey = "";

  function update(doc) {
    ex = doc;
    top.replaceChildren(header(ex));
    // The actions keep what a person typed (resume inputs, the replay choice) until they change.
    const key = `${ex.state.current}|${ex.taskRunList.map((tr) => tr.id + tr.state.current).join()}`;
    if (key !== actionKey) { actionKey = key; actionBox.replaceChildren(actions(ex, follow)); }
    ganttBox.replaceChildren(gantt(ex));
    const svg = topoBox.querySelector("#topology");
    if (svg) colour(svg, ex);
    if (outputsBox.isConnected) outputsBox.replaceChildren(outputsPanel(ex)); // built when shown only
    if (TERMINAL.has(ex.state.current) && source) { source.close(); source = null; logs.stop(); }
  }

  function follow() {
    if (source) return;
    logs.live();
    source = new EventSource(`${API}/executions/${encodeURIComponent(id)}/follow`);
    source.addEventListener("execution", (e) => update(JSON.parse(e.data)));
    source.addEventListener("error", () => { if (source) { source.close(); source = null; } });
  }

  update(ex);
  content().append(top, actionBox, el("h2", {}, "Taskruns"), ganttBox, el("h2", {}, "Logs"), logs.node, tabs([
    ["Topology", () => topoBox],
    ["Outputs", () => { outputsBox.replaceChildren(outputsPanel(ex)); return outputsBox; }],
    ["Files", () => filesPanel(id)],
    ["History", () => historyPanel(id)],
  ]));
  logs.paint();
  if (!TERMINAL.has(ex.state.current)) follow();
}
