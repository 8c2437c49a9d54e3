//! Fixtures shared by the suites: the module file, example and invalid manifests, generated
//! manifests, and drivers for the waPC engine and node.

// Each test target uses a different subset of these helpers.
#![allow(dead_code)]

mod random;
pub mod wasm;

pub use random::Random;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bytes of `target/lws.wasm` (or `$LWS_WASM`), as `make wasm` wrote them.
pub fn module_bytes() -> Vec<u8> {
    let path = std::env::var_os("LWS_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/lws.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make wasm`)", path.display()))
}

/// Parses one YAML document into JSON.
pub fn yaml(text: &str) -> serde_json::Value {
    serde_norway::from_str(text).expect("fixture YAML parses")
}

/// Every LeaderWorkerSet under `examples/`, by file name.
pub fn examples() -> Vec<(String, serde_json::Value)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let value = yaml(&std::fs::read_to_string(&path).unwrap());
            if value["kind"] == "LeaderWorkerSet" {
                found.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    value,
                ));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        found.len() >= 8,
        "examples/ holds the seed's and upstream's samples"
    );
    found
}

/// One example by file name.
pub fn example(name: &str) -> serde_json::Value {
    yaml(&std::fs::read_to_string(root().join("examples").join(name)).unwrap())
}

/// One entry of `tests/invalid/`: a manifest (absent when the file is not even YAML/JSON), the
/// stored object for update cases, and the line the CLI must print.
pub struct InvalidCase {
    pub name: String,
    pub old: Option<serde_json::Value>,
    pub manifest: Option<serde_json::Value>,
    pub expect: String,
}

/// The invalid-manifest corpus (format: `tests/invalid/README.md`).
pub fn invalid_cases() -> Vec<InvalidCase> {
    let dir = root().join("tests/invalid");
    let mut cases = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let is_manifest = name.ends_with(".yaml") || name.ends_with(".json");
        if !is_manifest || name.ends_with(".old.yaml") || name.ends_with(".old.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = expectation(&path, &text);
        let stem = name.rsplit_once('.').unwrap().0;
        let old = ["yaml", "json"]
            .iter()
            .map(|ext| dir.join(format!("{stem}.old.{ext}")))
            .find(|p| p.exists())
            .map(|p| yaml(&std::fs::read_to_string(p).unwrap()));
        let documents: Vec<serde_json::Value> = match single_document(&text) {
            Some(value) => vec![value],
            None => Vec::new(),
        };
        cases.push(InvalidCase {
            name,
            old,
            manifest: documents.into_iter().next(),
            expect,
        });
    }
    assert!(
        cases.len() >= 30,
        "the corpus holds at least 30 invalid manifests"
    );
    cases
}

/// The manifest when the file holds exactly one parseable, non-empty object document.
fn single_document(text: &str) -> Option<serde_json::Value> {
    use serde::Deserialize;
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(document).ok()?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    (documents.len() == 1 && documents[0].is_object()).then(|| documents.remove(0))
}

fn expectation(path: &Path, text: &str) -> String {
    if let Some(line) = text.lines().find_map(|l| l.strip_prefix("# expect: ")) {
        return line.trim_end().to_string();
    }
    let sibling = path.with_extension("expect");
    std::fs::read_to_string(&sibling)
        .unwrap_or_else(|_| {
            panic!(
                "{}: no `# expect:` line and no .expect file",
                path.display()
            )
        })
        .trim_end()
        .to_string()
}

/// Examples and every parseable invalid manifest.
pub fn corpus() -> Vec<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = examples().into_iter().map(|(_, v)| v).collect();
    all.extend(invalid_cases().into_iter().filter_map(|c| c.manifest));
    all
}

/// A Kubewarden `ValidationRequest` for creating `lws`.
pub fn kubewarden_request(
    lws: &serde_json::Value,
    settings: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "settings": settings,
        "request": {
            "uid": "0df28fbd-5f5f-4f16-a0a4-8b7f7c0d3f11",
            "kind": {"group": "leaderworkerset.x-k8s.io", "version": "v1", "kind": "LeaderWorkerSet"},
            "resource": {"group": "leaderworkerset.x-k8s.io", "version": "v1", "resource": "leaderworkersets"},
            "requestKind": {"group": "leaderworkerset.x-k8s.io", "version": "v1", "kind": "LeaderWorkerSet"},
            "requestResource": {"group": "leaderworkerset.x-k8s.io", "version": "v1", "resource": "leaderworkersets"},
            "name": lws["metadata"]["name"],
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": lws,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// The module in `wapc` + `wasmtime-provider`, as Kubewarden runs policies.
pub fn wapc_host(bytes: &[u8]) -> wapc::WapcHost {
    let engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
        .module_bytes(bytes)
        .build()
        .expect("wasmtime-provider loads lws.wasm");
    wapc::WapcHost::new(Box::new(engine), None).expect("waPC host starts")
}

/// Runs every call through the npm loader in node; returns the sha256 of the file node loaded
/// and each answer's bytes (an error answer is the error text, which fails the comparison).
pub fn run_node_batch(bytes: &[u8], calls: &[(&str, Vec<u8>)]) -> (String, Vec<Vec<u8>>) {
    let loader_dir = root().join("wasm/js");
    let module_path = std::env::temp_dir().join(format!("lws-parity-{}.wasm", std::process::id()));
    std::fs::write(&module_path, bytes).unwrap();
    let mut input = String::new();
    for (operation, payload) in calls {
        input.push_str(operation);
        input.push(' ');
        input.push_str(&hex(payload));
        input.push('\n');
    }
    let mut child = Command::new("node")
        .arg(root().join("tests/parity/node-batch.mjs"))
        .arg(loader_dir.join("index.js"))
        .arg(&module_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (Node 20 is part of the toolchain)");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let _ = std::fs::remove_file(&module_path);
    assert!(output.status.success(), "node batch failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let sha256 = lines
        .next()
        .expect("node prints the module's sha256 first")
        .to_string();
    let answers: Vec<Vec<u8>> = lines.map(unhex).collect();
    assert_eq!(answers.len(), calls.len(), "node answered every call");
    (sha256, answers)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `count` LeaderWorkerSets varying every field the rules read, valid and invalid alike.
pub fn generated_manifests(count: usize) -> Vec<serde_json::Value> {
    let mut random = Random::new(2026);
    (0..count).map(|i| generate_one(&mut random, i)).collect()
}

fn generate_one(random: &mut Random, index: usize) -> serde_json::Value {
    use serde_json::json;
    let name = if random.chance(5) {
        random
            .pick(&[
                "Bad_Name",
                "9lives",
                "",
                "a-very-long-name-that-goes-on-and-on-beyond-the-sixty-three-char-limit",
            ])
            .to_string()
    } else {
        format!("gen-{index}")
    };
    let size = *random.pick(&[1, 2, 3, 4, 5, 8, 0, -1]);
    let replicas = *random.pick(&[0, 1, 2, 3, 5, -2, 1_000_001]);
    let container = |random: &mut Random, name: &str| {
        let mut c = json!({"name": name, "image": "registry.example/app:1"});
        if random.chance(15) {
            c["resources"] = json!({"limits": {"google.com/tpu": 4}});
        }
        if random.chance(20) {
            c["env"] = json!([{"name": "LWS_WORKER_INDEX", "value": "stale"}, {"name": "MODEL", "value": "m"}]);
        }
        c
    };
    let worker = json!({"spec": {"containers": [container(random, "worker")]}});
    let mut template = json!({"size": size, "workerTemplate": worker});
    if random.chance(30) {
        template["leaderTemplate"] = json!({
            "metadata": {"labels": {"role": "leader"}},
            "spec": {"containers": [container(random, "leader")]}
        });
    }
    if random.chance(25) {
        template["restartPolicy"] = json!(random.pick(&[
            "RecreateGroupOnPodRestart",
            "RecreateGroupAfterStart",
            "Default",
            "None",
            "Sometimes"
        ]));
    }
    if random.chance(25) {
        let mut policy = json!({"subGroupSize": random.pick(&[1, 2, 3, 0])});
        if random.chance(40) {
            policy["subGroupPolicyType"] = json!(random.pick(&["LeaderWorker", "LeaderExcluded"]));
        }
        template["subGroupPolicy"] = policy;
    }
    if random.chance(10) {
        template["volumeClaimTemplates"] = json!([{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }]);
    }
    let mut spec = json!({"replicas": replicas, "leaderWorkerTemplate": template});
    if random.chance(30) {
        let value = |random: &mut Random| -> serde_json::Value {
            match random.below(4) {
                0 => json!(random.below(4)),
                1 => json!(format!("{}%", random.pick(&[0, 25, 50, 100, 150]))),
                2 => json!(-1),
                _ => json!("lots"),
            }
        };
        spec["rolloutStrategy"] = json!({
            "type": "RollingUpdate",
            "rollingUpdateConfiguration": {
                "maxUnavailable": value(random),
                "maxSurge": value(random),
                "partition": random.pick(&[0, 1, -1]),
            }
        });
    }
    if random.chance(20) {
        spec["networkConfig"] =
            json!({"subdomainPolicy": random.pick(&["Shared", "UniquePerReplica"])});
    }
    if random.chance(15) {
        spec["startupPolicy"] = json!(random.pick(&["LeaderCreated", "LeaderReady", "Eventually"]));
    }
    let mut annotations = serde_json::Map::new();
    if random.chance(20) {
        annotations.insert(
            "leaderworkerset.sigs.k8s.io/exclusive-topology".into(),
            json!("rack"),
        );
    }
    if random.chance(15) {
        annotations.insert(
            "leaderworkerset.sigs.k8s.io/subgroup-exclusive-topology".into(),
            json!("rack"),
        );
    }
    let mut metadata = json!({"name": name, "labels": {"team": "inference"}});
    if !annotations.is_empty() {
        metadata["annotations"] = annotations.into();
    }
    if random.chance(20) {
        metadata["namespace"] = json!(random.pick(&["serving", "default"]));
    }
    json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": metadata,
        "spec": spec,
    })
}

/// `reconcile` inputs for every admissible manifest: a fresh LWS, then the same LWS seeing the
/// leader StatefulSet its first plan applied (the steady state's first step).
pub fn reconcile_inputs(manifests: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut inputs = Vec::new();
    for (index, manifest) in manifests.iter().enumerate() {
        let Ok(mut lws) = lws_core::ops::admit_new(manifest.clone()) else {
            continue;
        };
        lws.metadata.uid = Some(format!("00000000-0000-0000-0000-{index:012}"));
        lws.metadata.generation = Some(1);
        let fresh = serde_json::json!({"lws": lws, "now": "2026-11-27T00:00:00Z"});
        let plan = lws_core::ops::call(
            lws_core::ops::names::RECONCILE,
            &serde_json::to_vec(&fresh).unwrap(),
        )
        .expect("reconcile answers an admissible LWS");
        let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
        let leader_sts = plan["apply"].as_array().and_then(|a| a.first()).cloned();
        let revisions: Vec<serde_json::Value> = plan["create"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter(|o| o["kind"] == "ControllerRevision")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        inputs.push(fresh.clone());
        inputs.push(serde_json::json!({
            "lws": lws,
            "now": "2026-11-27T00:00:05Z",
            "leaderStatefulSet": leader_sts,
            "revisions": revisions,
        }));
    }
    inputs
}
