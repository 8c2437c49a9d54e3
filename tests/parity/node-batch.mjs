// Runs calls through the npm loader (wasm/js) in node, for the parity suite.
// argv: <loader index.js> <lws.wasm>; stdin: "<operation> <hex payload>" lines.
// stdout: the sha256 of the module bytes, then one hex answer per call (an error as "!" + text).
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { pathToFileURL } from "node:url";

const [loaderPath, modulePath] = process.argv.slice(2);
const { load } = await import(pathToFileURL(loaderPath).href);
const bytes = readFileSync(modulePath);
const lws = await load(bytes);
const out = [createHash("sha256").update(bytes).digest("hex")];
for (const line of readFileSync(0, "utf8").split("\n")) {
  if (!line) continue;
  const [operation, hex] = line.split(" ");
  try {
    out.push(Buffer.from(lws.callBytes(operation, Buffer.from(hex ?? "", "hex"))).toString("hex"));
  } catch (error) {
    out.push(Buffer.from("!" + error.message).toString("hex"));
  }
}
process.stdout.write(out.join("\n") + "\n");
