//! The `reconcile` operation's input (what the host observed) and output (the plan it applies).
//!
//! The host fills [`ReconcileInput`] from its reflector stores for one LeaderWorkerSet, calls
//! the module once, and executes the [`ReconcilePlan`] in order: `create` (create-if-absent,
//! `AlreadyExists` is success), `apply` (server-side apply, field manager
//! [`crate::labels::FIELD_MANAGER`], force), `delete` (NotFound is success), then `status`
//! (a status-subresource write) and `events` (events.k8s.io, regarding = the LeaderWorkerSet).
//! It then requeues after `requeueAfterSeconds` when set. The host never looks inside the
//! objects: every decision is in the plan.
//!
//! A LeaderWorkerSet that is gone while objects labelled with its name still change (the
//! garbage collector is removing them) is sent as [`LeaderWorkerSet::gone`], with those objects.

use super::seen;
use crate::api::{LeaderWorkerSet, LeaderWorkerSetStatus};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// Everything the decision for one LeaderWorkerSet depends on.
///
/// Lists may come in any order: [`super::plan_reconcile`] sorts them first. Pods and
/// StatefulSets are decoded through views of the fields the decision reads ([`super::seen`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileInput {
    /// The LeaderWorkerSet as stored (defaulted by the API server and webhook), with
    /// `metadata.uid` and `metadata.generation`.
    #[serde(deserialize_with = "seen::via_value")]
    pub lws: LeaderWorkerSet,
    /// The time of this reconcile, RFC 3339; stamped on changed conditions. Core reads no clock.
    pub now: Time,
    /// ControllerRevisions labelled `leaderworkerset.sigs.k8s.io/name=<lws>` in its namespace.
    #[serde(default, deserialize_with = "seen::via_value")]
    pub revisions: Vec<ControllerRevision>,
    /// The StatefulSet `<lws>`, if it exists.
    #[serde(default, deserialize_with = "seen::stateful_set")]
    pub leader_stateful_set: Option<StatefulSet>,
    /// StatefulSets labelled with the LWS name other than the leader's: the worker StatefulSets.
    #[serde(default, deserialize_with = "seen::stateful_sets")]
    pub worker_stateful_sets: Vec<StatefulSet>,
    /// Pods labelled `{name: <lws>, worker-index: "0"}`.
    #[serde(default, deserialize_with = "seen::pods")]
    pub leader_pods: Vec<Pod>,
    /// Pods labelled with the LWS name and a worker index other than "0" (for the restart policy).
    #[serde(default, deserialize_with = "seen::pods")]
    pub worker_pods: Vec<Pod>,
    /// Services labelled with the LWS name (the shared one and the per-replica ones).
    #[serde(default, deserialize_with = "seen::via_value")]
    pub services: Vec<Service>,
    /// The Nodes leader pods run on (only needed under exclusive placement).
    #[serde(default, deserialize_with = "seen::via_value")]
    pub nodes: Vec<Node>,
    /// Existing Volcano PodGroups of this LWS: full objects or just their names as strings.
    #[serde(default)]
    pub pod_groups: Vec<serde_json::Value>,
    /// The gang-scheduling provider of the controller's configuration (`"volcano"` or none).
    #[serde(default)]
    pub scheduler_provider: Option<String>,
}

/// A [`ReconcileInput`] by reference: the same JSON, for a host whose observed objects sit in
/// shared caches and would otherwise be deep-copied on every reconcile just to be encoded.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileInputRef<'a> {
    pub lws: &'a LeaderWorkerSet,
    pub now: &'a Time,
    pub revisions: Vec<&'a ControllerRevision>,
    pub leader_stateful_set: Option<&'a StatefulSet>,
    pub worker_stateful_sets: Vec<&'a StatefulSet>,
    pub leader_pods: Vec<&'a Pod>,
    pub worker_pods: Vec<&'a Pod>,
    pub services: Vec<&'a Service>,
    pub nodes: Vec<&'a Node>,
    pub pod_groups: &'a [serde_json::Value],
    pub scheduler_provider: Option<&'a str>,
}

/// The correspondence the unit tests check (`seen::plan_reconcile`); hosts build the borrowed
/// form from their own caches.
#[cfg(test)]
impl<'a> From<&'a ReconcileInput> for ReconcileInputRef<'a> {
    fn from(input: &'a ReconcileInput) -> Self {
        ReconcileInputRef {
            lws: &input.lws,
            now: &input.now,
            revisions: input.revisions.iter().collect(),
            leader_stateful_set: input.leader_stateful_set.as_ref(),
            worker_stateful_sets: input.worker_stateful_sets.iter().collect(),
            leader_pods: input.leader_pods.iter().collect(),
            worker_pods: input.worker_pods.iter().collect(),
            services: input.services.iter().collect(),
            nodes: input.nodes.iter().collect(),
            pod_groups: &input.pod_groups,
            scheduler_provider: input.scheduler_provider.as_deref(),
        }
    }
}

/// What the host should do for one LeaderWorkerSet, all of it derived from [`ReconcileInput`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcilePlan {
    /// Full desired objects to server-side apply (field manager `lws`, force): the leader
    /// StatefulSet, every time (apply is idempotent).
    #[serde(default)]
    pub apply: Vec<serde_json::Value>,
    /// Objects to create if absent, never updated (upstream never updates them):
    /// ControllerRevisions, Services, worker StatefulSets, PodGroups.
    #[serde(default)]
    pub create: Vec<serde_json::Value>,
    /// Objects to delete: superseded ControllerRevisions; leader pods of groups to recreate
    /// (Foreground propagation, uid precondition); worker pods a replaced worker StatefulSet
    /// left behind (uid precondition); under `podTerminationPolicy: Parallel`, worker
    /// StatefulSets of deleting leaders or of a deleting LWS (Foreground, uid precondition).
    #[serde(default)]
    pub delete: Vec<ObjectRef>,
    /// The new status, to write through the status subresource; `None` when unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<LeaderWorkerSetStatus>,
    /// Events to record (events.k8s.io, regarding = the LeaderWorkerSet, reporting controller
    /// `leaderworkerset`), with upstream's reasons and texts.
    #[serde(default)]
    pub events: Vec<PlannedEvent>,
    /// Reconcile again after this many seconds even without a watch event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<u64>,
    /// Short, stable explanations of the decisions taken (for debug logs); not for parsing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// A reference to one object, for deletion or as an event's `related` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// For a delete: a precondition (delete only this incarnation of the object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// For a delete: `Foreground`, `Background` or `Orphan`; `None` = the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<String>,
}

/// One event to record, regarding the LeaderWorkerSet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// Upstream's reason (`CreatingRevision`, `GroupsProgressing`, ...).
    pub reason: String,
    /// Upstream's action (`Create`, `Update`, `Delete`).
    pub action: String,
    /// The human-readable text, upstream's exact wording.
    pub note: String,
    /// A second object the event is about (a revision, a pod), when upstream names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectRef>,
}

/// `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}
