//! Expansion: every object the cluster would end up with for one LeaderWorkerSet.
//!
//! Composes [`crate::group`] and [`crate::pod`] the way the controllers, the StatefulSet
//! controller and the pod webhook would, for a LeaderWorkerSet at rest on its current revision.
//! The leader StatefulSet is the one the controller creates first
//! ([`crate::reconcile::first_leader_statefulset`]: the LWS partition applies, no surge). Left out is what only a live cluster knows: node names, UIDs, times,
//! status, the `controller-revision-hash` pod label, and the workers' exclusive-placement
//! nodeSelector (it is the leader's node's topology value).

use crate::api::{LeaderWorkerSet, SubdomainPolicy};
use crate::group::{build_replica_service, build_shared_service, build_worker_statefulset};
use crate::labels::{POD_INDEX_LABEL_KEY, STATEFULSET_POD_NAME_LABEL_KEY};
use crate::pod::{mutate_pod, PodContext, PodMutationError};
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
    let leader_sts = crate::reconcile::first_leader_statefulset(lws);
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

#[cfg(test)]
mod tests {
    use super::fixtures::{defaulted, sample};
    use super::*;
    use crate::keys::{group_key, subgroup_key};
    use crate::labels::{
        EXCLUSIVE_KEY_ANNOTATION_KEY, GROUP_INDEX_LABEL_KEY, GROUP_UNIQUE_HASH_LABEL_KEY,
        LWS_LEADER_ADDRESS, POD_TERMINATION_POLICY_ANNOTATION_KEY, REVISION_KEY,
        SUB_GROUP_INDEX_LABEL_KEY, SUB_GROUP_UNIQUE_HASH_LABEL_KEY, WORKER_INDEX_LABEL_KEY,
    };

    fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
        objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn name(object: &Value) -> &str {
        object["metadata"]["name"].as_str().unwrap_or("")
    }

    fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
        object["metadata"]["labels"][key].as_str()
    }

    fn env<'a>(pod: &'a Value, var: &str) -> Option<&'a str> {
        pod["spec"]["containers"][0]["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == var)?["value"]
            .as_str()
    }

    #[test]
    fn seed_sample_gives_the_seed_pod_listing() {
        let objects = expand(&sample());
        let pods: Vec<&str> = of_kind(&objects, "Pod").into_iter().map(name).collect();
        assert_eq!(
            pods,
            [
                "leaderworkerset-sample-0",
                "leaderworkerset-sample-0-1",
                "leaderworkerset-sample-0-2",
                "leaderworkerset-sample-0-3",
                "leaderworkerset-sample-1",
                "leaderworkerset-sample-1-1",
                "leaderworkerset-sample-1-2",
                "leaderworkerset-sample-1-3",
                "leaderworkerset-sample-2",
                "leaderworkerset-sample-2-1",
                "leaderworkerset-sample-2-2",
                "leaderworkerset-sample-2-3",
            ]
        );
        let order: Vec<(&str, &str)> = objects
            .iter()
            .take(5)
            .map(|o| (o["kind"].as_str().unwrap(), name(o)))
            .collect();
        assert_eq!(
            order,
            [
                ("StatefulSet", "leaderworkerset-sample"),
                ("Service", "leaderworkerset-sample"),
                ("StatefulSet", "leaderworkerset-sample-0"),
                ("StatefulSet", "leaderworkerset-sample-1"),
                ("StatefulSet", "leaderworkerset-sample-2"),
            ]
        );
        assert_eq!(objects.len(), 5 + 12);
        for object in &objects {
            assert!(object["apiVersion"].is_string() && object["kind"].is_string());
            assert!(object.get("status").is_none());
            assert!(object["metadata"].get("uid").is_none());
            for owner in object["metadata"]["ownerReferences"].as_array().unwrap() {
                assert!(owner.get("uid").is_none(), "{owner}");
            }
        }
    }

    #[test]
    fn pods_carry_what_the_statefulset_controller_and_webhook_add() {
        let lws = sample();
        let key = crate::revision::revision_key(&lws);
        let objects = expand(&lws);
        let pods = of_kind(&objects, "Pod");
        for pod in pods
            .iter()
            .filter(|p| label(p, GROUP_INDEX_LABEL_KEY) == Some("1"))
        {
            assert_eq!(
                env(pod, LWS_LEADER_ADDRESS),
                Some("leaderworkerset-sample-1.leaderworkerset-sample.default")
            );
            assert_eq!(
                label(pod, GROUP_UNIQUE_HASH_LABEL_KEY),
                Some(group_key("default", "leaderworkerset-sample-1").as_str())
            );
            assert_eq!(label(pod, REVISION_KEY), Some(key.as_str()));
            assert_eq!(pod["spec"]["hostname"], pod["metadata"]["name"]);
            assert_eq!(pod["spec"]["subdomain"], "leaderworkerset-sample");
        }
        let worker = pods
            .iter()
            .find(|p| name(p) == "leaderworkerset-sample-1-2")
            .unwrap();
        assert_eq!(label(worker, WORKER_INDEX_LABEL_KEY), Some("2"));
        assert_eq!(
            label(worker, STATEFULSET_POD_NAME_LABEL_KEY),
            Some("leaderworkerset-sample-1-2")
        );
        assert_eq!(label(worker, POD_INDEX_LABEL_KEY), Some("2"));
        assert_eq!(label(worker, "controller-revision-hash"), None);
        assert_eq!(worker["metadata"]["namespace"], "default");
        let owner = &worker["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "StatefulSet");
        assert_eq!(owner["name"], "leaderworkerset-sample-1");
        assert_eq!(owner["controller"], true);
        assert_eq!(worker["spec"]["nodeName"], Value::Null);
    }

    #[test]
    fn unique_per_replica_gives_a_service_and_subdomain_per_group() {
        let objects = expand(&defaulted(include_str!(
            "../../examples/lws-unique-per-replica.yaml"
        )));
        let services: Vec<&str> = of_kind(&objects, "Service").into_iter().map(name).collect();
        assert_eq!(
            services,
            ["leaderworkerset-unique-0", "leaderworkerset-unique-1"]
        );
        for pod in of_kind(&objects, "Pod") {
            let group = label(pod, GROUP_INDEX_LABEL_KEY).unwrap();
            let subdomain = format!("leaderworkerset-unique-{group}");
            assert_eq!(pod["spec"]["subdomain"], subdomain.as_str());
            assert_eq!(
                env(pod, LWS_LEADER_ADDRESS),
                Some(format!("leaderworkerset-unique-{group}.{subdomain}.default").as_str())
            );
        }
    }

    #[test]
    fn subgroup_example_labels() {
        let objects = expand(&defaulted(include_str!("../../examples/lws-subgroup.yaml")));
        let pods = of_kind(&objects, "Pod");
        let subgroups: Vec<(&str, Option<&str>)> = pods
            .iter()
            .filter(|p| label(p, GROUP_INDEX_LABEL_KEY) == Some("0"))
            .map(|p| (name(p), label(p, SUB_GROUP_INDEX_LABEL_KEY)))
            .collect();
        // size 4, subgroup size 2: {leader, worker 1} and {worker 2, worker 3}.
        assert_eq!(
            subgroups,
            [
                ("leaderworkerset-subgroup-0", Some("0")),
                ("leaderworkerset-subgroup-0-1", Some("0")),
                ("leaderworkerset-subgroup-0-2", Some("1")),
                ("leaderworkerset-subgroup-0-3", Some("1")),
            ]
        );
        let worker = pods
            .iter()
            .find(|p| name(p) == "leaderworkerset-subgroup-0-3")
            .unwrap();
        assert_eq!(
            label(worker, SUB_GROUP_UNIQUE_HASH_LABEL_KEY),
            Some(subgroup_key("leaderworkerset-subgroup-0", 1).as_str())
        );
        // Subgroup-exclusive placement reaches leaders and workers.
        for pod in &pods {
            let terms = &pod["spec"]["affinity"]["podAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"];
            assert_eq!(terms[0]["topologyKey"], "rack", "{}", name(pod));
        }
    }

    #[test]
    fn exclusive_example_puts_affinity_on_leaders_only() {
        let lws = defaulted(include_str!("../../examples/lws-exclusive-placement.yaml"));
        assert!(lws.annotation(EXCLUSIVE_KEY_ANNOTATION_KEY).is_some());
        let objects = expand(&lws);
        for pod in of_kind(&objects, "Pod") {
            let affinity = &pod["spec"]["affinity"];
            if label(pod, WORKER_INDEX_LABEL_KEY) == Some("0") {
                let key = label(pod, GROUP_UNIQUE_HASH_LABEL_KEY).unwrap();
                let term =
                    &affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
                assert_eq!(term["topologyKey"], "rack");
                assert_eq!(
                    term["labelSelector"]["matchExpressions"][0]["values"][0],
                    key
                );
                let anti = &affinity["podAntiAffinity"]
                    ["requiredDuringSchedulingIgnoredDuringExecution"][0];
                assert_eq!(
                    anti["labelSelector"]["matchExpressions"][2]["values"][0],
                    "leaderworkerset-exclusive"
                );
            } else {
                assert!(affinity.is_null(), "{}", name(pod));
                assert!(pod["spec"]["nodeSelector"].is_null());
            }
        }
    }

    #[test]
    fn parallel_termination_example_annotates_the_leaders_only() {
        let lws = defaulted(include_str!(
            "../../examples/lws-pod-termination-policy.yaml"
        ));
        let objects = expand(&lws);
        let policy = |object: &Value, at: &str| {
            object
                .pointer(at)
                .and_then(|a| a.get(POD_TERMINATION_POLICY_ANNOTATION_KEY))
                .cloned()
        };
        let leader_sts = &of_kind(&objects, "StatefulSet")[0];
        assert_eq!(name(leader_sts), "leaderworkerset-parallel-termination");
        assert_eq!(
            policy(leader_sts, "/spec/template/metadata/annotations"),
            Some(Value::from("Parallel"))
        );
        for pod in of_kind(&objects, "Pod") {
            let want = (label(pod, WORKER_INDEX_LABEL_KEY) == Some("0")).then(|| "Parallel".into());
            assert_eq!(policy(pod, "/metadata/annotations"), want, "{}", name(pod));
        }
        // The seed sample (Default) carries no annotation at all.
        for object in expand(&sample()) {
            assert_eq!(policy(&object, "/spec/template/metadata/annotations"), None);
            assert_eq!(policy(&object, "/metadata/annotations"), None);
        }
    }

    #[test]
    fn size_one_has_no_worker_statefulsets() {
        let mut lws = sample();
        lws.spec.leader_worker_template.size = Some(1);
        let objects = expand(&lws);
        let sets: Vec<&str> = of_kind(&objects, "StatefulSet")
            .into_iter()
            .map(name)
            .collect();
        assert_eq!(sets, ["leaderworkerset-sample"]);
        assert_eq!(of_kind(&objects, "Pod").len(), 3);
    }

    #[test]
    fn claim_volumes_are_per_pod() {
        let objects = expand(&defaulted(include_str!(
            "../../examples/lws-volume-claim-templates.yaml"
        )));
        let pod = objects
            .iter()
            .find(|o| name(o) == "leaderworkerset-vct-1-1")
            .unwrap();
        assert_eq!(
            pod["spec"]["volumes"],
            serde_json::json!([{
                "name": "persistent-storage",
                "persistentVolumeClaim": {"claimName": "persistent-storage-leaderworkerset-vct-1-1"}
            }])
        );
    }

    #[test]
    fn expansion_is_deterministic() {
        let lws = sample();
        let first = serde_json::to_vec(&expand(&lws)).unwrap();
        let second = serde_json::to_vec(&expand(&lws.clone())).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn refused_pods_are_left_out_or_reported() {
        use crate::labels::TPU_RESOURCE_NAME;
        // A LeaderExcluded leader that requests TPUs has no subgroup index: upstream's webhook
        // refuses it, so its group never exists.
        let mut lws = defaulted(include_str!("../../examples/lws-subgroup.yaml"));
        lws.spec.leader_worker_template.size = Some(5);
        lws.spec
            .leader_worker_template
            .sub_group_policy
            .as_mut()
            .unwrap()
            .sub_group_policy_type = Some(crate::api::SubGroupPolicyType::LeaderExcluded);
        let container = &mut lws
            .spec
            .leader_worker_template
            .worker_template
            .spec
            .as_mut()
            .unwrap()
            .containers[0];
        container
            .resources
            .get_or_insert_with(Default::default)
            .limits = Some(
            [(
                TPU_RESOURCE_NAME.to_string(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("4".into()),
            )]
            .into_iter()
            .collect(),
        );
        assert_eq!(of_kind(&expand(&lws), "Pod").len(), 0);
        let error = try_expand(&lws).unwrap_err();
        assert_eq!(error.pod, "leaderworkerset-subgroup-0");
        assert!(try_expand(&sample()).is_ok());
    }
}
