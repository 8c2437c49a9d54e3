//! Per-call cost of the module's operations, natively and in wasmtime, at the seed's size
//! (3 groups × 4) and at a fleet's (100 groups × 8). `make bench` turns the estimates into
//! ratios (`tests/bench/summarize.py`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lws_core::ops::names;
use lws_host::guest::{GuestRuntime, Limits};
use std::hint::black_box;

/// The seed's sample resized to `replicas` × `size`, as the bytes every host receives.
fn sample(replicas: i32, size: i32) -> Vec<u8> {
    let text = include_str!("../examples/lws.yaml");
    let mut lws: serde_json::Value = serde_norway::from_str(text).expect("the sample parses");
    lws["spec"]["replicas"] = replicas.into();
    lws["spec"]["leaderWorkerTemplate"]["size"] = size.into();
    serde_json::to_vec(&lws).expect("JSON")
}

/// A `reconcile` input for the same LWS with its leader StatefulSet already applied.
fn reconcile_input(replicas: i32, size: i32) -> Vec<u8> {
    let manifest: serde_json::Value = serde_json::from_slice(&sample(replicas, size)).unwrap();
    let mut lws = lws_core::ops::admit_new(manifest).expect("the sample is valid");
    lws.metadata.uid = Some("7f3c7a52-0000-4000-8000-000000000001".into());
    lws.metadata.generation = Some(1);
    let fresh = serde_json::json!({"lws": lws, "now": "2026-11-27T00:00:00Z"});
    let plan = lws_core::ops::call(names::RECONCILE, &serde_json::to_vec(&fresh).unwrap()).unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    let input = serde_json::json!({
        "lws": lws,
        "now": "2026-11-27T00:00:05Z",
        "leaderStatefulSet": plan["apply"][0],
        "revisions": plan["create"].as_array().unwrap().iter()
            .filter(|o| o["kind"] == "ControllerRevision").collect::<Vec<_>>(),
    });
    serde_json::to_vec(&input).unwrap()
}

fn operations(c: &mut Criterion) {
    let runtime = GuestRuntime::embedded(Limits::default()).expect("the embedded module loads");
    for (operation, input) in [
        (names::EXPAND, sample as fn(i32, i32) -> Vec<u8>),
        (names::RECONCILE, reconcile_input),
    ] {
        let mut group = c.benchmark_group(operation);
        for (replicas, size) in [(3, 4), (100, 8)] {
            let payload = input(replicas, size);
            let label = format!("{replicas}x{size}");
            group.bench_with_input(BenchmarkId::new("native", &label), &payload, |b, p| {
                b.iter(|| lws_core::ops::call(operation, black_box(p)).unwrap())
            });
            group.bench_with_input(BenchmarkId::new("wasm", &label), &payload, |b, p| {
                b.iter(|| runtime.call(operation, black_box(p)).unwrap())
            });
        }
        group.finish();
    }
    // A fresh instance plus the smallest call: what every call pays before doing work.
    c.bench_function("instantiate/wasm", |b| {
        b.iter(|| runtime.call(names::PROTOCOL_VERSION, b"").unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = operations
}
criterion_main!(benches);
