// Time to first render of traces in Spoor's UI, in Debian's headless Chromium.
// Usage: node ui-bench.mjs BASE_URL TRACE_ID... ; prints one JSON line per trace.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, ...ids] = process.argv.slice(2);
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
  for (let i = 0; i < 6; i++) {
    await page.goto(`${base}trace/${id}`, { waitUntil: "commit" });
    // ms since navigation start when the first timeline row is on screen
    const ms = await page.waitForFunction(() => document.querySelector("[data-testid=timeline] .row") && performance.now(), null, { polling: "raf", timeout: 60_000 });
    runs.push(await ms.jsonValue());
  }
  const spans = await page.getByTestId("span-count").innerText();
  const warm = runs.slice(1).sort((a, b) => a - b); // the first run fills caches
  console.log(JSON.stringify({ trace: id, spans: Number(spans), first_render_ms: { cold: Math.round(runs[0]), median: Math.round(warm[2]), max: Math.round(warm[4]) } }));
}
await context.close();
rmSync(userDataDir, { recursive: true, force: true });
