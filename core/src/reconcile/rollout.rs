//! The leader StatefulSet's partition and replicas during a rolling update.
//!
//! Mirrors `rollingUpdateParameters`, `getReplicaStates`, `rollingUpdatePartition`,
//! `calculateRollingUpdateReplicas`, `calculateLWSUnreadyReplicas` and
//! `calculateContinuousReadyReplicas` in `pkg/controllers/leaderworkerset_controller.go`
//! upstream (upstream-lws.md §4.5), without the API calls: the replica states are computed from
//! the observed pods and StatefulSets.
//!
//! # Expected flow
//! 1. No leader StatefulSet: everything is created at once (partition 0, replicas R).
//! 2. A new revision was just created: the partition jumps to min(R, S) (so no group rolls yet);
//!    replicas go to R when scaling up, else to the surge size.
//! 3. At rest (partition 0, S == R): nothing to do.
//! 4. Scaling up mid-rollout: the partition is kept, new groups start on the new template.
//! 5. Replicas changed mid-rollout: the partition is capped at R + surge.
//! 6. Otherwise the partition steps down by maxUnavailable (+ surge headroom), skipping groups
//!    that are unready or already updated; surge groups are reclaimed once the remaining
//!    unready groups fit in maxUnavailable.
//!
//! # Guarantees
//! The partition never moves up within a rollout (step 6 takes the min with the current one) and
//! never goes below the LWS's own `partition`.

use super::events::{normal, DELETE, GROUPS_PROGRESSING};
use super::observed::{
    annotation, is_pod_running_and_ready, is_statefulset_ready, name, revision_label,
};
use super::wire::PlannedEvent;
use crate::api::LeaderWorkerSet;
use crate::intstr::resolve_int_or_percent;
use crate::labels::REPLICAS_ANNOTATION_KEY;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// Whether one group (leader pod + worker StatefulSet) is ready and on the current revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaState {
    pub ready: bool,
    pub updated: bool,
}

/// The leader StatefulSet's `partition` and `replicas`, and the surge-deletion events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutParameters {
    pub partition: i32,
    pub replicas: i32,
    pub events: Vec<PlannedEvent>,
}

/// The rollout budget of an LWS, resolved against `spec.replicas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RolloutBudget {
    /// R: `spec.replicas`.
    pub replicas: i32,
    /// maxSurge rounded up, capped at R.
    pub max_surge: i32,
    /// maxUnavailable rounded down.
    pub max_unavailable: i32,
    /// The LWS's own `partition`.
    pub partition: i32,
}

impl RolloutBudget {
    /// Resolves the budget; a defaulted, valid LWS has both values, the fallbacks are the CRD
    /// defaults (upstream would fail the reconcile on an unparsable value).
    pub fn of(lws: &LeaderWorkerSet) -> Self {
        let replicas = lws.replicas();
        let config = lws
            .spec
            .rollout_strategy
            .as_ref()
            .and_then(|r| r.rolling_update_configuration.as_ref());
        let resolve = |value: Option<&_>, fallback: i32, round_up: bool| {
            value.map_or(fallback, |v| {
                resolve_int_or_percent(v, replicas, round_up).unwrap_or(fallback)
            })
        };
        RolloutBudget {
            replicas,
            max_surge: resolve(config.and_then(|c| c.max_surge.as_ref()), 0, true).min(replicas),
            max_unavailable: resolve(config.and_then(|c| c.max_unavailable.as_ref()), 1, false),
            partition: config.and_then(|c| c.partition).unwrap_or(0),
        }
    }

    /// R + surge (saturating: an object stored under a CRD without our bounds may hold any int32).
    pub fn burst(&self) -> i32 {
        self.replicas.saturating_add(self.max_surge)
    }
}

/// Decides the leader StatefulSet's partition and replicas (upstream `rollingUpdateParameters`).
///
/// `states` is called only when the replica states are needed (cases 4 and 5), with S.
pub fn rolling_update_parameters(
    lws: &LeaderWorkerSet,
    leader_sts: Option<&StatefulSet>,
    lws_updated: bool,
    states: impl FnOnce(i32) -> Vec<ReplicaState>,
) -> RolloutParameters {
    let budget = RolloutBudget::of(lws);
    let mut parameters =
        rolling_update_parameters_unfloored(lws, &budget, leader_sts, lws_updated, states);
    // The deferred max in upstream: groups below the LWS partition are never updated.
    parameters.partition = parameters.partition.max(budget.partition);
    parameters
}

fn rolling_update_parameters_unfloored(
    lws: &LeaderWorkerSet,
    budget: &RolloutBudget,
    leader_sts: Option<&StatefulSet>,
    lws_updated: bool,
    states: impl FnOnce(i32) -> Vec<ReplicaState>,
) -> RolloutParameters {
    let r = budget.replicas;
    let Some(sts) = leader_sts else {
        return parameters(0, r, Vec::new());
    };
    let spec = sts.spec.as_ref();
    let sts_replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    let want = |unready: i32| {
        let replicas =
            calculate_rolling_update_replicas(r, budget.max_surge, budget.max_unavailable, unready);
        (
            replicas,
            surge_deletion_events(lws.name(), replicas, sts_replicas),
        )
    };

    if lws_updated {
        // Scale first: a scale-up creates new groups on the new template, without surge.
        if sts_replicas < r {
            return parameters(r.min(sts_replicas), r, Vec::new());
        }
        let (replicas, events) = want(r);
        return parameters(r.min(sts_replicas), replicas, events);
    }

    let sts_partition = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|u| u.partition)
        .unwrap_or(0);
    if sts_partition == 0 && sts_replicas == r {
        return parameters(0, r, Vec::new());
    }
    if sts_replicas < r {
        return parameters(sts_partition, r, Vec::new());
    }

    let states = states(sts_replicas);
    let unready = calculate_lws_unready_replicas(&states, r);
    let original_replicas =
        annotation(&sts.metadata, REPLICAS_ANNOTATION_KEY).and_then(|v| v.parse::<i32>().ok());
    if original_replicas != Some(r) {
        let (replicas, events) = want(unready);
        return parameters(sts_partition.min(budget.burst()), replicas, events);
    }

    // Respect maxUnavailable even while reclaiming surge groups.
    let rolling_step = budget
        .max_unavailable
        .saturating_add(budget.max_surge)
        .saturating_sub(budget.burst().saturating_sub(sts_replicas));
    let partition = rolling_update_partition(&states, sts_replicas, rolling_step, sts_partition);
    let (replicas, events) = want(unready);
    parameters(partition, replicas, events)
}

fn parameters(partition: i32, replicas: i32, events: Vec<PlannedEvent>) -> RolloutParameters {
    RolloutParameters {
        partition,
        replicas,
        events,
    }
}

/// The leader StatefulSet's replicas for `unready` unready groups (upstream
/// `calculateRollingUpdateReplicas`): the surge is held while more groups are unready than it
/// covers, then reclaimed as the unready count falls within maxUnavailable.
pub fn calculate_rolling_update_replicas(
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    unready: i32,
) -> i32 {
    if unready <= max_surge {
        replicas.saturating_add(unready.saturating_sub(max_unavailable).max(0))
    } else {
        replicas.saturating_add(max_surge)
    }
}

/// "deleting surge replica(s)" when the StatefulSet shrinks from `sts_replicas` to `replicas`.
fn surge_deletion_events(lws_name: &str, replicas: i32, sts_replicas: i32) -> Vec<PlannedEvent> {
    if replicas >= sts_replicas {
        return Vec::new();
    }
    let note = if replicas == sts_replicas - 1 {
        format!("deleting surge replica {lws_name}-{replicas}")
    } else {
        format!(
            "deleting surge replicas from {lws_name}-{replicas} to {lws_name}-{}",
            sts_replicas - 1
        )
    };
    vec![normal(GROUPS_PROGRESSING, DELETE, note)]
}

/// The next partition of a rolling update (upstream `rollingUpdatePartition`).
pub fn rolling_update_partition(
    states: &[ReplicaState],
    sts_replicas: i32,
    rolling_step: i32,
    current_partition: i32,
) -> i32 {
    let state = |index: i32| states.get(index as usize).copied().unwrap_or_default();
    let tail = calculate_continuous_ready_replicas(states);
    let base = sts_replicas
        .saturating_sub(tail)
        .saturating_sub(rolling_step)
        .clamp(0, sts_replicas.max(0));
    // Groups below `base` that are unready already use up the unavailable budget.
    let unavailable = (0..base).filter(|&i| !state(i).ready).count() as i32;
    let mut partition = base.saturating_add(unavailable);
    // Unready or already-updated groups can be rolled without hurting availability.
    let mut index = partition.min(sts_replicas.saturating_sub(1));
    while index >= base {
        let s = state(index);
        if s.ready && !s.updated {
            break;
        }
        partition = index;
        index -= 1;
    }
    partition.min(current_partition)
}

/// Groups 0..R that are not both ready and updated; missing groups count (upstream
/// `calculateLWSUnreadyReplicas`).
pub fn calculate_lws_unready_replicas(states: &[ReplicaState], replicas: i32) -> i32 {
    (0..replicas.max(0) as usize)
        .filter(|&i| states.get(i).is_none_or(|s| !s.ready || !s.updated))
        .count() as i32
}

/// Consecutive ready-and-updated groups counted from the highest index down (upstream
/// `calculateContinuousReadyReplicas`).
pub fn calculate_continuous_ready_replicas(states: &[ReplicaState]) -> i32 {
    states
        .iter()
        .rev()
        .take_while(|s| s.ready && s.updated)
        .count() as i32
}

/// The state of groups 0..S (upstream `getReplicaStates`): a group whose leader pod
/// `<lws>-<i>` or (size > 1) worker StatefulSet `<lws>-<i>` is missing is neither ready nor
/// updated.
pub fn replica_states(
    lws: &LeaderWorkerSet,
    sts_replicas: i32,
    key: &str,
    leader_pods: &[&Pod],
    worker_sts: &BTreeMap<&str, &StatefulSet>,
) -> Vec<ReplicaState> {
    let no_workers = lws.size() == 1;
    (0..sts_replicas.max(0))
        .map(|index| {
            let nominated = format!("{}-{index}", lws.name());
            let Some(pod) = leader_pods.iter().find(|p| name(&p.metadata) == nominated) else {
                return ReplicaState::default();
            };
            let leader_ready = is_pod_running_and_ready(pod);
            let leader_updated = revision_label(&pod.metadata) == key;
            if no_workers {
                return ReplicaState {
                    ready: leader_ready,
                    updated: leader_updated,
                };
            }
            let Some(sts) = worker_sts.get(nominated.as_str()) else {
                return ReplicaState::default();
            };
            ReplicaState {
                ready: leader_ready && is_statefulset_ready(sts),
                updated: leader_updated && revision_label(&sts.metadata) == key,
            }
        })
        .collect()
}
