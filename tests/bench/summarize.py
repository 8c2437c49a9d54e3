#!/usr/bin/env python3
"""Collects one `make bench` run into a table: criterion's medians (target/criterion), the
module's size, and the browser's timings (target/bench/browser.json, when present). Writes
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
            rows.append((f"`{operation}` {size}", fmt_time(native), fmt_time(in_wasm),
                         f"{ratio:.2f}×" if ratio else "n/a", "≤ 1.3×"))
    instantiate = median_ns("instantiate_wasm")
    results["instantiate_ns"] = instantiate
    rows.append(("instantiate + smallest call", "", fmt_time(instantiate), "", ""))
    browser = OUT / "browser.json"
    if browser.exists():
        results["browser"] = json.loads(browser.read_text())

    print("| figure | native | wasm | wasm / native | goal |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    module = results["module"]
    print(f"\nModule: {module['bytes']} bytes, {module['gzip_bytes']} gzipped (goal ≤ 250 KB gzipped).")
    if "browser" in results:
        print(f"Browser: {json.dumps(results['browser'])}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
