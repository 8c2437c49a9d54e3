//! In the cluster: the chart's controller pods on the local cluster's real nodes
//! (`REAL_NODE=1 make cluster-up`; `make incluster` installs the chart before and uninstalls it
//! after). One test, in phases, since each phase disturbs the controllers the next one uses:
//!
//! 1. two controller pods Running and Ready under the chart's ServiceAccount, one per real node,
//!    one of them holding the Lease; the Secret filled and both caBundles equal to its CA;
//! 2. the seed sample reaches its 12 Running pods;
//! 3. the leading pod is deleted while admissions are sent without pause: the other pod takes
//!    the Lease within the lease time and reconciles (a scale-up), no admission is refused;
//! 4. `helm upgrade` to a 60 s certificate lifetime: each pod serves several certificates in
//!    turn, again with no admission refused.
//!
//! The figures (hand-over time, longest admission gap, start time and peak RSS of a controller
//! pod) are printed for the closing note and tests/e2e/README.md.

use super::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NS: &str = "lws-system";
const LEASE: &str = "b8b2488c.x-k8s.io";
const SECRET: &str = "lws-webhook-server-cert";
const SELECTOR: &str = "app.kubernetes.io/name=lws,app.kubernetes.io/component=controller";
const SERVICE_NAME: &str = "lws-webhook-service.lws-system.svc";
/// Upstream's lease duration, which the chart keeps.
const LEASE_DURATION: Duration = Duration::from_secs(15);

fn get(kind: &str, name: &str) -> Value {
    serde_json::from_str(&must(&["-n", NS, "get", kind, name, "-o", "json"], None)).unwrap()
}

/// The controller pods that are Running, Ready and not being deleted.
fn ready_controllers() -> Vec<Value> {
    let out = must(
        &["-n", NS, "get", "pods", "-l", SELECTOR, "-o", "json"],
        None,
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|pod| {
            pod["metadata"]["deletionTimestamp"].is_null()
                && condition(pod, "Ready").is_some_and(|(status, _, _)| status == "True")
        })
        .collect()
}

fn wait_two_ready(what: &str) -> Vec<Value> {
    eventually(what, Duration::from_secs(180), || {
        let pods = ready_controllers();
        (pods.len() == 2).then_some(pods)
    })
}

fn lease_holder() -> String {
    get("lease", LEASE)["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The pod whose name starts the Lease holder's identity (`<pod>_<pid>_<nonce>`).
fn holder_pod<'a>(pods: &'a [Value], holder: &str) -> Option<&'a Value> {
    pods.iter()
        .find(|pod| holder.starts_with(&format!("{}_", name(pod))))
}

fn host_ip(pod: &Value) -> String {
    pod["status"]["hostIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Sends LeaderWorkerSet admissions (server dry run: both LWS webhooks) back to back until
/// stopped, with the admin's client certificate; records each answer's time and status.
struct AdmissionProbe {
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<Vec<(Instant, u16, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a probe saw.
#[derive(Debug)]
struct ProbeReport {
    sent: usize,
    refused: Vec<(u16, String)>,
    longest_gap: Duration,
}

impl AdmissionProbe {
    fn start() -> Self {
        let ca = std::env::var("LWS_CLUSTER_CA").expect("LWS_CLUSTER_CA (.cluster/env)");
        let pki = std::path::Path::new(&ca).parent().unwrap().to_path_buf();
        let url = format!(
            "{}/apis/leaderworkerset.x-k8s.io/v1/namespaces/default/leaderworkersets?dryRun=All",
            std::env::var("LWS_APISERVER_URL").expect("LWS_APISERVER_URL (.cluster/env)")
        );
        let body = lws("probe", 1, 2).to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, results) = (stop.clone(), results.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = Command::new("curl")
                        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
                        .arg("--cacert")
                        .arg(&ca)
                        .arg("--cert")
                        .arg(pki.join("admin.crt"))
                        .arg("--key")
                        .arg(pki.join("admin.key"))
                        .args(["-H", "Content-Type: application/json", "-X", "POST"])
                        .args(["--data-binary", &body, &url])
                        .output()
                        .expect("curl");
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
                    let code = code.trim().parse().unwrap_or(0);
                    results
                        .lock()
                        .unwrap()
                        .push((Instant::now(), code, answer.to_string()));
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        AdmissionProbe {
            stop,
            results,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let results = self.results.lock().unwrap();
        let mut longest_gap = Duration::ZERO;
        let mut last_ok: Option<Instant> = None;
        for (at, code, _) in results.iter() {
            if *code == 201 {
                if let Some(last) = last_ok {
                    longest_gap = longest_gap.max(at.duration_since(last));
                }
                last_ok = Some(*at);
            }
        }
        ProbeReport {
            sent: results.len(),
            refused: results
                .iter()
                .filter(|(_, code, _)| *code != 201)
                .map(|(_, code, body)| (*code, body.chars().take(300).collect()))
                .collect(),
            longest_gap,
        }
    }
}

/// The sha256 fingerprint of the certificate served at `ip:9443` for the Service's name.
fn served_fingerprint(ip: &str) -> Option<String> {
    let script = format!(
        "openssl s_client -connect {ip}:9443 -servername {SERVICE_NAME} </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    );
    let out = Command::new("sh").args(["-c", &script]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Host pids of the controller processes (`/lws controller ...` inside the pods).
fn controller_pids() -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.starts_with(b"/lws\0controller\0") {
            pids.insert(pid);
        }
    }
    pids
}

/// `VmHWM` (peak RSS) of `pid` in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

fn helm() -> Command {
    let mut command = Command::new(std::env::var("HELM").expect("HELM (make incluster sets it)"));
    command.env(
        "KUBECONFIG",
        std::env::var("KUBECONFIG")
            .unwrap_or_else(|_| root().join(".cluster/kubeconfig").display().to_string()),
    );
    command
}

#[test]
#[ignore = "needs the local cluster with real nodes and the chart installed: make incluster"]
fn chart_install_hand_over_and_rotation() {
    // 1. Installed as the chart renders it.
    let pods = wait_two_ready("two Ready controller pods");
    let nodes: BTreeSet<&str> = pods
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        nodes.len(),
        2,
        "one controller pod per real node: {nodes:?}"
    );
    for pod in &pods {
        assert_eq!(pod["spec"]["serviceAccountName"], "lws-controller-manager");
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532);
    }
    let holder = eventually("a Lease holder", LEASE_DURATION * 2, || {
        let holder = lease_holder();
        holder_pod(&pods, &holder).map(|_| holder)
    });
    println!("lease held by {holder}");
    let secret = get("secret", SECRET);
    let ca = secret["data"]["ca.crt"]
        .as_str()
        .expect("ca.crt in the Secret");
    for key in ["tls.crt", "tls.key", "ca.key"] {
        assert!(secret["data"][key].is_string(), "{key} in the Secret");
    }
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let name = if kind.starts_with("mutating") {
            "lws-mutating-webhook-configuration"
        } else {
            "lws-validating-webhook-configuration"
        };
        let config = get(kind, name);
        for hook in config["webhooks"].as_array().unwrap() {
            assert_eq!(
                hook["clientConfig"]["caBundle"], ca,
                "{name} {}",
                hook["name"]
            );
            assert_eq!(
                hook["clientConfig"]["service"]["name"],
                "lws-webhook-service"
            );
        }
    }

    // 2. The seed sample.
    let ns = Namespace::new("incluster");
    ns.apply(&example("lws.yaml")).unwrap();
    ns.wait_running("leaderworkerset-sample", 12);

    // 3. Hand-over.
    let before: BTreeSet<u32> = controller_pids();
    let probe = AdmissionProbe::start();
    std::thread::sleep(Duration::from_secs(2));
    let leader = holder_pod(&pods, &holder).unwrap();
    let leader_name = name(leader).to_string();
    let deleted_at = Instant::now();
    must(
        &["-n", NS, "delete", "pod", &leader_name, "--wait=false"],
        None,
    );
    let new_holder = eventually("the other pod takes the Lease", LEASE_DURATION * 2, || {
        let now = lease_holder();
        (!now.is_empty() && !now.starts_with(&format!("{leader_name}_"))).then_some(now)
    });
    let hand_over = deleted_at.elapsed();
    println!("lease handed from {leader_name} to {new_holder} in {hand_over:?}");
    assert!(
        hand_over < LEASE_DURATION,
        "hand-over took {hand_over:?}, more than the lease duration"
    );
    // The new leader reconciles.
    let scaled = json!({"spec": {"replicas": 4}});
    ns.kubectl(&[
        "patch",
        "lws",
        "leaderworkerset-sample",
        "--type=merge",
        "-p",
        &scaled.to_string(),
    ])
    .unwrap();
    ns.wait_running("leaderworkerset-sample", 16);
    // The replacement pod lands on the freed node (the other one's ports are taken): its
    // start, from the process's start to its first ready answer, and its memory.
    let readyz = format!("http://{}:8081/readyz", host_ip(leader));
    let replacement = eventually("a new controller process", Duration::from_secs(120), || {
        controller_pids().difference(&before).next().copied()
    });
    let ready_after = {
        let polled = Instant::now();
        loop {
            if http_get(&readyz).is_ok() {
                break process_age(replacement).expect("the replacement's age");
            }
            assert!(
                polled.elapsed() < CONVERGE,
                "the replacement never answered /readyz"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_two_ready("the replacement pod Ready");
    std::thread::sleep(Duration::from_secs(5));
    let report = probe.finish();
    println!(
        "hand-over admissions: {} sent, {} refused, longest gap between admissions {:?}",
        report.sent,
        report.refused.len(),
        report.longest_gap
    );
    println!(
        "replacement controller pid {replacement}: ready {ready_after:?} after the process \
         started; peak RSS {} KiB",
        peak_rss_kib(replacement).unwrap_or(0)
    );
    assert!(report.refused.is_empty(), "refused: {:?}", report.refused);

    // 4. Forced rotation: 60 s certificates.
    let upgrade = helm()
        .args([
            "upgrade",
            "lws",
            &root().join("charts/lws").display().to_string(),
        ])
        .args(["-n", NS, "--reuse-values", "--wait", "--timeout", "4m"])
        .args(["--set", "certManagement.internal.validity=60s"])
        .output()
        .unwrap();
    assert!(
        upgrade.status.success(),
        "helm upgrade: {}",
        String::from_utf8_lossy(&upgrade.stderr)
    );
    let pods = wait_two_ready("two Ready pods after the upgrade");
    let ips: Vec<String> = pods.iter().map(host_ip).collect();
    let probe = AdmissionProbe::start();
    let mut seen: Vec<BTreeSet<String>> = vec![BTreeSet::new(); ips.len()];
    let rotation_start = Instant::now();
    // Each pod must serve at least three certificates: at least two rotations each.
    while seen.iter().any(|s| s.len() < 3) {
        assert!(
            rotation_start.elapsed() < Duration::from_secs(240),
            "fewer than two rotations in 4 min: {seen:?}"
        );
        for (ip, seen) in ips.iter().zip(seen.iter_mut()) {
            if let Some(fingerprint) = served_fingerprint(ip) {
                seen.insert(fingerprint);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let report = probe.finish();
    println!(
        "rotation: {:?} certificates served per pod in {:?}; admissions {} sent, {} refused, \
         longest gap {:?}",
        seen.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        rotation_start.elapsed(),
        report.sent,
        report.refused.len(),
        report.longest_gap
    );
    assert!(report.refused.is_empty(), "refused: {:?}", report.refused);
    for pid in controller_pids() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        println!(
            "controller pid {pid} at rest: VmRSS {}, peak VmHWM {}",
            field("VmRSS:"),
            field("VmHWM:")
        );
    }
}

/// How long process `pid` has been running: the uptime less its start in `/proc/PID/stat`
/// (field 22, in USER_HZ ticks, which the kernel's ABI fixes at 100 per second).
fn process_age(pid: u32) -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let ticks: u64 = after.split(' ').nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Duration::from_secs_f64(uptime).checked_sub(Duration::from_millis(ticks * 1000 / USER_HZ))
}
