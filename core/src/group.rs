//! The objects one LeaderWorkerSet owns: leader StatefulSet, worker StatefulSets, Services.
//!
//! Mirrors `constructLeaderStatefulSetApplyConfiguration` in
//! `pkg/controllers/leaderworkerset_controller.go`, `constructWorkerStatefulSetApplyConfiguration`
//! in `pkg/controllers/pod_controller.go`, `GetPVCApplyConfiguration` and
//! `CreateHeadlessServiceIfNotExists` in `pkg/utils/controller` (upstream-lws.md §4.4, §4.6, §4.9).
//!
//! Every builder returns the full desired object, ready for server-side apply (or, for the worker
//! StatefulSet and the Services, which upstream only ever creates, for a create). Owner references
//! carry the owner's uid when the input knows it and `""` otherwise (a preview of a manifest has no
//! uid); serialize with [`crate::expand`]'s helpers to drop an unknown uid.

use crate::api::{LeaderWorkerSet, PodTerminationPolicy, SubdomainPolicy, API_VERSION, KIND};
use crate::labels::{
    EXCLUSIVE_KEY_ANNOTATION_KEY, GROUP_INDEX_LABEL_KEY, GROUP_UNIQUE_HASH_LABEL_KEY,
    LEADER_ADDRESS_ANNOTATION_KEY, LEADER_POD_NAME_ANNOTATION_KEY,
    LEADER_REQUESTS_TPUS_ANNOTATION_KEY, POD_TERMINATION_POLICY_ANNOTATION_KEY,
    REPLICAS_ANNOTATION_KEY, REVISION_KEY, ROLE_LABEL_KEY, ROLE_LEADER, ROLE_WORKER,
    SET_NAME_LABEL_KEY, SIZE_ANNOTATION_KEY, SUBDOMAIN_POLICY_ANNOTATION_KEY,
    SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY,
    SUB_GROUP_SIZE_ANNOTATION_KEY, WORKER_INDEX_LABEL_KEY,
};
use crate::reconcile::rollout::RolloutBudget;
use crate::tpu::pod_requests_tpus;
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetOrdinals, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, Service, ServiceSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// `podManagementPolicy` of both StatefulSets: all pods start at once.
const PARALLEL: &str = "Parallel";
/// `updateStrategy.type` when the LeaderWorkerSet's rollout type is unset (it is defaulted).
const ROLLING_UPDATE: &str = "RollingUpdate";
/// `spec.clusterIP` of a headless Service.
const CLUSTER_IP_NONE: &str = "None";

/// The leader StatefulSet `<lws>` at revision `revision_key`, with the rollout's partition and replicas.
///
/// The template is the live leader template (or the worker template when there is none), never a
/// stored revision: the StatefulSet controller itself replaces leader pods at or above the
/// partition, which is what rolls each group.
pub fn build_leader_statefulset(
    lws: &LeaderWorkerSet,
    revision_key: &str,
    partition: i32,
    replicas: i32,
) -> StatefulSet {
    let name = lws.name().to_string();
    let lwt = &lws.spec.leader_worker_template;
    let mut template = lwt
        .leader_template
        .clone()
        .unwrap_or_else(|| lwt.worker_template.clone());

    merge(
        &mut template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels,
        [
            (WORKER_INDEX_LABEL_KEY, "0".to_string()),
            (SET_NAME_LABEL_KEY, name.clone()),
            (REVISION_KEY, revision_key.to_string()),
        ],
    );
    let mut pod_annotations = group_pod_annotations(lws);
    if lws.subdomain_policy() == SubdomainPolicy::UniquePerReplica {
        pod_annotations.insert(
            SUBDOMAIN_POLICY_ANNOTATION_KEY.to_string(),
            SubdomainPolicy::UniquePerReplica.as_str().to_string(),
        );
    }
    // `Parallel` only (upstream stamps `Default` too): a new annotation on every leader template
    // would make the StatefulSet controller replace every leader pod, i.e. restart every group,
    // when this controller is upgraded (docs/differences.md, "podTerminationPolicy").
    if lws.pod_termination_policy() == PodTerminationPolicy::Parallel {
        pod_annotations.insert(
            POD_TERMINATION_POLICY_ANNOTATION_KEY.to_string(),
            PodTerminationPolicy::Parallel.as_str().to_string(),
        );
    }
    merge(
        &mut template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .annotations,
        pod_annotations,
    );

    let mut labels = lws.metadata.labels.clone();
    merge(
        &mut labels,
        [
            (SET_NAME_LABEL_KEY, name.clone()),
            (REVISION_KEY, revision_key.to_string()),
            (ROLE_LABEL_KEY, ROLE_LEADER.to_string()),
        ],
    );
    let mut annotations = lws.metadata.annotations.clone();
    merge(
        &mut annotations,
        [(REPLICAS_ANNOTATION_KEY, lws.replicas().to_string())],
    );

    let rollout_type = lws
        .spec
        .rollout_strategy
        .as_ref()
        .and_then(|r| r.type_)
        .map_or(ROLLING_UPDATE, |t| t.as_str());
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(lws.namespace().to_string()),
            labels,
            annotations,
            owner_references: Some(vec![lws_owner_reference(lws)]),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            service_name: Some(name.clone()),
            replicas: Some(replicas),
            pod_management_policy: Some(PARALLEL.to_string()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some(rollout_type.to_string()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(partition),
                    max_unavailable: Some(IntOrString::Int(leader_max_unavailable(lws))),
                }),
            }),
            selector: match_labels([
                (SET_NAME_LABEL_KEY, name),
                (WORKER_INDEX_LABEL_KEY, "0".to_string()),
            ]),
            template,
            volume_claim_templates: claim_templates(lws),
            persistent_volume_claim_retention_policy: lwt
                .persistent_volume_claim_retention_policy
                .clone(),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// `updateStrategy.rollingUpdate.maxUnavailable` of the leader StatefulSet: the LWS's
/// maxUnavailable (rounded down) plus its maxSurge (rounded up, capped at replicas), at least 1,
/// so surge groups can be replaced alongside the unavailable budget.
pub fn leader_max_unavailable(lws: &LeaderWorkerSet) -> i32 {
    let budget = RolloutBudget::of(lws);
    budget
        .max_unavailable
        .saturating_add(budget.max_surge)
        .max(1)
}

/// The worker StatefulSet of the group led by `leader_pod`; `lws` is the LWS as of the leader
/// pod's revision (see [`crate::revision::apply_revision`]). `None` when the group has no workers
/// (size 1).
///
/// Group index, group key and revision come from the leader pod's labels. The exclusive-placement
/// nodeSelector needs the leader's node and is added by [`pin_workers_to_topology`].
pub fn build_worker_statefulset(lws: &LeaderWorkerSet, leader_pod: &Pod) -> Option<StatefulSet> {
    let size = lws.size();
    if size <= 1 {
        return None;
    }
    let name = lws.name().to_string();
    let leader_name = leader_pod.metadata.name.clone().unwrap_or_default();
    let leader_label = |key: &str| {
        leader_pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let group_index = leader_label(GROUP_INDEX_LABEL_KEY);
    let group_key = leader_label(GROUP_UNIQUE_HASH_LABEL_KEY);
    let selector = [
        (GROUP_INDEX_LABEL_KEY, group_index.clone()),
        (SET_NAME_LABEL_KEY, name.clone()),
        (GROUP_UNIQUE_HASH_LABEL_KEY, group_key.clone()),
    ];
    let group_labels = [
        (GROUP_INDEX_LABEL_KEY, group_index),
        (SET_NAME_LABEL_KEY, name.clone()),
        (GROUP_UNIQUE_HASH_LABEL_KEY, group_key),
        (REVISION_KEY, leader_label(REVISION_KEY)),
    ];

    let mut template = lws.spec.leader_worker_template.worker_template.clone();
    merge(
        &mut template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels,
        group_labels.clone(),
    );
    let service_name = match lws.subdomain_policy() {
        SubdomainPolicy::Shared => name.clone(),
        SubdomainPolicy::UniquePerReplica => leader_name.clone(),
    };
    let mut pod_annotations = group_pod_annotations(lws);
    pod_annotations.insert(
        LEADER_POD_NAME_ANNOTATION_KEY.to_string(),
        leader_name.clone(),
    );
    pod_annotations.insert(
        LEADER_ADDRESS_ANNOTATION_KEY.to_string(),
        leader_address(leader_pod, &leader_name, &service_name, lws),
    );
    if leader_pod.spec.as_ref().is_some_and(pod_requests_tpus) {
        pod_annotations.insert(
            LEADER_REQUESTS_TPUS_ANNOTATION_KEY.to_string(),
            "true".to_string(),
        );
    }
    merge(
        &mut template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .annotations,
        pod_annotations,
    );

    let mut labels = lws.metadata.labels.clone();
    merge(&mut labels, group_labels);
    merge(&mut labels, [(ROLE_LABEL_KEY, ROLE_WORKER.to_string())]);
    Some(StatefulSet {
        metadata: ObjectMeta {
            name: Some(leader_name),
            namespace: Some(pod_namespace(leader_pod, lws)),
            labels,
            annotations: lws.metadata.annotations.clone(),
            owner_references: Some(vec![pod_owner_reference(leader_pod)]),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            service_name: Some(service_name),
            replicas: Some(size - 1),
            pod_management_policy: Some(PARALLEL.to_string()),
            ordinals: Some(StatefulSetOrdinals { start: Some(1) }),
            selector: match_labels(selector),
            template,
            volume_claim_templates: claim_templates(lws),
            persistent_volume_claim_retention_policy: lws
                .spec
                .leader_worker_template
                .persistent_volume_claim_retention_policy
                .clone(),
            ..StatefulSetSpec::default()
        }),
        status: None,
    })
}

/// The leader's DNS name: its hostname and subdomain as the StatefulSet controller set them,
/// falling back to what it will set (the pod name, the group's Service).
fn leader_address(
    leader_pod: &Pod,
    leader_name: &str,
    service: &str,
    lws: &LeaderWorkerSet,
) -> String {
    let spec = leader_pod.spec.as_ref();
    let set = |value: Option<&String>, fallback: &str| match value {
        Some(value) if !value.is_empty() => value.clone(),
        _ => fallback.to_string(),
    };
    format!(
        "{}.{}.{}",
        set(spec.and_then(|s| s.hostname.as_ref()), leader_name),
        set(spec.and_then(|s| s.subdomain.as_ref()), service),
        pod_namespace(leader_pod, lws)
    )
}

/// Pins a worker StatefulSet's pods to the leader's topology domain under exclusive placement:
/// `nodeSelector[topology_key] = value`, where `value` is that label on the leader's node
/// (upstream's pod controller, §4.8 step 11). Merged into the user's nodeSelector.
pub fn pin_workers_to_topology(sts: &mut StatefulSet, topology_key: &str, value: &str) {
    let Some(spec) = sts.spec.as_mut() else {
        return;
    };
    spec.template
        .spec
        .get_or_insert_with(Default::default)
        .node_selector
        .get_or_insert_with(BTreeMap::new)
        .insert(topology_key.to_string(), value.to_string());
}

/// The shared headless Service `<lws>` (subdomain policy Shared).
pub fn build_shared_service(lws: &LeaderWorkerSet) -> Service {
    let name = lws.name().to_string();
    headless_service(
        lws,
        name.clone(),
        [(SET_NAME_LABEL_KEY, name)].into_iter().collect(),
        lws_owner_reference(lws),
    )
}

/// The per-group headless Service `<lws>-<i>` (subdomain policy UniquePerReplica), owned by the leader pod.
pub fn build_replica_service(lws: &LeaderWorkerSet, leader_pod: &Pod) -> Service {
    let group_index = leader_pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(GROUP_INDEX_LABEL_KEY))
        .cloned()
        .unwrap_or_default();
    let selector = [
        (SET_NAME_LABEL_KEY, lws.name().to_string()),
        (GROUP_INDEX_LABEL_KEY, group_index),
    ];
    headless_service(
        lws,
        leader_pod.metadata.name.clone().unwrap_or_default(),
        selector.into_iter().collect(),
        pod_owner_reference(leader_pod),
    )
}

fn headless_service(
    lws: &LeaderWorkerSet,
    name: String,
    selector: BTreeMap<&str, String>,
    owner: OwnerReference,
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(lws.namespace().to_string()),
            labels: Some(to_owned_map([(SET_NAME_LABEL_KEY, lws.name().to_string())])),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(CLUSTER_IP_NONE.to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(to_owned_map(selector)),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Pod-template annotations both StatefulSets carry: the size, the exclusive topologies (when
/// the LWS annotation is non-empty) and, with a subgroup policy, its type and size.
fn group_pod_annotations(lws: &LeaderWorkerSet) -> BTreeMap<String, String> {
    let lwt = &lws.spec.leader_worker_template;
    let mut annotations = BTreeMap::new();
    annotations.insert(SIZE_ANNOTATION_KEY.to_string(), lws.size().to_string());
    let mut copy_if_set = |key: &str| {
        if let Some(value) = lws.annotation(key).filter(|v| !v.is_empty()) {
            annotations.insert(key.to_string(), value.to_string());
        }
    };
    copy_if_set(EXCLUSIVE_KEY_ANNOTATION_KEY);
    if let Some(policy) = &lwt.sub_group_policy {
        copy_if_set(SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY);
        if let Some(policy_type) = policy.sub_group_policy_type {
            annotations.insert(
                SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY.to_string(),
                policy_type.as_str().to_string(),
            );
        }
        if let Some(size) = policy.sub_group_size {
            annotations.insert(SUB_GROUP_SIZE_ANNOTATION_KEY.to_string(), size.to_string());
        }
    }
    annotations
}

/// The claim templates of both StatefulSets: name, accessModes, storageClassName, volumeMode and
/// resources only (upstream `GetPVCApplyConfiguration`); other claim metadata is dropped.
fn claim_templates(lws: &LeaderWorkerSet) -> Option<Vec<PersistentVolumeClaim>> {
    let claims = lws
        .spec
        .leader_worker_template
        .volume_claim_templates
        .as_ref()?;
    if claims.is_empty() {
        return None;
    }
    let claims = claims
        .iter()
        .map(|claim| {
            let spec = claim.spec.clone().unwrap_or_default();
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: claim.metadata.name.clone(),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: spec.access_modes,
                    storage_class_name: spec.storage_class_name,
                    volume_mode: spec.volume_mode,
                    resources: spec.resources.map(|r| VolumeResourceRequirements {
                        limits: r.limits,
                        requests: r.requests,
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            }
        })
        .collect();
    Some(claims)
}

/// The controller reference to the LeaderWorkerSet (`SetControllerReference`).
pub(crate) fn lws_owner_reference(lws: &LeaderWorkerSet) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: KIND.to_string(),
        name: lws.name().to_string(),
        uid: lws.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller reference to a leader pod.
fn pod_owner_reference(pod: &Pod) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_string(),
        kind: "Pod".to_string(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn pod_namespace(pod: &Pod, lws: &LeaderWorkerSet) -> String {
    pod.metadata
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| lws.namespace().to_string())
}

/// Merges `entries` into `map`, the entries winning (apply configurations' `WithLabels`).
fn merge<K: ToString>(
    map: &mut Option<BTreeMap<String, String>>,
    entries: impl IntoIterator<Item = (K, String)>,
) {
    let map = map.get_or_insert_with(BTreeMap::new);
    for (key, value) in entries {
        map.insert(key.to_string(), value);
    }
}

fn to_owned_map<K: ToString>(
    entries: impl IntoIterator<Item = (K, String)>,
) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

fn match_labels<K: ToString>(entries: impl IntoIterator<Item = (K, String)>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(to_owned_map(entries)),
        match_expressions: None,
    }
}

#[cfg(test)]
mod tests {
    //! The apply-configuration shapes of upstream's `leaderworkerset_controller_test.go` and
    //! `pod_controller_test.go`, and the metadata propagation tests of both.
    use super::*;
    use crate::api::{RollingUpdateConfiguration, SubGroupPolicy, SubGroupPolicyType};
    use crate::expand::fixtures::{defaulted, sample};
    use crate::labels::TPU_RESOURCE_NAME;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn map(kv: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// upstream's `test-sample`: 1 group of 1, worker template only.
    fn test_sample() -> LeaderWorkerSet {
        defaulted(
            r#"
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: test-sample, namespace: default, uid: uid-1}
spec:
  leaderWorkerTemplate:
    workerTemplate:
      spec:
        containers: [{name: leader, image: nginx:1.14.2}]
"#,
        )
    }

    fn template_meta(sts: &StatefulSet) -> ObjectMeta {
        sts.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .clone()
            .unwrap_or_default()
    }

    #[test]
    fn leader_statefulset_shape() {
        let lws = test_sample();
        let sts = build_leader_statefulset(&lws, "rev", 0, 1);
        assert_eq!(sts.metadata.name.as_deref(), Some("test-sample"));
        assert_eq!(sts.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            sts.metadata.labels,
            map(&[
                (SET_NAME_LABEL_KEY, "test-sample"),
                (REVISION_KEY, "rev"),
                (ROLE_LABEL_KEY, ROLE_LEADER),
            ])
        );
        // The role is on the StatefulSet only: pods and the selector stay as before v0.11.
        assert!(!template_meta(&sts)
            .labels
            .unwrap()
            .contains_key(ROLE_LABEL_KEY));
        assert_eq!(
            sts.metadata.annotations,
            map(&[(REPLICAS_ANNOTATION_KEY, "1")])
        );
        assert_eq!(
            sts.metadata.owner_references,
            Some(vec![OwnerReference {
                api_version: API_VERSION.into(),
                kind: KIND.into(),
                name: "test-sample".into(),
                uid: "uid-1".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }])
        );
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.service_name.as_deref(), Some("test-sample"));
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(
            spec.update_strategy,
            Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: Some(IntOrString::Int(1)),
                }),
            })
        );
        assert_eq!(
            spec.selector.match_labels,
            map(&[
                (SET_NAME_LABEL_KEY, "test-sample"),
                (WORKER_INDEX_LABEL_KEY, "0")
            ])
        );
        let meta = template_meta(&sts);
        assert_eq!(
            meta.labels,
            map(&[
                (SET_NAME_LABEL_KEY, "test-sample"),
                (WORKER_INDEX_LABEL_KEY, "0"),
                (REVISION_KEY, "rev"),
            ])
        );
        assert_eq!(meta.annotations, map(&[(SIZE_ANNOTATION_KEY, "1")]));
        assert!(spec.ordinals.is_none());
        assert!(spec.volume_claim_templates.is_none());
        let containers = &spec.template.spec.as_ref().unwrap().containers;
        assert_eq!(containers[0].name, "leader");
    }

    #[test]
    fn leader_statefulset_uses_leader_template_and_partition() {
        let mut lws = test_sample();
        let mut leader = lws.spec.leader_worker_template.worker_template.clone();
        leader.spec.as_mut().unwrap().containers[0].name = "boss".into();
        leader.metadata = Some(ObjectMeta {
            labels: map(&[("role", "leader"), (WORKER_INDEX_LABEL_KEY, "9")]),
            annotations: map(&[("a", "b")]),
            ..Default::default()
        });
        lws.spec.leader_worker_template.leader_template = Some(leader);
        lws.spec.leader_worker_template.size = Some(3);
        let sts = build_leader_statefulset(&lws, "rev", 2, 4);
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(
            spec.template.spec.as_ref().unwrap().containers[0].name,
            "boss"
        );
        assert_eq!(spec.replicas, Some(4));
        let rolling = spec
            .update_strategy
            .as_ref()
            .unwrap()
            .rolling_update
            .as_ref()
            .unwrap();
        assert_eq!(rolling.partition, Some(2));
        let meta = template_meta(&sts);
        // The controller's labels win over the user's.
        assert_eq!(
            meta.labels,
            map(&[
                ("role", "leader"),
                (SET_NAME_LABEL_KEY, "test-sample"),
                (WORKER_INDEX_LABEL_KEY, "0"),
                (REVISION_KEY, "rev"),
            ])
        );
        assert_eq!(
            meta.annotations,
            map(&[("a", "b"), (SIZE_ANNOTATION_KEY, "3")])
        );
    }

    #[test]
    fn leader_statefulset_template_annotations_for_placement_subgroups_and_subdomain() {
        let mut lws = test_sample();
        lws.metadata.annotations = map(&[
            (EXCLUSIVE_KEY_ANNOTATION_KEY, "topology.kubernetes.io/zone"),
            (SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
        ]);
        lws.spec.leader_worker_template.size = Some(4);
        lws.spec.leader_worker_template.sub_group_policy = Some(SubGroupPolicy {
            sub_group_policy_type: Some(SubGroupPolicyType::LeaderWorker),
            sub_group_size: Some(2),
        });
        lws.spec.network_config = Some(crate::api::NetworkConfig {
            subdomain_policy: Some(SubdomainPolicy::UniquePerReplica),
        });
        let sts = build_leader_statefulset(&lws, "rev", 0, 1);
        assert_eq!(
            template_meta(&sts).annotations,
            map(&[
                (SIZE_ANNOTATION_KEY, "4"),
                (EXCLUSIVE_KEY_ANNOTATION_KEY, "topology.kubernetes.io/zone"),
                (SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
                (SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY, "LeaderWorker"),
                (SUB_GROUP_SIZE_ANNOTATION_KEY, "2"),
                (SUBDOMAIN_POLICY_ANNOTATION_KEY, "UniquePerReplica"),
            ])
        );
        // The Service name stays <lws> under UniquePerReplica.
        assert_eq!(
            sts.spec.as_ref().unwrap().service_name.as_deref(),
            Some("test-sample")
        );
    }

    #[test]
    fn subgroup_exclusive_topology_needs_a_subgroup_policy() {
        let mut lws = test_sample();
        lws.metadata.annotations = map(&[
            (SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
            (EXCLUSIVE_KEY_ANNOTATION_KEY, ""),
        ]);
        let sts = build_leader_statefulset(&lws, "rev", 0, 1);
        assert_eq!(
            template_meta(&sts).annotations,
            map(&[(SIZE_ANNOTATION_KEY, "1")])
        );
    }

    #[test]
    fn parallel_termination_is_stamped_on_the_leader_template_only() {
        let mut lws = test_sample();
        lws.spec.leader_worker_template.size = Some(2);
        for policy in [None, Some(PodTerminationPolicy::Default)] {
            lws.spec.pod_termination_policy = policy;
            let sts = build_leader_statefulset(&lws, "rev", 0, 1);
            assert_eq!(
                template_meta(&sts).annotations,
                map(&[(SIZE_ANNOTATION_KEY, "2")]),
                "{policy:?}: an existing leader template stays as it was"
            );
        }
        let default_revision = crate::revision::revision_key(&lws);
        lws.spec.pod_termination_policy = Some(PodTerminationPolicy::Parallel);
        let sts = build_leader_statefulset(&lws, "rev", 0, 1);
        assert_eq!(
            template_meta(&sts).annotations,
            map(&[
                (SIZE_ANNOTATION_KEY, "2"),
                (POD_TERMINATION_POLICY_ANNOTATION_KEY, "Parallel"),
            ])
        );
        let workers = build_worker_statefulset(&lws, &leader_pod(&lws, "0")).unwrap();
        assert!(!template_meta(&workers)
            .annotations
            .unwrap_or_default()
            .contains_key(POD_TERMINATION_POLICY_ANNOTATION_KEY));
        // Outside the revision, as upstream: changing it starts no LWS rollout.
        assert_eq!(crate::revision::revision_key(&lws), default_revision);
    }

    #[test]
    fn lws_metadata_propagates_to_the_leader_statefulset() {
        let mut lws = test_sample();
        lws.metadata.labels = map(&[("team", "a"), (SET_NAME_LABEL_KEY, "spoofed")]);
        lws.metadata.annotations = map(&[("note", "b"), (REPLICAS_ANNOTATION_KEY, "99")]);
        let sts = build_leader_statefulset(&lws, "rev", 0, 1);
        assert_eq!(
            sts.metadata.labels,
            map(&[
                ("team", "a"),
                (SET_NAME_LABEL_KEY, "test-sample"),
                (REVISION_KEY, "rev"),
                (ROLE_LABEL_KEY, ROLE_LEADER),
            ])
        );
        assert_eq!(
            sts.metadata.annotations,
            map(&[("note", "b"), (REPLICAS_ANNOTATION_KEY, "1")])
        );
        // Pods do not get the LWS's own labels.
        assert!(!template_meta(&sts).labels.unwrap().contains_key("team"));
    }

    fn with_rollout(
        max_unavailable: IntOrString,
        max_surge: IntOrString,
        replicas: i32,
    ) -> LeaderWorkerSet {
        let mut lws = test_sample();
        lws.spec.replicas = Some(replicas);
        lws.spec
            .rollout_strategy
            .as_mut()
            .unwrap()
            .rolling_update_configuration = Some(RollingUpdateConfiguration {
            partition: Some(0),
            max_unavailable: Some(max_unavailable),
            max_surge: Some(max_surge),
        });
        lws
    }

    #[test]
    fn leader_max_unavailable_adds_capped_surge_with_floor_one() {
        use IntOrString::{Int, String as Percent};
        let cases = [
            (Int(1), Int(0), 4, 1),
            (Int(2), Int(1), 4, 3),
            (Percent("50%".into()), Percent("25%".into()), 3, 2),
            (Int(0), Int(0), 3, 1),
            (Int(1), Int(10), 2, 3),
            (Int(0), Int(1), 4, 1),
            (Percent("10%".into()), Int(0), 4, 1),
        ];
        for (unavailable, surge, replicas, want) in cases {
            let lws = with_rollout(unavailable.clone(), surge.clone(), replicas);
            assert_eq!(
                leader_max_unavailable(&lws),
                want,
                "{unavailable:?} {surge:?} {replicas}"
            );
        }
    }

    #[test]
    fn claim_templates_keep_only_the_claim_shape() {
        let mut lws = defaulted(include_str!(
            "../../examples/lws-volume-claim-templates.yaml"
        ));
        let claims = lws
            .spec
            .leader_worker_template
            .volume_claim_templates
            .as_mut()
            .unwrap();
        claims[0].metadata.labels = map(&[("dropped", "yes")]);
        claims[0].spec.as_mut().unwrap().volume_name = Some("pv-1".into());
        let sts = build_leader_statefulset(&lws, "rev", 0, 2);
        let spec = sts.spec.as_ref().unwrap();
        let claims = spec.volume_claim_templates.as_ref().unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(
            claims[0].metadata,
            ObjectMeta {
                name: Some("persistent-storage".into()),
                ..Default::default()
            }
        );
        let claim_spec = claims[0].spec.as_ref().unwrap();
        assert_eq!(claim_spec.access_modes, Some(vec!["ReadWriteOnce".into()]));
        assert_eq!(claim_spec.volume_name, None);
        assert_eq!(
            claim_spec.resources.as_ref().unwrap().requests,
            Some(BTreeMap::from([(
                "storage".into(),
                Quantity("10Gi".into())
            )]))
        );
        let retention = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .unwrap();
        assert_eq!(retention.when_deleted.as_deref(), Some("Delete"));
        assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
    }

    fn leader_pod(lws: &LeaderWorkerSet, group: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("{}-{group}", lws.name())),
                namespace: Some("default".into()),
                uid: Some("pod-uid".into()),
                labels: map(&[
                    (SET_NAME_LABEL_KEY, lws.name()),
                    (WORKER_INDEX_LABEL_KEY, "0"),
                    (GROUP_INDEX_LABEL_KEY, group),
                    (GROUP_UNIQUE_HASH_LABEL_KEY, "group-key"),
                    (REVISION_KEY, "leader-rev"),
                ]),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "leader".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn worker_statefulset_shape() {
        let mut lws = test_sample();
        lws.spec.leader_worker_template.size = Some(3);
        let leader = leader_pod(&lws, "1");
        let sts = build_worker_statefulset(&lws, &leader).unwrap();
        assert_eq!(sts.metadata.name.as_deref(), Some("test-sample-1"));
        assert_eq!(sts.metadata.namespace.as_deref(), Some("default"));
        let group_labels = map(&[
            (GROUP_INDEX_LABEL_KEY, "1"),
            (SET_NAME_LABEL_KEY, "test-sample"),
            (GROUP_UNIQUE_HASH_LABEL_KEY, "group-key"),
            (REVISION_KEY, "leader-rev"),
        ]);
        let mut sts_labels = group_labels.clone().unwrap();
        sts_labels.insert(ROLE_LABEL_KEY.into(), ROLE_WORKER.into());
        assert_eq!(sts.metadata.labels, Some(sts_labels));
        assert_eq!(sts.metadata.annotations, None);
        assert_eq!(
            sts.metadata.owner_references,
            Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: "test-sample-1".into(),
                uid: "pod-uid".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }])
        );
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.ordinals, Some(StatefulSetOrdinals { start: Some(1) }));
        assert_eq!(spec.service_name.as_deref(), Some("test-sample"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert!(spec.update_strategy.is_none());
        assert_eq!(
            spec.selector.match_labels,
            map(&[
                (GROUP_INDEX_LABEL_KEY, "1"),
                (SET_NAME_LABEL_KEY, "test-sample"),
                (GROUP_UNIQUE_HASH_LABEL_KEY, "group-key"),
            ])
        );
        let meta = template_meta(&sts);
        assert_eq!(meta.labels, group_labels);
        assert_eq!(
            meta.annotations,
            map(&[
                (SIZE_ANNOTATION_KEY, "3"),
                (LEADER_POD_NAME_ANNOTATION_KEY, "test-sample-1"),
                (
                    LEADER_ADDRESS_ANNOTATION_KEY,
                    "test-sample-1.test-sample.default"
                ),
            ])
        );
    }

    #[test]
    fn no_worker_statefulset_for_size_one() {
        let lws = test_sample();
        assert!(build_worker_statefulset(&lws, &leader_pod(&lws, "0")).is_none());
    }

    #[test]
    fn worker_statefulset_under_unique_per_replica_uses_the_leader_as_service() {
        let mut lws = defaulted(include_str!("../../examples/lws-unique-per-replica.yaml"));
        lws.metadata.annotations = map(&[("note", "b"), (EXCLUSIVE_KEY_ANNOTATION_KEY, "rack")]);
        lws.metadata.labels = map(&[("team", "a")]);
        let leader = leader_pod(&lws, "0");
        let sts = build_worker_statefulset(&lws, &leader).unwrap();
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(
            spec.service_name.as_deref(),
            Some("leaderworkerset-unique-0")
        );
        // LWS metadata propagates as-is (no replicas annotation on the worker StatefulSet).
        assert_eq!(sts.metadata.annotations, lws.metadata.annotations);
        assert_eq!(
            sts.metadata
                .labels
                .as_ref()
                .unwrap()
                .get("team")
                .map(String::as_str),
            Some("a")
        );
        let annotations = template_meta(&sts).annotations.unwrap();
        assert_eq!(
            annotations
                .get(EXCLUSIVE_KEY_ANNOTATION_KEY)
                .map(String::as_str),
            Some("rack")
        );
        assert!(!annotations.contains_key(SUBDOMAIN_POLICY_ANNOTATION_KEY));
    }

    #[test]
    fn worker_statefulset_marks_tpu_leaders_and_subgroups() {
        let mut lws = defaulted(include_str!("../../examples/lws-subgroup.yaml"));
        let mut leader = leader_pod(&lws, "0");
        leader.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(
                TPU_RESOURCE_NAME.into(),
                Quantity("4".into()),
            )])),
            ..Default::default()
        });
        let annotations = template_meta(&build_worker_statefulset(&lws, &leader).unwrap())
            .annotations
            .unwrap();
        assert_eq!(
            annotations,
            map(&[
                (SIZE_ANNOTATION_KEY, "4"),
                (LEADER_POD_NAME_ANNOTATION_KEY, "leaderworkerset-subgroup-0"),
                (
                    LEADER_ADDRESS_ANNOTATION_KEY,
                    "leaderworkerset-subgroup-0.leaderworkerset-subgroup.default"
                ),
                (LEADER_REQUESTS_TPUS_ANNOTATION_KEY, "true"),
                (SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY, "rack"),
                (SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY, "LeaderWorker"),
                (SUB_GROUP_SIZE_ANNOTATION_KEY, "2"),
            ])
            .unwrap()
        );
        lws.spec.leader_worker_template.size = Some(1);
        assert!(build_worker_statefulset(&lws, &leader).is_none());
    }

    #[test]
    fn pinning_workers_merges_into_the_node_selector() {
        let mut lws = test_sample();
        lws.spec.leader_worker_template.size = Some(2);
        lws.spec
            .leader_worker_template
            .worker_template
            .spec
            .as_mut()
            .unwrap()
            .node_selector = map(&[("disk", "ssd")]);
        let mut sts = build_worker_statefulset(&lws, &leader_pod(&lws, "0")).unwrap();
        pin_workers_to_topology(&mut sts, "rack", "r1");
        assert_eq!(
            sts.spec.unwrap().template.spec.unwrap().node_selector,
            map(&[("disk", "ssd"), ("rack", "r1")])
        );
    }

    #[test]
    fn shared_and_replica_services() {
        let lws = sample();
        let shared = build_shared_service(&lws);
        assert_eq!(
            shared.metadata.name.as_deref(),
            Some("leaderworkerset-sample")
        );
        assert_eq!(shared.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            shared.metadata.labels,
            map(&[(SET_NAME_LABEL_KEY, "leaderworkerset-sample")])
        );
        let owner = &shared.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            (KIND, "leaderworkerset-sample")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let spec = shared.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert!(spec.ports.is_none());
        assert_eq!(
            spec.selector,
            map(&[(SET_NAME_LABEL_KEY, "leaderworkerset-sample")])
        );

        let replica = build_replica_service(&lws, &leader_pod(&lws, "2"));
        assert_eq!(
            replica.metadata.name.as_deref(),
            Some("leaderworkerset-sample-2")
        );
        let owner = &replica.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Pod", "leaderworkerset-sample-2")
        );
        assert_eq!(
            replica.spec.as_ref().unwrap().selector,
            map(&[
                (SET_NAME_LABEL_KEY, "leaderworkerset-sample"),
                (GROUP_INDEX_LABEL_KEY, "2")
            ])
        );
    }
}
