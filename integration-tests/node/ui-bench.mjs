// Time to first render of traces in Spoor's UI, in Debian's headless Chromium.
// Usage: [RUNS=6] node ui-bench.mjs BASE_URL TRACE_ID... ; prints one JSON line per trace.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, ...ids] = process.argv.slice(2);
const RUNS = Math.max(2, Number(process.env.RUNS ?? 6));
const userDataDir = mkdtempSync(join(tmpdir(), "spoor-bench-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
});
const page = context.pages()[0] ?? (await context.newPage());
for (const id of ids) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${base}trace/${id}`, { waitUntil: "commit" });
    // ms since navigation start when the first timeline row is on screen
    const ms = await page.waitForFunction(() => document.querySelector("[data-testid=timeline] .row") && performance.now(), null, { polling: "raf", timeout: 600_000 });
    runs.push(await ms.jsonValue());
  }
  const spans = await page.getByTestId("span-count").innerText();
  const warm = runs.slice(1).sort((a, b) => a - b); // the first run fills caches
  const median = warm[Math.floor((warm.length - 1) / 2)];
  console.log(JSON.stringify({ trace: id, spans: Number(spans), first_render_ms: { cold: Math.round(runs[0]), median: Math.round(median), max: Math.round(warm[warm.length - 1]) } }));
}
await context.close();
rmSync(userDataDir, { recursive: true, force: true });
