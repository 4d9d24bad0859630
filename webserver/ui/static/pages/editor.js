// The flow editor: validates as you type through POST /flows/validate and marks each problem on its
// line with its message; saving deploys a new revision. CodeMirror when installed, else a textarea.
import { api, body, content, debounce, el, flowHref, flowPath, showError, status } from "../lib.js";

const TEMPLATE = `id: hello
namespace: company.team

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: Hello World!
`;

// The plain editor: a textarea beside a gutter of line numbers; a problem line is marked in it.
function plainEditor(text, onChange) {
  const gutter = el("div", { class: "gutter", "aria-hidden": "true" });
  const area = el("textarea", { id: "source", spellcheck: "false", "aria-label": "Flow source (YAML)", wrap: "off" });
  area.value = text;
  const box = el("div", { class: "plain-editor editor-wrap" }, gutter, area);
  let problems = new Map();
  function paint() {
    const n = area.value.split("\n").length;
    area.rows = n + 1;
    const rows = [];
    for (let i = 1; i <= n; i++) {
      const msg = problems.get(i);
      rows.push(el("div", { class: msg ? "problem" : "", "data-line": i, title: msg || null }, msg ? `! ${i}` : String(i)));
    }
    gutter.replaceChildren(...rows);
  }
  area.addEventListener("input", () => { paint(); onChange(); });
  area.addEventListener("keydown", (e) => { // a Tab key indents rather than leaving the editor
    if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey) {
      e.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
      paint(); onChange();
    }
  });
  paint();
  return {
    node: box,
    value: () => area.value,
    mark(list) { problems = new Map(list.filter((p) => p.line).map((p) => [p.line, p.message])); paint(); },
    jump(line) {
      const lines = area.value.split("\n");
      const at = lines.slice(0, line - 1).reduce((s, l) => s + l.length + 1, 0);
      area.focus();
      area.setSelectionRange(at, at + (lines[line - 1] || "").length);
    },
  };
}

function codeMirrorEditor(text, onChange) {
  const box = el("div", { class: "editor-wrap" });
  const cm = window.CodeMirror(box, {
    value: text, mode: "yaml", lineNumbers: true, indentUnit: 2, tabSize: 2,
    gutters: ["problems", "CodeMirror-linenumbers"],
    extraKeys: { Tab: (c) => c.replaceSelection("  "), "Ctrl-S": () => document.getElementById("save").click() },
    screenReaderLabel: "Flow source (YAML)",
  });
  cm.on("change", onChange);
  let widgets = [];
  return {
    node: box,
    cm,
    value: () => cm.getValue(),
    mark(list) {
      cm.operation(() => {
        widgets.forEach((w) => w.clear());
        widgets = [];
        cm.clearGutter("problems");
        for (const p of list) {
          if (!p.line || p.line > cm.lineCount()) continue;
          const marker = el("span", { class: "problem-marker", title: p.message, "data-line": p.line }, "●");
          cm.setGutterMarker(p.line - 1, "problems", marker);
          widgets.push(cm.addLineWidget(p.line - 1,
            el("div", { class: "line-problem", "data-line": p.line, role: "note" }, `line ${p.line}: ${p.message}`)));
        }
      });
    },
    jump(line) { cm.focus(); cm.setCursor({ line: line - 1, ch: 0 }); },
    refresh: () => cm.refresh(),
  };
}

export async function render() {
  const { ns, flow: id, editor: kind } = body();
  let text = TEMPLATE;
  if (ns && id) {
    try { text = (await api(flowPath(ns, id))).source; } catch (err) { showError(err); return; }
  }
  const problemsList = el("ul", { class: "problems", id: "problems", "aria-live": "polite" });
  const summary = el("p", { id: "validity" });
  const save = el("button", { id: "save", type: "button" }, ns ? "Save (new revision)" : "Save");
  let editor;
  const validate = debounce(async () => {
    const source = editor.value();
    if (!source.trim()) { editor.mark([]); summary.textContent = "Empty."; return; }
    try {
      const docs = await api("/flows/validate", { method: "POST", body: source, headers: { "content-type": "application/x-yaml" } });
      const problems = docs.flatMap((d) => d.issues);
      editor.mark(problems);
      summary.textContent = problems.length ? `${problems.length} problem(s)` : "Valid.";
      summary.className = problems.length ? "status error" : "status ok";
      problemsList.replaceChildren(...problems.map((p) => el("li", { tabindex: "0", "data-line": p.line || "",
        onclick: () => p.line && editor.jump(p.line),
        onkeydown: (e) => { if (e.key === "Enter" && p.line) editor.jump(p.line); } },
        `${p.line ? `line ${p.line}${p.column ? `:${p.column}` : ""}` : "flow"} · ${p.path || ""}: ${p.message}`)));
    } catch (err) { showError(err); }
  }, 300);
  editor = kind === "codemirror" && window.CodeMirror ? codeMirrorEditor(text, validate) : plainEditor(text, validate);
  save.addEventListener("click", async () => {
    try {
      const source = editor.value();
      const saved = ns && id
        ? await api(flowPath(ns, id), { method: "PUT", body: source, headers: { "content-type": "application/x-yaml" } })
        : await api("/flows", { method: "POST", body: source, headers: { "content-type": "application/x-yaml" } });
      status(`Saved revision ${saved.revision}`, "ok");
      location.href = flowHref(saved.namespace, saved.id);
    } catch (err) { showError(err); }
  });
  const note = kind === "codemirror" ? null : el("p", { class: "hint", id: "editor-note" },
    "Plain editor. For the full editor (highlighting, line widgets), run ",
    el("code", {}, "npm ci"), " in the engine's source directory (package.json pins CodeMirror) and reload.");
  content().append(note || "", editor.node, el("div", { class: "toolbar" }, save,
    ns ? el("a", { class: "button secondary", href: flowHref(ns, id) }, "Cancel") : ""), summary, problemsList);
  if (editor.refresh) editor.refresh();
  validate();
}
