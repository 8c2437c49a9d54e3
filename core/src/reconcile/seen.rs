//! How [`super::ReconcileInput`] is decoded: the observed Pods and StatefulSets are read
//! through small views of the fields the decision uses; everything else in them is skipped
//! unparsed.
//!
//! A 100 × 8 LeaderWorkerSet sends ~800 Pods and ~100 StatefulSets on every reconcile (3.5 MB
//! of JSON). Building whole k8s-openapi objects from that, through a `serde_json::Value`, was
//! almost all of a call's time (the decision itself is well under a millisecond). The views are
//! decoded straight from the bytes; the few small objects that are read whole (the
//! LeaderWorkerSet, revisions, Services, Nodes) go through `Value` like every other operation,
//! so their (large) deserializers are not compiled into the module twice.
//!
//! The views turn into the same k8s-openapi types with only the viewed fields set, so the
//! decision code reads Pods and StatefulSets as usual. The reconcile unit tests decide every
//! input twice, whole and through this decoding, and require the same plan (see
//! `tests::plan_reconcile`), so a field read by the decision but missing here fails them.

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetStatus,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Decodes through a `serde_json::Value`, the path every other operation's input takes.
pub(super) fn via_value<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    serde_path_to_error::deserialize(value).map_err(D::Error::custom)
}

pub(super) fn pods<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Pod>, D::Error> {
    let views: Option<Vec<PodView>> = Deserialize::deserialize(deserializer)?;
    Ok(views.into_iter().flatten().map(Pod::from).collect())
}

pub(super) fn stateful_set<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<StatefulSet>, D::Error> {
    let view: Option<StatefulSetView> = Deserialize::deserialize(deserializer)?;
    Ok(view.map(StatefulSet::from))
}

pub(super) fn stateful_sets<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<StatefulSet>, D::Error> {
    let views: Option<Vec<StatefulSetView>> = Deserialize::deserialize(deserializer)?;
    Ok(views.into_iter().flatten().map(StatefulSet::from).collect())
}

#[derive(Deserialize)]
struct PodView {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<PodSpecView>,
    status: Option<PodStatusView>,
}

/// Where the pod runs (exclusive placement), what it requests and who schedules it (Volcano's
/// PodGroup).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpecView {
    node_name: Option<String>,
    scheduler_name: Option<String>,
    #[serde(default)]
    containers: Vec<ContainerView>,
    init_containers: Option<Vec<ContainerView>>,
    overhead: Option<BTreeMap<String, Quantity>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerView {
    #[serde(default)]
    name: String,
    resources: Option<ResourceRequirements>,
    restart_policy: Option<String>,
}

/// Readiness, phase and restarts (status counts, rollout, restart policy).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatusView {
    phase: Option<String>,
    conditions: Option<Vec<ConditionView>>,
    container_statuses: Option<Vec<ContainerStatusView>>,
    init_container_statuses: Option<Vec<ContainerStatusView>>,
}

#[derive(Deserialize)]
struct ConditionView {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatusView {
    #[serde(default)]
    name: String,
    #[serde(default)]
    restart_count: i32,
}

#[derive(Deserialize)]
struct StatefulSetView {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<StatefulSetSpecView>,
    status: Option<StatefulSetStatus>,
}

/// Size and rollout position; the pod template is the desired state's business, not read back.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatefulSetSpecView {
    replicas: Option<i32>,
    update_strategy: Option<UpdateStrategyView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStrategyView {
    #[serde(rename = "type")]
    type_: Option<String>,
    rolling_update: Option<RollingUpdateView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollingUpdateView {
    max_unavailable: Option<IntOrString>,
    partition: Option<i32>,
}

impl From<PodView> for Pod {
    fn from(view: PodView) -> Self {
        Pod {
            metadata: view.metadata,
            spec: view.spec.map(|spec| PodSpec {
                node_name: spec.node_name,
                scheduler_name: spec.scheduler_name,
                containers: spec.containers.into_iter().map(Container::from).collect(),
                init_containers: spec
                    .init_containers
                    .map(|c| c.into_iter().map(Container::from).collect()),
                overhead: spec.overhead,
                ..PodSpec::default()
            }),
            status: view.status.map(|status| PodStatus {
                phase: status.phase,
                conditions: status.conditions.map(|c| {
                    c.into_iter()
                        .map(|c| PodCondition {
                            type_: c.type_,
                            status: c.status,
                            ..PodCondition::default()
                        })
                        .collect()
                }),
                container_statuses: status.container_statuses.map(container_statuses),
                init_container_statuses: status.init_container_statuses.map(container_statuses),
                ..PodStatus::default()
            }),
        }
    }
}

impl From<ContainerView> for Container {
    fn from(view: ContainerView) -> Self {
        Container {
            name: view.name,
            resources: view.resources,
            restart_policy: view.restart_policy,
            ..Container::default()
        }
    }
}

fn container_statuses(views: Vec<ContainerStatusView>) -> Vec<ContainerStatus> {
    views
        .into_iter()
        .map(|c| ContainerStatus {
            name: c.name,
            restart_count: c.restart_count,
            ..ContainerStatus::default()
        })
        .collect()
}

impl From<StatefulSetView> for StatefulSet {
    fn from(view: StatefulSetView) -> Self {
        StatefulSet {
            metadata: view.metadata,
            spec: view.spec.map(|spec| StatefulSetSpec {
                replicas: spec.replicas,
                update_strategy: spec.update_strategy.map(|u| StatefulSetUpdateStrategy {
                    type_: u.type_,
                    rolling_update: u.rolling_update.map(|r| RollingUpdateStatefulSetStrategy {
                        max_unavailable: r.max_unavailable,
                        partition: r.partition,
                    }),
                }),
                ..StatefulSetSpec::default()
            }),
            status: view.status,
        }
    }
}

/// [`super::plan_reconcile`] for the unit tests: decides `input` whole and again after a trip
/// through the module's decoding, and requires the same plan both ways (and the same bytes
/// from the borrowed encoding the host uses).
#[cfg(test)]
pub(super) fn plan_reconcile(input: &super::ReconcileInput) -> super::ReconcilePlan {
    let whole = super::plan_reconcile(input);
    let bytes = serde_json::to_vec(input).expect("inputs serialize");
    let borrowed = serde_json::to_vec(&super::ReconcileInputRef::from(input)).expect("serializes");
    assert_eq!(
        bytes, borrowed,
        "ReconcileInputRef encodes differently from ReconcileInput"
    );
    let answer = super::run_op(&bytes).expect("the module decodes what the host encodes");
    let decoded: super::ReconcilePlan = serde_json::from_slice(&answer).expect("a plan");
    assert_eq!(
        decoded, whole,
        "the decoded input decides differently: a field the decision reads is not in the views"
    );
    whole
}
