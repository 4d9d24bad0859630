// KV store of a namespace: list, read, set (JSON or text, optional TTL), delete.
import { act, api, content, el, field, namespacePicker, nsPath, pre, showError, status, table, clearError } from "../lib.js";

export async function render() {
  const list = el("div", { id: "kv-list" });
  const shown = el("div", { id: "kv-value" });
  const picker = await namespacePicker(load);
  const key = el("input", { name: "key", placeholder: "my_key" });
  const value = el("textarea", { name: "value", rows: 3, class: "mono", placeholder: '"text", 42, {"a": 1}' });
  const ttl = el("input", { name: "ttl", placeholder: "PT1H (optional)" });
  const form = el("form", { "aria-label": "Set a key", class: "toolbar" }, field("Key", key), field("Value (JSON or text)", value),
    field("Time to live", ttl), el("button", { type: "submit", id: "kv-set" }, "Set"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const ns = picker.value();
    const headers = { "content-type": "application/json" };
    if (ttl.value) headers.ttl = ttl.value;
    if (await act(`Set ${key.value}`, () => api(`${nsPath(ns)}/kv/${encodeURIComponent(key.value)}`, { method: "PUT", body: value.value, headers }))) {
      load(ns);
    }
  });

  async function show(ns, k) {
    try {
      const v = await api(`${nsPath(ns)}/kv/${encodeURIComponent(k)}`);
      shown.replaceChildren(el("h2", {}, `${k} (${v.type})`), pre(v.value));
    } catch (err) { showError(err); }
  }

  async function load(ns) {
    if (!ns) { list.replaceChildren(el("p", {}, "Choose a namespace.")); return; }
    try {
      const keys = await api(`${nsPath(ns)}/kv`);
      clearError();
      shown.replaceChildren();
      list.replaceChildren(keys.length ? table(["Key", ""], keys.map(({ key: k }) => el("tr", { "data-key": k },
        el("td", {}, el("button", { class: "secondary", type: "button", onclick: () => show(ns, k) }, k)),
        el("td", {}, el("button", { class: "danger", type: "button", "aria-label": `Delete ${k}`, onclick: async () => {
          if (confirm(`Delete key ${k}?`) && await act(`Delete ${k}`, () => api(`${nsPath(ns)}/kv/${encodeURIComponent(k)}`, { method: "DELETE" }))) load(ns);
        } }, "Delete")))), { "aria-label": "Keys" }) : el("p", {}, `No key in ${ns}.`));
    } catch (err) { showError(err); }
  }
  content().append(el("div", { class: "toolbar" }, picker.node), form, list, shown);
  await load(picker.value());
}
