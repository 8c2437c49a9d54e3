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

/// One group as the local cluster stored it (apiserver defaults, Running and Ready, no
/// managedFields, as the controller's stores hold it): the leader pod, a worker pod and the
/// worker StatefulSet of group 0 of the seed's sample at size 8.
const OBSERVED_GROUP: &str = include_str!("fixtures/observed-group-0.json");

/// A steady-state `reconcile` input for the same LWS: its leader StatefulSet and revision from
/// the module's own first plan, and every group's pods and worker StatefulSet copied from
/// [`OBSERVED_GROUP`], so the input is as large as the one the controller sends.
fn reconcile_input(replicas: i32, size: i32) -> Vec<u8> {
    let manifest: serde_json::Value = serde_json::from_slice(&sample(replicas, size)).unwrap();
    let mut lws = lws_core::ops::admit_new(manifest).expect("the sample is valid");
    lws.metadata.uid = Some("7f3c7a52-0000-4000-8000-000000000001".into());
    lws.metadata.generation = Some(1);
    let fresh = serde_json::json!({"lws": lws, "now": "2026-11-27T00:00:00Z"});
    let plan = lws_core::ops::call(names::RECONCILE, &serde_json::to_vec(&fresh).unwrap()).unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    let leader_sts = &plan["apply"][0];
    let revision = leader_sts["metadata"]["labels"][lws_core::labels::REVISION_KEY].clone();

    let observed: serde_json::Value = serde_json::from_str(OBSERVED_GROUP).unwrap();
    // Group 0's object renamed for group `group`, worker `worker` (0 = the leader).
    let copy = |object: &serde_json::Value, group: i32, worker: i32| {
        let text = serde_json::to_string(object)
            .unwrap()
            .replace(
                "leaderworkerset-sample-0-1",
                &format!("leaderworkerset-sample-{group}-{worker}"),
            )
            .replace(
                "leaderworkerset-sample-0",
                &format!("leaderworkerset-sample-{group}"),
            );
        let mut copy: serde_json::Value = serde_json::from_str(&text).unwrap();
        let meta = &mut copy["metadata"];
        meta["uid"] = format!("00000000-0000-4000-8000-{group:06}{worker:06}").into();
        let labels = &mut meta["labels"];
        labels[lws_core::labels::GROUP_INDEX_LABEL_KEY] = group.to_string().into();
        labels[lws_core::labels::REVISION_KEY] = revision.clone();
        if copy["kind"] == "Pod" {
            let labels = &mut copy["metadata"]["labels"];
            labels[lws_core::labels::WORKER_INDEX_LABEL_KEY] = worker.to_string().into();
            labels["apps.kubernetes.io/pod-index"] = (if worker == 0 { group } else { worker })
                .to_string()
                .into();
            copy["metadata"]["annotations"][lws_core::labels::SIZE_ANNOTATION_KEY] =
                size.to_string().into();
        } else {
            copy["spec"]["replicas"] = (size - 1).into();
            copy["status"]["replicas"] = (size - 1).into();
            copy["status"]["readyReplicas"] = (size - 1).into();
            copy["status"]["availableReplicas"] = (size - 1).into();
        }
        copy
    };
    let mut leader_pods = Vec::new();
    let mut worker_pods = Vec::new();
    let mut worker_stateful_sets = Vec::new();
    for group in 0..replicas {
        leader_pods.push(copy(&observed["leaderPod"], group, 0));
        for worker in 1..size {
            worker_pods.push(copy(&observed["workerPod"], group, worker));
        }
        if size > 1 {
            worker_stateful_sets.push(copy(&observed["workerStatefulSet"], group, 0));
        }
    }
    let mut leader_sts = leader_sts.clone();
    leader_sts["status"] = serde_json::json!({
        "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
        "currentReplicas": replicas, "updatedReplicas": replicas,
    });
    let input = serde_json::json!({
        "lws": lws,
        "now": "2026-11-27T00:00:05Z",
        "leaderStatefulSet": leader_sts,
        "workerStatefulSets": worker_stateful_sets,
        "leaderPods": leader_pods,
        "workerPods": worker_pods,
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
