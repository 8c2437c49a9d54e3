//! `lws.wasm` as its hosts see it: its ABI, byte-for-byte parity between the four ways it runs,
//! the Kubewarden policy path, and faults that must stay inside the sandbox.
//!
//! The four hosts: `lws-core` compiled natively; the module in our wasmtime runtime
//! (`lws_host::guest`); the module through `wapc` + `wasmtime-provider`, the engine Kubewarden
//! embeds; and the module in node through the npm loader in `wasm/js`.

mod support;

use lws_core::ops::names;
use lws_host::guest::{sha256_hex, GuestError, GuestRuntime, Limits, EMBEDDED_MODULE};
use std::time::Duration;
use support::{corpus, generated_manifests, kubewarden_request, module_bytes, run_node_batch};

/// The module's imports and exports, read from the binary itself.
#[test]
fn module_imports_only_wapc_and_exports_the_wapc_abi() {
    let bytes = module_bytes();
    let sections = support::wasm::read_sections(&bytes);
    assert!(!sections.imports.is_empty());
    for (module, name) in &sections.imports {
        assert_eq!(module, "wapc", "lws.wasm imports {module}.{name}");
        assert!(
            ["__guest_request", "__guest_response", "__guest_error"].contains(&name.as_str()),
            "lws.wasm imports wapc.{name}, which no waPC host needs to provide for it"
        );
    }
    for export in ["memory", "wapc_init", "__guest_call"] {
        assert!(
            sections.exports.iter().any(|e| e == export),
            "missing export {export}"
        );
    }
    let metadata = sections
        .custom
        .iter()
        .find(|(name, _)| name == "io.kubewarden.metadata")
        .expect("the io.kubewarden.metadata custom section");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.1).unwrap();
    assert_eq!(metadata["protocolVersion"], "v1");
    assert_eq!(metadata["executionMode"], "kubewarden-wapc");
    assert_eq!(metadata["mutating"], true);
    assert_eq!(metadata["rules"][0]["resources"][0], "leaderworkersets");
    assert_eq!(
        metadata["rules"][0]["operations"],
        serde_json::json!(["CREATE", "UPDATE"])
    );
}

/// The embedded module is the file `make wasm` wrote.
#[test]
fn embedded_module_is_the_built_file() {
    assert_eq!(sha256_hex(EMBEDDED_MODULE), sha256_hex(&module_bytes()));
}

/// Every operation, on the examples, the invalid corpus and generated manifests, gives the same
/// bytes from all four hosts.
#[test]
fn four_hosts_answer_byte_for_byte_alike() {
    let bytes = module_bytes();
    let runtime = GuestRuntime::from_bytes(&bytes, Limits::default()).unwrap();
    let wapc_host = support::wapc_host(&bytes);

    let mut calls: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut manifests = corpus();
    let generated = generated_manifests(1200);
    let valid_generated = generated
        .iter()
        .filter(|m| lws_core::ops::admit_new((*m).clone()).is_ok())
        .count();
    assert!(
        valid_generated >= 300,
        "only {valid_generated} generated manifests are valid"
    );
    assert!(
        generated.len() - valid_generated >= 300,
        "too few invalid generated manifests"
    );
    manifests.extend(generated);
    // The local cluster's shape for `placement`: 4 racks of 4 nodes (tests/cluster/README.md).
    let node = |n: usize| {
        let rack = format!("rack-{}", n / 4);
        serde_json::json!({"name": format!("{rack}-node-{}", n % 4), "labels": {"rack": rack}})
    };
    let nodes: Vec<_> = (0..16).map(node).collect();
    for manifest in &manifests {
        calls.push((names::EXPAND, serde_json::to_vec(manifest).unwrap()));
        calls.push((names::DEFAULT, serde_json::to_vec(manifest).unwrap()));
        let validate = serde_json::json!({"lws": manifest});
        calls.push((names::VALIDATE_LWS, serde_json::to_vec(&validate).unwrap()));
        let request = kubewarden_request(manifest, serde_json::json!({"maxGroupSize": 4}));
        calls.push((names::VALIDATE, serde_json::to_vec(&request).unwrap()));
        let placement = serde_json::json!({"lws": manifest, "nodes": nodes});
        calls.push((names::PLACEMENT, serde_json::to_vec(&placement).unwrap()));
    }
    for input in support::reconcile_inputs(&manifests) {
        calls.push((names::RECONCILE, serde_json::to_vec(&input).unwrap()));
    }
    calls.push((names::PROTOCOL_VERSION, b"{}".to_vec()));
    calls.push((names::VALIDATE_SETTINGS, br#"{"maxTotalPods": 0}"#.to_vec()));

    let (node_sha256, node_answers) = run_node_batch(&bytes, &calls);
    assert_eq!(node_sha256, sha256_hex(&bytes), "node loaded another file");
    assert_eq!(runtime.sha256(), sha256_hex(&bytes));

    for (index, (operation, payload)) in calls.iter().enumerate() {
        let native = lws_core::ops::call(operation, payload).unwrap();
        let wasm = runtime.call(operation, payload).unwrap();
        let wapc = wapc_host.call(operation, payload).unwrap();
        let context = || format!("{operation} on {}", String::from_utf8_lossy(payload));
        assert!(native == wasm, "native and wasmtime differ: {}", context());
        assert!(native == wapc, "native and wapc differ: {}", context());
        assert!(
            native == node_answers[index],
            "native and node differ: {}",
            context()
        );
    }
}

/// The Kubewarden path accepts the examples (mutating when defaults apply) and rejects each
/// invalid manifest with its path and message.
#[test]
fn kubewarden_validate_accepts_examples_and_rejects_the_corpus() {
    let host = support::wapc_host(&module_bytes());
    for (name, manifest) in support::examples() {
        let request = kubewarden_request(&manifest, serde_json::json!({}));
        let answer = host
            .call(names::VALIDATE, &serde_json::to_vec(&request).unwrap())
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["accepted"], true, "{name}: {answer}");
        // Every example leaves some default unset (rollout strategy, network config, ...).
        let mutated = &answer["mutated_object"];
        assert!(
            mutated["spec"]["networkConfig"]["subdomainPolicy"].is_string(),
            "{name}"
        );
        assert_eq!(
            mutated["metadata"], manifest["metadata"],
            "{name}: metadata is untouched"
        );
    }
    for case in support::invalid_cases() {
        let Some(manifest) = case.manifest.clone() else {
            continue;
        };
        let mut request = kubewarden_request(&manifest, serde_json::json!({}));
        if let Some(old) = &case.old {
            request["request"]["operation"] = "UPDATE".into();
            request["request"]["oldObject"] = old.clone();
        }
        let answer = host
            .call(names::VALIDATE, &serde_json::to_vec(&request).unwrap())
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["accepted"], false, "{}: {answer}", case.name);
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&case.expect),
            "{}: {message:?} lacks {:?}",
            case.name,
            case.expect
        );
    }
}

/// Each operator setting is enforced; bad settings are refused by `validate_settings`.
#[test]
fn kubewarden_settings_are_enforced() {
    let host = support::wapc_host(&module_bytes());
    let sample = support::example("lws.yaml");
    let exclusive = support::example("lws-exclusive-placement.yaml");
    let verdict = |manifest: &serde_json::Value, settings: serde_json::Value| {
        let request = kubewarden_request(manifest, settings);
        let answer = host
            .call(names::VALIDATE, &serde_json::to_vec(&request).unwrap())
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&answer).unwrap()
    };
    let cases = [
        (&sample, serde_json::json!({"maxGroupSize": 3}), Some("spec.leaderWorkerTemplate.size: Invalid value: 4: must be no more than 3")),
        (&sample, serde_json::json!({"maxGroupSize": 4}), None),
        (&sample, serde_json::json!({"maxTotalPods": 11}), Some("spec.replicas: Invalid value: 3: replicas × size is 12, more than 11")),
        (&sample, serde_json::json!({"maxTotalPods": 12}), None),
        (&sample, serde_json::json!({"requireExclusiveTopology": true}), Some("metadata.annotations[leaderworkerset.sigs.k8s.io/exclusive-topology]: Required value")),
        (&exclusive, serde_json::json!({"requireExclusiveTopology": true}), None),
        (&exclusive, serde_json::json!({"allowedTopologyKeys": ["zone"]}), Some("Unsupported value: \"rack\": supported values: \"zone\"")),
        (&exclusive, serde_json::json!({"allowedTopologyKeys": ["rack"]}), None),
    ];
    for (manifest, settings, expected) in cases {
        let answer = verdict(manifest, settings.clone());
        match expected {
            None => assert_eq!(answer["accepted"], true, "{settings}: {answer}"),
            Some(text) => {
                assert_eq!(answer["accepted"], false, "{settings}: {answer}");
                assert_eq!(answer["code"], 422);
                let message = answer["message"].as_str().unwrap();
                assert!(message.contains(text), "{settings}: {message}");
            }
        }
    }
    for bad in [
        r#"{"maxGroupSize": 0}"#,
        r#"{"maxTotalPods": -5}"#,
        r#"{"allowedTopologyKeys": [""]}"#,
        r#"{"unknown": 1}"#,
        r#"{"maxGroupSize": "x"}"#,
    ] {
        let answer = host.call(names::VALIDATE_SETTINGS, bad.as_bytes()).unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["valid"], false, "{bad}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid settings"),
            "{bad}"
        );
    }
    let answer = host.call(names::PROTOCOL_VERSION, b"").unwrap();
    assert_eq!(answer, b"\"v1\"");
}

const LOOPING_MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "wapc_init"))
  (func (export "__guest_call") (param i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))"#;

const GREEDY_MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "wapc_init"))
  (func (export "__guest_call") (param i32 i32) (result i32)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 64)) (i32.const -1))))
    unreachable))"#;

/// A guest that never returns is interrupted at its deadline; the runtime serves on.
#[test]
fn a_looping_guest_times_out_and_the_host_keeps_serving() {
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let runtime = GuestRuntime::from_bytes(LOOPING_MODULE.as_bytes(), limits).unwrap();
    for _ in 0..2 {
        assert!(matches!(
            runtime.call("expand", b"{}"),
            Err(GuestError::Timeout(_))
        ));
    }
    let real = GuestRuntime::embedded(Limits::default()).unwrap();
    assert_eq!(real.call(names::PROTOCOL_VERSION, b"").unwrap(), b"\"v1\"");
}

/// A guest that grows memory without end hits the cap and fails alone.
#[test]
fn a_greedy_guest_runs_out_of_memory_and_the_host_keeps_serving() {
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let runtime = GuestRuntime::from_bytes(GREEDY_MODULE.as_bytes(), limits).unwrap();
    for _ in 0..2 {
        let error = runtime.call("expand", b"{}").unwrap_err();
        assert!(matches!(error, GuestError::OutOfMemory(_)), "{error}");
    }
    // The real module under a cap too small for a large expansion fails the same way.
    let tight = GuestRuntime::embedded(Limits {
        memory_bytes: 2 << 20,
        ..Limits::default()
    })
    .unwrap();
    let mut big = support::example("lws.yaml");
    big["spec"]["replicas"] = 400.into();
    big["spec"]["leaderWorkerTemplate"]["size"] = 16.into();
    let error = tight
        .call(names::EXPAND, &serde_json::to_vec(&big).unwrap())
        .unwrap_err();
    assert!(matches!(error, GuestError::OutOfMemory(_)), "{error}");
    assert_eq!(tight.call(names::PROTOCOL_VERSION, b"").unwrap(), b"\"v1\"");
}

/// Random bytes to every operation are answered or refused, never a crash, in both runtimes.
#[test]
fn random_bytes_never_crash_a_host() {
    let bytes = module_bytes();
    let runtime = GuestRuntime::from_bytes(&bytes, Limits::default()).unwrap();
    let wapc_host = support::wapc_host(&bytes);
    let mut random = support::Random::new(7);
    for round in 0..200 {
        let len = random.below(300) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| random.below(256) as u8).collect();
        if round % 3 == 0 {
            // Near-JSON is more interesting than noise.
            payload = format!("{{\"spec\": {}", String::from_utf8_lossy(&payload)).into_bytes();
        }
        for operation in names::ALL.iter().chain(&["no_such_operation"]) {
            let native = lws_core::ops::call(operation, &payload).map_err(|e| e.to_string());
            let wasm = runtime.call(operation, &payload);
            match (&native, &wasm) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                // waPC answers an unregistered name itself, in its own words.
                (Err(_), Err(GuestError::Protocol { .. })) if !names::ALL.contains(operation) => {}
                (Err(a), Err(GuestError::Protocol { message, .. })) => assert_eq!(a, message),
                other => panic!("{operation}: native and wasm disagree: {other:?}"),
            }
            let _ = wapc_host.call(operation, &payload);
        }
    }
    assert_eq!(
        runtime.call(names::PROTOCOL_VERSION, b"").unwrap(),
        b"\"v1\""
    );
}
