//! The observed state, sorted once, and the small predicates every rule shares.
//!
//! Mirrors `PodRunningAndReady`, `IsPodReady`, `ContainerRestarted`, `PodDeleted` in
//! `pkg/utils/pod/pod_utils.go` and `StatefulsetReady` in `pkg/utils/statefulset` upstream.

use super::wire::{ObjectRef, ReconcileInput};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::{BTreeMap, BTreeSet};

/// [`ReconcileInput`] in a fixed order, with lookups by name.
#[derive(Default)]
pub struct Observed<'a> {
    /// Leader pods by (group index, name); pods without a parsable index sort last.
    pub leader_pods: Vec<&'a Pod>,
    /// Worker pods by (group index, worker index, name).
    pub worker_pods: Vec<&'a Pod>,
    /// Worker StatefulSets by name.
    pub worker_sts: BTreeMap<&'a str, &'a StatefulSet>,
    /// ControllerRevisions by (revision number, name).
    pub revisions: Vec<&'a ControllerRevision>,
    /// Names of existing Services.
    pub services: BTreeSet<&'a str>,
    /// Nodes by name.
    pub nodes: BTreeMap<&'a str, &'a Node>,
    /// Names of existing PodGroups.
    pub pod_groups: BTreeSet<String>,
}

impl<'a> Observed<'a> {
    /// Sorts and indexes `input` (the entry point's only normalisation step).
    pub fn new(input: &'a ReconcileInput) -> Self {
        let mut leader_pods: Vec<&Pod> = input.leader_pods.iter().collect();
        leader_pods.sort_by_key(|p| (index_key(group_index(p)), name(&p.metadata)));
        let mut worker_pods: Vec<&Pod> = input.worker_pods.iter().collect();
        worker_pods.sort_by_key(|p| {
            (
                index_key(group_index(p)),
                index_key(
                    label(&p.metadata, crate::labels::WORKER_INDEX_LABEL_KEY)
                        .and_then(|v| v.parse().ok()),
                ),
                name(&p.metadata),
            )
        });
        let mut revisions: Vec<&ControllerRevision> = input.revisions.iter().collect();
        revisions.sort_by_key(|r| (r.revision, name(&r.metadata)));
        let pod_groups = input
            .pod_groups
            .iter()
            .filter_map(|value| match value {
                serde_json::Value::String(name) => Some(name.clone()),
                other => other["metadata"]["name"].as_str().map(str::to_string),
            })
            .collect();
        Observed {
            leader_pods,
            worker_pods,
            worker_sts: input
                .worker_stateful_sets
                .iter()
                .map(|s| (name(&s.metadata), s))
                .collect(),
            revisions,
            services: input
                .services
                .iter()
                .map(|s: &Service| name(&s.metadata))
                .collect(),
            nodes: input.nodes.iter().map(|n| (name(&n.metadata), n)).collect(),
            pod_groups,
        }
    }

    /// The leader pod named `name`, if observed.
    pub fn leader_pod(&self, name_: &str) -> Option<&'a Pod> {
        self.leader_pods
            .iter()
            .copied()
            .find(|p| name(&p.metadata) == name_)
    }
}

fn index_key(index: Option<i64>) -> (bool, i64) {
    (index.is_none(), index.unwrap_or(0))
}

/// `metadata.name`, or "".
pub(crate) fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

pub(crate) use crate::labels::{annotation, label};

/// The group index label of a pod, parsed.
pub(crate) fn group_index(pod: &Pod) -> Option<i64> {
    label(&pod.metadata, crate::labels::GROUP_INDEX_LABEL_KEY)?
        .parse()
        .ok()
}

/// The `template-revision-hash` label (upstream `GetRevisionKey`), "" when absent.
pub(crate) fn revision_label(meta: &ObjectMeta) -> &str {
    label(meta, crate::labels::REVISION_KEY).unwrap_or("")
}

/// The object is being deleted (upstream `PodDeleted` and the sts check).
pub(crate) fn is_deleting(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// The pod's Ready condition is True (upstream `IsPodReady`).
pub(crate) fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Phase Running and Ready (upstream `PodRunningAndReady`).
pub(crate) fn is_pod_running_and_ready(pod: &Pod) -> bool {
    pod_phase(pod) == "Running" && is_pod_ready(pod)
}

/// `status.phase`, "" when unknown.
pub(crate) fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// A container or init container restarted while the pod is Running or Pending (upstream
/// `ContainerRestarted`).
pub(crate) fn has_restarted_container(pod: &Pod) -> bool {
    if !matches!(pod_phase(pod), "Running" | "Pending") {
        return false;
    }
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    [&status.container_statuses, &status.init_container_statuses]
        .into_iter()
        .flatten()
        .flatten()
        .any(|c| c.restart_count > 0)
}

/// All of a StatefulSet's pods are available and on its update revision (upstream
/// `StatefulsetReady`).
pub(crate) fn is_statefulset_ready(sts: &StatefulSet) -> bool {
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = sts.status.as_ref() else {
        return false;
    };
    replicas == status.available_replicas.unwrap_or(0)
        && status.current_revision == status.update_revision
}

/// The controller owner reference, if any (`metav1.GetControllerOf`).
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// A reference to a Kubernetes object, for deletes and events.
pub(crate) fn object_ref(
    api_version: &str,
    kind: &str,
    meta: &ObjectMeta,
    namespace: &str,
) -> ObjectRef {
    ObjectRef {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace: meta
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| namespace.to_string()),
        name: name(meta).to_string(),
        uid: meta.uid.clone(),
        propagation_policy: None,
    }
}
