//! Unit tests of each rule, with upstream's pure test tables carried over
//! (`leaderworkerset_controller_test.go`, `pod_controller_test.go`, `revision_utils_test.go`).

use super::restart::decide_group_restarts;
use super::rollout::*;
use super::scenarios::{lws_json, Sim};
use super::status::*;
use super::*;
// Every decision in these tests is also checked through the module's decoding.
use super::seen::plan_reconcile;
use crate::labels::*;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::json;

fn now() -> Time {
    serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap()
}

fn state(ready: bool, updated: bool) -> ReplicaState {
    ReplicaState { ready, updated }
}

// --- rollout ---------------------------------------------------------------------------------

#[test]
fn calculate_rolling_update_replicas_table() {
    // (R, surge, unavailable, unready) -> replicas, upstream's TestCalculateRollingUpdateReplicas.
    for (r, surge, unavailable, unready, want) in [
        (1, 1, 0, 1, 2),
        (4, 2, 1, 2, 5),
        (2, 2, 1, 2, 3),
        (1, 1, 0, 0, 1),
        (1, 1, 1, 1, 1),
        (3, 0, 0, 1, 3),
    ] {
        assert_eq!(
            calculate_rolling_update_replicas(r, surge, unavailable, unready),
            want,
            "({r},{surge},{unavailable},{unready})"
        );
    }
}

#[test]
fn rollout_arithmetic_saturates_at_the_int32_bounds() {
    // Values an object stored under a CRD without our bounds may hold: no overflow (a panic in
    // a debug build, a wrapped, negative count in the module).
    assert_eq!(
        calculate_rolling_update_replicas(i32::MAX, i32::MAX, 0, i32::MAX),
        i32::MAX
    );
    assert_eq!(
        calculate_rolling_update_replicas(i32::MAX, 1, i32::MIN, 0),
        i32::MAX
    );
    let states = vec![state(true, false); 4];
    assert_eq!(rolling_update_partition(&states, 4, i32::MIN, 4), 4);
    assert_eq!(rolling_update_partition(&states, i32::MIN, 1, 4), 0);
}

fn leader_sts(replicas: i32, partition: i32, annotation: Option<&str>) -> StatefulSet {
    let mut value = json!({
        "metadata": {"name": "lws", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {}, "template": {},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}
    });
    if let Some(a) = annotation {
        value["metadata"]["annotations"] = json!({REPLICAS_ANNOTATION_KEY: a});
    }
    serde_json::from_value(value).unwrap()
}

/// Upstream's TestRollingUpdateParameters (size-1 groups, leader pods as the replica states).
#[test]
fn rolling_update_parameters_table() {
    let old = state(true, false);
    let new = state(true, true);
    type Case = (
        &'static str,
        LeaderWorkerSet,
        Option<StatefulSet>,
        bool,
        Vec<ReplicaState>,
        (i32, i32),
    );
    let cases: Vec<Case> = vec![
        (
            "no sts",
            lws_json(3, json!(1), json!(0), 0),
            None,
            false,
            vec![],
            (0, 3),
        ),
        (
            "no sts, user partition floors",
            lws_json(3, json!(1), json!(0), 2),
            None,
            false,
            vec![],
            (2, 3),
        ),
        (
            "finished",
            lws_json(3, json!(1), json!(0), 0),
            Some(leader_sts(3, 0, Some("3"))),
            false,
            vec![],
            (0, 3),
        ),
        (
            "scale up mid rollout keeps partition",
            lws_json(4, json!(1), json!(0), 0),
            Some(leader_sts(2, 2, Some("2"))),
            false,
            vec![],
            (2, 4),
        ),
        (
            "fresh update scales down and rolls",
            lws_json(2, json!(1), json!(0), 0),
            Some(leader_sts(3, 0, Some("3"))),
            true,
            vec![],
            (2, 2),
        ),
        (
            "steps down by maxUnavailable",
            lws_json(3, json!(1), json!(0), 0),
            Some(leader_sts(3, 3, Some("3"))),
            false,
            vec![old, old, old],
            (2, 3),
        ),
        (
            "updated tail lets it drop further",
            lws_json(3, json!(1), json!(0), 0),
            Some(leader_sts(3, 2, Some("3"))),
            false,
            vec![old, old, new],
            (1, 3),
        ),
        (
            "shrank mid rollout, one surge reclaimed",
            lws_json(2, json!(1), json!(1), 0),
            Some(leader_sts(3, 3, Some("3"))),
            false,
            vec![new, new, new],
            (3, 2),
        ),
        (
            "shrank mid rollout, several surge reclaimed",
            lws_json(2, json!(1), json!(2), 0),
            Some(leader_sts(4, 4, Some("4"))),
            false,
            vec![new, new, new, new],
            (4, 2),
        ),
    ];
    for (name, lws, sts, updated, states, want) in cases {
        let got = rolling_update_parameters(&lws, sts.as_ref(), updated, |_| states.clone());
        assert_eq!((got.partition, got.replicas), want, "{name}");
    }
}

/// Upstream's three surge cases that return before listing (scale up during a fresh update
/// creates no extra surge; a fresh update with surge bursts; a scale down with surge).
#[test]
fn rolling_update_parameters_surge_cases() {
    let no_states = |_| -> Vec<ReplicaState> { panic!("not listed") };
    // Scale up with a new revision: replicas R, no surge on top.
    let lws = lws_json(6, json!(1), json!(2), 0);
    let got = rolling_update_parameters(&lws, Some(&leader_sts(4, 0, Some("4"))), true, no_states);
    assert_eq!((got.partition, got.replicas), (4, 6));
    // Same size, new revision: surge to R + maxSurge, partition at R.
    let lws = lws_json(4, json!(1), json!(2), 0);
    let got = rolling_update_parameters(&lws, Some(&leader_sts(4, 0, Some("4"))), true, no_states);
    assert_eq!((got.partition, got.replicas), (4, 6));
    assert!(got.events.is_empty());
    // Scale down with a new revision: partition at the new R, surge kept.
    let lws = lws_json(2, json!(1), json!(1), 0);
    let got = rolling_update_parameters(&lws, Some(&leader_sts(4, 0, Some("4"))), true, no_states);
    assert_eq!((got.partition, got.replicas), (2, 3));
    assert_eq!(got.events[0].note, "deleting surge replica lws-3");
}

#[test]
fn missing_replicas_annotation_counts_as_a_replica_change() {
    let lws = lws_json(3, json!(1), json!(0), 0);
    let got = rolling_update_parameters(&lws, Some(&leader_sts(3, 3, None)), false, |_| {
        vec![state(true, true); 3]
    });
    assert_eq!((got.partition, got.replicas), (3, 3));
}

#[test]
fn partition_never_moves_backwards() {
    // The step alone would give 3, but the rollout is already at 1: it stays 1.
    let states = vec![state(true, false); 4];
    assert_eq!(rolling_update_partition(&states, 4, 1, 4), 3);
    assert_eq!(rolling_update_partition(&states, 4, 1, 1), 1);
}

#[test]
fn unready_groups_below_the_step_hold_the_partition() {
    // Group 0 is unready and old: it uses up the budget of 1, so nothing else may roll.
    let states = vec![
        state(false, false),
        state(true, false),
        state(true, false),
        state(true, false),
    ];
    assert_eq!(rolling_update_partition(&states, 4, 1, 4), 4);
    // With a budget of 2, one more group may go.
    assert_eq!(rolling_update_partition(&states, 4, 2, 4), 3);
    // No group ready: the unready groups above the step are rolled, never below the step.
    assert_eq!(
        rolling_update_partition(&[state(false, false); 4], 4, 1, 4),
        3
    );
}

#[test]
fn unready_and_continuous_counts() {
    let states = [
        state(true, true),
        state(false, true),
        state(true, true),
        state(true, true),
    ];
    assert_eq!(calculate_continuous_ready_replicas(&states), 2);
    assert_eq!(calculate_lws_unready_replicas(&states, 4), 1);
    // Missing indices count as unready.
    assert_eq!(calculate_lws_unready_replicas(&states[..2], 4), 3);
}

#[test]
fn budget_resolves_percentages() {
    let lws = lws_json(10, json!("25%"), json!("15%"), 0);
    let budget = RolloutBudget::of(&lws);
    assert_eq!((budget.max_unavailable, budget.max_surge), (2, 2));
    let lws = lws_json(2, json!(1), json!(5), 0);
    assert_eq!(RolloutBudget::of(&lws).max_surge, 2, "capped at replicas");
}

// --- status ----------------------------------------------------------------------------------

fn condition(type_: &str, status: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: String::new(),
        message: String::new(),
        last_transition_time: now(),
        observed_generation: Some(1),
    }
}

#[test]
fn exclusive_condition_types_table() {
    for (a, b, want) in [
        (AVAILABLE, PROGRESSING, true),
        (PROGRESSING, AVAILABLE, true),
        (PROGRESSING, PROGRESSING, false),
        (UPDATE_IN_PROGRESS, AVAILABLE, true),
        (AVAILABLE, UPDATE_IN_PROGRESS, true),
        (PROGRESSING, UPDATE_IN_PROGRESS, false),
        (UPDATE_IN_PROGRESS, PROGRESSING, false),
    ] {
        assert_eq!(is_exclusive(a, b), want, "{a} {b}");
    }
}

#[test]
fn set_condition_table() {
    // Upstream's TestSetCondition: (new, existing) -> should update.
    for (new, existing, want) in [
        (("Progressing", "True"), vec![("Available", "True")], true),
        (
            ("Progressing", "True"),
            vec![("Progressing", "False")],
            true,
        ),
        (("Progressing", "True"), vec![("Available", "False")], true),
        (("Progressing", "True"), vec![], true),
        (("Progressing", "False"), vec![("Available", "True")], false),
        (
            ("Progressing", "False"),
            vec![("Progressing", "False")],
            false,
        ),
    ] {
        let mut conditions: Vec<Condition> =
            existing.iter().map(|(t, s)| condition(t, s)).collect();
        let got = set_condition(&mut conditions, condition(new.0, new.1), 1, &now());
        assert_eq!(got, want, "{new:?} onto {existing:?}");
    }
}

#[test]
fn set_condition_flips_the_exclusive_one_and_stamps_the_generation() {
    let mut conditions = vec![condition(AVAILABLE, "True")];
    assert!(set_condition(
        &mut conditions,
        make_condition(PROGRESSING),
        2,
        &now()
    ));
    assert_eq!(conditions[0].status, "False");
    assert_eq!(conditions[1].type_, PROGRESSING);
    assert!(conditions.iter().all(|c| c.observed_generation == Some(2)));
    // Same status, same generation: nothing to do, reason changes are ignored.
    let mut changed = make_condition(PROGRESSING);
    changed.reason = "Other".into();
    assert!(!set_condition(&mut conditions, changed, 2, &now()));
}

#[test]
fn set_conditions_stops_at_the_first_change() {
    let mut conditions = vec![condition(AVAILABLE, "True")];
    let wanted = [
        make_condition(UPDATE_IN_PROGRESS),
        make_condition(PROGRESSING),
    ];
    assert!(set_conditions(&mut conditions, &wanted, 1, &now()));
    assert!(
        conditions.iter().all(|c| c.type_ != PROGRESSING),
        "Progressing comes next pass"
    );
    assert!(set_conditions(&mut conditions, &wanted, 1, &now()));
    assert!(conditions.iter().any(|c| c.type_ == PROGRESSING));
    assert!(!set_conditions(&mut conditions, &wanted, 1, &now()));
}

#[test]
fn new_lws_is_progressing_without_update_in_progress() {
    let lws = lws_json(2, json!(1), json!(0), 0);
    let plan = plan_reconcile(&Sim::ready(lws.clone()).input());
    assert!(plan.status.is_none(), "settled");
    let input = ReconcileInput {
        lws,
        now: now(),
        revisions: vec![],
        leader_stateful_set: None,
        worker_stateful_sets: vec![],
        leader_pods: vec![],
        worker_pods: vec![],
        services: vec![],
        nodes: vec![],
        pod_groups: vec![],
        scheduler_provider: None,
    };
    let plan = plan_reconcile(&input);
    let status = plan.status.unwrap();
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, [PROGRESSING]);
    assert_eq!(status.conditions[0].last_transition_time, now());
    assert_eq!(
        status.hpa_pod_selector.as_deref(),
        Some("leaderworkerset.sigs.k8s.io/name=lws,leaderworkerset.sigs.k8s.io/worker-index=0")
    );
    assert_eq!(status.observed_generation, Some(1));
    let notes: Vec<&str> = plan.events.iter().map(|e| e.note.as_str()).collect();
    assert!(
        notes.contains(&"Replicas are progressing, with 0 groups ready of total 2 groups"),
        "{notes:?}"
    );
    assert!(
        notes.contains(&"Created leader statefulset lws"),
        "{notes:?}"
    );
    assert!(notes
        .iter()
        .any(|n| n.starts_with("Creating revision with key ")
            && n.ends_with(" for a newly created LeaderWorkerSet")));
}

#[test]
fn available_event_text() {
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    assert!(
        sim.events
            .iter()
            .any(|e| e == "All replicas are ready, with 2 groups ready of total 2 groups"),
        "{:?}",
        sim.events
    );
    // Conditions cleared by hand: Progressing/Available set again.
    sim.lws.status.as_mut().unwrap().conditions.clear();
    let plan = sim.reconcile();
    assert_eq!(plan.status.unwrap().conditions[0].type_, AVAILABLE);
}

// --- revisions -------------------------------------------------------------------------------

#[test]
fn missing_revision_is_created_with_the_statefulset_key() {
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    let key = sim.current_key();
    sim.revisions.clear();
    let plan = sim.reconcile();
    let created: Vec<&serde_json::Value> = plan
        .create
        .iter()
        .filter(|o| o["kind"] == "ControllerRevision")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["metadata"]["labels"][REVISION_KEY], key.as_str());
    assert_eq!(
        created[0]["metadata"]["name"],
        format!("lws-{key}-1").as_str()
    );
    assert_eq!(created[0]["revision"], 1);
    assert_eq!(
        created[0]["metadata"]["ownerReferences"][0]["uid"],
        "lws-uid"
    );
    assert!(plan.events.iter().any(|e| e.note
        == format!("Creating missing revision with key {key} for existing LeaderWorkerSet")));
    // Not an update: no rollout starts.
    assert_eq!(sim.parameters(), Some((0, 2)));
}

#[test]
fn updated_template_creates_the_next_revision() {
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    sim.update_template();
    let key = sim.current_key();
    let plan = sim.reconcile();
    let created = plan
        .create
        .iter()
        .find(|o| o["kind"] == "ControllerRevision")
        .unwrap();
    assert_eq!(created["revision"], 2);
    assert_eq!(created["metadata"]["name"], format!("lws-{key}-2").as_str());
    assert!(plan
        .events
        .iter()
        .any(|e| e.note == format!("Creating revision with key {key} for updated LWS")));
    // A rollout starting is no "Updating replicas" step.
    assert!(!plan.events.iter().any(|e| e.reason == "GroupsUpdating"
        && e.action == "Update"
        && e.note.starts_with("Updating")));
}

#[test]
fn a_leader_partition_of_i32_min_is_an_event_not_an_overflow() {
    // Found by make fuzz (ops_native: attempt to subtract with overflow in
    // leader_statefulset_events); Go's int32 arithmetic wraps, so does the message.
    let lws = sized(3);
    let mut sts = first_leader_statefulset(&lws);
    sts.spec
        .as_mut()
        .unwrap()
        .update_strategy
        .get_or_insert_with(Default::default)
        .rolling_update
        .get_or_insert_with(Default::default)
        .partition = Some(i32::MIN);
    let events = leader_statefulset_events(&lws, Some(&sts), false, 0);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].note,
        "Updating replicas 0 to 2147483647 (inclusive)"
    );
}

#[test]
fn replicas_change_is_not_a_new_revision() {
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    sim.lws.spec.replicas = Some(3);
    let plan = sim.reconcile();
    assert!(!plan
        .create
        .iter()
        .any(|o| o["kind"] == "ControllerRevision"));
}

#[test]
fn revision_written_by_another_encoder_is_not_an_update() {
    // Stored with keys in another order and whitespace: same patch semantically.
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    let data = sim.revisions[0].data.clone().unwrap();
    let reordered: serde_json::Value =
        serde_json::from_str(&serde_json::to_string_pretty(&data.0).unwrap()).unwrap();
    sim.revisions[0].data = Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
        reordered,
    ));
    let plan = sim.reconcile();
    assert!(plan
        .create
        .iter()
        .all(|o| o["kind"] != "ControllerRevision"));
}

#[test]
fn revisions_of_other_owners_are_ignored_and_kept() {
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    let mut foreign = sim.revisions[0].clone();
    foreign.metadata.name = Some("lws-other-7".into());
    foreign.revision = 7;
    foreign
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(REVISION_KEY.into(), "other".into());
    foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into();
    sim.revisions.push(foreign);
    sim.update_template();
    let plan = sim.reconcile();
    let created = plan
        .create
        .iter()
        .find(|o| o["kind"] == "ControllerRevision")
        .unwrap();
    assert_eq!(
        created["revision"], 2,
        "numbered among our own revisions only"
    );
    sim.roll_out();
    assert!(sim
        .revisions
        .iter()
        .any(|r| r.metadata.name.as_deref() == Some("lws-other-7")));
    assert_eq!(sim.revisions.len(), 2);
}

// --- services --------------------------------------------------------------------------------

fn bare_input(lws: LeaderWorkerSet) -> ReconcileInput {
    ReconcileInput {
        lws,
        now: now(),
        revisions: vec![],
        leader_stateful_set: None,
        worker_stateful_sets: vec![],
        leader_pods: vec![],
        worker_pods: vec![],
        services: vec![],
        nodes: vec![],
        pod_groups: vec![],
        scheduler_provider: None,
    }
}

fn kinds(plan: &ReconcilePlan) -> Vec<(String, String)> {
    plan.create
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn shared_service_is_created_once() {
    let lws = lws_json(2, json!(1), json!(0), 0);
    let mut input = bare_input(lws);
    let plan = plan_reconcile(&input);
    assert!(kinds(&plan).contains(&("Service".into(), "lws".into())));
    input.services =
        vec![serde_json::from_value::<Service>(json!({"metadata": {"name": "lws"}})).unwrap()];
    let plan = plan_reconcile(&input);
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "Service"));
}

/// A size-2 LWS with its revision, leader sts and the given leader pods.
fn group_input(lws: LeaderWorkerSet, leaders: Vec<Pod>) -> ReconcileInput {
    let mut sim = Sim::ready(lws_json(2, json!(1), json!(0), 0));
    sim.lws = lws;
    let mut input = sim.input();
    let key = crate::revision::revision_key(&input.lws);
    input.revisions = vec![super::revisions::build_revision(
        &input.lws,
        &key,
        &crate::revision::revision_patch(&input.lws),
        1,
    )];
    input.leader_stateful_set.as_mut().unwrap().metadata.labels =
        Some([(REVISION_KEY.to_string(), key)].into());
    input.leader_pods = leaders;
    input
}

fn sized(size: i32) -> LeaderWorkerSet {
    let mut lws = lws_json(2, json!(1), json!(0), 0);
    lws.spec.leader_worker_template.size = Some(size);
    lws
}

fn leader(lws: &LeaderWorkerSet, index: i32, extra: serde_json::Value) -> Pod {
    let key = crate::revision::revision_key(lws);
    let mut value = json!({
        "metadata": {"name": format!("lws-{index}"), "namespace": "default", "uid": format!("leader-uid-{index}"),
            "labels": {SET_NAME_LABEL_KEY: "lws", WORKER_INDEX_LABEL_KEY: "0", GROUP_INDEX_LABEL_KEY: index.to_string(),
                GROUP_UNIQUE_HASH_LABEL_KEY: "gk", REVISION_KEY: key}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    });
    merge(&mut value, extra);
    serde_json::from_value(value).unwrap()
}

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

#[test]
fn unique_per_replica_services_skip_deleting_leaders() {
    let mut lws = sized(2);
    lws.spec.network_config = Some(crate::api::NetworkConfig {
        subdomain_policy: Some(crate::api::SubdomainPolicy::UniquePerReplica),
    });
    let leaders = vec![
        leader(&lws, 0, json!({})),
        leader(
            &lws,
            1,
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        ),
    ];
    let plan = plan_reconcile(&group_input(lws, leaders));
    let services: Vec<String> = kinds(&plan)
        .into_iter()
        .filter(|(k, _)| k == "Service")
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        services,
        ["lws-0"],
        "no shared Service, none for the deleting leader"
    );
}

// --- worker StatefulSets ---------------------------------------------------------------------

#[test]
fn worker_statefulset_is_created_from_the_leader_revision() {
    let lws = sized(3);
    let leaders = vec![leader(&lws, 0, json!({}))];
    let mut input = group_input(lws.clone(), leaders);
    // The template moved on since the leader's revision: workers still use the old one.
    input
        .lws
        .spec
        .leader_worker_template
        .worker_template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("v9".into());
    let plan = plan_reconcile(&input);
    let sts = plan
        .create
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .unwrap();
    assert_eq!(sts["metadata"]["name"], "lws-0");
    assert_eq!(sts["spec"]["replicas"], 2);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "v1"
    );
    assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], "leader-uid-0");
    assert!(plan
        .events
        .iter()
        .any(|e| e.note == "Created worker statefulset for leader pod lws-0"));
}

#[test]
fn existing_worker_statefulset_is_never_recreated() {
    let lws = sized(2);
    let mut input = group_input(lws.clone(), vec![leader(&lws, 0, json!({}))]);
    input.worker_stateful_sets =
        vec![serde_json::from_value(json!({"metadata": {"name": "lws-0"}})).unwrap()];
    let plan = plan_reconcile(&input);
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
}

#[test]
fn missing_leader_revision_requeues_after_one_second() {
    let lws = sized(2);
    let mut input = group_input(
        lws.clone(),
        vec![leader(
            &lws,
            0,
            json!({"metadata": {"labels": {REVISION_KEY: "gone"}}}),
        )],
    );
    let plan = plan_reconcile(&input);
    assert_eq!(plan.requeue_after_seconds, Some(1));
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
    input.leader_pods.clear();
    assert_eq!(plan_reconcile(&input).requeue_after_seconds, None);
}

#[test]
fn leader_ready_startup_waits_for_the_leader() {
    let mut lws = sized(2);
    lws.spec.startup_policy = Some(crate::api::StartupPolicy::LeaderReady);
    let unready = leader(
        &lws,
        0,
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    let plan = plan_reconcile(&group_input(lws.clone(), vec![unready]));
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
    let plan = plan_reconcile(&group_input(lws.clone(), vec![leader(&lws, 0, json!({}))]));
    assert!(kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
}

#[test]
fn exclusive_placement_pins_workers_to_the_leader_domain() {
    let mut lws = sized(2);
    lws.metadata.annotations =
        Some([(EXCLUSIVE_KEY_ANNOTATION_KEY.to_string(), "pool".to_string())].into());
    // Unscheduled leader: only the leader sts exists.
    let plan = plan_reconcile(&group_input(lws.clone(), vec![leader(&lws, 0, json!({}))]));
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
    // Scheduled, node labelled.
    let scheduled = leader(&lws, 0, json!({"spec": {"nodeName": "n1"}}));
    let mut input = group_input(lws.clone(), vec![scheduled]);
    let plan = plan_reconcile(&input);
    assert_eq!(plan.requeue_after_seconds, Some(5), "node not observed");
    assert!(plan
        .events
        .iter()
        .any(|e| e.note
            == "Failed to create worker statefulset for leader pod lws-0: node n1 not found"));
    input.nodes = vec![serde_json::from_value::<Node>(
        json!({"metadata": {"name": "n1", "labels": {"other": "x"}}}),
    )
    .unwrap()];
    let plan = plan_reconcile(&input);
    assert!(plan
        .events
        .iter()
        .any(|e| e.note.ends_with("node does not have topology label: pool")));
    input.nodes = vec![serde_json::from_value::<Node>(
        json!({"metadata": {"name": "n1", "labels": {"pool": "a"}}}),
    )
    .unwrap()];
    let plan = plan_reconcile(&input);
    let sts = plan
        .create
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .unwrap();
    assert_eq!(sts["spec"]["template"]["spec"]["nodeSelector"]["pool"], "a");
}

#[test]
fn leader_name_annotation_is_refused_with_upstreams_warning() {
    let lws = sized(2);
    let bad = leader(
        &lws,
        0,
        json!({"metadata": {"annotations": {LEADER_POD_NAME_ANNOTATION_KEY: "x"}}}),
    );
    let plan = plan_reconcile(&group_input(lws, vec![bad]));
    let event = plan
        .events
        .iter()
        .find(|e| e.reason == "FailedCreate")
        .unwrap();
    assert_eq!(event.type_, EventType::Warning);
    assert_eq!(
        event.note,
        "leader pod default/lws-0 contains mistake annotation 'leaderworkerset.sigs.k8s.io/leader-name': requires Kubernetes ≥v1.27 or v1.26 with StatefulSetStartOrdinal feature"
    );
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
}

#[test]
fn volcano_pod_group_sums_requests() {
    let mut lws = sized(3);
    lws.metadata.annotations = Some(
        [
            (
                VOLCANO_QUEUE_NAME_ANNOTATION_KEY.to_string(),
                "q".to_string(),
            ),
            ("volcano.sh/x".to_string(), "y".to_string()),
            ("other".to_string(), "z".to_string()),
        ]
        .into(),
    );
    lws.spec
        .leader_worker_template
        .worker_template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .resources = Some(
        serde_json::from_value(json!({"requests": {"cpu": "250m", "memory": "512Mi"}})).unwrap(),
    );
    let mut input = group_input(
        lws.clone(),
        vec![leader(
            &lws,
            0,
            json!({"spec": {"schedulerName": "volcano"}}),
        )],
    );
    input.scheduler_provider = Some("volcano".into());
    let plan = plan_reconcile(&input);
    let key = crate::revision::revision_key(&lws);
    let group = plan
        .create
        .iter()
        .find(|o| o["kind"] == "PodGroup")
        .unwrap();
    assert_eq!(group["metadata"]["name"], format!("lws-0-{key}").as_str());
    assert_eq!(group["spec"]["minMember"], 3);
    assert_eq!(group["spec"]["queue"], "q");
    assert_eq!(group["spec"]["minResources"]["cpu"], "1");
    assert_eq!(
        group["spec"]["minResources"]["memory"],
        (2u64 << 30).to_string().as_str()
    );
    assert_eq!(
        group["metadata"]["annotations"],
        json!({"volcano.sh/x": "y"})
    );
    input.pod_groups = vec![json!(format!("lws-0-{key}"))];
    assert!(!plan_reconcile(&input)
        .create
        .iter()
        .any(|o| o["kind"] == "PodGroup"));
}

/// Upstream's issue #630: a PodGroup only for groups whose pods Volcano schedules, the leader's
/// or the workers'.
#[test]
fn volcano_pod_group_only_for_groups_volcano_schedules() {
    let pod_groups = |lws: &LeaderWorkerSet, leader_extra: serde_json::Value| {
        let mut input = group_input(lws.clone(), vec![leader(lws, 0, leader_extra)]);
        input.scheduler_provider = Some("volcano".into());
        plan_reconcile(&input)
            .create
            .iter()
            .filter(|o| o["kind"] == "PodGroup")
            .count()
    };
    let lws = sized(3);
    assert_eq!(pod_groups(&lws, json!({})), 0, "default scheduler");
    assert_eq!(
        pod_groups(&lws, json!({"spec": {"schedulerName": "other"}})),
        0
    );
    assert_eq!(
        pod_groups(&lws, json!({"spec": {"schedulerName": "volcano"}})),
        1
    );
    let mut workers_only = sized(3);
    workers_only
        .spec
        .leader_worker_template
        .worker_template
        .spec
        .as_mut()
        .unwrap()
        .scheduler_name = Some("volcano".into());
    assert_eq!(
        pod_groups(&workers_only, json!({})),
        1,
        "workers use Volcano"
    );
    let mut single = sized(1);
    single
        .spec
        .leader_worker_template
        .worker_template
        .spec
        .as_mut()
        .unwrap()
        .scheduler_name = Some("volcano".into());
    assert_eq!(pod_groups(&single, json!({})), 0, "size 1 has no workers");
}

#[test]
fn quantities_parse_to_nano_units() {
    use super::pod_group::{format_nanos, parse_nanos};
    assert_eq!(parse_nanos("500m"), Some(500_000_000));
    assert_eq!(parse_nanos("1.5"), Some(1_500_000_000));
    assert_eq!(parse_nanos("1Ki"), Some(1024 * 1_000_000_000));
    assert_eq!(parse_nanos("1e3"), Some(1000 * 1_000_000_000));
    assert_eq!(parse_nanos("x"), None);
    assert_eq!(format_nanos(1_500_000_000), "1500m");
}

// --- restart policy --------------------------------------------------------------------------

fn worker(index: i32, worker_index: i32, key: &str, extra: serde_json::Value) -> Pod {
    let mut value = json!({
        "metadata": {"name": format!("lws-{index}-{worker_index}"), "namespace": "default", "uid": format!("w-{index}-{worker_index}"),
            "labels": {SET_NAME_LABEL_KEY: "lws", WORKER_INDEX_LABEL_KEY: worker_index.to_string(),
                GROUP_INDEX_LABEL_KEY: index.to_string(), REVISION_KEY: key},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": format!("lws-{index}"), "uid": format!("sts-{index}"), "controller": true}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0}]}
    });
    merge(&mut value, extra);
    serde_json::from_value(value).unwrap()
}

fn worker_sts(index: i32, leader_uid: &str) -> StatefulSet {
    serde_json::from_value(json!({"metadata": {"name": format!("lws-{index}"), "uid": format!("sts-{index}"),
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": format!("lws-{index}"), "uid": leader_uid, "controller": true}]}}))
    .unwrap()
}

fn restarted() -> serde_json::Value {
    json!({"status": {"containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 1}]}})
}

fn restart_input(lws: LeaderWorkerSet, workers: Vec<Pod>) -> ReconcileInput {
    let key = crate::revision::revision_key(&lws);
    let mut input = group_input(lws.clone(), vec![leader(&lws, 0, json!({}))]);
    input.worker_stateful_sets = vec![worker_sts(0, "leader-uid-0")];
    input.worker_pods = workers;
    let _ = key;
    input
}

fn planned_deletes(input: &ReconcileInput) -> Vec<ObjectRef> {
    let observed = observed::Observed::new(input);
    let mut counts = super::budget::RestartCounts::of(&input.lws);
    decide_group_restarts(&input.lws, &observed, &mut counts, &input.now).delete
}

#[test]
fn restarted_worker_recreates_the_group_once() {
    let lws = sized(3);
    let key = crate::revision::revision_key(&lws);
    let input = restart_input(
        lws,
        vec![
            worker(0, 1, &key, restarted()),
            worker(0, 2, &key, restarted()),
        ],
    );
    let plan = plan_reconcile(&input);
    let pods: Vec<&ObjectRef> = plan.delete.iter().filter(|d| d.kind == "Pod").collect();
    assert_eq!(pods.len(), 1, "one deletion per leader");
    assert_eq!(pods[0].name, "lws-0");
    assert_eq!(pods[0].uid.as_deref(), Some("leader-uid-0"));
    assert_eq!(pods[0].propagation_policy.as_deref(), Some("Foreground"));
    let event = plan
        .events
        .iter()
        .find(|e| e.reason == "RecreateGroup")
        .unwrap();
    assert_eq!(event.action, "Delete");
    assert_eq!(
        event.note,
        "Worker pod lws-0-1 failed, deleted leader pod lws-0 to recreate group 0"
    );
    // No worker StatefulSet for a group being recreated.
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
}

#[test]
fn restart_policy_none_leaves_the_group() {
    let mut lws = sized(3);
    lws.spec.leader_worker_template.restart_policy = Some(crate::api::RestartPolicy::None);
    let key = crate::revision::revision_key(&lws);
    let input = restart_input(
        lws,
        vec![
            worker(0, 1, &key, restarted()),
            worker(0, 2, &key, json!({})),
        ],
    );
    assert!(planned_deletes(&input).is_empty());
}

#[test]
fn leader_restart_and_deleted_worker_both_trigger() {
    let lws = sized(2);
    let key = crate::revision::revision_key(&lws);
    let mut input = restart_input(
        lws.clone(),
        vec![worker(
            0,
            1,
            &key,
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        )],
    );
    assert_eq!(planned_deletes(&input).len(), 1);
    input.worker_pods = vec![worker(0, 1, &key, json!({}))];
    input.leader_pods = vec![leader(&lws, 0, restarted())];
    assert_eq!(planned_deletes(&input).len(), 1);
}

#[test]
fn pending_group_is_left_alone_after_start_policy() {
    let mut lws = sized(3);
    lws.spec.leader_worker_template.restart_policy =
        Some(crate::api::RestartPolicy::RecreateGroupAfterStart);
    let key = crate::revision::revision_key(&lws);
    let pending = worker(0, 2, &key, json!({"status": {"phase": "Pending"}}));
    let input = restart_input(lws.clone(), vec![worker(0, 1, &key, restarted()), pending]);
    assert!(planned_deletes(&input).is_empty());
    // A missing pod also counts as pending.
    let input = restart_input(lws.clone(), vec![worker(0, 1, &key, restarted())]);
    assert!(planned_deletes(&input).is_empty());
    let input = restart_input(
        lws,
        vec![
            worker(0, 1, &key, restarted()),
            worker(0, 2, &key, json!({})),
        ],
    );
    assert_eq!(planned_deletes(&input).len(), 1);
    // The legacy annotation turns the guard on for RecreateGroupOnPodRestart too.
    let mut lws = sized(3);
    lws.metadata.annotations = Some(
        [(
            RECREATE_GROUP_AFTER_START_ANNOTATION_KEY.to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    let pending = worker(0, 2, &key, json!({"status": {"phase": "Pending"}}));
    let input = restart_input(lws, vec![worker(0, 1, &key, restarted()), pending]);
    assert!(planned_deletes(&input).is_empty());
}

#[test]
fn stale_or_foreign_workers_do_not_recreate_the_group() {
    let lws = sized(2);
    let key = crate::revision::revision_key(&lws);
    // Another revision than the leader's (mid-rollout).
    let input = restart_input(lws.clone(), vec![worker(0, 1, "old", restarted())]);
    assert!(planned_deletes(&input).is_empty());
    // Owned by a worker sts of a previous leader incarnation.
    let mut input = restart_input(lws.clone(), vec![worker(0, 1, &key, restarted())]);
    input.worker_stateful_sets = vec![worker_sts(0, "previous-leader-uid")];
    assert!(planned_deletes(&input).is_empty());
    // Owned directly by the leader pod.
    let direct = worker(
        0,
        1,
        &key,
        json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "lws-0", "uid": "leader-uid-0", "controller": true}]}}),
    );
    let mut with_restart = direct;
    with_restart
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .restart_count = 1;
    let input = restart_input(lws.clone(), vec![with_restart]);
    assert_eq!(planned_deletes(&input).len(), 1);
    // The leader is already being deleted: nothing more to send.
    let mut input = restart_input(lws.clone(), vec![worker(0, 1, &key, restarted())]);
    input.leader_pods = vec![leader(
        &lws,
        0,
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
    )];
    assert!(planned_deletes(&input).is_empty());
}

// --- pod termination policy ------------------------------------------------------------------

fn with_policy(
    mut lws: LeaderWorkerSet,
    policy: Option<crate::api::PodTerminationPolicy>,
) -> LeaderWorkerSet {
    lws.spec.pod_termination_policy = policy;
    lws
}

fn parallel(lws: LeaderWorkerSet) -> LeaderWorkerSet {
    with_policy(lws, Some(crate::api::PodTerminationPolicy::Parallel))
}

fn deleting() -> serde_json::Value {
    json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
}

fn terminating(mut sts: StatefulSet) -> StatefulSet {
    sts.metadata.deletion_timestamp = Some(now());
    sts
}

fn statefulset_deletes(plan: &ReconcilePlan) -> Vec<&ObjectRef> {
    plan.delete
        .iter()
        .filter(|d| d.kind == "StatefulSet")
        .collect()
}

fn foreground_sts_delete(name: &str, uid: &str) -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        namespace: "default".into(),
        name: name.into(),
        uid: Some(uid.into()),
        propagation_policy: Some("Foreground".into()),
    }
}

/// Group 0's leader is deleting, group 1's is not; both have their worker StatefulSet.
fn one_leader_deleting(lws: LeaderWorkerSet) -> ReconcileInput {
    let leaders = vec![leader(&lws, 0, deleting()), leader(&lws, 1, json!({}))];
    let mut input = group_input(lws, leaders);
    input.worker_stateful_sets = vec![worker_sts(0, "leader-uid-0"), worker_sts(1, "leader-uid-1")];
    input
}

#[test]
fn parallel_deleting_leader_foreground_deletes_its_worker_statefulset() {
    let plan = plan_reconcile(&one_leader_deleting(parallel(sized(2))));
    assert_eq!(
        statefulset_deletes(&plan),
        [&foreground_sts_delete("lws-0", "sts-0")],
        "only the deleting leader's workers, pinned to their uid"
    );
    assert_eq!(plan.requeue_after_seconds, None);
}

#[test]
fn parallel_leader_leaves_a_worker_statefulset_it_does_not_own() {
    let lws = parallel(sized(2));
    // A previous incarnation of the leader owns it (the collector's business).
    let mut input = one_leader_deleting(lws.clone());
    input.worker_stateful_sets[0] = worker_sts(0, "previous-leader-uid");
    assert!(statefulset_deletes(&plan_reconcile(&input)).is_empty());
    // Owned by no pod at all.
    let mut input = one_leader_deleting(lws.clone());
    input.worker_stateful_sets[0].metadata.owner_references = None;
    assert!(statefulset_deletes(&plan_reconcile(&input)).is_empty());
    // Already terminating: not deleted twice.
    let mut input = one_leader_deleting(lws);
    input.worker_stateful_sets[0] = terminating(worker_sts(0, "leader-uid-0"));
    assert!(statefulset_deletes(&plan_reconcile(&input)).is_empty());
}

#[test]
fn default_termination_leaves_the_plan_unchanged() {
    // Unset is what every LWS stored before the field existed reads as.
    let unset = plan_reconcile(&one_leader_deleting(sized(2)));
    assert!(statefulset_deletes(&unset).is_empty(), "{:?}", unset.delete);
    let default = with_policy(sized(2), Some(crate::api::PodTerminationPolicy::Default));
    assert_eq!(plan_reconcile(&one_leader_deleting(default.clone())), unset);
    // A terminating worker StatefulSet under a new leader: left alone, no requeue.
    let mut input = group_input(default.clone(), vec![leader(&default, 0, json!({}))]);
    input.worker_stateful_sets = vec![terminating(worker_sts(0, "previous-leader-uid"))];
    let plan = plan_reconcile(&input);
    assert_eq!(plan.requeue_after_seconds, None);
    assert!(!kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"));
    // A deleting Default LWS: the collector's work.
    let mut lws = default;
    lws.metadata.deletion_timestamp = Some(now());
    let plan = plan_reconcile(&one_leader_deleting(lws));
    assert_eq!(
        plan,
        ReconcilePlan {
            reasons: vec!["LeaderWorkerSet is being deleted".into()],
            ..ReconcilePlan::default()
        }
    );
}

#[test]
fn leader_created_under_parallel_keeps_it_after_the_lws_changes() {
    let lws = with_policy(sized(2), Some(crate::api::PodTerminationPolicy::Default));
    let annotated = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z",
        "annotations": {POD_TERMINATION_POLICY_ANNOTATION_KEY: "Parallel"}}});
    let mut input = one_leader_deleting(lws.clone());
    input.leader_pods[0] = leader(&lws, 0, annotated);
    assert_eq!(
        statefulset_deletes(&plan_reconcile(&input)),
        [&foreground_sts_delete("lws-0", "sts-0")]
    );
}

#[test]
fn deleting_parallel_lws_foreground_deletes_every_worker_statefulset() {
    let mut lws = parallel(sized(2));
    lws.metadata.deletion_timestamp = Some(now());
    let mut input = group_input(
        lws.clone(),
        vec![leader(&lws, 0, json!({})), leader(&lws, 1, json!({}))],
    );
    input.worker_stateful_sets = vec![
        worker_sts(0, "leader-uid-0"),
        worker_sts(1, "leader-uid-1"),
        terminating(worker_sts(2, "leader-uid-2")),
    ];
    let plan = plan_reconcile(&input);
    assert_eq!(
        plan.delete,
        [
            foreground_sts_delete("lws-0", "sts-0"),
            foreground_sts_delete("lws-1", "sts-1")
        ],
        "every worker StatefulSet not already terminating"
    );
    assert!(plan.apply.is_empty() && plan.create.is_empty() && plan.status.is_none());
}

#[test]
fn parallel_leaders_of_a_deleting_leader_statefulset_take_their_workers() {
    let mut input = one_leader_deleting(parallel(sized(2)));
    input
        .leader_stateful_set
        .as_mut()
        .unwrap()
        .metadata
        .deletion_timestamp = Some(now());
    let plan = plan_reconcile(&input);
    assert_eq!(plan.delete, [foreground_sts_delete("lws-0", "sts-0")]);
    assert_eq!(plan.requeue_after_seconds, Some(5));
}

#[test]
fn new_parallel_leader_waits_for_its_terminating_worker_statefulset() {
    let lws = parallel(sized(2));
    let mut input = group_input(lws.clone(), vec![leader(&lws, 0, json!({}))]);
    input.worker_stateful_sets = vec![terminating(worker_sts(0, "previous-leader-uid"))];
    let plan = plan_reconcile(&input);
    assert_eq!(plan.requeue_after_seconds, Some(1));
    assert!(
        !kinds(&plan).iter().any(|(k, _)| k == "StatefulSet"),
        "not recreated"
    );
    assert!(statefulset_deletes(&plan).is_empty(), "{:?}", plan.delete);
    assert!(
        plan.reasons
            .iter()
            .any(|r| r == "lws-0: worker StatefulSet still terminating"),
        "{:?}",
        plan.reasons
    );
    // Once it is gone, the group gets its new one.
    input.worker_stateful_sets.clear();
    let plan = plan_reconcile(&input);
    assert_eq!(plan.requeue_after_seconds, None);
    assert!(kinds(&plan).contains(&("StatefulSet".into(), "lws-0".into())));
}

// --- entry point -----------------------------------------------------------------------------

#[test]
fn deleting_lws_or_leader_statefulset_plans_nothing() {
    let mut lws = lws_json(2, json!(1), json!(0), 0);
    lws.metadata.deletion_timestamp = Some(now());
    assert!(plan_reconcile(&bare_input(lws)).apply.is_empty());
    let mut input = Sim::ready(lws_json(2, json!(1), json!(0), 0)).input();
    input
        .leader_stateful_set
        .as_mut()
        .unwrap()
        .metadata
        .deletion_timestamp = Some(now());
    let plan = plan_reconcile(&input);
    assert!(plan.apply.is_empty());
    assert_eq!(plan.requeue_after_seconds, Some(5));
}

#[test]
fn input_order_does_not_change_the_plan() {
    let lws = sized(2);
    let mut input = group_input(
        lws.clone(),
        vec![leader(&lws, 0, json!({})), leader(&lws, 1, json!({}))],
    );
    let forward = serde_json::to_vec(&plan_reconcile(&input)).unwrap();
    input.leader_pods.reverse();
    let backward = serde_json::to_vec(&plan_reconcile(&input)).unwrap();
    assert_eq!(forward, backward);
}

#[test]
fn wire_names_are_camel_case() {
    let plan = plan_reconcile(&bare_input(lws_json(1, json!(1), json!(0), 0)));
    let value = serde_json::to_value(&plan).unwrap();
    for key in ["apply", "create", "delete", "status", "events"] {
        assert!(value.get(key).is_some(), "{key}");
    }
    assert_eq!(value["events"][0]["type"], "Normal");
    let input: ReconcileInput = serde_json::from_value(json!({
        "lws": {"metadata": {"name": "x"}}, "now": "2026-01-01T00:00:00Z",
        "leaderStatefulSet": null, "workerStatefulSets": [], "leaderPods": [], "workerPods": [],
        "podGroups": ["a"], "schedulerProvider": "volcano"
    }))
    .unwrap();
    assert_eq!(input.scheduler_provider.as_deref(), Some("volcano"));
}

#[test]
fn reconcile_operation_round_trips_json() {
    let input = serde_json::to_vec(&bare_input(lws_json(1, json!(1), json!(0), 0))).unwrap();
    let out = crate::ops::call(crate::ops::names::RECONCILE, &input).unwrap();
    let plan: ReconcilePlan = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        plan,
        plan_reconcile(&bare_input(lws_json(1, json!(1), json!(0), 0)))
    );
    assert!(matches!(
        crate::ops::call(crate::ops::names::RECONCILE, br#"{"lws": 3}"#),
        Err(crate::ops::OpError::BadPayload { .. })
    ));
}

/// `lws expand` renders the leader StatefulSet of the first reconcile, partition included.
#[test]
fn expand_renders_the_leader_statefulset_of_the_first_reconcile() {
    for (replicas, partition) in [(3, 0), (4, 2), (2, 5)] {
        let lws = lws_json(replicas, json!(1), json!(1), partition);
        let sim = Sim::new(lws.clone());
        let plan = plan_reconcile(&sim.input());
        let applied = plan
            .apply
            .iter()
            .find(|o| o["kind"] == "StatefulSet")
            .expect("the first reconcile applies the leader StatefulSet");
        let expanded = crate::expand::expand(&lws);
        assert_eq!(
            &expanded[0], applied,
            "replicas {replicas}, partition {partition}"
        );
        assert_eq!(
            applied["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            json!(partition)
        );
    }
}

/// A Hash-mode LWS stored by another controller gets no leader StatefulSet from us.
#[test]
fn unsupported_features_are_left_alone_with_a_warning() {
    let mut lws = lws_json(2, json!(1), json!(0), 0);
    lws.spec.group_identity = Some(crate::api::GroupIdentity::Hash);
    let sim = Sim::new(lws);
    let plan = plan_reconcile(&sim.input());
    assert!(plan.apply.is_empty() && plan.create.is_empty() && plan.delete.is_empty());
    assert!(plan.status.is_none(), "{:?}", plan.status);
    assert_eq!(plan.events.len(), 1);
    assert_eq!(plan.events[0].type_, EventType::Warning);
    assert!(
        plan.events[0].note.contains("spec.groupIdentity"),
        "{}",
        plan.events[0].note
    );
}

#[test]
fn workers_left_by_a_replaced_worker_statefulset_are_deleted() {
    let lws = sized(3);
    let key = crate::revision::revision_key(&lws);
    let stale_owner = json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1",
        "kind": "StatefulSet", "name": "lws-0", "uid": "sts-gone", "controller": true}]}});
    let mut deleting = stale_owner.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-02T19:32:30Z");
    let mut input = restart_input(
        lws,
        vec![
            worker(0, 1, &key, stale_owner),
            worker(0, 2, &key, deleting),
            worker(1, 1, &key, json!({})),
        ],
    );
    // Group 0's current worker StatefulSet (uid sts-0) owns none of them.
    input.worker_pods.push(worker(0, 3, &key, json!({})));
    let plan = plan_reconcile(&input);
    let pods: Vec<_> = plan.delete.iter().filter(|d| d.kind == "Pod").collect();
    assert_eq!(pods.len(), 1, "{:?}", plan.delete);
    assert_eq!(
        (pods[0].name.as_str(), pods[0].uid.as_deref()),
        ("lws-0-1", Some("w-0-1"))
    );
    assert!(
        plan.reasons.iter().any(|r| r.contains("lws-0-1")),
        "{:?}",
        plan.reasons
    );
}

// --- bounded group restarts (maxGroupRestarts) -------------------------------------------------

use super::budget::{backoff_seconds, GROUP_RECOVERED, GROUP_RESTART_BACKOFF};
use crate::labels::{
    GROUP_RESTART_BUDGET_CLEANUP_FINALIZER as CLEANUP,
    GROUP_RESTART_BUDGET_EXHAUSTED_ANNOTATION_KEY as EXHAUSTED,
    GROUP_RESTART_COUNTS_ANNOTATION_KEY as COUNTS, RECOVER_ANNOTATION_KEY as RECOVER,
};

/// Size 3, two replicas, `maxGroupRestarts: limit`, with `counts` already recorded.
fn budgeted(limit: i32, counts: serde_json::Value) -> LeaderWorkerSet {
    let mut lws = sized(3);
    lws.spec.leader_worker_template.max_group_restarts = Some(limit);
    lws.metadata.resource_version = Some("41".into());
    lws.metadata.annotations = Some([(COUNTS.to_string(), counts.to_string())].into());
    lws
}

fn counts_written(plan: &ReconcilePlan) -> Option<serde_json::Value> {
    let lws = plan.apply.iter().find(|o| o["kind"] == "LeaderWorkerSet")?;
    assert_eq!(lws["metadata"]["resourceVersion"], "41", "the precondition");
    serde_json::from_str(lws["metadata"]["annotations"][COUNTS].as_str()?).ok()
}

fn pod_applies(plan: &ReconcilePlan) -> Vec<&serde_json::Value> {
    plan.apply.iter().filter(|o| o["kind"] == "Pod").collect()
}

fn condition_of<'a>(plan: &'a ReconcilePlan, type_: &str) -> Option<&'a Condition> {
    plan.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

#[test]
fn backoff_doubles_from_ten_seconds_up_to_five_minutes() {
    let seconds: Vec<u64> = (0..8).map(backoff_seconds).collect();
    assert_eq!(seconds, [0, 10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(backoff_seconds(i64::MAX), 300);
    assert_eq!(backoff_seconds(-1), 0);
}

#[test]
fn a_restart_within_the_budget_is_counted_before_the_leader_goes() {
    let lws = budgeted(2, json!({}));
    let key = crate::revision::revision_key(&lws);
    let input = restart_input(lws, vec![worker(0, 1, &key, restarted())]);
    let plan = plan_reconcile(&input);
    assert_eq!(counts_written(&plan), Some(json!({format!("{key}/0"): 1})));
    assert!(plan
        .delete
        .iter()
        .any(|d| d.name == "lws-0" && d.kind == "Pod"));
    assert!(plan.events.iter().any(|e| e.reason == "RecreateGroup"));
    let degraded = condition_of(&plan, "Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("False", "AsExpected")
    );
    assert_eq!(
        degraded.message,
        "No replica has exhausted its restart budget"
    );
}

#[test]
fn a_second_failure_waits_for_the_backoff_since_the_leader_was_created() {
    let lws = budgeted(5, json!({}));
    let key = crate::revision::revision_key(&lws);
    let lws = budgeted(5, json!({format!("{key}/0"): 2}));
    let mut input = restart_input(lws, vec![worker(0, 1, &key, restarted())]);
    // Created 5 s before `now`: the third recreation waits 20 s from creation.
    input.leader_pods[0].metadata.creation_timestamp =
        Some(Time("2025-12-31T23:59:55Z".parse().unwrap()));
    let plan = plan_reconcile(&input);
    assert!(!plan.delete.iter().any(|d| d.kind == "Pod"));
    assert_eq!(counts_written(&plan), None);
    assert_eq!(plan.requeue_after_seconds, Some(15));
    let event = plan
        .events
        .iter()
        .find(|e| e.reason == GROUP_RESTART_BACKOFF)
        .unwrap();
    assert_eq!(
        event.note,
        "Group 0 failed again; recreating it at 2026-01-01T00:00:15Z (in 15s; recreation 3 of 5, back-off 20s)"
    );
    // Once due, it goes.
    input.now = Time("2026-01-01T00:00:15Z".parse().unwrap());
    let plan = plan_reconcile(&input);
    assert_eq!(counts_written(&plan), Some(json!({format!("{key}/0"): 3})));
    assert!(plan.delete.iter().any(|d| d.name == "lws-0"));
}

#[test]
fn at_the_budget_the_group_is_stopped_and_held() {
    let lws = budgeted(1, json!({}));
    let key = crate::revision::revision_key(&lws);
    let lws = budgeted(1, json!({format!("{key}/0"): 1}));
    let input = restart_input(
        lws,
        vec![
            worker(0, 1, &key, restarted()),
            worker(0, 2, &key, json!({})),
        ],
    );
    let plan = plan_reconcile(&input);
    assert_eq!(counts_written(&plan), None, "an exhausted count stays");
    let pods = pod_applies(&plan);
    assert_eq!(pods.len(), 3, "the leader and both workers: {pods:#?}");
    assert_eq!(pods[0]["metadata"]["name"], "lws-0");
    assert_eq!(pods[0]["metadata"]["uid"], "leader-uid-0");
    assert_eq!(
        pods[0]["metadata"]["annotations"],
        json!({EXHAUSTED: "true", RECOVER: "false"})
    );
    for pod in &pods {
        assert_eq!(pod["metadata"]["finalizers"], json!([CLEANUP]));
    }
    let delete = plan.delete.iter().find(|d| d.kind == "Pod").unwrap();
    assert_eq!(
        (delete.name.as_str(), delete.propagation_policy.as_deref()),
        ("lws-0", Some("Foreground"))
    );
    let event = plan
        .events
        .iter()
        .find(|e| e.reason == "ReplicaRestartBudgetExceeded")
        .unwrap();
    assert_eq!(event.type_, EventType::Warning);
    assert_eq!(
        event.note,
        "Restart budget exhausted; terminated group 0 and stopped automatic recovery"
    );
    assert!(!plan.events.iter().any(|e| e.reason == "RecreateGroup"));
}

/// The exhausted group as the cluster holds it: every pod deleting, each with the finalizer.
fn held_group(lws: LeaderWorkerSet, leader_extra: serde_json::Value) -> ReconcileInput {
    let key = crate::revision::revision_key(&lws);
    let held =
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [CLEANUP]}});
    let mut leader_json = held.clone();
    merge(
        &mut leader_json,
        json!({"metadata": {"annotations": {EXHAUSTED: "true", RECOVER: "false"}}}),
    );
    merge(&mut leader_json, leader_extra);
    let mut input = restart_input(lws.clone(), vec![]);
    input.leader_pods = vec![leader(&lws, 0, leader_json), leader(&lws, 1, json!({}))];
    input.worker_pods = vec![worker(0, 1, &key, held.clone()), worker(0, 2, &key, held)];
    input
}

#[test]
fn a_held_group_stays_and_the_lws_is_degraded() {
    let input = held_group(budgeted(1, json!({})), json!({}));
    let plan = plan_reconcile(&input);
    assert!(pod_applies(&plan).is_empty(), "nothing released");
    assert!(!plan.delete.iter().any(|d| d.kind == "Pod"));
    let degraded = condition_of(&plan, "Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "ReplicaRestartBudgetExceeded")
    );
    assert!(
        degraded.message.starts_with("Groups 0 exhausted"),
        "{}",
        degraded.message
    );
    // Editing the budget away does not resume it.
    let mut unbudgeted = input.clone();
    unbudgeted
        .lws
        .spec
        .leader_worker_template
        .max_group_restarts = None;
    let plan = plan_reconcile(&unbudgeted);
    assert!(pod_applies(&plan).is_empty());
    assert_eq!(condition_of(&plan, "Degraded").unwrap().status, "True");
}

#[test]
fn recover_releases_the_workers_then_the_leader_with_a_fresh_count() {
    let lws = budgeted(1, json!({}));
    let key = crate::revision::revision_key(&lws);
    let lws = budgeted(1, json!({format!("{key}/0"): 1, format!("{key}/1"): 1}));
    let mut input = held_group(lws, json!({"metadata": {"annotations": {RECOVER: "true"}}}));
    let plan = plan_reconcile(&input);
    let released: Vec<&str> = pod_applies(&plan)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(released, ["lws-0-1", "lws-0-2"], "workers first");
    for pod in pod_applies(&plan) {
        assert!(pod["metadata"].get("finalizers").is_none(), "{pod}");
    }
    assert_eq!(
        counts_written(&plan),
        None,
        "the count goes with the leader"
    );
    // The workers are gone: the leader is released and its count cleared.
    input.worker_pods.clear();
    let plan = plan_reconcile(&input);
    let released: Vec<&str> = pod_applies(&plan)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(released, ["lws-0"]);
    assert_eq!(counts_written(&plan), Some(json!({format!("{key}/1"): 1})));
    assert!(plan.events.iter().any(|e| e.reason == GROUP_RECOVERED));
}

#[test]
fn teardown_releases_held_pods_and_keeps_the_count() {
    let lws = budgeted(1, json!({}));
    let key = crate::revision::revision_key(&lws);
    let counts = json!({format!("{key}/0"): 1});
    // Scaled below the group.
    let mut scaled = held_group(budgeted(1, counts.clone()), json!({}));
    scaled.lws.spec.replicas = Some(0);
    let plan = plan_reconcile(&scaled);
    assert_eq!(pod_applies(&plan).len(), 2, "the workers");
    assert_eq!(counts_written(&plan), None);
    // The LeaderWorkerSet is being deleted.
    let mut deleting = held_group(budgeted(1, counts), json!({}));
    deleting.lws.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let plan = plan_reconcile(&deleting);
    assert_eq!(pod_applies(&plan).len(), 2, "the workers");
    deleting.worker_pods.clear();
    let plan = plan_reconcile(&deleting);
    let released: Vec<&str> = pod_applies(&plan)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(released, ["lws-0"]);
}

#[test]
fn a_finished_rollout_prunes_counts_of_old_revisions() {
    let lws = budgeted(3, json!({"old/0": 2, "new/1": 1, "garbage": 4}));
    let mut counts = super::budget::RestartCounts::of(&lws);
    assert_eq!(counts.annotation_apply(&lws), None, "unchanged");
    counts.prune("new");
    let applied = counts.annotation_apply(&lws).unwrap();
    assert_eq!(
        applied["metadata"]["annotations"][COUNTS],
        json!({"new/1": 1}).to_string().as_str()
    );
}

/// A LeaderWorkerSet deleted in the background is gone before it is seen deleting: sent as
/// `LeaderWorkerSet::gone`, its held pods are released (workers, then the leader), and nothing
/// else is planned for it.
#[test]
fn a_gone_lws_releases_held_pods_and_nothing_else() {
    let mut input = held_group(budgeted(1, json!({})), json!({}));
    input.lws = LeaderWorkerSet::gone("default", "lws", input.now.clone());
    let plan = plan_reconcile(&input);
    let released: Vec<&str> = pod_applies(&plan)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(released, ["lws-0-1", "lws-0-2"]);
    assert!(plan.delete.is_empty() && plan.create.is_empty() && plan.status.is_none());
    assert_eq!(plan.apply.len(), 2, "{:#?}", plan.apply);
    input.worker_pods.clear();
    let plan = plan_reconcile(&input);
    assert_eq!(pod_applies(&plan).len(), 1, "then the leader");
    // Nothing held: nothing to do.
    input.leader_pods = vec![leader(&sized(3), 1, json!({}))];
    let plan = plan_reconcile(&input);
    assert!(plan.apply.is_empty() && plan.delete.is_empty() && plan.create.is_empty());
}
