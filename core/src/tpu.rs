//! TPU environment variables for pods that request `google.com/tpu`.
//!
//! Mirrors `pkg/utils/accelerators/tpu.go` upstream (`AddTPUVariables`, `addTPUVariablesSubGroup`,
//! `PodRequestsTPUs`; upstream-lws.md §3.5). The pod webhook calls [`add_tpu_variables`] after the
//! labels are set and before the LWS variables are put in front of every container's env.
//!
//! Hostnames are `<pod>.<subdomain>` with no namespace, exactly as upstream.

use crate::labels::{
    LEADER_REQUESTS_TPUS_ANNOTATION_KEY, SUB_GROUP_INDEX_LABEL_KEY, SUB_GROUP_SIZE_ANNOTATION_KEY,
    TPU_NAME, TPU_PROCESS_ADDRESSES, TPU_PROCESS_PORT, TPU_PROCESS_PORT_BASE, TPU_RESOURCE_NAME,
    TPU_WORKER_HOSTNAMES, TPU_WORKER_ID, WORKER_INDEX_LABEL_KEY,
};
use crate::pod::{atoi, parent_name_and_ordinal, PodMutationError};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// True when some container or init container requests TPUs (upstream `PodRequestsTPUs`).
pub fn pod_requests_tpus(spec: &PodSpec) -> bool {
    spec.containers.iter().any(container_requests_tpus)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(container_requests_tpus)
}

/// A non-zero `google.com/tpu` in limits, else in requests (upstream `numTPUsRequested` != 0).
pub fn container_requests_tpus(container: &Container) -> bool {
    let Some(resources) = &container.resources else {
        return false;
    };
    let nonzero = |list: &Option<std::collections::BTreeMap<String, Quantity>>| {
        list.as_ref()
            .and_then(|l| l.get(TPU_RESOURCE_NAME))
            .is_some_and(|q| quantity_is_nonzero(&q.0))
    };
    nonzero(&resources.limits) || nonzero(&resources.requests)
}

/// Whether a quantity string is non-zero: its mantissa has a non-zero digit. `"0"`, `"0.0"` and
/// `"0Gi"` are zero; `"500m"` is not (Go's `Quantity.Value()` rounds it up to 1).
fn quantity_is_nonzero(quantity: &str) -> bool {
    quantity
        .trim_start_matches(['+', '-'])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .any(|c| c.is_ascii_digit() && c != '0')
}

/// Adds the TPU variables to the TPU containers of an LWS pod whose labels are already set;
/// `size` is the group size from the `size` annotation. A no-op when no container requests TPUs
/// or the first TPU container already has `TPU_WORKER_HOSTNAMES` or `TPU_WORKER_ID`.
pub fn add_tpu_variables(pod: &mut Pod, size: i64) -> Result<(), PodMutationError> {
    let has_subgroups = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(SUB_GROUP_SIZE_ANNOTATION_KEY));
    if has_subgroups {
        return add_tpu_variables_subgroup(pod);
    }
    let facts = PodFacts::of(pod);
    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    let mut containers = tpu_containers(spec);
    let Some(first) = containers.first() else {
        return Ok(());
    };
    if already_injected(first) {
        return Ok(());
    }

    let (leader_name, worker_index) = if facts.is_leader {
        (facts.name.clone(), 0)
    } else {
        let (parent, ordinal) = parent_name_and_ordinal(&facts.name);
        if parent.is_empty() {
            return Err(parent_error(&facts.name));
        }
        // When the leader holds no TPUs it is not a TPU worker, so worker ids start at 0 for `-1`.
        let shift = if facts.leader_requests_tpus { 0 } else { 1 };
        (parent.to_string(), ordinal - shift)
    };

    let ports: Vec<String> = containers
        .iter()
        .zip(0..)
        .map(|(c, k)| {
            env_value(c, TPU_PROCESS_PORT)
                .unwrap_or_else(|| (i64::from(TPU_PROCESS_PORT_BASE) + k).to_string())
        })
        .collect();

    let mut hostnames = Vec::new();
    let mut addresses = Vec::new();
    let mut push_host = |host: String| {
        // One entry per TPU container: upstream assumes every pod has as many as this one.
        for port in &ports {
            hostnames.push(host.clone());
            addresses.push(format!("{host}:{port}"));
        }
    };
    if facts.leader_requests_tpus || facts.is_leader {
        push_host(format!("{leader_name}.{}", facts.subdomain));
    }
    for i in 1..size {
        push_host(format!("{leader_name}-{i}.{}", facts.subdomain));
    }
    let hostnames = hostnames.join(",");
    let addresses = addresses.join(",");

    let count = containers.len() as i64;
    for (k, container) in containers.iter_mut().enumerate() {
        let has_port = env_value(container, TPU_PROCESS_PORT).is_some();
        let env = container.env.get_or_insert_with(Vec::new);
        env.push(env_var(TPU_WORKER_HOSTNAMES, &hostnames));
        env.push(env_var(
            TPU_WORKER_ID,
            &(worker_index * count + k as i64).to_string(),
        ));
        env.push(env_var(TPU_NAME, &leader_name));
        env.push(env_var(TPU_PROCESS_ADDRESSES, &addresses));
        if !has_port {
            env.push(env_var(TPU_PROCESS_PORT, &ports[k]));
        }
    }
    Ok(())
}

/// The subgroup variant: only the first TPU container, hostnames of this pod's subgroup only, and
/// a subgroup-relative `TPU_WORKER_ID`.
fn add_tpu_variables_subgroup(pod: &mut Pod) -> Result<(), PodMutationError> {
    let facts = PodFacts::of(pod);
    let annotation = |key: &str| {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let label = |key: &str| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let subgroup_size_text = annotation(SUB_GROUP_SIZE_ANNOTATION_KEY);
    let subgroup_index_text = label(SUB_GROUP_INDEX_LABEL_KEY);
    let worker_index_text = label(WORKER_INDEX_LABEL_KEY);

    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    let mut containers = tpu_containers(spec);
    let Some(container) = containers.first_mut() else {
        return Ok(());
    };
    if already_injected(container) {
        return Ok(());
    }

    let subgroup_size = atoi(&subgroup_size_text)?;
    let mut subgroup_index = atoi(&subgroup_index_text)?;
    let worker_index = atoi(&worker_index_text)?;
    if subgroup_size <= 0 {
        return Err(PodMutationError::Invalid(format!(
            "subgroup size must be positive, got {subgroup_size} for pod {}",
            facts.name
        )));
    }
    let mut tpu_worker_id = worker_index % subgroup_size;
    if worker_index != 0 && !facts.leader_requests_tpus {
        // The leader is not a TPU worker: workers count from 1, so shift them down by one.
        tpu_worker_id = (worker_index - 1) % subgroup_size;
        subgroup_index = (worker_index - 1) / subgroup_size;
    }
    let port = env_value(container, TPU_PROCESS_PORT);
    let has_port = port.is_some();
    let port = port.unwrap_or_else(|| TPU_PROCESS_PORT_BASE.to_string());

    let mut start = subgroup_size * subgroup_index + 1;
    let mut end = subgroup_size * (subgroup_index + 1);
    let mut hosts = Vec::new();
    let leader_name = if facts.is_leader {
        hosts.push(format!("{}.{}", facts.name, facts.subdomain));
        end -= 1;
        facts.name.clone()
    } else {
        let (parent, _) = parent_name_and_ordinal(&facts.name);
        if parent.is_empty() {
            return Err(parent_error(&facts.name));
        }
        if facts.leader_requests_tpus && subgroup_index == 0 {
            // Subgroup 0 holds the leader, which takes the first slot.
            end -= 1;
            hosts.push(format!("{parent}.{}", facts.subdomain));
        } else if facts.leader_requests_tpus {
            // Every later subgroup shifts by the slot the leader took in subgroup 0.
            start -= 1;
            end -= 1;
        }
        parent.to_string()
    };
    for i in start..=end {
        hosts.push(format!("{leader_name}-{i}.{}", facts.subdomain));
    }
    let addresses: Vec<String> = hosts.iter().map(|h| format!("{h}:{port}")).collect();

    let env = container.env.get_or_insert_with(Vec::new);
    env.push(env_var(TPU_WORKER_HOSTNAMES, &hosts.join(",")));
    env.push(env_var(TPU_WORKER_ID, &tpu_worker_id.to_string()));
    env.push(env_var(TPU_NAME, &leader_name));
    env.push(env_var(TPU_PROCESS_ADDRESSES, &addresses.join(",")));
    if !has_port {
        env.push(env_var(TPU_PROCESS_PORT, &port));
    }
    Ok(())
}

/// What the TPU rules read from the pod besides its containers.
struct PodFacts {
    name: String,
    subdomain: String,
    is_leader: bool,
    leader_requests_tpus: bool,
}

impl PodFacts {
    fn of(pod: &Pod) -> Self {
        let labels = pod.metadata.labels.as_ref();
        let annotations = pod.metadata.annotations.as_ref();
        PodFacts {
            name: pod.metadata.name.clone().unwrap_or_default(),
            subdomain: pod
                .spec
                .as_ref()
                .and_then(|s| s.subdomain.clone())
                .unwrap_or_default(),
            is_leader: labels
                .and_then(|l| l.get(WORKER_INDEX_LABEL_KEY))
                .is_some_and(|v| v == "0"),
            leader_requests_tpus: annotations
                .and_then(|a| a.get(LEADER_REQUESTS_TPUS_ANNOTATION_KEY))
                .is_some_and(|v| v == "true"),
        }
    }
}

/// Containers, then init containers, that request TPUs, in pod order.
fn tpu_containers(spec: &mut PodSpec) -> Vec<&mut Container> {
    let init = spec.init_containers.iter_mut().flatten();
    spec.containers
        .iter_mut()
        .chain(init)
        .filter(|c| container_requests_tpus(c))
        .collect()
}

/// Upstream's idempotence check: the other variables are assumed present with these.
fn already_injected(container: &Container) -> bool {
    container
        .env
        .iter()
        .flatten()
        .any(|e| e.name == TPU_WORKER_HOSTNAMES || e.name == TPU_WORKER_ID)
}

/// The value of the first env var `name` ("" for a valueFrom var), as upstream's
/// `GetEnvVarValueIfInContainer`.
fn env_value(container: &Container, name: &str) -> Option<String> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .map(|e| e.value.clone().unwrap_or_default())
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..EnvVar::default()
    }
}

fn parent_error(pod_name: &str) -> PodMutationError {
    PodMutationError::Invalid(format!("parsing parent name from pod {pod_name}"))
}

#[cfg(test)]
mod tests {
    //! Ported from upstream's `pkg/utils/accelerators/tpu_test.go` tables.
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn tpu_container(name: &str, env: Vec<EnvVar>) -> Container {
        Container {
            name: name.to_string(),
            image: Some("busybox".to_string()),
            resources: Some(ResourceRequirements {
                limits: Some(BTreeMap::from([(
                    TPU_RESOURCE_NAME.to_string(),
                    Quantity("4".to_string()),
                )])),
                ..Default::default()
            }),
            env: if env.is_empty() { None } else { Some(env) },
            ..Default::default()
        }
    }

    fn pod(
        name: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        containers: Vec<Container>,
    ) -> Pod {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                labels: map(labels),
                annotations: map(annotations),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                subdomain: Some("default".to_string()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn env_of(container: &Container, name: &str) -> Option<String> {
        env_value(container, name)
    }

    struct Expect<'a> {
        hostnames: &'a str,
        id: &'a str,
        name: &'a str,
        addresses: &'a str,
        port: &'a str,
    }

    fn assert_env(container: &Container, expect: &Expect) {
        assert_eq!(
            env_of(container, TPU_WORKER_HOSTNAMES).as_deref(),
            Some(expect.hostnames)
        );
        assert_eq!(env_of(container, TPU_WORKER_ID).as_deref(), Some(expect.id));
        assert_eq!(env_of(container, TPU_NAME).as_deref(), Some(expect.name));
        assert_eq!(
            env_of(container, TPU_PROCESS_ADDRESSES).as_deref(),
            Some(expect.addresses)
        );
        assert_eq!(
            env_of(container, TPU_PROCESS_PORT).as_deref(),
            Some(expect.port)
        );
    }

    const LEADER_TPU: (&str, &str) = (LEADER_REQUESTS_TPUS_ANNOTATION_KEY, "true");

    #[test]
    fn leader_requests_tpus_leader_pod() {
        let mut p = pod(
            "test-sample-0",
            &[(WORKER_INDEX_LABEL_KEY, "0")],
            &[LEADER_TPU],
            vec![tpu_container("worker", vec![])],
        );
        add_tpu_variables(&mut p, 2).unwrap();
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_env(
            c,
            &Expect {
                hostnames: "test-sample-0.default,test-sample-0-1.default",
                id: "0",
                name: "test-sample-0",
                addresses: "test-sample-0.default:8476,test-sample-0-1.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn leader_requests_tpus_worker_pod() {
        let mut p = pod(
            "test-sample-0-1",
            &[(WORKER_INDEX_LABEL_KEY, "1")],
            &[LEADER_TPU],
            vec![tpu_container("worker", vec![])],
        );
        add_tpu_variables(&mut p, 2).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-0.default,test-sample-0-1.default",
                id: "1",
                name: "test-sample-0",
                addresses: "test-sample-0.default:8476,test-sample-0-1.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn leader_pod_without_annotation_still_counts_itself() {
        let mut p = pod(
            "test-sample-0",
            &[(WORKER_INDEX_LABEL_KEY, "0")],
            &[],
            vec![tpu_container("worker", vec![])],
        );
        add_tpu_variables(&mut p, 2).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-0.default,test-sample-0-1.default",
                id: "0",
                name: "test-sample-0",
                addresses: "test-sample-0.default:8476,test-sample-0-1.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn leader_without_tpus_worker_ids_shift_down() {
        let mut p = pod(
            "test-sample-0-1",
            &[(WORKER_INDEX_LABEL_KEY, "1")],
            &[],
            vec![tpu_container("worker", vec![])],
        );
        add_tpu_variables(&mut p, 2).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-0-1.default",
                id: "0",
                name: "test-sample-0",
                addresses: "test-sample-0-1.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn multi_container_lists_each_host_per_container() {
        let mut p = pod(
            "test-sample-0",
            &[(WORKER_INDEX_LABEL_KEY, "0")],
            &[LEADER_TPU],
            vec![tpu_container("c1", vec![]), tpu_container("c2", vec![])],
        );
        add_tpu_variables(&mut p, 2).unwrap();
        let containers = &p.spec.as_ref().unwrap().containers;
        let hostnames = "test-sample-0.default,test-sample-0.default,test-sample-0-1.default,test-sample-0-1.default";
        let addresses = "test-sample-0.default:8476,test-sample-0.default:8477,test-sample-0-1.default:8476,test-sample-0-1.default:8477";
        for (k, (id, port)) in [("0", "8476"), ("1", "8477")].iter().enumerate() {
            assert_env(
                &containers[k],
                &Expect {
                    hostnames,
                    id,
                    name: "test-sample-0",
                    addresses,
                    port,
                },
            );
        }
    }

    #[test]
    fn multi_container_custom_ports_are_kept() {
        let port = |v: &str| vec![env_var(TPU_PROCESS_PORT, v)];
        let mut p = pod(
            "test-sample-0",
            &[(WORKER_INDEX_LABEL_KEY, "0")],
            &[LEADER_TPU],
            vec![
                tpu_container("c1", port("8478")),
                tpu_container("c2", port("8479")),
            ],
        );
        add_tpu_variables(&mut p, 2).unwrap();
        let containers = &p.spec.as_ref().unwrap().containers;
        let addresses = "test-sample-0.default:8478,test-sample-0.default:8479,test-sample-0-1.default:8478,test-sample-0-1.default:8479";
        for (k, (id, port)) in [("0", "8478"), ("1", "8479")].iter().enumerate() {
            assert_env(
                &containers[k],
                &Expect {
                    hostnames: "test-sample-0.default,test-sample-0.default,test-sample-0-1.default,test-sample-0-1.default",
                    id,
                    name: "test-sample-0",
                    addresses,
                    port,
                },
            );
            // The user's port stays the only TPU_PROCESS_PORT.
            let ports = containers[k]
                .env
                .iter()
                .flatten()
                .filter(|e| e.name == TPU_PROCESS_PORT)
                .count();
            assert_eq!(ports, 1);
        }
    }

    #[test]
    fn tpus_in_init_containers() {
        let mut p = pod("sample-0", &[(WORKER_INDEX_LABEL_KEY, "0")], &[], vec![]);
        p.spec.as_mut().unwrap().init_containers = Some(vec![tpu_container("i1", vec![])]);
        add_tpu_variables(&mut p, 1).unwrap();
        let init = &p.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
        assert_env(
            init,
            &Expect {
                hostnames: "sample-0.default",
                id: "0",
                name: "sample-0",
                addresses: "sample-0.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn invalid_pod_name_is_an_error() {
        let mut p = pod("invalidname", &[], &[], vec![tpu_container("c1", vec![])]);
        assert!(matches!(
            add_tpu_variables(&mut p, 1),
            Err(PodMutationError::Invalid(m)) if m == "parsing parent name from pod invalidname"
        ));
    }

    #[test]
    fn no_tpu_containers_is_a_no_op() {
        let plain = Container {
            name: "c1".to_string(),
            ..Default::default()
        };
        let mut p = pod("x-0", &[], &[], vec![plain]);
        let before = p.clone();
        add_tpu_variables(&mut p, 1).unwrap();
        assert_eq!(p, before);
    }

    #[test]
    fn skips_when_tpu_worker_id_already_set() {
        for annotations in [vec![], vec![(SUB_GROUP_SIZE_ANNOTATION_KEY, "1")]] {
            let mut p = pod(
                "x-0",
                &[],
                &annotations,
                vec![tpu_container("c1", vec![env_var(TPU_WORKER_ID, "0")])],
            );
            add_tpu_variables(&mut p, 1).unwrap();
            assert_eq!(
                p.spec.as_ref().unwrap().containers[0]
                    .env
                    .as_ref()
                    .unwrap()
                    .len(),
                1
            );
        }
    }

    fn subgroup_pod(
        name: &str,
        worker: &str,
        subgroup: &str,
        annotations: &[(&str, &str)],
        env: Vec<EnvVar>,
    ) -> Pod {
        pod(
            name,
            &[
                (WORKER_INDEX_LABEL_KEY, worker),
                (SUB_GROUP_INDEX_LABEL_KEY, subgroup),
            ],
            annotations,
            vec![tpu_container("worker", env)],
        )
    }

    #[test]
    fn subgroup_leader_requests_tpus_subgroup_zero() {
        let mut p = subgroup_pod(
            "test-sample-1-3",
            "3",
            "0",
            &[LEADER_TPU, (SUB_GROUP_SIZE_ANNOTATION_KEY, "5")],
            vec![],
        );
        add_tpu_variables(&mut p, 10).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-1.default,test-sample-1-1.default,test-sample-1-2.default,test-sample-1-3.default,test-sample-1-4.default",
                id: "3",
                name: "test-sample-1",
                addresses: "test-sample-1.default:8476,test-sample-1-1.default:8476,test-sample-1-2.default:8476,test-sample-1-3.default:8476,test-sample-1-4.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn subgroup_leader_requests_tpus_later_subgroup_shifts() {
        let mut p = subgroup_pod(
            "test-sample-1-7",
            "7",
            "1",
            &[LEADER_TPU, (SUB_GROUP_SIZE_ANNOTATION_KEY, "4")],
            vec![],
        );
        add_tpu_variables(&mut p, 8).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-1-4.default,test-sample-1-5.default,test-sample-1-6.default,test-sample-1-7.default",
                id: "3",
                name: "test-sample-1",
                addresses: "test-sample-1-4.default:8476,test-sample-1-5.default:8476,test-sample-1-6.default:8476,test-sample-1-7.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn subgroup_leader_without_tpus_later_subgroup() {
        let mut p = subgroup_pod(
            "test-sample-1-5",
            "5",
            "1",
            &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "4")],
            vec![],
        );
        add_tpu_variables(&mut p, 9).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-1-5.default,test-sample-1-6.default,test-sample-1-7.default,test-sample-1-8.default",
                id: "0",
                name: "test-sample-1",
                addresses: "test-sample-1-5.default:8476,test-sample-1-6.default:8476,test-sample-1-7.default:8476,test-sample-1-8.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn subgroup_leader_excluded() {
        let mut p = subgroup_pod(
            "test-sample-0-2",
            "2",
            "0",
            &[
                (SUB_GROUP_SIZE_ANNOTATION_KEY, "2"),
                (
                    crate::labels::SUB_GROUP_POLICY_TYPE_ANNOTATION_KEY,
                    "LeaderExcluded",
                ),
            ],
            vec![],
        );
        add_tpu_variables(&mut p, 5).unwrap();
        assert_env(
            &p.spec.as_ref().unwrap().containers[0],
            &Expect {
                hostnames: "test-sample-0-1.default,test-sample-0-2.default",
                id: "1",
                name: "test-sample-0",
                addresses: "test-sample-0-1.default:8476,test-sample-0-2.default:8476",
                port: "8476",
            },
        );
    }

    #[test]
    fn subgroup_user_port_is_used_and_kept() {
        let mut p = subgroup_pod(
            "test-sample-1-5",
            "5",
            "1",
            &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "4")],
            vec![env_var(TPU_PROCESS_PORT, "8478")],
        );
        add_tpu_variables(&mut p, 9).unwrap();
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_env(
            c,
            &Expect {
                hostnames: "test-sample-1-5.default,test-sample-1-6.default,test-sample-1-7.default,test-sample-1-8.default",
                id: "0",
                name: "test-sample-1",
                addresses: "test-sample-1-5.default:8478,test-sample-1-6.default:8478,test-sample-1-7.default:8478,test-sample-1-8.default:8478",
                port: "8478",
            },
        );
        assert_eq!(c.env.as_ref().unwrap().len(), 5);
    }

    #[test]
    fn subgroup_leader_pod() {
        let mut p = subgroup_pod(
            "test-sample-0",
            "0",
            "0",
            &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "2")],
            vec![],
        );
        add_tpu_variables(&mut p, 4).unwrap();
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            env_of(c, TPU_WORKER_HOSTNAMES).as_deref(),
            Some("test-sample-0.default,test-sample-0-1.default")
        );
        assert_eq!(env_of(c, TPU_WORKER_ID).as_deref(), Some("0"));
    }

    #[test]
    fn subgroup_parse_errors() {
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Pairs, Pairs, &str); 4] = [
            (&[], &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "invalid")], "x"),
            (
                &[(SUB_GROUP_INDEX_LABEL_KEY, "invalid")],
                &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "1")],
                "x",
            ),
            (
                &[
                    (SUB_GROUP_INDEX_LABEL_KEY, "0"),
                    (WORKER_INDEX_LABEL_KEY, "invalid"),
                ],
                &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "1")],
                "x",
            ),
            (
                &[
                    (SUB_GROUP_INDEX_LABEL_KEY, "0"),
                    (WORKER_INDEX_LABEL_KEY, "1"),
                ],
                &[(SUB_GROUP_SIZE_ANNOTATION_KEY, "1")],
                "invalidname",
            ),
        ];
        for (labels, annotations, name) in cases {
            let mut p = pod(name, labels, annotations, vec![tpu_container("c1", vec![])]);
            assert!(add_tpu_variables(&mut p, 2).is_err(), "{labels:?}");
        }
    }

    #[test]
    fn requests_tpus_in_limits_requests_or_init_containers() {
        let requests_only = Container {
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([(
                    TPU_RESOURCE_NAME.to_string(),
                    Quantity("1".to_string()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let zero_limit = Container {
            resources: Some(ResourceRequirements {
                limits: Some(BTreeMap::from([(
                    TPU_RESOURCE_NAME.to_string(),
                    Quantity("0".to_string()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = |containers, init| PodSpec {
            containers,
            init_containers: init,
            ..Default::default()
        };
        assert!(pod_requests_tpus(&spec(
            vec![tpu_container("c1", vec![])],
            None
        )));
        assert!(pod_requests_tpus(&spec(vec![requests_only], None)));
        assert!(pod_requests_tpus(&spec(
            vec![],
            Some(vec![tpu_container("c1", vec![])])
        )));
        assert!(!pod_requests_tpus(&spec(vec![], None)));
        assert!(!pod_requests_tpus(&spec(vec![zero_limit], None)));
    }

    #[test]
    fn quantity_zero_forms() {
        assert!(!quantity_is_nonzero("0"));
        assert!(!quantity_is_nonzero("0.000"));
        assert!(!quantity_is_nonzero("0Gi"));
        assert!(quantity_is_nonzero("500m"));
        assert!(quantity_is_nonzero("4"));
        assert!(quantity_is_nonzero("0.1"));
    }
}
