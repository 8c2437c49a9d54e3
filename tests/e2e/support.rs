//! The e2e suite's tools: kubectl against the cluster in `KUBECONFIG` (or the local one in
//! `.cluster/`), one fresh namespace per test (deleted when the test ends), and polling.
//!
//! No cluster is a failure, not a skip: [`Namespace::new`] panics when the API server does not
//! answer.

use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const NAME_LABEL: &str = "leaderworkerset.sigs.k8s.io/name";
pub const WORKER_INDEX_LABEL: &str = "leaderworkerset.sigs.k8s.io/worker-index";
pub const GROUP_INDEX_LABEL: &str = "leaderworkerset.sigs.k8s.io/group-index";

/// How long a test waits for the cluster to converge.
pub const CONVERGE: Duration = Duration::from_secs(60);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG")
        .unwrap_or_else(|_| root().join(".cluster/kubeconfig").display().to_string())
}

pub fn kubectl() -> Command {
    let program = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    let mut command = Command::new(program);
    command.env("KUBECONFIG", kubeconfig());
    command
}

/// Runs kubectl with `args` (and `stdin`); Ok(stdout) or Err(stderr).
pub fn run(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut command = kubectl();
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// kubectl that must succeed.
pub fn must(args: &[&str], stdin: Option<&str>) -> String {
    run(args, stdin).unwrap_or_else(|e| panic!("kubectl {}: {e}", args.join(" ")))
}

/// The `lws` binary the controller runs.
pub fn lws_cli() -> Command {
    let path = std::env::var("LWS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/release/lws"));
    Command::new(path)
}

/// GET `url` with curl: the body, or curl's error.
pub fn http_get(url: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-fsS", url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What an HTTPS GET answered: the status code, the HTTP version and the body.
pub struct HttpsReply {
    pub status: u16,
    pub version: String,
    pub body: String,
}

/// GET `url` over HTTPS without verifying the certificate (self-signed, as upstream's metrics
/// server's), with `token` as the bearer token when given.
pub fn https_get(url: &str, token: Option<&str>) -> Result<HttpsReply, String> {
    let mut curl = Command::new("curl");
    curl.args(["-ksS", "-w", "\n%{http_code} %{http_version}", url]);
    if let Some(token) = token {
        curl.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = curl.output().map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, trailer) = text.rsplit_once('\n').ok_or("no status line")?;
    let (status, version) = trailer.split_once(' ').ok_or("no status line")?;
    Ok(HttpsReply {
        status: status.parse().map_err(|_| format!("status {status:?}"))?,
        version: version.to_string(),
        body: body.to_string(),
    })
}

/// Polls `check` every 500 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A namespace of one test, deleted (without waiting) when dropped.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    pub fn new(prefix: &str) -> Self {
        if let Err(e) = run(&["get", "--raw=/readyz"], None) {
            panic!(
                "no cluster reachable through KUBECONFIG={}: {e}",
                kubeconfig()
            );
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("e2e-{prefix}-{}-{n}", std::process::id());
        must(&["create", "namespace", &name], None);
        Namespace { name }
    }

    pub fn apply(&self, object: &Value) -> Result<String, String> {
        run(
            &["apply", "-n", &self.name, "-f", "-"],
            Some(&object.to_string()),
        )
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run(&all, None)
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        self.kubectl(&["get", kind, name, "-o", "json"])
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    pub fn list(&self, kind: &str, selector: &str) -> Vec<Value> {
        let mut args = vec!["get", kind, "-o", "json"];
        if !selector.is_empty() {
            args.extend(["-l", selector]);
        }
        let out = self
            .kubectl(&args)
            .unwrap_or_else(|e| panic!("listing {kind}: {e}"));
        let list: Value = serde_json::from_str(&out).unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The pods of LeaderWorkerSet `lws`.
    pub fn pods(&self, lws: &str) -> Vec<Value> {
        self.list("pods", &format!("{NAME_LABEL}={lws}"))
    }

    /// Waits until `lws` has exactly `count` pods, all Running.
    pub fn wait_running(&self, lws: &str, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} Running pods of {lws} in {}", self.name),
            CONVERGE,
            || {
                let pods = self.pods(lws);
                let running = pods
                    .iter()
                    .filter(|p| p["status"]["phase"] == "Running")
                    .count();
                let deleting = pods
                    .iter()
                    .any(|p| !p["metadata"]["deletionTimestamp"].is_null());
                (pods.len() == count && running == count && !deleting).then_some(pods)
            },
        )
    }

    /// Waits until `status.readyReplicas` of `lws` is `ready` (and `replicas` is `replicas`).
    pub fn wait_ready(&self, lws: &str, replicas: i64, ready: i64) -> Value {
        eventually(
            &format!("{lws} status {ready} of {replicas} groups ready"),
            CONVERGE,
            || {
                let object = self.get("lws", lws)?;
                let status = &object["status"];
                (status["readyReplicas"].as_i64().unwrap_or(0) == ready
                    && status["replicas"].as_i64().unwrap_or(0) == replicas)
                    .then_some(object)
            },
        )
    }

    /// events.k8s.io events regarding `lws`, as (reason, note) pairs.
    pub fn events(&self, lws: &str) -> Vec<(String, String)> {
        self.list("events.events.k8s.io", "")
            .into_iter()
            .filter(|e| {
                e["regarding"]["name"] == lws && e["regarding"]["kind"] == "LeaderWorkerSet"
            })
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e["note"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

/// A LeaderWorkerSet with `replicas` groups of `size` pods running one small container.
pub fn lws(name: &str, replicas: i64, size: i64) -> Value {
    json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {
                "size": size,
                "workerTemplate": {"spec": {"containers": [{
                    "name": "nginx",
                    "image": "nginxinc/nginx-unprivileged:1.27",
                    "resources": {"requests": {"cpu": "50m"}},
                }]}},
            },
        },
    })
}

/// An example manifest from `examples/`, as JSON.
pub fn example(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join("examples").join(file)).unwrap();
    serde_norway::from_str(&text).unwrap()
}

pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

/// The value of env var `key` in the first container of `pod`.
pub fn env(pod: &Value, key: &str) -> Option<String> {
    pod["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == key)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

/// The `rack` label of the node `pod` runs on.
pub fn rack_of(pod: &Value) -> String {
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let out = must(
        &[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.metadata.labels.rack}",
        ],
        None,
    );
    out.trim().to_string()
}

/// The condition `type` of `object`'s status, as (status, reason, message).
pub fn condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
}
