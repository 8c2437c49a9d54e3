// Browser benchmark of the preview page (`make bench-browser`): the time from an input event in
// the editor to the preview rendered and painted, for the seed's sample shape (3 × 4) and a
// large one (100 × 8; budget 50 ms). Prints a table and writes target/bench/browser.json.
//
// Each run changes the manifest's name, so every run is a full parse, expand and redraw. The
// clock starts before the input event. "rendered" stops once the handler has run and style and
// layout are done (forced): the page's own work, which the budget is about. "painted" stops after
// the next frame, so it adds the wait for the display's next frame (up to 16.7 ms at 60 Hz).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, openPreview, sampleOf, startBrowser, startPreview } from "./harness.mjs";

const BUDGET_MS = { "100x8": 50 };
const RUNS = Number(process.env.BENCH_RUNS ?? 21);
const WARMUP = 5;

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const round = (x) => Math.round(x * 100) / 100;
  return { median: round(at(0.5)), p90: round(at(0.9)), min: round(sorted[0]), max: round(sorted[sorted.length - 1]) };
}

async function measure(page, url, replicas, size) {
  await openPreview(page, url, sampleOf(replicas, size));
  const texts = [sampleOf(replicas, size, "bench-a"), sampleOf(replicas, size, "bench-b")];
  return page.evaluate(
    async ({ texts, runs, warmup }) => {
      const editor = document.getElementById("editor");
      const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
      const painted = [];
      const updated = [];
      const expand = [];
      const render = [];
      for (let i = 0; i < warmup + runs; i++) {
        await frame();
        const start = performance.now();
        editor.value = texts[i % 2];
        editor.dispatchEvent(new Event("input", { bubbles: true }));
        // Style and layout now, as the frame would: the page's whole work for this input.
        void document.body.offsetHeight;
        const afterUpdate = performance.now();
        await frame();
        const end = performance.now();
        if (i < warmup) continue;
        painted.push(end - start);
        updated.push(afterUpdate - start);
        expand.push(window.lwsPreview.state.timings.expand);
        render.push(window.lwsPreview.state.timings.render);
      }
      const pods = document.querySelectorAll("#view-groups .pod-link").length;
      return { painted, updated, expand, render, pods };
    },
    { texts, runs: RUNS, warmup: WARMUP }
  );
}

const server = await startPreview();
const browser = await startBrowser();
const results = {};
let overBudget = false;
try {
  for (const [replicas, size] of [
    [3, 4],
    [100, 8],
  ]) {
    const key = `${replicas}x${size}`;
    const run = await measure(browser.page, server.url, replicas, size);
    if (run.pods !== replicas * size) throw new Error(`${key}: rendered ${run.pods} pods`);
    const painted = stats(run.painted);
    results[key] = {
      pods: run.pods,
      runs: RUNS,
      inputToPaintedMs: painted,
      inputToRenderedMs: stats(run.updated),
      parseAndExpandMs: stats(run.expand),
      domMs: stats(run.render),
      budgetMs: BUDGET_MS[key] ?? null,
      withinBudget: BUDGET_MS[key] === undefined ? null : stats(run.updated).median <= BUDGET_MS[key],
    };
    if (results[key].withinBudget === false) overBudget = true;
  }
} finally {
  await browser.close();
  server.stop();
}

const report = {
  what: "lws preview page: input event to preview rendered (handler + style + layout) and painted (after the next frame), headless chromium; budget on rendered",
  chromium: browser.context.browser()?.version() ?? null,
  results,
};
mkdirSync(join(REPO, "target/bench"), { recursive: true });
writeFileSync(join(REPO, "target/bench/browser.json"), JSON.stringify(report, null, 2) + "\n");

console.log("shape   pods  input→rendered median/p90  input→painted median  parse+expand  DOM      budget (rendered)");
for (const [key, r] of Object.entries(results)) {
  const p = r.inputToRenderedMs;
  console.log(
    `${key.padEnd(7)} ${String(r.pods).padStart(4)}  ${`${p.median} / ${p.p90} ms`.padEnd(25)}  ${`${r.inputToPaintedMs.median} ms`.padEnd(20)}  ${`${r.parseAndExpandMs.median} ms`.padEnd(12)}  ${`${r.domMs.median} ms`.padEnd(7)}  ${
      r.budgetMs === null ? "-" : `${r.budgetMs} ms: ${r.withinBudget ? "ok" : "OVER"}`
    }`
  );
}
console.log("wrote target/bench/browser.json");
process.exitCode = overBudget ? 1 : 0;
