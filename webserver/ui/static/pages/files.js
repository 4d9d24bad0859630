// Namespace files: browse directories, view, upload (a .zip is extracted), delete, export as .zip.
import { API, act, api, content, el, field, fmtDate, namespacePicker, nsPath, showError, status, table, clearError } from "../lib.js";

export async function render() {
  const list = el("div", { id: "files-list" });
  const viewer = el("div", { id: "file-view" });
  const where = el("p", { id: "cwd" });
  let dir = "";
  const picker = await namespacePicker((ns) => { dir = ""; load(ns); });
  const file = el("input", { type: "file", name: "fileContent" });
  const target = el("input", { name: "path", placeholder: "scripts/hello.py (default: the file's name in this directory)" });
  const upload = el("form", { class: "toolbar", "aria-label": "Upload a file" }, field("File", file), field("Path", target),
    el("button", { type: "submit", id: "upload" }, "Upload"));
  upload.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) { status("Choose a file first"); return; }
    const path = target.value || (dir ? `${dir}/${f.name}` : f.name);
    const data = new FormData();
    data.append("fileContent", f);
    if (await act(`Upload ${path}`, () => api(`${nsPath(picker.value())}/files?path=${encodeURIComponent(path)}`, { method: "POST", body: data }))) {
      load(picker.value());
    }
  });

  async function view(ns, path) {
    try {
      const text = await api(`${nsPath(ns)}/files?path=${encodeURIComponent(path)}`, { text: true });
      viewer.replaceChildren(el("h2", {}, path), el("pre", { class: "json" }, text.length > 200000 ? text.slice(0, 200000) + "\n…" : text));
    } catch (err) { showError(err); }
  }

  async function load(ns) {
    if (!ns) { list.replaceChildren(el("p", {}, "Choose a namespace.")); return; }
    let items = [];
    try {
      items = dir ? await api(`${nsPath(ns)}/files/directory?path=${encodeURIComponent(dir)}`)
        : await api(`${nsPath(ns)}/files/directory`);
      clearError();
    } catch (err) { showError(err); return; }
    where.replaceChildren(`/${dir}`, dir ? el("button", { class: "secondary", type: "button", onclick: () => {
      dir = dir.split("/").slice(0, -1).join("/"); load(ns);
    } }, "Up") : "");
    viewer.replaceChildren();
    const full = (name) => (dir ? `${dir}/${name}` : name);
    list.replaceChildren(items.length ? table(["Name", "Size", "Modified", ""], items.map((f) => el("tr", { "data-file": full(f.fileName) },
      el("td", {}, el("button", { class: "secondary", type: "button", onclick: () => {
        if (f.type === "Directory") { dir = full(f.fileName); load(ns); } else view(ns, full(f.fileName));
      } }, f.type === "Directory" ? `${f.fileName}/` : f.fileName)),
      el("td", {}, f.type === "Directory" ? "" : String(f.size)),
      el("td", {}, f.lastModifiedTime ? fmtDate(new Date(f.lastModifiedTime).toISOString()) : ""),
      el("td", {}, el("button", { class: "danger", type: "button", "aria-label": `Delete ${full(f.fileName)}`, onclick: async () => {
        if (!confirm(`Delete ${full(f.fileName)}?`)) return;
        if (await act("Delete", () => api(`${nsPath(ns)}/files?path=${encodeURIComponent(full(f.fileName))}`, { method: "DELETE" }))) {
          if (items.length === 1) dir = dir.split("/").slice(0, -1).join("/"); // the directory is gone with its last file
          load(ns);
        }
      } }, "Delete")))), { "aria-label": "Files" }) : el("p", {}, `No file in ${ns}/${dir}.`),
    el("a", { href: `${API}${nsPath(ns)}/files/export` }, "Export every file as .zip"));
  }
  content().append(el("div", { class: "toolbar" }, picker.node), upload, where, list, viewer);
  await load(picker.value());
}
