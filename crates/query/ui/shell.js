// What every page shares: building elements, showing errors, moving
// between pages (app.js renders on NAVIGATED), and traces opened from files.
// Pages import this, never app.js, so the module graph has no cycle.

/** Traces opened from files, by trace id. */
export const localTraces = new Map();

/** The event app.js renders the current location on. */
export const NAVIGATED = "spoor:navigated";

export function navigate(path, { replace = false } = {}) {
  const target = new URL(path, document.baseURI);
  history[replace ? "replaceState" : "pushState"](null, "", target);
  window.dispatchEvent(new Event(NAVIGATED));
}

/** Replaces the query string of the current page (state kept in the URL). */
export function setQuery(params) {
  const u = new URL(location.href);
  u.search = new URLSearchParams(params).toString();
  history.replaceState(null, "", u);
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function showError(container, error) {
  container.append(h("p", { class: "error", role: "alert" }, String(error.message ?? error)));
}

