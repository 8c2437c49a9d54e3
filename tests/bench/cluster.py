#!/usr/bin/env python3
"""End-to-end benchmark on the local cluster: our controller, upstream LWS (the peer) and the floor
(the same StatefulSets and Services applied with no LWS controller) take turns, interleaved, each in a
fresh namespace, everything deleted and waited for between turns. Writes target/bench/cluster.json
(every turn plus medians); summarize.py folds it into the one table. BENCHMARKS.md says what each
figure means.

Env: BENCH_ROUNDS (3), BENCH_GROUPS (100), BENCH_SIZE (8), BENCH_TURNS ("ours,peer,floor"),
BENCH_ROLLS ("default,surge"; empty skips the rolling updates), BENCH_WEBHOOK_RATE (30 per s),
BENCH_WEBHOOK_COUNT (200), BENCH_SLOT_WAIT (seconds to wait for someone else's controller to stop,
900), BENCH_TIMEOUT (seconds per phase, 900), BENCH_PERF ("ours" and/or "peer": record each such
turn with `perf record -g` into target/bench/perf-KIND-ROUND.data; it slows the controller, so it is
for finding where time goes, not for the table).

Only one LWS controller runs at a time: a turn starts ours with tests/e2e/controller.sh up and the
peer with tests/cluster/peer-up.sh, and stops it before the next. A controller this script did not
start is never stopped: the script waits for it (BENCH_SLOT_WAIT) and gives up otherwise.
"""

import base64
import http.client
import json
import os
import pathlib
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE = ROOT / ".cluster"
OUT = ROOT / "target" / "bench"
LWS = pathlib.Path(os.environ.get("LWS", ROOT / "target" / "release" / "lws"))

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
GROUPS = int(os.environ.get("BENCH_GROUPS", "100"))
SIZE = int(os.environ.get("BENCH_SIZE", "8"))
TURNS = [t for t in os.environ.get("BENCH_TURNS", "ours,peer,floor").split(",") if t]
ROLLS = [r for r in os.environ.get("BENCH_ROLLS", "default,surge").split(",") if r]
WEBHOOK_RATE = float(os.environ.get("BENCH_WEBHOOK_RATE", "30"))
WEBHOOK_COUNT = int(os.environ.get("BENCH_WEBHOOK_COUNT", "200"))
SLOT_WAIT = float(os.environ.get("BENCH_SLOT_WAIT", "900"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "900"))
PERF = [k for k in os.environ.get("BENCH_PERF", "").split(",") if k]
POLL = 0.2

LWS_API = "/apis/leaderworkerset.x-k8s.io/v1"
NAME = "bench"
POD_WEBHOOKS = ("mpod.kb.io", "vpod.kb.io")


def log(message):
    print(f"[bench-cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A turn that could not be measured (timeout, controller gone, API error)."""


# --- a small Kubernetes client: one keep-alive HTTPS connection per thread -----------------------

class Kube:
    def __init__(self, kubeconfig):
        config = json.loads(subprocess.run(
            [kubectl(), "--kubeconfig", kubeconfig, "config", "view", "--raw", "--minify", "-o", "json"],
            check=True, capture_output=True, text=True).stdout)
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.tmp = tempfile.mkdtemp(prefix="lws-bench-")
        os.chmod(self.tmp, 0o700)

        def write(name, data):
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
            return path

        self.context = ssl.create_default_context(cafile=write("ca.crt", cluster["certificate-authority-data"]))
        self.context.load_cert_chain(write("tls.crt", user["client-certificate-data"]),
                                     write("tls.key", user["client-key-data"]))
        self.local = threading.local()

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)
            self.local.conn = conn
        return conn

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202), text=False):
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        headers = {"Accept": "text/plain" if text else "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(3):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        if response.status not in ok:
            raise ApiError(method, path, response.status, payload)
        if text:
            return payload.decode()
        return json.loads(payload) if payload else None

    def get(self, path, ok=(200,)):
        return self.request("GET", path, ok=ok)

    def exists(self, path):
        try:
            self.get(path)
            return True
        except ApiError as e:
            if e.status == 404:
                return False
            raise


class ApiError(Exception):
    def __init__(self, method, path, status, payload):
        self.status = status
        super().__init__(f"{method} {path}: HTTP {status}: {payload[:300]!r}")


def kubectl():
    env = load_env()
    return env.get("KUBECTL") or shutil.which("kubectl") or "kubectl"


def load_env():
    env = {}
    path = STATE / "env"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = value
    return env


# --- the process under test: CPU and memory from /proc -------------------------------------------

def live(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_from(path):
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if live(pid) else None


def tree(pid):
    """The process and its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid):
    """utime + stime of the process tree (and of its reaped children), in seconds."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def smaps_top(pid, top=6):
    """The mappings holding the most resident memory: where a peak lives (heap, anonymous
    reservations such as wasm linear memories, the binary)."""
    mappings, current = [], None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and not head[0].endswith(":"):
                    low, high = (int(x, 16) for x in head[0].split("-"))
                    current = {"name": head[5] if len(head) > 5 else "[anon]", "size_mb": (high - low) / 2**20,
                               "rss_mb": 0.0}
                    mappings.append(current)
                elif head[0] == "Rss:" and current is not None:
                    current["rss_mb"] = int(head[1]) / 1024
    except OSError:
        return []
    by_name = {}
    for m in mappings:
        key = m["name"]
        if key == "[anon]":
            size = m["size_mb"]
            key = ("[anon ≥1GiB: wasm memory reservations]" if size >= 1024 else
                   "[anon 64MiB: malloc arenas]" if 60 <= size <= 64 else
                   "[anon <60MiB]" if size < 60 else "[anon 64MiB-1GiB]")
        entry = by_name.setdefault(key, {"mappings": 0, "size_mb": 0.0, "rss_mb": 0.0})
        entry["mappings"] += 1
        entry["size_mb"] += m["size_mb"]
        entry["rss_mb"] += m["rss_mb"]
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1]["rss_mb"])[:top]
    return [{"name": k, **{f: round(v, 1) if isinstance(v, float) else v for f, v in e.items()}} for k, e in ranked]


class RssSampler(threading.Thread):
    """Samples the tree's VmRSS every 0.25 s; peak() also takes the main process's VmHWM. At each
    new peak (10% above the last breakdown) it keeps smaps_top of the main process."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()
        self.breakdown, self.breakdown_kb, self.threads = [], 0, 0

    def run(self):
        while not self.stop.is_set():
            rss = sum(status_kb(p, "VmRSS") for p in tree(self.pid))
            self.peak_kb = max(self.peak_kb, rss)
            if rss > 1.1 * self.breakdown_kb:
                self.breakdown, self.breakdown_kb = smaps_top(self.pid), rss
                self.threads = status_kb(self.pid, "Threads")
            self.stop.wait(0.25)

    def peak_mb(self):
        return max(self.peak_kb, status_kb(self.pid, "VmHWM")) / 1024


# --- the apiserver's webhook histogram -------------------------------------------------------------

def webhook_histogram(kube):
    """{webhook name: (sum seconds, count)} of apiserver_admission_webhook_admission_duration_seconds."""
    text = kube.request("GET", "/metrics", ok=(200,), text=True)
    out = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_admission_webhook_admission_duration_seconds_"):
            continue
        head, value = line.rsplit(" ", 1)
        metric, labels = head.split("{", 1)
        name = labels.split('name="', 1)[1].split('"', 1)[0]
        total, count = out.get(name, (0.0, 0))
        if metric.endswith("_sum"):
            out[name] = (total + float(value), count)
        elif metric.endswith("_count"):
            out[name] = (total, count + int(float(value)))
    return out


# --- the workload ---------------------------------------------------------------------------------

def lws_manifest(namespace):
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "replicas": GROUPS,
            "leaderWorkerTemplate": {
                "size": SIZE,
                "workerTemplate": {"spec": {"containers": [{
                    "name": "app", "image": "registry.example/bench:1",
                    "env": [{"name": "BENCH_ROLL", "value": "0"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }]}},
            },
        },
    }


def create_namespace(kube, kind, round_index):
    name = f"bench-{kind}-{round_index}-{int(time.time()) % 100000}"
    kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": name, "labels": {"lws-bench": "true"}}})
    # The ServiceAccount controller must have made "default" before pods can be created.
    wait_until(lambda: kube.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 60, "default SA")
    return name


def delete_namespace(kube, namespace):
    """Deletes the namespace and waits until it is gone. With no controller running, the
    StatefulSets go first (orphaning their pods) and the pods are removed with grace period 0, so
    the namespace controller has less to wait for (15-22 s for 800 pods, against ~25 s)."""
    started = time.monotonic()
    base = f"/api/v1/namespaces/{namespace}"
    try:
        kube.request("DELETE", f"/apis/apps/v1/namespaces/{namespace}/statefulsets", {
            "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}, ok=(200, 404))
        kube.request("DELETE", f"{base}/pods", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                "gracePeriodSeconds": 0}, ok=(200, 404))
    except ApiError as e:
        log(f"cleanup of {namespace}: {e}")
    try:
        kube.request("DELETE", f"/api/v1/namespaces/{namespace}", ok=(200, 202, 404))
    except ApiError:
        pass
    wait_until(lambda: not kube.exists(f"/api/v1/namespaces/{namespace}"), TIMEOUT, f"namespace {namespace} gone")
    return time.monotonic() - started


def wait_until(predicate, timeout, what, check=None):
    deadline = time.monotonic() + timeout
    while True:
        if check:
            check()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


def lws_status(kube, namespace):
    return kube.get(f"{LWS_API}/namespaces/{namespace}/leaderworkersets/{NAME}")


def pods_ready_with(kube, namespace, roll):
    """Every pod of the LWS exists, is Ready, not terminating, and carries BENCH_ROLL=roll."""
    pods = kube.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector=leaderworkerset.sigs.k8s.io%2Fname%3D{NAME}")
    good = 0
    for pod in pods["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))
        if ready and env.get("BENCH_ROLL") == str(roll):
            good += 1
    return good == GROUPS * SIZE


def time_to_ready(kube, namespace, check):
    started = time.monotonic()
    kube.request("POST", f"{LWS_API}/namespaces/{namespace}/leaderworkersets", lws_manifest(namespace))

    def ready():
        status = lws_status(kube, namespace).get("status") or {}
        return status.get("readyReplicas") == GROUPS
    wait_until(ready, TIMEOUT, f"{NAME} readyReplicas == {GROUPS}", check)
    elapsed = time.monotonic() - started
    if not pods_ready_with(kube, namespace, 0):
        raise Failed("readyReplicas reached but not every pod is Ready")
    return elapsed


def rolling_update(kube, namespace, roll, surge, check):
    """Change the template (BENCH_ROLL=roll); with surge, maxSurge 10 / maxUnavailable 10 too."""
    spec = lws_status(kube, namespace)["spec"]
    containers = spec["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"]
    containers[0]["env"] = [{"name": "BENCH_ROLL", "value": str(roll)}]
    patch = {"spec": {"leaderWorkerTemplate": {"workerTemplate": {"spec": {"containers": containers}}}}}
    if surge:
        patch["spec"]["rolloutStrategy"] = {"type": "RollingUpdate", "rollingUpdateConfiguration": {
            "maxSurge": 10, "maxUnavailable": 10}}
    started = time.monotonic()
    generation = kube.request("PATCH", f"{LWS_API}/namespaces/{namespace}/leaderworkersets/{NAME}", patch,
                              content_type="application/merge-patch+json")["metadata"]["generation"]
    seen = {"progress": False}

    def done():
        status = lws_status(kube, namespace).get("status") or {}
        ready, updated = status.get("readyReplicas"), status.get("updatedReplicas")
        # Either controller may still report the old revision right after the patch: count the
        # update as done only after it was seen in progress (or an observedGeneration caught up),
        # and only when every pod carries the new template.
        if updated != GROUPS or ready != GROUPS or status.get("replicas", GROUPS) != GROUPS:
            seen["progress"] = True
            return False
        observed = status.get("observedGeneration")
        if observed is not None and observed < generation:
            return False
        if not seen["progress"] and observed is None:
            # Upstream v0.9 has no status.observedGeneration: fall back to the pods themselves.
            pass
        return pods_ready_with(kube, namespace, roll)
    wait_until(done, TIMEOUT, f"rolling update {roll} done", check)
    return time.monotonic() - started


def floor_objects(namespace):
    """The leader and worker StatefulSets and the Services `lws expand` renders (no Pods: the
    StatefulSet controller makes them), without owner references (there is no LWS to own them)."""
    manifest = lws_manifest(namespace)
    out = subprocess.run([str(LWS), "expand", "-f", "-", "-o", "json"], input=json.dumps(manifest),
                         check=True, capture_output=True, text=True).stdout
    objects = []
    for item in json.loads(out)["items"]:
        if item["kind"] not in ("StatefulSet", "Service"):
            continue
        item["metadata"].pop("ownerReferences", None)
        item["metadata"]["namespace"] = namespace
        objects.append(item)
    return objects


def floor_time_to_ready(kube, namespace):
    objects = floor_objects(namespace)
    started = time.monotonic()
    for item in objects:
        plural = {"StatefulSet": "statefulsets", "Service": "services"}[item["kind"]]
        prefix = "/apis/apps/v1" if item["kind"] == "StatefulSet" else "/api/v1"
        kube.request("POST", f"{prefix}/namespaces/{namespace}/{plural}", item)

    def ready():
        sets = kube.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets")["items"]
        return sum((s.get("status") or {}).get("readyReplicas", 0) for s in sets) == GROUPS * SIZE
    wait_until(ready, TIMEOUT, f"{GROUPS * SIZE} pods Ready")
    elapsed = time.monotonic() - started
    if not pods_ready_with(kube, namespace, 0):
        raise Failed("floor: the StatefulSets are ready but not every pod is")
    return elapsed


# --- pod-webhook latency: a client creating labelled pods at a fixed rate (server dry-run) --------

def probe_pods(kube, namespace):
    """Pods as the StatefulSet controller sends them: a leader from the leader StatefulSet's template
    and a worker from group 0's worker StatefulSet, with names no pod has (dry-run never stores them)."""
    leader_sts = kube.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{NAME}")
    pods = []
    for sts, name_of in ((leader_sts, lambda i: f"{NAME}-{GROUPS + 1000 + i}"),):
        pods.append((sts, name_of))
    if SIZE > 1:
        worker_sts = kube.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{NAME}-0")
        pods.append((worker_sts, lambda i: f"{NAME}-0-{SIZE + 1000 + i}"))

    def make(i):
        sts, name_of = pods[i % len(pods)]
        template = json.loads(json.dumps(sts["spec"]["template"]))
        name = name_of(i)
        meta = template.setdefault("metadata", {})
        meta["name"] = name
        meta["namespace"] = namespace
        labels = meta.setdefault("labels", {})
        labels["statefulset.kubernetes.io/pod-name"] = name
        labels["apps.kubernetes.io/pod-index"] = name.rsplit("-", 1)[1]
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts["metadata"]["name"],
                                    "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
    return make


def webhook_latency(kube, namespace):
    """p50/p99 (ms) of dry-run pod creates at WEBHOOK_RATE per second, plus the apiserver's own
    mean time in each pod webhook over the same requests (from its histogram's sum and count)."""
    make = probe_pods(kube, namespace)
    bodies = [json.dumps(make(i)) for i in range(WEBHOOK_COUNT)]
    path = f"/api/v1/namespaces/{namespace}/pods?dryRun=All"
    before = webhook_histogram(kube)
    latencies, errors, lock = [], [], threading.Lock()
    start = time.monotonic() + 0.2
    next_index = iter(range(WEBHOOK_COUNT))

    def worker():
        for i in next_index:
            delay = start + i / WEBHOOK_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.monotonic()
            try:
                kube.request("POST", path, bodies[i])
            except (ApiError, OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(str(e))
                continue
            with lock:
                latencies.append(time.monotonic() - t0)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = webhook_histogram(kube)
    if errors:
        log(f"webhook probe: {len(errors)} errors, first: {errors[0]}")
    if len(latencies) < WEBHOOK_COUNT // 2:
        raise Failed(f"webhook probe: only {len(latencies)} of {WEBHOOK_COUNT} creates succeeded")
    latencies.sort()
    server = {}
    for name in POD_WEBHOOKS:
        total = after.get(name, (0.0, 0))[0] - before.get(name, (0.0, 0))[0]
        count = after.get(name, (0.0, 0))[1] - before.get(name, (0.0, 0))[1]
        server[name] = {"calls": count, "mean_ms": 1000 * total / count if count else None}
    return {"p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
            "requests": len(latencies), "errors": len(errors), "apiserver": server}


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


# --- controllers: start, stop, wait for the slot ------------------------------------------------

def other_controller():
    """A live LWS controller (ours or the peer), as (kind, pid), or None: the recorded pids, and
    any `lws controller` or upstream `manager` process (tests start some without a pid file)."""
    for kind, path in (("ours", STATE / "controller.pid"), ("peer", STATE / "peer.pid")):
        pid = pid_from(path)
        if pid:
            return kind, pid
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        program = os.path.basename(argv[0].decode(errors="replace"))
        if program == "lws" and len(argv) > 1 and argv[1] == b"controller" and live(int(entry)):
            return "ours (no pid file)", int(entry)
        if program == "manager" and b"/lws-" in argv[0] and live(int(entry)):
            return "peer (no pid file)", int(entry)
    return None


def wait_for_slot():
    deadline = time.monotonic() + SLOT_WAIT
    announced = False
    while (running := other_controller()) is not None:
        if not announced:
            log(f"{running[0]} controller pid {running[1]} runs (someone else's): waiting up to {SLOT_WAIT:.0f}s")
            announced = True
        if time.monotonic() > deadline:
            raise SystemExit(f"[bench-cluster] a controller we did not start still runs ({running}); giving up")
        time.sleep(5)


def run_quiet(command, what):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise Failed(f"{what} failed (rc {result.returncode}): {result.stderr.strip()[-800:]}")


def start(kind):
    if kind == "ours":
        run_quiet(["bash", "tests/e2e/controller.sh", "up"], "controller.sh up")
        pid = pid_from(STATE / "controller.pid")
    else:
        run_quiet(["bash", "tests/cluster/peer-up.sh"], "peer-up")
        pid = pid_from(STATE / "peer.pid")
    if not pid:
        raise Failed(f"{kind}: no live pid after start")
    return pid


def stop(kind, kube=None):
    if kind == "ours":
        run_quiet(["bash", "tests/e2e/controller.sh", "down"], "controller.sh down")
    elif kind == "peer":
        run_quiet(["bash", "tests/cluster/peer-down.sh"], "peer-down")


def clear_webhooks():
    """The floor runs with no LWS webhooks: our controller's `install --dev` leaves its
    configurations registered after it stops, and their failurePolicy Fail would refuse the pods."""
    run_quiet(["bash", "tests/cluster/peer-down.sh"], "removing webhook configurations")


def copy_log(kind, round_index):
    source = STATE / "logs" / ("controller.log" if kind == "ours" else "lws-peer.log")
    if source.exists():
        (OUT / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, OUT / "logs" / f"{kind}-{round_index}.log")


def scrape_our_metrics():
    """Our controller's /metrics (reconcile counts, module call time), for BENCHMARKS.md's profile:
    HTTPS with the controller ServiceAccount's token (tests/e2e/controller.sh starts it so)."""
    port = int(os.environ.get("LWS_METRICS_PORT", "8443"))
    try:
        token = subprocess.run(
            [kubectl(), "create", "token", "lws-controller-manager", "-n", "lws-system"],
            capture_output=True, text=True, check=True).stdout.strip()
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # the metrics server's certificate is self-signed
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=insecure)
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        text = conn.getresponse().read().decode()
    except (OSError, subprocess.CalledProcessError):
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        if key.endswith("_bucket") or "_bucket{" in key:
            continue
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def controller_version(kind):
    if kind == "peer":
        env = {}
        for line in (STATE / "peer.env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        return "upstream LWS " + env.get("LWS_PEER_VERSION", "?")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(LWS.stat().st_mtime))
    return f"lws (HEAD {head.stdout.strip()}, binary built {built})"


def controller_turn(kube, kind, round_index):
    result = {"kind": kind, "round": round_index}
    namespace = None
    wait_for_slot()  # before the try: a controller we did not start is never stopped below
    try:
        pid = start(kind)
        def check():
            if not live(pid):
                raise Failed(f"{kind} controller (pid {pid}) exited during the turn")
        result["version"] = controller_version(kind)
        sampler = RssSampler(pid)
        sampler.start()
        perf = None
        if kind in PERF:
            perf = subprocess.Popen(["perf", "record", "-F", "199", "-g", "-p", str(pid), "-o",
                                     str(OUT / f"perf-{kind}-{round_index}.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        namespace = create_namespace(kube, kind, round_index)
        # Other LeaderWorkerSets on the cluster (someone else's) cost both controllers work too.
        result["other_lws"] = len(kube.get(f"{LWS_API}/leaderworkersets")["items"])
        cpu0 = cpu_seconds(pid)
        result["ready_s"] = time_to_ready(kube, namespace, check)
        result["cpu_ready_s"] = cpu_seconds(pid) - cpu0
        log(f"{kind} round {round_index}: ready in {result['ready_s']:.1f}s")
        result["webhook"] = webhook_latency(kube, namespace)
        log(f"{kind} round {round_index}: webhook p50 {result['webhook']['p50_ms']:.1f} ms, "
            f"p99 {result['webhook']['p99_ms']:.1f} ms")
        for roll_index, roll in enumerate(ROLLS, start=1):
            result[f"roll_{roll}_s"] = rolling_update(kube, namespace, roll_index, roll == "surge", check)
            log(f"{kind} round {round_index}: rolling update ({roll}) in {result[f'roll_{roll}_s']:.1f}s")
        check()
        result["cpu_s"] = cpu_seconds(pid) - cpu0
        sampler.stop.set()
        result["peak_rss_mb"] = sampler.peak_mb()
        result["rss_at_peak"] = {"threads": sampler.threads, "mappings": sampler.breakdown}
        if perf:
            perf.send_signal(2)
            perf.wait(60)
        if kind == "ours":
            result["metrics"] = scrape_our_metrics()
        log(f"{kind} round {round_index}: cpu {result['cpu_s']:.1f}s, peak rss {result['peak_rss_mb']:.0f} MB")
    except Failed as e:
        result["error"] = str(e)
        log(f"{kind} round {round_index}: FAILED: {e}")
    finally:
        stop(kind)
        copy_log(kind, round_index)
        if namespace:
            result["cleanup_s"] = delete_namespace(kube, namespace)
    return result


def floor_turn(kube, round_index):
    result = {"kind": "floor", "round": round_index}
    wait_for_slot()
    clear_webhooks()
    namespace = create_namespace(kube, "floor", round_index)
    try:
        result["ready_s"] = floor_time_to_ready(kube, namespace)
        log(f"floor round {round_index}: ready in {result['ready_s']:.1f}s")
        result["webhook"] = webhook_latency(kube, namespace)
        log(f"floor round {round_index}: pod create (no webhook) p50 {result['webhook']['p50_ms']:.1f} ms, "
            f"p99 {result['webhook']['p99_ms']:.1f} ms")
    except Failed as e:
        result["error"] = str(e)
        log(f"floor round {round_index}: FAILED: {e}")
    finally:
        result["cleanup_s"] = delete_namespace(kube, namespace)
    return result


# --- medians -------------------------------------------------------------------------------------

FIGURES = {
    "ready_s": lambda t: t.get("ready_s"),
    "roll_default_s": lambda t: t.get("roll_default_s"),
    "roll_surge_s": lambda t: t.get("roll_surge_s"),
    "cpu_s": lambda t: t.get("cpu_s"),
    "cpu_ready_s": lambda t: t.get("cpu_ready_s"),
    "peak_rss_mb": lambda t: t.get("peak_rss_mb"),
    "webhook_p50_ms": lambda t: (t.get("webhook") or {}).get("p50_ms"),
    "webhook_p99_ms": lambda t: (t.get("webhook") or {}).get("p99_ms"),
    "apiserver_mpod_mean_ms": lambda t: (((t.get("webhook") or {}).get("apiserver") or {}).get("mpod.kb.io") or {}).get("mean_ms"),
}


def medians(turns):
    out = {}
    for kind in ("ours", "peer", "floor"):
        mine = [t for t in turns if t["kind"] == kind and "error" not in t]
        figures = {}
        for figure, get in FIGURES.items():
            values = [v for v in (get(t) for t in mine) if v is not None]
            if values:
                figures[figure] = statistics.median(values)
        if figures:
            figures["turns"] = len(mine)
            out[kind] = figures
    return out


def machine():
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "mem_gib": round(mem_kb / 1024 / 1024, 1), "kernel": os.uname().release,
            "host": socket.gethostname()}


def main():
    env = load_env()
    kubeconfig = os.environ.get("KUBECONFIG") or env.get("KUBECONFIG")
    if not kubeconfig or not pathlib.Path(kubeconfig).exists():
        log("no cluster (.cluster/env): run make cluster-up first")
        return 1
    os.environ.setdefault("KUBECONFIG", kubeconfig)
    os.environ.setdefault("KUBECTL", kubectl())
    if "ours" in TURNS and not LWS.exists():
        log(f"{LWS} is missing: make build")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    kube = Kube(kubeconfig)
    started = time.monotonic()
    turns = []
    log(f"{ROUNDS} rounds of {', '.join(TURNS)}: {GROUPS} groups × size {SIZE}, rolls {ROLLS or 'none'}")
    try:
        for round_index in range(1, ROUNDS + 1):
            for kind in TURNS:
                turn = floor_turn(kube, round_index) if kind == "floor" else controller_turn(kube, kind, round_index)
                turns.append(turn)
                write(turns, started)
    finally:
        kube.close()
    write(turns, started)
    ok = medians(turns)
    return 0 if all(kind in ok for kind in TURNS) else 1


def write(turns, started):
    result = {"groups": GROUPS, "size": SIZE, "rounds": ROUNDS, "rolls": ROLLS,
              "webhook_probe": {"method": "server dry-run pod creates at a fixed rate", "rate_per_s": WEBHOOK_RATE,
                                "count": WEBHOOK_COUNT},
              "machine": machine(), "elapsed_s": time.monotonic() - started,
              "medians": medians(turns), "turns": turns}
    (OUT / "cluster.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
