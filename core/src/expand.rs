//! Expansion: every object the cluster would end up with for one LeaderWorkerSet.
//!
//! Composes [`crate::group`] and [`crate::pod`] the way the controllers, the StatefulSet
//! controller and the pod webhook would, for a LeaderWorkerSet at rest on its current revision
//! (partition 0, no surge). Left out is what only a live cluster knows: node names, UIDs, times,
//! status, the `controller-revision-hash` pod label, and the workers' exclusive-placement
//! nodeSelector (it is the leader's node's topology value).

use crate::api::{LeaderWorkerSet, SubdomainPolicy};
use crate::group::{
    build_leader_statefulset, build_replica_service, build_shared_service, build_worker_statefulset,
};
use crate::labels::{POD_INDEX_LABEL_KEY, STATEFULSET_POD_NAME_LABEL_KEY};
use crate::pod::{mutate_pod, PodContext, PodMutationError};
use crate::revision::revision_key;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;
use std::collections::BTreeSet;

/// A pod the pod webhook would refuse, so the cluster would never have it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod}: {source}")]
pub struct ExpandError {
    /// The refused pod's name.
    pub pod: String,
    /// The webhook's reason.
    #[source]
    pub source: PodMutationError,
}

/// The objects of a (defaulted, valid) LeaderWorkerSet in `kubectl get` order: the leader
/// StatefulSet, the Services, one worker StatefulSet per group, then every pod, leader first,
/// group by group (`x-0`, `x-0-1`, ..., `x-1`, ...). Each item carries `apiVersion` and `kind`.
///
/// A pod the pod webhook would refuse (see [`try_expand`]) is left out, as it never exists.
pub fn expand(lws: &LeaderWorkerSet) -> Vec<Value> {
    let (objects, _) = expand_all(lws);
    objects
}

/// As [`expand`], but fails on the first pod the pod webhook would refuse (for example a
/// `LeaderExcluded` leader that requests TPUs, which upstream's webhook rejects).
pub fn try_expand(lws: &LeaderWorkerSet) -> Result<Vec<Value>, ExpandError> {
    match expand_all(lws) {
        (objects, None) => Ok(objects),
        (_, Some(error)) => Err(error),
    }
}

fn expand_all(lws: &LeaderWorkerSet) -> (Vec<Value>, Option<ExpandError>) {
    let ctx = PodContext {
        namespace: Some(lws.namespace().to_string()),
        scheduler_provider: None,
    };
    let mut first_error = None;
    let mut admit = |pod: Pod| match admitted(pod, &ctx) {
        Ok(pod) => Some(pod),
        Err(error) => {
            first_error.get_or_insert(error);
            None
        }
    };

    let replicas = lws.replicas().max(0);
    let leader_sts = build_leader_statefulset(lws, &revision_key(lws), 0, replicas);
    let mut services = Vec::new();
    let mut worker_sets = Vec::new();
    let mut pods = Vec::new();
    if lws.subdomain_policy() == SubdomainPolicy::Shared {
        services.push(to_json(&build_shared_service(lws)));
    }
    for group in 0..replicas {
        let Some(leader) = admit(stamp_pod(&leader_sts, group)) else {
            continue;
        };
        if lws.subdomain_policy() == SubdomainPolicy::UniquePerReplica {
            services.push(to_json(&build_replica_service(lws, &leader)));
        }
        let worker_sts = build_worker_statefulset(lws, &leader);
        pods.push(to_json(&leader));
        let Some(worker_sts) = worker_sts else {
            continue;
        };
        for worker in 1..lws.size() {
            if let Some(pod) = admit(stamp_pod(&worker_sts, worker)) {
                pods.push(to_json(&pod));
            }
        }
        worker_sets.push(to_json(&worker_sts));
    }

    let mut objects = vec![to_json(&leader_sts)];
    objects.extend(services);
    objects.extend(worker_sets);
    objects.extend(pods);
    (objects, first_error)
}

fn admitted(mut pod: Pod, ctx: &PodContext) -> Result<Pod, ExpandError> {
    match mutate_pod(&mut pod, ctx) {
        Ok(()) => Ok(pod),
        Err(source) => Err(ExpandError {
            pod: pod.metadata.name.unwrap_or_default(),
            source,
        }),
    }
}

/// Pod `ordinal` of `sts` as the StatefulSet controller creates it (`newStatefulSetPod`): the
/// template's metadata and spec, the pod-name and pod-index labels, a controller reference to the
/// StatefulSet, hostname and subdomain, and one volume per claim template.
fn stamp_pod(sts: &StatefulSet, ordinal: i32) -> Pod {
    let sts_name = sts.metadata.name.clone().unwrap_or_default();
    let name = format!("{sts_name}-{ordinal}");
    let spec = sts.spec.clone().unwrap_or_default();
    let template = spec.template;
    let template_metadata = template.metadata.unwrap_or_default();

    let mut labels = template_metadata.labels.unwrap_or_default();
    labels.insert(STATEFULSET_POD_NAME_LABEL_KEY.to_string(), name.clone());
    labels.insert(POD_INDEX_LABEL_KEY.to_string(), ordinal.to_string());

    let mut pod_spec = template.spec.unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    pod_spec.subdomain = spec.service_name;
    let claims = spec.volume_claim_templates.unwrap_or_default();
    if !claims.is_empty() {
        // The StatefulSet controller puts claim volumes first and drops template volumes of the
        // same name. It walks a Go map, so its order is random; ours follows the claim list.
        let claim_names: BTreeSet<String> = claims
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        let mut volumes: Vec<Volume> = claims
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .map(|claim| Volume {
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: format!("{claim}-{name}"),
                    read_only: None,
                }),
                name: claim,
                ..Volume::default()
            })
            .collect();
        volumes.extend(
            pod_spec
                .volumes
                .take()
                .into_iter()
                .flatten()
                .filter(|v| !claim_names.contains(&v.name)),
        );
        pod_spec.volumes = Some(volumes);
    }

    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: sts.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_metadata.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: "StatefulSet".to_string(),
                name: sts_name,
                uid: String::new(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// Serializes an object (k8s-openapi adds `apiVersion` and `kind`) and drops owner-reference
/// uids that are not known yet, which the API server would otherwise reject as empty.
pub fn to_json<T: serde::Serialize>(object: &T) -> Value {
    // k8s-openapi objects always serialize to JSON; failure would be a bug in its derives.
    let mut value = serde_json::to_value(object).expect("Kubernetes objects serialize to JSON");
    if let Some(Value::Array(owners)) = value
        .get_mut("metadata")
        .and_then(|m| m.get_mut("ownerReferences"))
    {
        for owner in owners.iter_mut().filter_map(Value::as_object_mut) {
            if owner.get("uid").and_then(Value::as_str) == Some("") {
                owner.remove("uid");
            }
        }
    }
    value
}

/// Test fixtures: the example manifests, decoded and defaulted as the API server would.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::api::LeaderWorkerSet;

    /// Decodes a YAML manifest and applies every default.
    pub(crate) fn defaulted(yaml: &str) -> LeaderWorkerSet {
        let value: serde_json::Value = serde_norway::from_str(yaml).expect("example YAML parses");
        let mut lws = crate::decode::decode_lws_value(value).expect("example decodes");
        crate::defaults::apply_defaults(&mut lws);
        lws
    }

    /// The seed's sample: 3 groups of 4.
    pub(crate) fn sample() -> LeaderWorkerSet {
        defaulted(include_str!("../../examples/lws.yaml"))
    }
}
