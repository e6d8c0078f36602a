// The service dependency graph: services in columns by their longest
// distance from a caller-less service, edges labelled with call counts; a
// service can be focused (from the list or by a click on it) to see what
// calls it and what it calls, to a depth of hops, as Jaeger's deep
// dependency graph shows them.
import * as api from "./api.js";
import { h, setQuery } from "./shell.js";

const LOOKBACKS = [["1h", 3600e3], ["6h", 21600e3], ["24h", 86400e3], ["48h", 172800e3], ["7d", 604800e3]];

export async function dependenciesPage(container, params) {
  const lookback = h("select", { "aria-label": "Lookback" }, LOOKBACKS.map(([l, ms]) => h("option", { value: ms }, `Last ${l}`)));
  lookback.value = params.get("lookback") ?? String(86400e3);
  const focus = h("select", { "aria-label": "Focus on a service", "data-testid": "focus" });
  const depth = h("select", { "aria-label": "Hops from the focused service", "data-testid": "depth" },
    [1, 2, 3, 4, 5].map((d) => h("option", { value: d }, String(d))));
  depth.value = params.get("depth") ?? "1";
  const graph = h("div", { class: "graph", "data-testid": "graph" });
  container.append(h("h1", {}, "Dependencies"),
    h("div", { class: "toolbar" }, h("label", {}, "Lookback ", lookback), h("label", {}, "Focus ", focus),
      h("label", {}, "Hops ", depth)), graph);
  let links = [];
  const draw = () => {
    depth.disabled = !focus.value;
    setQuery({ lookback: lookback.value, ...(focus.value ? { focus: focus.value, depth: depth.value } : {}) });
    const shown = focus.value ? around(links, focus.value, Number(depth.value)) : links;
    drawGraph(graph, shown, focus.value);
  };
  graph.addEventListener("click", (e) => {
    const node = e.target.closest("[data-service]");
    if (!node) return;
    focus.value = node.dataset.service;
    draw();
  });
  const load = async () => {
    links = await api.dependencies(Date.now(), lookback.value);
    const services = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
    const current = focus.value || params.get("focus") || "";
    focus.replaceChildren(h("option", { value: "" }, "all services"), ...services.map((s) => h("option", { value: s }, s)));
    focus.value = services.includes(current) ? current : "";
    draw();
  };
  lookback.addEventListener("change", load);
  focus.addEventListener("change", draw);
  depth.addEventListener("change", draw);
  await load();
}

/** The edges within `depth` hops of `focus`: its callers' chains upstream
 * and its callees' downstream, not the other branches of those services. */
export function around(links, focus, depth) {
  const kept = new Set();
  const walk = (from, to) => {
    let frontier = new Set([focus]);
    const seen = new Set(frontier);
    for (let hop = 0; hop < depth && frontier.size; hop++) {
      const next = new Set();
      for (const l of links) {
        if (!frontier.has(l[from])) continue;
        kept.add(l);
        if (!seen.has(l[to])) {
          seen.add(l[to]);
          next.add(l[to]);
        }
      }
      frontier = next;
    }
  };
  walk("parent", "child");
  walk("child", "parent");
  return links.filter((l) => kept.has(l));
}

function layers(nodes, links) {
  const rank = new Map(nodes.map((n) => [n, 0]));
  // longest path from sources; a bounded number of passes keeps cycles finite
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const l of links) {
      if (l.parent === l.child) continue;
      const r = rank.get(l.parent) + 1;
      if (r > rank.get(l.child) && r < nodes.length) {
        rank.set(l.child, r);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return rank;
}

/** Draws `links` ({parent, child, callCount}) as a layered graph, `focus`
 * marked. Also the trace page's span graph. */
export function drawGraph(container, links, focus, label = "Service dependency graph") {
  if (!links.length) {
    container.replaceChildren(h("p", { class: "muted" }, "No dependencies in this window."));
    return;
  }
  const nodes = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
  const rank = layers(nodes, links);
  const columns = new Map();
  for (const n of nodes) {
    const r = rank.get(n);
    columns.set(r, [...(columns.get(r) ?? []), n]);
  }
  const [colW, rowH, boxW, boxH] = [220, 60, 160, 30];
  const pos = new Map();
  for (const [r, ns] of columns) ns.forEach((n, i) => pos.set(n, { x: 20 + r * colW, y: 20 + i * rowH }));
  const width = 40 + (Math.max(...columns.keys()) + 1) * colW;
  const height = 40 + Math.max(...[...columns.values()].map((c) => c.length)) * rowH;
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  const defs = el("defs", {});
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  svg.append(defs);
  for (const l of links) {
    const a = pos.get(l.parent);
    const b = pos.get(l.child);
    const [x1, y1, x2, y2] = [a.x + boxW, a.y + boxH / 2, b.x, b.y + boxH / 2];
    const g = el("g", { class: "edge", "data-edge": `${l.parent}->${l.child}` });
    g.append(el("path", { d: `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
    g.append(el("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "count" }, String(l.callCount)));
    svg.append(g);
  }
  for (const n of nodes) {
    const p = pos.get(n);
    const g = el("g", { class: n === focus ? "node focus" : "node", "data-service": n });
    g.append(el("rect", { x: p.x, y: p.y, width: boxW, height: boxH, rx: 6 }));
    const text = el("text", { x: p.x + boxW / 2, y: p.y + boxH / 2 + 4, "text-anchor": "middle" }, n.length > 26 ? `${n.slice(0, 25)}…` : n);
    text.append(el("title", {}, n));
    g.append(text);
    svg.append(g);
  }
  container.replaceChildren(svg);
}
