// The trace page: summary header, timeline (span tree and bars, only the
// rows in view are in the DOM), span details, find, a minimap to zoom, the
// critical path, and the span table, flame graph and statistics views.
import * as api from "./api.js";
import { drawGraph } from "./deps.js";
import { h, localTraces, navigate } from "./shell.js";
import {
  buildTrace, criticalPath, formatDuration, formatTime, selfTime, serviceColors, statistics,
} from "./model.js";

const ROW = 24; // px per timeline row
const OVERSCAN = 10; // rows drawn beyond the visible ones

export async function tracePage(container, id, params) {
  const local = localTraces.get(id);
  const raw = local ?? (await api.trace(id));
  if (!raw) throw new Error(`trace ${id} not found`);
  const trace = buildTrace(raw);
  trace.linkPatterns = (await api.uiConfig()).linkPatterns ?? [];
  const critical = criticalPath(trace);
  const view = params.get("view") ?? "timeline";

  const download = h("button", { type: "button", "data-testid": "download" }, "Download JSON");
  download.addEventListener("click", () => {
    const blob = new Blob([JSON.stringify({ data: [raw] }, null, 2)], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `trace-${trace.id}.json` });
    document.body.append(a);
    a.click();
    a.remove();
  });
  // a trace opened from a file is not stored: there is nothing to archive
  const actions = [download];
  if (!local) {
    const status = h("span", { role: "status", class: "muted", "data-testid": "archive-status" });
    const archive = h("button", { type: "button", "data-testid": "archive" }, "Archive");
    archive.addEventListener("click", async () => {
      archive.disabled = true;
      try {
        await api.archive(id);
        status.textContent = "Archived: kept after retention removes it";
      } catch (e) {
        status.textContent = `Not archived (${e.message})`;
        archive.disabled = false;
      }
    });
    actions.push(archive, status);
  }
  const tabs = h("div", { role: "tablist", class: "tabs", "aria-label": "Trace views" },
    [["timeline", "Timeline"], ["graph", "Graph"], ["table", "Span table"], ["events", "Events"], ["flame", "Flame graph"], ["stats", "Statistics"]]
      .map(([v, label]) => h("button", {
        role: "tab", type: "button", "aria-selected": String(v === view), "data-view": v,
        onclick: () => {
          const q = new URLSearchParams(location.search);
          q.set("view", v);
          navigate(`trace/${id}?${q}`, { replace: true });
        },
      }, label)));
  container.append(
    h("header", { class: "trace-header", "data-testid": "trace-header" },
      h("h1", {}, `${trace.rootService}: ${trace.rootOperation}`, h("span", { class: "muted" }, ` ${trace.id}`)),
      h("dl", { class: "facts" },
        h("dt", {}, "Start"), h("dd", {}, formatTime(trace.start)),
        h("dt", {}, "Duration"), h("dd", {}, formatDuration(trace.duration)),
        h("dt", {}, "Services"), h("dd", {}, String(trace.services.size)),
        h("dt", {}, "Depth"), h("dd", {}, String(trace.maxDepth + 1)),
        h("dt", {}, "Spans"), h("dd", { "data-testid": "span-count" }, String(trace.spans.length)),
        h("dt", {}, "Errors"), h("dd", {}, String(trace.errors))),
      h("div", { class: "actions" }, ...actions),
      linkList(traceLinks(trace), "trace-links")),
    tabs,
  );
  const body = h("section", { class: "trace-body" });
  container.append(body);
  if (view === "table") spanTable(body, trace);
  else if (view === "events") eventsTable(body, trace);
  else if (view === "graph") traceGraph(body, trace);
  else if (view === "flame") flameGraph(body, trace);
  else if (view === "stats") statsTable(body, trace);
  else timeline(body, trace, critical, params.get("uiFind"));
}

/** `uiFind`: Jaeger's ?uiFind=, words to find on arrival (the spans a search matched). */
function timeline(container, trace, critical, uiFind) {
  const colors = serviceColors(trace.services);
  const collapsed = new Set();
  let selected = null;
  let window = [0, 1]; // visible fraction of the trace's duration
  let matches = new Set();
  let visible = [];

  const find = h("input", { type: "search", placeholder: "Find in trace", "aria-label": "Find spans in this trace", "data-testid": "find-in-trace" });
  const found = h("span", { class: "muted", "aria-live": "polite", "data-testid": "find-count" });
  const expandAll = h("button", { type: "button", "data-testid": "expand-all" }, "Expand all");
  const collapseAll = h("button", { type: "button", "data-testid": "collapse-all" }, "Collapse all");
  const showCritical = h("input", { type: "checkbox", checked: true, "aria-label": "Highlight the critical path" });
  const from = h("input", { type: "range", min: 0, max: 1000, value: 0, "aria-label": "View from", "data-testid": "view-from" });
  const to = h("input", { type: "range", min: 0, max: 1000, value: 1000, "aria-label": "View to", "data-testid": "view-to" });
  const minimap = h("canvas", { class: "minimap", width: 1000, height: 40, "aria-hidden": "true" });
  const ruler = h("div", { class: "ruler" });
  const scroller = h("div", { class: "timeline", tabindex: 0, role: "tree", "aria-label": "Spans", "data-testid": "timeline" });
  const spacer = h("div", { class: "spacer" });
  scroller.append(spacer);
  const detail = h("aside", { class: "detail", "aria-live": "polite", "data-testid": "detail" });
  container.append(
    h("div", { class: "toolbar" }, find, found, expandAll, collapseAll,
      h("label", {}, showCritical, " critical path")),
    h("div", { class: "minimap-wrap" }, minimap, h("div", { class: "window" }, from, to)),
    ruler, scroller, detail);

  drawMinimap(minimap, trace);

  const isHidden = (span) => {
    for (let p = span.parent; p; p = p.parent) if (collapsed.has(p.spanID)) return true;
    return false;
  };
  const recompute = () => {
    visible = trace.spans.filter((s) => !isHidden(s));
    spacer.style.height = `${visible.length * ROW}px`;
    // short traces get a short timeline, so the detail panel is in view
    scroller.style.height = `${Math.min(visible.length * ROW + 2, Math.round(innerHeight * 0.6))}px`;
    draw();
  };
  const x = (us) => {
    const f = (us - trace.start) / (trace.duration || 1);
    return ((f - window[0]) / (window[1] - window[0])) * 100;
  };

  function drawRuler() {
    const ticks = [];
    for (let i = 0; i <= 4; i++) {
      const f = window[0] + ((window[1] - window[0]) * i) / 4;
      ticks.push(h("span", { style: { left: `${i * 25}%` } }, formatDuration(f * trace.duration)));
    }
    ruler.replaceChildren(h("span", { class: "ruler-label" }, "Service & operation"), h("div", { class: "ticks" }, ticks));
  }

  function draw() {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const count = Math.ceil(scroller.clientHeight / ROW) + 2 * OVERSCAN;
    const rows = visible.slice(first, first + count).map((span, i) => row(span, first + i));
    spacer.replaceChildren(...rows);
    drawRuler();
  }

  function row(span, index) {
    const hasChildren = span.children.length > 0;
    const left = x(span.startTime);
    const width = Math.max(0.2, x(span.startTime + span.duration) - left);
    const classes = ["row"];
    if (span === selected) classes.push("selected");
    if (span.error) classes.push("error");
    if (matches.has(span)) classes.push("match");
    if (showCritical.checked && critical.has(span.spanID)) classes.push("critical");
    const toggle = hasChildren
      ? h("button", {
          type: "button", class: "toggle", "aria-label": collapsed.has(span.spanID) ? "Expand" : "Collapse",
          "aria-expanded": String(!collapsed.has(span.spanID)),
          onclick: (e) => {
            e.stopPropagation();
            toggleSpan(span);
          },
        }, collapsed.has(span.spanID) ? "▸" : "▾")
      : h("span", { class: "toggle-space" });
    return h("div", {
      class: classes.join(" "), role: "treeitem", "aria-level": span.depth + 1,
      "aria-selected": String(span === selected), "data-span-id": span.spanID, "data-depth": span.depth,
      style: { top: `${index * ROW}px` },
      onclick: () => select(span),
    },
      h("div", { class: "name", style: { paddingLeft: `${span.depth * 14}px` } },
        toggle, h("span", { class: "service" }, span.service), " ", h("span", { class: "op" }, span.operationName)),
      h("div", { class: "lane" },
        h("div", {
          class: "bar", "data-service-color": colors.get(span.service),
          style: { left: `${left}%`, width: `${width}%`, ...(span.error ? {} : { backgroundColor: colors.get(span.service) }) },
          title: `${span.service}: ${span.operationName} ${formatDuration(span.duration)}`,
        }),
        h("span", { class: "bar-label", style: { left: `${Math.min(95, Math.max(0, left + width))}%` } },
          formatDuration(span.duration))));
  }

  function toggleSpan(span) {
    if (collapsed.has(span.spanID)) collapsed.delete(span.spanID);
    else collapsed.add(span.spanID);
    recompute();
  }

  function select(span) {
    selected = span;
    draw();
    showDetail(detail, trace, span);
  }

  function moveSelection(step) {
    const i = selected ? visible.indexOf(selected) : -1;
    const next = visible[Math.min(visible.length - 1, Math.max(0, i + step))];
    if (!next) return;
    const top = visible.indexOf(next) * ROW;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + ROW - scroller.clientHeight;
    select(next);
  }

  scroller.addEventListener("scroll", () => requestAnimationFrame(draw));
  scroller.addEventListener("keydown", (e) => {
    const keys = {
      ArrowDown: () => moveSelection(1), j: () => moveSelection(1),
      ArrowUp: () => moveSelection(-1), k: () => moveSelection(-1),
      Enter: () => selected && toggleSpan(selected), " ": () => selected && toggleSpan(selected),
      ArrowLeft: () => selected && !collapsed.has(selected.spanID) && selected.children.length && toggleSpan(selected),
      ArrowRight: () => selected && collapsed.has(selected.spanID) && toggleSpan(selected),
      Escape: () => {
        selected = null;
        detail.replaceChildren();
        draw();
      },
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });
  expandAll.addEventListener("click", () => {
    collapsed.clear();
    recompute();
  });
  collapseAll.addEventListener("click", () => {
    for (const s of trace.spans) if (s.children.length && s.parent) collapsed.add(s.spanID);
    recompute();
  });
  showCritical.addEventListener("change", draw);
  // as Jaeger's find: a span matches when it holds any of the words
  find.addEventListener("input", () => {
    const words = find.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    matches = new Set(words.length ? trace.spans.filter((s) => words.some((w) => spanText(s).includes(w))) : []);
    found.textContent = words.length ? `${matches.size} matching` : "";
    draw();
  });
  const zoom = () => {
    const a = Number(from.value) / 1000;
    const b = Number(to.value) / 1000;
    window = a < b ? [a, b] : [b, a + 0.001];
    draw();
  };
  from.addEventListener("input", zoom);
  to.addEventListener("input", zoom);
  new ResizeObserver(() => draw()).observe(scroller);
  recompute();
  if (uiFind) {
    find.value = uiFind;
    find.dispatchEvent(new Event("input"));
  }
}

function spanText(span) {
  return [span.service, span.operationName, span.spanID, ...span.tags.map((t) => `${t.key}=${t.value}`)]
    .join(" ")
    .toLowerCase();
}

function kvTable(items, testid) {
  return h("table", { class: "kv", "data-testid": testid },
    h("tbody", {}, items.map((t) => h("tr", {}, h("th", { scope: "row" }, t.key),
      h("td", {}, typeof t.value === "object" ? JSON.stringify(t.value) : String(t.value))))));
}

/**
 * Links to other tools from the UI settings' `linkPatterns`, in the Jaeger
 * UI's format: a pattern of type tags, process or logs applies to a span with
 * that key, one of type traces to the trace; `#{name}` in its url and text is
 * filled from the key's value, traceID, spanID, startTime, endTime or
 * duration (microseconds). Only http(s) links are made.
 */
function fillLink(pattern, values) {
  let missing = false;
  const fill = (template, encode) => String(template ?? "").replace(/#\{([^}]+)\}/g, (_, name) => {
    if (!(name in values)) {
      missing = true;
      return "";
    }
    return encode ? encodeURIComponent(String(values[name])) : String(values[name]);
  });
  const url = fill(pattern.url, true);
  const text = fill(pattern.text ?? pattern.url, false);
  return missing || !/^https?:\/\//i.test(url) ? null : { url, text };
}

function traceLinks(trace) {
  const values = { traceID: trace.id, startTime: trace.start, endTime: trace.start + trace.duration, duration: trace.duration };
  return trace.linkPatterns.filter((p) => p.type === "traces").map((p) => fillLink(p, values)).filter(Boolean);
}

function spanLinks(trace, span) {
  const sources = { tags: span.tags ?? [], process: span.process.tags ?? [], logs: (span.logs ?? []).flatMap((l) => l.fields) };
  const links = [];
  for (const p of trace.linkPatterns) {
    const kv = sources[p.type]?.find((t) => t.key === p.key);
    if (!kv) continue;
    const link = fillLink(p, { [p.key]: kv.value, traceID: trace.id, spanID: span.spanID });
    if (link) links.push(link);
  }
  return links;
}

const linkList = (links, testid) => links.length
  ? h("ul", { class: "links", "data-testid": testid },
    links.map((l) => h("li", {}, h("a", { href: l.url, target: "_blank", rel: "noopener noreferrer" }, l.text))))
  : null;

function showDetail(container, trace, span) {
  const refs = (span.references ?? []).map((r) =>
    h("li", {}, `${r.refType} `, h("code", {}, r.spanID), r.traceID !== span.traceID ? ` in trace ${r.traceID}` : ""));
  // through h(), which leaves out the parts a span has none of (null)
  container.replaceChildren(...h("div", {},
    h("h2", {}, span.operationName),
    h("dl", { class: "facts" },
      h("dt", {}, "Service"), h("dd", { "data-testid": "detail-service" }, span.service),
      h("dt", {}, "Duration"), h("dd", {}, formatDuration(span.duration)),
      h("dt", {}, "Start"), h("dd", {}, `+${formatDuration(span.startTime - trace.start)}`),
      h("dt", {}, "Self time"), h("dd", {}, formatDuration(selfTime(span))),
      h("dt", {}, "Span ID"), h("dd", {}, h("code", {}, span.spanID))),
    linkList(spanLinks(trace, span), "span-links"),
    h("h3", {}, "Tags"), kvTable(span.tags, "detail-tags"),
    h("h3", {}, "Process"), kvTable(span.process.tags ?? [], "detail-process"),
    span.logs?.length ? h("h3", {}, "Logs") : null,
    span.logs?.length
      ? h("ol", { class: "logs" }, span.logs.map((l) =>
          h("li", {}, h("span", { class: "muted" }, `+${formatDuration(l.timestamp - trace.start)} `), kvTable(l.fields, "detail-log"))))
      : null,
    refs.length ? h("h3", {}, "References") : null,
    refs.length ? h("ul", {}, refs) : null,
    span.warnings?.length ? h("h3", {}, "Warnings") : null,
    span.warnings?.length ? h("ul", { class: "warnings" }, span.warnings.map((w) => h("li", {}, w))) : null,
  ).childNodes);
}

function drawMinimap(canvas, trace) {
  const ctx = canvas.getContext("2d");
  const colors = serviceColors(trace.services);
  const n = trace.spans.length;
  const rowH = Math.max(canvas.height / n, 0.5);
  trace.spans.forEach((s, i) => {
    const x0 = ((s.startTime - trace.start) / (trace.duration || 1)) * canvas.width;
    const w = Math.max(1, (s.duration / (trace.duration || 1)) * canvas.width);
    ctx.fillStyle = colors.get(s.service);
    ctx.fillRect(x0, (i / n) * canvas.height, w, rowH);
  });
}

function spanTable(container, trace) {
  const rows = [...trace.spans].sort((a, b) => a.startTime - b.startTime);
  container.append(h("table", { class: "grid", "data-testid": "span-table" },
    h("thead", {}, h("tr", {}, ["Service", "Operation", "Start", "Duration", "Self time", "Span ID"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.slice(0, 5000).map((s) => h("tr", { class: s.error ? "error" : "" },
      h("td", {}, s.service), h("td", {}, s.operationName), h("td", {}, `+${formatDuration(s.startTime - trace.start)}`),
      h("td", {}, formatDuration(s.duration)), h("td", {}, formatDuration(selfTime(s))), h("td", {}, h("code", {}, s.spanID)))))));
  if (rows.length > 5000) container.append(h("p", { class: "muted" }, `First 5,000 of ${rows.length} spans.`));
}

/** The trace as a graph of its services' operations, as Jaeger's trace
 * graph: an edge per parent → child pair of them, with how many spans. */
function traceGraph(container, trace) {
  const node = (s) => `${s.service} ${s.operationName}`;
  const counts = new Map();
  for (const s of trace.spans) {
    if (!s.parent) continue;
    const key = `${node(s.parent)}\u0000${node(s)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const links = [...counts].map(([key, callCount]) => {
    const [parent, child] = key.split("\u0000");
    return { parent, child, callCount };
  });
  const graph = h("div", { class: "graph", "data-testid": "trace-graph" });
  container.append(graph);
  if (!links.length) graph.append(h("p", { class: "muted" }, `One operation: ${node(trace.spans[0])}.`));
  else drawGraph(graph, links, null, "Graph of the trace's operations");
}

/** Every span event (log) of the trace in time order, with its span. */
function eventsTable(container, trace) {
  const events = [];
  for (const span of trace.spans) for (const log of span.logs ?? []) events.push([log, span]);
  events.sort((a, b) => a[0].timestamp - b[0].timestamp);
  if (!events.length) {
    container.append(h("p", { class: "muted", "data-testid": "events" }, "No span of this trace has events."));
    return;
  }
  container.append(h("table", { class: "grid", "data-testid": "events" },
    h("thead", {}, h("tr", {}, ["Time", "Service", "Operation", "Fields"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, events.slice(0, 5000).map(([log, s]) => h("tr", { class: s.error ? "error" : "" },
      h("td", {}, `+${formatDuration(log.timestamp - trace.start)}`), h("td", {}, s.service), h("td", {}, s.operationName),
      h("td", {}, kvTable(log.fields, "event-fields")))))));
  if (events.length > 5000) container.append(h("p", { class: "muted" }, `First 5,000 of ${events.length} events.`));
}

function flameGraph(container, trace) {
  const height = 18;
  const graph = h("div", { class: "flame", "data-testid": "flame", style: { height: `${(trace.maxDepth + 1) * height}px` } });
  for (const s of trace.spans) {
    const left = ((s.startTime - trace.start) / (trace.duration || 1)) * 100;
    const width = (s.duration / (trace.duration || 1)) * 100;
    if (width < 0.05) continue; // too narrow to see
    graph.append(h("div", {
      class: `frame${s.error ? " error" : ""}`,
      style: { left: `${left}%`, width: `${width}%`, top: `${s.depth * height}px` },
      title: `${s.service}: ${s.operationName} ${formatDuration(s.duration)}`,
    }, `${s.service}: ${s.operationName}`));
  }
  container.append(graph);
}

function statsTable(container, trace) {
  container.append(h("table", { class: "grid", "data-testid": "stats" },
    h("thead", {}, h("tr", {}, ["Service", "Operation", "Spans", "Errors", "Total", "Self time", "Self %"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, statistics(trace).map((r) => h("tr", {},
      h("td", {}, r.service), h("td", {}, r.operation), h("td", {}, String(r.count)), h("td", {}, String(r.errors)),
      h("td", {}, formatDuration(r.total)), h("td", {}, formatDuration(r.self)),
      h("td", {}, `${((r.self / (trace.duration || 1)) * 100).toFixed(1)}%`))))));
}
