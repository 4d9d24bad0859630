// Dashboard: executions per state per day, durations, recent failures, next scheduled fires.
import { api, badge, content, el, execHref, flowHref, fmtDate, fmtDuration, showError, status, table, clearError } from "../lib.js";

const SHOWN = ["SUCCESS", "WARNING", "FAILED", "KILLED", "RUNNING"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

function chart(days) {
  const W = 28, H = 160, GAP = 6;
  const totals = days.map((d) => Object.values(d.executionCounts).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const root = svg("svg", { class: "chart", width: days.length * (W + GAP) + 40, height: H + 40, role: "img",
    "aria-label": `executions per day and state, ${totals.reduce((a, b) => a + b, 0)} in all` });
  days.forEach((d, i) => {
    let y = H;
    const x = 30 + i * (W + GAP);
    const counts = d.executionCounts;
    const other = totals[i] - SHOWN.reduce((s, k) => s + (counts[k] || 0), 0);
    for (const [state, n] of [...SHOWN.map((s) => [s, counts[s] || 0]), ["OTHER", other]]) {
      if (!n) continue;
      const h = (n / max) * (H - 10);
      y -= h;
      root.append(svg("rect", { x, y, width: W, height: h, class: `bar-${state}` }, svg("title", {}, `${d.startDate}: ${n} ${state}`)));
    }
    if (i % Math.ceil(days.length / 10) === 0) root.append(svg("text", { x, y: H + 14 }, d.startDate.slice(5)));
  });
  root.append(svg("text", { x: 0, y: 12 }, String(max)), svg("text", { x: 0, y: H }, "0"));
  return root;
}

export async function render() {
  const end = new Date();
  const start = new Date(end.getTime() - 29 * 86400e3);
  const [days, failed, triggers, recent] = await Promise.all([
    api("/stats/executions/daily", { method: "POST", json: { startDate: start.toISOString(), endDate: end.toISOString() } }),
    api("/executions/search?state=FAILED&size=10"),
    api("/triggers/search?size=100"),
    api("/executions/search?size=10"),
  ]).catch((err) => { showError(err); return []; });
  if (!days) return;
  clearError();
  const count = (state) => days.reduce((s, d) => s + (d.executionCounts[state] || 0), 0);
  const all = days.reduce((s, d) => s + Object.values(d.executionCounts).reduce((a, b) => a + b, 0), 0);
  const durs = days.map((d) => d.duration).filter((d) => d.count);
  const avg = durs.length ? durs.reduce((s, d) => s + d.sum, 0) / durs.reduce((s, d) => s + d.count, 0) : null;
  const maxDur = durs.length ? Math.max(...durs.map((d) => d.max)) : null;
  const next = triggers.results.filter((t) => t.triggerContext.nextExecutionDate && !t.triggerContext.disabled)
    .sort((a, b) => a.triggerContext.nextExecutionDate.localeCompare(b.triggerContext.nextExecutionDate)).slice(0, 10);
  content().append(
    el("div", { class: "cards", id: "cards" },
      el("div", { class: "card" }, el("b", {}, String(all)), "executions, 30 days"),
      el("div", { class: "card" }, el("b", {}, String(count("SUCCESS"))), "succeeded"),
      el("div", { class: "card" }, el("b", {}, String(count("FAILED"))), "failed"),
      el("div", { class: "card" }, el("b", {}, avg === null ? "–" : fmtDuration(avg)), "average duration"),
      el("div", { class: "card" }, el("b", {}, maxDur === null ? "–" : fmtDuration(maxDur)), "longest")),
    el("h2", {}, "Executions per day and state"), el("div", { id: "daily" }, chart(days)),
    el("p", { class: "hint" }, "Green: SUCCESS, amber: WARNING, red: FAILED, dark red: KILLED, blue: RUNNING, violet: other states."),
    el("div", { class: "grid2" },
      el("section", { "aria-labelledby": "h-fail" }, el("h2", { id: "h-fail" }, "Recent failures"),
        failed.results.length ? table(["Execution", "Flow", "Start"], failed.results.map((e) => el("tr", {},
          el("td", {}, el("a", { href: execHref(e.id) }, e.id)), el("td", {}, `${e.namespace}.${e.flowId}`),
          el("td", {}, fmtDate(e.state.startDate))))) : el("p", {}, "No failure.")),
      el("section", { "aria-labelledby": "h-next" }, el("h2", { id: "h-next" }, "Next scheduled fires"),
        next.length ? table(["When", "Flow", "Trigger"], next.map((t) => el("tr", {},
          el("td", {}, fmtDate(t.triggerContext.nextExecutionDate)),
          el("td", {}, el("a", { href: flowHref(t.triggerContext.namespace, t.triggerContext.flowId) }, `${t.triggerContext.namespace}.${t.triggerContext.flowId}`)),
          el("td", {}, t.triggerContext.triggerId)))) : el("p", {}, "No schedule."))),
    el("h2", {}, "Latest executions"),
    recent.results.length ? table(["Execution", "Flow", "State", "Start"], recent.results.map((e) => el("tr", {},
      el("td", {}, el("a", { href: execHref(e.id) }, e.id)), el("td", {}, `${e.namespace}.${e.flowId}`),
      el("td", {}, badge(e.state.current)), el("td", {}, fmtDate(e.state.startDate))))) : el("p", {}, "No execution yet: ",
      el("a", { href: "/ui/flows" }, "open a flow"), " and press Execute."));
}
