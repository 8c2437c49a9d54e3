//! The fault suite (issue 14, `make chaos`): what real clusters do to a controller, each fault
//! during a rolling update of 10 groups and again at rest, with the invariants checked after
//! every step:
//! - during a rollout (`failover::rollout_of_ten`): never more than replicas + maxSurge groups,
//!   no group mixing revisions, each leader replaced exactly once, and the end state equal to the
//!   fault-free run's;
//! - at rest: no pod lost or duplicated (the same pod uids before and after), and the controller
//!   back at work (a deleted worker StatefulSet recreated; the time it took is the recovery).
//!
//! Like the fail-over tests these run controllers of their own ("a", the first leader, without
//! webhooks; "w" serving the webhooks on 9443) on a Lease of their own, one test at a time.
//! A candidate that exits (a leader that lost its Lease does) is started again under a new
//! identity, as a Deployment's kubelet would. Figures go to stderr and target/chaos/results.jsonl.

use crate::failover::{
    assert_cluster_to_ourselves, holder, lease_field, rollout_of_ten, Candidate, TestLease, Timing,
    FAST_TIMING,
};
use crate::lifecycle::{
    change_image, current_revision, leader_uids, lws_with, wait_settled, Watch,
};
use crate::support::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const A_PORT: u16 = 8181;
const B_PORT: u16 = 8182;
const W_PORT: u16 = 8183;

/// The fault-free rollout every faulted one must end like: its end state and duration. Run
/// once per test process (the tests run one at a time under `--test-threads=1`).
static REFERENCE: OnceLock<(Value, Duration)> = OnceLock::new();

fn reference() -> &'static (Value, Duration) {
    REFERENCE.get_or_init(|| {
        let run = rollout_of_ten("chaos-ref", &mut |_| 0);
        record(
            "reference",
            "rollout",
            json!({"rolloutSeconds": secs(run.took)}),
        );
        (run.state, run.took)
    })
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One line of figures for the README's table: stderr and target/chaos/results.jsonl.
fn record(scenario: &str, phase: &str, figures: Value) {
    let line = json!({"scenario": scenario, "phase": phase, "figures": figures});
    eprintln!("[chaos] {line}");
    let dir = root().join("target/chaos");
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("results.jsonl"))
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// The suite's controllers: "a" leads first, "w" serves the webhooks, both on one Lease.
struct Controllers {
    lease: TestLease,
    timing: Timing,
    a: Candidate,
    w: Candidate,
    generation: usize,
    restarts: usize,
}

impl Controllers {
    fn start(test: &str) -> Self {
        assert_cluster_to_ourselves();
        let lease = TestLease::new(test);
        let timing = FAST_TIMING;
        let a = Candidate::start("a0", false, A_PORT, &lease, timing);
        eventually("a0 leads", CONVERGE, || {
            (holder(&lease) == "a0").then_some(())
        });
        let w = Candidate::start("w0", true, W_PORT, &lease, timing);
        Controllers {
            lease,
            timing,
            a,
            w,
            generation: 0,
            restarts: 0,
        }
    }

    /// Starts again whichever candidate exited, under a new identity.
    fn revive(&mut self) {
        if !self.a.running() {
            self.generation += 1;
            self.restarts += 1;
            let identity = format!("a{}", self.generation);
            self.a = Candidate::start(&identity, false, A_PORT, &self.lease, self.timing);
        }
        if !self.w.running() {
            self.generation += 1;
            self.restarts += 1;
            let identity = format!("w{}", self.generation);
            self.w = Candidate::start(&identity, true, W_PORT, &self.lease, self.timing);
        }
    }

    /// Waits until some candidate holds the Lease, reviving exited ones meanwhile.
    fn wait_leader(&mut self) -> String {
        eventually("a leader", CONVERGE, || {
            self.revive();
            let h = holder(&self.lease);
            (!h.is_empty()).then_some(h)
        })
    }
}

/// tests/cluster/restart.sh: `component` killed, down for `down` seconds, started again; waits
/// until the API server is ready.
fn restart(component: &str, down: u64) {
    let out = Command::new("bash")
        .arg(root().join("tests/cluster/restart.sh"))
        .args([component, &down.to_string()])
        .output()
        .expect("restart.sh");
    assert!(
        out.status.success(),
        "restart.sh {component}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every pod uid of `lws`, deleting ones included.
fn pod_uids(ns: &Namespace, lws: &str) -> BTreeSet<String> {
    ns.pods(lws)
        .iter()
        .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
        .collect()
}

/// A settled LWS of `replicas` × 2 at rest through `fault`: the same pods before and after
/// (none lost, none duplicated), then the controller at work again: worker StatefulSet
/// `<lws>-1` deleted by hand is recreated and the LWS ready. Returns the figures.
fn at_rest(ns: &Namespace, lws: &str, replicas: i64, fault: impl FnOnce()) -> Value {
    let before = pod_uids(ns, lws);
    fault();
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let after = pod_uids(ns, lws);
    let lost = before.difference(&after).count();
    let duplicated = after.difference(&before).count();
    assert_eq!((lost, duplicated), (0, 0), "pods lost, duplicated at rest");
    let workers = format!("{lws}-1");
    let old = ns.get("statefulset", &workers).expect("worker sts")["metadata"]["uid"].clone();
    let probe = Instant::now();
    ns.kubectl(&["delete", "statefulset", &workers, "--wait=false"])
        .unwrap();
    eventually("the deleted worker sts recreated", CONVERGE, || {
        let sts = ns.get("statefulset", &workers)?;
        (sts["metadata"]["uid"] != old).then_some(())
    });
    wait_settled(ns, lws, replicas, 2);
    json!({
        "podsLost": lost,
        "podsDuplicated": duplicated,
        "repairSecondsAfterFault": secs(ended.elapsed()),
        "repairSecondsAfterProbe": secs(probe.elapsed()),
    })
}

/// A control-plane component restarted (down 2 s) 3 s into a rolling update of 10 groups, and
/// again at rest.
fn restarted(component: &str) {
    let mut controllers = Controllers::start(&format!("restart-{}", &component[..4]));
    let (expected, reference_took) = reference().clone();
    let mut restarted_at = None;
    let run = rollout_of_ten(&format!("restart-{}", &component[..4]), &mut |_| {
        std::thread::sleep(Duration::from_secs(3));
        let started = Instant::now();
        restart(component, 2);
        restarted_at = Some(started.elapsed());
        controllers.wait_leader();
        1
    });
    assert_eq!(
        run.state, expected,
        "the rollout through a {component} restart ended elsewhere"
    );
    record(
        component,
        "rollout",
        json!({
            "downSeconds": secs(restarted_at.unwrap()),
            "rolloutSeconds": secs(run.took),
            "referenceSeconds": secs(reference_took),
            "controllerRestarts": controllers.restarts,
            "podsLost": 0, "podsDuplicated": 0,
        }),
    );
    let ns = Namespace::new(&format!("rest-{}", &component[..4]));
    ns.apply(&lws_with("rest", 4, 2, None, None)).unwrap();
    wait_settled(&ns, "rest", 4, 2);
    let restarts = controllers.restarts;
    let mut figures = at_rest(&ns, "rest", 4, || {
        restart(component, 2);
        controllers.wait_leader();
    });
    figures["controllerRestarts"] = json!(controllers.restarts - restarts);
    record(component, "rest", figures);
}

#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn api_server_restarted() {
    restarted("kube-apiserver");
}

#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn etcd_restarted() {
    restarted("etcd");
}

/// tests/e2e/apiserver-proxy.py in front of the API server, for one controller.
struct Proxy {
    child: Child,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Proxy {
    fn start(name: &str) -> Self {
        let state = root().join(".cluster");
        let dir = state.join(format!("chaos-proxy-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let original = std::fs::read_to_string(state.join("controller.kubeconfig")).unwrap();
        // The file is YAML in flow or block style: the server is the one https URL in it.
        let start = original
            .find("https://")
            .expect("a server URL in controller.kubeconfig");
        let server: String = original[start..]
            .chars()
            .take_while(|c| !matches!(c, '"' | '\'' | ',' | '}' | ' ' | '\n'))
            .collect();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            original.replace(&server, &format!("https://127.0.0.1:{port}")),
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.join("requests.log"));
        std::fs::write(dir.join("mode"), "pass").unwrap();
        let pki = state.join("pki");
        let mut child = Command::new("python3")
            .arg(root().join("tests/e2e/apiserver-proxy.py"))
            .arg(port.to_string())
            .arg(&server)
            .arg(pki.join("apiserver.crt"))
            .arg(pki.join("apiserver.key"))
            .arg(pki.join("ca.crt"))
            .arg(dir.join("mode"))
            .arg(dir.join("requests.log"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("proxy.log")).unwrap())
            .spawn()
            .expect("python3 apiserver-proxy.py");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready", "apiserver-proxy.py did not start");
        Proxy {
            child,
            dir,
            kubeconfig,
        }
    }

    fn set(&self, mode: &str) {
        std::fs::write(self.dir.join("mode"), mode).unwrap();
    }

    /// Every request the controller sent: (unix time received, what became of it, method, path).
    fn requests(&self) -> Vec<(f64, String, String, String)> {
        let log = std::fs::read_to_string(self.dir.join("requests.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some((
                    f.next()?.parse().ok()?,
                    f.next()?.to_string(),
                    f.next()?.to_string(),
                    f.next()?.to_string(),
                ))
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds since the epoch of an RFC 3339 time (a Lease's `acquireTime`).
fn rfc3339(time: &str) -> f64 {
    let at: k8s_openapi::jiff::Timestamp = time.parse().expect("an RFC 3339 time");
    at.as_duration().as_secs_f64()
}

/// The leader cut off from the API server (`mode`: "blackhole" or "503", tests/e2e/apiserver-
/// proxy.py) while a standby reaches it, 3 s into a rolling update of 10 groups: the leader
/// steps down before its Lease can expire and sends no write after that; the standby takes
/// over and the rollout ends as the fault-free one.
fn leader_cut_off(mode: &str) {
    assert_cluster_to_ourselves();
    let lease = TestLease::new(&format!("cut-{mode}"));
    let timing = FAST_TIMING;
    let proxy = Proxy::start(mode);
    let mut a = Candidate::start_with("a0", false, A_PORT, &lease, timing, &proxy.kubeconfig, &[]);
    eventually("a0 leads", CONVERGE, || {
        (holder(&lease) == "a0").then_some(())
    });
    let _w = Candidate::start("w0", true, W_PORT, &lease, timing);
    let _b = Candidate::start("b0", false, B_PORT, &lease, timing);
    let (expected, reference_took) = reference().clone();

    let mut timeline = json!({});
    let run = rollout_of_ten(&format!("cut-{mode}"), &mut |_| {
        std::thread::sleep(Duration::from_secs(3));
        let cut = unix_now();
        proxy.set(mode);
        let took = eventually("a standby takes the Lease", Duration::from_secs(30), || {
            let h = holder(&lease);
            (!h.is_empty() && h != "a0").then_some(h)
        });
        let stepped_down = eventually("a0 steps down", Duration::from_secs(30), || {
            (!a.running()).then(unix_now)
        });
        timeline = json!({"cut": cut, "stepDownObserved": stepped_down, "newLeader": took});
        std::thread::sleep(Duration::from_secs(2));
        proxy.set("pass");
        1
    });
    assert_eq!(
        run.state, expected,
        "the rollout through a {mode} leader ended elsewhere"
    );

    // The timeline: a0's last renew that reached the API server, its last write, the standby's
    // takeover (the Lease's acquireTime).
    let cut = timeline["cut"].as_f64().unwrap();
    let requests = proxy.requests();
    let lease_path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/lws-system/leases/{}",
        lease.0
    );
    let last_renew = requests
        .iter()
        .filter(|(t, fate, method, path)| {
            fate == "forwarded" && method == "PUT" && path.starts_with(&lease_path) && *t <= cut
        })
        .map(|(t, ..)| *t)
        .fold(f64::MIN, f64::max);
    assert!(
        last_renew > 0.0,
        "no renew of a0 through the proxy: {requests:?}"
    );
    let writes: Vec<_> = requests
        .iter()
        .filter(|(_, _, method, _)| method != "GET")
        .collect();
    let last_write = writes.iter().map(|(t, ..)| *t).fold(f64::MIN, f64::max);
    let acquired = rfc3339(&lease_field(&lease, "acquireTime"));
    let expiry = last_renew + timing.0 as f64;
    assert!(
        last_write < expiry && last_write < acquired,
        "a0 sent a write at {last_write:.3} (its Lease could expire at {expiry:.3}, taken at \
         {acquired:.3}): {writes:?}"
    );
    let stepped_down = timeline["stepDownObserved"].as_f64().unwrap();
    assert!(
        stepped_down < acquired + 1.0,
        "a0 was still running {:.2} s after the takeover",
        stepped_down - acquired
    );
    record(
        &format!("leader-{mode}"),
        "rollout",
        json!({
            "lastRenewToCut": secs(Duration::from_secs_f64((cut - last_renew).max(0.0))),
            "cutToLastWrite": last_write - cut,
            "cutToStepDown": stepped_down - cut,
            "cutToTakeover": acquired - cut,
            "leaseExpiryAfterCut": expiry - cut,
            "writesAfterTakeover": writes.iter().filter(|(t, ..)| *t >= acquired).count(),
            "newLeader": timeline["newLeader"],
            "rolloutSeconds": secs(run.took),
            "referenceSeconds": secs(reference_took),
        }),
    );
}

#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn leader_black_holed_standby_takes_over() {
    leader_cut_off("blackhole");
}

#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn leader_answered_503_standby_takes_over() {
    leader_cut_off("503");
}

/// The webhook server stopped for 5 s during a rolling update (pods are admitted by it, so the
/// StatefulSet controller waits and retries), and at rest: an LWS apply is refused while it is
/// down (failurePolicy Fail: nothing half-applied) and accepted once it is back.
#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn webhook_server_stopped_and_started() {
    let mut controllers = Controllers::start("webhook");
    let (expected, reference_took) = reference().clone();
    let run = rollout_of_ten("webhook", &mut |_| {
        std::thread::sleep(Duration::from_secs(3));
        controllers.w.kill();
        std::thread::sleep(Duration::from_secs(5));
        controllers.revive();
        1
    });
    assert_eq!(
        run.state, expected,
        "the rollout through a webhook outage ended elsewhere"
    );
    record(
        "webhook-server",
        "rollout",
        json!({"downSeconds": 5, "rolloutSeconds": secs(run.took), "referenceSeconds": secs(reference_took)}),
    );

    let ns = Namespace::new("webhook-rest");
    ns.apply(&lws_with("rest", 2, 2, None, None)).unwrap();
    wait_settled(&ns, "rest", 2, 2);
    controllers.w.kill();
    let refused = ns
        .apply(&lws_with("rest", 3, 2, None, None))
        .expect_err("an apply with the webhook server down");
    assert!(
        refused.contains("failed calling webhook"),
        "refused without naming the webhook: {refused}"
    );
    let object = ns.get("lws", "rest").unwrap();
    assert_eq!(
        object["spec"]["replicas"], 2,
        "the refused apply changed the LWS"
    );
    let back = Instant::now();
    controllers.revive();
    eventually("the apply accepted again", CONVERGE, || {
        ns.apply(&lws_with("rest", 3, 2, None, None)).ok()
    });
    let accepted = back.elapsed();
    wait_settled(&ns, "rest", 3, 2);
    record(
        "webhook-server",
        "rest",
        json!({"refusedWhileDown": true, "acceptedSecondsAfterStart": secs(accepted)}),
    );
}

/// Each group's racks (by the pods' nodes); asserts each group on one rack, groups on distinct
/// racks, and no pod on `gone`.
fn assert_exclusive(ns: &Namespace, lws: &str, groups: usize, gone: &str) {
    let pods = ns.pods(lws);
    let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pod in &pods {
        assert_ne!(
            pod["spec"]["nodeName"],
            gone,
            "{} on the lost node",
            name(pod)
        );
        by_group
            .entry(label(pod, GROUP_INDEX_LABEL).unwrap().to_string())
            .or_default()
            .insert(rack_of(pod));
    }
    let racks: BTreeSet<&String> = by_group.values().flatten().collect();
    assert!(
        by_group.values().all(|r| r.len() == 1) && racks.len() == groups,
        "groups not exclusive per rack: {by_group:?}"
    );
}

/// The node of group `group`'s leader.
fn leader_node(ns: &Namespace, lws: &str, group: usize) -> String {
    let leader = ns.get("pod", &format!("{lws}-{group}")).unwrap();
    leader["spec"]["nodeName"].as_str().unwrap().to_string()
}

/// A node as it can be created again: labels and annotations, no status or server fields.
fn node_manifest(node: &str) -> Value {
    let live: Value =
        serde_json::from_str(&must(&["get", "node", node, "-o", "json"], None)).unwrap();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node,
            "labels": live["metadata"]["labels"],
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {"allocatable": live["status"]["allocatable"], "capacity": live["status"]["capacity"]},
    })
}

/// Recreates `node` from `manifest` and waits until it is Ready without taints.
fn restore_node(node: &str, manifest: &Value) {
    let _ = run(&["delete", "node", node, "--wait=true"], None);
    must(&["apply", "-f", "-"], Some(&manifest.to_string()));
    eventually(&format!("{node} Ready again"), CONVERGE, || {
        let out = run(
            &[
                "get",
                "node",
                node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.spec.taints}",
            ],
            None,
        )
        .ok()?;
        (out.trim() == "True").then_some(())
    });
}

/// Under exclusive placement (3 groups × 2 on 4 racks), a KWOK node deleted under one group
/// and another node NotReady under another: each group hit is recreated once and placed again
/// one rack per group, never on the lost node.
#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn node_lost_under_exclusive_placement() {
    let _controllers = Controllers::start("node");
    let ns = Namespace::new("node");
    let mut object = lws_with("ex", 3, 2, None, None);
    object["metadata"]["annotations"] =
        json!({"leaderworkerset.sigs.k8s.io/exclusive-topology": "rack"});
    // Evicted 2 s after their node turns NotReady (default: 300 s).
    object["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["tolerations"] = json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
    ]);
    ns.apply(&object).unwrap();
    wait_settled(&ns, "ex", 3, 2);
    assert_exclusive(&ns, "ex", 3, "");
    let watch = Watch::leader_pods(&ns, "ex");

    for (group, fault) in [(1, "deleted"), (2, "not-ready")] {
        let before = leader_uids(&watch.objects());
        let node = leader_node(&ns, "ex", group);
        let manifest = node_manifest(&node);
        let started = Instant::now();
        match fault {
            "deleted" => must(&["delete", "node", &node], None),
            _ => must(
                &[
                    "label",
                    "node",
                    &node,
                    "node-not-ready.stage.kwok.x-k8s.io=true",
                ],
                None,
            ),
        };
        eventually(
            &format!("group {group} off node {node}"),
            Duration::from_secs(180),
            || {
                let leader = ns.get("pod", &format!("ex-{group}"))?;
                let moved = leader["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| n != node);
                moved.then_some(())
            },
        );
        wait_settled(&ns, "ex", 3, 2);
        let recovered = started.elapsed();
        assert_exclusive(&ns, "ex", 3, &node);
        std::thread::sleep(Duration::from_secs(5));
        let after = leader_uids(&watch.objects());
        for g in 0..3 {
            let new = after[&g].difference(&before[&g]).count();
            let expected = usize::from(g == group as i64);
            assert_eq!(
                new, expected,
                "node {fault}: group {g} got {new} new leaders"
            );
        }
        record(
            &format!("node-{fault}"),
            "rest",
            json!({"node": node, "recoverySeconds": secs(recovered), "groupsRecreated": 1, "podsLost": 0}),
        );
        restore_node(&node, &manifest);
    }
}

/// Every object of `lws` the controller makes, by kind: StatefulSets, pods, Services.
fn owned(ns: &Namespace, lws: &str) -> BTreeMap<&'static str, BTreeSet<String>> {
    ["statefulsets", "pods", "services"]
        .into_iter()
        .map(|kind| {
            let uids = ns
                .list(kind, &format!("{NAME_LABEL}={lws}"))
                .iter()
                .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string))
                .collect();
            (kind, uids)
        })
        .collect()
}

fn nothing_left(ns: &Namespace, lws: &str) -> bool {
    owned(ns, lws).values().all(BTreeSet::is_empty)
}

/// An LWS deleted with each propagation policy: foreground (the LWS outlives its StatefulSets),
/// background (everything goes), orphan (StatefulSets, pods and Services stay, untouched by the
/// controller, without an owner reference to the LWS); and one deleted mid-rollout.
#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn lws_deleted_foreground_background_orphan() {
    let _controllers = Controllers::start("delete");
    let ns = Namespace::new("delete");
    for lws in ["fg", "bg", "orphan"] {
        ns.apply(&lws_with(lws, 2, 2, None, None)).unwrap();
    }
    for lws in ["fg", "bg", "orphan"] {
        wait_settled(&ns, lws, 2, 2);
    }

    let started = Instant::now();
    ns.kubectl(&[
        "delete",
        "lws",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ])
    .unwrap();
    eventually("fg and its objects gone", CONVERGE, || {
        let lws_gone = ns.get("lws", "fg").is_none();
        let sts_left = !ns
            .list("statefulsets", &format!("{NAME_LABEL}=fg"))
            .is_empty();
        assert!(
            !(lws_gone && sts_left),
            "foreground: the LWS went before its StatefulSets"
        );
        (lws_gone && nothing_left(&ns, "fg")).then_some(())
    });
    let foreground = started.elapsed();

    let started = Instant::now();
    ns.kubectl(&[
        "delete",
        "lws",
        "bg",
        "--cascade=background",
        "--wait=false",
    ])
    .unwrap();
    eventually("bg's objects gone", CONVERGE, || {
        (ns.get("lws", "bg").is_none() && nothing_left(&ns, "bg")).then_some(())
    });
    let background = started.elapsed();

    let kept = owned(&ns, "orphan");
    ns.kubectl(&["delete", "lws", "orphan", "--cascade=orphan"])
        .unwrap();
    eventually("orphan gone", CONVERGE, || {
        ns.get("lws", "orphan").is_none().then_some(())
    });
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(owned(&ns, "orphan"), kept, "orphaned objects changed");
    let leader_sts = ns.get("statefulset", "orphan").unwrap();
    let refs = leader_sts["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        refs.iter().all(|r| r["kind"] != "LeaderWorkerSet"),
        "the orphaned StatefulSet still names the LWS: {refs:?}"
    );

    // Mid-rollout: everything of the LWS goes, whatever the controller was doing.
    let mut object = lws_with("rolling", 10, 2, None, None);
    ns.apply(&object).unwrap();
    wait_settled(&ns, "rolling", 10, 2);
    change_image(&mut object, "1.28");
    ns.apply(&object).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    ns.kubectl(&["delete", "lws", "rolling", "--wait=false"])
        .unwrap();
    eventually("rolling's objects gone", CONVERGE, || {
        (ns.get("lws", "rolling").is_none() && nothing_left(&ns, "rolling")).then_some(())
    });
    let mid_rollout = started.elapsed();
    record(
        "lws-delete",
        "rest",
        json!({
            "foregroundSeconds": secs(foreground),
            "backgroundSeconds": secs(background),
            "orphanKept": kept.values().map(BTreeSet::len).sum::<usize>(),
            "midRolloutSeconds": secs(mid_rollout),
        }),
    );
}

/// Two writers patch the LWS at the same moment: a template change and a scale-up from two
/// clients, then two template changes that conflict. The controller ends where the last spec
/// says: every group on the leader StatefulSet's revision, never more groups than the spec
/// asks (maxSurge 0), each old group's leader replaced exactly once by the first pair.
#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn two_writers_patch_at_once() {
    let _controllers = Controllers::start("writers");
    let ns = Namespace::new("writers");
    let object = lws_with("two", 10, 2, None, None);
    ns.apply(&object).unwrap();
    wait_settled(&ns, "two", 10, 2);
    let old = current_revision(&ns, "two");
    let watch = Watch::leader_pods(&ns, "two");
    let sts_watch = Watch::start(&ns.name, "statefulset", &["two"]);
    let before = leader_uids(&watch.objects());

    // `kubectl patch` of the worker template's image: a JSON patch, since custom resources take
    // no strategic merge patch.
    let set_image = |tag: &str| -> Vec<String> {
        let patch = json!([{
            "op": "replace",
            "path": "/spec/leaderWorkerTemplate/workerTemplate/spec/containers/0/image",
            "value": format!("nginxinc/nginx-unprivileged:{tag}"),
        }]);
        [
            "patch",
            "lws",
            "two",
            "--type=json",
            "-p",
            &patch.to_string(),
        ]
        .map(String::from)
        .to_vec()
    };
    let together = |patches: Vec<Vec<String>>| {
        let ns = &ns.name;
        let barrier = std::sync::Barrier::new(patches.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = patches
                .iter()
                .map(|args| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let mut all: Vec<&str> = vec!["-n", ns];
                        all.extend(args.iter().map(String::as_str));
                        run(&all, None)
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap().expect("a concurrent patch");
            }
        });
    };
    let started = Instant::now();
    together(vec![
        set_image("1.28"),
        vec!["scale".into(), "lws/two".into(), "--replicas=12".into()],
    ]);
    let first = crate::lifecycle::wait_rolled(&ns, "two", &old, 12, 0);
    let first_took = started.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    let uids = leader_uids(&watch.objects());
    for g in 0..10 {
        assert_eq!(
            uids[&g].difference(&before[&g]).count(),
            1,
            "group {g} rolled other than once"
        );
    }
    for g in 10..12 {
        assert!(
            (1..=2).contains(&uids[&g].len()),
            "group {g}: {} leaders",
            uids[&g].len()
        );
    }
    assert!(crate::failover::mixed_groups(&ns, "two").is_empty());

    // Conflicting template changes: whichever landed last is what the groups run.
    let started = Instant::now();
    together(vec![set_image("1.29"), set_image("1.30")]);
    crate::lifecycle::wait_rolled(&ns, "two", &first, 12, 0);
    let second_took = started.elapsed();
    let spec_image = ns.get("lws", "two").unwrap()["spec"]["leaderWorkerTemplate"]
        ["workerTemplate"]["spec"]["containers"][0]["image"]
        .clone();
    for pod in ns.pods("two") {
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            spec_image,
            "{} runs another image",
            name(&pod)
        );
    }
    assert!(crate::failover::mixed_groups(&ns, "two").is_empty());
    let trace = crate::lifecycle::trace(&sts_watch.objects());
    assert!(
        trace.iter().all(|(_, replicas)| *replicas <= 12),
        "more groups than the spec asks: {trace:?}"
    );
    record(
        "two-writers",
        "rollout",
        json!({"templateAndScaleSeconds": secs(first_took), "conflictingTemplatesSeconds": secs(second_took), "winner": spec_image}),
    );
}

/// The embedded module's file (`make build` writes it) with a custom section `name` appended:
/// the same code in other bytes, so another sha256.
fn module_variant(name: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(root().join("target/lws.wasm")).expect("target/lws.wasm");
    let payload = [&[name.len() as u8][..], name.as_bytes()].concat();
    bytes.extend([0, payload.len() as u8]);
    bytes.extend(payload);
    bytes
}

/// Lines of a candidate's log (.cluster/logs/failover-<identity>.log) that contain `text`.
fn log_lines(identity: &str, text: &str) -> Vec<String> {
    let log = root().join(format!(".cluster/logs/failover-{identity}.log"));
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

/// The module swapped (SIGHUP, `--module` pinned to the running and the next sha256) in both
/// candidates 3 s into a rolling update of 10 groups, then an unpinned module refused: the
/// rollout ends as the fault-free one and both candidates run the pinned next module.
#[test]
#[ignore = "needs the local cluster and no other controller: make chaos"]
fn module_hot_swapped_during_rollout() {
    assert_cluster_to_ourselves();
    let dir = root().join(".cluster/chaos-module");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lws.wasm");
    let (first, next, unpinned) = (
        module_variant("first"),
        module_variant("next"),
        module_variant("unpinned"),
    );
    std::fs::write(&path, &first).unwrap();
    let pins = format!(
        "{},{}",
        lws_host::guest::sha256_hex(&first),
        lws_host::guest::sha256_hex(&next)
    );
    let args = [
        format!("--module={}", path.display()),
        format!("--module-sha256={pins}"),
    ];
    let lease = TestLease::new("module");
    let kubeconfig = root().join(".cluster/controller.kubeconfig");
    let a = Candidate::start_with("a0", false, A_PORT, &lease, FAST_TIMING, &kubeconfig, &args);
    eventually("a0 leads", CONVERGE, || {
        (holder(&lease) == "a0").then_some(())
    });
    let w = Candidate::start_with("w0", true, W_PORT, &lease, FAST_TIMING, &kubeconfig, &args);
    let (expected, reference_took) = reference().clone();
    let mut swapped = Duration::ZERO;
    let run = rollout_of_ten("module", &mut |_| {
        std::thread::sleep(Duration::from_secs(3));
        // Written beside and renamed: a reader never sees half a file.
        std::fs::write(dir.join("next.wasm"), &next).unwrap();
        std::fs::rename(dir.join("next.wasm"), &path).unwrap();
        let started = Instant::now();
        a.signal("HUP");
        w.signal("HUP");
        eventually("both candidates swapped", CONVERGE, || {
            let done = ["a0", "w0"]
                .iter()
                .all(|c| !log_lines(c, "module swapped").is_empty());
            done.then_some(())
        });
        swapped = started.elapsed();
        1
    });
    assert_eq!(
        run.state, expected,
        "the rollout through a module swap ended elsewhere"
    );
    for candidate in ["a0", "w0"] {
        let swaps = log_lines(candidate, "module swapped");
        assert!(
            swaps[0].contains(&lws_host::guest::sha256_hex(&next)),
            "{candidate}: {swaps:?}"
        );
    }

    std::fs::write(&path, &unpinned).unwrap();
    a.signal("HUP");
    eventually("the unpinned module refused", CONVERGE, || {
        (!log_lines("a0", "module reload refused").is_empty()).then_some(())
    });
    // Still deciding: a scale-up is reconciled by the pinned module.
    let ns = Namespace::new("module-rest");
    ns.apply(&lws_with("rest", 2, 2, None, None)).unwrap();
    wait_settled(&ns, "rest", 2, 2);
    assert_eq!(
        log_lines("a0", "module swapped").len(),
        1,
        "the unpinned module was swapped in"
    );
    record(
        "module-hot-swap",
        "rollout",
        json!({"swapSeconds": secs(swapped), "rolloutSeconds": secs(run.took), "referenceSeconds": secs(reference_took), "unpinnedRefused": true}),
    );
}
