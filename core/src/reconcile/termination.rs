//! `spec.podTerminationPolicy`: whether a group's workers wait for their leader to be gone.
//!
//! Upstream's KEP-956 behaviour (upstream-v0.11.md §A6.2): the pod controller's and the LWS
//! controller's `Parallel` branches.
//!
//! A worker StatefulSet is owned by its leader pod, so under `Default` the garbage collector
//! deletes it only once the leader pod has left the API server: a group takes two termination
//! grace periods to go away. Under `Parallel` the worker StatefulSet is deleted (Foreground, so
//! it stays visible until its pods are gone) as soon as the leader is deleting.
//!
//! # Expected flow (Parallel)
//! 1. A leader pod gets a deletion timestamp (a group restart, a rollout, a scale-down, a user).
//!    [`leader_worker_deletes`] plans the Foreground delete of its worker StatefulSet, only if
//!    that StatefulSet's controller is this incarnation of the leader (its uid), with the
//!    StatefulSet's uid as the precondition.
//! 2. The StatefulSet controller recreates the leader pod under the same name. While the old
//!    worker StatefulSet is still terminating, [`waits_for_terminating_workers`] holds the new
//!    group back: requeue after [`TERMINATING_WORKERS_REQUEUE_SECONDS`], create nothing. Its
//!    removal also brings a watch event; the requeue covers a missed one.
//! 3. A deleting LeaderWorkerSet: [`lws_deletion_deletes`] plans the Foreground delete of every
//!    worker StatefulSet at once.
//!
//! # Guarantees
//! Nothing is planned under `Default` (neither the LWS nor the leader says `Parallel`): the
//! existing plan is unchanged. A delete never reaches another incarnation of a StatefulSet (uid
//! precondition), and a StatefulSet already terminating is not deleted again.
//!
//! # Assumptions
//! A group is `Parallel` when the LWS says so or its leader pod carries
//! [`POD_TERMINATION_POLICY_ANNOTATION_KEY`] (stamped from the leader template, see
//! [`crate::group::build_leader_statefulset`]): a leader keeps the policy it was created with
//! while the LWS changes it. It is all there is once the LWS is gone: a host plans a gone LWS
//! as [`LeaderWorkerSet::gone`], a deleting one with an empty spec.

use super::observed::{annotation, controller_of, is_deleting, name, object_ref, Observed};
use super::wire::ObjectRef;
use crate::api::{LeaderWorkerSet, PodTerminationPolicy};
use crate::labels::POD_TERMINATION_POLICY_ANNOTATION_KEY;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;

/// Seconds a new leader waits for its previous worker StatefulSet to finish terminating
/// (upstream: 1s).
pub const TERMINATING_WORKERS_REQUEUE_SECONDS: u64 = 1;

/// The propagation of every delete planned here: the StatefulSet stays (with a deletion
/// timestamp) until its pods are gone, which is what holds the replacement group back.
const FOREGROUND: &str = "Foreground";

/// The group of `leader` runs under `Parallel`: the LWS says so, or the leader pod was created
/// from a template that did (upstream `isParallelPodTermination`).
pub fn is_parallel(lws: &LeaderWorkerSet, leader: &Pod) -> bool {
    lws.pod_termination_policy() == PodTerminationPolicy::Parallel
        || annotation(&leader.metadata, POD_TERMINATION_POLICY_ANNOTATION_KEY)
            == Some(PodTerminationPolicy::Parallel.as_str())
}

/// Step 1: the worker StatefulSets of deleting `Parallel` leaders, to delete now.
pub fn leader_worker_deletes(lws: &LeaderWorkerSet, observed: &Observed) -> Vec<ObjectRef> {
    observed
        .leader_pods
        .iter()
        .filter(|leader| is_deleting(&leader.metadata) && is_parallel(lws, leader))
        .filter_map(|leader| {
            let sts = observed.worker_sts.get(name(&leader.metadata))?;
            if !is_owned_by(sts, leader) {
                return None;
            }
            foreground_delete(lws, sts)
        })
        .collect()
}

/// Step 2: a leader whose worker StatefulSet is terminating must wait before its group gets a
/// new one (`Parallel` only; under `Default` the existing StatefulSet is simply left alone).
pub fn waits_for_terminating_workers(
    lws: &LeaderWorkerSet,
    leader: &Pod,
    sts: &StatefulSet,
) -> bool {
    is_deleting(&sts.metadata) && is_parallel(lws, leader)
}

/// Step 3: every worker StatefulSet of a deleting `Parallel` LeaderWorkerSet (upstream reads only
/// the LWS's policy here). Under `Default`, step 1 still runs for leaders created while the LWS
/// said `Parallel`.
pub fn lws_deletion_deletes(lws: &LeaderWorkerSet, observed: &Observed) -> Vec<ObjectRef> {
    if lws.pod_termination_policy() != PodTerminationPolicy::Parallel {
        return leader_worker_deletes(lws, observed);
    }
    observed
        .worker_sts
        .values()
        .filter_map(|sts| foreground_delete(lws, sts))
        .collect()
}

/// The StatefulSet's controller is this incarnation of `leader`: a StatefulSet of a previous
/// leader under the same name is the collector's, and a recreated leader must not lose the one
/// it just got.
fn is_owned_by(sts: &StatefulSet, leader: &Pod) -> bool {
    let Some(leader_uid) = leader.metadata.uid.as_deref() else {
        return false;
    };
    controller_of(&sts.metadata).is_some_and(|owner| owner.kind == "Pod" && owner.uid == leader_uid)
}

/// A Foreground delete of `sts` with its uid as the precondition; `None` when it is already
/// terminating or has no uid to pin the delete to.
fn foreground_delete(lws: &LeaderWorkerSet, sts: &StatefulSet) -> Option<ObjectRef> {
    if is_deleting(&sts.metadata) {
        return None;
    }
    sts.metadata.uid.as_ref()?;
    let mut target = object_ref("apps/v1", "StatefulSet", &sts.metadata, lws.namespace());
    target.propagation_policy = Some(FOREGROUND.to_string());
    Some(target)
}
