// A trace as the views need it: spans in tree order with depth, children,
// service names, timing, errors, the critical path and self times.

export const tagValue = (span, key) => span.tags?.find((t) => t.key === key)?.value;

export const isError = (span) => {
  const v = tagValue(span, "error");
  return v === true || v === "true";
};

export function formatDuration(us) {
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)}s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(2)}ms`;
  return `${Math.round(us)}μs`;
}

export const formatTime = (us) => new Date(us / 1000).toLocaleString();

/** Builds the tree of a trace in Jaeger's UI JSON form. */
export function buildTrace(raw) {
  const processes = raw.processes ?? {};
  const byId = new Map();
  const spans = raw.spans.map((s) => {
    const span = {
      ...s,
      service: processes[s.processID]?.serviceName ?? s.process?.serviceName ?? "unknown",
      process: processes[s.processID] ?? s.process ?? { serviceName: "unknown", tags: [] },
      children: [],
      parent: null,
      depth: 0,
      error: false,
    };
    span.error = isError(span);
    // spans sharing an id (client and server halves) keep the first
    if (!byId.has(span.spanID)) byId.set(span.spanID, span);
    return span;
  });
  const roots = [];
  for (const span of spans) {
    const ref = (span.references ?? []).find((r) => r.traceID === span.traceID && byId.has(r.spanID));
    const parent = ref && byId.get(ref.spanID);
    if (parent && parent !== span) {
      span.parent = parent;
      parent.children.push(span);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a, b) => a.startTime - b.startTime;
  roots.sort(byStart);
  const ordered = [];
  const stack = [...roots].reverse();
  const seen = new Set();
  while (stack.length) {
    const span = stack.pop();
    if (seen.has(span)) continue; // reference cycles
    seen.add(span);
    span.depth = span.parent ? span.parent.depth + 1 : 0;
    ordered.push(span);
    span.children.sort(byStart);
    for (let i = span.children.length - 1; i >= 0; i--) stack.push(span.children[i]);
  }
  // a loop, not Math.min(...spans): spreading 200,000 arguments overflows the stack
  let [start, end] = [Infinity, -Infinity];
  for (const s of spans) {
    start = Math.min(start, s.startTime);
    end = Math.max(end, s.startTime + s.duration);
  }
  const services = new Map();
  for (const s of spans) services.set(s.service, (services.get(s.service) ?? 0) + 1);
  const root = roots[0];
  return {
    id: raw.traceID,
    raw,
    spans: ordered,
    roots,
    byId,
    start,
    end,
    duration: end - start,
    services,
    errors: spans.filter((s) => s.error).length,
    rootService: root?.service ?? "",
    rootOperation: root?.operationName ?? "",
    maxDepth: ordered.reduce((m, s) => Math.max(m, s.depth), 0),
  };
}

/**
 * The critical path: from the end of each span back to its start, the child
 * that finished last before the current point is what the span waited for.
 */
export function criticalPath(trace) {
  const onPath = new Set();
  const walk = (span, until) => {
    onPath.add(span.spanID);
    let point = Math.min(until, span.startTime + span.duration);
    const children = [...span.children].sort(
      (a, b) => b.startTime + b.duration - (a.startTime + a.duration),
    );
    for (const child of children) {
      const childEnd = child.startTime + child.duration;
      if (childEnd <= point && childEnd > span.startTime) {
        walk(child, childEnd);
        point = child.startTime;
      }
    }
  };
  for (const root of trace.roots) walk(root, root.startTime + root.duration);
  return onPath;
}

/** Self time: a span's duration minus what its children cover of it. */
export function selfTime(span) {
  const start = span.startTime;
  const end = start + span.duration;
  const intervals = span.children
    .map((c) => [Math.max(start, c.startTime), Math.min(end, c.startTime + c.duration)])
    .filter(([a, b]) => b > a)
    .sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let cursor = start;
  for (const [a, b] of intervals) {
    if (b <= cursor) continue;
    covered += b - Math.max(a, cursor);
    cursor = b;
  }
  return span.duration - covered;
}

/** Count, total and self time per service and operation. */
export function statistics(trace) {
  const rows = new Map();
  for (const span of trace.spans) {
    const key = `${span.service}\u0000${span.operationName}`;
    const row = rows.get(key) ?? {
      service: span.service,
      operation: span.operationName,
      count: 0,
      total: 0,
      self: 0,
      errors: 0,
    };
    row.count += 1;
    row.total += span.duration;
    row.self += selfTime(span);
    row.errors += span.error ? 1 : 0;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => b.self - a.self);
}

/** The span count of each service:operation path, for comparing two traces. */
export function structure(trace) {
  const counts = new Map();
  const pathOf = (span) => {
    const parts = [];
    for (let s = span; s; s = s.parent) parts.unshift(`${s.service}:${s.operationName}`);
    return parts.join(" / ");
  };
  for (const span of trace.spans) {
    const path = pathOf(span);
    counts.set(path, (counts.get(path) ?? 0) + 1);
  }
  return counts;
}

/**
 * The traces of a Jaeger JSON file (the API's answer or download, or one
 * trace); null for anything else, which the server is asked to transform
 * (OTLP JSON: `POST /api/transform`, the collector's own mapping).
 */
export function jaegerTracesOfFile(json) {
  if (Array.isArray(json?.data)) return json.data;
  if (Array.isArray(json?.spans)) return [json];
  if (Array.isArray(json) && json.every((t) => Array.isArray(t?.spans))) return json;
  return null;
}

/** Bar colours, no red (errors are red): one per service of a trace. */
const PALETTE = ["#1f77b4", "#17a2b8", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
  "#e377c2", "#bcbd22", "#7f7f7f", "#6f42c1", "#20c997", "#fd7e14"];

/** A colour per service, in the order the services first appear. */
export function serviceColors(services) {
  return new Map([...services.keys()].map((s, i) => [s, PALETTE[i % PALETTE.length]]));
}
