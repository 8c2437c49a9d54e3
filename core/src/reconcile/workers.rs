//! Per-group objects: worker StatefulSets, per-replica Services, PodGroups.
//!
//! Mirrors `Reconcile` and `setNodeSelectorForWorkerPods`/`topologyValueFromPod` in
//! `pkg/controllers/pod_controller.go` upstream (upstream-lws.md §4.8, §4.9), for every leader pod
//! at once. Everything here is create-if-absent: upstream never updates these objects.

use super::events::{normal, warning, with_related, CREATE, FAILED_CREATE, GROUPS_PROGRESSING};
use super::observed::{
    annotation, is_deleting, is_pod_ready, name, object_ref, revision_label, Observed,
};
use super::pod_group::{build_pod_group, group_uses_volcano};
use super::revisions::{find_revision, revision_data};
use super::termination::{self, TERMINATING_WORKERS_REQUEUE_SECONDS};
use super::wire::{ObjectRef, PlannedEvent};
use crate::api::{LeaderWorkerSet, StartupPolicy, SubdomainPolicy};
use crate::expand::to_json;
use crate::group::{build_replica_service, build_worker_statefulset, pin_workers_to_topology};
use crate::labels::{EXCLUSIVE_KEY_ANNOTATION_KEY, LEADER_POD_NAME_ANNOTATION_KEY};
use crate::revision::apply_revision;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeSet;

/// Seconds to wait when the leader pod's revision is not observed yet (upstream: 1s).
pub const MISSING_REVISION_REQUEUE_SECONDS: u64 = 1;
/// Seconds to wait when the leader's node or its topology label is missing.
pub const MISSING_TOPOLOGY_REQUEUE_SECONDS: u64 = 5;

/// What the per-group pass plans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupObjects {
    /// Objects to create if absent.
    pub create: Vec<serde_json::Value>,
    /// Worker pods left by a worker StatefulSet that no longer exists (see [`stale_workers`]).
    pub delete: Vec<ObjectRef>,
    pub events: Vec<PlannedEvent>,
    pub requeue_after_seconds: Option<u64>,
    pub reasons: Vec<String>,
}

impl GroupObjects {
    fn requeue(&mut self, seconds: u64) {
        self.requeue_after_seconds = Some(
            self.requeue_after_seconds
                .map_or(seconds, |s| s.min(seconds)),
        );
    }
}

/// Plans the objects of every group whose leader pod is observed (upstream's pod controller for
/// leader pods). `leaders_gone` are leaders a group restart deletes.
pub fn plan_group_objects(
    lws: &LeaderWorkerSet,
    observed: &Observed,
    scheduler_provider: Option<&str>,
    leaders_gone: &BTreeSet<String>,
) -> GroupObjects {
    let mut out = GroupObjects::default();
    for leader in &observed.leader_pods {
        let leader_name = name(&leader.metadata);
        if leaders_gone.contains(leader_name) {
            continue;
        }
        if annotation(&leader.metadata, LEADER_POD_NAME_ANNOTATION_KEY).is_some() {
            out.events.push(warning(
                FAILED_CREATE,
                CREATE,
                mistaken_annotation_note(lws, leader),
            ));
            continue;
        }
        // Creating workers for a leader on its way out races the group restart.
        if is_deleting(&leader.metadata) {
            continue;
        }
        if lws.subdomain_policy() == SubdomainPolicy::UniquePerReplica
            && !observed.services.contains(leader_name)
        {
            out.create
                .push(to_json(&build_replica_service(lws, leader)));
        }
        if scheduler_provider.is_some_and(|p| !p.is_empty()) && group_uses_volcano(lws, leader) {
            if let Some(pod_group) = build_pod_group(lws, leader) {
                let pod_group_name = pod_group["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if !observed.pod_groups.contains(&pod_group_name) {
                    out.create.push(pod_group);
                }
            }
        }
        plan_worker_statefulset(lws, observed, leader, &mut out);
    }
    out
}

/// Steps 8-13 of upstream's pod controller for one leader.
fn plan_worker_statefulset(
    lws: &LeaderWorkerSet,
    observed: &Observed,
    leader: &Pod,
    out: &mut GroupObjects,
) {
    let leader_name = name(&leader.metadata);
    if lws.size() == 1 {
        return;
    }
    if lws.spec.startup_policy == Some(StartupPolicy::LeaderReady) && !is_pod_ready(leader) {
        out.reasons
            .push(format!("{leader_name}: waiting for the leader to be ready"));
        return;
    }
    // Never updated: an existing worker StatefulSet (even of a previous leader, which GC is
    // removing) is left alone; its deletion brings us back here.
    if let Some(sts) = observed.worker_sts.get(leader_name) {
        for pod in stale_workers(observed, sts) {
            out.reasons.push(format!(
                "{}: its StatefulSet {leader_name} was replaced; deleting it for the new one",
                name(&pod.metadata)
            ));
            let mut target = object_ref("v1", "Pod", &pod.metadata, lws.namespace());
            target.propagation_policy = Some("Background".to_string());
            out.delete.push(target);
        }
        if termination::waits_for_terminating_workers(lws, leader, sts) {
            out.reasons.push(format!(
                "{leader_name}: worker StatefulSet still terminating"
            ));
            out.requeue(TERMINATING_WORKERS_REQUEUE_SECONDS);
        }
        return;
    }
    let key = revision_label(&leader.metadata);
    let Some(revision) = find_revision(lws, &observed.revisions, key) else {
        out.reasons
            .push(format!("{leader_name}: revision {key:?} not observed yet"));
        out.requeue(MISSING_REVISION_REQUEUE_SECONDS);
        return;
    };
    let group_lws = match apply_revision(lws, &revision_data(revision)) {
        Ok(restored) => restored,
        Err(error) => {
            out.reasons.push(format!("{leader_name}: {error}"));
            return;
        }
    };
    let Some(mut sts) = build_worker_statefulset(&group_lws, leader) else {
        return;
    };
    if let Some(topology_key) = annotation(&lws.metadata, EXCLUSIVE_KEY_ANNOTATION_KEY) {
        let node_name = leader
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if node_name.is_empty() {
            out.reasons
                .push(format!("{leader_name}: not scheduled yet"));
            return;
        }
        match topology_value(observed, node_name, topology_key) {
            Ok(value) => pin_workers_to_topology(&mut sts, topology_key, &value),
            Err(error) => {
                out.events.push(warning(
                    FAILED_CREATE,
                    CREATE,
                    format!(
                        "Failed to create worker statefulset for leader pod {leader_name}: {error}"
                    ),
                ));
                out.requeue(MISSING_TOPOLOGY_REQUEUE_SECONDS);
                return;
            }
        }
    }
    out.events.push(with_related(
        normal(
            GROUPS_PROGRESSING,
            CREATE,
            format!("Created worker statefulset for leader pod {leader_name}"),
        ),
        object_ref("v1", "Pod", &leader.metadata, lws.namespace()),
    ));
    out.create.push(to_json(&sts));
}

/// Worker pods whose controlling owner is a StatefulSet named like `sts` but another
/// incarnation of it: that owner is gone (names are unique, so the observed `sts` replaced it)
/// and the garbage collector has not removed them yet. They hold the names the new
/// StatefulSet must create, so the group would wait on the collector; after an API server
/// outage kube-controller-manager's collector was seen never to return to them (issue 14,
/// tests/e2e/chaos.rs). Deleting them is what the collector would do.
fn stale_workers<'a>(
    observed: &Observed<'a>,
    sts: &k8s_openapi::api::apps::v1::StatefulSet,
) -> Vec<&'a Pod> {
    let sts_name = name(&sts.metadata);
    let Some(sts_uid) = sts.metadata.uid.as_deref() else {
        return Vec::new();
    };
    observed
        .worker_pods
        .iter()
        .copied()
        .filter(|pod| !is_deleting(&pod.metadata))
        .filter(|pod| {
            pod.metadata.owner_references.iter().flatten().any(|owner| {
                owner.controller == Some(true)
                    && owner.kind == "StatefulSet"
                    && owner.name == sts_name
                    && owner.uid != sts_uid
            })
        })
        .collect()
}

/// The leader node's `topology_key` label (upstream `topologyValueFromPod`).
fn topology_value(
    observed: &Observed,
    node_name: &str,
    topology_key: &str,
) -> Result<String, String> {
    let node = observed
        .nodes
        .get(node_name)
        .ok_or_else(|| format!("node {node_name} not found"))?;
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(topology_key))
        .cloned()
        .ok_or_else(|| format!("node does not have topology label: {topology_key}"))
}

fn mistaken_annotation_note(lws: &LeaderWorkerSet, leader: &Pod) -> String {
    let namespace = leader
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(lws.namespace());
    format!(
        "leader pod {namespace}/{} contains mistake annotation '{LEADER_POD_NAME_ANNOTATION_KEY}': requires Kubernetes ≥v1.27 or v1.26 with StatefulSetStartOrdinal feature",
        name(&leader.metadata)
    )
}
