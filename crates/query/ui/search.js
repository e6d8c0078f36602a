// The search page: the form (state kept in the URL), the result list and
// a scatter plot of duration over time.
import * as api from "./api.js";
import { h, navigate, setQuery, showError } from "./shell.js";
import { buildTrace, formatDuration, formatTime } from "./model.js";

const LOOKBACKS = [
  ["5m", "Last 5 minutes"],
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["6h", "Last 6 hours"],
  ["12h", "Last 12 hours"],
  ["24h", "Last 24 hours"],
  ["48h", "Last 2 days"],
  ["custom", "Custom range"],
];
const KINDS = ["", "server", "client", "producer", "consumer", "internal"];
const SORTS = [
  ["recent", "Most recent"],
  ["longest", "Longest first"],
  ["spans", "Most spans"],
];

/** Results shown at once; the rest are a page away. */
const PAGE_SIZE = 20;

const GO_UNITS = { us: 1, µs: 1, μs: 1, ms: 1e3, s: 1e6, m: 6e7, h: 3.6e9 };

function lookbackMicros(text) {
  const m = /^(\d+(?:\.\d+)?)(us|µs|μs|ms|s|m|h)$/.exec(text);
  return m ? Number(m[1]) * GO_UNITS[m[2]] : 3.6e9;
}

const field = (label, control) => h("label", { class: "field" }, h("span", {}, label), control);

export async function searchPage(container, params) {
  const services = await api.services();
  const service = h("select", { name: "service", "aria-label": "Service", "data-testid": "service" },
    h("option", { value: "" }, "— service —"),
    services.map((s) => h("option", { value: s }, s)));
  const kind = h("select", { name: "spanKind", "aria-label": "Span kind" },
    KINDS.map((k) => h("option", { value: k }, k || "any kind")));
  const operation = h("select", { name: "operation", "aria-label": "Operation", "data-testid": "operation" },
    h("option", { value: "" }, "all operations"));
  const tags = h("input", {
    name: "tags", placeholder: "http.status_code=500 error=true", "aria-label": "Tags in logfmt",
    "data-testid": "tags", size: 32,
  });
  const lookback = h("select", { name: "lookback", "aria-label": "Lookback" },
    LOOKBACKS.map(([v, l]) => h("option", { value: v }, l)));
  const start = h("input", { type: "datetime-local", name: "start", "aria-label": "From" });
  const end = h("input", { type: "datetime-local", name: "end", "aria-label": "To" });
  const custom = h("span", { class: "custom-range", hidden: true }, start, end);
  const minDuration = h("input", { name: "minDuration", placeholder: "e.g. 100ms", size: 8, "aria-label": "Minimum duration" });
  const maxDuration = h("input", { name: "maxDuration", placeholder: "e.g. 2s", size: 8, "aria-label": "Maximum duration" });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 10000, value: 20, "aria-label": "Limit" });
  const sort = h("select", { "aria-label": "Sort results" }, SORTS.map(([v, l]) => h("option", { value: v }, l)));
  const submit = h("button", { type: "submit", "data-testid": "find" }, "Find traces");
  // a TraceQL query, when given, is the search: the fields above are not used
  const traceql = h("input", {
    name: "q", placeholder: '{ resource.service.name = "frontend" } >> { status = error }',
    "aria-label": "TraceQL query", "data-testid": "traceql", size: 60, spellcheck: "false",
  });
  const queryError = h("pre", { class: "query-error", role: "alert", "data-testid": "query-error", hidden: true });
  const syntax = h("details", { class: "syntax-help" }, h("summary", {}, "Query syntax"),
    h("p", {}, "Selectors { ... } over name, status (error, ok, unset), kind (server, client, …), duration (10ms), ",
      "resource.service.name, span.<attribute>, resource.<attribute>, .<attribute>; ",
      "compared with = != > >= < <= =~ !~ and combined with && || ! ( ). Between selectors: ",
      "> child, >> descendant, ~ sibling, && and ||. After them: | count() > 2, | avg(duration) > 1s. ",
      "A query names the service of one span every match has."),
    h("pre", {}, '{ resource.service.name = "frontend" && span.http.status_code >= 500 }\n',
      '{ resource.service.name = "frontend" } > { name = "charge" && status = error }'));

  async function loadOperations(selected) {
    operation.replaceChildren(h("option", { value: "" }, "all operations"));
    if (!service.value) return;
    const ops = await api.operations(service.value, kind.value);
    const names = [...new Set(ops.map((o) => o.name))].sort();
    for (const n of names) operation.append(h("option", { value: n }, n));
    if (selected) operation.value = selected;
  }
  service.addEventListener("change", () => loadOperations());
  kind.addEventListener("change", () => loadOperations());
  lookback.addEventListener("change", () => (custom.hidden = lookback.value !== "custom"));

  const form = h("form", { class: "search-form", role: "search", "aria-label": "Find traces" },
    field("Service", service), field("Span kind", kind), field("Operation", operation),
    field("Tags", tags), field("Lookback", lookback), custom,
    field("Min duration", minDuration), field("Max duration", maxDuration),
    field("Limit", limit), h("label", { class: "field traceql" }, h("span", {}, "TraceQL"), traceql),
    submit, queryError, syntax);
  const plot = h("div", { class: "scatter", "data-testid": "scatter" });
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const list = h("ol", { class: "results", "data-testid": "results" });
  const pager = h("nav", { class: "pager", "aria-label": "Result pages", "data-testid": "pager" });
  const compare = h("button", { type: "button", disabled: true, "data-testid": "compare-selected" }, "Compare selected");
  // the results as Jaeger's API gave them, for a file to open again later
  const download = h("button", { type: "button", disabled: true, "data-testid": "download-results" }, "Download results");
  download.addEventListener("click", () => {
    const blob = new Blob([JSON.stringify({ data: traces.map((t) => t.raw) }, null, 2)], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: "traces.json" });
    document.body.append(a);
    a.click();
    a.remove();
  });
  // the results as a list or as a table, as Jaeger's List/Table switch
  const layout = h("select", { "aria-label": "Show results as", "data-testid": "results-layout" },
    h("option", { value: "list" }, "List"), h("option", { value: "table" }, "Table"));
  layout.value = params.get("results") === "table" ? "table" : "list";
  const table = h("table", { class: "grid results-table", "data-testid": "results-table", hidden: true });
  const toolbar = h("div", { class: "toolbar" }, summary, field("Sort", sort), field("Show as", layout), compare, download);
  container.append(h("h1", {}, "Search"), form, plot, toolbar, list, table, pager);

  // state from the URL
  service.value = params.get("service") ?? "";
  kind.value = params.get("spanKind") ?? "";
  tags.value = params.get("tags") ?? "";
  lookback.value = params.get("lookback") ?? "1h";
  minDuration.value = params.get("minDuration") ?? "";
  maxDuration.value = params.get("maxDuration") ?? "";
  limit.value = params.get("limit") ?? "20";
  sort.value = params.get("sort") ?? "recent";
  traceql.value = params.get("q") ?? "";
  if (lookback.value === "custom") {
    custom.hidden = false;
    start.value = params.get("start") ?? "";
    end.value = params.get("end") ?? "";
  }
  await loadOperations(params.get("operation"));

  let traces = [];
  const selected = new Set();
  // results a page at a time (jaeger-ui#73): a search may return 10,000
  let page = 0;
  const show = () => {
    const sorted = [...traces].sort({
      recent: (a, b) => b.start - a.start,
      longest: (a, b) => b.duration - a.duration,
      spans: (a, b) => b.spans.length - a.spans.length,
    }[sort.value]);
    const pages = Math.max(1, Math.ceil(sorted.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const shown = sorted.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    const asTable = layout.value === "table";
    list.hidden = asTable;
    table.hidden = !asTable;
    list.replaceChildren(...(asTable ? [] : shown.map((t) => resultItem(t, selected, compare))));
    table.replaceChildren(...(asTable ? resultRows(shown) : []));
    const turn = (to, label, testid) => h("button", {
      type: "button", disabled: to < 0 || to >= pages, "data-testid": testid,
      onclick: () => {
        page = to;
        show();
      },
    }, label);
    pager.replaceChildren(...(pages > 1
      ? [turn(page - 1, "Previous", "page-previous"), h("span", { "data-testid": "page-of" }, ` page ${page + 1} of ${pages} `), turn(page + 1, "Next", "page-next")]
      : []));
    drawScatter(plot, traces);
    download.disabled = traces.length === 0;
    summary.textContent = `${traces.length} trace${traces.length === 1 ? "" : "s"}`;
  };
  layout.addEventListener("change", () => {
    const q = new URLSearchParams(location.search);
    q.set("results", layout.value);
    setQuery(q);
    show();
  });
  sort.addEventListener("change", () => {
    const q = new URLSearchParams(location.search);
    q.set("sort", sort.value);
    setQuery(q);
    show();
  });
  compare.addEventListener("click", () => navigate(`compare/${[...selected].join("/")}`));

  async function run() {
    const query = {
      service: service.value, operation: operation.value, spanKind: kind.value, tags: tags.value,
      lookback: lookback.value, minDuration: minDuration.value, maxDuration: maxDuration.value,
      limit: limit.value, sort: sort.value, results: layout.value === "table" ? "table" : "",
      q: traceql.value.trim(),
    };
    if (lookback.value === "custom") Object.assign(query, { start: start.value, end: end.value });
    setQuery(Object.fromEntries(Object.entries(query).filter(([, v]) => v)));
    const apiParams = {
      service: service.value, operation: operation.value || undefined, limit: limit.value,
      minDuration: minDuration.value || undefined, maxDuration: maxDuration.value || undefined,
      tags: tags.value.trim() ? JSON.stringify(api.parseLogfmt(tags.value)) : undefined,
    };
    if (lookback.value === "custom" && start.value && end.value) {
      apiParams.start = new Date(start.value).getTime() * 1000;
      apiParams.end = new Date(end.value).getTime() * 1000;
    } else {
      const now = Date.now() * 1000;
      apiParams.end = Math.round(now);
      apiParams.start = Math.round(now - lookbackMicros(lookback.value === "custom" ? "1h" : lookback.value));
    }
    summary.textContent = "Searching…";
    page = 0;
    list.replaceChildren();
    queryError.hidden = true;
    try {
      if (query.q) {
        await runQuery(query.q, apiParams);
        return;
      }
      traces = (await api.searchTraces(apiParams)).map(buildTrace);
      show();
    } catch (e) {
      summary.textContent = "";
      showError(list, e);
    }
  }
  // TraceQL: the server's OTLP answer turned into UI traces by the server's
  // own mapping (/api/transform), each with the spans the query matched
  async function runQuery(q, window) {
    const micros = (us) => new Date(us / 1000).toISOString();
    let answer;
    try {
      answer = await api.traceql({ q, start: micros(window.start), end: micros(window.end), limit: limit.value });
    } catch (e) {
      summary.textContent = "";
      const column = /column (\d+):/.exec(e.message);
      queryError.textContent = column
        ? `${q}\n${" ".repeat(Number(column[1]) - 1)}^ ${e.message.replace(/^\d+: q: /, "")}`
        : e.message;
      queryError.hidden = false;
      return;
    }
    const matched = new Map(answer.matches.map((m) => [m.traceId.replace(/^0+/, ""), m.spanIds]));
    const found = answer.matches.length
      ? await api.transform(JSON.stringify({ resourceSpans: answer.result.resourceSpans }))
      : [];
    traces = found.map(buildTrace);
    for (const t of traces) t.matched = matched.get(t.id.replace(/^0+/, "")) ?? [];
    show();
    const s = answer.search;
    const more = s.limitReached || s.responseLimitReached ? " (limit reached: there may be more)"
      : s.complete ? "" : ` (stopped after ${s.candidatesRead} candidate traces)`;
    summary.textContent = `${traces.length} trace${traces.length === 1 ? "" : "s"}${more}`;
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!service.value && !traceql.value.trim()) {
      summary.textContent = "Choose a service first.";
      return;
    }
    run();
  });
  if (service.value || traceql.value) await run();
}

function resultItem(t, selected, compareButton) {
  const check = h("input", {
    type: "checkbox", "aria-label": `Select trace ${t.id} for comparison`,
    onchange: (e) => {
      if (e.target.checked) selected.add(t.id);
      else selected.delete(t.id);
      compareButton.disabled = selected.size !== 2;
    },
  });
  const services = [...t.services].sort((a, b) => b[1] - a[1]);
  return h("li", { class: "result", "data-trace-id": t.id },
    check,
    h("a", { href: t.matched ? `trace/${t.id}?uiFind=${encodeURIComponent(t.matched.join(" "))}` : `trace/${t.id}`, class: "result-title" },
      h("strong", {}, `${t.rootService}: ${t.rootOperation}`),
      h("span", { class: "muted" }, ` ${t.id.slice(0, 7)}`)),
    h("span", { class: "duration" }, formatDuration(t.duration)),
    h("span", { class: "spans" }, `${t.spans.length} spans`),
    t.errors ? h("span", { class: "errors" }, `${t.errors} errors`) : null,
    t.matched ? h("span", { class: "matched", "data-testid": "matched" }, `${t.matched.length} matched`) : null,
    h("span", { class: "services" }, services.map(([s, n]) => h("span", { class: "chip" }, `${s} (${n})`))),
    h("time", { datetime: new Date(t.start / 1000).toISOString() }, formatTime(t.start)),
  );
}

/** The table layout's head and rows. */
function resultRows(traces) {
  return [
    h("thead", {}, h("tr", {}, ["Trace", "Duration", "Spans", "Errors", "Services", "Start"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, traces.map((t) => h("tr", { class: t.errors ? "error" : "", "data-trace-id": t.id },
      h("td", {}, h("a", { href: `trace/${t.id}` }, `${t.rootService}: ${t.rootOperation}`), h("span", { class: "muted" }, ` ${t.id.slice(0, 7)}`)),
      h("td", {}, formatDuration(t.duration)), h("td", {}, String(t.spans.length)), h("td", {}, String(t.errors)),
      h("td", {}, String(t.services.size)), h("td", {}, formatTime(t.start))))),
  ];
}

function drawScatter(container, traces) {
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const [w, hgt, left, bottom, top] = [800, 170, 64, 22, 8];
  const svg = el("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": "Trace durations over time" });
  if (traces.length) {
    let [t0, t1, dMax] = [Infinity, -Infinity, 0];
    for (const t of traces) {
      t0 = Math.min(t0, t.start);
      t1 = Math.max(t1, t.start);
      dMax = Math.max(dMax, t.duration);
    }
    dMax = dMax || 1;
    const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (w - left - 12);
    const y = (d) => hgt - bottom - (d / dMax) * (hgt - bottom - top);
    // axes: duration up the side, start time along the bottom
    svg.append(el("line", { x1: left, x2: left, y1: top, y2: hgt - bottom, class: "axis-line" }));
    svg.append(el("line", { x1: left, x2: w - 12, y1: hgt - bottom, y2: hgt - bottom, class: "axis-line" }));
    for (const f of [0, 0.5, 1]) {
      svg.append(el("text", { x: left - 6, y: y(dMax * f) + 4, "text-anchor": "end", class: "axis" }, formatDuration(dMax * f)));
    }
    const clock = (us) => new Date(us / 1000).toLocaleTimeString();
    svg.append(el("text", { x: left, y: hgt - 6, "text-anchor": "start", class: "axis", "data-testid": "scatter-from" }, clock(t0)));
    svg.append(el("text", { x: w - 12, y: hgt - 6, "text-anchor": "end", class: "axis" }, clock(t1)));
    for (const t of traces) {
      const c = el("circle", {
        cx: x(t.start), cy: y(t.duration), r: 3 + Math.min(6, Math.log2(t.spans.length)),
        class: t.errors ? "dot error" : "dot",
      });
      c.append(el("title", {}, `${t.rootService}: ${t.rootOperation} — ${formatDuration(t.duration)}`));
      c.addEventListener("click", () => navigate(`trace/${t.id}`));
      svg.append(c);
    }
  }
  container.replaceChildren(svg);
}
