//! The Helm chart `charts/lws` against `lws install`: one set of objects, two renderers.
//!
//! `helm template` with default values must give exactly the objects of `lws install` (and
//! `certManagement.mode=cert-manager` those of `lws install --cert-manager`), less two things
//! the renderers differ in on purpose: Helm's own metadata labels, and the Namespace `lws install`
//! prints first (Helm creates it with `--create-namespace`). The chart's CRD must be byte for byte
//! `lws crd`.
//!
//! helm is found through `LWS_HELM` (`make helm-lint` sets it from `charts/helm.sh`), else in
//! the cache where `charts/helm.sh` builds it. Without one the helm tests say SKIPPED on stderr
//! and pass, unless `LWS_HELM_REQUIRED=1` (as `make helm-lint` sets), where they fail.

use serde::Deserialize as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HELM_VERSION: &str = "v3.22.0";
const CRD_FILE: &str = "charts/lws/crds/leaderworkerset.x-k8s.io_leaderworkersets.yaml";
/// Labels only Helm renders (`_helpers.tpl` `lws.helmLabels`).
const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &Path, args: &[&str]) -> String {
    let output: Output = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {}: {}\n{}",
        program.display(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn lws(args: &[&str]) -> String {
    run(Path::new(env!("CARGO_BIN_EXE_lws")), args)
}

/// The helm binary, or None (and a loud SKIPPED) when there is none and none is required.
fn helm() -> Option<PathBuf> {
    let cached = || {
        let cache = std::env::var_os("LWS_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/lws")))?;
        let path = cache.join(format!("bin/helm-{HELM_VERSION}/helm"));
        path.is_file().then_some(path)
    };
    let found = match std::env::var_os("LWS_HELM") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => cached(),
    };
    if found.is_none() {
        assert!(
            std::env::var("LWS_HELM_REQUIRED").as_deref() != Ok("1"),
            "no helm: set LWS_HELM or build it with charts/helm.sh"
        );
        // Straight to stderr, past the test harness's capture, so a plain `cargo test` shows it.
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the chart parity tests: no helm (LWS_HELM unset, none in the cache); \
                 `make helm-lint` builds it and runs them"
            );
        });
    }
    found
}

/// Parses a YAML stream (helm's output, with its `# Source:` comments and empty documents).
fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn helm_template(helm: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "lws",
        "charts/lws",
        "--namespace",
        "lws-system",
        "--include-crds",
    ];
    args.extend(extra);
    documents(&run(helm, &args))
}

fn lws_install(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["install", "-o", "json"];
    args.extend(extra);
    let list: Value = serde_json::from_str(&lws(&args)).expect("a JSON List");
    list["items"].as_array().expect("items").clone()
}

/// `Kind/namespace/name`, the key objects are compared by.
fn key(object: &Value) -> String {
    let metadata = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        metadata["namespace"].as_str().unwrap_or(""),
        metadata["name"].as_str().unwrap_or("?")
    )
}

/// Drops what only one renderer has: the Namespace object and Helm's labels (and a `labels`
/// map they leave empty).
fn comparable(objects: Vec<Value>) -> BTreeMap<String, Value> {
    let mut by_key = BTreeMap::new();
    for mut object in objects {
        if object["kind"] == "Namespace" {
            continue;
        }
        if let Some(labels) = object["metadata"]
            .get_mut("labels")
            .and_then(Value::as_object_mut)
        {
            for label in HELM_LABELS {
                labels.remove(label);
            }
            if labels.is_empty() {
                object["metadata"].as_object_mut().unwrap().remove("labels");
            }
        }
        let key = key(&object);
        assert!(by_key.insert(key.clone(), object).is_none(), "{key} twice");
    }
    by_key
}

/// One line per difference: `path: helm X, lws install Y`.
fn diff_values(path: &str, helm: &Value, lws: &Value, out: &mut Vec<String>) {
    match (helm, lws) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (a.get(k), b.get(k));
                let sub = format!("{path}.{k}");
                match (x, y) {
                    (Some(x), Some(y)) => diff_values(&sub, x, y, out),
                    (Some(x), None) => out.push(format!("{sub}: only helm has {x}")),
                    (None, Some(y)) => out.push(format!("{sub}: only lws install has {y}")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if helm != lws => out.push(format!("{path}: helm {helm}, lws install {lws}")),
        _ => {}
    }
}

/// Every difference between the two renderings, by object then field.
fn differences(helm: Vec<Value>, lws: Vec<Value>) -> Vec<String> {
    let (helm, lws) = (comparable(helm), comparable(lws));
    let mut out = Vec::new();
    for key in helm
        .keys()
        .chain(lws.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (helm.get(key), lws.get(key)) {
            (Some(a), Some(b)) => {
                let mut fields = Vec::new();
                diff_values("", a, b, &mut fields);
                out.extend(fields.into_iter().map(|f| format!("{key}: {f}")));
            }
            (Some(_), None) => out.push(format!("{key}: only helm renders it")),
            (None, Some(_)) => out.push(format!("{key}: only lws install renders it")),
            (None, None) => unreachable!(),
        }
    }
    out
}

fn assert_no_differences(what: &str, differences: Vec<String>) {
    assert!(
        differences.is_empty(),
        "{what}: helm template and lws install differ ({} differences):\n  {}",
        differences.len(),
        differences.join("\n  ")
    );
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container(objects: &[Value]) -> &Value {
    &find(objects, "Deployment", "lws-controller-manager")["spec"]["template"]["spec"]["containers"]
        [0]
}

#[test]
fn the_charts_crd_is_lws_crd() {
    let file = std::fs::read_to_string(root().join(CRD_FILE)).expect("the chart's CRD file");
    assert!(
        file == lws(&["crd"]),
        "{CRD_FILE} is not `lws crd`'s output: regenerate it with `make chart-crd`"
    );
}

#[test]
fn the_chart_is_versioned_with_the_workspace() {
    let chart: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("charts/lws/Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn helm_template_with_default_values_is_lws_install() {
    let Some(helm) = helm() else { return };
    let lws = lws_install(&[]);
    assert_eq!(
        (lws[0]["kind"].as_str(), lws[0]["metadata"]["name"].as_str()),
        (Some("Namespace"), Some("lws-system")),
        "lws install prints its Namespace first"
    );
    let helm = helm_template(&helm, &[]);
    assert!(
        helm.iter().all(|o| o["kind"] != "Namespace"),
        "the chart renders no Namespace"
    );
    assert_eq!(helm.len() + 1, lws.len());
    assert_no_differences("default values", differences(helm, lws));
}

#[test]
fn helm_template_in_cert_manager_mode_is_lws_install_cert_manager() {
    let Some(helm) = helm() else { return };
    let helm = helm_template(&helm, &["--set", "certManagement.mode=cert-manager"]);
    let lws = lws_install(&["--cert-manager"]);
    assert_no_differences("cert-manager mode", differences(helm, lws));
}

#[test]
fn helm_template_with_a_scheduler_provider_is_lws_install_with_it() {
    let Some(helm) = helm() else { return };
    let helm = helm_template(
        &helm,
        &[
            "--set",
            "gangSchedulingManagement.schedulerProvider=volcano",
        ],
    );
    let lws = lws_install(&["--scheduler-provider", "volcano"]);
    let role = find(&lws, "ClusterRole", "lws-manager-role");
    assert!(role["rules"].to_string().contains("podgroups"), "{role:#}");
    assert_no_differences("schedulerProvider=volcano", differences(helm, lws));
}

/// The comparison itself: a changed value on either side is a reported difference.
#[test]
fn a_changed_value_on_either_side_is_a_difference() {
    let Some(helm) = helm() else { return };
    let found = differences(
        helm_template(&helm, &["--set", "replicas=3"]),
        lws_install(&[]),
    );
    assert_eq!(
        found,
        ["Deployment/lws-system/lws-controller-manager: .spec.replicas: helm 3, lws install 2"]
    );
    let found = differences(
        helm_template(&helm, &[]),
        lws_install(&["--image", "registry.example/lws:9"]),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(".spec.template.spec.containers[0].image"),
        "{found:?}"
    );
    let found = differences(
        helm_template(&helm, &["--set", "certManagement.mode=cert-manager"]),
        lws_install(&[]),
    );
    assert!(found.contains(
        &"Secret/lws-system/lws-webhook-server-cert: only lws install renders it".to_string()
    ));
    assert!(found
        .contains(&"Certificate/lws-system/lws-serving-cert: only helm renders it".to_string()));
}

#[test]
fn values_reach_the_deployment() {
    let Some(helm) = helm() else { return };
    let objects = helm_template(
        &helm,
        &[
            "--set",
            "hostNetwork=true,priorityClassName=system-cluster-critical,logLevel=debug,logFormat=text",
            "--set",
            "gangSchedulingManagement.schedulerProvider=volcano,certManagement.internal.validity=2m",
            "--set",
            "leaderElection.enabled=false,image.repository=registry.example/lws,image.tag=dev",
            "--set-string",
            "nodeSelector.lws\\.x-k8s\\.io/real-node=true",
            "--set",
            "env[0].name=EXTRA,env[0].value=1",
        ],
    );
    let deployment = find(&objects, "Deployment", "lws-controller-manager");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(
        pod["nodeSelector"],
        json!({"lws.x-k8s.io/real-node": "true"})
    );
    let container = container(&objects);
    assert_eq!(container["image"], "registry.example/lws:dev");
    assert_eq!(
        container["args"],
        json!([
            "controller",
            "--webhook-addr=$(POD_IP):9443",
            "--health-addr=$(POD_IP):8081",
            "--metrics-bind-address=$(POD_IP):8443",
            "--cert-management=internal",
            "--cert-validity=2m",
            "--leader-elect=false",
            "--log-format=text",
            "--log-level=debug",
            "--scheduler-provider=volcano",
        ])
    );
    let env: Vec<&Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(env, ["POD_NAMESPACE", "POD_NAME", "POD_IP", "EXTRA"]);
}

#[test]
fn the_values_schema_rejects_an_unknown_cert_mode() {
    let Some(helm) = helm() else { return };
    let output = Command::new(&helm)
        .args([
            "template",
            "lws",
            "charts/lws",
            "--set",
            "certManagement.mode=vault",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "helm accepted certManagement.mode=vault"
    );
    assert!(stderr.contains("/certManagement/mode"), "{stderr}");
}

#[test]
fn the_service_monitor_is_optional_and_selects_the_metrics_service() {
    let Some(helm) = helm() else { return };
    let default = helm_template(&helm, &[]);
    assert!(default.iter().all(|o| o["kind"] != "ServiceMonitor"));
    let objects = helm_template(&helm, &["--set", "metrics.serviceMonitor.enabled=true"]);
    let monitor = find(
        &objects,
        "ServiceMonitor",
        "lws-controller-manager-metrics-monitor",
    );
    let service = find(
        &objects,
        "Service",
        "lws-controller-manager-metrics-service",
    );
    for (label, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][label], value, "{label}");
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8443);
    assert_eq!(monitor["spec"]["endpoints"][0]["scheme"], "https");
}

#[test]
fn the_real_node_values_put_the_controller_on_the_real_nodes() {
    let Some(helm) = helm() else { return };
    let objects = helm_template(
        &helm,
        &[
            "-f",
            "tests/cluster/real-node-values.yaml",
            "--set-string",
            "env[1].value=40123",
        ],
    );
    let pod = &find(&objects, "Deployment", "lws-controller-manager")["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(
        pod["nodeSelector"],
        json!({"lws.x-k8s.io/real-node": "true"})
    );
    assert_eq!(pod["tolerations"][0]["key"], "lws.x-k8s.io/real-node");
    assert_eq!(pod["tolerations"][0]["effect"], "NoSchedule");
    let env = pod["containers"][0]["env"].as_array().unwrap();
    let value = |name: &str| {
        let var = env.iter().find(|e| e["name"] == name);
        var.unwrap_or_else(|| panic!("no {name} in {env:?}"))["value"].clone()
    };
    assert_eq!(value("KUBERNETES_SERVICE_HOST"), "127.0.0.1");
    assert_eq!(
        value("KUBERNETES_SERVICE_PORT"),
        "40123",
        "make deploy sets env[1]"
    );
    // Two pods on a node's network cannot both hold its ports: no surge pod.
    assert_eq!(
        find(&objects, "Deployment", "lws-controller-manager")["spec"]["strategy"],
        json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
}
