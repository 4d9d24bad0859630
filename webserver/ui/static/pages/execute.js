// Execute: a form generated from the flow's typed inputs (files too); then the execution page.
import { api, body, content, el, execHref, field, flowHref, flowPath, showError, status, whenIndexed, clearError } from "../lib.js";

const NUMBER = new Set(["INT", "FLOAT"]);

function control(input) {
  const type = String(input.type || "STRING").toUpperCase();
  const def = input.defaults;
  const name = input.id;
  if (type === "BOOLEAN" || type === "BOOL") {
    return el("input", { type: "checkbox", name, checked: def === true || def === "true" });
  }
  if (type === "SELECT" || type === "ENUM" || type === "MULTISELECT") {
    const values = input.values || input.options || [];
    const sel = el("select", { name, multiple: type === "MULTISELECT" },
      !input.required && type !== "MULTISELECT" ? el("option", { value: "" }, "—") : "",
      values.map((v) => el("option", { value: v, selected: Array.isArray(def) ? def.includes(v) : v === def }, v)));
    return sel;
  }
  if (type === "FILE") return el("input", { type: "file", name });
  if (type === "JSON" || type === "YAML" || type === "ARRAY") {
    const area = el("textarea", { name, rows: 4, class: "mono" });
    area.value = def === undefined || def === null ? "" : typeof def === "string" ? def : JSON.stringify(def, null, 2);
    return area;
  }
  const kinds = { INT: "number", FLOAT: "number", DATE: "date", TIME: "time", EMAIL: "email", URI: "url", SECRET: "password" };
  const attrs = { type: kinds[type] || "text", name, step: type === "FLOAT" ? "any" : null };
  if (type === "DATETIME") attrs.placeholder = "2026-01-31T12:00:00Z";
  if (type === "DURATION") attrs.placeholder = "PT5M";
  const inp = el("input", attrs);
  if (def !== undefined && def !== null) inp.value = String(def);
  return inp;
}

function valueOf(input, node) {
  const type = String(input.type || "STRING").toUpperCase();
  if (node.type === "checkbox") return node.checked;
  if (node.type === "file") return node.files[0];
  if (node.multiple) return Array.from(node.selectedOptions).map((o) => o.value);
  if (node.value === "") return undefined;
  if (NUMBER.has(type)) return Number(node.value);
  if (type === "JSON" || type === "ARRAY") {
    try { return JSON.parse(node.value); } catch (_) { return node.value; }
  }
  return node.value;
}

export async function render() {
  const { ns, flow: id } = body();
  let flow;
  try { flow = await api(flowPath(ns, id)); } catch (err) { showError(err); return; }
  const inputs = Array.isArray(flow.inputs) ? flow.inputs : [];
  const controls = inputs.map((input) => [input, control(input)]);
  const labels = el("input", { name: "labels", placeholder: "team:data, env:dev" });
  const form = el("form", { id: "execute-form", "aria-label": `Inputs of ${ns}.${id}` },
    inputs.length ? "" : el("p", {}, "This flow has no inputs."),
    controls.map(([input, node]) => field(
      `${input.displayName || input.id}${input.required === false || input.defaults !== undefined ? "" : " *"} (${input.type || "STRING"})`,
      node, input.description)),
    field("Labels", labels, "key:value, separated by commas"),
    el("div", { class: "toolbar" }, el("button", { type: "submit", id: "run" }, "Execute"),
      el("a", { class: "button secondary", href: flowHref(ns, id) }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = {};
    let files = false;
    for (const [input, node] of controls) {
      const v = valueOf(input, node);
      if (v === undefined) continue;
      values[input.id] = v;
      if (v instanceof File) files = true;
    }
    const q = new URLSearchParams();
    for (const l of labels.value.split(",").map((s) => s.trim()).filter(Boolean)) q.append("labels", l);
    const path = `/executions/${encodeURIComponent(ns)}/${encodeURIComponent(id)}${q.toString() ? "?" + q : ""}`;
    try {
      status("Starting…");
      let created;
      if (files) {
        const data = new FormData();
        for (const [k, v] of Object.entries(values)) {
          data.append(k, v instanceof File ? v : typeof v === "string" ? v : JSON.stringify(v));
        }
        created = await api(path, { method: "POST", body: data });
      } else {
        created = await api(path, { method: "POST", json: values });
      }
      await whenIndexed(created.id);
      location.href = execHref(created.id);
    } catch (err) {
      const detail = (err.errors || []).map((p) => `${p.input || p.key || ""}: ${p.message}`).join("\n");
      showError(detail ? `${err.message}\n${detail}` : err);
    }
  });
  clearError();
  content().append(form);
}
