//! Placement: where each group's pods would land on a given list of nodes, before anything is
//! applied. The browser preview's placement view asks this through the `placement` operation.
//!
//! A simulation of the rules LWS gives the scheduler, not the scheduler itself:
//! - exclusive topology (`leaderworkerset.sigs.k8s.io/exclusive-topology: KEY`): the leader's
//!   required affinity and anti-affinity (upstream `SetExclusiveAffinities`, see
//!   [`crate::pod::set_exclusive_affinities`]) give each group one whole topology domain (the nodes
//!   sharing one value of label `KEY`) that no other group of the same LeaderWorkerSet uses, and the
//!   pod controller pins the workers to it with a nodeSelector;
//! - subgroup-exclusive topology (`.../subgroup-exclusive-topology: KEY`): the same for each
//!   subgroup, inside its group's domain when both are set with different keys. With the same key
//!   for both, the pod webhook injects only the group terms, so subgroups share the group's domain;
//! - per node: the pod capacity (`status.allocatable.pods`, 110 when not given), the cpu
//!   requests against `status.allocatable.cpu` when given, the pod's own nodeSelector, and
//!   `spec.unschedulable`.
//!
//! Within the nodes a group (or subgroup, or the whole set without exclusive topology) may use,
//! each pod goes to the least-loaded node that fits, ties broken by node name. Domains are tried
//! in name order. A group under exclusive topology is placed whole or not at all: if its leader
//! cannot get a domain the worker StatefulSet is never created. Everything is ordered, so the same
//! input always gives the same answer.

use crate::api::LeaderWorkerSet;
use crate::field_path::{FieldError, FieldErrors, FieldPath, Problem};
use crate::labels::{
    EXCLUSIVE_KEY_ANNOTATION_KEY, GROUP_INDEX_LABEL_KEY, SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY,
    SUB_GROUP_INDEX_LABEL_KEY, WORKER_INDEX_LABEL_KEY,
};
use crate::ops::{self, names, OpError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The pod capacity of a node that does not say (the kubelet's default `--max-pods`).
pub const DEFAULT_POD_CAPACITY: u64 = 110;

/// One schedulable node as the simulation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Allocatable pods.
    pub pods: u64,
    /// Allocatable cpu in millicores; `None` when not given (cpu is then not checked).
    pub cpu_millis: Option<u64>,
    /// `spec.unschedulable` (cordoned): no new pod lands here.
    pub unschedulable: bool,
}

/// Reads nodes as `kubectl get nodes -o json` prints them (a List, or its `items`), or in the
/// short form `{name, labels, pods?, cpu?}`. Problems carry paths under `nodes`.
pub fn decode_nodes(value: &Value) -> (Vec<Node>, FieldErrors) {
    let path = FieldPath::new("nodes");
    let items = match value {
        Value::Null => return (Vec::new(), Vec::new()),
        Value::Array(items) => items.as_slice(),
        Value::Object(list) => match list.get("items") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => {
                let error = FieldError::type_invalid(path, "expected a list of nodes");
                return (Vec::new(), vec![error]);
            }
        },
        _ => {
            let error = FieldError::type_invalid(path, "expected a list of nodes");
            return (Vec::new(), vec![error]);
        }
    };
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, item) in items.iter().enumerate() {
        match decode_node(item, &path.index(index)) {
            Ok(node) if !seen.insert(node.name.clone()) => {
                errors.push(FieldError::duplicate(
                    path.index(index).child("name"),
                    format!("{:?}", node.name),
                ));
            }
            Ok(node) => nodes.push(node),
            Err(error) => errors.push(error),
        }
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    (nodes, errors)
}

fn decode_node(item: &Value, path: &FieldPath) -> Result<Node, FieldError> {
    // A Node object keeps name and labels under metadata; the short form has them on top.
    let (meta, meta_path) = match item.get("metadata") {
        Some(meta) => (meta, path.child("metadata")),
        None => (item, path.clone()),
    };
    let name = match meta.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => return Err(FieldError::required(meta_path.child("name"), "")),
    };
    let labels = meta
        .get("labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let (allocatable, allocatable_path) = match item.pointer("/status/allocatable") {
        Some(allocatable) => (allocatable, path.child("status").child("allocatable")),
        None => (item, path.clone()),
    };
    let quantity = |field: &str| -> Result<Option<u64>, FieldError> {
        let Some(value) = allocatable.get(field) else {
            return Ok(None);
        };
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => String::new(),
        };
        let parsed = if field == "cpu" {
            parse_cpu_millis(&text)
        } else {
            text.parse().ok()
        };
        match parsed {
            Some(amount) => Ok(Some(amount)),
            None => Err(FieldError::invalid(
                allocatable_path.child(field),
                format!("{text:?}"),
                "not a quantity",
            )),
        }
    };
    Ok(Node {
        name,
        labels,
        pods: quantity("pods")?.unwrap_or(DEFAULT_POD_CAPACITY),
        cpu_millis: quantity("cpu")?,
        unschedulable: item
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A cpu quantity (`"2"`, `"1.5"`, `"500m"`) in millicores; `None` when it is not one.
pub fn parse_cpu_millis(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(millis) = text.strip_suffix('m') {
        return millis.parse().ok();
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u64 = format!("{fraction:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(fraction)
}

/// Where one pod lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodPlacement {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgroup: Option<i32>,
}

/// The domain one subgroup took under subgroup-exclusive topology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubgroupPlacement {
    pub index: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Where one group lands; `reason` says plainly why it (or a pod of it) cannot be placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlacement {
    pub index: i32,
    /// The value of the exclusive-topology label the group took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subgroups: Vec<SubgroupPlacement>,
    pub pods: Vec<PodPlacement>,
    pub placed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of the `placement` operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_topology: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgroup_exclusive_topology: Option<String>,
    pub groups: Vec<GroupPlacement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// What a pod asks of a node.
#[derive(Clone, Debug)]
struct Demand {
    name: String,
    group: i32,
    subgroup: Option<i32>,
    cpu_millis: u64,
    node_selector: BTreeMap<String, String>,
}

/// What is already placed on each node, by node position.
#[derive(Clone, Debug)]
struct Load {
    pods: Vec<u64>,
    cpu_millis: Vec<u64>,
}

/// The simulation over one node list.
struct Cluster<'a> {
    nodes: &'a [Node],
    load: Load,
}

/// Simulates a (defaulted, valid) LeaderWorkerSet on `nodes`; see the module docs for the rules.
pub fn place(lws: &LeaderWorkerSet, nodes: &[Node]) -> Placement {
    let group_key = lws
        .annotation(EXCLUSIVE_KEY_ANNOTATION_KEY)
        .map(str::to_string);
    let subgroup_key = lws
        .annotation(SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY)
        .filter(|key| Some(*key) != group_key.as_deref())
        .map(str::to_string);
    let demands = demands(&crate::expand::expand(lws));
    let mut groups: BTreeMap<i32, Vec<Demand>> = BTreeMap::new();
    for demand in demands {
        groups.entry(demand.group).or_default().push(demand);
    }
    let subgroup_count = groups
        .values()
        .flatten()
        .filter_map(|d| Some((d.group, d.subgroup?)))
        .collect::<BTreeSet<_>>()
        .len();

    let mut cluster = Cluster {
        nodes,
        load: Load {
            pods: vec![0; nodes.len()],
            cpu_millis: vec![0; nodes.len()],
        },
    };
    let everywhere: Vec<usize> = (0..nodes.len()).collect();
    let mut used_domains = BTreeSet::new();
    let mut used_subdomains = BTreeSet::new();
    let mut out = Vec::new();
    for (&index, pods) in &groups {
        let scope = Scope {
            subgroup_key: subgroup_key.as_deref(),
            subgroup_count,
        };
        let group = match &group_key {
            Some(key) => cluster.place_exclusive_group(
                index,
                pods,
                key,
                groups.len(),
                &mut used_domains,
                &mut used_subdomains,
                &scope,
            ),
            None => cluster.place_group(index, pods, &everywhere, &mut used_subdomains, &scope),
        };
        out.push(group);
    }
    Placement {
        exclusive_topology: group_key,
        subgroup_exclusive_topology: subgroup_key,
        groups: out,
        problems: Vec::new(),
    }
}

/// What the subgroup rule needs to know while placing one group.
struct Scope<'a> {
    subgroup_key: Option<&'a str>,
    /// Subgroups across the whole LeaderWorkerSet, for the "N need one each" reason.
    subgroup_count: usize,
}

impl Cluster<'_> {
    /// A group under exclusive topology: the first free domain (by name) that holds it whole.
    #[allow(clippy::too_many_arguments)]
    fn place_exclusive_group(
        &mut self,
        index: i32,
        pods: &[Demand],
        key: &str,
        group_count: usize,
        used_domains: &mut BTreeSet<String>,
        used_subdomains: &mut BTreeSet<String>,
        scope: &Scope,
    ) -> GroupPlacement {
        let domains = self.domains(key, &(0..self.nodes.len()).collect::<Vec<_>>());
        let free: Vec<&String> = domains
            .keys()
            .filter(|d| !used_domains.contains(*d))
            .collect();
        let mut first_failure = None;
        for domain in &free {
            let saved = (self.load.clone(), used_subdomains.clone());
            let group = self.place_group(index, pods, &domains[*domain], used_subdomains, scope);
            if group.placed {
                used_domains.insert((*domain).clone());
                return GroupPlacement {
                    domain: Some((*domain).clone()),
                    ..group
                };
            }
            (self.load, *used_subdomains) = saved;
            first_failure.get_or_insert_with(|| {
                format!("in {key}={domain}, {}", group.reason.unwrap_or_default())
            });
        }
        let reason = if domains.is_empty() {
            format!("no node has the label {key} (exclusive-topology)")
        } else if free.is_empty() {
            format!(
                "no free {key} domain: {group_count} groups need one each, the nodes have {} ({})",
                domains.len(),
                join(domains.keys())
            )
        } else {
            format!(
                "no free {key} domain holds the group's {} pods: {}",
                pods.len(),
                first_failure.unwrap_or_default()
            )
        };
        unplaced(index, pods, reason)
    }

    /// A group on the nodes `candidates`: subgroups first take their own domains when the
    /// subgroup rule applies; the other pods spread. Without exclusive topology pods that fit
    /// stay placed even when others do not (they schedule independently).
    fn place_group(
        &mut self,
        index: i32,
        pods: &[Demand],
        candidates: &[usize],
        used_subdomains: &mut BTreeSet<String>,
        scope: &Scope,
    ) -> GroupPlacement {
        let mut placements: Vec<PodPlacement> = pods
            .iter()
            .map(|pod| PodPlacement {
                name: pod.name.clone(),
                node: None,
                subgroup: pod.subgroup,
            })
            .collect();
        let mut subgroups = Vec::new();
        let mut reasons = Vec::new();
        // Subgroups that fail for the same reason are named together.
        let mut subgroup_failures: Vec<(String, Vec<i32>)> = Vec::new();
        let mut free_pods: Vec<usize> = Vec::new();
        let mut by_subgroup: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (position, pod) in pods.iter().enumerate() {
            match (scope.subgroup_key, pod.subgroup) {
                (Some(_), Some(subgroup)) => {
                    by_subgroup.entry(subgroup).or_default().push(position)
                }
                _ => free_pods.push(position),
            }
        }
        if let Some(key) = scope.subgroup_key {
            let domains = self.domains(key, candidates);
            for (&subgroup, members) in &by_subgroup {
                let members: Vec<&Demand> = members.iter().map(|&p| &pods[p]).collect();
                let taken = domains.keys().find(|domain| {
                    !used_subdomains.contains(*domain)
                        && self.try_spread(&members, &domains[*domain]).is_ok()
                });
                let Some(domain) = taken else {
                    let reason =
                        self.subgroup_reason(key, &members, &domains, used_subdomains, scope);
                    match subgroup_failures.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, indices)) => indices.push(subgroup),
                        None => subgroup_failures.push((reason, vec![subgroup])),
                    }
                    subgroups.push(SubgroupPlacement {
                        index: subgroup,
                        domain: None,
                    });
                    continue;
                };
                let nodes = self
                    .try_spread(&members, &domains[domain])
                    .expect("the domain was just checked to hold the subgroup");
                self.commit(&members, &nodes);
                for (&position, node) in by_subgroup[&subgroup].iter().zip(nodes) {
                    placements[position].node = Some(self.nodes[node].name.clone());
                }
                used_subdomains.insert(domain.clone());
                subgroups.push(SubgroupPlacement {
                    index: subgroup,
                    domain: Some(domain.clone()),
                });
            }
        }
        for (reason, indices) in subgroup_failures {
            let plural = if indices.len() == 1 { "" } else { "s" };
            reasons.push(format!("subgroup{plural} {}: {reason}", join(indices)));
        }
        for position in free_pods {
            let pod = &pods[position];
            match self.best_node(pod, candidates) {
                Some(node) => {
                    self.commit(&[pod], &[node]);
                    placements[position].node = Some(self.nodes[node].name.clone());
                }
                None => reasons.push(format!(
                    "pod {}: {}",
                    pod.name,
                    self.misfit(pod, candidates)
                )),
            }
        }
        GroupPlacement {
            index,
            domain: None,
            subgroups,
            placed: reasons.is_empty(),
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            pods: placements,
        }
    }

    fn subgroup_reason(
        &self,
        key: &str,
        members: &[&Demand],
        domains: &BTreeMap<String, Vec<usize>>,
        used: &BTreeSet<String>,
        scope: &Scope,
    ) -> String {
        if domains.is_empty() {
            return format!("no node has the label {key} (subgroup-exclusive-topology)");
        }
        let free: Vec<&String> = domains.keys().filter(|d| !used.contains(*d)).collect();
        if free.is_empty() {
            return format!(
                "no free {key} domain: {} subgroups need one each, the nodes have {} ({})",
                scope.subgroup_count,
                domains.len(),
                join(domains.keys())
            );
        }
        let first = free[0];
        let why = match self.try_spread(members, &domains[first]) {
            Err(position) => format!(
                "pod {}: {}",
                members[position].name,
                self.misfit(members[position], &domains[first])
            ),
            Ok(_) => String::new(),
        };
        format!(
            "no free {key} domain holds its {} pods: in {key}={first}, {why}",
            members.len()
        )
    }

    /// The nodes of `candidates` grouped by their value of label `key` (nodes without it are
    /// in no domain).
    fn domains(&self, key: &str, candidates: &[usize]) -> BTreeMap<String, Vec<usize>> {
        let mut domains: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &node in candidates {
            if let Some(value) = self.nodes[node].labels.get(key) {
                domains.entry(value.clone()).or_default().push(node);
            }
        }
        domains
    }

    fn fits(&self, load: &Load, node: usize, pod: &Demand) -> bool {
        let spec = &self.nodes[node];
        !spec.unschedulable
            && load.pods[node] < spec.pods
            && spec
                .cpu_millis
                .is_none_or(|cpu| load.cpu_millis[node].saturating_add(pod.cpu_millis) <= cpu)
            && pod
                .node_selector
                .iter()
                .all(|(k, v)| spec.labels.get(k) == Some(v))
    }

    /// The least-loaded node of `candidates` that fits `pod` under `load`; ties go to the first
    /// by name (candidates are in name order).
    fn best_node_in(&self, load: &Load, pod: &Demand, candidates: &[usize]) -> Option<usize> {
        candidates
            .iter()
            .copied()
            .filter(|&node| self.fits(load, node, pod))
            .min_by_key(|&node| (load.pods[node], node))
    }

    fn best_node(&self, pod: &Demand, candidates: &[usize]) -> Option<usize> {
        self.best_node_in(&self.load, pod, candidates)
    }

    /// The nodes `pods` would take on `candidates`, or the position of the first pod that fits
    /// nowhere. Leaves the load as it was.
    fn try_spread(&self, pods: &[&Demand], candidates: &[usize]) -> Result<Vec<usize>, usize> {
        let mut load = self.load.clone();
        let mut nodes = Vec::with_capacity(pods.len());
        for (position, pod) in pods.iter().enumerate() {
            let node = self.best_node_in(&load, pod, candidates).ok_or(position)?;
            load.pods[node] += 1;
            load.cpu_millis[node] = load.cpu_millis[node].saturating_add(pod.cpu_millis);
            nodes.push(node);
        }
        Ok(nodes)
    }

    fn commit(&mut self, pods: &[&Demand], nodes: &[usize]) {
        for (pod, &node) in pods.iter().zip(nodes) {
            self.load.pods[node] += 1;
            // Requests near u64::MAX (fuzzing found them) saturate rather than overflow.
            self.load.cpu_millis[node] = self.load.cpu_millis[node].saturating_add(pod.cpu_millis);
        }
    }

    /// Why `pod` fits on none of `candidates`, in the words a user would check.
    fn misfit(&self, pod: &Demand, candidates: &[usize]) -> String {
        if candidates.is_empty() {
            return "no nodes to place it on".to_string();
        }
        let matching: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&n| {
                let spec = &self.nodes[n];
                !spec.unschedulable
                    && pod
                        .node_selector
                        .iter()
                        .all(|(k, v)| spec.labels.get(k) == Some(v))
            })
            .collect();
        if matching.is_empty() {
            return if pod.node_selector.is_empty() {
                "every node is unschedulable".to_string()
            } else {
                format!(
                    "no schedulable node matches its nodeSelector {}",
                    join(pod.node_selector.iter().map(|(k, v)| format!("{k}={v}")))
                )
            };
        }
        if matching
            .iter()
            .all(|&n| self.load.pods[n] >= self.nodes[n].pods)
        {
            return format!("all {} nodes are at their pod capacity", matching.len());
        }
        format!(
            "needs {} cpu, no node has that much allocatable cpu left",
            format_millis(pod.cpu_millis)
        )
    }
}

fn unplaced(index: i32, pods: &[Demand], reason: String) -> GroupPlacement {
    GroupPlacement {
        index,
        domain: None,
        subgroups: Vec::new(),
        pods: pods
            .iter()
            .map(|pod| PodPlacement {
                name: pod.name.clone(),
                node: None,
                subgroup: pod.subgroup,
            })
            .collect(),
        placed: false,
        reason: Some(reason),
    }
}

fn join<I: IntoIterator<Item = T>, T: std::fmt::Display>(items: I) -> String {
    items
        .into_iter()
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn format_millis(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// The pods of an expansion as demands, in group then worker order.
fn demands(objects: &[Value]) -> Vec<Demand> {
    let label = |pod: &Value, key: &str| -> Option<i32> {
        pod.pointer("/metadata/labels")?
            .get(key)?
            .as_str()?
            .parse()
            .ok()
    };
    let mut demands: Vec<(i32, Demand)> = objects
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .map(|pod| {
            let demand = Demand {
                name: pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
                group: label(pod, GROUP_INDEX_LABEL_KEY).unwrap_or(0),
                subgroup: label(pod, SUB_GROUP_INDEX_LABEL_KEY),
                cpu_millis: cpu_request(&pod["spec"]),
                node_selector: pod["spec"]["nodeSelector"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            (label(pod, WORKER_INDEX_LABEL_KEY).unwrap_or(0), demand)
        })
        .collect();
    demands.sort_by(|(wa, a), (wb, b)| (a.group, *wa, &a.name).cmp(&(b.group, *wb, &b.name)));
    demands.into_iter().map(|(_, demand)| demand).collect()
}

/// A pod's effective cpu request as the scheduler counts it: the sum over containers, or the
/// largest init container if that is more. A container with a limit and no request requests
/// its limit (the API server defaults it so). Unreadable quantities count as zero.
fn cpu_request(spec: &Value) -> u64 {
    let of = |container: &Value| -> u64 {
        let resources = &container["resources"];
        resources["requests"]["cpu"]
            .as_str()
            .or_else(|| resources["limits"]["cpu"].as_str())
            .and_then(parse_cpu_millis)
            .unwrap_or(0)
    };
    let containers = |field: &str| spec[field].as_array().cloned().unwrap_or_default();
    let sum = containers("containers")
        .iter()
        .map(of)
        .fold(0u64, u64::saturating_add);
    let init = containers("initContainers")
        .iter()
        .map(of)
        .max()
        .unwrap_or(0);
    sum.max(init)
}

#[derive(Deserialize)]
struct PlacementInput {
    lws: Value,
    #[serde(default)]
    nodes: Value,
}

/// The `placement` operation: `{"lws": LWS, "nodes": [Node...]}` in; [`Placement`] out, with
/// `problems` (and no groups) when the manifest cannot be admitted, and with `problems` about
/// unreadable nodes (which are left out) otherwise.
pub(crate) fn run_op(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let input: PlacementInput = ops::typed(names::PLACEMENT, payload)?;
    let lws = match ops::admit_new(input.lws) {
        Ok(lws) => lws,
        Err(errors) => {
            return Ok(ops::encode(&Placement {
                problems: errors.iter().map(Problem::from).collect(),
                ..Placement::default()
            }))
        }
    };
    let (nodes, errors) = decode_nodes(&input.nodes);
    let mut placement = place(&lws, &nodes);
    placement.problems = errors.iter().map(Problem::from).collect();
    Ok(ops::encode(&placement))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::fixtures::defaulted;
    use serde_json::json;

    /// The local test cluster's shape: `racks` racks of `per_rack` nodes, label `rack=rack-R`.
    fn racks(racks: usize, per_rack: usize) -> Vec<Node> {
        let mut nodes = Vec::new();
        for rack in 0..racks {
            for node in 0..per_rack {
                nodes.push(Node {
                    name: format!("kwok-rack-{rack}-node-{node}"),
                    labels: BTreeMap::from([("rack".to_string(), format!("rack-{rack}"))]),
                    pods: DEFAULT_POD_CAPACITY,
                    cpu_millis: Some(32_000),
                    unschedulable: false,
                });
            }
        }
        nodes
    }

    /// Found by `make fuzz` (ops_native): cpu requests near u64::MAX overflowed the node load.
    #[test]
    fn huge_cpu_requests_saturate_and_do_not_fit() {
        let huge = "18446744073709551615m";
        let container =
            json!({"name": "c", "image": "i", "resources": {"requests": {"cpu": huge}}});
        let payload = json!({
            "lws": {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                "metadata": {"name": "big"},
                "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "workerTemplate":
                    {"spec": {"containers": [container.clone(), container]}}}}},
            "nodes": [{"name": "n0", "cpu": "1000000000"}, {"name": "n1"}]
        });
        let answer = run_op(payload.to_string().as_bytes()).unwrap();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        // The node without a cpu capacity takes them all; the one with a capacity takes none.
        let nodes: Vec<&str> = answer["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["pods"].as_array().unwrap())
            .map(|pod| pod["node"].as_str().unwrap_or("-"))
            .collect();
        assert_eq!(nodes, ["n1"; 4], "{answer}");
    }

    fn exclusive() -> LeaderWorkerSet {
        defaulted(include_str!("../../examples/lws-exclusive-placement.yaml"))
    }

    fn rack_of(node: &str) -> String {
        node.rsplit_once("-node-")
            .unwrap()
            .0
            .trim_start_matches("kwok-")
            .to_string()
    }

    #[test]
    fn exclusive_groups_take_three_different_racks_of_four() {
        let placement = place(&exclusive(), &racks(4, 4));
        let domains: Vec<_> = placement.groups.iter().map(|g| g.domain.clone()).collect();
        assert_eq!(
            domains,
            [
                Some("rack-0".into()),
                Some("rack-1".into()),
                Some("rack-2".into())
            ]
        );
        for group in &placement.groups {
            assert!(group.placed, "{group:?}");
            assert_eq!(group.pods.len(), 4);
            for pod in &group.pods {
                assert_eq!(Some(rack_of(pod.node.as_deref().unwrap())), group.domain);
            }
        }
        // Least-loaded spread inside the rack: four pods on four nodes.
        let nodes: BTreeSet<_> = placement.groups[0]
            .pods
            .iter()
            .map(|p| p.node.clone())
            .collect();
        assert_eq!(nodes.len(), 4);
    }

    #[test]
    fn exclusive_group_without_a_free_rack_says_why() {
        let placement = place(&exclusive(), &racks(2, 4));
        let placed: Vec<bool> = placement.groups.iter().map(|g| g.placed).collect();
        assert_eq!(placed, [true, true, false]);
        let group = &placement.groups[2];
        assert_eq!(
            group.reason.as_deref(),
            Some("no free rack domain: 3 groups need one each, the nodes have 2 (rack-0, rack-1)")
        );
        assert!(group.pods.iter().all(|p| p.node.is_none()));
        assert_eq!(group.domain, None);
    }

    #[test]
    fn exclusive_group_that_outgrows_every_free_rack_is_not_half_placed() {
        // 4 racks of 1 node holding 3 pods each: no rack holds a group of 4.
        let mut nodes = racks(4, 1);
        for node in &mut nodes {
            node.pods = 3;
        }
        let placement = place(&exclusive(), &nodes);
        let group = &placement.groups[0];
        assert!(!group.placed);
        assert!(group.pods.iter().all(|p| p.node.is_none()));
        assert_eq!(
            group.reason.as_deref(),
            Some("no free rack domain holds the group's 4 pods: in rack=rack-0, pod leaderworkerset-exclusive-0-3: all 1 nodes are at their pod capacity")
        );
    }

    #[test]
    fn subgroups_take_racks_of_their_own() {
        let lws = defaulted(include_str!("../../examples/lws-subgroup.yaml"));
        // 3 groups × 2 subgroups need 6 racks.
        let placement = place(&lws, &racks(6, 2));
        assert_eq!(
            placement.subgroup_exclusive_topology.as_deref(),
            Some("rack")
        );
        let mut racks_used = BTreeSet::new();
        for group in &placement.groups {
            assert!(group.placed, "{group:?}");
            assert_eq!(group.subgroups.len(), 2);
            for subgroup in &group.subgroups {
                assert!(racks_used.insert(subgroup.domain.clone().unwrap()));
                let pods: Vec<_> = group
                    .pods
                    .iter()
                    .filter(|p| p.subgroup == Some(subgroup.index))
                    .collect();
                assert_eq!(pods.len(), 2);
                for pod in pods {
                    assert_eq!(Some(rack_of(pod.node.as_deref().unwrap())), subgroup.domain);
                }
            }
        }
        assert_eq!(racks_used.len(), 6);

        let short = place(&lws, &racks(4, 4));
        let placed: Vec<bool> = short.groups.iter().map(|g| g.placed).collect();
        assert_eq!(placed, [true, true, false]);
        assert_eq!(
            short.groups[2].reason.as_deref(),
            Some("subgroups 0, 1: no free rack domain: 6 subgroups need one each, the nodes have 4 (rack-0, rack-1, rack-2, rack-3)")
        );
    }

    #[test]
    fn without_exclusive_topology_pods_spread_least_loaded() {
        let lws = defaulted(include_str!("../../examples/lws.yaml"));
        let placement = place(&lws, &racks(1, 4));
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for group in &placement.groups {
            assert!(group.placed);
            assert_eq!(group.domain, None);
            for pod in &group.pods {
                *per_node.entry(pod.node.clone().unwrap()).or_default() += 1;
            }
        }
        assert_eq!(per_node.values().copied().collect::<Vec<_>>(), [3, 3, 3, 3]);
    }

    #[test]
    fn cpu_requests_count_against_allocatable_cpu() {
        // 50m per pod; 120m per node holds two.
        let lws = defaulted(include_str!("../../examples/lws.yaml"));
        let mut nodes = racks(1, 4);
        for node in &mut nodes {
            node.cpu_millis = Some(120);
        }
        let placement = place(&lws, &nodes);
        let placed: Vec<bool> = placement.groups.iter().map(|g| g.placed).collect();
        assert_eq!(placed, [true, true, false]);
        assert_eq!(
            placement.groups[2].reason.as_deref().unwrap().split("; ").next(),
            Some("pod leaderworkerset-sample-2: needs 50m cpu, no node has that much allocatable cpu left")
        );
    }

    #[test]
    fn nodes_decode_from_kubectl_json_and_the_short_form() {
        let list = json!({"kind": "List", "items": [
            {"metadata": {"name": "b", "labels": {"rack": "r1"}},
             "status": {"allocatable": {"pods": "10", "cpu": "1500m"}},
             "spec": {"unschedulable": true}},
            {"name": "a", "labels": {"rack": "r0"}, "cpu": 2},
            {"metadata": {}},
            {"name": "a"},
            {"name": "c", "pods": "many"},
        ]});
        let (nodes, errors) = decode_nodes(&list);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].name, "a");
        assert_eq!((nodes[0].pods, nodes[0].cpu_millis), (110, Some(2000)));
        assert_eq!(
            (nodes[1].pods, nodes[1].cpu_millis, nodes[1].unschedulable),
            (10, Some(1500), true)
        );
        let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(
            paths,
            ["nodes[2].metadata.name", "nodes[3].name", "nodes[4].pods"]
        );
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("1.5"), Some(1500));
        assert_eq!(parse_cpu_millis("0.25"), Some(250));
        assert_eq!(parse_cpu_millis("500m"), Some(500));
        assert_eq!(parse_cpu_millis("1.0001"), None);
        assert_eq!(parse_cpu_millis("two"), None);
        assert_eq!(parse_cpu_millis(""), None);
    }

    #[test]
    fn operation_reports_problems_for_an_invalid_manifest() {
        let out = ops::call(
            names::PLACEMENT,
            br#"{"lws":{"metadata":{"name":"x"},"spec":{"leaderWorkerTemplate":{"size":0}}},"nodes":[]}"#,
        )
        .unwrap();
        let placement: Placement = serde_json::from_slice(&out).unwrap();
        assert!(placement.groups.is_empty());
        assert_eq!(placement.problems[0].path, "spec.leaderWorkerTemplate.size");
    }

    #[test]
    fn operation_is_deterministic() {
        let lws: Value =
            serde_norway::from_str(include_str!("../../examples/lws-exclusive-placement.yaml"))
                .unwrap();
        let nodes: Vec<Value> = (0..16)
            .rev()
            .map(|i| json!({"name": format!("n{i:02}"), "labels": {"rack": format!("rack-{}", i / 4)}}))
            .collect();
        let payload = serde_json::to_vec(&json!({"lws": lws, "nodes": nodes})).unwrap();
        let first = ops::call(names::PLACEMENT, &payload).unwrap();
        assert_eq!(first, ops::call(names::PLACEMENT, &payload).unwrap());
        let placement: Placement = serde_json::from_slice(&first).unwrap();
        assert_eq!(placement.groups[0].pods[0].node.as_deref(), Some("n00"));
    }
}
