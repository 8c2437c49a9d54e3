//! Bounded group restarts: `leaderWorkerTemplate.maxGroupRestarts` (upstream-v0.11.md §A6.1,
//! KEP-820), with a back-off between the recreations of one group (beyond upstream).
//!
//! # Expected flow
//! 1. A pod of a group fails and [`super::restart`] finds its leader. With a budget, the group's
//!    count (key `<revision>/<group index>` in the LWS annotation `group-restart-counts`)
//!    decides ([`RestartCounts::verdict`]):
//!    - below the budget, once the back-off since the leader was created has passed, the count
//!      goes up and the leader is deleted. The count is applied with the LWS resourceVersion as
//!      a precondition (a stale read fails instead of lowering a count), and the executor applies
//!      before it deletes, so no recreation goes uncounted;
//!    - at the budget, the group is *exhausted* ([`exhaust`]): the leader is marked, every pod
//!      of the group gets the cleanup finalizer, the leader is deleted Foreground. The pods stop
//!      and free their resources; their objects stay, so neither StatefulSet recreates them.
//! 2. `recover=true` on the exhausted leader: the count is cleared and the finalizers released,
//!    workers first, then the leader; the leader StatefulSet recreates the group with a fresh
//!    budget ([`release_held_pods`]).
//! 3. Any other teardown (LWS deleting, scaled below the group, a rollout replacing it, the
//!    leader gone) releases the finalizers and keeps the count.
//!
//! # Guarantees
//! Counts never go down except by recovery or by pruning revisions a finished rollout left
//! behind. Editing `maxGroupRestarts` never resumes an exhausted group. Pods are written only
//! through server-side apply of the fields this controller owns (its finalizer and its two
//! leader annotations), with the pod's uid, so a new incarnation is never touched.

use super::events::{normal, warning, DELETE, UPDATE};
use super::observed::{
    annotation, group_index, is_deleting, label, name, object_ref, revision_label, Observed,
};
use super::wire::{ObjectRef, PlannedEvent};
use crate::api::{LeaderWorkerSet, RestartPolicy};
use crate::labels::{
    GROUP_INDEX_LABEL_KEY, GROUP_RESTART_BUDGET_CLEANUP_FINALIZER,
    GROUP_RESTART_BUDGET_EXHAUSTED_ANNOTATION_KEY, GROUP_RESTART_COUNTS_ANNOTATION_KEY,
    RECOVER_ANNOTATION_KEY,
};
use crate::pod::parent_name_and_ordinal;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Reason (Warning): a group used up its restart budget (upstream's).
pub const REPLICA_RESTART_BUDGET_EXCEEDED: &str = "ReplicaRestartBudgetExceeded";
/// Reason (Normal): a group's recreation waits for its back-off (ours).
pub const GROUP_RESTART_BACKOFF: &str = "GroupRestartBackOff";
/// Reason (Normal): an exhausted group is recovered on `recover=true` (ours).
pub const GROUP_RECOVERED: &str = "GroupRecovered";

/// The back-off after the first counted recreation of a group; it doubles with each further one.
pub const BACKOFF_BASE_SECONDS: u64 = 10;
/// The longest back-off between two recreations of one group.
pub const BACKOFF_MAX_SECONDS: u64 = 300;

/// The back-off before the next recreation of a group already recreated `restarts` times:
/// none before the first, then 10 s, 20 s, 40 s, ... up to 5 min.
pub fn backoff_seconds(restarts: i64) -> u64 {
    if restarts <= 0 {
        return 0;
    }
    let doublings = u32::try_from(restarts - 1).unwrap_or(u32::MAX).min(16);
    (BACKOFF_BASE_SECONDS << doublings).min(BACKOFF_MAX_SECONDS)
}

/// What to do with a failed group under a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Recreate it now (the count went up by one).
    Recreate,
    /// Recreate it `seconds` from now, at `at` (RFC 3339).
    Wait { seconds: u64, at: String },
    /// The budget is used up.
    Exhaust,
}

/// The LWS's restart counts, as read from its annotation and changed by this pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestartCounts {
    /// `maxGroupRestarts`, when the policy lets it apply.
    pub limit: Option<i32>,
    counts: BTreeMap<String, i64>,
    changed: bool,
}

impl RestartCounts {
    /// The counts of `lws`. An unreadable annotation reads as no counts: the budget then starts
    /// over, which is the only way on (the annotation is the controller's own).
    pub fn of(lws: &LeaderWorkerSet) -> Self {
        let template = &lws.spec.leader_worker_template;
        let limited = !matches!(template.restart_policy, Some(RestartPolicy::None));
        let counts = annotation(&lws.metadata, GROUP_RESTART_COUNTS_ANNOTATION_KEY)
            .and_then(|text| serde_json::from_str::<BTreeMap<String, i64>>(text).ok())
            .unwrap_or_default();
        RestartCounts {
            limit: template.max_group_restarts.filter(|_| limited),
            counts,
            changed: false,
        }
    }

    /// Recreations counted for `leader`'s group at its revision.
    pub fn count(&self, leader: &Pod) -> i64 {
        self.counts.get(&key(leader)).copied().unwrap_or(0)
    }

    /// The verdict for `leader`'s failed group at `now`; `Recreate` counts the recreation.
    /// `None` without a budget (unbounded recreations, at once: upstream's behaviour).
    pub fn verdict(&mut self, leader: &Pod, now: &Time) -> Option<Verdict> {
        let limit = i64::from(self.limit?);
        let count = self.count(leader);
        if count >= limit {
            return Some(Verdict::Exhaust);
        }
        let wait = backoff_seconds(count);
        if let Some(created) = &leader.metadata.creation_timestamp {
            let due = created
                .0
                .checked_add(std::time::Duration::from_secs(wait))
                .unwrap_or(created.0);
            if due > now.0 {
                let left = due.duration_since(now.0);
                let seconds = left.as_secs() + i64::from(left.subsec_nanos() > 0);
                return Some(Verdict::Wait {
                    seconds: u64::try_from(seconds).unwrap_or(1).max(1),
                    at: due.to_string(),
                });
            }
        }
        self.counts.insert(key(leader), count + 1);
        self.changed = true;
        Some(Verdict::Recreate)
    }

    /// Forgets `leader`'s group count (recovery).
    fn clear(&mut self, leader: &Pod) {
        if self.counts.remove(&key(leader)).is_some() {
            self.changed = true;
        }
    }

    /// Drops the keys of revisions other than `current` (after a finished rollout).
    pub fn prune(&mut self, current: &str) {
        let before = self.counts.len();
        self.counts.retain(|k, _| {
            k.rsplit_once('/')
                .is_some_and(|(revision, _)| revision == current)
        });
        self.changed |= self.counts.len() != before;
    }

    /// The server-side apply of the annotation on `lws`, when this pass changed a count. It
    /// carries the observed resourceVersion: a stale LWS makes it fail with a conflict.
    pub fn annotation_apply(&self, lws: &LeaderWorkerSet) -> Option<Value> {
        if !self.changed {
            return None;
        }
        let counts = serde_json::to_string(&self.counts).unwrap_or_else(|_| "{}".into());
        Some(json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": crate::api::KIND,
            "metadata": {
                "name": lws.name(),
                "namespace": lws.namespace(),
                "resourceVersion": lws.metadata.resource_version,
                "annotations": {GROUP_RESTART_COUNTS_ANNOTATION_KEY: counts},
            },
        }))
    }
}

/// `<revision>/<group index>` of a leader pod.
fn key(leader: &Pod) -> String {
    format!(
        "{}/{}",
        revision_label(&leader.metadata),
        label(&leader.metadata, GROUP_INDEX_LABEL_KEY).unwrap_or("")
    )
}

/// True when the leader's group exhausted its budget.
pub fn is_exhausted(leader: &Pod) -> bool {
    annotation(
        &leader.metadata,
        GROUP_RESTART_BUDGET_EXHAUSTED_ANNOTATION_KEY,
    ) == Some("true")
}

fn holds_finalizer(meta: &ObjectMeta) -> bool {
    meta.finalizers
        .iter()
        .flatten()
        .any(|f| f == GROUP_RESTART_BUDGET_CLEANUP_FINALIZER)
}

/// A pod as this controller applies it: name, namespace and uid (so another incarnation is
/// never written), plus `extra` metadata. Applied with nothing else, it releases every field the
/// controller owns on the pod.
fn pod_apply(lws: &LeaderWorkerSet, pod: &Pod, extra: Value) -> Value {
    let mut metadata = json!({
        "name": name(&pod.metadata),
        "namespace": pod.metadata.namespace.as_deref().unwrap_or(lws.namespace()),
        "uid": pod.metadata.uid,
    });
    if let (Value::Object(metadata), Value::Object(extra)) = (&mut metadata, extra) {
        metadata.extend(extra);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata})
}

/// What exhausting a group writes and deletes.
#[derive(Clone, Debug, PartialEq)]
pub struct Exhaustion {
    pub apply: Vec<Value>,
    pub delete: ObjectRef,
    pub event: PlannedEvent,
}

/// Exhausts `leader`'s group: the leader marked (and a `recover` left from before turned
/// `"false"`, so it cannot recover the group at once), the finalizer on every pod of the group
/// not already terminating, the leader deleted Foreground.
pub fn exhaust(lws: &LeaderWorkerSet, observed: &Observed, leader: &Pod) -> Exhaustion {
    let index = group_index(leader);
    let mut apply = vec![pod_apply(
        lws,
        leader,
        json!({
            "annotations": {
                GROUP_RESTART_BUDGET_EXHAUSTED_ANNOTATION_KEY: "true",
                RECOVER_ANNOTATION_KEY: "false",
            },
            "finalizers": [GROUP_RESTART_BUDGET_CLEANUP_FINALIZER],
        }),
    )];
    for worker in &observed.worker_pods {
        if group_index(worker) == index
            && !is_deleting(&worker.metadata)
            && revision_label(&worker.metadata) == revision_label(&leader.metadata)
        {
            apply.push(pod_apply(
                lws,
                worker,
                json!({"finalizers": [GROUP_RESTART_BUDGET_CLEANUP_FINALIZER]}),
            ));
        }
    }
    let mut delete = object_ref("v1", "Pod", &leader.metadata, lws.namespace());
    delete.propagation_policy = Some("Foreground".to_string());
    let group = label(&leader.metadata, GROUP_INDEX_LABEL_KEY).unwrap_or("");
    Exhaustion {
        apply,
        delete,
        event: warning(
            REPLICA_RESTART_BUDGET_EXCEEDED,
            DELETE,
            format!(
                "Restart budget exhausted; terminated group {group} and stopped automatic recovery"
            ),
        ),
    }
}

/// The event of a recreation that waits for its back-off.
pub fn backoff_event(
    leader: &Pod,
    count: i64,
    limit: Option<i32>,
    at: &str,
    seconds: u64,
) -> PlannedEvent {
    let group = label(&leader.metadata, GROUP_INDEX_LABEL_KEY).unwrap_or("");
    let budget = limit.map_or(String::new(), |l| format!(" of {l}"));
    normal(
        GROUP_RESTART_BACKOFF,
        UPDATE,
        format!(
            "Group {group} failed again; recreating it at {at} (in {seconds}s; recreation {}{budget}, back-off {}s)",
            count + 1,
            backoff_seconds(count)
        ),
    )
}

/// What releasing held pods writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Release {
    pub apply: Vec<Value>,
    pub events: Vec<PlannedEvent>,
}

/// Releases the cleanup finalizer where the group is recovered or torn down (see the module
/// docs); workers first: a leader goes once none of its group's workers holds the finalizer.
/// `revision` is the LWS's current revision and `partition` its rollout partition.
pub fn release_held_pods(
    lws: &LeaderWorkerSet,
    observed: &Observed,
    counts: &mut RestartCounts,
    revision: &str,
    partition: i32,
) -> Release {
    let mut out = Release::default();
    let lws_deleting = is_deleting(&lws.metadata);
    let replicas = i64::from(lws.replicas());
    let torn_down = |leader: &Pod| {
        let index = group_index(leader).unwrap_or(i64::MAX);
        lws_deleting
            || index >= replicas
            || (revision_label(&leader.metadata) != revision && index >= i64::from(partition))
    };
    let recovering = |leader: &Pod| {
        is_exhausted(leader)
            && is_deleting(&leader.metadata)
            && annotation(&leader.metadata, RECOVER_ANNOTATION_KEY) == Some("true")
    };
    let mut leaders_waiting = std::collections::BTreeSet::new();
    for worker in &observed.worker_pods {
        if !holds_finalizer(&worker.metadata) {
            continue;
        }
        let (leader_name, _) = parent_name_and_ordinal(name(&worker.metadata));
        let leader = observed
            .leader_pod(leader_name)
            .filter(|l| group_index(l) == group_index(worker));
        // A worker is held only under an exhausted leader of its group.
        let release = match leader.filter(|l| is_exhausted(l)) {
            None => true,
            Some(leader) => {
                leaders_waiting.insert(name(&leader.metadata).to_string());
                recovering(leader) || torn_down(leader)
            }
        };
        if release {
            out.apply.push(pod_apply(lws, worker, json!({})));
        }
    }
    for leader in &observed.leader_pods {
        if !holds_finalizer(&leader.metadata) || leaders_waiting.contains(name(&leader.metadata)) {
            continue;
        }
        if recovering(leader) {
            counts.clear(leader);
            let group = label(&leader.metadata, GROUP_INDEX_LABEL_KEY).unwrap_or("");
            out.events.push(normal(
                GROUP_RECOVERED,
                UPDATE,
                format!(
                    "Recovering group {group} on {RECOVER_ANNOTATION_KEY}=true with a fresh restart budget"
                ),
            ));
        } else if is_exhausted(leader) && !torn_down(leader) {
            continue;
        }
        out.apply.push(pod_apply(lws, leader, json!({})));
    }
    out
}

/// Group indexes whose leader is exhausted and held.
pub fn exhausted_groups(observed: &Observed) -> Vec<i64> {
    observed
        .leader_pods
        .iter()
        .filter(|l| is_exhausted(l) && holds_finalizer(&l.metadata))
        .filter_map(|l| group_index(l))
        .collect()
}
