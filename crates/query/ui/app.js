// The app shell: routes (History API, relative to <base href>), the theme
// switch, and traces opened from files (kept in memory, never stored).
import { searchPage } from "./search.js";
import { tracePage } from "./trace.js";
import { comparePage } from "./compare.js";
import { dependenciesPage } from "./deps.js";
import { monitorPage } from "./monitor.js";
import * as api from "./api.js";
import { jaegerTracesOfFile } from "./model.js";
import { NAVIGATED, h, localTraces, navigate, showError } from "./shell.js";

const app = document.getElementById("app");
const basePath = new URL(document.baseURI).pathname;

/** The route part of the current location: "search", "trace/abc", ... */
const route = () => decodeURIComponent(location.pathname.slice(basePath.length));

async function render() {
  const path = route();
  const [page, ...rest] = path.split("/");
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.toggleAttribute("aria-current", a.dataset.nav === (page || "search"));
  }
  app.replaceChildren();
  const params = new URLSearchParams(location.search);
  try {
    if (page === "trace" && rest[0]) await tracePage(app, rest[0], params);
    else if (page === "compare") await comparePage(app, rest, params);
    else if (page === "dependencies") await dependenciesPage(app, params);
    else if (page === "monitor") await monitorPage(app, params);
    else if (page === "local") await localPage(app);
    else await searchPage(app, params);
  } catch (e) {
    showError(app, e);
  }
}

function localPage(container) {
  container.append(h("h1", {}, "Opened file"));
  if (!localTraces.size) {
    container.append(h("p", {}, "No file opened."));
    return;
  }
  const list = h("ul", { class: "results", "data-testid": "local-traces" });
  for (const [id, raw] of localTraces) {
    list.append(
      h("li", {}, h("a", { href: `trace/${id}`, "data-link": "" }, `${id} (${raw.spans.length} spans)`)),
    );
  }
  container.append(list);
}

// links inside the app navigate without reloading
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href]");
  if (!a || a.target || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const target = new URL(a.href, document.baseURI);
  if (target.origin !== location.origin || !target.pathname.startsWith(basePath)) return;
  if (a.hasAttribute("download")) return;
  e.preventDefault();
  navigate(target.pathname.slice(basePath.length) + target.search);
});
window.addEventListener("popstate", render);
window.addEventListener(NAVIGATED, render);

// the header's trace id lookup: 16 or 32 hex digits (leading zeros may go)
document.getElementById("lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("trace-id");
  const id = input.value.trim().toLowerCase();
  if (!/^[0-9a-f]{1,32}$/.test(id)) {
    input.setCustomValidity("a trace id is 1 to 32 hex digits");
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  input.value = "";
  navigate(`trace/${id}`);
});

document.getElementById("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("spoor.theme", next);
});

document.getElementById("open-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  try {
    const text = await file.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // JSON lines (the OpenTelemetry file exporter's): the server reads them
    }
    const traces = jaegerTracesOfFile(json) ?? (await api.transform(text));
    localTraces.clear();
    for (const t of traces) localTraces.set(t.traceID, t);
    navigate(traces.length === 1 ? `trace/${traces[0].traceID}` : "local");
  } catch (err) {
    app.replaceChildren();
    showError(app, new Error(`${file.name}: ${err.message}`));
  } finally {
    e.target.value = "";
  }
});

render();
