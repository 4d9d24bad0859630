// Flows: search and namespace filter (kept in the URL), paged.
import { api, content, debounce, el, field, flowHref, namespaces, namespaceSelect, showError, status, table, clearError } from "../lib.js";

const SIZE = 25;

export async function render() {
  const params = new URLSearchParams(location.search);
  const q = el("input", { type: "search", name: "q", value: params.get("q") || "", placeholder: "id, namespace, description" });
  const ns = namespaceSelect(params.get("namespace") || "", await namespaces());
  const list = el("div", { id: "flows-list" });
  const newFlow = el("a", { class: "button", href: "/ui/flows/new" }, "New flow");
  content().append(el("form", { class: "toolbar", role: "search", onsubmit: (e) => e.preventDefault() },
    field("Search", q), field("Namespace", ns), newFlow), list);

  let page = Number(params.get("page") || 1);
  async function load() {
    const p = new URLSearchParams();
    if (q.value) p.set("q", q.value);
    if (ns.value) p.set("namespace", ns.value);
    if (page > 1) p.set("page", String(page));
    history.replaceState(null, "", `${location.pathname}${p.toString() ? "?" + p : ""}`);
    p.set("size", String(SIZE));
    p.set("page", String(page));
    try {
      const res = await api(`/flows/search?${p}`);
      clearError();
      list.replaceChildren(render_(res));
    } catch (err) { showError(err); }
  }
  function render_(res) {
    if (!res.results.length) return el("p", {}, "No flow matches. ", el("a", { href: "/ui/flows/new" }, "Create one"), ".");
    const rows = res.results.map((f) => el("tr", {},
      el("td", {}, f.namespace),
      el("td", {}, el("a", { href: flowHref(f.namespace, f.id) }, f.id)),
      el("td", {}, String(f.revision)),
      el("td", {}, f.description || ""),
      el("td", {}, el("a", { class: "button secondary", href: `${flowHref(f.namespace, f.id)}/execute`,
        "aria-label": `Execute ${f.namespace}.${f.id}` }, "Execute"))));
    const pages = Math.max(1, Math.ceil(res.total / SIZE));
    const nav = el("div", { class: "toolbar" },
      el("button", { class: "secondary", disabled: page <= 1, onclick: () => { page -= 1; load(); } }, "Previous"),
      el("span", {}, `page ${page} of ${pages} · ${res.total} flows`),
      el("button", { class: "secondary", disabled: page >= pages, onclick: () => { page += 1; load(); } }, "Next"));
    return el("div", {}, table(["Namespace", "Flow", "Revision", "Description", ""], rows, { "aria-label": "Flows" }), nav);
  }
  q.addEventListener("input", debounce(() => { page = 1; load(); }, 250));
  ns.addEventListener("change", () => { page = 1; load(); });
  await load();
}
