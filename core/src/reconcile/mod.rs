//! The reconcile decision for one LeaderWorkerSet: observed state in, a plan out.
//!
//! Mirrors `Reconcile` in `pkg/controllers/leaderworkerset_controller.go` and `Reconcile` in
//! `pkg/controllers/pod_controller.go` upstream (upstream-lws.md §4), joined into one pure
//! function: the host observes (lists the objects in [`ReconcileInput`]), core decides
//! ([`plan_reconcile`]), the host applies the [`ReconcilePlan`].
//!
//! # Expected flow (one call)
//! 1. A LeaderWorkerSet or leader StatefulSet being deleted: nothing (GC), or requeue after 5s;
//!    under `podTerminationPolicy: Parallel`, the worker StatefulSets to delete ([`termination`]).
//! 2. Revisions ([`revisions`]): the current key; revisions to create.
//! 3. Rollout ([`rollout`]): partition and replicas; the leader StatefulSet to apply.
//! 4. The shared headless Service, if missing.
//! 5. Status ([`status`]); when the update is done, older revisions are deleted.
//! 6. Group restarts ([`restart`]): leader pods to delete; under `Parallel`, the worker
//!    StatefulSets of deleting leaders ([`termination`]).
//! 7. Per-group objects ([`workers`]): per-replica Services, PodGroups, worker StatefulSets.
//!
//! # Assumptions
//! The input is one consistent snapshot; objects the plan creates are not in it yet, so a
//! second call after applying the plan sees them and plans nothing new for them.

pub mod budget;
pub mod events;
pub mod observed;
pub mod pod_group;
pub mod restart;
pub mod revisions;
pub mod rollout;
mod seen;
pub mod status;
pub mod termination;
pub mod wire;
pub mod workers;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;

pub use wire::{
    EventType, ObjectRef, PlannedEvent, ReconcileInput, ReconcileInputRef, ReconcilePlan,
};

use crate::api::{LeaderWorkerSet, SubdomainPolicy};
use crate::expand::to_json;
use crate::group::{build_leader_statefulset, build_shared_service};
use events::{
    normal, warning, CREATE, GROUPS_PROGRESSING, GROUPS_UPDATING, UNSUPPORTED_SPEC, UPDATE,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use observed::{is_deleting, Observed};

/// Seconds to wait for a leader StatefulSet that is being deleted (upstream: 5s).
pub const LEADER_STS_DELETING_REQUEUE_SECONDS: u64 = 5;

/// The `reconcile` operation: [`ReconcileInput`] JSON in, [`ReconcilePlan`] JSON out.
pub fn run_op(payload: &[u8]) -> Result<Vec<u8>, crate::ops::OpError> {
    // Straight from the bytes, not through `ops::typed`: see [`seen`] for why.
    let input: ReconcileInput = crate::ops::parse(crate::ops::names::RECONCILE, payload)?;
    Ok(crate::ops::encode(&plan_reconcile(&input)))
}

/// The leader StatefulSet the controller creates for `lws` when nothing of it exists yet: the
/// same decision [`plan_reconcile`] applies on the first reconcile (revision key, partition,
/// replicas), which `lws expand` renders.
pub fn first_leader_statefulset(lws: &LeaderWorkerSet) -> StatefulSet {
    let key = crate::revision::revision_key(lws);
    let nothing = Observed::default();
    let rollout = leader_statefulset_rollout(lws, None, &key, false, &nothing);
    build_leader_statefulset(lws, &key, rollout.partition, rollout.replicas)
}

/// Partition and replicas of the leader StatefulSet at revision `key`, from what is observed.
fn leader_statefulset_rollout(
    lws: &LeaderWorkerSet,
    leader_sts: Option<&StatefulSet>,
    key: &str,
    lws_updated: bool,
    observed: &Observed,
) -> rollout::RolloutParameters {
    rollout::rolling_update_parameters(lws, leader_sts, lws_updated, |sts_replicas| {
        rollout::replica_states(
            lws,
            sts_replicas,
            key,
            &observed.leader_pods,
            &observed.worker_sts,
        )
    })
}

/// Plans one reconcile of `input.lws`.
pub fn plan_reconcile(input: &ReconcileInput) -> ReconcilePlan {
    let lws = &input.lws;
    let mut plan = ReconcilePlan::default();
    if is_deleting(&lws.metadata) {
        return plan_lws_deletion(input);
    }
    let unsupported = crate::validation::unsupported_features(lws);
    if !unsupported.is_empty() {
        // Stored by another controller (ours refuses it at admission): running it as an Ordinal
        // LeaderWorkerSet would build the wrong objects, e.g. a leader StatefulSet for Hash groups.
        let fields: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
        let note = format!("Not reconciled: {}", fields.join("; "));
        plan.reasons.push(note.clone());
        plan.events.push(warning(UNSUPPORTED_SPEC, UPDATE, note));
        return plan;
    }
    let leader_sts = input.leader_stateful_set.as_ref();
    if leader_sts.is_some_and(|s| is_deleting(&s.metadata)) {
        plan.reasons
            .push("leader StatefulSet is being deleted".into());
        plan.requeue_after_seconds = Some(LEADER_STS_DELETING_REQUEUE_SECONDS);
        // Its leader pods are going too: their workers may go with them.
        plan.delete = termination::leader_worker_deletes(lws, &Observed::new(input));
        return plan;
    }
    let observed = Observed::new(input);

    let revision = revisions::decide_revision(lws, leader_sts, &observed.revisions);
    plan.create.extend(revision.create.iter().map(to_json));
    plan.events.extend(revision.events);

    let rollout =
        leader_statefulset_rollout(lws, leader_sts, &revision.key, revision.updated, &observed);
    plan.events.extend(rollout.events);
    let desired = build_leader_statefulset(lws, &revision.key, rollout.partition, rollout.replicas);
    plan.apply.push(to_json(&desired));
    plan.events.extend(leader_statefulset_events(
        lws,
        leader_sts,
        revision.updated,
        rollout.partition,
    ));

    if lws.subdomain_policy() == SubdomainPolicy::Shared && !observed.services.contains(lws.name())
    {
        plan.create.push(to_json(&build_shared_service(lws)));
    }

    let counts = status::count_groups(
        lws,
        &revision.key,
        &observed.leader_pods,
        &observed.worker_sts,
    );
    let sts_status_replicas = leader_sts
        .and_then(|s| s.status.as_ref())
        .map_or(0, |s| s.replicas);
    let mut restart_counts = budget::RestartCounts::of(lws);
    let exhausted = budget::exhausted_groups(&observed);
    let status = status::compute_status(
        lws,
        sts_status_replicas,
        &counts,
        (restart_counts.limit.is_some() || !exhausted.is_empty()).then_some(exhausted.as_slice()),
        &input.now,
    );
    plan.status = status.status;
    plan.events.extend(status.events);
    if status.update_done {
        plan.delete.extend(revisions::truncate_revisions(
            lws,
            &observed.revisions,
            &revision.key,
        ));
    }

    if status.update_done {
        restart_counts.prune(&revision.key);
    }
    let restart = restart::decide_group_restarts(lws, &observed, &mut restart_counts, &input.now);
    let partition = rollout::RolloutBudget::of(lws).partition;
    let release = budget::release_held_pods(
        lws,
        &observed,
        &mut restart_counts,
        &revision.key,
        partition,
    );
    // The counts first: the executor stops at a failed apply, before any leader is deleted.
    plan.apply.extend(restart_counts.annotation_apply(lws));
    plan.apply.extend(restart.apply);
    plan.apply.extend(release.apply);
    plan.events.extend(release.events);
    plan.delete.extend(restart.delete);
    plan.events.extend(restart.events);
    plan.delete
        .extend(termination::leader_worker_deletes(lws, &observed));

    let groups = workers::plan_group_objects(
        lws,
        &observed,
        input.scheduler_provider.as_deref(),
        &restart.leaders_gone,
    );
    plan.create.extend(groups.create);
    plan.delete.extend(groups.delete);
    plan.events.extend(groups.events);
    plan.reasons.extend(groups.reasons);
    plan.requeue_after_seconds = match (groups.requeue_after_seconds, restart.requeue_after_seconds)
    {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    plan
}

/// A deleting LeaderWorkerSet: the garbage collector removes its objects; under `Parallel` its
/// worker StatefulSets are deleted at once ([`termination::lws_deletion_deletes`]). One stored
/// by another controller with a feature we do not run is left alone, as when it lives.
fn plan_lws_deletion(input: &ReconcileInput) -> ReconcilePlan {
    let lws = &input.lws;
    let mut plan = ReconcilePlan::default();
    plan.reasons.push("LeaderWorkerSet is being deleted".into());
    if crate::validation::unsupported_features(lws).is_empty() {
        let observed = Observed::new(input);
        plan.delete = termination::lws_deletion_deletes(lws, &observed);
        let mut counts = budget::RestartCounts::of(lws);
        plan.apply = budget::release_held_pods(lws, &observed, &mut counts, "", 0).apply;
    }
    plan
}

/// "Created leader statefulset" on creation; "Updating replica(s)" when a rollout step moves
/// the partition (not on the pass that starts the rollout).
fn leader_statefulset_events(
    lws: &LeaderWorkerSet,
    leader_sts: Option<&StatefulSet>,
    lws_updated: bool,
    partition: i32,
) -> Vec<PlannedEvent> {
    let Some(sts) = leader_sts else {
        return vec![normal(
            GROUPS_PROGRESSING,
            CREATE,
            format!("Created leader statefulset {}", lws.name()),
        )];
    };
    let old = sts
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|u| u.partition)
        .unwrap_or(0);
    if lws_updated || partition == old {
        return Vec::new();
    }
    // Go's int32 wraps: a partition of i32::MIN (the API server refuses negative ones; an
    // observed object need not be valid) reads as upstream's message, not as a panic.
    let last = old.wrapping_sub(1);
    let note = if last == partition {
        format!("Updating replica {partition}")
    } else {
        format!("Updating replicas {partition} to {last} (inclusive)")
    };
    vec![normal(GROUPS_UPDATING, UPDATE, note)]
}
