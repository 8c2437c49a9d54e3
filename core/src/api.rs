//! The `leaderworkerset.x-k8s.io/v1` API types.
//!
//! Mirrors `api/leaderworkerset/v1/leaderworkerset_types.go` upstream: the same JSON names,
//! the same optional fields. Enum fields are typed; a value outside the enum is rejected when the
//! document is decoded (see [`crate::decode`]), with the field path, as the CRD schema would.
//! Empty strings in enum fields decode as "unset", because the webhook defaults them.

use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Deserializer, Serialize};

/// API group of the LeaderWorkerSet resource.
pub const GROUP: &str = "leaderworkerset.x-k8s.io";
/// The only served and stored version.
pub const VERSION: &str = "v1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "leaderworkerset.x-k8s.io/v1";
/// `kind` of the resource.
pub const KIND: &str = "LeaderWorkerSet";
/// Plural resource name.
pub const PLURAL: &str = "leaderworkersets";

/// A LeaderWorkerSet: `replicas` groups, each one leader and `size - 1` workers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerSet {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "object")]
    pub spec: LeaderWorkerSetSpec,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<LeaderWorkerSetStatus>,
}

impl LeaderWorkerSet {
    /// A LeaderWorkerSet that no longer exists while objects labelled with its name remain: what
    /// a host sends to `reconcile` for it (crate::reconcile::wire). It reads as one being deleted
    /// since `since`, with an empty spec, so only the rules that need no spec act: held pods of
    /// an exhausted group are released.
    pub fn gone(
        namespace: &str,
        name: &str,
        since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    ) -> Self {
        LeaderWorkerSet {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                deletion_timestamp: Some(since),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The object's name, or "" when the manifest has none (validation reports that).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    /// The object's namespace; a manifest without one lands in `default`, as with kubectl.
    pub fn namespace(&self) -> &str {
        match self.metadata.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => "default",
        }
    }

    /// The object's annotation `key`, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// `spec.replicas` after defaulting (1 when unset).
    pub fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }

    /// `spec.leaderWorkerTemplate.size` after defaulting (1 when unset).
    pub fn size(&self) -> i32 {
        self.spec.leader_worker_template.size.unwrap_or(1)
    }

    /// The subdomain policy after defaulting (`Shared` when unset).
    pub fn subdomain_policy(&self) -> SubdomainPolicy {
        self.spec
            .network_config
            .as_ref()
            .and_then(|n| n.subdomain_policy)
            .unwrap_or(SubdomainPolicy::Shared)
    }

    /// The pod termination policy after defaulting (`Default` when unset: objects stored before
    /// the field existed, or read without the CRD default).
    pub fn pod_termination_policy(&self) -> PodTerminationPolicy {
        self.spec
            .pod_termination_policy
            .unwrap_or(PodTerminationPolicy::Default)
    }
}

/// `spec` of a LeaderWorkerSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerSetSpec {
    /// Number of groups. CRD default 1, range 0..=1000000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, deserialize_with = "object")]
    pub leader_worker_template: LeaderWorkerTemplate,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollout_strategy: Option<RolloutStrategy>,
    /// CRD default `LeaderCreated`.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub startup_policy: Option<StartupPolicy>,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_config: Option<NetworkConfig>,
    /// v0.11: how groups are named (upstream-v0.11.md §A1). CRD default `Ordinal`; immutable.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_identity: Option<GroupIdentity>,
    /// v0.11: when a failed group's replacement may schedule (§A2). Webhook default
    /// `PostTermination`; mutable and outside the revision.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_replacement_policy: Option<GroupReplacementPolicy>,
    /// Upstream `main` after v0.11 (§A6.2): how a group's pods terminate. CRD and webhook
    /// default `Default`; mutable and outside the revision (see
    /// [`crate::reconcile::termination`]).
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub pod_termination_policy: Option<PodTerminationPolicy>,
    /// v0.11 workload-aware scheduling (§A4.2). Kept as written, field for field, until the
    /// native gang-scheduling work models it; validation refuses it meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::api::opaque_object")
    )]
    pub scheduling: Option<serde_json::Value>,
}

/// `spec.leaderWorkerTemplate`: what one group looks like.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerTemplate {
    /// When absent, the worker template is used for the leader too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_template: Option<PodTemplateSpec>,
    #[serde(default)]
    pub worker_template: PodTemplateSpec,
    /// Pods per group, leader included. CRD default 1; the webhook requires >= 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    /// CRD default `RecreateGroupOnPodRestart`; the deprecated `Default` is defaulted to `None`.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub sub_group_policy: Option<SubGroupPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_templates: Option<Vec<PersistentVolumeClaim>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy:
        Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
    /// Upstream `main` after v0.11 (§A6.1): group recreations allowed per group and revision.
    /// Outside the revision (see [`crate::revision::revision_patch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_group_restarts: Option<i32>,
}

/// `spec.rolloutStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Only `RollingUpdate` exists; the webhook fills it when empty.
    #[serde(
        default,
        rename = "type",
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub type_: Option<RolloutStrategyType>,
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub rolling_update_configuration: Option<RollingUpdateConfiguration>,
}

/// `spec.rolloutStrategy.rollingUpdateConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdateConfiguration {
    /// Groups with ordinal >= partition are updated. CRD default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Int or percent of replicas, rounded down. CRD default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Int or percent of replicas, rounded up. CRD default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
}

/// `spec.leaderWorkerTemplate.subGroupPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SubGroupPolicy {
    /// JSON name `subGroupPolicyType`; CRD default `LeaderWorker`.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub sub_group_policy_type: Option<SubGroupPolicyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_group_size: Option<i32>,
}

/// `spec.networkConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    /// Required inside networkConfig by the CRD; the webhook defaults it to `Shared`.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub subdomain_policy: Option<SubdomainPolicy>,
}

/// `status` of a LeaderWorkerSet, written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerSetStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub updated_replicas: i32,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_pod_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// `spec.startupPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum StartupPolicy {
    /// Create the worker StatefulSet as soon as the leader pod exists.
    LeaderCreated,
    /// Create the worker StatefulSet only once the leader pod is Ready.
    LeaderReady,
}

/// `spec.leaderWorkerTemplate.restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RestartPolicy {
    /// Recreate the whole group when any of its pods restarts.
    RecreateGroupOnPodRestart,
    /// As above, but only once every pod of the group has started.
    RecreateGroupAfterStart,
    /// Deprecated; the webhook rewrites it to `None`.
    Default,
    /// Leave the group alone; containers restart in place.
    None,
}

/// `spec.leaderWorkerTemplate.subGroupPolicy.subGroupPolicyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SubGroupPolicyType {
    /// The leader is a member of subgroup 0.
    LeaderWorker,
    /// The leader belongs to no subgroup.
    LeaderExcluded,
}

/// `spec.networkConfig.subdomainPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SubdomainPolicy {
    /// One headless Service `<lws>` for all groups.
    Shared,
    /// One headless Service `<lws>-<i>` per group.
    UniquePerReplica,
}

/// `spec.groupIdentity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum GroupIdentity {
    /// Groups are numbered `0..replicas` (a leader StatefulSet).
    Ordinal,
    /// Groups carry a random key (a leader Deployment).
    Hash,
}

/// `spec.groupReplacementPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum GroupReplacementPolicy {
    /// A replacement group waits until the failed group's pods are gone.
    PostTermination,
    /// A replacement group may schedule at once (Hash identity only).
    Immediate,
}

/// `spec.podTerminationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PodTerminationPolicy {
    /// Garbage collection removes a group's pods in its usual order.
    Default,
    /// A group's worker StatefulSet is deleted together with its leader.
    Parallel,
}

/// `spec.rolloutStrategy.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RolloutStrategyType {
    RollingUpdate,
}

macro_rules! enum_strings {
    ($($ty:ty => [$($variant:ident),+]),+ $(,)?) => {$(
        impl $ty {
            /// Every value the CRD schema accepts, in declaration order.
            pub const VALUES: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The value as written in manifests.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant)),+ }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

enum_strings! {
    StartupPolicy => [LeaderCreated, LeaderReady],
    RestartPolicy => [RecreateGroupOnPodRestart, RecreateGroupAfterStart, Default, None],
    SubGroupPolicyType => [LeaderWorker, LeaderExcluded],
    SubdomainPolicy => [Shared, UniquePerReplica],
    RolloutStrategyType => [RollingUpdate],
    GroupIdentity => [Ordinal, Hash],
    GroupReplacementPolicy => [PostTermination, Immediate],
    PodTerminationPolicy => [Default, Parallel],
}

/// Schema of a field kept as arbitrary JSON: an object whose content the API server keeps.
#[cfg(feature = "schema")]
pub(crate) fn opaque_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// One of our structs, from a JSON object only. serde's derive also takes a sequence for a
/// struct (its fields in order), which the CRD's schema refuses (`type: object`): `spec:
/// [669992]` would read as a million replicas.
fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(Object(std::marker::PhantomData))
}

/// As [`object`], for an optional field (`null` is absent).
fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Present<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            object(deserializer).map(Present)
        }
    }
    Ok(Option::<Present<T>>::deserialize(deserializer)?.map(|Present(value)| value))
}

/// Decodes an optional enum, treating `""` like an absent field: Go's zero value, which
/// the defaulting webhook then fills.
fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let raw: Option<String> = Option::deserialize(deserializer)?;
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some(value) => {
            T::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(value)).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_decode_from_objects_only() {
        // Straight from bytes (reconcile's inputs), not only through a Value.
        let error = serde_json::from_str::<LeaderWorkerSet>(r#"{"spec":[669992]}"#).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("invalid type: sequence, expected an object"));
        let lws: LeaderWorkerSet = serde_json::from_str(
            r#"{"spec":{"replicas":2,"rolloutStrategy":null,"leaderWorkerTemplate":{"size":3,
                "subGroupPolicy":{"subGroupSize":3}}},"status":{"replicas":1}}"#,
        )
        .unwrap();
        assert_eq!((lws.replicas(), lws.size()), (2, 3));
        assert_eq!(lws.spec.rollout_strategy, None);
        let sub_group = lws.spec.leader_worker_template.sub_group_policy.as_ref();
        assert_eq!(sub_group.and_then(|p| p.sub_group_size), Some(3));
        assert_eq!(lws.status.map(|s| s.replicas), Some(1));
    }

    #[test]
    fn empty_enum_strings_decode_as_unset() {
        let lws: LeaderWorkerSet = serde_json::from_str(
            r#"{"spec":{"startupPolicy":"","leaderWorkerTemplate":{"restartPolicy":""}}}"#,
        )
        .unwrap();
        assert_eq!(lws.spec.startup_policy, None);
        assert_eq!(lws.spec.leader_worker_template.restart_policy, None);
    }

    #[test]
    fn unknown_enum_value_is_an_error() {
        let err = serde_json::from_str::<LeaderWorkerSet>(r#"{"spec":{"startupPolicy":"Eager"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("Eager"), "{err}");
    }

    #[test]
    fn missing_namespace_means_default() {
        let lws = LeaderWorkerSet::default();
        assert_eq!(lws.namespace(), "default");
    }

    #[test]
    fn enum_values_round_trip() {
        for value in RestartPolicy::VALUES {
            let json = format!("\"{value}\"");
            let policy: RestartPolicy = serde_json::from_str(&json).unwrap();
            assert_eq!(policy.as_str(), *value);
        }
    }
}
