//! The `lws` binary, run as a user runs it: the seed's expansion, the invalid corpus, engines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lws(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lws"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the lws binary runs")
}

fn json_stdout(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn pods(list: &serde_json::Value) -> Vec<&serde_json::Value> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "Pod")
        .collect()
}

#[test]
fn expand_lists_the_seeds_twelve_pods_in_order() {
    let list = json_stdout(&lws(&["expand", "-f", "examples/lws.yaml", "-o", "json"]));
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let names: Vec<&str> = pods(&list)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut expected = Vec::new();
    for group in 0..3 {
        expected.push(format!("leaderworkerset-sample-{group}"));
        for worker in 1..4 {
            expected.push(format!("leaderworkerset-sample-{group}-{worker}"));
        }
    }
    assert_eq!(names, expected);
}

#[test]
fn expand_gives_upstreams_labels_annotations_and_env() {
    let list = json_stdout(&lws(&["expand", "-f", "examples/lws.yaml", "-o", "json"]));
    for pod in pods(&list) {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let labels = &pod["metadata"]["labels"];
        let group: u32 = labels["leaderworkerset.sigs.k8s.io/group-index"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let worker = labels["leaderworkerset.sigs.k8s.io/worker-index"]
            .as_str()
            .unwrap();
        assert_eq!(
            labels["leaderworkerset.sigs.k8s.io/name"],
            "leaderworkerset-sample"
        );
        assert_eq!(
            labels["leaderworkerset.sigs.k8s.io/group-key"]
                .as_str()
                .unwrap()
                .len(),
            40
        );
        assert!(labels["leaderworkerset.sigs.k8s.io/template-revision-hash"].is_string());
        assert_eq!(
            pod["metadata"]["annotations"]["leaderworkerset.sigs.k8s.io/size"],
            "4"
        );
        assert_eq!(pod["metadata"]["namespace"], "default");
        assert_eq!(pod["spec"]["hostname"], name);
        assert_eq!(pod["spec"]["subdomain"], "leaderworkerset-sample");
        let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
        assert_eq!(env[0]["name"], "LWS_LEADER_ADDRESS");
        assert_eq!(
            env[0]["value"],
            format!("leaderworkerset-sample-{group}.leaderworkerset-sample.default")
        );
        assert_eq!(
            env[1],
            serde_json::json!({"name": "LWS_GROUP_SIZE", "value": "4"})
        );
        assert_eq!(
            env[2],
            serde_json::json!({"name": "LWS_WORKER_INDEX", "value": worker})
        );
        assert!(pod["metadata"].get("uid").is_none() && pod["spec"].get("nodeName").is_none());
    }
}

#[test]
fn expand_yaml_and_json_carry_the_same_objects() {
    let json = json_stdout(&lws(&[
        "expand",
        "-f",
        "examples/lws-subgroup.yaml",
        "-o",
        "json",
    ]));
    let yaml = lws(&["expand", "-f", "examples/lws-subgroup.yaml"]);
    assert!(yaml.status.success());
    let text = String::from_utf8(yaml.stdout).unwrap();
    let documents: Vec<serde_json::Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    assert_eq!(&documents, json["items"].as_array().unwrap());
}

#[test]
fn native_and_wasm_engines_print_the_same_bytes() {
    for example in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = example.unwrap().path();
        let path = path.to_str().unwrap();
        if path.contains("autoscaler") {
            continue;
        }
        let wasm = lws(&["expand", "-f", path, "-o", "json"]);
        let native = lws(&["expand", "-f", path, "-o", "json", "--engine", "native"]);
        assert!(
            wasm.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&wasm.stderr)
        );
        assert_eq!(wasm.stdout, native.stdout, "{path}");
    }
}

#[test]
fn a_module_is_loaded_only_with_its_pinned_hash() {
    let module = root().join("target/lws.wasm");
    let module = module.to_str().unwrap();
    let bytes = std::fs::read(module).unwrap();
    let sha256 = lws_host::guest::sha256_hex(&bytes);
    let ok = lws(&[
        "validate",
        "-f",
        "examples/lws.yaml",
        "--module",
        module,
        "--module-sha256",
        &sha256,
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = "0".repeat(64);
    let refused = lws(&[
        "validate",
        "-f",
        "examples/lws.yaml",
        "--module",
        module,
        "--module-sha256",
        &wrong,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("none of the pinned"));
    let unpinned = lws(&["validate", "-f", "examples/lws.yaml", "--module", module]);
    assert_eq!(unpinned.status.code(), Some(2));
}

#[test]
fn valid_examples_validate() {
    for example in [
        "lws.yaml",
        "lws-exclusive-placement.yaml",
        "lws-subgroup.yaml",
        "lws-tpu.yaml",
    ] {
        let output = lws(&["validate", "-f", &format!("examples/{example}")]);
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every corpus entry exits 1 from both `validate` and `expand`, printing its expected line.
#[test]
fn every_invalid_manifest_exits_1_with_its_path_and_message() {
    let dir = root().join("tests/invalid");
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".yaml") || name.ends_with(".json")) || name.contains(".old.") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = match text.lines().find_map(|l| l.strip_prefix("# expect: ")) {
            Some(line) => line.trim_end().to_string(),
            None => std::fs::read_to_string(path.with_extension("expect"))
                .unwrap()
                .trim_end()
                .to_string(),
        };
        let stem = name.rsplit_once('.').unwrap().0;
        let old = dir.join(format!("{stem}.old.yaml"));
        let file = path.to_str().unwrap();
        let mut commands = vec![vec!["validate", "-f", file]];
        if old.exists() {
            commands[0].extend(["--old", old.to_str().unwrap()]);
        } else {
            commands.push(vec!["expand", "-f", file]);
        }
        for args in commands {
            let output = lws(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{name} {args:?}: {stderr}");
            assert!(
                output.stdout.is_empty(),
                "{name}: nothing on stdout when invalid"
            );
            let matched = stderr
                .lines()
                .any(|line| line == expect || line.starts_with(&format!("{expect}: ")));
            assert!(
                matched,
                "{name} {:?}: expected {expect:?}, got:\n{stderr}",
                args[0]
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "checked {checked} corpus entries");
}
