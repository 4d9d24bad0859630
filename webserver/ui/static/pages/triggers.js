// Triggers and backfills: enable/disable Schedule triggers; start, pause, resume, cancel a backfill
// and follow its progress.
import { act, api, content, debounce, el, execHref, field, flowHref, fmtDate, showError, status, table, clearError } from "../lib.js";

function backfillCell(t, reload) {
  const ctx = t.triggerContext;
  const ref = { namespace: ctx.namespace, flowId: ctx.flowId, triggerId: ctx.triggerId };
  const b = ctx.backfill;
  if (!ctx.cron) return el("td", {}, "");
  if (b && b.status !== "DONE" && b.status !== "CANCELLED") {
    const done = b.created + b.skipped;
    return el("td", { "data-backfill": b.status },
      el("progress", { max: b.total || 1, value: done, "aria-label": `backfill progress of ${ctx.triggerId}` }),
      ` ${done}/${b.total} · ${b.status}${b.running ? ` · ${b.running} running` : ""}`,
      el("div", { class: "toolbar" },
        b.paused
          ? el("button", { class: "secondary", type: "button", onclick: async () => { await act("Resume backfill", () => api("/triggers/backfill/unpause", { method: "PUT", json: ref })); reload(); } }, "Resume")
          : el("button", { class: "secondary", type: "button", onclick: async () => { await act("Pause backfill", () => api("/triggers/backfill/pause", { method: "PUT", json: ref })); reload(); } }, "Pause"),
        el("button", { class: "danger", type: "button", onclick: async () => {
          if (confirm("Cancel this backfill?")) { await act("Cancel backfill", () => api("/triggers/backfill/delete", { method: "POST", json: ref })); reload(); }
        } }, "Cancel")));
  }
  const start = el("input", { type: "datetime-local", name: "start", "aria-label": `Backfill start of ${ctx.triggerId}` });
  const end = el("input", { type: "datetime-local", name: "end", "aria-label": `Backfill end of ${ctx.triggerId}` });
  const form = el("form", { class: "toolbar", "aria-label": `Backfill ${ctx.triggerId}` }, start, end,
    el("button", { type: "submit", class: "secondary" }, "Backfill"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!start.value || !end.value) { status("Give the backfill a start and an end"); return; }
    const backfill = { start: new Date(start.value).toISOString(), end: new Date(end.value).toISOString() };
    await act("Start backfill", () => api("/triggers", { method: "PUT", json: { ...ref, backfill } }));
    reload();
  });
  return el("td", {}, b ? el("div", {}, `last: ${b.status} ${b.created}/${b.total}`) : "", form);
}

export async function render() {
  const params = new URLSearchParams(location.search);
  const q = el("input", { type: "search", name: "q", value: params.get("q") || params.get("flowId") || "", placeholder: "namespace, flow, trigger" });
  const list = el("div", { id: "triggers-list" });
  async function load() {
    const p = new URLSearchParams({ size: "100" });
    if (q.value) p.set("q", q.value);
    if (params.get("namespace")) p.set("namespace", params.get("namespace"));
    try {
      const res = await api(`/triggers/search?${p}`);
      clearError();
      list.replaceChildren(res.results.length ? table(["Flow", "Trigger", "Type", "State", "Next", "Last", "Backfill"],
        res.results.map((t) => {
          const ctx = t.triggerContext;
          const ref = { namespace: ctx.namespace, flowId: ctx.flowId, triggerId: ctx.triggerId };
          const toggle = ctx.cron ? el("button", { class: "secondary", type: "button", "aria-label": `${ctx.disabled ? "Enable" : "Disable"} ${ctx.triggerId}`, onclick: async () => {
            await act(ctx.disabled ? "Enable" : "Disable", () => api("/triggers", { method: "PUT", json: { ...ref, disabled: !ctx.disabled } }));
            load();
          } }, ctx.disabled ? "Enable" : "Disable") : "";
          return el("tr", { "data-trigger": `${ctx.namespace}.${ctx.flowId}.${ctx.triggerId}` },
            el("td", {}, el("a", { href: flowHref(ctx.namespace, ctx.flowId) }, `${ctx.namespace}.${ctx.flowId}`)),
            el("td", {}, ctx.triggerId), el("td", {}, ctx.type.split(".").pop()),
            el("td", {}, ctx.disabled ? `disabled (${ctx.disabledReason})` : "enabled", " ", toggle),
            el("td", {}, fmtDate(ctx.nextExecutionDate)),
            el("td", {}, ctx.executionId ? el("a", { href: execHref(ctx.executionId) }, fmtDate(ctx.date) || ctx.executionId) : ""),
            backfillCell(t, load));
        }), { "aria-label": "Triggers" }) : el("p", {}, "No trigger matches."));
    } catch (err) { showError(err); }
  }
  q.addEventListener("input", debounce(load, 250));
  content().append(el("form", { class: "toolbar", role: "search", onsubmit: (e) => e.preventDefault() }, field("Search", q)), list);
  await load();
  // A running backfill moves: refresh while one is shown.
  setInterval(() => { if (list.querySelector("progress")) load(); }, 2000);
}
