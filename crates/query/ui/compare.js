// Compare two traces as a structural diff: each service:operation path
// with its span count in A and in B, marked added, removed or changed.
import * as api from "./api.js";
import { h, localTraces, navigate } from "./shell.js";
import { buildTrace, structure } from "./model.js";

export async function comparePage(container, ids) {
  const [a, b] = ids;
  const inputA = h("input", { value: a ?? "", placeholder: "trace id A", "aria-label": "Trace A", "data-testid": "compare-a" });
  const inputB = h("input", { value: b ?? "", placeholder: "trace id B", "aria-label": "Trace B", "data-testid": "compare-b" });
  const form = h("form", { class: "search-form", "aria-label": "Traces to compare" }, inputA, inputB,
    h("button", { type: "submit" }, "Compare"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    navigate(`compare/${inputA.value.trim()}/${inputB.value.trim()}`);
  });
  container.append(h("h1", {}, "Compare traces"), form);
  if (!a || !b) return;
  const load = async (id) => {
    const raw = localTraces.get(id) ?? (await api.trace(id));
    if (!raw) throw new Error(`trace ${id} not found`);
    return buildTrace(raw);
  };
  const [ta, tb] = await Promise.all([load(a), load(b)]);
  const sa = structure(ta);
  const sb = structure(tb);
  const paths = [...new Set([...sa.keys(), ...sb.keys()])].sort();
  const rows = paths.map((path) => {
    const ca = sa.get(path) ?? 0;
    const cb = sb.get(path) ?? 0;
    const state = ca === 0 ? "added" : cb === 0 ? "removed" : ca !== cb ? "changed" : "same";
    const depth = path.split(" / ").length - 1;
    const name = path.split(" / ").at(-1);
    return h("tr", { class: `diff ${state}`, "data-state": state },
      h("td", { style: { paddingLeft: `${depth * 16 + 4}px` } }, name),
      h("td", {}, String(ca)), h("td", {}, String(cb)), h("td", {}, state));
  });
  const count = (s) => paths.filter((p) => {
    const ca = sa.get(p) ?? 0;
    const cb = sb.get(p) ?? 0;
    return s === "added" ? ca === 0 : s === "removed" ? cb === 0 : ca && cb && ca !== cb;
  }).length;
  container.append(
    h("p", { "data-testid": "compare-summary" },
      `A: ${ta.rootService}: ${ta.rootOperation} (${ta.spans.length} spans) — B: ${tb.rootService}: ${tb.rootOperation} (${tb.spans.length} spans). `,
      `${count("added")} added, ${count("removed")} removed, ${count("changed")} changed.`),
    h("table", { class: "grid", "data-testid": "compare-table" },
      h("thead", {}, h("tr", {}, ["Service:operation", "A", "B", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)));
}
