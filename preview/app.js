// The preview page: manifest text in, lws.wasm's answers out, rendered as the user types.
//
// Every LeaderWorkerSet decision (defaults, validation, names, labels, env, affinity,
// placement) comes from lws.wasm through the npm loader; this file only parses text, calls the
// module and draws. It makes no request but to the server it came from.

import { load } from "../wasm/js/index.js";
import { stringify } from "./vendor/yaml.js";
import {
  decodeFragment,
  encodeFragment,
  formatNodes,
  lineOf,
  parseDocuments,
  rackNodes,
} from "./source.js";

/** The example manifests the picker offers (served from ../examples/). */
const EXAMPLES = [
  "lws.yaml",
  "lws-exclusive-placement.yaml",
  "lws-subgroup.yaml",
  "lws-tpu.yaml",
  "lws-multi-template.yaml",
  "lws-unique-per-replica.yaml",
  "lws-rollout-strategy.yaml",
  "lws-restart-policy.yaml",
  "lws-startup-policy.yaml",
  "lws-volume-claim-templates.yaml",
  "lws-pod-termination-policy.yaml",
  "lws-volcano.yaml",
];

// Label keys are shown, not decided on: the values come from lws.wasm's output.
const GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index";
const WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index";
const SUBGROUP_INDEX = "leaderworkerset.sigs.k8s.io/subgroup-index";

const $ = (id) => document.getElementById(id);
const editor = $("editor");
const nodesEditor = $("nodes");

const state = {
  module: null,
  model: null,
  tab: "groups",
  pod: null, // {doc, name} of the pod in the detail view
  placement: null, // cached answer for the current model and node list
  timings: {},
};

// ---------------------------------------------------------------------------------------------
// Input

/** Reads the manifest, asks lws.wasm, and redraws; returns the time it took in ms. */
function update(text, { writeFragment = true } = {}) {
  const start = performance.now();
  state.model = buildModel(text);
  state.placement = null;
  const built = performance.now();
  render();
  const end = performance.now();
  state.timings = { expand: built - start, render: end - built, total: end - start };
  renderStatus();
  if (writeFragment) {
    const fragment = text.trim() === "" ? "" : "#" + encodeFragment(text);
    history.replaceState(null, "", location.pathname + location.search + fragment);
  }
  return end - start;
}

/** Documents, the module's answers and the problems, with the line each problem points at. */
function buildModel(text) {
  const parsed = parseDocuments(text);
  const problems = parsed.errors.map((e) => ({
    doc: e.number,
    path: "",
    line: e.line,
    message: `malformed YAML: ${e.message}`,
  }));
  const docs = [];
  for (const document of parsed.documents) {
    let answer;
    try {
      answer = state.module.expand(document.value);
    } catch (error) {
      problems.push({ doc: document.number, path: "", line: null, message: error.message });
      continue;
    }
    if (answer.problems) {
      for (const problem of answer.problems) {
        problems.push({
          doc: document.number,
          path: problem.path,
          message: problem.message,
          line: lineOf(document.doc, problem.path, parsed.lines),
        });
      }
      continue;
    }
    docs.push(describe(document, answer.items));
  }
  if (parsed.documents.length === 0 && parsed.errors.length === 0) {
    problems.push({ doc: null, path: "", line: null, message: "no LeaderWorkerSet documents in input" });
  }
  return { docs, problems, documentCount: parsed.documents.length + parsed.errors.length };
}

/** One admitted LeaderWorkerSet and its objects, sorted into what the views show. */
function describe(document, items) {
  const pods = items.filter((o) => o.kind === "Pod");
  const groups = new Map();
  for (const pod of pods) {
    const index = Number(label(pod, GROUP_INDEX));
    if (!groups.has(index)) groups.set(index, []);
    groups.get(index).push(pod);
  }
  const meta = document.value.metadata ?? {};
  return {
    number: document.number,
    value: document.value,
    name: meta.name ?? "",
    namespace: pods[0]?.metadata?.namespace ?? items[0]?.metadata?.namespace ?? "default",
    items,
    pods,
    groups: [...groups.entries()].sort((a, b) => a[0] - b[0]),
    statefulSets: items.filter((o) => o.kind === "StatefulSet"),
    services: items.filter((o) => o.kind === "Service"),
  };
}

function label(object, key) {
  return object?.metadata?.labels?.[key];
}

// ---------------------------------------------------------------------------------------------
// Rendering

const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => escapes[c]);

function render() {
  renderProblems();
  renderTab();
}

function renderTab() {
  const views = { groups: renderGroups, objects: renderObjects, pod: renderPod, placement: renderPlacement };
  views[state.tab]();
}

function renderStatus() {
  const { docs, problems } = state.model;
  const pods = docs.reduce((n, d) => n + d.pods.length, 0);
  const groups = docs.reduce((n, d) => n + d.groups.length, 0);
  const objects = docs.reduce((n, d) => n + d.items.length - d.pods.length, 0);
  const parts = [];
  if (docs.length > 0) {
    parts.push(`${docs.length} LeaderWorkerSet${docs.length === 1 ? "" : "s"}`);
    parts.push(`${groups} group${groups === 1 ? "" : "s"}, ${pods} pod${pods === 1 ? "" : "s"}`);
    parts.push(`${objects} object${objects === 1 ? "" : "s"} to create`);
  }
  if (problems.length > 0) parts.push(`${problems.length} problem${problems.length === 1 ? "" : "s"}`);
  parts.push(`${state.timings.total.toFixed(1)} ms`);
  $("status").textContent = parts.join(" · ");
  $("download").disabled = docs.length === 0;
}

function renderProblems() {
  const { problems, documentCount } = state.model;
  const box = $("problems");
  box.hidden = problems.length === 0;
  if (problems.length === 0) {
    box.innerHTML = "";
    return;
  }
  const rows = problems.map((p) => {
    const where = documentCount > 1 && p.doc ? `document ${p.doc}: ` : "";
    const path = p.path ? `<code class="path">${esc(p.path)}</code>: ` : "";
    const line = p.line
      ? `<button class="line" data-line="${p.line}" title="Show line ${p.line} in the editor">line ${p.line}</button>`
      : "";
    return `<li>${line}<span>${esc(where)}${path}${esc(p.message)}</span></li>`;
  });
  box.innerHTML = `<h2>Not admitted</h2><ul>${rows.join("")}</ul>`;
}

function nothingToShow() {
  return state.model.problems.length > 0
    ? `<p class="empty">Nothing to show until the problems above are fixed.</p>`
    : `<p class="empty">Type or drop a LeaderWorkerSet manifest on the left.</p>`;
}

function heading(doc) {
  return `<h2>${esc(doc.name)} <span class="muted">namespace ${esc(doc.namespace)}</span></h2>`;
}

function renderGroups() {
  const view = $("view-groups");
  if (state.model.docs.length === 0) {
    view.innerHTML = nothingToShow();
    return;
  }
  view.innerHTML = state.model.docs
    .map((doc) => {
      const size = doc.groups[0]?.[1].length ?? 0;
      const hasSubgroups = doc.pods.some((p) => label(p, SUBGROUP_INDEX) !== undefined);
      const groups = doc.groups.map(([index, pods]) => {
        const rows = pods.map((pod) => {
          const worker = label(pod, WORKER_INDEX);
          return `<tr><td><button class="pod-link" data-doc="${doc.number}" data-pod="${esc(pod.metadata.name)}">${esc(pod.metadata.name)}</button></td>
<td>${worker === "0" ? "leader" : "worker"}</td><td>${esc(label(pod, GROUP_INDEX))}</td><td>${esc(worker)}</td>${
            hasSubgroups ? `<td>${esc(label(pod, SUBGROUP_INDEX) ?? "")}</td>` : ""
          }</tr>`;
        });
        return `<div class="group"><h3>group ${index}</h3><table class="pods"><thead><tr><th>NAME</th><th>ROLE</th><th>GROUP</th><th>WORKER</th>${
          hasSubgroups ? "<th>SUBGROUP</th>" : ""
        }</tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
      });
      return `<section class="lws">${heading(doc)}<p class="summary">${doc.groups.length} group${
        doc.groups.length === 1 ? "" : "s"
      } × ${size} = ${doc.pods.length} pods</p><div class="groups">${groups.join("")}</div></section>`;
    })
    .join("");
}

function pairs(map) {
  const entries = Object.entries(map ?? {});
  return entries.length ? entries.map(([k, v]) => `${esc(k)}=${esc(v)}`).join("<br>") : `<span class="muted">none</span>`;
}

function renderObjects() {
  const view = $("view-objects");
  if (state.model.docs.length === 0) {
    view.innerHTML = nothingToShow();
    return;
  }
  view.innerHTML = state.model.docs
    .map((doc) => {
      const sets = doc.statefulSets.map((sts) => {
        const spec = sts.spec ?? {};
        const strategy = spec.updateStrategy ?? {};
        const rolling = strategy.rollingUpdate
          ? Object.entries(strategy.rollingUpdate)
              .map(([k, v]) => `${k} ${v}`)
              .join(", ")
          : "";
        const images = (spec.template?.spec?.containers ?? []).map((c) => `${c.name}: ${c.image}`);
        return `<tr><td class="name">${esc(sts.metadata.name)}</td><td>${esc(spec.replicas)}</td><td>${esc(
          spec.serviceName
        )}</td><td>${esc(spec.podManagementPolicy)}</td><td>${esc(strategy.type ?? "")}${
          rolling ? `<br><span class="muted">${esc(rolling)}</span>` : ""
        }</td><td>${pairs(spec.selector?.matchLabels)}</td><td>${images.map(esc).join("<br>")}</td></tr>`;
      });
      const services = doc.services.map((svc) => {
        const spec = svc.spec ?? {};
        return `<tr><td class="name">${esc(svc.metadata.name)}</td><td>${esc(spec.clusterIP ?? "")}</td><td>${pairs(
          spec.selector
        )}</td><td>${esc(spec.publishNotReadyAddresses ?? false)}</td></tr>`;
      });
      return `<section class="lws">${heading(doc)}
<h3>StatefulSets</h3><table class="objects"><thead><tr><th>NAME</th><th>REPLICAS</th><th>SERVICE</th><th>POD MANAGEMENT</th><th>UPDATE</th><th>SELECTOR</th><th>IMAGES</th></tr></thead><tbody>${sets.join(
        ""
      )}</tbody></table>
<h3>Services</h3><table class="objects"><thead><tr><th>NAME</th><th>CLUSTER-IP</th><th>SELECTOR</th><th>PUBLISH NOT READY</th></tr></thead><tbody>${services.join(
        ""
      )}</tbody></table></section>`;
    })
    .join("");
}

function findPod(selection) {
  if (!selection) return null;
  const doc = state.model.docs.find((d) => d.number === selection.doc);
  const pod = doc?.pods.find((p) => p.metadata.name === selection.name);
  return pod ? { doc, pod } : null;
}

function renderPod() {
  const view = $("view-pod");
  if (state.model.docs.length === 0) {
    view.innerHTML = nothingToShow();
    return;
  }
  let found = findPod(state.pod);
  if (!found) {
    const doc = state.model.docs[0];
    found = { doc, pod: doc.pods[0] };
    state.pod = { doc: doc.number, name: doc.pods[0]?.metadata.name };
  }
  const options = state.model.docs
    .map(
      (doc) =>
        `<optgroup label="${esc(doc.name)}">${doc.pods
          .map((p) => {
            const selected = doc === found.doc && p === found.pod ? " selected" : "";
            return `<option value="${doc.number}:${esc(p.metadata.name)}"${selected}>${esc(p.metadata.name)}</option>`;
          })
          .join("")}</optgroup>`
    )
    .join("");
  view.innerHTML = `<div class="pod-picker"><label for="pod-select">Pod</label><select id="pod-select">${options}</select></div>${
    found.pod ? podDetail(found.pod) : ""
  }`;
}

function podDetail(pod) {
  const meta = pod.metadata ?? {};
  const spec = pod.spec ?? {};
  const hostname = spec.hostname ?? meta.name;
  const dns = spec.subdomain ? `${hostname}.${spec.subdomain}.${meta.namespace ?? "default"}` : null;
  const worker = label(pod, WORKER_INDEX);
  const identity = [
    ["Name", meta.name],
    ["Role", worker === "0" ? "leader" : "worker"],
    ["Group", label(pod, GROUP_INDEX)],
    ["Worker index", worker],
    ["Subgroup", label(pod, SUBGROUP_INDEX)],
    ["Created by", (meta.ownerReferences ?? []).map((o) => `${o.kind} ${o.name}`).join(", ")],
    ["Hostname", hostname],
    ["Subdomain", spec.subdomain],
    ["DNS name", dns ? `${dns} (${dns}.svc.cluster.local)` : null],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  return `<div class="pod-detail">
<dl class="identity">${identity.map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("")}</dl>
<h3>Labels</h3>${keyValues(meta.labels)}
<h3>Annotations</h3>${keyValues(meta.annotations)}
${containers.map(containerDetail).join("")}
<h3>Scheduling</h3>${scheduling(spec)}
<details><summary>Full pod YAML</summary><pre>${esc(stringify(pod))}</pre></details>
</div>`;
}

function keyValues(map) {
  const entries = Object.entries(map ?? {});
  if (entries.length === 0) return `<p class="muted">none</p>`;
  return `<table class="kv"><tbody>${entries
    .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join("")}</tbody></table>`;
}

function containerDetail(container) {
  const env = (container.env ?? []).map((e) => {
    const highlight = /^(LWS_|TPU_)/.test(e.name) ? ' class="lws-env"' : "";
    return `<tr${highlight}><th scope="row">${esc(e.name)}</th><td>${esc(envValue(e))}</td></tr>`;
  });
  const resources = container.resources ?? {};
  const amounts = (kind) =>
    Object.entries(resources[kind] ?? {})
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
  const requests = amounts("requests");
  const limits = amounts("limits");
  const ports = (container.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? "TCP"}`).join(", ");
  return `<h3>Container ${esc(container.name)} <span class="muted">${esc(container.image)}</span></h3>
<p class="muted">${requests ? `requests ${esc(requests)}` : "no requests"}${limits ? ` · limits ${esc(limits)}` : ""}${
    ports ? ` · ports ${esc(ports)}` : ""
  }</p>
${env.length ? `<table class="kv env"><tbody>${env.join("")}</tbody></table>` : `<p class="muted">no env</p>`}`;
}

function envValue(e) {
  if (e.value !== undefined) return e.value;
  const from = e.valueFrom ?? {};
  if (from.fieldRef) return `(from field ${from.fieldRef.fieldPath})`;
  if (from.resourceFieldRef) return `(from resource ${from.resourceFieldRef.resource})`;
  if (from.configMapKeyRef) return `(from ConfigMap ${from.configMapKeyRef.name} key ${from.configMapKeyRef.key})`;
  if (from.secretKeyRef) return `(from Secret ${from.secretKeyRef.name} key ${from.secretKeyRef.key})`;
  return "";
}

function selectorText(selector) {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k} = ${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    parts.push(`${e.key} ${e.operator}${e.values ? ` [${e.values.join(", ")}]` : ""}`);
  }
  return parts.join(" and ") || "any pod";
}

function scheduling(spec) {
  const lines = [];
  const affinity = spec.affinity ?? {};
  const terms = (kind, verb) => {
    const rules = affinity[kind] ?? {};
    for (const term of rules.requiredDuringSchedulingIgnoredDuringExecution ?? []) {
      lines.push(`<li><strong>must ${verb}</strong> a <code>${esc(term.topologyKey)}</code> domain with pods where <code>${esc(
        selectorText(term.labelSelector)
      )}</code></li>`);
    }
    for (const weighted of rules.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
      const term = weighted.podAffinityTerm ?? {};
      lines.push(`<li>prefers (weight ${esc(weighted.weight)}) to ${verb} a <code>${esc(
        term.topologyKey
      )}</code> domain with pods where <code>${esc(selectorText(term.labelSelector))}</code></li>`);
    }
  };
  terms("podAffinity", "share");
  terms("podAntiAffinity", "not share");
  const selector = Object.entries(spec.nodeSelector ?? {});
  if (selector.length) {
    lines.push(`<li>nodeSelector: only nodes with <code>${esc(selector.map(([k, v]) => `${k}=${v}`).join(", "))}</code></li>`);
  }
  if (affinity.nodeAffinity) {
    lines.push(`<li>node affinity:<pre>${esc(stringify(affinity.nodeAffinity))}</pre></li>`);
  }
  if (spec.tolerations?.length) {
    lines.push(`<li>tolerations:<pre>${esc(stringify(spec.tolerations))}</pre></li>`);
  }
  if (spec.schedulerName) lines.push(`<li>scheduler: <code>${esc(spec.schedulerName)}</code></li>`);
  return lines.length ? `<ul class="scheduling">${lines.join("")}</ul>` : `<p class="muted">no constraints: any node</p>`;
}

// ---------------------------------------------------------------------------------------------
// Placement

function readNodes() {
  const text = nodesEditor.value;
  if (text.trim() === "") return { nodes: [] };
  try {
    return { nodes: JSON.parse(text) };
  } catch (error) {
    return { error: `nodes: not JSON: ${error.message}` };
  }
}

function renderPlacement() {
  const view = $("placement-result");
  if (state.model.docs.length === 0) {
    view.innerHTML = nothingToShow();
    return;
  }
  const { nodes, error } = readNodes();
  if (error) {
    view.innerHTML = `<div class="problems" role="alert"><p>${esc(error)}</p></div>`;
    return;
  }
  const nodeList = Array.isArray(nodes) ? nodes : nodes?.items ?? [];
  state.placement ??= state.model.docs.map((doc) => ({ doc, answer: state.module.placement(doc.value, nodes) }));
  view.innerHTML = state.placement.map(({ doc, answer }) => placementSection(doc, answer, nodeList)).join("");
}

function nodeName(node) {
  return node?.metadata?.name ?? node?.name;
}

function nodeLabels(node) {
  return node?.metadata?.labels ?? node?.labels ?? {};
}

function placementSection(doc, answer, nodeList) {
  const problems = (answer.problems ?? []).map((p) => `<li><code class="path">${esc(p.path)}</code>: ${esc(p.message)}</li>`);
  const placed = answer.groups.filter((g) => g.placed).length;
  const key = answer.exclusiveTopology ?? answer.subgroupExclusiveTopology;
  const rule = [
    answer.exclusiveTopology ? `exclusive topology <code>${esc(answer.exclusiveTopology)}</code>` : null,
    answer.subgroupExclusiveTopology ? `subgroup-exclusive topology <code>${esc(answer.subgroupExclusiveTopology)}</code>` : null,
  ].filter(Boolean);
  const unplaced = answer.groups
    .filter((g) => !g.placed)
    .map((g) => `<li>group ${g.index} cannot be placed: ${esc(g.reason)}</li>`);
  const rows = answer.groups.map((g) => {
    const nodes = [...new Set(g.pods.map((p) => p.node).filter(Boolean))];
    const domains = [g.domain ? esc(g.domain) : ""];
    for (const sub of g.subgroups ?? []) {
      domains.push(`<span class="muted">subgroup ${sub.index}:</span> ${esc(sub.domain ?? "none")}`);
    }
    return `<tr class="${g.placed ? "" : "unplaced"}"><td>${g.index}</td><td>${domains.filter(Boolean).join("<br>")}</td><td>${g.placed ? "placed" : "<strong>not placed</strong>"}</td><td>${
      g.placed ? esc(nodes.join(", ")) : esc(g.reason)
    }</td></tr>`;
  });
  return `<section class="lws placement" data-lws="${esc(doc.name)}">${heading(doc)}
<p class="summary">${rule.length ? rule.join(" and ") : "no exclusive topology: pods spread over the least-loaded nodes"} · ${placed} of ${
    answer.groups.length
  } groups placed on ${nodeList.length} nodes</p>
${problems.length ? `<div class="problems"><ul>${problems.join("")}</ul></div>` : ""}
${unplaced.length ? `<div class="unplaced-list" role="alert"><ul>${unplaced.join("")}</ul></div>` : ""}
<table class="placement-table"><thead><tr><th>GROUP</th><th>DOMAIN</th><th>STATUS</th><th>NODES</th></tr></thead><tbody>${rows.join(
    ""
  )}</tbody></table>
${domainGrid(answer, nodeList, key)}</section>`;
}

/** The nodes, boxed by their value of the topology label, with the pods each one got. */
function domainGrid(answer, nodeList, key) {
  const podsOn = new Map();
  for (const group of answer.groups) {
    for (const pod of group.pods) {
      if (!pod.node) continue;
      if (!podsOn.has(pod.node)) podsOn.set(pod.node, []);
      podsOn.get(pod.node).push({ name: pod.name, group: group.index });
    }
  }
  const domains = new Map();
  for (const node of nodeList) {
    const name = nodeName(node);
    if (!name) continue;
    const domain = key ? nodeLabels(node)[key] ?? `(no ${key} label)` : "nodes";
    if (!domains.has(domain)) domains.set(domain, []);
    domains.get(domain).push(name);
  }
  const boxes = [...domains.entries()]
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([domain, names]) => {
      const cards = names.sort().map((name) => {
        const pods = podsOn.get(name) ?? [];
        const chips = pods
          .map((p) => `<span class="chip g${p.group % 8}" title="group ${p.group}">${esc(p.name)}</span>`)
          .join("");
        return `<div class="node"><div class="node-name">${esc(name)} <span class="muted">${pods.length} pod${
          pods.length === 1 ? "" : "s"
        }</span></div>${chips}</div>`;
      });
      return `<div class="domain"><h4>${key ? `${esc(key)}=` : ""}${esc(domain)}</h4><div class="nodes">${cards.join("")}</div></div>`;
    });
  return `<div class="domains">${boxes.join("")}</div>`;
}

// ---------------------------------------------------------------------------------------------
// Controls

function selectTab(name, focus = false) {
  state.tab = name;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  if (state.model) renderTab();
}

function goToLine(line) {
  const lines = editor.value.split("\n");
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  const end = start + (lines[line - 1]?.length ?? 0);
  editor.focus();
  editor.setSelectionRange(start, end);
  // Scroll the line into view: the textarea has a fixed line height.
  const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 18;
  editor.scrollTop = Math.max(0, (line - 4) * lineHeight);
}

function download() {
  const items = state.model.docs.flatMap((d) => d.items);
  if (items.length === 0) return;
  const text = items.map((item) => stringify(item)).join("---\n");
  const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `${state.model.docs[0].name || "lws"}-expanded.yaml`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function loadExample(name) {
  const response = await fetch(`../examples/${name}`);
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  editor.value = await response.text();
  update(editor.value);
}

async function openFile(file) {
  editor.value = await file.text();
  update(editor.value);
}

function readFragment() {
  const fragment = location.hash.slice(1);
  if (!fragment) return null;
  try {
    return decodeFragment(fragment);
  } catch {
    return "# The link's manifest could not be decoded (it is not base64url UTF-8).\n";
  }
}

function wire() {
  editor.addEventListener("input", () => update(editor.value));
  nodesEditor.addEventListener("input", () => {
    state.placement = null;
    if (state.tab === "placement") renderPlacement();
  });
  $("generate").addEventListener("click", () => {
    const racks = Math.max(0, Math.min(64, Number($("racks").value) || 0));
    const perRack = Math.max(0, Math.min(64, Number($("per-rack").value) || 0));
    nodesEditor.value = formatNodes(rackNodes(racks, perRack));
    state.placement = null;
    renderPlacement();
  });
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const tabs = [...document.querySelectorAll('[role="tab"]')];
      const at = tabs.indexOf(tab);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      selectTab(tabs[(to + tabs.length) % tabs.length].dataset.tab, true);
    });
  }
  document.addEventListener("click", (event) => {
    const podLink = event.target.closest(".pod-link");
    if (podLink) {
      state.pod = { doc: Number(podLink.dataset.doc), name: podLink.dataset.pod };
      selectTab("pod", true);
      return;
    }
    const line = event.target.closest("button.line");
    if (line) goToLine(Number(line.dataset.line));
  });
  document.addEventListener("change", (event) => {
    if (event.target.id === "pod-select") {
      const [doc, ...name] = event.target.value.split(":");
      state.pod = { doc: Number(doc), name: name.join(":") };
      renderPod();
      $("pod-select").focus();
    }
  });
  const examples = $("example");
  examples.innerHTML =
    `<option value="">Load an example…</option>` + EXAMPLES.map((e) => `<option>${esc(e)}</option>`).join("");
  examples.addEventListener("change", () => {
    if (examples.value) loadExample(examples.value).catch(showFailure);
  });
  $("open").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) openFile(file).catch(showFailure);
    event.target.value = "";
  });
  $("download").addEventListener("click", download);
  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      $("status").textContent = "Link copied: it carries the manifest.";
    } catch {
      $("status").textContent = "Copy the address bar: the link carries the manifest.";
    }
  });
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    const [file] = event.dataTransfer?.files ?? [];
    if (file) openFile(file).catch(showFailure);
  });
  window.addEventListener("hashchange", () => {
    const text = readFragment();
    if (text !== null && text !== editor.value) {
      editor.value = text;
      update(text, { writeFragment: false });
    }
  });
}

function showFailure(error) {
  $("status").textContent = `Error: ${error.message}`;
}

async function start() {
  wire();
  nodesEditor.value = formatNodes(rackNodes(4, 4));
  state.module = await load();
  const fromLink = readFragment();
  if (fromLink !== null) {
    editor.value = fromLink;
    update(fromLink, { writeFragment: false });
  } else {
    await loadExample("lws.yaml");
  }
  document.body.dataset.ready = "true";
}

// For tests and the benchmark: the last timings and a way to drive an update.
window.lwsPreview = { state, update };

start().catch((error) => {
  showFailure(error);
  document.body.dataset.ready = "error";
});
