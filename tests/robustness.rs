//! Property test: manifests mutated at random paths into random shapes never make the core
//! panic. Every operation answers (a result or problems) or reports a protocol fault.
//!
//! Deterministic: the generator is seeded, so a failure names an iteration that reproduces.

mod support;

use lws_core::ops::names;
use serde_json::{json, Value};
use support::Random;

/// Values of every JSON type, including the edge numbers the rules compare against.
fn random_value(random: &mut Random) -> Value {
    match random.below(14) {
        0 => Value::Null,
        1 => json!(random.chance(50)),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(i64::MAX),
        5 => json!(2_147_483_648u64),
        6 => json!(1.5),
        7 => json!(""),
        8 => json!("100%"),
        9 => json!("-5%"),
        10 => json!({}),
        11 => json!([]),
        12 => json!([{"name": "x"}, 3, null]),
        _ => json!({"nested": {"deeper": ["a", {"b": -7}]}}),
    }
}

/// Every path (as JSON pointer segments) in `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(key.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(index.to_string());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn pointer(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Replaces, deletes or adds one field somewhere in `manifest`.
fn mutate(manifest: &mut Value, random: &mut Random) {
    let mut all = Vec::new();
    paths(manifest, &mut Vec::new(), &mut all);
    let target = random.pick(&all).clone();
    let new_value = random_value(random);
    match random.below(3) {
        0 if !target.is_empty() => {
            let (last, parent) = target.split_last().unwrap();
            if let Some(Value::Object(map)) = manifest.pointer_mut(&pointer(parent)) {
                map.remove(last);
            }
        }
        1 => {
            if let Some(Value::Object(map)) = manifest.pointer_mut(&pointer(&target)) {
                let key = random.pick(&[
                    "replicas",
                    "size",
                    "subGroupSize",
                    "env",
                    "metadata",
                    "spec",
                    "resources",
                ]);
                map.insert(key.to_string(), new_value);
            }
        }
        _ => {
            if let Some(slot) = manifest.pointer_mut(&pointer(&target)) {
                *slot = new_value;
            }
        }
    }
}

#[test]
fn mutated_manifests_never_panic_the_core() {
    let examples: Vec<Value> = support::examples().into_iter().map(|(_, v)| v).collect();
    let mut random = Random::new(539);
    let mut answered = 0;
    for iteration in 0..1500 {
        let mut manifest = random.pick(&examples).clone();
        for _ in 0..=random.below(4) {
            mutate(&mut manifest, &mut random);
        }
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let wrapped = serde_json::to_vec(&json!({"lws": manifest})).unwrap();
        let placement = serde_json::to_vec(&json!({"lws": manifest, "nodes": [
            {"name": "n0", "labels": {"rack": "r0"}}, {"name": "n1", "labels": {"rack": "r1"}}
        ]}))
        .unwrap();
        let reconcile =
            serde_json::to_vec(&json!({"lws": manifest, "now": "2026-11-27T00:00:00Z"})).unwrap();
        for (operation, payload) in [
            (names::EXPAND, &bytes),
            (names::DEFAULT, &bytes),
            (names::VALIDATE_LWS, &wrapped),
            (names::PLACEMENT, &placement),
            (names::RECONCILE, &reconcile),
        ] {
            // A panic fails the test with this iteration in the message.
            let result = std::panic::catch_unwind(|| lws_core::ops::call(operation, payload));
            assert!(
                result.is_ok(),
                "iteration {iteration}: {operation} panicked on {manifest}"
            );
            answered += usize::from(result.unwrap().is_ok());
        }
    }
    // Most calls are answered (with problems or results); protocol faults are the minority.
    assert!(
        answered > 1500 * 5 / 2,
        "only {answered} calls were answered"
    );
}

#[test]
fn mutated_pods_never_panic_the_pod_webhook() {
    let list: Value = serde_json::from_slice(
        &lws_core::ops::call(
            names::EXPAND,
            &serde_json::to_vec(&support::example("lws-subgroup.yaml")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let pods: Vec<Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .cloned()
        .collect();
    let mut random = Random::new(918);
    for iteration in 0..1500 {
        let mut pod = random.pick(&pods).clone();
        for _ in 0..=random.below(3) {
            mutate(&mut pod, &mut random);
        }
        let payload =
            serde_json::to_vec(&json!({"pod": pod, "context": {"schedulerProvider": "volcano"}}))
                .unwrap();
        let result = std::panic::catch_unwind(|| lws_core::ops::call(names::MUTATE_POD, &payload));
        assert!(
            result.is_ok(),
            "iteration {iteration}: mutate_pod panicked on {pod}"
        );
    }
}
