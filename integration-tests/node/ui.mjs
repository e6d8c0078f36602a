// Drives Spoor's web UI in Debian's headless Chromium with playwright-core.
// Usage: node ui.mjs BASE_URL SCREENSHOT_DIR FILES_DIR
// Prints "ok <check>" per passed check and exits non-zero on the first failure.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, shots, files] = process.argv.slice(2);
const userDataDir = mkdtempSync(join(tmpdir(), "spoor-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
});
const page = context.pages()[0] ?? (await context.newPage());
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));
page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));

const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
const check = async (name, fn) => {
  await fn();
  console.log(`ok ${name}`);
};

try {
  await check("search by service and tag finds the right trace", async () => {
    await page.goto(`${base}search`);
    await page.getByTestId("service").selectOption("query23-service");
    await page.getByTestId("tags").fill("sameplacetag1=sameplacedifferentvalue");
    await page.getByTestId("find").click();
    await page.locator("[data-testid=results] .result").first().waitFor();
    assert.equal(await page.locator("[data-testid=results] .result").count(), 1);
    // the URL keeps the search, so a reload shows it again
    assert.match(page.url(), /service=query23-service/);
    await page.reload();
    await page.locator("[data-testid=results] .result").first().waitFor();
    assert.equal(await page.locator("[data-testid=results] .result").count(), 1);
    await page.getByTestId("tags").fill("");
    await page.getByTestId("find").click();
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=results] .result").length === 2);
  });

  await check("results list roots, durations, spans and services; scatter plot drawn", async () => {
    await page.goto(`${base}search?service=frontend&lookback=48h`);
    const result = page.locator("[data-testid=results] .result").first();
    await result.waitFor();
    const text = await result.innerText();
    assert.match(text, /frontend: GET \/checkout/);
    assert.match(text, /4 spans/);
    assert.match(text, /1 errors/);
    assert.match(text, /payment \(1\)/);
    assert.equal(await page.locator("[data-testid=scatter] circle").count(), 1);
    // the plot's axes: durations up the side (the longest is 120 ms), times along the bottom
    const ticks = await page.locator("[data-testid=scatter] text").allTextContents();
    assert.ok(ticks.includes("120.00ms") && ticks.includes("60.00ms"), `axis ticks: ${ticks}`);
    await page.getByTestId("scatter-from").waitFor();
    const [file] = await Promise.all([page.waitForEvent("download"), page.getByTestId("download-results").click()]);
    const saved = JSON.parse(await readFile(await file.path(), "utf8"));
    assert.equal(saved.data.length, 1);
    assert.equal(saved.data[0].spans.length, 4);
    await shot("search");
  });

  await check("a TraceQL query finds the trace, marks the spans it matched, and errors point at their column", async () => {
    await page.goto(`${base}search?lookback=48h`);
    await page.getByTestId("traceql").fill('{ resource.service.name = "frontend" } > { name = "charge" && status = error }');
    await page.getByTestId("find").click();
    const result = page.locator("[data-testid=results] .result");
    await result.first().waitFor();
    assert.equal(await result.count(), 1);
    assert.match(await result.first().innerText(), /frontend: GET \/checkout/);
    assert.equal(await result.first().getByTestId("matched").innerText(), "1 matched");
    assert.match(page.url(), /q=/);
    // the trace opens with the matched span found
    await result.first().locator("a.result-title").click();
    await page.getByTestId("find-count").waitFor();
    await page.waitForFunction(() => document.querySelector("[data-testid=find-count]").textContent === "1 matching");
    // a query the server cannot read: the message, and a caret under its column
    await page.goto(`${base}search?lookback=48h`);
    const bad = '{ resource.service.name = "frontend" && duration > 10 }';
    await page.getByTestId("traceql").fill(bad);
    const logged = consoleErrors.length;
    await page.getByTestId("find").click();
    const error = page.getByTestId("query-error");
    await error.waitFor();
    // Chromium logs the refused request itself: that error is the expected one
    const refused = consoleErrors.splice(logged);
    assert.ok(refused.length <= 1 && refused.every((m) => /status of 400/.test(m)), `console: ${refused}`);
    const [line, caret] = (await error.innerText()).split("\n");
    assert.equal(line, bad);
    assert.equal(caret.indexOf("^"), bad.indexOf("10"));
    assert.match(caret, /column 52: duration is compared with a duration/);
    await shot("traceql-error");
  });

  await check("results come a page of 20 at a time", async () => {
    await page.goto(`${base}search?service=paged-shop&lookback=48h&limit=100`);
    await page.getByTestId("page-of").waitFor();
    assert.equal(await page.locator("[data-testid=results] .result").count(), 20);
    assert.equal((await page.getByTestId("page-of").innerText()).trim(), "page 1 of 2");
    assert.equal(await page.getByTestId("page-previous").isDisabled(), true);
    await page.getByTestId("page-next").click();
    assert.equal(await page.locator("[data-testid=results] .result").count(), 5);
    assert.equal(await page.getByTestId("page-next").isDisabled(), true);
    // the same page as a table, which the URL keeps
    await page.getByTestId("results-layout").selectOption("table");
    assert.equal(await page.locator("[data-testid=results-table] tbody tr").count(), 5);
    assert.match(page.url(), /results=table/);
    assert.match(await page.locator("[data-testid=results-table] tbody tr").first().innerText(), /paged-shop: GET \/item\/\d+/);
    await page.goto(`${base}search?service=frontend&lookback=48h`);
    await page.locator("[data-testid=results] .result").first().waitFor();
  });

  await check("a trace shows every span nested under its parent", async () => {
    await page.locator("[data-testid=results] .result a").first().click();
    await page.getByTestId("timeline").waitFor();
    assert.equal(await page.getByTestId("span-count").innerText(), "4");
    const rows = page.locator("[data-testid=timeline] .row");
    assert.equal(await rows.count(), 4);
    const depths = await rows.evaluateAll((rs) => rs.map((r) => [r.querySelector(".op").textContent, r.dataset.depth]));
    assert.deepEqual(depths, [["GET /checkout", "0"], ["load-cart", "1"], ["SELECT cart", "2"], ["charge", "1"]]);
    assert.equal(await page.locator(".row.error .op").innerText(), "charge");
    // bars are coloured by service, one colour each
    const colors = await rows.evaluateAll((rs) => rs.map((r) => r.querySelector(".bar").dataset.serviceColor));
    assert.equal(new Set(colors).size, 4, `one colour per service: ${colors}`);
    await shot("trace");
  });

  await check("the header looks a trace up by id", async () => {
    await page.getByTestId("trace-id-lookup").fill("000000000000ABC1");
    await page.getByTestId("trace-id-lookup").press("Enter");
    await page.getByTestId("timeline").waitFor();
    assert.match(page.url(), /trace\/000000000000abc1$/);
  });

  await check("the archive button keeps a trace in the archive store", async () => {
    const traceId = new URL(page.url()).pathname.split("/").pop();
    await page.getByTestId("archive").click();
    await page.getByTestId("archive-status").filter({ hasText: "Archived" }).waitFor();
    assert.equal(await page.getByTestId("archive").isDisabled(), true);
    const r = await page.request.post(new URL(`api/archive/${traceId}`, base).href);
    assert.equal(r.status(), 200);
  });

  await check("collapse, expand and the span detail panel", async () => {
    await page.locator("[data-span-id='0000000000000002'] .toggle").click();
    assert.equal(await page.locator("[data-testid=timeline] .row").count(), 3);
    await page.locator("[data-span-id='0000000000000002'] .toggle").click();
    assert.equal(await page.locator("[data-testid=timeline] .row").count(), 4);
    await page.getByTestId("collapse-all").click();
    assert.equal(await page.locator("[data-testid=timeline] .row").count(), 3);
    await page.getByTestId("expand-all").click();
    assert.equal(await page.locator("[data-testid=timeline] .row").count(), 4);
    await page.locator("[data-span-id='0000000000000004']").click();
    const detail = page.getByTestId("detail");
    assert.equal(await detail.getByTestId("detail-service").innerText(), "payment");
    assert.match(await detail.getByTestId("detail-tags").innerText(), /payment\.provider\s+acme/);
    assert.match(await detail.getByTestId("detail-process").innerText(), /host\s+node-1/);
    assert.doesNotMatch(await detail.innerText(), /null|undefined/);
    // links from the UI settings: the process's host, never a javascript: url
    const link = detail.getByTestId("span-links").getByRole("link");
    assert.equal(await link.count(), 1);
    assert.equal(await link.innerText(), "Logs of node-1");
    assert.match(await link.getAttribute("href"), /^https:\/\/logs\.example\/\?host=node-1&trace=000000000000abc1$/);
    assert.equal(await page.getByTestId("trace-links").getByRole("link").getAttribute("href"), "https://apm.example/trace/000000000000abc1");
    // keyboard: up moves the selection to the previous row
    await page.getByTestId("timeline").focus();
    await page.keyboard.press("ArrowUp");
    assert.equal(await detail.getByTestId("detail-service").innerText(), "mysql");
    await page.getByTestId("find-in-trace").fill("payment");
    assert.equal(await page.getByTestId("find-count").innerText(), "1 matching");
    await shot("trace-detail");
  });

  await check("span table, flame graph and statistics views", async () => {
    const url = page.url();
    await page.getByRole("tab", { name: "Span table" }).click();
    await page.getByTestId("span-table").waitFor();
    assert.equal(await page.locator("[data-testid=span-table] tbody tr").count(), 4);
    await page.getByRole("tab", { name: "Flame graph" }).click();
    await page.getByTestId("flame").waitFor();
    assert.equal(await page.locator("[data-testid=flame] .frame").count(), 4);
    await page.getByRole("tab", { name: "Graph", exact: true }).click();
    await page.getByTestId("trace-graph").locator("g.node").first().waitFor();
    assert.equal(await page.getByTestId("trace-graph").locator("g.node").count(), 4);
    const edges = await page.getByTestId("trace-graph").locator("g.edge").evaluateAll((es) => es.map((e) => e.dataset.edge).sort());
    assert.deepEqual(edges, ["cart load-cart->mysql SELECT cart", "frontend GET /checkout->cart load-cart", "frontend GET /checkout->payment charge"]);
    await page.getByRole("tab", { name: "Events" }).click();
    const events = page.getByTestId("events").locator(":scope > tbody > tr");
    await events.first().waitFor();
    assert.equal(await events.count(), 2);
    assert.match(await events.nth(0).innerText(), /cart\s+load-cart[\s\S]*cache-miss/);
    assert.match(await events.nth(1).innerText(), /payment\s+charge[\s\S]*declined/);
    await page.getByRole("tab", { name: "Statistics" }).click();
    await page.getByTestId("stats").waitFor();
    const stats = await page.getByTestId("stats").innerText();
    assert.match(stats, /frontend\s+GET \/checkout\s+1/);
    await shot("trace-statistics");
    await page.goto(url);
  });

  await check("a 10,000-span trace opens and scrolls, drawing only what is visible", async () => {
    const started = Date.now();
    await page.goto(`${base}trace/0000000000000b16`);
    await page.getByTestId("timeline").waitFor();
    assert.equal(await page.getByTestId("span-count").innerText(), "10000");
    const drawn = await page.locator("[data-testid=timeline] .row").count();
    assert.ok(drawn > 10 && drawn < 200, `${drawn} rows in the DOM`);
    await page.getByTestId("timeline").evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.waitForFunction(() =>
      [...document.querySelectorAll("[data-testid=timeline] .row")].some((r) => r.getAttribute("aria-level") !== "1" && Number(r.style.top.replace("px", "")) > 200000));
    console.log(`  opened and scrolled in ${Date.now() - started} ms`);
    await shot("large-trace");
  });

  await check("dependencies page draws the call graph", async () => {
    await page.goto(`${base}dependencies?lookback=604800000`);
    await page.getByTestId("graph").locator("svg").waitFor();
    const edges = await page.locator("[data-edge]").evaluateAll((es) => es.map((e) => e.dataset.edge).sort());
    assert.deepEqual(edges, ["cart->mysql", "frontend->cart", "frontend->payment"]);
    await shot("dependencies");
    const shown = () => page.locator("[data-edge]").evaluateAll((es) => es.map((e) => e.dataset.edge).sort());
    await page.getByTestId("focus").selectOption("cart");
    assert.deepEqual(await shown(), ["cart->mysql", "frontend->cart"]);
    // one hop around mysql is its caller; two reach the caller's caller, not its other callee
    await page.getByTestId("focus").selectOption("mysql");
    assert.deepEqual(await shown(), ["cart->mysql"]);
    await page.getByTestId("depth").selectOption("2");
    assert.deepEqual(await shown(), ["cart->mysql", "frontend->cart"]);
    assert.match(page.url(), /focus=mysql&depth=2|depth=2&focus=mysql/);
    // a click on a service focuses it
    await page.locator('[data-service="frontend"]').click();
    assert.equal(await page.getByTestId("focus").inputValue(), "frontend");
    assert.deepEqual(await shown(), ["cart->mysql", "frontend->cart", "frontend->payment"]);
  });

  await check("compare shows a structural diff", async () => {
    await page.goto(`${base}compare/000000000000abc1/00000000000000000000000000000011`);
    await page.getByTestId("compare-table").waitFor();
    const summary = await page.getByTestId("compare-summary").innerText();
    assert.match(summary, /5 added, 4 removed, 0 changed/);
    await shot("compare");
  });

  await check("a Jaeger JSON file and an OTLP JSON file open without being stored", async () => {
    await page.goto(`${base}search`);
    await page.locator("#open-file").setInputFiles(join(files, "otlp.json"));
    await page.getByTestId("timeline").waitFor();
    const ops = await page.locator("[data-testid=timeline] .op").allInnerTexts();
    assert.deepEqual(ops, ["from-a-file", "child-in-file"]);
    assert.match(await page.getByTestId("trace-header").innerText(), /otlp-file-service/);
    // mapped by the server as the collector maps spans: scope and status kept
    await page.locator("[data-span-id='eee19b7ec3c1b174']").click();
    const tags = await page.getByTestId("detail").getByTestId("detail-tags").innerText();
    assert.match(tags, /otel\.scope\.name\s+file-lib/);
    assert.match(tags, /otel\.status_description\s+boom/);
    await shot("file");
    await page.locator("#open-file").setInputFiles(join(files, "jaeger.json"));
    await page.waitForFunction(() => document.querySelector("[data-testid=span-count]")?.textContent === "4");
  });

  await check("dark theme", async () => {
    await page.goto(`${base}trace/000000000000abc1`);
    await page.getByTestId("timeline").waitFor();
    await page.locator("#theme").click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme === "dark" || document.documentElement.dataset.theme === "light"), true);
    await shot("trace-theme-switched");
  });

  await check("monitor charts a service's RED metrics and a point opens its traces", async () => {
    await page.goto(`${base}monitor?service=live-shop&spanKind=server`);
    for (const id of ["latency", "errors", "calls"]) await page.getByTestId(`chart-${id}`).locator("circle").first().waitFor();
    assert.equal(await page.getByTestId("chart-latency").locator("polyline").count(), 3);
    const errorRate = Number(await page.getByTestId("chart-errors").locator("circle").last().getAttribute("data-value"));
    assert.equal(errorRate, 50);
    const rows = page.getByTestId("monitor-operations").locator("tbody tr");
    assert.equal(await rows.count(), 2);
    assert.match(await page.getByTestId("monitor-operations").innerText(), /POST \/live[\s\S]*100\.0 %/);
    await shot("monitor");
    // the latest p95 point: the traces of its minute at least that slow
    await page.getByTestId("chart-latency").locator("circle.line-2").last().click();
    await page.getByTestId("results").locator(".result").first().waitFor();
    assert.match(page.url(), /minDuration=/);
    assert.match(await page.getByTestId("results").innerText(), /GET \/live/);
  });

  await check("unknown app paths serve the app (deep links)", async () => {
    const response = await page.goto(`${base}trace/000000000000abc1?view=table`);
    assert.equal(response.status(), 200);
    await page.getByTestId("span-table").waitFor();
  });

  assert.deepEqual(consoleErrors, [], "no errors in the browser console");
  console.log("all checks passed");
} catch (e) {
  console.log(`FAILED: ${e.stack ?? e}`);
  await shot("failure").catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
