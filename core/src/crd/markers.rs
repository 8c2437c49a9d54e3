//! The CRD markers of LeaderWorkerSet's own fields: what upstream's kubebuilder comments on
//! `leaderworkerset_types.go` give (upstream-lws.md §2.2–§2.8; the v0.10/v0.11 fields after
//! upstream-v0.11.md §A1, §A2, §A6.1, §A6.2), and the `kubectl explain` text of our fields.
//!
//! The Rust types say which fields exist and their JSON types (schemars); these markers add what
//! the types cannot: defaults, bounds, required fields, the order of enum values and list types.
//! An enum marker must name exactly the values of its Rust type, so the two cannot drift.

use crate::api::{
    GroupIdentity, PodTerminationPolicy, RestartPolicy, RolloutStrategyType, StartupPolicy,
    SubGroupPolicyType, API_VERSION,
};
use crate::defaults::{
    DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE, DEFAULT_PARTITION, DEFAULT_REPLICAS, DEFAULT_SIZE,
};
use crate::validation::MAX_REPLICAS;
use serde_json::{json, Map, Value};

/// One kubebuilder marker (or description) on a field.
#[derive(Clone, Debug)]
pub(super) enum Marker {
    Default(Value),
    /// `+kubebuilder:validation:Enum`, in the marker's order.
    Enum(&'static [&'static str]),
    Minimum(i64),
    Maximum(i64),
    Required(&'static [&'static str]),
    /// `+listType=map` with its `+listMapKey`s.
    MapList(&'static [&'static str]),
    Description(&'static str),
}

/// What is wrong with a marker. The markers are fixed, so these are caught by the unit tests.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MarkerError {
    #[error("a marker names `{0}`, which the LeaderWorkerSet schema does not have")]
    NoSuchField(String),
    #[error("`{path}`: the enum marker {marker:?} is not the type's values {generated:?}")]
    EnumMismatch {
        path: String,
        marker: Vec<String>,
        generated: Vec<String>,
    },
}

/// Every marker, by dotted field path ("" is the root).
pub(super) fn markers() -> Vec<(&'static str, Vec<Marker>)> {
    use Marker::*;
    vec![
        ("", vec![Description("A LeaderWorkerSet runs groups of pods, each one leader and its workers, that are created, updated and recreated together.")]),
        ("spec", vec![
            Required(&["leaderWorkerTemplate"]),
            Description("The desired state: `replicas` groups of `leaderWorkerTemplate.size` pods, one leader and size - 1 workers each."),
        ]),
        ("spec.replicas", vec![
            Default(json!(DEFAULT_REPLICAS)),
            Minimum(0),
            Maximum(MAX_REPLICAS.into()),
            Description("How many groups to run. The scale subresource acts on this field (its selector picks the leader pods); scaling down removes the groups with the highest ordinals. Defaults to 1."),
        ]),
        ("spec.startupPolicy", vec![
            Default(json!(StartupPolicy::LeaderCreated.as_str())),
            Enum(&["LeaderCreated", "LeaderReady"]),
            Description("When a group's workers are created: LeaderCreated as soon as the leader pod exists, LeaderReady once it is ready. Defaults to LeaderCreated."),
        ]),
        ("spec.groupIdentity", vec![
            Default(json!(GroupIdentity::Ordinal.as_str())),
            Enum(&["Ordinal", "Hash"]),
            Description("How groups are identified: Ordinal numbers them 0 to replicas - 1 (the leaders are a StatefulSet), Hash gives each a random key (the leaders are a Deployment). Immutable. Defaults to Ordinal."),
        ]),
        // No CRD default (upstream-v0.11.md §A2.1 finds no marker): the webhook defaults it.
        ("spec.groupReplacementPolicy", vec![
            Enum(&["PostTermination", "Immediate"]),
            Description("When the replacement of a deleted group may be scheduled: PostTermination once the pods of the group it replaces are gone, Immediate at once (groupIdentity Hash only). The webhook defaults it to PostTermination."),
        ]),
        // Upstream main's markers (§A6.2): `default=Default`, `Enum=Default;Parallel`.
        ("spec.podTerminationPolicy", vec![
            Default(json!(PodTerminationPolicy::Default.as_str())),
            Enum(&["Default", "Parallel"]),
            Description("How a group's pods go away: Default leaves the workers to garbage collection after their leader is gone, Parallel deletes the worker StatefulSet as soon as the leader is deleting, so leader and workers terminate together. Defaults to Default."),
        ]),
        ("spec.scheduling", vec![
            Description("Workload-aware scheduling of the groups (gang scheduling, topology constraints), kept as written."),
        ]),
        ("spec.rolloutStrategy", vec![
            Required(&["type"]),
            Description("How groups move to a new revision of leaderWorkerTemplate."),
        ]),
        ("spec.rolloutStrategy.type", vec![
            Default(json!(RolloutStrategyType::RollingUpdate.as_str())),
            Enum(&["RollingUpdate"]),
            Description("The rollout strategy; RollingUpdate is the only one."),
        ]),
        ("spec.rolloutStrategy.rollingUpdateConfiguration", vec![
            Description("The parameters of a RollingUpdate."),
        ]),
        ("spec.rolloutStrategy.rollingUpdateConfiguration.partition", vec![
            Default(json!(DEFAULT_PARTITION)),
            Description("Only groups with an ordinal of at least partition are updated; the others keep their revision. Defaults to 0."),
        ]),
        ("spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable", vec![
            Default(json!(DEFAULT_MAX_UNAVAILABLE)),
            Description("How many groups may be unavailable during an update: a number, or a percentage of replicas rounded down. Not 0 when maxSurge is 0. Defaults to 1."),
        ]),
        ("spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge", vec![
            Default(json!(DEFAULT_MAX_SURGE)),
            Description("How many groups may run above replicas during an update: a number, or a percentage of replicas rounded up. Defaults to 0."),
        ]),
        ("spec.networkConfig", vec![
            Required(&["subdomainPolicy"]),
            Description("How the groups' pods are named in DNS."),
        ]),
        ("spec.networkConfig.subdomainPolicy", vec![
            Enum(&["Shared", "UniquePerReplica"]),
            Description("Shared: one headless Service for every group; UniquePerReplica: one headless Service per group. The webhook defaults it to Shared."),
        ]),
        ("spec.leaderWorkerTemplate", vec![
            Required(&["workerTemplate"]),
            Description("What one group is made of: the leader's and the workers' pod templates, the group's size and its restart policy."),
        ]),
        ("spec.leaderWorkerTemplate.size", vec![
            Default(json!(DEFAULT_SIZE)),
            Description("Pods per group, the leader included. Defaults to 1."),
        ]),
        ("spec.leaderWorkerTemplate.restartPolicy", vec![
            Default(json!(RestartPolicy::RecreateGroupOnPodRestart.as_str())),
            Enum(&["Default", "RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None"]),
            Description("What a failing pod does to its group: RecreateGroupOnPodRestart recreates the whole group, RecreateGroupAfterStart does so once every pod of the group has started, None leaves the group alone (Default is a deprecated name for None). Defaults to RecreateGroupOnPodRestart."),
        ]),
        ("spec.leaderWorkerTemplate.maxGroupRestarts", vec![
            Minimum(0),
            Description("How many times a group may be recreated after failures before it is left stopped; unset means no limit."),
        ]),
        ("spec.leaderWorkerTemplate.subGroupPolicy", vec![
            Description("Splits every group into subgroups of subGroupSize pods."),
        ]),
        ("spec.leaderWorkerTemplate.subGroupPolicy.subGroupPolicyType", vec![
            Default(json!(SubGroupPolicyType::LeaderWorker.as_str())),
            Enum(&["LeaderWorker", "LeaderExcluded"]),
            Description("LeaderWorker: the leader belongs to subgroup 0; LeaderExcluded: the leader belongs to no subgroup. Defaults to LeaderWorker."),
        ]),
        ("spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize", vec![
            Description("Pods per subgroup; immutable. At most size, and size or size - 1 is a multiple of it."),
        ]),
        ("status", vec![Description("The observed state, written by the controller.")]),
        ("status.conditions", vec![MapList(&["type"])]),
    ]
}

/// JSON pointer of a dotted field path.
pub(super) fn pointer(path: &str) -> String {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| format!("/properties/{s}"))
        .collect()
}

/// Applies [`markers`] to the structural schema.
pub(super) fn apply(schema: &mut Value) -> Result<(), MarkerError> {
    // The API server owns `metadata` at the root: it must be exactly `type: object`.
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("metadata".into(), json!({"type": "object"}));
        if let Some(Value::Object(api_version)) = properties.get_mut("apiVersion") {
            let doc = format!("The object's API version, {API_VERSION}.");
            api_version.insert("description".into(), json!(doc));
        }
    }
    for (path, markers) in markers() {
        let node = schema
            .pointer_mut(&pointer(path))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| MarkerError::NoSuchField(path.to_string()))?;
        for marker in markers {
            apply_one(node, path, marker)?;
        }
    }
    Ok(())
}

pub(super) fn apply_one(
    node: &mut Map<String, Value>,
    path: &str,
    marker: Marker,
) -> Result<(), MarkerError> {
    let (keyword, value) = match marker {
        Marker::Default(value) => ("default", value),
        Marker::Minimum(n) => ("minimum", json!(n)),
        Marker::Maximum(n) => ("maximum", json!(n)),
        Marker::Required(fields) => ("required", json!(fields)),
        Marker::Description(text) => ("description", json!(text)),
        Marker::MapList(keys) => {
            node.insert("x-kubernetes-list-type".into(), json!("map"));
            ("x-kubernetes-list-map-keys", json!(keys))
        }
        Marker::Enum(values) => {
            let generated: Vec<String> = node
                .get("enum")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let mut sorted_marker: Vec<&str> = values.to_vec();
            let mut sorted_generated: Vec<&str> = generated.iter().map(String::as_str).collect();
            sorted_marker.sort_unstable();
            sorted_generated.sort_unstable();
            if sorted_marker != sorted_generated {
                return Err(MarkerError::EnumMismatch {
                    path: path.to_string(),
                    marker: values.iter().map(|v| v.to_string()).collect(),
                    generated,
                });
            }
            ("enum", json!(values))
        }
    };
    node.insert(keyword.into(), value);
    Ok(())
}
