// A log list over GET /logs/{id}/paged: only the rows in view are in the DOM; pages of lines are fetched as
// the list scrolls, so 100,000 lines scroll like 100. Live lines come as a signal over SSE.
import { API, api, debounce, el, field, fmtDate } from "../lib.js";

const ROW = 20;
const PAGE = 500;

export function logView(id, { live }) {
  const level = el("select", { name: "minLevel" }, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].map((l) =>
    el("option", { value: l, selected: l === "TRACE" }, l)));
  const search = el("input", { type: "search", name: "logq", placeholder: "text in the message" });
  const count = el("span", { id: "log-count", "aria-live": "polite" });
  const spacer = el("div", { class: "spacer" });
  const box = el("div", { class: "logs", id: "logs", tabindex: "0", role: "log", "aria-label": "Log lines" }, spacer);
  const follow = el("input", { type: "checkbox", name: "follow", checked: true });
  let total = 0;
  let pages = new Map(); // page index -> lines, or a Promise while it loads
  let generation = 0; // a change of filter forgets what older requests bring back

  const query = () => {
    const p = new URLSearchParams({ minLevel: level.value });
    if (search.value) p.set("q", search.value);
    return p;
  };

  function load(index) {
    if (pages.has(index)) return;
    const gen = generation;
    const p = query();
    p.set("page", String(index + 1));
    p.set("size", String(PAGE));
    const pending = api(`/logs/${encodeURIComponent(id)}/paged?${p}`).then((res) => {
      if (gen !== generation) return;
      pages.set(index, res.results);
      if (res.total !== total) setTotal(res.total);
      paint();
    }).catch(() => { if (gen === generation) pages.delete(index); });
    pages.set(index, pending);
  }

  function setTotal(n) {
    total = n;
    spacer.style.height = `${total * ROW}px`;
    count.textContent = `${total} lines`;
  }

  function paint() {
    const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 5);
    const last = Math.min(total, first + Math.ceil(box.clientHeight / ROW) + 10);
    const rows = [];
    for (let i = first; i < last; i++) {
      const page = pages.get(Math.floor(i / PAGE));
      if (!Array.isArray(page)) { load(Math.floor(i / PAGE)); continue; }
      const line = page[i % PAGE];
      if (!line) continue;
      rows.push(el("div", { class: `line lvl-${line.level}`, style: `top:${i * ROW}px`, "data-index": i },
        `${fmtDate(line.timestamp)} ${line.level.padEnd(5)} ${line.taskId ? `[${line.taskId}] ` : ""}${line.message}`));
    }
    spacer.replaceChildren(...rows);
  }

  async function reload() {
    generation += 1;
    pages = new Map();
    const p = query();
    p.set("size", "1");
    try { setTotal((await api(`/logs/${encodeURIComponent(id)}/paged?${p}`)).total); } catch (_) { setTotal(0); }
    paint();
  }

  // New lines: re-read the count and the last page, and keep the end in view when following.
  const refresh = debounce(async () => {
    const p = query();
    p.set("size", "1");
    let n;
    try { n = (await api(`/logs/${encodeURIComponent(id)}/paged?${p}`)).total; } catch (_) { return; }
    if (n === total) return;
    for (const k of [...pages.keys()]) if (k >= Math.floor(total / PAGE)) pages.delete(k);
    setTotal(n);
    if (follow.checked) box.scrollTop = box.scrollHeight;
    paint();
  }, 150);

  let source = null;
  function startLive() {
    if (source) return;
    source = new EventSource(`${API}/logs/${encodeURIComponent(id)}/follow`);
    source.addEventListener("log", refresh);
    source.addEventListener("error", () => { source.close(); source = null; refresh(); });
  }

  box.addEventListener("scroll", () => requestAnimationFrame(paint), { passive: true });
  box.addEventListener("keydown", (e) => {
    const step = { ArrowDown: ROW, ArrowUp: -ROW, PageDown: box.clientHeight, PageUp: -box.clientHeight }[e.key];
    if (step) { box.scrollTop += step; e.preventDefault(); }
    if (e.key === "End") { box.scrollTop = box.scrollHeight; e.preventDefault(); }
    if (e.key === "Home") { box.scrollTop = 0; e.preventDefault(); }
  });
  level.addEventListener("change", reload);
  search.addEventListener("input", debounce(reload, 250));
  const node = el("div", {},
    el("div", { class: "toolbar" }, field("Minimum level", level), field("Search", search),
      el("label", {}, follow, " follow the end"), count), box);
  reload().then(() => { if (live) startLive(); });
  return {
    node,
    live: startLive,
    stop() { if (source) source.close(); source = null; refresh(); },
    paint,
  };
}
