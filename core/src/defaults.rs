//! Defaulting: the CRD's structural defaults, then the mutating webhook's.
//!
//! A LeaderWorkerSet gets its defaults in two layers between `kubectl apply` and storage, and
//! this module applies both, in the API server's order:
//!
//! 1. The CRD schema's structural defaults (upstream-lws.md §2), which the API server fills
//!    wherever the enclosing object exists: `replicas` 1, `size` 1, `startupPolicy`
//!    `LeaderCreated`, `restartPolicy` `RecreateGroupOnPodRestart`, `rolloutStrategy.type`
//!    `RollingUpdate` (when `rolloutStrategy` exists), `subGroupPolicyType` `LeaderWorker` (when
//!    `subGroupPolicy` exists), and `partition` 0 / `maxUnavailable` 1 / `maxSurge` 0 (when
//!    `rollingUpdateConfiguration` exists).
//! 2. The mutating webhook, `Default` in `pkg/webhooks/leaderworkerset_webhook.go` (§5.2):
//!    `Default` becomes `None`, an empty rollout type becomes `RollingUpdate`, a missing
//!    `rollingUpdateConfiguration` is filled, and `networkConfig` gets `subdomainPolicy: Shared`;
//!    since v0.11 also `groupIdentity: Ordinal` (a CRD default too) and
//!    `groupReplacementPolicy: PostTermination` (upstream-v0.11.md §A1.1, §A2.1); from upstream
//!    `main`, `podTerminationPolicy: Default` (a CRD default too, §A6.2).
//!
//! Go's `RolloutStrategy` is a struct value, not a pointer, so upstream always sees one; our
//! `Option` is created here, which is what the webhook's patch does to the stored object.

use crate::api::{
    GroupIdentity, GroupReplacementPolicy, LeaderWorkerSet, NetworkConfig, PodTerminationPolicy,
    RestartPolicy, RollingUpdateConfiguration, RolloutStrategy, RolloutStrategyType, StartupPolicy,
    SubGroupPolicyType, SubdomainPolicy, API_VERSION, KIND,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// CRD default of `spec.replicas`.
pub const DEFAULT_REPLICAS: i32 = 1;
/// CRD default of `spec.leaderWorkerTemplate.size`.
pub const DEFAULT_SIZE: i32 = 1;
/// CRD (and webhook) default of `rollingUpdateConfiguration.partition`.
pub const DEFAULT_PARTITION: i32 = 0;
/// CRD (and webhook) default of `rollingUpdateConfiguration.maxUnavailable`.
pub const DEFAULT_MAX_UNAVAILABLE: i32 = 1;
/// CRD (and webhook) default of `rollingUpdateConfiguration.maxSurge`.
pub const DEFAULT_MAX_SURGE: i32 = 0;

/// Fills every default a LeaderWorkerSet gets between `kubectl apply` and storage.
///
/// Used by the mutating webhook, the CLI (before validating or expanding a manifest) and every
/// decision that reads the spec. Idempotent: applying it twice gives the same object. Values the
/// user set are never changed, except the deprecated `restartPolicy: Default`, which becomes
/// `None` exactly as upstream's webhook rewrites it.
pub fn apply_defaults(lws: &mut LeaderWorkerSet) {
    apply_type_meta_defaults(lws);
    apply_crd_defaults(lws);
    apply_webhook_defaults(lws);
}

/// `apiVersion` and `kind` when the document left them out (e.g. a bare spec in the preview).
fn apply_type_meta_defaults(lws: &mut LeaderWorkerSet) {
    if lws.api_version.is_empty() {
        lws.api_version = API_VERSION.to_string();
    }
    if lws.kind.is_empty() {
        lws.kind = KIND.to_string();
    }
}

/// The structural defaults of the CRD schema (upstream-lws.md §2.2–§2.5).
fn apply_crd_defaults(lws: &mut LeaderWorkerSet) {
    let spec = &mut lws.spec;
    spec.replicas.get_or_insert(DEFAULT_REPLICAS);
    spec.startup_policy
        .get_or_insert(StartupPolicy::LeaderCreated);
    spec.group_identity.get_or_insert(GroupIdentity::Ordinal);
    spec.pod_termination_policy
        .get_or_insert(PodTerminationPolicy::Default);

    let template = &mut spec.leader_worker_template;
    template.size.get_or_insert(DEFAULT_SIZE);
    template
        .restart_policy
        .get_or_insert(RestartPolicy::RecreateGroupOnPodRestart);
    if let Some(policy) = template.sub_group_policy.as_mut() {
        policy
            .sub_group_policy_type
            .get_or_insert(SubGroupPolicyType::LeaderWorker);
    }

    if let Some(strategy) = spec.rollout_strategy.as_mut() {
        strategy
            .type_
            .get_or_insert(RolloutStrategyType::RollingUpdate);
        if let Some(config) = strategy.rolling_update_configuration.as_mut() {
            fill_rolling_update_configuration(config);
        }
    }
}

/// The mutating webhook's defaults (upstream-lws.md §5.2), in upstream's order.
fn apply_webhook_defaults(lws: &mut LeaderWorkerSet) {
    let spec = &mut lws.spec;
    let template = &mut spec.leader_worker_template;
    if template.restart_policy.is_none() {
        template.restart_policy = Some(RestartPolicy::RecreateGroupOnPodRestart);
    }
    // `Default` is deprecated: it always meant "leave the group alone".
    if template.restart_policy == Some(RestartPolicy::Default) {
        template.restart_policy = Some(RestartPolicy::None);
    }

    let strategy = spec
        .rollout_strategy
        .get_or_insert_with(RolloutStrategy::default);
    let strategy_type = *strategy
        .type_
        .get_or_insert(RolloutStrategyType::RollingUpdate);
    if strategy_type == RolloutStrategyType::RollingUpdate {
        let config = strategy
            .rolling_update_configuration
            .get_or_insert_with(RollingUpdateConfiguration::default);
        fill_rolling_update_configuration(config);
    }

    let network = spec
        .network_config
        .get_or_insert_with(NetworkConfig::default);
    network
        .subdomain_policy
        .get_or_insert(SubdomainPolicy::Shared);

    // v0.11 (upstream-v0.11.md §A1.1, §A2.1).
    spec.group_identity.get_or_insert(GroupIdentity::Ordinal);
    spec.group_replacement_policy
        .get_or_insert(GroupReplacementPolicy::PostTermination);
    // Upstream `main` (upstream-v0.11.md §A6.2).
    spec.pod_termination_policy
        .get_or_insert(PodTerminationPolicy::Default);
}

/// `partition` 0, `maxUnavailable` 1, `maxSurge` 0: both the CRD's per-field defaults and the
/// webhook's whole-object default, which agree.
fn fill_rolling_update_configuration(config: &mut RollingUpdateConfiguration) {
    config.partition.get_or_insert(DEFAULT_PARTITION);
    config
        .max_unavailable
        .get_or_insert(IntOrString::Int(DEFAULT_MAX_UNAVAILABLE));
    config
        .max_surge
        .get_or_insert(IntOrString::Int(DEFAULT_MAX_SURGE));
}

#[cfg(test)]
mod tests {
    //! Ports of "test defaulting" in upstream's `test/integration/webhooks/leaderworkerset_test.go`
    //! (upstream-lws.md §7.2), plus the structural defaults and idempotence.

    use super::*;
    use crate::api::SubGroupPolicy;
    use serde_json::json;

    /// upstream's `wrappers.BuildLeaderWorkerSet`: replicas 2, size 2, both templates, a
    /// rolling-update configuration of maxUnavailable 1 / maxSurge 0.
    fn build_lws() -> LeaderWorkerSet {
        serde_json::from_value(json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": "test-sample", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "leaderWorkerTemplate": {
                    "size": 2,
                    "leaderTemplate": {"spec": {"containers": [{"name": "leader", "image": "nginx"}]}},
                    "workerTemplate": {"spec": {"containers": [{"name": "worker", "image": "nginx"}]}}
                },
                "rolloutStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0}
                }
            }
        }))
        .expect("the fixture is a valid LeaderWorkerSet")
    }

    fn defaulted(mut lws: LeaderWorkerSet) -> LeaderWorkerSet {
        apply_defaults(&mut lws);
        lws
    }

    fn rolling_update(lws: &LeaderWorkerSet) -> &RollingUpdateConfiguration {
        lws.spec
            .rollout_strategy
            .as_ref()
            .and_then(|s| s.rolling_update_configuration.as_ref())
            .expect("defaulting always fills the rolling update configuration")
    }

    #[test]
    fn unset_replicas_default_to_one() {
        let mut lws = build_lws();
        lws.spec.replicas = None;
        let lws = defaulted(lws);
        assert_eq!(lws.spec.replicas, Some(1));
        assert_eq!(
            lws.spec.leader_worker_template.restart_policy,
            Some(RestartPolicy::RecreateGroupOnPodRestart)
        );
    }

    #[test]
    fn unset_size_defaults_to_one() {
        let mut lws = build_lws();
        lws.spec.leader_worker_template.size = None;
        let lws = defaulted(lws);
        assert_eq!(lws.spec.leader_worker_template.size, Some(1));
    }

    #[test]
    fn set_replicas_size_and_templates_are_kept() {
        let original = build_lws();
        let lws = defaulted(original.clone());
        assert_eq!(lws.spec.replicas, Some(2));
        assert_eq!(lws.spec.leader_worker_template.size, Some(2));
        assert_eq!(
            lws.spec.leader_worker_template.leader_template,
            original.spec.leader_worker_template.leader_template
        );
        assert_eq!(
            lws.spec.leader_worker_template.worker_template,
            original.spec.leader_worker_template.worker_template
        );
    }

    #[test]
    fn unset_restart_policy_defaults_to_recreate_group_on_pod_restart() {
        let lws = defaulted(build_lws());
        assert_eq!(
            lws.spec.leader_worker_template.restart_policy,
            Some(RestartPolicy::RecreateGroupOnPodRestart)
        );
    }

    #[test]
    fn set_restart_policy_is_kept() {
        for policy in [
            RestartPolicy::None,
            RestartPolicy::RecreateGroupAfterStart,
            RestartPolicy::RecreateGroupOnPodRestart,
        ] {
            let mut lws = build_lws();
            lws.spec.leader_worker_template.restart_policy = Some(policy);
            let lws = defaulted(lws);
            assert_eq!(lws.spec.leader_worker_template.restart_policy, Some(policy));
        }
    }

    #[test]
    fn deprecated_default_restart_policy_becomes_none() {
        let mut lws = build_lws();
        lws.spec.leader_worker_template.restart_policy = Some(RestartPolicy::Default);
        let lws = defaulted(lws);
        assert_eq!(
            lws.spec.leader_worker_template.restart_policy,
            Some(RestartPolicy::None)
        );
    }

    #[test]
    fn unset_startup_policy_defaults_to_leader_created() {
        let lws = defaulted(build_lws());
        assert_eq!(lws.spec.startup_policy, Some(StartupPolicy::LeaderCreated));
    }

    #[test]
    fn set_startup_policy_is_kept() {
        let mut lws = build_lws();
        lws.spec.startup_policy = Some(StartupPolicy::LeaderReady);
        let lws = defaulted(lws);
        assert_eq!(lws.spec.startup_policy, Some(StartupPolicy::LeaderReady));
    }

    #[test]
    fn missing_network_config_gets_shared_subdomain_policy() {
        let mut lws = build_lws();
        lws.spec.network_config = None;
        let lws = defaulted(lws);
        assert_eq!(
            lws.spec.network_config,
            Some(NetworkConfig {
                subdomain_policy: Some(SubdomainPolicy::Shared)
            })
        );
    }

    #[test]
    fn network_config_without_subdomain_policy_gets_shared() {
        let mut lws = build_lws();
        lws.spec.network_config = Some(NetworkConfig::default());
        let lws = defaulted(lws);
        assert_eq!(lws.subdomain_policy(), SubdomainPolicy::Shared);
        assert!(lws
            .spec
            .network_config
            .is_some_and(|n| n.subdomain_policy.is_some()));
    }

    #[test]
    fn set_subdomain_policy_is_kept() {
        let mut lws = build_lws();
        lws.spec.network_config = Some(NetworkConfig {
            subdomain_policy: Some(SubdomainPolicy::UniquePerReplica),
        });
        let lws = defaulted(lws);
        assert_eq!(lws.subdomain_policy(), SubdomainPolicy::UniquePerReplica);
    }

    #[test]
    fn empty_rollout_strategy_gets_rolling_update_with_default_configuration() {
        let mut lws = build_lws();
        lws.spec.rollout_strategy = Some(RolloutStrategy::default());
        let lws = defaulted(lws);
        assert_eq!(
            lws.spec.rollout_strategy,
            Some(RolloutStrategy {
                type_: Some(RolloutStrategyType::RollingUpdate),
                rolling_update_configuration: Some(RollingUpdateConfiguration {
                    partition: Some(0),
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::Int(0)),
                }),
            })
        );
    }

    #[test]
    fn missing_rollout_strategy_gets_rolling_update_with_default_configuration() {
        let mut lws = build_lws();
        lws.spec.rollout_strategy = None;
        let lws = defaulted(lws);
        let config = rolling_update(&lws);
        assert_eq!(config.partition, Some(0));
        assert_eq!(config.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(config.max_surge, Some(IntOrString::Int(0)));
    }

    #[test]
    fn configured_rollout_strategy_is_kept() {
        let configured = RolloutStrategy {
            type_: Some(RolloutStrategyType::RollingUpdate),
            rolling_update_configuration: Some(RollingUpdateConfiguration {
                partition: Some(2),
                max_unavailable: Some(IntOrString::Int(2)),
                max_surge: Some(IntOrString::Int(1)),
            }),
        };
        let mut lws = build_lws();
        lws.spec.rollout_strategy = Some(configured.clone());
        let lws = defaulted(lws);
        assert_eq!(lws.spec.rollout_strategy, Some(configured));
    }

    #[test]
    fn partial_rolling_update_configuration_gets_per_field_defaults() {
        let mut lws = build_lws();
        lws.spec.rollout_strategy = Some(RolloutStrategy {
            type_: None,
            rolling_update_configuration: Some(RollingUpdateConfiguration {
                partition: None,
                max_unavailable: None,
                max_surge: Some(IntOrString::String("50%".into())),
            }),
        });
        let lws = defaulted(lws);
        let config = rolling_update(&lws);
        assert_eq!(config.partition, Some(0));
        assert_eq!(config.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(config.max_surge, Some(IntOrString::String("50%".into())));
    }

    #[test]
    fn sub_group_policy_type_defaults_to_leader_worker() {
        let mut lws = build_lws();
        lws.spec.leader_worker_template.sub_group_policy = Some(SubGroupPolicy {
            sub_group_policy_type: None,
            sub_group_size: Some(2),
        });
        let lws = defaulted(lws);
        let policy = lws
            .spec
            .leader_worker_template
            .sub_group_policy
            .expect("the policy was set");
        assert_eq!(
            policy.sub_group_policy_type,
            Some(SubGroupPolicyType::LeaderWorker)
        );
        assert_eq!(policy.sub_group_size, Some(2));
    }

    #[test]
    fn absent_sub_group_policy_stays_absent() {
        let lws = defaulted(build_lws());
        assert_eq!(lws.spec.leader_worker_template.sub_group_policy, None);
    }

    #[test]
    fn missing_type_meta_is_filled() {
        let lws = defaulted(LeaderWorkerSet::default());
        assert_eq!(lws.api_version, API_VERSION);
        assert_eq!(lws.kind, KIND);
    }

    #[test]
    fn empty_object_gets_every_default() {
        let lws = defaulted(LeaderWorkerSet::default());
        assert_eq!(lws.replicas(), 1);
        assert_eq!(lws.spec.replicas, Some(1));
        assert_eq!(lws.spec.leader_worker_template.size, Some(1));
        assert_eq!(lws.spec.startup_policy, Some(StartupPolicy::LeaderCreated));
        assert_eq!(
            lws.spec.rollout_strategy.as_ref().and_then(|s| s.type_),
            Some(RolloutStrategyType::RollingUpdate)
        );
        assert_eq!(rolling_update(&lws).partition, Some(0));
        assert_eq!(lws.subdomain_policy(), SubdomainPolicy::Shared);
    }

    #[test]
    fn unset_pod_termination_policy_defaults_to_default_and_parallel_is_kept() {
        let lws = defaulted(build_lws());
        assert_eq!(
            lws.spec.pod_termination_policy,
            Some(PodTerminationPolicy::Default)
        );
        let mut parallel = build_lws();
        parallel.spec.pod_termination_policy = Some(PodTerminationPolicy::Parallel);
        assert_eq!(
            defaulted(parallel).spec.pod_termination_policy,
            Some(PodTerminationPolicy::Parallel)
        );
    }

    #[test]
    fn defaulting_is_idempotent() {
        let mut sparse = LeaderWorkerSet::default();
        sparse.spec.leader_worker_template.restart_policy = Some(RestartPolicy::Default);
        sparse.spec.leader_worker_template.sub_group_policy = Some(SubGroupPolicy::default());
        for lws in [build_lws(), sparse] {
            let once = defaulted(lws);
            let twice = defaulted(once.clone());
            assert_eq!(once, twice);
        }
    }
}
