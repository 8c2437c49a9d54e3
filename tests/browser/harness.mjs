// Shared by the preview tests and the browser benchmark: start `lws preview` on a free port,
// start Debian's chromium headless through playwright-core (which never downloads a browser
// here: it is pointed at the system binary), and record every request the page makes.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Reads a file of the repository as text. */
export function repoText(path) {
  return readFileSync(join(REPO, path), "utf8");
}

/** The page's URL fragment for a manifest: unpadded base64url of its UTF-8 bytes. */
export function fragment(text) {
  return Buffer.from(text, "utf8").toString("base64url");
}

/**
 * Starts `lws preview --port 0` and resolves with `{url, stop}` once it printed its URL.
 * `LWS_PREVIEW_URL` points the tests at a page already served instead (while developing it).
 */
export async function startPreview() {
  if (process.env.LWS_PREVIEW_URL) return { url: process.env.LWS_PREVIEW_URL, stop: () => {} };
  const binary = process.env.LWS_BIN ?? join(REPO, "target/release/lws");
  const child = spawn(binary, ["preview", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((_, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${binary} preview exited with ${code} before printing its URL`)));
  });
  const firstLine = new Promise((resolveLine) => {
    createInterface({ input: child.stdout }).once("line", resolveLine);
  });
  const url = await Promise.race([firstLine, exited]);
  exited.catch(() => {}); // later exits (our own kill) are expected
  if (!/^http:\/\/127\.0\.0\.1:\d+\/preview\/$/.test(url)) throw new Error(`unexpected first line: ${url}`);
  return {
    url,
    stop: () => child.kill("SIGTERM"),
  };
}

/** The system chromium: `$CHROMIUM`, else `chromium` on PATH. */
function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  return execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
}

/**
 * Launches headless chromium with a fresh profile. Resolves with `{context, page, requests,
 * close}`; `requests` lists every URL any page of the context asked for.
 */
export async function startBrowser({ width = 1440, height = 900 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "lws-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    viewport: { width, height },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const requests = [];
  context.on("request", (request) => requests.push(request.url()));
  const errors = [];
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  return {
    context,
    page,
    requests,
    errors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens the page (optionally with a manifest in the fragment) and waits until it rendered. */
export async function openPreview(page, url, manifest) {
  // A fresh load each time: a change of fragment alone would not reload the page.
  await page.goto("about:blank");
  await page.goto(manifest === undefined ? url : `${url}#${fragment(manifest)}`);
  await page.waitForSelector("body[data-ready]", { timeout: 30_000 });
  const ready = await page.getAttribute("body", "data-ready");
  if (ready !== "true") throw new Error(`the page failed to start: ${await page.textContent("#status")}`);
}

/** A copy of the seed's sample with `replicas` groups of `size`. */
export function sampleOf(replicas, size, name = "leaderworkerset-sample") {
  return repoText("examples/lws.yaml")
    .replace("replicas: 3", `replicas: ${replicas}`)
    .replace("size: 4", `size: ${size}`)
    .replace("name: leaderworkerset-sample", `name: ${name}`);
}
