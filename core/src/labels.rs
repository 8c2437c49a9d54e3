//! Every label, annotation and environment-variable key LeaderWorkerSet uses.
//!
//! Mirrors the `const` block of `api/leaderworkerset/v1/leaderworkerset_types.go` upstream; the
//! Rust names keep upstream's Go names in SCREAMING_SNAKE so both codebases grep alike.
//! Nothing outside this module spells one of these keys as a literal.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A label value.
pub fn label<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

/// An annotation value.
pub fn annotation<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Label: the LWS name, on every object the controller creates.
pub const SET_NAME_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/name";
/// Label: the group index of a pod, worker StatefulSet or per-replica Service.
pub const GROUP_INDEX_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/group-index";
/// Label: `"0"` for the leader, `j` for worker `j`.
pub const WORKER_INDEX_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/worker-index";
/// Label: SHA-1 of `<namespace>/<leader pod name>`, shared by a group's pods.
pub const GROUP_UNIQUE_HASH_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/group-key";
/// Label: the revision key of the template the object was built from.
pub const REVISION_KEY: &str = "leaderworkerset.sigs.k8s.io/template-revision-hash";
/// Label: the subgroup index of a pod.
pub const SUB_GROUP_INDEX_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/subgroup-index";
/// Label: SHA-1 of `<leader pod name>/<subgroup index>`, shared by a subgroup's pods.
pub const SUB_GROUP_UNIQUE_HASH_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/subgroup-key";

/// Label (StatefulSet objects only, not their pods): `leader` or `worker` (upstream-v0.11.md §A3).
pub const ROLE_LABEL_KEY: &str = "leaderworkerset.sigs.k8s.io/role";
/// [`ROLE_LABEL_KEY`] of the leader StatefulSet.
pub const ROLE_LEADER: &str = "leader";
/// [`ROLE_LABEL_KEY`] of a worker StatefulSet.
pub const ROLE_WORKER: &str = "worker";

/// Annotation (worker pod template): the leader's DNS name, `<hostname>.<subdomain>.<namespace>`,
/// which the pod webhook gives workers as `LWS_LEADER_ADDRESS` (upstream-v0.11.md §A1.2).
pub const LEADER_ADDRESS_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/leader-address";

/// Annotation (user, on the LWS): topology key for 1:1 group-to-domain placement.
pub const EXCLUSIVE_KEY_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/exclusive-topology";
/// Annotation (user, on the LWS): topology key for 1:1 subgroup-to-domain placement.
pub const SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/subgroup-exclusive-topology";
/// Annotation (pod templates): the group size, required by the pod webhook.
pub const SIZE_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/size";
/// Annotation (leader StatefulSet object): `spec.replicas`, to detect replica changes mid-rollout.
pub const REPLICAS_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/replicas";
/// Annotation (worker pods): the leader pod's name.
pub const LEADER_POD_NAME_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/leader-name";
/// Annotation (pod templates): the subgroup size.
pub const SUB_GROUP_SIZE_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/subgroup-size";
/// Annotation (pod templates): the subgroup policy type.
pub const SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/subgroup-policy-type";
/// Annotation (leader template, UniquePerReplica only). The camelCase key is upstream's.
pub const SUBDOMAIN_POLICY_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/subdomainPolicy";
/// Annotation (leader pod template, `Parallel` only): the LWS's `spec.podTerminationPolicy`, so a
/// leader pod carries its group's policy even when the LWS is gone (upstream-v0.11.md §A6.2).
pub const POD_TERMINATION_POLICY_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/pod-termination-policy";
/// Annotation (user, on the LWS): legacy switch for the pending-group guard of group restarts.
pub const RECREATE_GROUP_AFTER_START_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/experimental-recreate-group-after-start";
/// Annotation (controller, on the LWS; `maxGroupRestarts`): JSON map `"<revision>/<group index>"`
/// → group recreations counted against the budget (upstream-v0.11.md §A6.1).
pub const GROUP_RESTART_COUNTS_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/group-restart-counts";
/// Annotation (user, on an exhausted leader pod): `"true"` recovers its group with a fresh budget.
pub const RECOVER_ANNOTATION_KEY: &str = "leaderworkerset.sigs.k8s.io/recover";
/// Annotation (controller, on a leader pod): `"true"` once its group exhausted its restart
/// budget. Upstream's key string was not found (§A6.1); this one is ours.
pub const GROUP_RESTART_BUDGET_EXHAUSTED_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/group-restart-budget-exhausted";
/// Finalizer (controller, on the pods of an exhausted group): keeps their objects, so neither
/// StatefulSet recreates them, until recovery or teardown.
pub const GROUP_RESTART_BUDGET_CLEANUP_FINALIZER: &str =
    "leaderworkerset.sigs.k8s.io/group-restart-budget-cleanup";
/// Annotation (worker template): `"true"` when the leader pod requests TPUs.
pub const LEADER_REQUESTS_TPUS_ANNOTATION_KEY: &str =
    "leaderworkerset.sigs.k8s.io/leader-requests-tpus";
/// Annotation (pods, gang scheduling): the Volcano PodGroup name.
pub const POD_GROUP_NAME_ANNOTATION_KEY: &str = "scheduling.k8s.io/group-name";
/// Annotation (user, on the LWS): the Volcano queue for PodGroups.
pub const VOLCANO_QUEUE_NAME_ANNOTATION_KEY: &str = "scheduling.volcano.sh/queue-name";

/// Env: DNS name of the group's leader, `<lws>-<i>.<subdomain>.<namespace>`.
pub const LWS_LEADER_ADDRESS: &str = "LWS_LEADER_ADDRESS";
/// Env: the group size.
pub const LWS_GROUP_SIZE: &str = "LWS_GROUP_SIZE";
/// Env: the pod's worker index (0 for the leader).
pub const LWS_WORKER_INDEX: &str = "LWS_WORKER_INDEX";

/// Env (TPU): comma-separated hostnames of the TPU workers.
pub const TPU_WORKER_HOSTNAMES: &str = "TPU_WORKER_HOSTNAMES";
/// Env (TPU): this container's TPU worker id.
pub const TPU_WORKER_ID: &str = "TPU_WORKER_ID";
/// Env (TPU): the slice name, i.e. the leader pod name.
pub const TPU_NAME: &str = "TPU_NAME";
/// Env (TPU): comma-separated `host:port` of every TPU process.
pub const TPU_PROCESS_ADDRESSES: &str = "TPU_PROCESS_ADDRESSES";
/// Env (TPU): the port this container's TPU process listens on.
pub const TPU_PROCESS_PORT: &str = "TPU_PROCESS_PORT";
/// First TPU process port; container `k` defaults to `8476 + k`.
pub const TPU_PROCESS_PORT_BASE: i32 = 8476;
/// Extended resource name of Google TPUs.
pub const TPU_RESOURCE_NAME: &str = "google.com/tpu";

/// Label the StatefulSet controller puts on each pod: its own name.
pub const STATEFULSET_POD_NAME_LABEL_KEY: &str = "statefulset.kubernetes.io/pod-name";
/// Label the StatefulSet controller puts on each pod: its ordinal (Kubernetes >= 1.28).
pub const POD_INDEX_LABEL_KEY: &str = "apps.kubernetes.io/pod-index";

/// Server-side-apply field manager of the controller.
pub const FIELD_MANAGER: &str = "lws";
