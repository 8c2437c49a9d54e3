//! The LeaderWorkerSet's status: counts, conditions and the "update done" signal.
//!
//! Mirrors `updateStatus`, `updateConditions`, `makeCondition`, `setConditions`, `setCondition`
//! and `exclusiveConditionTypes` in `pkg/controllers/leaderworkerset_controller.go` upstream
//! (upstream-lws.md §2.8, §2.9, §4.7).
//!
//! # Quirks kept on purpose
//! - Progressing and UpdateInProgress are not exclusive, so UpdateInProgress stays True until
//!   Available is set.
//! - `setConditions` stops at the first condition that changed (Go's `shouldUpdate ||
//!   setCondition(...)` short-circuits), so during a rollout Progressing may be added one
//!   status pass after UpdateInProgress.

use super::events::{normal, GROUPS_PROGRESSING, GROUPS_UPDATING, UPDATE};
use super::observed::{
    group_index, is_pod_running_and_ready, is_statefulset_ready, name, revision_label,
};
use super::wire::PlannedEvent;
use crate::api::{LeaderWorkerSet, LeaderWorkerSetStatus};
use crate::labels::{SET_NAME_LABEL_KEY, WORKER_INDEX_LABEL_KEY};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeMap;

/// Condition type: every group is ready.
pub const AVAILABLE: &str = "Available";
/// Condition type: groups are being created or are not ready.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: a rolling update is in progress.
pub const UPDATE_IN_PROGRESS: &str = "UpdateInProgress";
/// Reason of Available.
pub const ALL_GROUPS_READY: &str = "AllGroupsReady";
/// Condition type (`maxGroupRestarts`): a group used up its restart budget (upstream-v0.11.md
/// §A6.1).
pub const DEGRADED: &str = "Degraded";
/// Reason of a False Degraded.
pub const AS_EXPECTED: &str = "AsExpected";

/// The status pass's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusDecision {
    /// The new status; `None` when nothing changed.
    pub status: Option<LeaderWorkerSetStatus>,
    /// Every non-surge group at or above the LWS partition is updated and ready, and the LWS
    /// partition is 0: older revisions can go.
    pub update_done: bool,
    /// The condition event, when the conditions changed.
    pub events: Vec<PlannedEvent>,
}

/// Counts over the leader pods (upstream `updateConditions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCounts {
    pub ready: i32,
    pub updated: i32,
    pub ready_non_burst: i32,
    pub partitioned_current_non_burst: i32,
    pub partitioned_updated_non_burst: i32,
    pub partitioned_updated_and_ready: i32,
}

/// Counts ready and updated groups. A group whose worker StatefulSet is missing (size > 1) is
/// skipped entirely, as upstream does; so is a leader pod without a group index.
pub fn count_groups(
    lws: &LeaderWorkerSet,
    key: &str,
    leader_pods: &[&Pod],
    worker_sts: &BTreeMap<&str, &StatefulSet>,
) -> GroupCounts {
    let replicas = i64::from(lws.replicas());
    let lws_partition = i64::from(super::rollout::RolloutBudget::of(lws).partition);
    let no_workers = lws.size() == 1;
    let mut counts = GroupCounts::default();
    for pod in leader_pods {
        // Upstream fails the whole pass on an unparsable index; skipping it is the closest
        // pure equivalent (the pod webhook always sets it).
        let Some(index) = group_index(pod) else {
            continue;
        };
        let sts = worker_sts.get(name(&pod.metadata)).copied();
        if !no_workers && sts.is_none() {
            continue;
        }
        let in_window = index < replicas && index >= lws_partition;
        if in_window {
            counts.partitioned_current_non_burst += 1;
        }
        let ready = sts.is_none_or(is_statefulset_ready) && is_pod_running_and_ready(pod);
        let updated = sts.is_none_or(|s| revision_label(&s.metadata) == key)
            && revision_label(&pod.metadata) == key;
        if ready {
            counts.ready += 1;
        }
        if updated {
            counts.updated += 1;
            if in_window {
                counts.partitioned_updated_non_burst += 1;
            }
        }
        if index < replicas {
            if ready {
                counts.ready_non_burst += 1;
            }
            if in_window && ready && updated {
                counts.partitioned_updated_and_ready += 1;
            }
        }
    }
    counts
}

/// Computes the status (upstream `updateStatus` + `updateConditions`). `sts_status_replicas` is
/// the leader StatefulSet's `status.replicas` (0 before it exists).
///
/// `exhausted` lists the groups that used up their restart budget; `None` when the LWS has no
/// budget and no group is exhausted, and then there is no Degraded condition.
pub fn compute_status(
    lws: &LeaderWorkerSet,
    sts_status_replicas: i32,
    counts: &GroupCounts,
    exhausted: Option<&[i64]>,
    now: &Time,
) -> StatusDecision {
    let old = lws.status.clone().unwrap_or_default();
    let generation = lws.metadata.generation.unwrap_or(0);
    let replicas = lws.replicas();
    let lws_partition = super::rollout::RolloutBudget::of(lws).partition;
    let mut status = old.clone();
    status.replicas = sts_status_replicas;
    status.observed_generation = Some(generation);
    if status.hpa_pod_selector.as_deref().unwrap_or("").is_empty() {
        status.hpa_pod_selector = Some(hpa_pod_selector(lws));
    }
    status.ready_replicas = counts.ready;
    status.updated_replicas = counts.updated;

    let wanted = choose_conditions(counts, replicas);
    let conditions_changed = set_conditions(&mut status.conditions, &wanted, generation, now);
    if let Some(exhausted) = exhausted {
        set_degraded(&mut status.conditions, exhausted, generation, now);
    }
    let mut events = Vec::new();
    if conditions_changed {
        let first = &wanted[0];
        events.push(normal(
            &first.reason,
            UPDATE,
            format!(
                "{}, with {} groups ready of total {} groups",
                first.message, counts.ready, replicas
            ),
        ));
    }
    StatusDecision {
        status: (status != old).then_some(status),
        update_done: lws_partition == 0 && counts.partitioned_updated_and_ready == replicas,
        events,
    }
}

/// `leaderworkerset.sigs.k8s.io/name=<lws>,leaderworkerset.sigs.k8s.io/worker-index=0`: the
/// leaders, as `labels.Selector.String()` writes it (keys sorted).
pub fn hpa_pod_selector(lws: &LeaderWorkerSet) -> String {
    format!(
        "{SET_NAME_LABEL_KEY}={},{WORKER_INDEX_LABEL_KEY}=0",
        lws.name()
    )
}

/// The conditions to set, in upstream's order.
pub fn choose_conditions(counts: &GroupCounts, replicas: i32) -> Vec<Condition> {
    if counts.partitioned_updated_non_burst < counts.partitioned_current_non_burst {
        vec![
            make_condition(UPDATE_IN_PROGRESS),
            make_condition(PROGRESSING),
        ]
    } else if counts.ready_non_burst == replicas
        && counts.partitioned_updated_and_ready == counts.partitioned_current_non_burst
    {
        vec![make_condition(AVAILABLE)]
    } else {
        vec![make_condition(PROGRESSING)]
    }
}

/// A True condition of `type_` with upstream's reason and message (upstream `makeCondition`);
/// the time and generation are filled by [`set_condition`].
pub fn make_condition(type_: &str) -> Condition {
    let (reason, message) = match type_ {
        AVAILABLE => (ALL_GROUPS_READY, "All replicas are ready"),
        UPDATE_IN_PROGRESS => (GROUPS_UPDATING, "Rolling Upgrade is in progress"),
        _ => (GROUPS_PROGRESSING, "Replicas are progressing"),
    };
    Condition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: Time(Default::default()),
        observed_generation: None,
    }
}

/// Sets each wanted condition until one changes something (upstream `setConditions`, with Go's
/// short-circuit `||`). True when the conditions changed.
pub fn set_conditions(
    conditions: &mut Vec<Condition>,
    wanted: &[Condition],
    generation: i64,
    now: &Time,
) -> bool {
    wanted
        .iter()
        .any(|condition| set_condition(conditions, condition.clone(), generation, now))
}

/// Upstream `setCondition`: replace a same-type condition whose status or observedGeneration
/// differs; flip a True condition of the exclusive type to False; append a True condition that
/// is absent; then stamp every condition with `generation`. Reason and message changes alone
/// are ignored. True when anything but the generation stamp changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    mut new: Condition,
    generation: i64,
    now: &Time,
) -> bool {
    new.last_transition_time = now.clone();
    new.observed_generation = Some(generation);
    let mut found = false;
    let mut changed = false;
    for current in conditions.iter_mut() {
        if current.type_ == new.type_ {
            if current.status != new.status
                || current.observed_generation != new.observed_generation
            {
                *current = new.clone();
                changed = true;
            }
            found = true;
        } else if is_exclusive(&current.type_, &new.type_)
            && new.status == "True"
            && current.status == "True"
        {
            current.status = "False".to_string();
            current.last_transition_time = now.clone();
            current.observed_generation = Some(generation);
            changed = true;
        }
    }
    if new.status == "True" && !found {
        conditions.push(new);
        changed = true;
    }
    for condition in conditions.iter_mut() {
        condition.observed_generation = Some(generation);
    }
    changed
}

/// Degraded: True naming the exhausted groups, else False (`AsExpected`); its transition time
/// moves only when its status does. While degraded, a False Available says why. Progressing is
/// left as the counts set it (upstream turns it False unless other work progresses;
/// docs/differences.md).
fn set_degraded(conditions: &mut Vec<Condition>, exhausted: &[i64], generation: i64, now: &Time) {
    use super::budget::REPLICA_RESTART_BUDGET_EXCEEDED;
    let (status, reason, message) = match exhausted {
        [] => (
            "False",
            AS_EXPECTED,
            "No replica has exhausted its restart budget".to_string(),
        ),
        groups => (
            "True",
            REPLICA_RESTART_BUDGET_EXCEEDED,
            format!(
                "Groups {} exhausted their restart budget; annotate a leader with {}=true to recover its group",
                groups.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
                crate::labels::RECOVER_ANNOTATION_KEY
            ),
        ),
    };
    let condition = Condition {
        type_: DEGRADED.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: now.clone(),
        observed_generation: Some(generation),
    };
    match conditions.iter_mut().find(|c| c.type_ == DEGRADED) {
        Some(current) => {
            let since =
                (current.status == condition.status).then(|| current.last_transition_time.clone());
            *current = condition;
            if let Some(since) = since {
                current.last_transition_time = since;
            }
        }
        None => conditions.push(condition),
    }
    if !exhausted.is_empty() {
        if let Some(available) = conditions
            .iter_mut()
            .find(|c| c.type_ == AVAILABLE && c.status == "False")
        {
            available.reason = REPLICA_RESTART_BUDGET_EXCEEDED.to_string();
            available.message = "A replica has exhausted its restart budget".to_string();
        }
    }
}

/// Available excludes Progressing and UpdateInProgress (upstream `exclusiveConditionTypes`).
pub fn is_exclusive(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        (AVAILABLE, PROGRESSING)
            | (PROGRESSING, AVAILABLE)
            | (AVAILABLE, UPDATE_IN_PROGRESS)
            | (UPDATE_IN_PROGRESS, AVAILABLE)
    )
}
