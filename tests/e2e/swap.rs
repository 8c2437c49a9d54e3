//! The live swap (issue 13, item 5): upstream LWS v0.9 (the peer, tests/cluster/peer-up.sh,
//! with its CRD and webhooks) and our controller take turns over the same LeaderWorkerSets on
//! the local cluster, both ways, and the hand-over recreates no pod and changes no StatefulSet.
//!
//! A hand-over stops the running controller and leaves its webhook configurations registered
//! (failurePolicy Fail: the API server refuses LWS and pod admissions until the next controller
//! registers its own, so no pod slips through unmutated), then starts the other one. For
//! `SWAP_WINDOW_SECS` (default 60) after the new controller is up, watches on every pod and
//! StatefulSet of the test's namespaces (`kubectl get -w`) see each object that existed; then
//! the before and after snapshots are compared: pod UIDs, StatefulSet UIDs and generations,
//! Service and ControllerRevision UIDs, each LWS's spec as the API server returns it (what CRD
//! defaulting on read gives) and its leader StatefulSet's template-revision-hash, which must
//! also be what `lws expand` computes for the stored object. Each case prints its counts.
//!
//! `make swap` runs this module alone (`--test-threads=1`: one controller at a time on the
//! cluster); `make e2e` skips it.

use crate::lifecycle::{leader_uids, leaders, trace, wait_rolled, wait_settled, Watch, ROLLOUT};
use crate::support::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CRD_NAME: &str = "leaderworkersets.leaderworkerset.x-k8s.io";
/// The local cluster's kwok makes a pod Ready this long after it is bound (tests/cluster/up.sh):
/// long enough that a rollout or a group recreation is still in flight at the hand-over.
const READY_DELAY: &str = "pod-ready.stage.kwok.x-k8s.io/delay";

/// How long the cluster is watched after each hand-over.
fn window() -> Duration {
    let secs = std::env::var("SWAP_WINDOW_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Side {
    Upstream,
    Ours,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Upstream => "upstream",
            Side::Ours => "ours",
        }
    }
}

/// Which CRD the incoming controller runs under.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Crd {
    /// Ours: `lws crd | kubectl apply --server-side --force-conflicts -f -`, what a user runs;
    /// upstream: peer-up.sh's server-side apply of its CRD.
    Applied,
    /// The CRD exactly as the incoming side ships it (`kubectl replace`): the other side's
    /// fields cannot linger as they may after a server-side apply by another field manager.
    Replaced,
    /// The cluster's CRD stays as it is.
    Kept,
}

/// Runs a script of the repository; panics with its output when it fails.
fn script(path: &str, args: &[&str], envs: &[(&str, &str)]) {
    let out = Command::new("bash")
        .arg(root().join(path))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        out.status.success(),
        "{path} {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Upstream's LeaderWorkerSet CRD file from the peer's module (tests/cluster/build.sh copies
/// `config/` next to the manager).
fn upstream_crd() -> Value {
    let out = Command::new("bash")
        .arg(root().join("tests/cluster/build.sh"))
        .arg("peer")
        .output()
        .expect("tests/cluster/build.sh peer");
    assert!(out.status.success(), "build.sh peer: {out:?}");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let cache = std::env::var("LWS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/lws"));
    let path = cache.join(format!(
        "bin/lws-{version}/config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml"
    ));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_norway::from_str(&text).unwrap()
}

/// Ours, as `lws crd` prints it.
fn our_crd() -> Value {
    let out = lws_cli().args(["crd", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "lws crd: {out:?}");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"][0].clone()
}

/// Makes the cluster's CRD exactly `crd` (created when missing) and waits until it is served.
fn replace_crd(crd: &Value) {
    let mut crd = crd.clone();
    match run(&["get", "crd", CRD_NAME, "-o", "json"], None) {
        Ok(live) => {
            let live: Value = serde_json::from_str(&live).unwrap();
            crd["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
            must(&["replace", "-f", "-"], Some(&crd.to_string()));
        }
        Err(_) => {
            must(&["create", "-f", "-"], Some(&crd.to_string()));
        }
    }
    must(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{CRD_NAME}"),
        ],
        None,
    );
}

/// The schema of each version of the live CRD, by version name.
fn live_schemas() -> BTreeMap<String, Value> {
    schemas(&serde_json::from_str(&must(&["get", "crd", CRD_NAME, "-o", "json"], None)).unwrap())
}

fn schemas(crd: &Value) -> BTreeMap<String, Value> {
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            (
                v["name"].as_str().unwrap_or("").to_string(),
                v["schema"].clone(),
            )
        })
        .collect()
}

/// The JSON paths at which `a` and `b` differ (at most `limit`).
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                differences(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                    limit,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{path}[{i}]"), out, limit);
            }
        }
        _ => out.push(format!("{path}: {a} vs {b}")),
    }
}

/// Stops both controllers when dropped, so a failed test leaves none running.
struct Turns {
    running: Side,
}

impl Turns {
    /// No controller of either side runs, the CRD is set up as `crd` says for `side`, and
    /// `side` runs.
    fn start(side: Side, crd: Crd) -> Turns {
        script("tests/e2e/controller.sh", &["down"], &[]);
        script("tests/cluster/peer-down.sh", &[], &[]);
        bring_up(side, crd);
        Turns { running: side }
    }

    /// Hands the cluster to the other side under `crd`.
    fn hand_over(&mut self, crd: Crd) {
        let to = match self.running {
            Side::Upstream => {
                script("tests/cluster/peer-down.sh", &["--keep-webhooks"], &[]);
                Side::Ours
            }
            Side::Ours => {
                script("tests/e2e/controller.sh", &["down"], &[]);
                Side::Upstream
            }
        };
        bring_up(to, crd);
        self.running = to;
    }
}

fn bring_up(side: Side, crd: Crd) {
    match (side, crd) {
        (Side::Ours, Crd::Applied) => {
            let crd = our_crd();
            must(
                &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                Some(&crd.to_string()),
            );
        }
        (Side::Ours, Crd::Replaced) => replace_crd(&our_crd()),
        (Side::Upstream, Crd::Replaced) => replace_crd(&upstream_crd()),
        (Side::Upstream, Crd::Applied) | (_, Crd::Kept) => {}
    }
    match side {
        Side::Ours => script(
            "tests/e2e/controller.sh",
            &["up"],
            &[("LWS_INSTALL_CRD", "0")],
        ),
        Side::Upstream => {
            let keep = if crd == Crd::Applied { "0" } else { "1" };
            script(
                "tests/cluster/peer-up.sh",
                &[],
                &[("LWS_PEER_KEEP_CRD", keep)],
            );
        }
    }
}

impl Drop for Turns {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("tests/e2e/controller.sh"))
            .arg("down")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("bash")
            .arg(root().join("tests/cluster/peer-down.sh"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One LeaderWorkerSet of a test: where it lives and its shape.
#[derive(Clone)]
struct Lws {
    ns: String,
    name: String,
    replicas: i64,
    size: i64,
}

impl Lws {
    fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

/// Creates `object` in `ns` (it must be accepted) and returns its handle.
fn create(ns: &Namespace, object: &Value) -> Lws {
    if let Err(e) = ns.apply(object) {
        panic!("{} refused in {}: {e}", name(object), ns.name);
    }
    let spec = &object["spec"];
    Lws {
        ns: ns.name.clone(),
        name: name(object).to_string(),
        replicas: spec["replicas"].as_i64().unwrap_or(1),
        size: spec["leaderWorkerTemplate"]["size"].as_i64().unwrap_or(1),
    }
}

/// Waits until every LWS in `all` (of namespace `ns`) has all its pods Running and its groups
/// ready.
fn settle(ns: &Namespace, all: &[&Lws]) {
    for l in all {
        wait_settled(ns, &l.name, l.replicas, l.size);
    }
}

/// The LWS an object belongs to: its name label, else its LeaderWorkerSet owner.
fn owner_lws(object: &Value) -> Option<String> {
    if object["kind"] == "LeaderWorkerSet" {
        return Some(name(object).to_string());
    }
    label(object, NAME_LABEL).map(str::to_string).or_else(|| {
        object["metadata"]["ownerReferences"]
            .as_array()?
            .iter()
            .find(|o| o["kind"] == "LeaderWorkerSet")
            .and_then(|o| o["name"].as_str().map(str::to_string))
    })
}

/// What a hand-over must not change, by "ns/lws".
#[derive(Default, Clone)]
struct Snapshot {
    /// "ns/lws" -> pod name -> uid (pods being deleted left out).
    pods: BTreeMap<String, BTreeMap<String, String>>,
    /// "ns/lws" -> StatefulSet name -> (uid, generation).
    sts: BTreeMap<String, BTreeMap<String, (String, i64)>>,
    /// "ns/lws" -> "Service/name" or "ControllerRevision/name" -> uid.
    others: BTreeMap<String, BTreeMap<String, String>>,
    /// "ns/lws" -> the LWS as the API server returns it: its spec, uid and generation.
    lws: BTreeMap<String, Value>,
    /// "ns/lws" -> the leader StatefulSet's template-revision-hash.
    hashes: BTreeMap<String, String>,
}

fn snapshot(namespaces: &BTreeSet<String>) -> Snapshot {
    let mut s = Snapshot::default();
    for ns in namespaces {
        let list: Value = serde_json::from_str(&must(
            &[
                "-n",
                ns,
                "get",
                "pods,statefulsets,services,controllerrevisions,leaderworkersets",
                "-o",
                "json",
            ],
            None,
        ))
        .unwrap();
        for object in list["items"].as_array().into_iter().flatten() {
            let Some(lws) = owner_lws(object) else {
                continue;
            };
            let key = format!("{ns}/{lws}");
            let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
            let object_name = name(object).to_string();
            match object["kind"].as_str().unwrap_or("") {
                "Pod" if object["metadata"]["deletionTimestamp"].is_null() => {
                    s.pods.entry(key).or_default().insert(object_name, uid);
                }
                "StatefulSet" => {
                    if object_name == lws {
                        if let Some(hash) = label(object, REVISION) {
                            s.hashes.insert(key.clone(), hash.to_string());
                        }
                    }
                    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
                    s.sts
                        .entry(key)
                        .or_default()
                        .insert(object_name, (uid, generation));
                }
                kind @ ("Service" | "ControllerRevision") => {
                    s.others
                        .entry(key)
                        .or_default()
                        .insert(format!("{kind}/{object_name}"), uid);
                }
                "LeaderWorkerSet" => {
                    s.lws.insert(
                        key,
                        json!({"spec": object["spec"], "uid": uid,
                               "generation": object["metadata"]["generation"]}),
                    );
                }
                _ => {}
            }
        }
    }
    s
}

const REVISION: &str = "leaderworkerset.sigs.k8s.io/template-revision-hash";

/// The template-revision-hash `lws expand` computes for the LWS `key` as the API server
/// returns it now: the revision ours would give the stored object.
fn expand_hash(key: &str) -> Option<String> {
    let (ns, lws) = key.split_once('/')?;
    let object = must(&["-n", ns, "get", "lws", lws, "-o", "json"], None);
    let mut child = lws_cli()
        .args(["expand", "-f", "-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(object.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        eprintln!(
            "lws expand {key}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    list["items"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && name(o) == lws)
        .and_then(|o| label(o, REVISION).map(str::to_string))
}

/// The counts of one case over one hand-over, and what differed.
#[derive(Default)]
struct Counts {
    pods_before: usize,
    pods_after: usize,
    uids_unchanged: usize,
    sts: usize,
    sts_unchanged: usize,
    others: usize,
    others_unchanged: usize,
    lws: usize,
    specs_unchanged: usize,
    hashes_unchanged: usize,
    hashes_expand: usize,
    recreated_in_window: usize,
    /// v0.11 fields that appeared or went with the CRD, e.g. `.spec.groupIdentity: null vs "Ordinal"`.
    v011_defaults: Vec<String>,
    problems: Vec<String>,
}

/// The v0.11 fields of `spec` (upstream-v0.11.md), which upstream v0.9's CRD lacks.
const V011_FIELDS: [&str; 5] = [
    "groupIdentity",
    "groupReplacementPolicy",
    "podTerminationPolicy",
    "scheduling",
    "maxGroupRestarts",
];

/// Compares `keys` ("ns/lws") between `before` and `after`; `seen` is every pod and
/// StatefulSet object the watches saw from before the hand-over to the end of the window.
fn compare(
    keys: &[String],
    before: &Snapshot,
    after: &Snapshot,
    seen_pods: &[Value],
    seen_sts: &[Value],
) -> Counts {
    let mut c = Counts::default();
    let empty = BTreeMap::new();
    for key in keys {
        let (pb, pa) = (
            before.pods.get(key).unwrap_or(&empty),
            after.pods.get(key).unwrap_or(&empty),
        );
        c.pods_before += pb.len();
        c.pods_after += pa.len();
        for (pod, uid) in pb {
            if pa.get(pod) == Some(uid) {
                c.uids_unchanged += 1;
            } else {
                c.problems
                    .push(format!("{key}: pod {pod} {uid} -> {:?}", pa.get(pod)));
            }
        }
        let empty_sts = BTreeMap::new();
        let (sb, sa) = (
            before.sts.get(key).unwrap_or(&empty_sts),
            after.sts.get(key).unwrap_or(&empty_sts),
        );
        c.sts += sb.len();
        for (sts, v) in sb {
            if sa.get(sts) == Some(v) {
                c.sts_unchanged += 1;
            } else {
                c.problems.push(format!(
                    "{key}: StatefulSet {sts} (uid, generation) {v:?} -> {:?}",
                    sa.get(sts)
                ));
            }
        }
        if sa.len() != sb.len() {
            c.problems.push(format!(
                "{key}: StatefulSets {:?} -> {:?}",
                sb.keys().collect::<Vec<_>>(),
                sa.keys().collect::<Vec<_>>()
            ));
        }
        let (ob, oa) = (
            before.others.get(key).unwrap_or(&empty),
            after.others.get(key).unwrap_or(&empty),
        );
        c.others += ob.len();
        for (o, uid) in ob {
            if oa.get(o) == Some(uid) {
                c.others_unchanged += 1;
            } else {
                c.problems
                    .push(format!("{key}: {o} {uid} -> {:?}", oa.get(o)));
            }
        }
        if oa.len() != ob.len() {
            c.problems.push(format!(
                "{key}: Services/ControllerRevisions {:?} -> {:?}",
                ob.keys().collect::<Vec<_>>(),
                oa.keys().collect::<Vec<_>>()
            ));
        }
        c.lws += 1;
        let (lb, la) = (&before.lws[key], &after.lws[key]);
        let mut diffs = Vec::new();
        differences(lb, la, "", &mut diffs, 16);
        // A v0.11 field appears with its default under a CRD that has it, and disappears under
        // one that does not (upstream-v0.11.md): not a change of the stored object. Anything
        // else, in particular inside the templates, is a default that differs between the CRDs.
        let (new_fields, other): (Vec<String>, Vec<String>) = diffs.into_iter().partition(|d| {
            V011_FIELDS
                .iter()
                .any(|f| d.starts_with(&format!(".spec.{f}:")))
        });
        if other.is_empty() {
            c.specs_unchanged += 1;
        } else {
            c.problems.push(format!(
                "{key}: the LWS as read changed (a CRD default?): {}",
                other.join("; ")
            ));
        }
        c.v011_defaults.extend(new_fields);
        if before.hashes.get(key) == after.hashes.get(key) {
            c.hashes_unchanged += 1;
        } else {
            c.problems.push(format!(
                "{key}: template-revision-hash {:?} -> {:?}",
                before.hashes.get(key),
                after.hashes.get(key)
            ));
        }
        let computed = expand_hash(key);
        if computed.is_some() && computed.as_ref() == after.hashes.get(key) {
            c.hashes_expand += 1;
        } else {
            c.problems.push(format!(
                "{key}: lws expand gives the stored object revision {computed:?}, its leader \
                 StatefulSet has {:?}",
                after.hashes.get(key)
            ));
        }
        let (ns, lws) = key.split_once('/').unwrap();
        let mine =
            |o: &&Value| o["metadata"]["namespace"] == ns && owner_lws(o).as_deref() == Some(lws);
        for (kind, seen) in [("pod", seen_pods), ("StatefulSet", seen_sts)] {
            let mut uids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut generations: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
            for o in seen.iter().filter(mine) {
                uids.entry(name(o).to_string())
                    .or_default()
                    .insert(o["metadata"]["uid"].as_str().unwrap_or("").to_string());
                generations
                    .entry(name(o).to_string())
                    .or_default()
                    .insert(o["metadata"]["generation"].as_i64().unwrap_or(0));
            }
            for (n, u) in &uids {
                if u.len() > 1 {
                    c.recreated_in_window += 1;
                    c.problems
                        .push(format!("{key}: the watch saw {kind} {n} with uids {u:?}"));
                }
            }
            if kind == "StatefulSet" {
                for (n, g) in &generations {
                    if g.len() > 1 {
                        c.problems.push(format!(
                            "{key}: the watch saw StatefulSet {n} at generations {g:?}"
                        ));
                    }
                }
            }
        }
    }
    c
}

impl Counts {
    fn print(&self, case: &str, direction: &str) {
        eprintln!(
            "[swap] {case}, {direction}: pods before {} after {}; UIDs unchanged {}/{}; \
             StatefulSet generations unchanged {}/{}; Services and ControllerRevisions unchanged \
             {}/{}; LWS specs as read unchanged {}/{}; revision hashes unchanged {}/{} (= lws \
             expand {}/{}); recreated during the window {}",
            self.pods_before,
            self.pods_after,
            self.uids_unchanged,
            self.pods_before,
            self.sts_unchanged,
            self.sts,
            self.others_unchanged,
            self.others,
            self.specs_unchanged,
            self.lws,
            self.hashes_unchanged,
            self.lws,
            self.hashes_expand,
            self.lws,
            self.recreated_in_window
        );
        let fields: BTreeSet<&str> = self
            .v011_defaults
            .iter()
            .filter_map(|d| d.split(':').next())
            .collect();
        if !fields.is_empty() {
            eprintln!(
                "[swap]   v0.11 fields that came or went with the CRD (read, not stored): {} ({} \
                 reads)",
                fields.into_iter().collect::<Vec<_>>().join(", "),
                self.v011_defaults.len()
            );
        }
    }

    fn assert_unchanged(&self, case: &str, direction: &str) {
        self.print(case, direction);
        assert!(
            self.problems.is_empty() && self.pods_before > 0,
            "{case}, {direction}: the hand-over changed what it must not:\n{}",
            self.problems.join("\n")
        );
    }
}

/// Watches on pods and StatefulSets of `namespaces`, from before a hand-over to its end.
struct Watches(Vec<(Watch, Watch)>);

impl Watches {
    fn start(namespaces: &BTreeSet<String>) -> Watches {
        Watches(
            namespaces
                .iter()
                .map(|ns| {
                    (
                        Watch::start(ns, "pods", &[]),
                        Watch::start(ns, "statefulsets", &[]),
                    )
                })
                .collect(),
        )
    }

    fn pods(&self) -> Vec<Value> {
        self.0.iter().flat_map(|(p, _)| p.objects()).collect()
    }

    fn sts(&self) -> Vec<Value> {
        self.0.iter().flat_map(|(_, s)| s.objects()).collect()
    }
}

/// Hands over under `crd`, then waits out the window; returns how long the hand-over took.
fn hand_over_and_watch(turns: &mut Turns, crd: Crd) -> Duration {
    let t0 = Instant::now();
    turns.hand_over(crd);
    let took = t0.elapsed();
    eprintln!(
        "[swap] {} took over in {:.1} s; watching for {} s",
        turns.running.name(),
        took.as_secs_f64(),
        window().as_secs()
    );
    std::thread::sleep(window());
    took
}

/// Hands over with `crd` while watching every object of `all`, and asserts that the hand-over
/// recreated and changed nothing (`case`, `direction` name it in the report).
fn hand_over_changes_nothing(
    turns: &mut Turns,
    crd: Crd,
    all: &[&Lws],
    case: &str,
    direction: &str,
) {
    let ns_all = namespaces(all);
    let watches = Watches::start(&ns_all);
    let before = snapshot(&ns_all);
    hand_over_and_watch(turns, crd);
    let after = snapshot(&ns_all);
    compare(&keys(all), &before, &after, &watches.pods(), &watches.sts())
        .assert_unchanged(case, direction);
}

/// A template change every pod sees: an env var in every container of both templates.
fn bump_template(object: &mut Value, value: &str) {
    for template in ["leaderTemplate", "workerTemplate"] {
        let t = &mut object["spec"]["leaderWorkerTemplate"][template];
        if t.is_null() {
            continue;
        }
        for c in t["spec"]["containers"].as_array_mut().into_iter().flatten() {
            c["env"] = json!([{"name": "SWAP_STEP", "value": value}]);
        }
    }
}

/// `lws(name, replicas, size)` whose pods become Ready `delay` after they are bound.
fn slow_lws(name: &str, replicas: i64, size: i64, delay: &str) -> Value {
    let mut object = lws(name, replicas, size);
    object["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"] =
        json!({"annotations": {READY_DELAY: delay}});
    object
}

/// The fleet of the quick check: the seed sample, exclusive placement in its own namespace,
/// subgroups (in their own namespace: subgroup exclusivity takes a rack per subgroup),
/// UniquePerReplica with TPUs.
fn fleet(main: &Namespace, exclusive: &Namespace, subgroup: &Namespace) -> (Vec<Value>, Vec<Lws>) {
    let mut tpu = example("lws-tpu.yaml");
    tpu["metadata"]["name"] = json!("leaderworkerset-tpu-unique");
    tpu["spec"]["networkConfig"] = json!({"subdomainPolicy": "UniquePerReplica"});
    let mut sub = example("lws-subgroup.yaml");
    sub["spec"]["replicas"] = json!(2);
    let mut objects = Vec::new();
    let mut handles = Vec::new();
    for (ns, object) in [
        (main, example("lws.yaml")),
        (main, tpu),
        (exclusive, example("lws-exclusive-placement.yaml")),
        (subgroup, sub),
    ] {
        handles.push(create(ns, &object));
        objects.push(object);
    }
    for (ns, l) in [main, main, exclusive, subgroup].into_iter().zip(&handles) {
        settle(ns, &[l]);
    }
    (objects, handles)
}

fn keys(all: &[&Lws]) -> Vec<String> {
    all.iter().map(|l| l.key()).collect()
}

fn namespaces(all: &[&Lws]) -> BTreeSet<String> {
    all.iter().map(|l| l.ns.clone()).collect()
}

/// Waits until the leader StatefulSet of `l` has a partition below `replicas` (the rollout
/// started) while a group on the new revision is not ready yet (it is in flight); returns
/// the partition.
fn wait_in_flight(ns: &Namespace, l: &Lws, old: &str) -> i64 {
    eventually(
        &format!("{} rolling (partition below {})", l.name, l.replicas),
        ROLLOUT,
        || {
            let sts = ns.get("statefulset", &l.name)?;
            let (partition, _) = *trace(std::slice::from_ref(&sts)).first()?;
            let new = label(&sts, REVISION)?;
            (new != old && partition < l.replicas).then_some(partition)
        },
    )
}

/// Deletes worker 1 of `group` and waits until the running controller has deleted that
/// group's leader (the group is being recreated). A finalizer holds the worker while the
/// controller looks: kwok deletes a pod at once, where a kubelet would take its grace period.
fn start_recreation(ns: &Namespace, l: &Lws, group: i64) {
    let old = leaders(ns, &l.name)[&group].0.clone();
    let worker = format!("{}-{group}-1", l.name);
    ns.kubectl(&[
        "patch",
        "pod",
        &worker,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["lws.x-k8s.io/swap-suite-hold"]}}"#,
    ])
    .unwrap();
    ns.kubectl(&["delete", "pod", &worker, "--wait=false"])
        .unwrap();
    eventually(
        &format!("{} group {group} being recreated", l.name),
        CONVERGE,
        || {
            let now = leaders(ns, &l.name);
            (now.get(&group).map(|(uid, _)| uid) != Some(&old)).then_some(())
        },
    );
    ns.kubectl(&[
        "patch",
        "pod",
        &worker,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .unwrap();
}

/// The pods and worker StatefulSets of `l` outside `groups` kept their uids and generations,
/// and so did the leader StatefulSet when `leader_sts` (a recreation changes no template).
fn assert_other_groups_kept(
    before: &Snapshot,
    after: &Snapshot,
    l: &Lws,
    groups: &[i64],
    leader_sts: bool,
) {
    let key = l.key();
    let group_of = |n: &str| {
        n.strip_prefix(&format!("{}-", l.name))
            .and_then(|rest| rest.split('-').next())
            .and_then(|g| g.parse::<i64>().ok())
    };
    let mut kept = 0;
    for (pod, uid) in before.pods.get(&key).into_iter().flatten() {
        if !group_of(pod).is_some_and(|g| groups.contains(&g)) {
            assert_eq!(
                after.pods[&key].get(pod),
                Some(uid),
                "{key}: pod {pod} outside groups {groups:?} changed"
            );
            kept += 1;
        }
    }
    for (sts, v) in before.sts.get(&key).into_iter().flatten() {
        let keep = match group_of(sts) {
            Some(g) => !groups.contains(&g),
            None => leader_sts,
        };
        if keep {
            assert_eq!(
                after.sts[&key].get(sts),
                Some(v),
                "{key}: StatefulSet {sts} changed"
            );
            kept += 1;
        }
    }
    eprintln!("[swap] {key}: {kept} pods and StatefulSets outside groups {groups:?} unchanged");
}

/// Leader uids seen per group of `l`, from `pods` (watch objects of its namespace).
fn leader_uids_of(pods: &[Value], l: &Lws) -> BTreeMap<i64, BTreeSet<String>> {
    let leaders: Vec<Value> = pods
        .iter()
        .filter(|p| {
            label(p, NAME_LABEL) == Some(l.name.as_str())
                && label(p, WORKER_INDEX_LABEL) == Some("0")
        })
        .cloned()
        .collect();
    leader_uids(&leaders)
}

/// Asserts exactly the groups in `rolled` were replaced, each once, in `uids`.
fn assert_groups_replaced(
    what: &str,
    uids: &BTreeMap<i64, BTreeSet<String>>,
    l: &Lws,
    rolled: &[i64],
) {
    for group in 0..l.replicas {
        let expected = if rolled.contains(&group) { 2 } else { 1 };
        let seen = uids.get(&group).map(BTreeSet::len).unwrap_or(0);
        assert_eq!(
            seen,
            expected,
            "{what}: {} group {group}: leader uids seen {:?} (expected {expected})",
            l.name,
            uids.get(&group)
        );
    }
    eprintln!(
        "[swap] {what}: {} groups replaced exactly once {:?}, others untouched",
        l.name, rolled
    );
}

/// The quick check of issue 13 made a suite, with a rollout in flight and a group being
/// recreated at each hand-over: upstream runs the fleet; ours takes over (its CRD applied over
/// upstream's as a user would); for the window nothing of the fleet changes; the in-flight
/// rollout goes on to its partition and the recreation completes, each group replaced once; a
/// template update rolls and the held partition is released under ours; then upstream takes
/// over again (its CRD applied back), with the same checks.
#[test]
#[ignore = "needs the local cluster and upstream LWS (the peer): make swap"]
fn live_swap_both_ways_with_rollouts_in_flight() {
    let mut turns = Turns::start(Side::Upstream, Crd::Replaced);
    let main = Namespace::new("swap-main");
    let exclusive = Namespace::new("swap-exclusive");
    let subgroup = Namespace::new("swap-subgroup");
    let flight = Namespace::new("swap-flight");
    let (mut objects, fleet) = fleet(&main, &exclusive, &subgroup);
    let mut rolling_object = slow_lws("rolling", 4, 2, "4s");
    let rolling = create(&flight, &rolling_object);
    let recreate = create(&flight, &slow_lws("recreate", 3, 3, "3s"));
    settle(&flight, &[&rolling, &recreate]);
    let frozen: Vec<&Lws> = fleet.iter().collect();
    let everything: Vec<&Lws> = fleet.iter().chain([&rolling, &recreate]).collect();
    let ns_all = namespaces(&everything);
    let sample = &fleet[0];

    for (direction, step) in [("upstream -> ours", 1), ("ours -> upstream", 2)] {
        let watches = Watches::start(&ns_all);
        let before = snapshot(&ns_all);
        // A rollout in flight: a template change held at partition 2, pods Ready 4 s late.
        let old = label(&flight.get("statefulset", "rolling").unwrap(), REVISION)
            .unwrap()
            .to_string();
        bump_template(&mut rolling_object, &step.to_string());
        rolling_object["spec"]["rolloutStrategy"] = json!({"type": "RollingUpdate",
            "rollingUpdateConfiguration": {"partition": 2, "maxUnavailable": 1}});
        flight.apply(&rolling_object).unwrap();
        let at_swap = wait_in_flight(&flight, &rolling, &old);
        // A group being recreated: a worker of group `step` deleted, its leader gone already.
        start_recreation(&flight, &recreate, step);
        eprintln!(
            "[swap] {direction}: at the hand-over rolling is at partition {at_swap} of 4 (held \
             at 2), recreate group {step} is being recreated"
        );
        hand_over_and_watch(&mut turns, Crd::Applied);
        let new = wait_rolled(&flight, "rolling", &old, 4, 2);
        wait_settled(&flight, "recreate", 3, 3);
        let after = snapshot(&ns_all);
        let pods = watches.pods();
        compare(&keys(&frozen), &before, &after, &pods, &watches.sts()).assert_unchanged(
            "fleet (seed sample, exclusive, subgroups, UniquePerReplica TPU)",
            direction,
        );
        assert_groups_replaced(
            &format!("rollout in flight, {direction}"),
            &leader_uids_of(&pods, &rolling),
            &rolling,
            &[2, 3],
        );
        assert_eq!(
            trace(std::slice::from_ref(
                &flight.get("statefulset", "rolling").unwrap()
            )),
            vec![(2, 4)],
            "rolling: held at partition 2"
        );
        assert_groups_replaced(
            &format!("group recreated at the swap, {direction}"),
            &leader_uids_of(&pods, &recreate),
            &recreate,
            &[step],
        );
        assert_other_groups_kept(&before, &after, &recreate, &[step], true);
        assert_other_groups_kept(&before, &after, &rolling, &[2, 3], false);
        eprintln!("[swap] {direction}: rolling {old} -> {new}, held at partition 2");

        // Under the new controller: the seed sample's template changes and the held rollout
        // is released; each group rolls exactly once.
        let watches = Watches::start(&ns_all);
        let sample_old = label(&main.get("statefulset", &sample.name).unwrap(), REVISION)
            .unwrap()
            .to_string();
        bump_template(&mut objects[0], &step.to_string());
        main.apply(&objects[0]).unwrap();
        rolling_object["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]["partition"] =
            json!(0);
        flight.apply(&rolling_object).unwrap();
        wait_rolled(&main, &sample.name, &sample_old, sample.replicas, 0);
        wait_rolled(&flight, "rolling", &old, 4, 0);
        wait_settled(&main, &sample.name, sample.replicas, sample.size);
        wait_settled(&flight, "rolling", 4, 2);
        let pods = watches.pods();
        let groups: Vec<i64> = (0..sample.replicas).collect();
        let side = turns.running.name();
        assert_groups_replaced(
            &format!("template update under {side}"),
            &leader_uids_of(&pods, sample),
            sample,
            &groups,
        );
        assert_groups_replaced(
            &format!("partition released under {side}"),
            &leader_uids_of(&pods, &rolling),
            &rolling,
            &[0, 1],
        );
    }
}

/// Ours under upstream's CRD exactly (nothing of ours applied to it), both ways; a template
/// update under ours rolls, and upstream then leaves what ours wrote alone.
#[test]
#[ignore = "needs the local cluster and upstream LWS (the peer): make swap"]
fn ours_under_upstreams_crd_both_ways() {
    let mut turns = Turns::start(Side::Upstream, Crd::Replaced);
    let main = Namespace::new("swap-ucrd");
    let mut sample_object = example("lws.yaml");
    let sample = create(&main, &sample_object);
    let mut tpu = example("lws-tpu.yaml");
    tpu["spec"]["networkConfig"] = json!({"subdomainPolicy": "UniquePerReplica"});
    let tpu = create(&main, &tpu);
    let all = [&sample, &tpu];
    settle(&main, &all);
    let upstream_schemas = schemas(&upstream_crd());
    let ns_all = namespaces(&all);
    for direction in ["upstream -> ours", "ours -> upstream"] {
        hand_over_changes_nothing(
            &mut turns,
            Crd::Kept,
            &all,
            "upstream's CRD kept",
            direction,
        );
        assert_eq!(
            live_schemas(),
            upstream_schemas,
            "the CRD is no longer upstream's"
        );
        if turns.running == Side::Ours {
            let watches = Watches::start(&ns_all);
            let old = label(&main.get("statefulset", &sample.name).unwrap(), REVISION)
                .unwrap()
                .to_string();
            bump_template(&mut sample_object, "1");
            main.apply(&sample_object).unwrap();
            wait_rolled(&main, &sample.name, &old, sample.replicas, 0);
            wait_settled(&main, &sample.name, sample.replicas, sample.size);
            let groups: Vec<i64> = (0..sample.replicas).collect();
            assert_groups_replaced(
                "template update under ours, upstream's CRD",
                &leader_uids_of(&watches.pods(), &sample),
                &sample,
                &groups,
            );
        }
    }
}

/// Each side under its own CRD exactly (`kubectl replace`), both ways: objects created under
/// upstream's CRD read the same under ours and keep their revision, and objects created and
/// updated under ours read the same under upstream's, so upstream computes the revision ours
/// wrote and rolls nothing.
#[test]
#[ignore = "needs the local cluster and upstream LWS (the peer): make swap"]
fn crd_defaults_keep_every_revision_hash() {
    let mut turns = Turns::start(Side::Upstream, Crd::Replaced);
    let ns = Namespace::new("swap-defaults");
    // Ports, probes and volumes: where the Kubernetes types carry defaults.
    let with_defaults = |name: &str| {
        let mut object = example("lws.yaml");
        object["metadata"]["name"] = json!(name);
        object["spec"]["replicas"] = json!(2);
        let container =
            &mut object["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0];
        container["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 8080}});
        container["volumeMounts"] = json!([{"name": "scratch", "mountPath": "/scratch"}]);
        object["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["volumes"] =
            json!([{"name": "scratch", "emptyDir": {}}]);
        object
    };
    let from_upstream = create(&ns, &with_defaults("made-by-upstream"));
    settle(&ns, &[&from_upstream]);
    let mut all = vec![from_upstream.clone()];
    for direction in ["upstream -> ours", "ours -> upstream"] {
        let refs: Vec<&Lws> = all.iter().collect();
        hand_over_changes_nothing(
            &mut turns,
            Crd::Replaced,
            &refs,
            "each side's own CRD exactly",
            direction,
        );
        if turns.running == Side::Ours {
            let mut object = with_defaults("made-by-ours");
            let l = create(&ns, &object);
            settle(&ns, &[&l]);
            let old = label(&ns.get("statefulset", &l.name).unwrap(), REVISION)
                .unwrap()
                .to_string();
            bump_template(&mut object, "1");
            ns.apply(&object).unwrap();
            wait_rolled(&ns, &l.name, &old, l.replicas, 0);
            wait_settled(&ns, &l.name, l.replicas, l.size);
            all.push(l);
        }
    }
}

/// LeaderWorkerSets with v0.11 fields (`groupIdentity: Ordinal`, `groupReplacementPolicy:
/// PostTermination`, upstream-v0.11.md's defaults) under our CRD, which carries them: accepted
/// by ours, kept through upstream v0.9 running under our CRD and back, nothing recreated.
#[test]
#[ignore = "needs the local cluster and upstream LWS (the peer): make swap"]
fn v011_fields_kept_across_swaps() {
    let mut turns = Turns::start(Side::Ours, Crd::Replaced);
    let ns = Namespace::new("swap-v011");
    let mut object = example("lws.yaml");
    object["metadata"]["name"] = json!("v011");
    object["spec"]["groupIdentity"] = json!("Ordinal");
    object["spec"]["groupReplacementPolicy"] = json!("PostTermination");
    let l = create(&ns, &object);
    let plain = create(&ns, &lws("plain", 2, 2));
    settle(&ns, &[&l, &plain]);
    let kept = || {
        let stored = ns.get("lws", "v011").unwrap();
        assert_eq!(stored["spec"]["groupIdentity"], "Ordinal", "{stored}");
        assert_eq!(
            stored["spec"]["groupReplacementPolicy"], "PostTermination",
            "{stored}"
        );
    };
    kept();
    let all = [&l, &plain];
    for direction in ["ours -> upstream", "upstream -> ours"] {
        hand_over_changes_nothing(
            &mut turns,
            Crd::Kept,
            &all,
            "v0.11 fields, our CRD",
            direction,
        );
        kept();
    }
}
