//! The objects one LeaderWorkerSet owns: leader StatefulSet, worker StatefulSets, Services.
//!
//! Mirrors `constructLeaderStatefulSetApplyConfiguration` in
//! `pkg/controllers/leaderworkerset_controller.go`, `constructWorkerStatefulSetApplyConfiguration`
//! in `pkg/controllers/pod_controller.go` and `pkg/utils/controller` (upstream-lws.md §4.4, §4.6, §4.9).

use crate::api::LeaderWorkerSet;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};

/// The leader StatefulSet `<lws>` at revision `revision_key`, with the rollout's partition and replicas.
pub fn build_leader_statefulset(
    lws: &LeaderWorkerSet,
    revision_key: &str,
    partition: i32,
    replicas: i32,
) -> StatefulSet {
    let _ = (lws, revision_key, partition, replicas);
    todo!("leader sts")
}

/// The worker StatefulSet of the group led by `leader_pod`; `lws` is the LWS as of the leader
/// pod's revision. `None` when the group has no workers (size 1).
pub fn build_worker_statefulset(lws: &LeaderWorkerSet, leader_pod: &Pod) -> Option<StatefulSet> {
    let _ = (lws, leader_pod);
    todo!("worker sts")
}

/// The shared headless Service `<lws>` (subdomain policy Shared).
pub fn build_shared_service(lws: &LeaderWorkerSet) -> Service {
    let _ = lws;
    todo!("shared svc")
}

/// The per-group headless Service `<lws>-<i>` (subdomain policy UniquePerReplica), owned by the leader pod.
pub fn build_replica_service(lws: &LeaderWorkerSet, leader_pod: &Pod) -> Service {
    let _ = (lws, leader_pod);
    todo!("replica svc")
}
