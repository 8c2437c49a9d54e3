// The preview page's text handling (preview/source.js) in node: documents, paths to lines,
// the share link's encoding. No browser needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeFragment,
  encodeFragment,
  lineOf,
  parseDocuments,
  rackNodes,
  splitPath,
} from "../../preview/source.js";

test("paths split into keys and indices, map keys may hold dots", () => {
  assert.deepEqual(splitPath("spec.leaderWorkerTemplate.size"), ["spec", "leaderWorkerTemplate", "size"]);
  assert.deepEqual(splitPath("spec.x[2].name"), ["spec", "x", 2, "name"]);
  assert.deepEqual(splitPath("metadata.annotations[leaderworkerset.sigs.k8s.io/size]"), [
    "metadata",
    "annotations",
    "leaderworkerset.sigs.k8s.io/size",
  ]);
});

const MULTI = `# two documents
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata:
  name: first
spec:
  leaderWorkerTemplate:
    size: 0
---
---
kind: LeaderWorkerSet
spec:
  leaderWorkerTemplate:
    workerTemplate:
      spec:
        containers:
        - name: a
        - name: b
          image: x
`;

test("documents are numbered as kubectl counts them, empty ones skipped", () => {
  const { documents, errors } = parseDocuments(MULTI);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    documents.map((d) => d.number),
    [1, 3]
  );
  assert.equal(documents[0].value.metadata.name, "first");
});

test("a field path points at its key's line, a missing field at its parent", () => {
  const { documents, lines } = parseDocuments(MULTI);
  assert.equal(lineOf(documents[0].doc, "spec.leaderWorkerTemplate.size", lines), 8);
  assert.equal(lineOf(documents[1].doc, "spec.leaderWorkerTemplate.workerTemplate.spec.containers[1].image", lines), 19);
  // metadata.name is missing in document 3: its nearest existing ancestor is the document.
  assert.equal(lineOf(documents[1].doc, "metadata.name", lines), 11);
  // spec.replicas is missing in document 1: the line of spec.
  assert.equal(lineOf(documents[0].doc, "spec.replicas", lines), 6);
});

test("JSON is read too, with lines", () => {
  const json = '{\n  "metadata": {"name": "x"},\n  "spec": {\n    "replicas": -1\n  }\n}\n';
  const { documents, lines } = parseDocuments(json);
  assert.equal(documents.length, 1);
  assert.equal(lineOf(documents[0].doc, "spec.replicas", lines), 4);
});

test("malformed YAML is an error with its line", () => {
  const { documents, errors } = parseDocuments("a: 1\nb: [1, 2\nc: 3\n");
  assert.equal(documents.length, 0);
  assert.ok(errors.length > 0);
  assert.equal(errors[0].number, 1);
  assert.ok(errors[0].line >= 2, `line ${errors[0].line}`);
});

test("the fragment round-trips any text, without padding or URL-unsafe characters", () => {
  for (const text of ["", "a", "name: ü — 日本\n", MULTI, "??>>~~"]) {
    const fragment = encodeFragment(text);
    assert.match(fragment, /^[A-Za-z0-9_-]*$/);
    assert.equal(decodeFragment(fragment), text);
    assert.equal(fragment, Buffer.from(text, "utf8").toString("base64url"));
  }
  assert.throws(() => decodeFragment("_w"), "not UTF-8");
});

test("the default node list mirrors the local cluster: 4 racks × 4 nodes", () => {
  const nodes = rackNodes(4, 4);
  assert.equal(nodes.length, 16);
  assert.equal(nodes[5].name, "kwok-rack-1-node-1");
  assert.equal(nodes[5].labels.rack, "rack-1");
  assert.equal(nodes[12].labels["topology.kubernetes.io/zone"], "zone-b");
});
