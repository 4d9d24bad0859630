// The entry module: the shell's <body data-page> names the page module that fills <main>.
import { showError } from "./lib.js";

const PAGES = {
  dashboard: "./pages/dashboard.js",
  flows: "./pages/flows.js",
  flow: "./pages/flow.js",
  editor: "./pages/editor.js",
  execute: "./pages/execute.js",
  executions: "./pages/executions.js",
  execution: "./pages/execution.js",
  triggers: "./pages/triggers.js",
  kv: "./pages/kv.js",
  files: "./pages/files.js",
};

async function start() {
  const page = document.body.dataset.page;
  try {
    const mod = await import(PAGES[page]);
    await mod.render();
    document.body.dataset.ready = "true";
  } catch (err) {
    showError(err);
    document.body.dataset.ready = "error";
  }
}

start();
