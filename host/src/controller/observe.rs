//! What the controller observes: reflector stores for every kind the decision reads, and the
//! one function that picks out one LeaderWorkerSet's objects for its `reconcile` input.
//!
//! Selection is by the `leaderworkerset.sigs.k8s.io/name` label and the object name only, the
//! contract written in `lws_core::reconcile::wire`; which of these objects matter, and how, is
//! the module's business.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use lws_core::labels::{SET_NAME_LABEL_KEY, WORKER_INDEX_LABEL_KEY};
use lws_core::reconcile::ReconcileInputRef;
use lws_core::LeaderWorkerSet;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The caches the reconciler reads. Cloning is cheap: each is a handle on a shared map.
#[derive(Clone)]
pub struct Stores {
    pub stateful_sets: Store<StatefulSet>,
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub revisions: Store<ControllerRevision>,
    pub nodes: Store<Node>,
    /// Volcano PodGroups, reflected only when a gang-scheduling provider is configured.
    pub pod_groups: Option<Store<DynamicObject>>,
    /// Turns true once every store has seen its first full list (see [`Stores::track_sync`]).
    synced: watch::Receiver<bool>,
}

impl Stores {
    /// Bundles the stores; call [`Stores::track_sync`] with the returned sender.
    pub fn new(
        stateful_sets: Store<StatefulSet>,
        pods: Store<Pod>,
        services: Store<Service>,
        revisions: Store<ControllerRevision>,
        nodes: Store<Node>,
        pod_groups: Option<Store<DynamicObject>>,
    ) -> (Self, watch::Sender<bool>) {
        let (sender, synced) = watch::channel(false);
        let stores = Stores {
            stateful_sets,
            pods,
            services,
            revisions,
            nodes,
            pod_groups,
            synced,
        };
        (stores, sender)
    }

    /// Waits for every store's first list, then flips the synced flag.
    ///
    /// This must be the only waiter on the stores themselves: kube's `Store::wait_until_ready`
    /// keeps one waker, so two tasks waiting at once can leave one asleep forever. Everyone
    /// else waits on the flag ([`Stores::ready`]).
    pub async fn track_sync(self, sender: watch::Sender<bool>) {
        let all = self.stateful_sets.wait_until_ready().await.is_ok()
            && self.pods.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.revisions.wait_until_ready().await.is_ok()
            && self.nodes.wait_until_ready().await.is_ok();
        let all = all
            && match &self.pod_groups {
                Some(store) => store.wait_until_ready().await.is_ok(),
                None => true,
            };
        if all {
            let _ = sender.send(true);
        }
    }

    /// True once every store has seen its first full list.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the stores are synced, or `timeout` passes; `false` when still filling (the
    /// caller requeues rather than decide on a partial view).
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut synced = self.synced.clone();
        let waited = tokio::time::timeout(
            timeout,
            async move { synced.wait_for(|s| *s).await.is_ok() },
        );
        waited.await.unwrap_or(false)
    }

    /// What the stores hold for `lws` now: shared handles, not copies.
    pub fn observe(&self, lws: &LeaderWorkerSet) -> Observation {
        let namespace = lws.namespace().to_string();
        let name = lws.name().to_string();
        let mine = |labels: &std::collections::BTreeMap<String, String>, ns: Option<String>| {
            ns.as_deref() == Some(namespace.as_str())
                && labels.get(SET_NAME_LABEL_KEY).map(String::as_str) == Some(name.as_str())
        };

        let mut observation = Observation::default();
        for sts in self.stateful_sets.state() {
            if sts.namespace().as_deref() != Some(namespace.as_str()) {
                continue;
            }
            if sts.name_any() == name {
                observation.leader_stateful_set = Some(sts);
            } else if mine(sts.labels(), sts.namespace()) {
                observation.worker_stateful_sets.push(sts);
            }
        }
        for pod in self.pods.state() {
            if !mine(pod.labels(), pod.namespace()) {
                continue;
            }
            match pod.labels().get(WORKER_INDEX_LABEL_KEY).map(String::as_str) {
                Some("0") => observation.leader_pods.push(pod),
                Some(_) => observation.worker_pods.push(pod),
                None => {}
            }
        }
        let leader_nodes: BTreeSet<String> = observation
            .leader_pods
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        observation.nodes = self
            .nodes
            .state()
            .into_iter()
            .filter(|n| leader_nodes.contains(&n.name_any()))
            .collect();
        observation.services = self
            .services
            .state()
            .into_iter()
            .filter(|s| mine(s.labels(), s.namespace()))
            .collect();
        observation.revisions = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| mine(r.labels(), r.namespace()))
            .collect();
        observation.pod_groups = self
            .pod_groups
            .iter()
            .flat_map(Store::state)
            .filter(|g| mine(g.labels(), g.namespace()))
            .collect();
        observation
    }
}

/// The objects of one LeaderWorkerSet, as [`Stores::observe`] found them.
#[derive(Default)]
pub struct Observation {
    pub revisions: Vec<Arc<ControllerRevision>>,
    pub leader_stateful_set: Option<Arc<StatefulSet>>,
    pub worker_stateful_sets: Vec<Arc<StatefulSet>>,
    pub leader_pods: Vec<Arc<Pod>>,
    pub worker_pods: Vec<Arc<Pod>>,
    pub services: Vec<Arc<Service>>,
    pub nodes: Vec<Arc<Node>>,
    pub pod_groups: Vec<Arc<DynamicObject>>,
}

impl Observation {
    /// The module's `reconcile` input for `lws`, stamped with the current time.
    pub fn encode(
        &self,
        lws: &LeaderWorkerSet,
        scheduler_provider: Option<&str>,
    ) -> serde_json::Result<Vec<u8>> {
        let now = Time(Timestamp::now());
        serde_json::to_vec(&ReconcileInputRef {
            lws,
            now: &now,
            revisions: all(&self.revisions),
            leader_stateful_set: self.leader_stateful_set.as_deref(),
            worker_stateful_sets: all(&self.worker_stateful_sets),
            leader_pods: all(&self.leader_pods),
            worker_pods: all(&self.worker_pods),
            services: all(&self.services),
            nodes: all(&self.nodes),
            // Names are all the module reads of a PodGroup (the wire contract allows them).
            pod_groups: &self
                .pod_groups
                .iter()
                .map(|g| serde_json::Value::String(g.name_any()))
                .collect::<Vec<_>>(),
            scheduler_provider,
        })
    }
}

/// Borrows every object of a snapshot.
fn all<K>(objects: &[Arc<K>]) -> Vec<&K> {
    objects.iter().map(AsRef::as_ref).collect()
}
