// The manifest as text: documents in, field paths to lines, and the share link's encoding.
// No LeaderWorkerSet rule lives here (that is lws.wasm's job); only text handling.

import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, isPair } from "./vendor/yaml.js";

/**
 * Splits YAML or JSON text (JSON is YAML) into documents, numbered from 1 as kubectl counts
 * them. Empty documents are skipped as `kubectl apply` skips them. Each document keeps its
 * parsed YAML tree so a field path can be turned into a line later.
 *
 * @returns {{documents: {number, value, doc}[], errors: {number, line, message}[], lines: LineCounter}}
 */
export function parseDocuments(text) {
  const lines = new LineCounter();
  const documents = [];
  const errors = [];
  let number = 0;
  for (const doc of parseAllDocuments(text, { lineCounter: lines, prettyErrors: false })) {
    number += 1;
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        errors.push({ number, line: lines.linePos(error.pos[0]).line, message: firstLine(error.message) });
      }
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 1000 });
    if (value === null || value === undefined) continue;
    documents.push({ number, value, doc });
  }
  return { documents, errors, lines };
}

function firstLine(message) {
  return String(message).split("\n")[0];
}

/**
 * Splits a field path as lws prints it (`spec.leaderWorkerTemplate.size`, `a.b[2].c`,
 * `metadata.annotations[leaderworkerset.sigs.k8s.io/size]`) into keys and indices.
 */
export function splitPath(path) {
  const segments = [];
  for (const match of String(path).matchAll(/([^.[\]]+)|\[([^\]]*)\]/g)) {
    if (match[1] !== undefined) segments.push(match[1]);
    else segments.push(/^\d+$/.test(match[2]) ? Number(match[2]) : match[2]);
  }
  return segments;
}

/**
 * The 1-based line a field path points at in a parsed document: the field's key when it is
 * there, else the deepest part of the path that is (a missing field is reported at its parent).
 */
export function lineOf(doc, path, lines) {
  let node = doc.contents;
  let offset = node?.range?.[0];
  for (const segment of splitPath(path)) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && keyText(item.key) === String(segment));
      if (!pair) break;
      offset = pair.key?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
      node = node.items[segment];
      offset = node?.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset === undefined ? null : lines.linePos(offset).line;
}

function keyText(key) {
  return isScalar(key) ? String(key.value) : String(key);
}

/** The text as an unpadded base64url string of its UTF-8 bytes (the share link's fragment). */
export function encodeFragment(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The inverse of {@link encodeFragment}; throws on text that is not base64url UTF-8. */
export function decodeFragment(fragment) {
  const base64 = fragment.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/**
 * A default node list like the local test cluster's (tests/cluster/README.md): `racks` racks of
 * `perRack` nodes named `kwok-rack-R-node-N`, labelled `rack=rack-R`, zones a/b, 32 cpu, 110 pods.
 */
export function rackNodes(racks, perRack) {
  const nodes = [];
  for (let rack = 0; rack < racks; rack++) {
    for (let node = 0; node < perRack; node++) {
      nodes.push({
        name: `kwok-rack-${rack}-node-${node}`,
        labels: {
          rack: `rack-${rack}`,
          "topology.kubernetes.io/zone": rack < 2 ? "zone-a" : "zone-b",
        },
        cpu: "32",
        pods: 110,
      });
    }
  }
  return nodes;
}

/** A node list as editable JSON: one node per line. */
export function formatNodes(nodes) {
  return "[\n" + nodes.map((node) => "  " + JSON.stringify(node)).join(",\n") + "\n]\n";
}
