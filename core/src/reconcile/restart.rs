//! Group restarts: a restarted or deleted pod recreates its whole group.
//!
//! Mirrors `handleRestartPolicy` and `pendingPodsInGroup` in `pkg/controllers/pod_controller.go`
//! upstream (upstream-lws.md §4.10), for every pod of the LeaderWorkerSet at once.
//!
//! # Expected flow
//! 1. A container of a group's pod restarts (or the pod is being deleted).
//! 2. The group's leader pod is deleted with Foreground propagation (uid precondition), which
//!    takes the worker StatefulSet and its pods with it.
//! 3. The leader StatefulSet recreates the leader pod at the same revision; the next reconcile
//!    recreates the worker StatefulSet from that revision.
//!
//! # Guarantees
//! A leader is deleted at most once per plan, never when it is already being deleted, never
//! for a pod of another incarnation of the group (revision label and owner chain must match).

use super::budget::{self, RestartCounts, Verdict};
use super::events::{normal, with_related, DELETE, RECREATE_GROUP};
use super::observed::{
    annotation, controller_of, group_index, has_restarted_container, is_deleting, label, name,
    object_ref, pod_phase, revision_label, Observed,
};
use super::wire::{ObjectRef, PlannedEvent};
use crate::api::{LeaderWorkerSet, RestartPolicy};
use crate::labels::{GROUP_INDEX_LABEL_KEY, RECREATE_GROUP_AFTER_START_ANNOTATION_KEY};
use crate::pod::parent_name_and_ordinal;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeSet;

/// Leader pods to delete, and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestartDecision {
    /// Pods marked and held when a group exhausts its restart budget ([`budget::exhaust`]).
    pub apply: Vec<serde_json::Value>,
    /// Foreground deletions of leader pods, with uid preconditions.
    pub delete: Vec<ObjectRef>,
    /// `RecreateGroup` events.
    pub events: Vec<PlannedEvent>,
    /// Names of leader pods deleted by this plan or already being deleted because of a group
    /// restart: their groups get no new worker StatefulSet in this pass.
    pub leaders_gone: BTreeSet<String>,
    /// The soonest recreation waiting for its back-off.
    pub requeue_after_seconds: Option<u64>,
}

/// Decides which groups to recreate (upstream `handleRestartPolicy` for each pod), within the
/// restart budget `counts` keeps ([`budget`]).
pub fn decide_group_restarts(
    lws: &LeaderWorkerSet,
    observed: &Observed,
    counts: &mut RestartCounts,
    now: &Time,
) -> RestartDecision {
    let mut decision = RestartDecision::default();
    let policy = lws
        .spec
        .leader_worker_template
        .restart_policy
        .unwrap_or(RestartPolicy::RecreateGroupOnPodRestart);
    if !matches!(
        policy,
        RestartPolicy::RecreateGroupOnPodRestart | RestartPolicy::RecreateGroupAfterStart
    ) {
        return decision;
    }
    let pods = observed
        .leader_pods
        .iter()
        .chain(observed.worker_pods.iter());
    let mut waiting = BTreeSet::new();
    for pod in pods {
        let Some(leader) = leader_to_delete(lws, policy, observed, pod) else {
            continue;
        };
        let leader_name = name(&leader.metadata).to_string();
        if is_deleting(&leader.metadata) || decision.leaders_gone.contains(&leader_name) {
            // Already going (upstream: "leader deleted", nothing to send) or planned above.
            decision.leaders_gone.insert(leader_name);
            continue;
        }
        if waiting.contains(&leader_name) {
            continue;
        }
        match counts.verdict(leader, now) {
            None | Some(Verdict::Recreate) => {}
            Some(Verdict::Wait { seconds, at }) => {
                waiting.insert(leader_name);
                let count = counts.count(leader);
                decision.events.push(budget::backoff_event(
                    leader,
                    count,
                    counts.limit,
                    &at,
                    seconds,
                ));
                decision.requeue_after_seconds = Some(
                    decision
                        .requeue_after_seconds
                        .map_or(seconds, |s| s.min(seconds)),
                );
                continue;
            }
            Some(Verdict::Exhaust) => {
                let exhaustion = budget::exhaust(lws, observed, leader);
                decision.apply.extend(exhaustion.apply);
                decision.delete.push(exhaustion.delete);
                decision.events.push(exhaustion.event);
                decision.leaders_gone.insert(leader_name);
                continue;
            }
        }
        decision.leaders_gone.insert(leader_name.clone());
        let mut target = object_ref("v1", "Pod", &leader.metadata, lws.namespace());
        target.propagation_policy = Some("Foreground".to_string());
        let group = label(&pod.metadata, GROUP_INDEX_LABEL_KEY).unwrap_or("");
        let note = format!(
            "Worker pod {} failed, deleted leader pod {leader_name} to recreate group {group}",
            name(&pod.metadata)
        );
        decision.events.push(with_related(
            normal(RECREATE_GROUP, DELETE, note),
            object_ref("v1", "Pod", &pod.metadata, lws.namespace()),
        ));
        decision.delete.push(target);
    }
    decision
}

/// The leader whose group `pod`'s restart should recreate, if the guards allow it.
fn leader_to_delete<'a>(
    lws: &LeaderWorkerSet,
    policy: RestartPolicy,
    observed: &Observed<'a>,
    pod: &'a Pod,
) -> Option<&'a Pod> {
    if !has_restarted_container(pod) && !is_deleting(&pod.metadata) {
        return None;
    }
    let guard_pending = policy == RestartPolicy::RecreateGroupAfterStart
        || annotation(&lws.metadata, RECREATE_GROUP_AFTER_START_ANNOTATION_KEY).is_some();
    if guard_pending && is_group_pending(lws, observed, pod) {
        return None;
    }
    if crate::pod::is_leader(pod) {
        return Some(pod);
    }
    let (leader_name, ordinal) = parent_name_and_ordinal(name(&pod.metadata));
    if ordinal == -1 {
        return None;
    }
    let leader = observed.leader_pod(leader_name)?;
    // A worker of an older incarnation of the group, mid-rollout: leave the new leader alone.
    if revision_label(&leader.metadata) != revision_label(&pod.metadata) {
        return None;
    }
    is_owned_by_leader(observed, pod, leader).then_some(leader)
}

/// The group has not fully started: fewer pods than `size`, or one still Pending (upstream
/// `pendingPodsInGroup`).
pub fn is_group_pending(lws: &LeaderWorkerSet, observed: &Observed, pod: &Pod) -> bool {
    let index = group_index(pod);
    let group: Vec<&&Pod> = observed
        .leader_pods
        .iter()
        .chain(observed.worker_pods.iter())
        .filter(|p| group_index(p) == index)
        .collect();
    group.len() != lws.size() as usize || group.iter().any(|p| pod_phase(p) == "Pending")
}

/// The worker's controller is this leader, or a worker StatefulSet whose controller is this
/// leader (same names and uids).
pub fn is_owned_by_leader(observed: &Observed, worker: &Pod, leader: &Pod) -> bool {
    let leader_matches = |kind: &str, owner_name: &str, uid: &str| {
        kind == "Pod"
            && owner_name == name(&leader.metadata)
            && Some(uid) == leader.metadata.uid.as_deref()
    };
    let Some(owner) = controller_of(&worker.metadata) else {
        return false;
    };
    if leader_matches(&owner.kind, &owner.name, &owner.uid) {
        return true;
    }
    if owner.kind != "StatefulSet" {
        return false;
    }
    let Some(sts) = observed.worker_sts.get(owner.name.as_str()) else {
        return false;
    };
    if sts.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
        return false;
    }
    controller_of(&sts.metadata).is_some_and(|o| leader_matches(&o.kind, &o.name, &o.uid))
}
