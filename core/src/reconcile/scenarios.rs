//! The worked rollout sequences of upstream's integration tests (upstream-lws.md §4.5.2), run
//! against a small simulation: [`plan_reconcile`] decides, the plan is applied to an in-memory
//! cluster, and a stand-in StatefulSet controller replaces leader pods at or above the partition.
//! Groups have size 1, so leader pods alone carry readiness (as in upstream's unit tests).

use super::*;
// Every decision in these tests is also checked through the module's decoding.
use super::seen::plan_reconcile;
use crate::labels::{
    GROUP_INDEX_LABEL_KEY, REVISION_KEY, SET_NAME_LABEL_KEY, WORKER_INDEX_LABEL_KEY,
};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use std::collections::BTreeMap;

pub(super) struct Sim {
    pub lws: LeaderWorkerSet,
    pub sts: Option<StatefulSet>,
    pub revisions: Vec<ControllerRevision>,
    /// Leader pods by group index: (revision key, ready).
    pub pods: BTreeMap<i32, (String, bool)>,
    /// The key pods below the partition are recreated with (the StatefulSet's current revision).
    old_key: String,
    pub events: Vec<String>,
}

pub(super) fn lws_json(
    replicas: i32,
    max_unavailable: serde_json::Value,
    max_surge: serde_json::Value,
    partition: i32,
) -> LeaderWorkerSet {
    let value = json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "lws", "namespace": "default", "uid": "lws-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {
                "size": 1,
                "workerTemplate": {"spec": {"containers": [{"name": "c", "image": "v1"}]}}
            },
            "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {
                "maxUnavailable": max_unavailable, "maxSurge": max_surge, "partition": partition
            }}
        }
    });
    let mut lws = crate::decode::decode_lws_value(value).expect("fixture decodes");
    crate::defaults::apply_defaults(&mut lws);
    lws
}

fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap()
}

impl Sim {
    /// `lws` with nothing created yet.
    pub fn new(lws: LeaderWorkerSet) -> Sim {
        Sim {
            lws,
            sts: None,
            revisions: Vec::new(),
            pods: BTreeMap::new(),
            old_key: String::new(),
            events: Vec::new(),
        }
    }

    /// Creates the LWS and brings every group up and ready.
    pub fn ready(lws: LeaderWorkerSet) -> Sim {
        let mut sim = Sim::new(lws);
        sim.settle();
        sim.make_all_ready();
        sim.settle();
        sim
    }

    pub fn input(&self) -> ReconcileInput {
        ReconcileInput {
            lws: self.lws.clone(),
            now: now(),
            revisions: self.revisions.clone(),
            leader_stateful_set: self.sts.clone(),
            worker_stateful_sets: Vec::new(),
            leader_pods: self
                .pods
                .iter()
                .map(|(i, (key, ready))| self.pod(*i, key, *ready))
                .collect(),
            worker_pods: Vec::new(),
            services: Vec::new(),
            nodes: Vec::new(),
            pod_groups: Vec::new(),
            scheduler_provider: None,
        }
    }

    fn pod(&self, index: i32, key: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("lws-{index}"), "namespace": "default", "uid": format!("uid-{index}"),
                "labels": {SET_NAME_LABEL_KEY: "lws", WORKER_INDEX_LABEL_KEY: "0",
                    GROUP_INDEX_LABEL_KEY: index.to_string(), REVISION_KEY: key}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    /// One reconcile, its plan applied.
    pub fn reconcile(&mut self) -> ReconcilePlan {
        let plan = plan_reconcile(&self.input());
        for object in &plan.create {
            if object["kind"] == "ControllerRevision" {
                self.revisions
                    .push(serde_json::from_value(object.clone()).unwrap());
            }
        }
        for object in &plan.apply {
            let mut sts: StatefulSet = serde_json::from_value(object.clone()).unwrap();
            sts.status = self.sts.as_ref().and_then(|s| s.status.clone());
            self.sts = Some(sts);
        }
        for target in &plan.delete {
            self.revisions
                .retain(|r| r.metadata.name.as_deref() != Some(&target.name));
        }
        if let Some(status) = &plan.status {
            self.lws.status = Some(status.clone());
        }
        self.events
            .extend(plan.events.iter().map(|e| e.note.clone()));
        plan
    }

    /// The StatefulSet controller: pods 0..replicas exist; those at or above the partition run
    /// the template's revision (replaced ones start unready); pods beyond replicas go.
    fn run_statefulset_controller(&mut self) -> bool {
        let Some(sts) = &self.sts else { return false };
        let spec = sts.spec.as_ref().unwrap();
        let replicas = spec.replicas.unwrap();
        let partition = spec
            .update_strategy
            .as_ref()
            .unwrap()
            .rolling_update
            .as_ref()
            .unwrap()
            .partition
            .unwrap();
        let key = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap()[REVISION_KEY]
            .clone();
        if self.old_key.is_empty() {
            self.old_key = key.clone();
        }
        let before = self.pods.clone();
        self.pods.retain(|i, _| *i < replicas);
        for index in 0..replicas {
            let want = if index >= partition {
                key.clone()
            } else {
                self.old_key.clone()
            };
            match self.pods.get(&index) {
                Some((have, _)) if *have == want || index < partition => {}
                _ => {
                    self.pods.insert(index, (want, false));
                }
            }
        }
        let status_replicas = self.pods.len() as i32;
        let sts = self.sts.as_mut().unwrap();
        sts.status = Some(k8s_openapi::api::apps::v1::StatefulSetStatus {
            replicas: status_replicas,
            ..Default::default()
        });
        before != self.pods
    }

    /// Reconciles until neither the plan nor the pods change.
    pub fn settle(&mut self) {
        for _ in 0..20 {
            let before = self.parameters();
            self.reconcile();
            let pods_changed = self.run_statefulset_controller();
            if !pods_changed && before == self.parameters() {
                // One more pass so the status sees the final pods.
                self.reconcile();
                return;
            }
        }
        panic!("the simulation does not settle");
    }

    /// (partition, replicas) of the leader StatefulSet.
    pub fn parameters(&self) -> Option<(i32, i32)> {
        let spec = self.sts.as_ref()?.spec.as_ref()?;
        Some((
            spec.update_strategy
                .as_ref()?
                .rolling_update
                .as_ref()?
                .partition?,
            spec.replicas?,
        ))
    }

    pub fn make_ready(&mut self, index: i32) {
        self.pods.get_mut(&index).expect("pod exists").1 = true;
        self.settle();
    }

    pub fn make_all_ready(&mut self) {
        for pod in self.pods.values_mut() {
            pod.1 = true;
        }
    }

    /// Makes every group ready until no group is on an old revision.
    pub fn roll_out(&mut self) {
        for _ in 0..20 {
            self.settle();
            if self.old_groups().is_empty() && self.pods.values().all(|p| p.1) {
                self.settle();
                return;
            }
            self.make_all_ready();
        }
        panic!("the rollout does not finish");
    }

    /// A new worker image: a new revision.
    pub fn update_template(&mut self) {
        self.old_key = self.current_key();
        let image = format!("v{}", self.lws.metadata.generation.unwrap() + 1);
        self.lws
            .spec
            .leader_worker_template
            .worker_template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some(image);
        self.bump_generation();
    }

    pub fn bump_generation(&mut self) {
        *self.lws.metadata.generation.as_mut().unwrap() += 1;
    }

    pub fn set_partition(&mut self, partition: i32) {
        let config = self
            .lws
            .spec
            .rollout_strategy
            .as_mut()
            .unwrap()
            .rolling_update_configuration
            .as_mut()
            .unwrap();
        config.partition = Some(partition);
        self.bump_generation();
        self.settle();
    }

    pub fn current_key(&self) -> String {
        crate::revision::revision_key(&self.lws)
    }

    /// (readyReplicas, updatedReplicas).
    pub fn counts(&self) -> (i32, i32) {
        let status = self.lws.status.as_ref().unwrap();
        (status.ready_replicas, status.updated_replicas)
    }

    pub fn condition(&self, type_: &str) -> Option<String> {
        let status = self.lws.status.as_ref()?;
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.clone())
    }

    /// Groups still on an old revision.
    pub fn old_groups(&self) -> Vec<i32> {
        let key = self.current_key();
        self.pods
            .iter()
            .filter(|(_, (k, _))| *k != key)
            .map(|(i, _)| *i)
            .collect()
    }
}

fn int(n: i32) -> serde_json::Value {
    json!(n)
}

#[test]
fn defaults_roll_one_group_at_a_time() {
    let mut sim = Sim::ready(lws_json(4, int(1), int(0), 0));
    assert_eq!(sim.parameters(), Some((0, 4)));
    assert_eq!(sim.condition("Available").as_deref(), Some("True"));
    sim.update_template();
    sim.settle();
    assert_eq!(sim.parameters(), Some((3, 4)));
    sim.make_ready(3);
    assert_eq!(sim.parameters(), Some((2, 4)));
    sim.make_ready(2);
    assert_eq!(sim.parameters(), Some((1, 4)));
    sim.make_ready(1);
    assert_eq!(sim.parameters(), Some((0, 4)));
    sim.make_ready(0);
    assert_eq!(sim.parameters(), Some((0, 4)));
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
    assert_eq!(sim.condition("Available").as_deref(), Some("True"));
    assert_eq!(sim.counts(), (4, 4));
    // Update done: only the current revision is left.
    assert_eq!(sim.revisions.len(), 1);
    assert!(
        sim.events.iter().any(|e| e == "Updating replica 2"),
        "{:?}",
        sim.events
    );
}

#[test]
fn max_unavailable_two_rolls_two_groups_at_a_time() {
    let mut sim = Sim::ready(lws_json(4, int(2), int(0), 0));
    sim.update_template();
    sim.settle();
    assert_eq!(sim.parameters(), Some((2, 4)));
    sim.make_ready(3);
    assert_eq!(sim.parameters(), Some((1, 4)));
    sim.make_ready(2);
    assert_eq!(sim.parameters(), Some((0, 4)));
    sim.make_ready(1);
    sim.make_ready(0);
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
    assert_eq!(sim.condition("Available").as_deref(), Some("True"));
}

#[test]
fn max_unavailable_above_replicas_rolls_everything_at_once() {
    let mut sim = Sim::ready(lws_json(4, int(10), int(0), 0));
    sim.update_template();
    sim.settle();
    assert_eq!(sim.parameters(), Some((0, 4)));
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
}

#[test]
fn template_change_and_scale_up_together() {
    let mut sim = Sim::ready(lws_json(4, int(1), int(0), 0));
    sim.update_template();
    sim.lws.spec.replicas = Some(6);
    let plan = sim.reconcile();
    assert_eq!(sim.parameters(), Some((4, 6)), "{:?}", plan.reasons);
    sim.settle();
    // The new groups 4 and 5 start on the new template.
    assert_eq!(sim.old_groups(), vec![0, 1, 2, 3]);
    sim.make_ready(4);
    sim.make_ready(5);
    for index in (0..4).rev() {
        sim.make_ready(index);
    }
    assert_eq!(sim.parameters(), Some((0, 6)));
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
}

#[test]
fn max_surge_one_without_unavailability() {
    let mut sim = Sim::ready(lws_json(4, int(0), int(1), 0));
    assert_eq!(sim.counts(), (4, 4));
    sim.update_template();
    let plan = sim.reconcile();
    assert_eq!(sim.parameters(), Some((4, 5)), "{:?}", plan.reasons);
    assert_eq!(
        plan.status
            .as_ref()
            .map(|s| (s.ready_replicas, s.updated_replicas)),
        Some((4, 0))
    );
    sim.settle();
    assert_eq!(sim.parameters(), Some((4, 5)));
    let mut seen = Vec::new();
    for (index, partition) in [(4, 3), (3, 2), (2, 1), (1, 0)] {
        sim.make_ready(index);
        assert_eq!(
            sim.parameters(),
            Some((partition, 5)),
            "after group {index}"
        );
        // Counted before the next group goes down, as the integration test's checkpoints are.
        seen.push(sim.counts());
    }
    sim.make_ready(0);
    assert_eq!(sim.parameters(), Some((0, 4)));
    seen.push(sim.counts());
    // The replaced group is down at each checkpoint; the status before it was (5, n).
    assert_eq!(seen, vec![(4, 2), (4, 3), (4, 4), (4, 5), (4, 4)]);
    assert!(
        sim.events
            .iter()
            .any(|e| e == "deleting surge replica lws-4"),
        "{:?}",
        sim.events
    );
}

#[test]
fn max_surge_status_sequence_at_ready_points() {
    // (readyReplicas, updatedReplicas) each time every existing group is ready:
    // (4,0) (5,1) (5,2) (5,3) (5,4) (4,4), as upstream's integration test checks.
    let mut sim = Sim::ready(lws_json(4, int(0), int(1), 0));
    sim.update_template();
    let plan = sim.reconcile();
    let first = plan.status.map(|s| (s.ready_replicas, s.updated_replicas));
    assert_eq!(first, Some((4, 0)));
    sim.settle();
    let mut seen = Vec::new();
    for index in [4, 3, 2, 1] {
        // Mark ready without letting the controller move on, then count.
        sim.pods.get_mut(&index).unwrap().1 = true;
        sim.reconcile();
        seen.push(sim.counts());
        sim.settle();
    }
    sim.pods.get_mut(&0).unwrap().1 = true;
    sim.settle();
    seen.push(sim.counts());
    assert_eq!(seen, vec![(5, 1), (5, 2), (5, 3), (5, 4), (4, 4)]);
}

#[test]
fn max_unavailable_one_and_max_surge_one() {
    let mut sim = Sim::ready(lws_json(4, int(1), int(1), 0));
    sim.update_template();
    sim.settle();
    assert_eq!(sim.parameters(), Some((3, 5)));
    sim.make_ready(4);
    assert_eq!(sim.parameters(), Some((2, 5)));
    sim.make_ready(3);
    assert_eq!(sim.parameters(), Some((1, 5)));
    sim.make_ready(2);
    assert_eq!(sim.parameters(), Some((0, 5)));
    // Only group 0 is left unready, within maxUnavailable: the surge group goes.
    sim.make_ready(1);
    assert_eq!(sim.parameters(), Some((0, 4)));
    sim.make_ready(0);
    assert_eq!(sim.parameters(), Some((0, 4)));
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
}

#[test]
fn docs_example_two_unavailable_two_surge() {
    let mut sim = Sim::ready(lws_json(4, int(2), int(2), 0));
    sim.update_template();
    sim.reconcile();
    assert_eq!(sim.parameters(), Some((4, 6)));
    sim.settle();
    assert_eq!(sim.parameters(), Some((2, 6)));
    sim.make_ready(4);
    sim.make_ready(5);
    sim.make_ready(3);
    sim.make_ready(2);
    assert_eq!(sim.parameters(), Some((0, 4)));
    assert!(
        sim.events
            .iter()
            .any(|e| e == "deleting surge replicas from lws-4 to lws-5"),
        "{:?}",
        sim.events
    );
    sim.make_ready(1);
    sim.make_ready(0);
    assert_eq!(sim.parameters(), Some((0, 4)));
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
}

#[test]
fn lws_partition_holds_old_groups() {
    let mut sim = Sim::ready(lws_json(5, int(1), int(0), 4));
    assert_eq!(sim.parameters(), Some((4, 5)));
    sim.update_template();
    sim.reconcile();
    assert_eq!(sim.parameters(), Some((5, 5)));
    sim.settle();
    assert_eq!(sim.parameters(), Some((4, 5)));
    sim.make_ready(4);
    assert_eq!(sim.old_groups(), vec![0, 1, 2, 3]);
    sim.set_partition(2);
    assert_eq!(sim.parameters(), Some((3, 5)));
    sim.make_ready(3);
    assert_eq!(sim.parameters(), Some((2, 5)));
    sim.make_ready(2);
    assert_eq!(sim.old_groups(), vec![0, 1]);
    // Not done while the LWS partition holds groups back: revisions are kept.
    assert_eq!(sim.revisions.len(), 2);
}

#[test]
fn lws_partition_with_surge_keeps_the_surge_group() {
    let mut sim = Sim::ready(lws_json(3, int(1), int(1), 2));
    sim.update_template();
    sim.settle();
    assert_eq!(sim.parameters(), Some((2, 4)));
    sim.make_ready(3);
    sim.make_ready(2);
    // The surge group remains while the partition holds groups 0 and 1 back.
    assert_eq!(sim.parameters(), Some((2, 4)));
    sim.set_partition(0);
    assert_eq!(sim.parameters().map(|p| p.0), Some(0));
    sim.make_ready(1);
    sim.make_ready(0);
    assert_eq!(sim.parameters(), Some((0, 3)));
    assert_eq!(sim.old_groups(), Vec::<i32>::new());
}

#[test]
fn replanning_a_settled_state_changes_nothing() {
    let mut sim = Sim::ready(lws_json(3, int(1), int(0), 0));
    let first = sim.reconcile();
    let second = sim.reconcile();
    assert_eq!(first, second);
    assert!(second.status.is_none());
    assert!(second.create.iter().all(|o| o["kind"] == "Service"));
}
