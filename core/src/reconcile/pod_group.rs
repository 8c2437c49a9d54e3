//! Volcano PodGroups for gang scheduling, one per group and revision.
//!
//! Mirrors `CreatePodGroupIfNotExists` in `pkg/schedulerprovider/volcano_provider.go` upstream
//! (upstream-lws.md §6.1). The PodGroup is create-if-absent: a new revision gets a new name, and
//! the old one goes with its leader pod.
//!
//! Unlike upstream (its issue #630), a group gets a PodGroup only when Volcano schedules some of
//! its pods (`schedulerName: volcano`): a PodGroup nobody schedules against stays `Inqueue`
//! forever (docs/differences.md, "Volcano").

use super::observed::{group_index, label, name, revision_label};
use crate::api::{LeaderWorkerSet, StartupPolicy};
use crate::labels::{
    GROUP_INDEX_LABEL_KEY, POD_GROUP_NAME_ANNOTATION_KEY, REVISION_KEY, SET_NAME_LABEL_KEY,
    VOLCANO_QUEUE_NAME_ANNOTATION_KEY,
};
use crate::pod::scheduled_by_volcano;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The gang-scheduling providers the decisions implement (`--gang-scheduling-provider`,
/// `gangSchedulingManagement.schedulerProvider`); upstream v0.11 adds `kubernetes` (issue #17).
pub const SCHEDULER_PROVIDERS: &[&str] = &["volcano"];

/// `apiVersion` of Volcano PodGroups.
pub const POD_GROUP_API_VERSION: &str = "scheduling.volcano.sh/v1beta1";
/// `kind` of Volcano PodGroups.
pub const POD_GROUP_KIND: &str = "PodGroup";
/// Prefix of the LWS annotations copied onto the PodGroup.
const VOLCANO_ANNOTATION_PREFIX: &str = "volcano.sh/";

/// True when Volcano schedules the leader of this group or its workers: the group needs a PodGroup.
pub fn group_uses_volcano(lws: &LeaderWorkerSet, leader: &Pod) -> bool {
    scheduled_by_volcano(leader.spec.as_ref())
        || (lws.size() > 1
            && scheduled_by_volcano(
                lws.spec
                    .leader_worker_template
                    .worker_template
                    .spec
                    .as_ref(),
            ))
}

/// The PodGroup of `leader`'s group, or `None` when the leader has no group index.
pub fn build_pod_group(lws: &LeaderWorkerSet, leader: &Pod) -> Option<Value> {
    let index = group_index(leader)?;
    let revision = revision_label(&leader.metadata);
    let pod_group_name = leader
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_GROUP_NAME_ANNOTATION_KEY))
        .cloned()
        .unwrap_or_else(|| format!("{}-{index}-{revision}", lws.name()));
    let size = lws.size();
    let min_member = if lws.spec.startup_policy == Some(StartupPolicy::LeaderReady) {
        1
    } else {
        size
    };
    let annotations: BTreeMap<&String, &String> = lws
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(VOLCANO_ANNOTATION_PREFIX))
        .collect();
    let mut resources = leader.spec.as_ref().map(pod_requests).unwrap_or_default();
    if let Some(worker_spec) = &lws.spec.leader_worker_template.worker_template.spec {
        for (resource, amount) in pod_requests(worker_spec) {
            *resources.entry(resource).or_default() += amount * i128::from(size - 1);
        }
    }
    let min_resources: Map<String, Value> = resources
        .into_iter()
        .map(|(k, v)| (k, Value::String(format_nanos(v))))
        .collect();
    let mut spec = json!({ "minMember": min_member, "minResources": min_resources });
    if let Some(queue) = lws.annotation(VOLCANO_QUEUE_NAME_ANNOTATION_KEY) {
        spec["queue"] = Value::String(queue.to_string());
    }
    let mut metadata = json!({
        "name": pod_group_name,
        "namespace": leader.metadata.namespace.as_deref().unwrap_or(lws.namespace()),
        "labels": {
            SET_NAME_LABEL_KEY: lws.name(),
            GROUP_INDEX_LABEL_KEY: label(&leader.metadata, GROUP_INDEX_LABEL_KEY).unwrap_or(""),
            REVISION_KEY: revision,
        },
        "ownerReferences": [{
            "apiVersion": "v1",
            "kind": "Pod",
            "name": name(&leader.metadata),
            "uid": leader.metadata.uid.as_deref().unwrap_or(""),
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    });
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    Some(json!({
        "apiVersion": POD_GROUP_API_VERSION,
        "kind": POD_GROUP_KIND,
        "metadata": metadata,
        "spec": spec,
    }))
}

/// A pod's resource requests in nano-units, as Kubernetes' `PodRequests` sums them: regular
/// containers and sidecars (restartable init containers) run together; each other init
/// container runs alone beside the sidecars started before it; the overhead is added on top.
pub fn pod_requests(spec: &PodSpec) -> BTreeMap<String, i128> {
    let mut total = BTreeMap::new();
    for container in &spec.containers {
        add(&mut total, &container_requests(container));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for init in spec.init_containers.iter().flatten() {
        let requests = container_requests(init);
        if init.restart_policy.as_deref() == Some("Always") {
            add(&mut sidecars, &requests);
            add(&mut total, &requests);
            max_into(&mut init_peak, &sidecars);
        } else {
            let mut running = sidecars.clone();
            add(&mut running, &requests);
            max_into(&mut init_peak, &running);
        }
    }
    max_into(&mut total, &init_peak);
    for (resource, quantity) in spec.overhead.iter().flatten() {
        *total.entry(resource.clone()).or_default() += parse_nanos(&quantity.0).unwrap_or(0);
    }
    total
}

fn container_requests(container: &Container) -> BTreeMap<String, i128> {
    container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(|requests| {
            requests
                .iter()
                .map(|(k, q)| (k.clone(), parse_nanos(&q.0).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn add(total: &mut BTreeMap<String, i128>, more: &BTreeMap<String, i128>) {
    for (k, v) in more {
        *total.entry(k.clone()).or_default() += v;
    }
}

fn max_into(total: &mut BTreeMap<String, i128>, other: &BTreeMap<String, i128>) {
    for (k, v) in other {
        let entry = total.entry(k.clone()).or_default();
        *entry = (*entry).max(*v);
    }
}

const NANO: i128 = 1_000_000_000;

/// Parses a Kubernetes quantity (`"1.5"`, `"500m"`, `"2Gi"`, `"1e3"`) into nano-units.
pub fn parse_nanos(text: &str) -> Option<i128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (multiplier, divisor): (i128, i128) = match suffix {
        "" => (NANO, 1),
        "n" => (1, 1),
        "u" => (1_000, 1),
        "m" => (1_000_000, 1),
        "k" => (NANO * 1_000, 1),
        "M" => (NANO * 1_000_000, 1),
        "G" => (NANO * 1_000_000_000, 1),
        "T" => (NANO * 1_000_000_000_000, 1),
        "P" => (NANO * 1_000_000_000_000_000, 1),
        "E" => (NANO * 1_000_000_000_000_000_000, 1),
        "Ki" => (NANO << 10, 1),
        "Mi" => (NANO << 20, 1),
        "Gi" => (NANO << 30, 1),
        "Ti" => (NANO << 40, 1),
        "Pi" => (NANO << 50, 1),
        "Ei" => (NANO << 60, 1),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..].parse().ok()?;
            if power >= 0 {
                (NANO * 10i128.checked_pow(power.try_into().ok()?)?, 1)
            } else {
                (NANO, 10i128.checked_pow((-power).try_into().ok()?)?)
            }
        }
        _ => return None,
    };
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    value = value.checked_mul(multiplier)?;
    let mut scale = multiplier;
    for digit in fraction.bytes() {
        if !digit.is_ascii_digit() {
            return None;
        }
        scale /= 10;
        value += i128::from(digit - b'0') * scale;
    }
    let value = value / divisor;
    Some(if negative { -value } else { value })
}

/// Formats nano-units as a quantity: whole units when exact, else milli- or nano-units.
pub fn format_nanos(value: i128) -> String {
    if value % NANO == 0 {
        format!("{}", value / NANO)
    } else if value % 1_000_000 == 0 {
        format!("{}m", value / 1_000_000)
    } else {
        format!("{value}n")
    }
}
