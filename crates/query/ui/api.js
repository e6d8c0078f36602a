// The query API, relative to the page's <base href> so a base path just works.

const url = (path, params = {}) => {
  const u = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, item);
  }
  return u;
};

async function get(path, params, init) {
  const response = await fetch(url(path, params), init);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    // Jaeger's v1 envelope, or api_v3's
    const message = body?.errors?.map((e) => e.msg).join("; ") || body?.error?.message || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

export const services = async () => (await get("api/services")).data ?? [];

export const operations = async (service, spanKind) =>
  (await get("api/operations", { service, spanKind })).data ?? [];

export const searchTraces = async (params) => (await get("api/traces", params)).data ?? [];

/** A TraceQL search (docs/query-language.md): OTLP traces, the spans matched, how far it went. */
export const traceql = async (params) => get("api/v3/search", params);

export const trace = async (id) => (await get(`api/traces/${encodeURIComponent(id)}`)).data?.[0];

/** The UI settings (`--query.ui-config`), fetched once. */
let uiConfigOnce;
export const uiConfig = () => (uiConfigOnce ??= get("api/ui-config").catch(() => ({})));

/** A Jaeger metric family of RED metrics: `kind` is latencies, calls or errors. */
export const metrics = async (kind, params) => get(`api/metrics/${kind}`, params);

/** Copies a stored trace into the archive store, which retention leaves alone. */
export const archive = async (id) =>
  get(`api/archive/${encodeURIComponent(id)}`, {}, { method: "POST" });

/** The UI traces of an OTLP JSON file, mapped by the server as the collector maps spans. */
export const transform = async (text) =>
  (await get("api/transform", {}, { method: "POST", body: text })).data ?? [];

export const dependencies = async (endTs, lookback) =>
  (await get("api/dependencies", { endTs, lookback })).data ?? [];

/** Turns logfmt (`http.status_code=500 error=true "a b"="c d"`) into a tags object. */
export function parseLogfmt(text) {
  const tags = {};
  const re = /("(?:[^"\\]|\\.)*"|[^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  const unquote = (s) => (s.startsWith('"') ? JSON.parse(s) : s);
  let m;
  while ((m = re.exec(text)) !== null) tags[unquote(m[1])] = unquote(m[2]);
  return tags;
}
