//! Pod mutation, as the pod webhook does it on CREATE.
//!
//! Mirrors `Default`, `SetExclusiveAffinities`, `exclusiveAffinityApplied` and `getSubGroupIndex`
//! in `pkg/webhooks/pod_webhook.go`, and `AddLWSVariables` in `pkg/utils/pod/pod_utils.go`
//! (upstream-lws.md §3.4, §5.4, §5.5). The steps run in upstream's order: labels, subdomain,
//! group key, exclusive affinity, subgroup labels, gang annotation, TPU env, LWS env.
//!
//! One deliberate difference (docs/differences.md, upstream issue #539): the exclusive
//! anti-affinity term also requires the other pod to carry this pod's LeaderWorkerSet name, so
//! two LeaderWorkerSets with exclusive placement do not repel each other.

use crate::api::{SubGroupPolicyType, SubdomainPolicy};
use crate::keys::{group_key, subgroup_key};
use crate::labels::{
    annotation, EXCLUSIVE_KEY_ANNOTATION_KEY, GROUP_INDEX_LABEL_KEY, GROUP_UNIQUE_HASH_LABEL_KEY,
    LEADER_ADDRESS_ANNOTATION_KEY, LEADER_POD_NAME_ANNOTATION_KEY, LWS_GROUP_SIZE,
    LWS_LEADER_ADDRESS, LWS_WORKER_INDEX, POD_GROUP_NAME_ANNOTATION_KEY, REVISION_KEY,
    SET_NAME_LABEL_KEY, SIZE_ANNOTATION_KEY, SUBDOMAIN_POLICY_ANNOTATION_KEY,
    SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, SUB_GROUP_INDEX_LABEL_KEY,
    SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY, SUB_GROUP_SIZE_ANNOTATION_KEY,
    SUB_GROUP_UNIQUE_HASH_LABEL_KEY, WORKER_INDEX_LABEL_KEY,
};
use crate::tpu::{add_tpu_variables, pod_requests_tpus};
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::{BTreeMap, BTreeSet};

/// What the pod webhook knows besides the pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodContext {
    /// The pod's namespace, when the pod object itself lacks one (admission requests carry it).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Gang-scheduling provider (only `volcano` exists); adds the PodGroup annotation to pods
    /// Volcano schedules.
    #[serde(default)]
    pub scheduler_provider: Option<String>,
}

/// Why a pod could not be mutated; the webhook then refuses it with this message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PodMutationError {
    /// A label, annotation or name the rules need is missing or does not parse. The message is
    /// upstream's (e.g. "size annotation is unexpectedly missing for pod x-0").
    #[error("{0}")]
    Invalid(String),
}

/// Mutates an LWS pod in place; pods without the name label are left untouched.
///
/// The pod is expected as the StatefulSet controller creates it: labels and annotations from the
/// leader or worker StatefulSet template, `spec.subdomain` = the StatefulSet's serviceName.
pub fn mutate_pod(pod: &mut Pod, ctx: &PodContext) -> Result<(), PodMutationError> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let Some(lws_name) = labels.get(SET_NAME_LABEL_KEY).cloned() else {
        return Ok(());
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let Some(size) = annotations.get(SIZE_ANNOTATION_KEY) else {
        return Err(PodMutationError::Invalid(format!(
            "size annotation is unexpectedly missing for pod {name}"
        )));
    };
    let pod_count = atoi(size)?;

    if is_leader(pod) {
        label_leader(pod, ctx, &lws_name, &name, &annotations)?;
    } else {
        label_worker(pod, &lws_name, &name, pod_count, &annotations)?;
    }

    // Only pods Volcano schedules: their group is the one that gets a PodGroup
    // (`crate::reconcile::pod_group`).
    if ctx
        .scheduler_provider
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && scheduled_by_volcano(pod.spec.as_ref())
    {
        set_pod_group_annotation(pod, &lws_name);
    }
    if pod.spec.as_ref().is_some_and(pod_requests_tpus) {
        add_tpu_variables(pod, pod_count)?;
    }
    add_lws_variables(pod, ctx)
}

/// The `schedulerName` of pods Volcano schedules (Volcano's default scheduler name).
pub const VOLCANO_SCHEDULER_NAME: &str = "volcano";

/// True when Volcano schedules a pod of this spec (the PodGroup annotation and the group's
/// PodGroup depend on it).
pub fn scheduled_by_volcano(spec: Option<&PodSpec>) -> bool {
    spec.and_then(|s| s.scheduler_name.as_deref()) == Some(VOLCANO_SCHEDULER_NAME)
}

/// A pod is the leader when its worker-index label is `"0"` (upstream `LeaderPod`).
pub fn is_leader(pod: &Pod) -> bool {
    label(pod, WORKER_INDEX_LABEL_KEY) == Some("0")
}

/// Leader steps: group index, subdomain, group key, exclusive affinity, subgroup 0.
fn label_leader(
    pod: &mut Pod,
    ctx: &PodContext,
    lws_name: &str,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<(), PodMutationError> {
    if label(pod, GROUP_INDEX_LABEL_KEY).is_none() {
        let (_, group_index) = parent_name_and_ordinal(name);
        if group_index == -1 {
            return Err(ordinal_error(name));
        }
        set_label(pod, GROUP_INDEX_LABEL_KEY, group_index.to_string());
    }
    if annotations
        .get(SUBDOMAIN_POLICY_ANNOTATION_KEY)
        .map(String::as_str)
        == Some(SubdomainPolicy::UniquePerReplica.as_str())
    {
        pod.spec.get_or_insert_with(Default::default).subdomain = Some(name.to_string());
    }
    let key = match label(pod, GROUP_UNIQUE_HASH_LABEL_KEY) {
        Some(existing) => existing.to_string(),
        None => {
            let key = group_key(pod_namespace(pod, ctx), name);
            set_label(pod, GROUP_UNIQUE_HASH_LABEL_KEY, key.clone());
            key
        }
    };
    if let Some(topology) = annotations.get(EXCLUSIVE_KEY_ANNOTATION_KEY) {
        set_exclusive_affinities(pod, &key, topology, GROUP_UNIQUE_HASH_LABEL_KEY, lws_name);
    }
    let leader_excluded = annotations
        .get(SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY)
        .map(String::as_str)
        == Some(SubGroupPolicyType::LeaderExcluded.as_str());
    if annotations.contains_key(SUB_GROUP_SIZE_ANNOTATION_KEY)
        && label(pod, SUB_GROUP_INDEX_LABEL_KEY)
            .unwrap_or("")
            .is_empty()
        && !leader_excluded
    {
        // The leader always lands in subgroup 0.
        assign_subgroup(pod, lws_name, name, 0, annotations);
    }
    Ok(())
}

/// Worker steps: worker index from the name, then the subgroup. Workers never get the
/// group-level affinity (the pod controller pins them with a nodeSelector instead).
fn label_worker(
    pod: &mut Pod,
    lws_name: &str,
    name: &str,
    pod_count: i64,
    annotations: &BTreeMap<String, String>,
) -> Result<(), PodMutationError> {
    let (_, worker_index) = parent_name_and_ordinal(name);
    if worker_index == -1 {
        return Err(ordinal_error(name));
    }
    set_label(pod, WORKER_INDEX_LABEL_KEY, worker_index.to_string());
    let Some(subgroup_size) = annotations.get(SUB_GROUP_SIZE_ANNOTATION_KEY) else {
        return Ok(());
    };
    if !label(pod, SUB_GROUP_INDEX_LABEL_KEY)
        .unwrap_or("")
        .is_empty()
    {
        return Ok(());
    }
    let subgroup_size = atoi(subgroup_size)?;
    let leader_name = annotations
        .get(LEADER_POD_NAME_ANNOTATION_KEY)
        .map(String::as_str)
        .unwrap_or("");
    let index = sub_group_index(pod_count, subgroup_size, worker_index).ok_or_else(|| {
        PodMutationError::Invalid(format!(
            "subgroup size must be positive, got {subgroup_size} for pod {name}"
        ))
    })?;
    let index = i32::try_from(index).map_err(|_| {
        PodMutationError::Invalid(format!(
            "subgroup index {index} out of range for pod {name}"
        ))
    })?;
    assign_subgroup(pod, lws_name, leader_name, index, annotations);
    Ok(())
}

/// Puts the pod in subgroup `index` of the group led by `leader_name`: the subgroup index and
/// key labels, and the subgroup's exclusive affinity when the LWS asks for it.
fn assign_subgroup(
    pod: &mut Pod,
    lws_name: &str,
    leader_name: &str,
    index: i32,
    annotations: &BTreeMap<String, String>,
) {
    let key = subgroup_key(leader_name, index);
    set_label(pod, SUB_GROUP_INDEX_LABEL_KEY, index.to_string());
    set_label(pod, SUB_GROUP_UNIQUE_HASH_LABEL_KEY, key.clone());
    if let Some(topology) = annotations.get(SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY) {
        set_exclusive_affinities(
            pod,
            &key,
            topology,
            SUB_GROUP_UNIQUE_HASH_LABEL_KEY,
            lws_name,
        );
    }
}

/// The subgroup of worker `worker_index` in a group of `size` (upstream `getSubGroupIndex`).
///
/// When `size - 1` divides into subgroups but `size` does not, the leader is the extra pod of
/// subgroup 0 and workers count from 1; otherwise workers count from 0 alongside the leader.
/// With subgroup size 1 every pod is its own subgroup (upstream fix #918). `None` when
/// `subgroup_size` is not positive (validation forbids it; upstream would divide by zero).
pub fn sub_group_index(size: i64, subgroup_size: i64, worker_index: i64) -> Option<i64> {
    if subgroup_size <= 0 {
        return None;
    }
    if (size - 1) % subgroup_size == 0 && size % subgroup_size != 0 {
        Some((worker_index - 1) / subgroup_size)
    } else {
        Some(worker_index / subgroup_size)
    }
}

/// Appends the exclusive-placement terms (upstream `SetExclusiveAffinities`, §5.5): a required
/// pod affinity to pods with `label_key In [key]`, and a required anti-affinity to pods of the
/// same LeaderWorkerSet (`name In [lws_name]`, our fix for #539) whose `label_key` exists with
/// another value. A no-op when required terms with this topology key are already there.
pub fn set_exclusive_affinities(
    pod: &mut Pod,
    key: &str,
    topology_key: &str,
    label_key: &str,
    lws_name: &str,
) {
    if exclusive_affinity_applied(pod, topology_key) {
        return;
    }
    let requirement =
        |key_name: &str, operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
            key: key_name.to_string(),
            operator: operator.to_string(),
            values,
        };
    let term = |expressions| PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(expressions),
            match_labels: None,
        }),
        topology_key: topology_key.to_string(),
        ..Default::default()
    };
    let affinity_term = term(vec![requirement(
        label_key,
        "In",
        Some(vec![key.to_string()]),
    )]);
    let anti_affinity_term = term(vec![
        requirement(label_key, "Exists", None),
        requirement(label_key, "NotIn", Some(vec![key.to_string()])),
        requirement(SET_NAME_LABEL_KEY, "In", Some(vec![lws_name.to_string()])),
    ]);

    let affinity = pod
        .spec
        .get_or_insert_with(Default::default)
        .affinity
        .get_or_insert_with(Affinity::default);
    affinity
        .pod_affinity
        .get_or_insert_with(PodAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(affinity_term);
    affinity
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(anti_affinity_term);
}

/// True when the pod already has a required pod-affinity term and a required anti-affinity term
/// with `topology_key` (upstream `exclusiveAffinityApplied`).
pub fn exclusive_affinity_applied(pod: &Pod, topology_key: &str) -> bool {
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let has = |terms: Option<&Vec<PodAffinityTerm>>| {
        terms
            .into_iter()
            .flatten()
            .any(|t| t.topology_key == topology_key)
    };
    let (Some(pod_affinity), Some(anti_affinity)) =
        (&affinity.pod_affinity, &affinity.pod_anti_affinity)
    else {
        return false;
    };
    has(pod_affinity
        .required_during_scheduling_ignored_during_execution
        .as_ref())
        && has(anti_affinity
            .required_during_scheduling_ignored_during_execution
            .as_ref())
}

/// `scheduling.k8s.io/group-name = <lws>-<group-index>-<template-revision-hash>` (§6.1).
fn set_pod_group_annotation(pod: &mut Pod, lws_name: &str) {
    let group_index = label(pod, GROUP_INDEX_LABEL_KEY).unwrap_or("");
    let revision = label(pod, REVISION_KEY).unwrap_or("");
    let value = format!("{lws_name}-{group_index}-{revision}");
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_GROUP_NAME_ANNOTATION_KEY.to_string(), value);
}

/// Puts `LWS_LEADER_ADDRESS`, `LWS_GROUP_SIZE` and `LWS_WORKER_INDEX` first in every container
/// and init container (upstream `AddLWSVariables`). User entries with those names are dropped,
/// and so is any later user entry repeating an earlier name, as upstream's
/// `addEnvVarsIfNotExists` does.
pub fn add_lws_variables(pod: &mut Pod, ctx: &PodContext) -> Result<(), PodMutationError> {
    let object = pod_object_name(pod, ctx);
    let missing = |what: &str| {
        PodMutationError::Invalid(format!(
            "Failure constructing environment variables, no {what} found for pod {object}"
        ))
    };
    let lws_name = label(pod, SET_NAME_LABEL_KEY).ok_or_else(|| missing("name label"))?;
    let group_index =
        label(pod, GROUP_INDEX_LABEL_KEY).ok_or_else(|| missing("group index label"))?;
    let subdomain = pod
        .spec
        .as_ref()
        .and_then(|s| s.subdomain.as_deref())
        .unwrap_or("");
    // Worker StatefulSets since v0.11 carry the leader's name; older ones do not.
    let leader_address = match annotation(&pod.metadata, LEADER_ADDRESS_ANNOTATION_KEY) {
        Some(address) => address.to_string(),
        None => format!(
            "{lws_name}-{group_index}.{subdomain}.{}",
            pod_namespace(pod, ctx)
        ),
    };
    let size = annotation(&pod.metadata, SIZE_ANNOTATION_KEY)
        .ok_or_else(|| missing("size annotation"))?
        .to_string();
    let worker_index = label(pod, WORKER_INDEX_LABEL_KEY)
        .ok_or_else(|| missing("worker index label"))?
        .to_string();

    let front = [
        env_var(LWS_LEADER_ADDRESS, leader_address),
        env_var(LWS_GROUP_SIZE, size),
        env_var(LWS_WORKER_INDEX, worker_index),
    ];
    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    let init = spec.init_containers.iter_mut().flatten();
    for container in spec.containers.iter_mut().chain(init) {
        put_env_first(container, &front);
    }
    Ok(())
}

fn put_env_first(container: &mut Container, front: &[EnvVar]) {
    let mut seen: BTreeSet<String> = front.iter().map(|e| e.name.clone()).collect();
    let mut env = front.to_vec();
    for user in container.env.take().into_iter().flatten() {
        if seen.insert(user.name.clone()) {
            env.push(user);
        }
    }
    container.env = Some(env);
}

/// The parent StatefulSet name and ordinal of a pod name `<parent>-<n>`, as upstream's
/// `GetParentNameAndOrdinal` (regexp `(.*)-([0-9]+)$`): `("", -1)` without a trailing
/// `-<digits>`, `(parent, -1)` when the digits overflow an int32.
pub(crate) fn parent_name_and_ordinal(name: &str) -> (&str, i64) {
    let Some((parent, digits)) = name.rsplit_once('-') else {
        return ("", -1);
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return ("", -1);
    }
    match digits.parse::<i32>() {
        Ok(ordinal) => (parent, i64::from(ordinal)),
        Err(_) => (parent, -1),
    }
}

/// Go's `strconv.Atoi`, with its error text.
pub(crate) fn atoi(text: &str) -> Result<i64, PodMutationError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PodMutationError::Invalid(format!(
            "strconv.Atoi: parsing {text:?}: invalid syntax"
        )));
    }
    text.parse::<i64>().map_err(|_| {
        PodMutationError::Invalid(format!(
            "strconv.Atoi: parsing {text:?}: value out of range"
        ))
    })
}

fn ordinal_error(name: &str) -> PodMutationError {
    PodMutationError::Invalid(format!("parsing pod ordinal for pod {name}"))
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    crate::labels::label(&pod.metadata, key)
}

fn set_label(pod: &mut Pod, key: &str, value: String) {
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value);
}

/// The pod's namespace, else the admission request's, else "".
fn pod_namespace<'a>(pod: &'a Pod, ctx: &'a PodContext) -> &'a str {
    pod.metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .or(ctx.namespace.as_deref())
        .unwrap_or("")
}

/// `ns/name` (or `name`), as klog's `KObj` prints a pod in upstream's messages.
fn pod_object_name(pod: &Pod, ctx: &PodContext) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match pod_namespace(pod, ctx) {
        "" => name.to_string(),
        ns => format!("{ns}/{name}"),
    }
}

fn env_var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value),
        ..EnvVar::default()
    }
}

#[cfg(test)]
mod tests {
    //! Ported from upstream's `pkg/webhooks/pod_webhook_test.go` and
    //! `pkg/utils/pod/pod_utils_test.go`, plus the mutation order of §5.4.
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn map(kv: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn pod(
        name: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        subdomain: &str,
    ) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                labels: map(labels),
                annotations: map(annotations),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "test".to_string(),
                    image: Some("busybox".to_string()),
                    ..Default::default()
                }],
                subdomain: Some(subdomain.to_string()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn env(container: &Container) -> Vec<(String, String)> {
        container
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn group_unique_key_matches_upstream_vectors() {
        // TestGenGroupUniqueKey.
        assert_eq!(
            group_key("default", "test-sample"),
            "95e88034e460983f51a9952fe128729fbc0663b5"
        );
        assert_eq!(
            group_key("default", "podName"),
            "390b34ab671d29e9997d7d4252b8bbf8da02f5b7"
        );
        assert_eq!(
            group_key("leaderworkerset", "test-sample"),
            "39f5d7e9122b9d94d3932e3720b43fd3b56347e8"
        );
    }

    fn term(topology: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            topology_key: topology.to_string(),
            ..Default::default()
        }
    }

    fn with_affinity(
        affinity: Option<Vec<PodAffinityTerm>>,
        anti: Option<Vec<PodAffinityTerm>>,
    ) -> Pod {
        let mut p = pod(
            "x-0",
            &[],
            &[(EXCLUSIVE_KEY_ANNOTATION_KEY, "topologyKey")],
            "x",
        );
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: affinity.map(|t| PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(t),
                ..Default::default()
            }),
            pod_anti_affinity: anti.map(|t| PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(t),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    fn expressions(term: &PodAffinityTerm) -> Vec<(String, String, Vec<String>)> {
        term.label_selector
            .as_ref()
            .and_then(|s| s.match_expressions.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.key, r.operator, r.values.unwrap_or_default()))
            .collect()
    }

    fn required(pod: &Pod) -> (Vec<PodAffinityTerm>, Vec<PodAffinityTerm>) {
        let affinity = pod.spec.as_ref().unwrap().affinity.as_ref().unwrap();
        (
            affinity
                .pod_affinity
                .as_ref()
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .clone()
                })
                .unwrap_or_default(),
            affinity
                .pod_anti_affinity
                .as_ref()
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .clone()
                })
                .unwrap_or_default(),
        )
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn exclusive_affinities_on_a_bare_pod() {
        let mut p = pod(
            "x-0",
            &[],
            &[(EXCLUSIVE_KEY_ANNOTATION_KEY, "topologyKey")],
            "x",
        );
        set_exclusive_affinities(
            &mut p,
            "test-key",
            "topologyKey",
            GROUP_UNIQUE_HASH_LABEL_KEY,
            "lws",
        );
        let (affinity, anti) = required(&p);
        assert_eq!(affinity.len(), 1);
        assert_eq!(affinity[0].topology_key, "topologyKey");
        assert_eq!(
            expressions(&affinity[0]),
            vec![(s(GROUP_UNIQUE_HASH_LABEL_KEY), s("In"), vec![s("test-key")])]
        );
        assert_eq!(anti.len(), 1);
        assert_eq!(anti[0].topology_key, "topologyKey");
        assert_eq!(
            expressions(&anti[0]),
            vec![
                (s(GROUP_UNIQUE_HASH_LABEL_KEY), s("Exists"), vec![]),
                (
                    s(GROUP_UNIQUE_HASH_LABEL_KEY),
                    s("NotIn"),
                    vec![s("test-key")]
                ),
                // Issue #539: only pods of the same LeaderWorkerSet repel this group.
                (s(SET_NAME_LABEL_KEY), s("In"), vec![s("lws")]),
            ]
        );
        assert!(anti[0].namespaces.is_none() && anti[0].namespace_selector.is_none());
    }

    #[test]
    fn exclusive_affinities_append_to_user_terms() {
        let mut p = with_affinity(Some(vec![term("other")]), Some(vec![term("other")]));
        set_exclusive_affinities(
            &mut p,
            "test-key",
            "topologyKey",
            GROUP_UNIQUE_HASH_LABEL_KEY,
            "lws",
        );
        let (affinity, anti) = required(&p);
        assert_eq!(affinity.len(), 2);
        assert_eq!(anti.len(), 2);
        assert_eq!(affinity[0], term("other"));
        assert_eq!(anti[0], term("other"));
        assert_eq!(affinity[1].topology_key, "topologyKey");
        assert_eq!(anti[1].topology_key, "topologyKey");
    }

    #[test]
    fn exclusive_affinities_are_a_no_op_when_applied() {
        let mut p = with_affinity(
            Some(vec![term("topologyKey")]),
            Some(vec![term("topologyKey")]),
        );
        let before = p.clone();
        set_exclusive_affinities(
            &mut p,
            "test-key",
            "topologyKey",
            GROUP_UNIQUE_HASH_LABEL_KEY,
            "lws",
        );
        assert_eq!(p, before);
    }

    #[test]
    fn exclusive_affinity_applied_table() {
        // TestExclusiveAffinityApplied.
        let both = with_affinity(
            Some(vec![term("topologyKey")]),
            Some(vec![term("topologyKey")]),
        );
        let affinity_only = with_affinity(Some(vec![term("topologyKey")]), None);
        let anti_only = with_affinity(None, Some(vec![term("topologyKey")]));
        let mismatch = with_affinity(
            Some(vec![term("topologyKey1")]),
            Some(vec![term("topologyKey")]),
        );
        assert!(exclusive_affinity_applied(&both, "topologyKey"));
        assert!(!exclusive_affinity_applied(&affinity_only, "topologyKey"));
        assert!(!exclusive_affinity_applied(&anti_only, "topologyKey"));
        assert!(!exclusive_affinity_applied(&mismatch, "topologyKey"));
        assert!(!exclusive_affinity_applied(
            &pod("x-0", &[], &[], "x"),
            "topologyKey"
        ));
    }

    #[test]
    fn sub_group_index_tables() {
        // size 5, subgroup size 2: the leader is the extra pod of subgroup 0.
        let five: Vec<_> = (1..5).map(|w| sub_group_index(5, 2, w).unwrap()).collect();
        assert_eq!(five, vec![0, 0, 1, 1]);
        // size 4, subgroup size 2: leader and worker 1 form subgroup 0.
        let four: Vec<_> = (1..4).map(|w| sub_group_index(4, 2, w).unwrap()).collect();
        assert_eq!(four, vec![0, 1, 1]);
        // subgroup size 1: every pod is its own subgroup (#918).
        let ones: Vec<_> = (1..4).map(|w| sub_group_index(4, 1, w).unwrap()).collect();
        assert_eq!(ones, vec![1, 2, 3]);
        // Upstream's table: (4,2,2) -> 1, (5,2,2) -> 0.
        assert_eq!(sub_group_index(4, 2, 2), Some(1));
        assert_eq!(sub_group_index(5, 2, 2), Some(0));
        assert_eq!(sub_group_index(4, 0, 1), None);
    }

    fn lws_pod(name: &str, group: &str, worker: &str, namespace: &str, size: &str) -> Pod {
        let mut p = pod(
            name,
            &[
                (SET_NAME_LABEL_KEY, "test-sample"),
                (GROUP_INDEX_LABEL_KEY, group),
                (WORKER_INDEX_LABEL_KEY, worker),
            ],
            &[(SIZE_ANNOTATION_KEY, size)],
            "test-sample",
        );
        p.metadata.namespace = Some(namespace.to_string());
        p
    }

    #[test]
    fn lws_variables_table() {
        // TestAddLWSVariables: (group, worker, namespace, size) -> leader address.
        let cases = [
            (
                "0",
                "0",
                "default",
                "3",
                "test-sample-0.test-sample.default",
            ),
            (
                "0",
                "1",
                "default",
                "3",
                "test-sample-0.test-sample.default",
            ),
            (
                "1",
                "0",
                "default",
                "2",
                "test-sample-1.test-sample.default",
            ),
            (
                "1",
                "3",
                "default",
                "2",
                "test-sample-1.test-sample.default",
            ),
            ("1", "3", "lws", "2", "test-sample-1.test-sample.lws"),
        ];
        for (group, worker, ns, size, address) in cases {
            let mut p = lws_pod("test-sample-x", group, worker, ns, size);
            p.spec.as_mut().unwrap().init_containers = Some(vec![Container {
                name: "init".to_string(),
                ..Default::default()
            }]);
            add_lws_variables(&mut p, &PodContext::default()).unwrap();
            let spec = p.spec.as_ref().unwrap();
            for c in spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
            {
                assert_eq!(
                    env(c),
                    vec![
                        (s(LWS_LEADER_ADDRESS), s(address)),
                        (s(LWS_GROUP_SIZE), s(size)),
                        (s(LWS_WORKER_INDEX), s(worker)),
                    ]
                );
            }
        }
    }

    #[test]
    fn lws_variables_override_user_duplicates_and_keep_order() {
        let mut p = lws_pod("test-sample-0", "0", "0", "default", "3");
        p.spec.as_mut().unwrap().containers[0].env = Some(vec![
            env_var("A", s("1")),
            env_var(LWS_GROUP_SIZE, s("99")),
            env_var("B", s("2")),
            env_var("A", s("3")),
        ]);
        add_lws_variables(&mut p, &PodContext::default()).unwrap();
        assert_eq!(
            env(&p.spec.as_ref().unwrap().containers[0]),
            vec![
                (
                    s(LWS_LEADER_ADDRESS),
                    s("test-sample-0.test-sample.default")
                ),
                (s(LWS_GROUP_SIZE), s("3")),
                (s(LWS_WORKER_INDEX), s("0")),
                (s("A"), s("1")),
                (s("B"), s("2")),
            ]
        );
    }

    #[test]
    fn lws_variables_need_group_index() {
        let mut p = pod(
            "x-0",
            &[(SET_NAME_LABEL_KEY, "x")],
            &[(SIZE_ANNOTATION_KEY, "1")],
            "x",
        );
        let err = add_lws_variables(&mut p, &PodContext::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failure constructing environment variables, no group index label found for pod default/x-0"
        );
    }

    #[test]
    fn pods_without_the_name_label_are_untouched() {
        let mut p = pod("other-0", &[], &[], "x");
        let before = p.clone();
        mutate_pod(&mut p, &PodContext::default()).unwrap();
        assert_eq!(p, before);
    }

    #[test]
    fn missing_size_annotation_is_an_error() {
        let mut p = pod(
            "x-0",
            &[(SET_NAME_LABEL_KEY, "x"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[],
            "x",
        );
        let err = mutate_pod(&mut p, &PodContext::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "size annotation is unexpectedly missing for pod x-0"
        );
    }

    #[test]
    fn leader_without_ordinal_is_an_error() {
        let mut p = pod(
            "leader",
            &[(SET_NAME_LABEL_KEY, "x"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[(SIZE_ANNOTATION_KEY, "2")],
            "x",
        );
        let err = mutate_pod(&mut p, &PodContext::default()).unwrap_err();
        assert_eq!(err.to_string(), "parsing pod ordinal for pod leader");
    }

    #[test]
    fn leader_gets_group_labels_and_env() {
        let mut p = pod(
            "lws-2",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[(SIZE_ANNOTATION_KEY, "3")],
            "lws",
        );
        mutate_pod(&mut p, &PodContext::default()).unwrap();
        assert_eq!(label(&p, GROUP_INDEX_LABEL_KEY), Some("2"));
        assert_eq!(
            label(&p, GROUP_UNIQUE_HASH_LABEL_KEY),
            Some(group_key("default", "lws-2").as_str())
        );
        assert_eq!(
            env(&p.spec.as_ref().unwrap().containers[0])[0].1,
            "lws-2.lws.default"
        );
        assert!(p.spec.as_ref().unwrap().affinity.is_none());
    }

    #[test]
    fn unique_per_replica_leader_uses_its_name_as_subdomain() {
        let mut p = pod(
            "lws-1",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[
                (SIZE_ANNOTATION_KEY, "2"),
                (SUBDOMAIN_POLICY_ANNOTATION_KEY, "UniquePerReplica"),
            ],
            "lws",
        );
        mutate_pod(&mut p, &PodContext::default()).unwrap();
        assert_eq!(p.spec.as_ref().unwrap().subdomain.as_deref(), Some("lws-1"));
        assert_eq!(
            env(&p.spec.as_ref().unwrap().containers[0])[0].1,
            "lws-1.lws-1.default"
        );
    }

    #[test]
    fn existing_group_key_is_kept() {
        let mut p = pod(
            "lws-0",
            &[
                (SET_NAME_LABEL_KEY, "lws"),
                (WORKER_INDEX_LABEL_KEY, "0"),
                (GROUP_UNIQUE_HASH_LABEL_KEY, "given"),
            ],
            &[
                (SIZE_ANNOTATION_KEY, "1"),
                (EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
            ],
            "lws",
        );
        mutate_pod(&mut p, &PodContext::default()).unwrap();
        assert_eq!(label(&p, GROUP_UNIQUE_HASH_LABEL_KEY), Some("given"));
        let (affinity, _) = required(&p);
        assert_eq!(expressions(&affinity[0])[0].2, vec![s("given")]);
    }

    #[test]
    fn worker_gets_worker_index_and_no_group_affinity() {
        let mut p = pod(
            "lws-0-3",
            &[
                (SET_NAME_LABEL_KEY, "lws"),
                (GROUP_INDEX_LABEL_KEY, "0"),
                (GROUP_UNIQUE_HASH_LABEL_KEY, "k"),
            ],
            &[
                (SIZE_ANNOTATION_KEY, "4"),
                (EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
                (LEADER_POD_NAME_ANNOTATION_KEY, "lws-0"),
            ],
            "lws",
        );
        mutate_pod(&mut p, &PodContext::default()).unwrap();
        assert_eq!(label(&p, WORKER_INDEX_LABEL_KEY), Some("3"));
        assert!(p.spec.as_ref().unwrap().affinity.is_none());
        assert_eq!(
            env(&p.spec.as_ref().unwrap().containers[0]),
            vec![
                (s(LWS_LEADER_ADDRESS), s("lws-0.lws.default")),
                (s(LWS_GROUP_SIZE), s("4")),
                (s(LWS_WORKER_INDEX), s("3")),
            ]
        );
    }

    #[test]
    fn worker_without_ordinal_is_an_error() {
        let mut p = pod(
            "worker",
            &[(SET_NAME_LABEL_KEY, "lws")],
            &[(SIZE_ANNOTATION_KEY, "4")],
            "lws",
        );
        assert_eq!(
            mutate_pod(&mut p, &PodContext::default())
                .unwrap_err()
                .to_string(),
            "parsing pod ordinal for pod worker"
        );
    }

    #[test]
    fn subgroup_labels_and_subgroup_affinity() {
        let annotations = [
            (SIZE_ANNOTATION_KEY, "4"),
            (SUB_GROUP_SIZE_ANNOTATION_KEY, "2"),
            (SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY, "LeaderWorker"),
            (SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
            (LEADER_POD_NAME_ANNOTATION_KEY, "lws-0"),
        ];
        let mut leader = pod(
            "lws-0",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &annotations,
            "lws",
        );
        mutate_pod(&mut leader, &PodContext::default()).unwrap();
        assert_eq!(label(&leader, SUB_GROUP_INDEX_LABEL_KEY), Some("0"));
        assert_eq!(
            label(&leader, SUB_GROUP_UNIQUE_HASH_LABEL_KEY),
            Some(subgroup_key("lws-0", 0).as_str())
        );
        let (affinity, anti) = required(&leader);
        assert_eq!(
            expressions(&affinity[0])[0].0,
            SUB_GROUP_UNIQUE_HASH_LABEL_KEY
        );
        assert_eq!(
            expressions(&anti[0])[2],
            (s(SET_NAME_LABEL_KEY), s("In"), vec![s("lws")])
        );

        let mut worker = pod(
            "lws-0-3",
            &[
                (SET_NAME_LABEL_KEY, "lws"),
                (GROUP_INDEX_LABEL_KEY, "0"),
                (GROUP_UNIQUE_HASH_LABEL_KEY, "k"),
            ],
            &annotations,
            "lws",
        );
        mutate_pod(&mut worker, &PodContext::default()).unwrap();
        assert_eq!(label(&worker, SUB_GROUP_INDEX_LABEL_KEY), Some("1"));
        assert_eq!(
            label(&worker, SUB_GROUP_UNIQUE_HASH_LABEL_KEY),
            Some(subgroup_key("lws-0", 1).as_str())
        );
        assert_eq!(required(&worker).0[0].topology_key, "rack");
    }

    #[test]
    fn same_topology_key_injects_only_the_group_terms() {
        let mut leader = pod(
            "lws-0",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[
                (SIZE_ANNOTATION_KEY, "4"),
                (EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
                (SUB_GROUP_SIZE_ANNOTATION_KEY, "2"),
                (SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
            ],
            "lws",
        );
        mutate_pod(&mut leader, &PodContext::default()).unwrap();
        let (affinity, anti) = required(&leader);
        assert_eq!((affinity.len(), anti.len()), (1, 1));
        assert_eq!(expressions(&affinity[0])[0].0, GROUP_UNIQUE_HASH_LABEL_KEY);
    }

    #[test]
    fn leader_excluded_leader_has_no_subgroup() {
        let mut leader = pod(
            "lws-0",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[
                (SIZE_ANNOTATION_KEY, "5"),
                (SUB_GROUP_SIZE_ANNOTATION_KEY, "2"),
                (SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY, "LeaderExcluded"),
            ],
            "lws",
        );
        mutate_pod(&mut leader, &PodContext::default()).unwrap();
        assert_eq!(label(&leader, SUB_GROUP_INDEX_LABEL_KEY), None);
        assert_eq!(label(&leader, SUB_GROUP_UNIQUE_HASH_LABEL_KEY), None);
    }

    #[test]
    fn gang_annotation_only_with_a_scheduler_provider_on_pods_volcano_schedules() {
        let make = |scheduler: Option<&str>| {
            let mut pod = pod(
                "lws-1-2",
                &[
                    (SET_NAME_LABEL_KEY, "lws"),
                    (GROUP_INDEX_LABEL_KEY, "1"),
                    (REVISION_KEY, "abc"),
                ],
                &[(SIZE_ANNOTATION_KEY, "3")],
                "lws",
            );
            pod.spec.as_mut().unwrap().scheduler_name = scheduler.map(s);
            pod
        };
        let ctx = PodContext {
            scheduler_provider: Some(s("volcano")),
            ..Default::default()
        };
        let annotated = |mut pod: Pod, ctx: &PodContext| {
            mutate_pod(&mut pod, ctx).unwrap();
            pod.metadata
                .annotations
                .unwrap()
                .contains_key(POD_GROUP_NAME_ANNOTATION_KEY)
        };
        assert!(!annotated(make(Some("volcano")), &PodContext::default()));
        assert!(!annotated(make(None), &ctx), "the default scheduler");
        assert!(!annotated(make(Some("default-scheduler")), &ctx));
        let mut gang = make(Some("volcano"));
        mutate_pod(&mut gang, &ctx).unwrap();
        assert_eq!(
            gang.metadata
                .annotations
                .unwrap()
                .get(POD_GROUP_NAME_ANNOTATION_KEY)
                .map(String::as_str),
            Some("lws-1-abc")
        );
    }

    #[test]
    fn tpu_env_comes_after_lws_env() {
        use crate::labels::{TPU_RESOURCE_NAME, TPU_WORKER_HOSTNAMES};
        use k8s_openapi::api::core::v1::ResourceRequirements;
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let mut p = pod(
            "lws-0",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[(SIZE_ANNOTATION_KEY, "2")],
            "lws",
        );
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.env = Some(vec![env_var("USER", s("u"))]);
        c.resources = Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(s(TPU_RESOURCE_NAME), Quantity(s("4")))])),
            ..Default::default()
        });
        mutate_pod(&mut p, &PodContext::default()).unwrap();
        let names: Vec<String> = env(&p.spec.as_ref().unwrap().containers[0])
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            &names[..4],
            &[
                s(LWS_LEADER_ADDRESS),
                s(LWS_GROUP_SIZE),
                s(LWS_WORKER_INDEX),
                s("USER")
            ]
        );
        assert_eq!(names[4], TPU_WORKER_HOSTNAMES);
    }

    #[test]
    fn namespace_falls_back_to_the_admission_request() {
        let mut p = pod(
            "lws-0",
            &[(SET_NAME_LABEL_KEY, "lws"), (WORKER_INDEX_LABEL_KEY, "0")],
            &[(SIZE_ANNOTATION_KEY, "1")],
            "lws",
        );
        p.metadata.namespace = None;
        let ctx = PodContext {
            namespace: Some(s("team")),
            ..Default::default()
        };
        mutate_pod(&mut p, &ctx).unwrap();
        assert_eq!(
            label(&p, GROUP_UNIQUE_HASH_LABEL_KEY),
            Some(group_key("team", "lws-0").as_str())
        );
        assert_eq!(
            env(&p.spec.as_ref().unwrap().containers[0])[0].1,
            "lws-0.lws.team"
        );
    }

    #[test]
    fn parent_and_ordinal_parsing() {
        assert_eq!(parent_name_and_ordinal("lws-0-3"), ("lws-0", 3));
        assert_eq!(parent_name_and_ordinal("lws-12"), ("lws", 12));
        assert_eq!(parent_name_and_ordinal("lws"), ("", -1));
        assert_eq!(parent_name_and_ordinal("lws-"), ("", -1));
        assert_eq!(parent_name_and_ordinal("lws-a1"), ("", -1));
        assert_eq!(parent_name_and_ordinal("lws-99999999999"), ("lws", -1));
    }

    #[test]
    fn atoi_matches_go() {
        assert_eq!(atoi("12"), Ok(12));
        assert_eq!(atoi("-3"), Ok(-3));
        assert_eq!(atoi("+3"), Ok(3));
        assert_eq!(
            atoi("x").unwrap_err().to_string(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert!(atoi("").is_err());
    }
}
