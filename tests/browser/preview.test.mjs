// The preview page in headless Chromium, served by the real `lws preview` binary
// (issue 7: what it must show). Screenshots of each state go to target/browser/;
// LWS_UPDATE_SCREENSHOT=1 also refreshes docs/preview.png (the README's picture).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { REPO, openPreview, repoText, startBrowser, startPreview } from "./harness.mjs";

const SHOTS = join(REPO, "target/browser");

describe("lws preview page", () => {
  let server;
  let browser;
  let page;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    server = await startPreview();
    browser = await startBrowser();
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
    server?.stop();
  });

  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

  test("the seed's sample in the URL fragment shows its twelve pods", async () => {
    await openPreview(page, server.url, repoText("examples/lws.yaml"));
    const names = await page.locator("#view-groups .pod-link").allTextContents();
    const expected = [];
    for (const group of [0, 1, 2]) {
      expected.push(`leaderworkerset-sample-${group}`);
      for (const worker of [1, 2, 3]) expected.push(`leaderworkerset-sample-${group}-${worker}`);
    }
    assert.deepEqual(names, expected);
    const roles = await page.locator("#view-groups tbody tr td:nth-child(2)").allTextContents();
    assert.deepEqual(roles.slice(0, 4), ["leader", "worker", "worker", "worker"]);
    assert.match(await page.textContent("#status"), /3 groups, 12 pods/);
    assert.equal(await page.isHidden("#problems"), true);
    await shot("sample");
  });

  test("a pod's detail shows its env, DNS name and labels", async () => {
    await page.click("text=leaderworkerset-sample-1-2");
    const detail = page.locator("#view-pod .pod-detail");
    await detail.waitFor();
    const text = await detail.textContent();
    assert.match(text, /leaderworkerset-sample-1-2\.leaderworkerset-sample\.default/);
    assert.match(text, /LWS_LEADER_ADDRESS\s*leaderworkerset-sample-1\.leaderworkerset-sample\.default/);
    assert.match(text, /LWS_WORKER_INDEX\s*2/);
    assert.match(text, /leaderworkerset\.sigs\.k8s\.io\/group-index\s*1/);
    await shot("pod");
    await page.click("#tab-groups");
  });

  test("the expanded objects download as one YAML stream", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    assert.equal(download.suggestedFilename(), "leaderworkerset-sample-expanded.yaml");
    const chunks = [];
    for await (const chunk of await download.createReadStream()) chunks.push(chunk);
    const documents = Buffer.concat(chunks).toString("utf8").split(/^---$/m);
    const kinds = documents.map((d) => d.match(/^kind: (\w+)$/m)?.[1]);
    assert.deepEqual(kinds.filter((k) => k === "Pod").length, 12);
    assert.deepEqual(kinds.slice(0, 5), ["StatefulSet", "Service", "StatefulSet", "StatefulSet", "StatefulSet"]);
  });

  test("an invalid manifest shows the error with its field path and line", async () => {
    const invalid = repoText("examples/lws.yaml").replace("size: 4", "size: 0");
    await page.fill("#editor", invalid);
    const problems = page.locator("#problems");
    await problems.waitFor({ state: "visible" });
    const text = await problems.textContent();
    assert.match(text, /spec\.leaderWorkerTemplate\.size: Invalid value: 0/);
    const sizeLine = invalid.split("\n").findIndex((l) => l.includes("size: 0")) + 1;
    assert.equal(await problems.locator("button.line").first().textContent(), `line ${sizeLine}`);
    // The link follows the text: the fragment now carries the invalid manifest.
    const hash = await page.evaluate(() => location.hash.slice(1));
    assert.equal(Buffer.from(hash, "base64url").toString("utf8"), invalid);
    await shot("invalid");
    // Its line button selects the offending line in the editor.
    await problems.locator("button.line").first().click();
    const selected = await page.evaluate(() => {
      const e = document.getElementById("editor");
      return e.value.slice(e.selectionStart, e.selectionEnd);
    });
    assert.equal(selected.trim(), "size: 0");
  });

  /** Rows of the placement table: [group, domain, status, nodes or reason]. */
  async function placementRows() {
    const rows = await page.locator("#placement-result .placement-table tbody tr").all();
    return Promise.all(rows.map(async (row) => row.locator("td").allTextContents()));
  }

  test("the exclusive-placement example on 4 racks takes three different racks", async () => {
    await openPreview(page, server.url, repoText("examples/lws-exclusive-placement.yaml"));
    await page.click("#tab-placement");
    await page.locator("#placement-result .placement-table").waitFor();
    const rows = await placementRows();
    assert.equal(rows.length, 3);
    const racks = rows.map(([, domain]) => domain);
    assert.equal(new Set(racks).size, 3, `three different racks: ${racks}`);
    for (const [group, domain, status, nodes] of rows) {
      assert.equal(status, "placed", `group ${group}`);
      assert.match(domain, /^rack-[0-3]$/);
      const names = nodes.split(", ");
      assert.equal(names.length, 4);
      for (const node of names) assert.ok(node.startsWith(`kwok-${domain}-node-`), `${node} in ${domain}`);
    }
    assert.equal(await page.locator("#placement-result .unplaced-list").count(), 0);
    await shot("placement-4-racks");
  });

  test("on 2 racks it says which groups cannot be placed and why", async () => {
    await page.fill("#racks", "2");
    await page.click("#generate");
    const unplaced = page.locator("#placement-result .unplaced-list");
    await unplaced.waitFor();
    assert.equal(
      (await unplaced.textContent()).trim(),
      "group 2 cannot be placed: no free rack domain: 3 groups need one each, the nodes have 2 (rack-0, rack-1)"
    );
    const rows = await placementRows();
    assert.deepEqual(
      rows.map(([group, domain, status]) => [group, domain, status]),
      [
        ["0", "rack-0", "placed"],
        ["1", "rack-1", "placed"],
        ["2", "", "not placed"],
      ]
    );
    await shot("placement-2-racks");
    if (process.env.LWS_UPDATE_SCREENSHOT === "1") {
      await page.setViewportSize({ width: 1280, height: 760 });
      await page.screenshot({ path: join(REPO, "docs/preview.png") });
      await page.setViewportSize({ width: 1440, height: 900 });
    }
  });

  test("the page made no request outside 127.0.0.1 and logged no error", () => {
    assert.ok(browser.requests.length > 5, "requests were recorded");
    const outside = browser.requests.filter((url) => {
      const parsed = new URL(url);
      if (["data:", "blob:", "about:"].includes(parsed.protocol)) return false;
      return parsed.hostname !== "127.0.0.1";
    });
    assert.deepEqual(outside, []);
    assert.deepEqual(browser.errors, []);
  });
});
