#!/usr/bin/env python3
"""Merges the Ginkgo JSON reports of `make conformance` (tests/conformance/run.sh) into one
table, spec by spec, ours vs upstream's own controller (the peer), and writes it as JSON.

    report.py OUT_DIR

OUT_DIR holds legs.json (the legs run.sh ran: name, controller, deployment, seconds, exit code,
report file) and each leg's Ginkgo report. A spec counts where its leg was meant to run it (the
metrics spec in the in-cluster legs, every other spec in the process legs). A spec that no leg
ran, or that was skipped or pending, is a failure: nothing passes by not running. Upstream's own
e2e run leaves out the gang-scheduling specs (`--skip`, they need Volcano); so does this one, and
they are not counted. Exit 1 when any spec did not pass for ours.
"""

import json
import os
import re
import sys

OURS, PEER = "ours", "peer"



def name_of(spec):
    parts = list(spec.get("ContainerHierarchyTexts") or []) + [spec.get("LeafNodeText", "")]
    return " ".join(p for p in parts if p)


def short(name):
    """The spec's own text, without the suite's Describe text."""
    return name.removeprefix("leaderWorkerSet e2e tests ")


def first_line(text):
    text = (text or "").strip()
    return text.splitlines()[0][:300] if text else ""


def load_leg(out_dir, leg):
    """Spec name -> result for each It (and suite node failures) of one leg's report."""
    path = os.path.join(out_dir, leg["report"])
    results, suite_failure = {}, ""
    if not os.path.exists(path):
        return results, f"no report ({leg['name']} exited {leg['rc']}; log {leg['log']})"
    for suite in json.load(open(path)):
        for spec in suite.get("SpecReports") or []:
            kind = spec.get("LeafNodeType")
            failure = spec.get("Failure") or {}
            if kind != "It":
                if spec.get("State") not in ("passed", "skipped"):
                    suite_failure = f"{kind} {spec.get('State')}: {first_line(failure.get('Message'))}"
                continue
            steps = [e.get("Message") for e in spec.get("SpecEvents") or [] if e.get("SpecEventType") == "By"]
            why = first_line(failure.get("Message"))
            if failure.get("ForwardedPanic"):
                why += f": {first_line(failure['ForwardedPanic'])}"
            if why and steps:
                why += f" (at step \"{steps[-1]}\")"
            results[name_of(spec)] = {
                "state": spec.get("State"),
                "seconds": round(spec.get("RunTime", 0) / 1e9, 1),
                "failure": why,
                "where": f"{leg['deployment']} ({leg['name']})",
            }
    return results, suite_failure


def main():
    out_dir = sys.argv[1]
    meta = json.load(open(os.path.join(out_dir, "legs.json")))
    legs = meta["legs"]
    specs = {}  # name -> {controller: result}
    suite_failures = {}
    for leg in legs:
        results, suite_failure = load_leg(out_dir, leg)
        if suite_failure:
            suite_failures.setdefault(leg["controller"], []).append(f"{leg['name']}: {suite_failure}")
        for name, result in results.items():
            if meta["gang"] in name:
                continue
            meant_here = (meta["metrics_spec"] in name) == (leg["deployment"] == "in-cluster")
            entry = specs.setdefault(name, {})
            if meant_here:
                entry[leg["controller"]] = result
            elif result["state"] not in ("skipped",):
                entry.setdefault("elsewhere", []).append(result)
    if meta.get("focus"):
        specs = {n: e for n, e in specs.items() if re.search(meta["focus"], n)}
    for name, entry in specs.items():
        for controller in (OURS, PEER):
            if controller not in entry:
                why = "not run"
                if meta["metrics_spec"] in name and not meta["real_nodes"]:
                    why = "not run: the in-cluster leg needs REAL_NODE=1 make cluster-up"
                elif suite_failures.get(controller):
                    why = "not run: " + "; ".join(suite_failures[controller])
                entry[controller] = {"state": "not run", "seconds": 0, "failure": why, "where": ""}
            elif entry[controller]["state"] in ("skipped", "pending"):
                entry[controller]["failure"] = (
                    f"{entry[controller]['state']}: counts as a failure ({entry[controller]['failure']})")

    names = sorted(specs)
    passed = {c: sum(specs[n][c]["state"] == "passed" for n in names) for c in (OURS, PEER)}
    width = max([len(short(n)) for n in names] + [20])
    print()
    print(f"upstream LWS {meta['version']} e2e suite: ours vs upstream's controller ({meta['peer_version']}),"
          f" KWOK pods ready after {meta['ready_delay']}, gone {meta.get('delete_delay', '0s')} after deletion")
    print(f"{'spec':<{width}}  {'ours':<8} {'peer':<8} where")
    for n in names:
        e = specs[n]
        where = "in-cluster" if meta["metrics_spec"] in n else "process"
        print(f"{short(n):<{width}}  {e[OURS]['state']:<8} {e[PEER]['state']:<8} {where}"
              f"  ({e[OURS]['seconds']} s / {e[PEER]['seconds']} s)")
    print(f"{'total':<{width}}  {passed[OURS]}/{len(names):<6} {passed[PEER]}/{len(names):<6}")
    for controller in (OURS, PEER):
        for n in names:
            r = specs[n][controller]
            if r["state"] != "passed":
                print(f"  {controller} FAILED {short(n)}: {r['failure']}")
    for leg in legs:
        print(f"  leg {leg['name']}: {leg['controller']} {leg['deployment']}, {leg['seconds']} s, exit {leg['rc']}")

    result = {
        "suite": f"sigs.k8s.io/lws@{meta['version']}/test/e2e",
        "peer_version": meta["peer_version"],
        "ready_delay": meta["ready_delay"],
        "delete_delay": meta.get("delete_delay"),
        "real_nodes": meta["real_nodes"],
        "legs": legs,
        "excluded": f"'{meta['gang']}' (upstream's e2e run skips them: they need Volcano)",
        "specs": [dict(name=n, **{c: specs[n][c] for c in (OURS, PEER)}) for n in names],
        "passed": passed,
        "known_failures": sorted(n for n in names if any(k in n for k in known_failures(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "known-failures.txt")))),
        "total": len(names),
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"  wrote {os.path.join(out_dir, 'results.json')}")
    known = known_failures(os.path.join(os.path.dirname(os.path.abspath(__file__)), "known-failures.txt"))
    failed = {n for n in names if specs[n][OURS]["state"] != "passed"}
    expected = {n for n in names if any(k in n for k in known)}
    for n in sorted(failed & expected):
        print(f"  ours KNOWN FAILURE {short(n)} (tests/conformance/known-failures.txt)")
    for n in sorted(expected - failed):
        print(f"  ours passes {short(n)}, listed in tests/conformance/known-failures.txt: remove it there")
    unmatched = [k for k in known if not any(k in n for n in names)]
    for k in unmatched:
        print(f"  known-failures.txt names no spec of this run: {k!r}")
    return 0 if names and failed == expected and not unmatched else 1


def known_failures(path):
    """Spec texts listed in known-failures.txt (comments and blank lines left out)."""
    with open(path) as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


if __name__ == "__main__":
    sys.exit(main())
