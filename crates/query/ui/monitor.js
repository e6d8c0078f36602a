// The monitor page: a service's RED metrics (latency quantiles, error rate,
// request rate) over time as the collector computed them, and its
// operations' figures. A point opens the search for the traces behind it.
import * as api from "./api.js";
import { h, navigate, setQuery, showError } from "./shell.js";
import { formatDuration } from "./model.js";

const LOOKBACKS = [
  [15 * 60e3, "Last 15 minutes"],
  [3600e3, "Last hour"],
  [6 * 3600e3, "Last 6 hours"],
  [24 * 3600e3, "Last 24 hours"],
];
const KINDS = ["server", "client", "producer", "consumer", "internal"];
const RATE_PER = 600e3; // rates and quantiles over the ten minutes before each point
const QUANTILES = [[0.5, "p50"], [0.75, "p75"], [0.95, "p95"]];

const field = (label, control) => h("label", { class: "field" }, h("span", {}, label), control);

/** A time as the search form's datetime-local fields take it. */
const localTime = (ms) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 19);
};

/** The points of a Jaeger metric family: [{labels, points: [[ms, value]]}]. */
const seriesOf = (family) => (family.metrics ?? []).map((m) => ({
  labels: Object.fromEntries(m.labels.map((l) => [l.name, l.value])),
  points: m.metricPoints.map((p) => [Date.parse(p.timestamp), p.gaugeValue.doubleValue]),
}));

export async function monitorPage(container, params) {
  const services = await api.services();
  const service = h("select", { "aria-label": "Service", "data-testid": "monitor-service" },
    services.map((s) => h("option", { value: s }, s)));
  const kind = h("select", { "aria-label": "Span kind" }, KINDS.map((k) => h("option", { value: k }, k)));
  const lookback = h("select", { "aria-label": "Lookback" },
    LOOKBACKS.map(([v, l]) => h("option", { value: String(v) }, l)));
  service.value = params.get("service") ?? services[0] ?? "";
  kind.value = params.get("spanKind") ?? "server";
  lookback.value = params.get("lookback") ?? String(3600e3);
  const charts = h("div", { class: "charts" });
  const table = h("div", { class: "operations" });
  container.append(
    h("h1", {}, "Monitor"),
    h("form", { class: "search-form", "aria-label": "Metrics of" },
      field("Service", service), field("Span kind", kind), field("Lookback", lookback)),
    charts, table);
  const reload = () => {
    setQuery({ service: service.value, spanKind: kind.value, lookback: lookback.value });
    load();
  };
  for (const control of [service, kind, lookback]) control.addEventListener("change", reload);

  async function load() {
    charts.replaceChildren();
    table.replaceChildren();
    if (!service.value) {
      charts.append(h("p", {}, "No services yet."));
      return;
    }
    const endTs = Date.now();
    const step = Math.max(60e3, Math.round(Number(lookback.value) / 60 / 60e3) * 60e3);
    const base = { service: service.value, spanKind: kind.value, endTs, lookback: lookback.value, step, ratePer: RATE_PER };
    let latencies, errors, calls, opLatency, opErrors, opCalls;
    try {
      [latencies, errors, calls, opLatency, opErrors, opCalls] = await Promise.all([
        Promise.all(QUANTILES.map(([q]) => api.metrics("latencies", { ...base, quantile: q }))),
        api.metrics("errors", base),
        api.metrics("calls", base),
        api.metrics("latencies", { ...base, quantile: 0.95, groupByOperation: true }),
        api.metrics("errors", { ...base, groupByOperation: true }),
        api.metrics("calls", { ...base, groupByOperation: true }),
      ]);
    } catch (e) {
      showError(charts, e);
      return;
    }
    // a point's traces: the service's spans of the window its figure covers
    const search = (t, extra = {}) => navigate(`search?${new URLSearchParams({
      service: service.value, spanKind: kind.value, lookback: "custom",
      start: localTime(t - RATE_PER), end: localTime(t), ...extra,
    })}`);
    const span = [endTs - Number(lookback.value), endTs];
    charts.append(
      chart("Latency (ms)", QUANTILES.map(([, name], i) => ({ name, points: seriesOf(latencies[i])[0]?.points ?? [] })),
        // traces at least as slow as the quantile's bin's lower edge (a
        // quantile is known to one bin, 25 %)
        (t, v) => search(t, { minDuration: `${Math.floor((v / 1.25) * 1000)}us` }), (v) => formatDuration(v * 1000), "latency", span),
      chart("Error rate (%)", [{ name: "errors", points: (seriesOf(errors)[0]?.points ?? []).map(([t, v]) => [t, v * 100]) }],
        (t) => search(t, { tags: "error=true" }), (v) => `${v.toFixed(1)} %`, "errors", span),
      chart("Request rate (req/s)", [{ name: "calls", points: seriesOf(calls)[0]?.points ?? [] }],
        (t) => search(t), rateText, "calls", span),
    );
    const last = (family) => Object.fromEntries(seriesOf(family).map((s) => [s.labels.operation, s.points.at(-1)?.[1]]));
    const [p95, errs, rate] = [last(opLatency), last(opErrors), last(opCalls)];
    const ops = Object.keys(rate).sort((a, b) => (rate[b] ?? 0) - (rate[a] ?? 0));
    table.append(h("h2", {}, `Operations of ${service.value}`), h("table", { class: "span-table", "data-testid": "monitor-operations" },
      h("thead", {}, h("tr", {}, ["Operation", "P95 latency", "Request rate", "Error rate"].map((c) => h("th", {}, c)))),
      h("tbody", {}, ops.map((op) => h("tr", {},
        h("td", {}, h("a", { href: `search?${new URLSearchParams({ service: service.value, spanKind: kind.value, operation: op })}`, "data-link": "" }, op)),
        h("td", {}, p95[op] === undefined ? "–" : formatDuration(p95[op] * 1000)),
        h("td", {}, rateText(rate[op] ?? 0)),
        h("td", {}, errs[op] === undefined ? "–" : `${(errs[op] * 100).toFixed(1)} %`))))));
  }
  await load();
}

const rateText = (v) => `${v >= 10 ? v.toFixed(0) : v.toPrecision(2)}/s`;

/** A line chart over the time span `[t0, t1]` with time and value axes; a
 * click on a point calls `open`. */
function chart(title, series, open, format, id, [t0, t1]) {
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const [w, hgt, left, bottom, top] = [420, 180, 56, 24, 10];
  const svg = el("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": title });
  const all = series.flatMap((s) => s.points);
  const box = h("figure", { class: "chart", "data-testid": `chart-${id}` }, h("figcaption", {}, title), svg);
  if (!all.length) {
    box.append(h("p", { class: "muted" }, "No data in this window."));
    return box;
  }
  const vMax = all.reduce((m, [, v]) => Math.max(m, v), 0) || 1;
  const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (w - left - 8);
  const y = (v) => hgt - bottom - (v / vMax) * (hgt - bottom - top);
  for (const f of [0, 0.5, 1]) {
    svg.append(el("line", { x1: left, x2: w - 8, y1: y(vMax * f), y2: y(vMax * f), class: "grid" }));
    const label = el("text", { x: left - 4, y: y(vMax * f) + 4, "text-anchor": "end", class: "axis" });
    label.textContent = format(vMax * f);
    svg.append(label);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = el("text", { x: x(t), y: hgt - 6, "text-anchor": anchor, class: "axis" });
    label.textContent = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(label);
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    svg.append(el("polyline", { points: s.points.map(([t, v]) => `${x(t)},${y(v)}`).join(" "), class: `line line-${i}` }));
    for (const [t, v] of s.points) {
      const dot = el("circle", { cx: x(t), cy: y(v), r: 3.5, class: `dot line-${i}`, "data-value": v, "data-time": t });
      const tip = el("title", {});
      tip.textContent = `${s.name} ${format(v)} at ${new Date(t).toLocaleTimeString()} — click for its traces`;
      dot.append(tip);
      dot.addEventListener("click", () => open(t, v));
      svg.append(dot);
    }
  });
  if (series.length > 1) {
    box.append(h("p", { class: "legend" }, series.map((s, i) => h("span", { class: `key line-${i}` }, s.name))));
  }
  return box;
}
