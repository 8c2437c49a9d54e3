#!/usr/bin/env python3
"""Collects one `make bench` run into a table: criterion's medians (target/criterion), the
module's size, the browser's timings (target/bench/browser.json, when present) and the cluster
turns (target/bench/cluster.json from cluster.py, when present: ours against upstream LWS and
against the floor). Writes
target/bench/results.json and prints the markdown table. Ratios, not absolute times, are the
figures to compare: a shared 2-core machine drifts."""

import gzip
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRITERION = ROOT / "target" / "criterion"
OUT = ROOT / "target" / "bench"


def median_ns(*parts):
    path = CRITERION.joinpath(*parts, "new", "estimates.json")
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt_time(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"


# Cluster figures: (key in cluster.json's medians, label, unit, goal vs upstream, goal vs floor).
CLUSTER_FIGURES = (
    ("ready_s", "time to ready", "s", 0.7, 1.2),
    ("roll_default_s", "rolling update, default strategy", "s", 0.7, None),
    ("roll_surge_s", "rolling update, maxSurge 10 / maxUnavailable 10", "s", 0.7, None),
    ("cpu_s", "controller CPU over the run", "s", None, None),
    ("peak_rss_mb", "controller peak RSS", "MB", 0.3, None),
    ("webhook_p50_ms", "pod create through the pod webhooks, p50", "ms", None, None),
    ("webhook_p99_ms", "pod create through the pod webhooks, p99", "ms", 0.5, None),
    ("apiserver_mpod_mean_ms", "mpod.kb.io mean, apiserver side", "ms", None, None),
)


def cluster_rows(rows):
    """Adds the cluster rows (ours vs upstream, ours vs floor) and returns the medians and ratios."""
    path = OUT / "cluster.json"
    if not path.exists():
        return {}
    cluster = json.loads(path.read_text())
    medians = cluster.get("medians", {})
    ours, peer, floor = (medians.get(k, {}) for k in ("ours", "peer", "floor"))
    shape = f"{cluster['groups']}×{cluster['size']}"
    figures = {}
    for key, label, unit, goal_peer, goal_floor in CLUSTER_FIGURES:
        mine = ours.get(key)
        entry = {"ours": mine, "upstream": peer.get(key), "floor": floor.get(key), "unit": unit}
        for name, other, goal in (("upstream", peer.get(key), goal_peer), ("floor", floor.get(key), goal_floor)):
            if other is None or (name == "floor" and key.startswith("cpu")):
                continue
            ratio = mine / other if mine is not None and other else None
            entry[f"ours_over_{name}"] = ratio
            entry[f"goal_vs_{name}"] = goal
            rows.append((f"{label}, {shape} (vs {name})", fmt_unit(other, unit), fmt_unit(mine, unit),
                         f"{ratio:.2f}×" if ratio else "n/a", f"≤ {goal}×" if goal else ""))
        figures[key] = entry
    return {"groups": cluster["groups"], "size": cluster["size"], "rounds": cluster["rounds"],
            "machine": cluster.get("machine"), "elapsed_s": cluster.get("elapsed_s"),
            "turns_ok": {k: v.get("turns") for k, v in medians.items()},
            "failed_turns": [f"{t['kind']} {t['round']}: {t['error']}" for t in cluster.get("turns", []) if "error" in t],
            "figures": figures}


def fmt_unit(value, unit):
    if value is None:
        return "n/a"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def cluster_note(cluster):
    m = cluster.get("machine") or {}
    note = (f"Cluster: medians of {cluster['rounds']} interleaved rounds (ours, upstream LWS, floor), "
            f"{cluster['groups']} groups × size {cluster['size']}; turns measured {cluster['turns_ok']}; "
            f"{m.get('nproc')} cores, {m.get('mem_gib')} GiB, kernel {m.get('kernel')}; "
            f"{(cluster.get('elapsed_s') or 0) / 60:.1f} min.")
    if cluster["failed_turns"]:
        note += "\nFailed turns: " + "; ".join(cluster["failed_turns"])
    return note


def main():
    rows, results = [], {"module": {}, "calls": {}}
    wasm = (ROOT / "target" / "lws.wasm").read_bytes()
    results["module"] = {"bytes": len(wasm), "gzip_bytes": len(gzip.compress(wasm, 9))}
    for operation in ("expand", "reconcile"):
        for size in ("3x4", "100x8"):
            native = median_ns(operation, "native", size)
            in_wasm = median_ns(operation, "wasm", size)
            ratio = in_wasm / native if native and in_wasm else None
            results["calls"][f"{operation}/{size}"] = {
                "native_ns": native, "wasm_ns": in_wasm, "wasm_over_native": ratio}
            rows.append((f"`{operation}` {size} (wasm vs native)", fmt_time(native), fmt_time(in_wasm),
                         f"{ratio:.2f}×" if ratio else "n/a", "≤ 1.3×"))
    instantiate = median_ns("instantiate_wasm")
    results["instantiate_ns"] = instantiate
    rows.append(("instantiate + smallest call", "", fmt_time(instantiate), "", ""))
    browser = OUT / "browser.json"
    if browser.exists():
        results["browser"] = json.loads(browser.read_text())

    results["cluster"] = cluster_rows(rows)

    print("| figure | baseline | ours | ours / baseline | goal |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    module = results["module"]
    print(f"\nModule: {module['bytes']} bytes, {module['gzip_bytes']} gzipped (goal ≤ 250 KB gzipped).")
    if "browser" in results:
        print(f"Browser: {json.dumps(results['browser'])}")
    if results["cluster"]:
        print(cluster_note(results["cluster"]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
