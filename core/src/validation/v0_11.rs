//! The fields upstream added in v0.11 and later `main` (upstream-v0.11.md §A1, §A2, §A4, §A6):
//! their upstream rules, and a refusal for each feature this controller does not run yet.
//!
//! The fields are in our CRD and decoded, so nothing a user writes is dropped. A value that asks
//! for behaviour we do not implement is refused with its field path instead of being stored and
//! ignored (docs/differences.md, "v0.11 fields").
//!
//! `podTerminationPolicy` needs no rule here: both values run ([`crate::reconcile::termination`]),
//! any other value is refused with its path when the document is decoded (the CRD enum
//! upstream), and it may change in both directions, as upstream allows (§A6.2).
//! `maxGroupRestarts` runs ([`crate::reconcile::budget`]) and is refused only where no group is
//! ever recreated (`restartPolicy: None`).

use crate::api::{GroupIdentity, GroupReplacementPolicy, LeaderWorkerSet, RestartPolicy};
use crate::field_path::{FieldError, FieldErrors, FieldPath};

/// Upstream's message for a changed `groupIdentity` (§A1.1).
pub const GROUP_IDENTITY_IMMUTABLE_MESSAGE: &str = "groupIdentity is immutable";

/// Why `groupReplacementPolicy: Immediate` is refused with `Ordinal` groups (§A2.1; upstream's
/// exact words were not found).
pub const IMMEDIATE_NEEDS_HASH_MESSAGE: &str =
    "Immediate is only supported with groupIdentity Hash";

/// Refusal of `spec.scheduling` until native gang scheduling lands.
pub const SCHEDULING_UNSUPPORTED_MESSAGE: &str =
    "workload-aware scheduling (feature gate WorkloadAwareScheduling) is not supported by this controller yet";

/// Why `maxGroupRestarts` is refused with `restartPolicy: None` (§A6.1; upstream's exact words
/// were not found): no group is ever recreated, so there is nothing to bound.
pub const MAX_GROUP_RESTARTS_NEEDS_RECREATION_MESSAGE: &str =
    "maxGroupRestarts requires restartPolicy RecreateGroupOnPodRestart or RecreateGroupAfterStart";

/// The values that ask for behaviour this controller does not run: refused at admission, and
/// a LeaderWorkerSet stored with one (by another controller) is not reconciled.
pub fn unsupported(lws: &LeaderWorkerSet) -> FieldErrors {
    let spec = &lws.spec;
    let mut errors = FieldErrors::new();
    if spec.group_identity == Some(GroupIdentity::Hash) {
        errors.push(FieldError::not_supported(
            group_identity_path(),
            GroupIdentity::Hash.as_str(),
            &[GroupIdentity::Ordinal.as_str()],
        ));
    }
    if spec.group_replacement_policy == Some(GroupReplacementPolicy::Immediate)
        && spec.group_identity != Some(GroupIdentity::Hash)
    {
        errors.push(FieldError::invalid(
            FieldPath::new("spec").child("groupReplacementPolicy"),
            format!("{:?}", GroupReplacementPolicy::Immediate.as_str()),
            IMMEDIATE_NEEDS_HASH_MESSAGE,
        ));
    }
    if spec.scheduling.is_some() {
        errors.push(FieldError::forbidden(
            FieldPath::new("spec").child("scheduling"),
            SCHEDULING_UNSUPPORTED_MESSAGE,
        ));
    }
    errors
}

/// Rules for a LeaderWorkerSet (defaulted) on create and update: [`unsupported`] and the rules
/// of the fields that run.
pub fn validate(lws: &LeaderWorkerSet) -> FieldErrors {
    let mut errors = unsupported(lws);
    let template = &lws.spec.leader_worker_template;
    if let (Some(limit), Some(RestartPolicy::None)) =
        (template.max_group_restarts, template.restart_policy)
    {
        errors.push(FieldError::invalid(
            FieldPath::new("spec")
                .child("leaderWorkerTemplate")
                .child("maxGroupRestarts"),
            limit.to_string(),
            MAX_GROUP_RESTARTS_NEEDS_RECREATION_MESSAGE,
        ));
    }
    errors
}

/// Rules for changing `old` into `new` (both defaulted): `groupIdentity` is immutable, an unset
/// value counting as `Ordinal`.
pub fn validate_update(old: &LeaderWorkerSet, new: &LeaderWorkerSet) -> FieldErrors {
    let identity =
        |lws: &LeaderWorkerSet| lws.spec.group_identity.unwrap_or(GroupIdentity::Ordinal);
    if identity(old) == identity(new) {
        return FieldErrors::new();
    }
    vec![FieldError::invalid(
        group_identity_path(),
        format!("{:?}", identity(new).as_str()),
        GROUP_IDENTITY_IMMUTABLE_MESSAGE,
    )]
}

fn group_identity_path() -> FieldPath {
    FieldPath::new("spec").child("groupIdentity")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_lws_value;
    use crate::defaults::apply_defaults;
    use serde_json::json;

    fn lws(spec: serde_json::Value) -> LeaderWorkerSet {
        let mut lws = decode_lws_value(json!({"metadata": {"name": "x"}, "spec": spec})).unwrap();
        apply_defaults(&mut lws);
        lws
    }

    fn messages(errors: &FieldErrors) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_accepted() {
        let defaulted = lws(json!({}));
        assert_eq!(defaulted.spec.group_identity, Some(GroupIdentity::Ordinal));
        assert_eq!(
            defaulted.spec.group_replacement_policy,
            Some(GroupReplacementPolicy::PostTermination)
        );
        assert!(validate(&defaulted).is_empty());
        let explicit = lws(json!({"groupIdentity": "Ordinal",
            "groupReplacementPolicy": "PostTermination", "podTerminationPolicy": "Default"}));
        assert!(validate(&explicit).is_empty());
    }

    #[test]
    fn features_not_implemented_are_refused_with_their_path() {
        let refused = lws(json!({
            "groupIdentity": "Hash",
            "groupReplacementPolicy": "Immediate",
            "scheduling": {"replica": {}},
        }));
        assert_eq!(
            messages(&validate(&refused)),
            [
                r#"spec.groupIdentity: Unsupported value: "Hash": supported values: "Ordinal""#,
                &format!("spec.scheduling: Forbidden: {SCHEDULING_UNSUPPORTED_MESSAGE}"),
            ]
        );
    }

    #[test]
    fn max_group_restarts_needs_a_policy_that_recreates_groups() {
        for policy in [
            json!(null),
            json!("RecreateGroupOnPodRestart"),
            json!("RecreateGroupAfterStart"),
        ] {
            let budget = lws(
                json!({"leaderWorkerTemplate": {"maxGroupRestarts": 0, "restartPolicy": policy}}),
            );
            assert!(validate(&budget).is_empty(), "{policy}");
        }
        let refused =
            lws(json!({"leaderWorkerTemplate": {"maxGroupRestarts": 3, "restartPolicy": "None"}}));
        assert_eq!(
            messages(&validate(&refused)),
            [format!(
                "spec.leaderWorkerTemplate.maxGroupRestarts: Invalid value: 3: {MAX_GROUP_RESTARTS_NEEDS_RECREATION_MESSAGE}"
            )]
        );
    }

    #[test]
    fn immediate_replacement_needs_hash_groups() {
        let refused = lws(json!({"groupReplacementPolicy": "Immediate"}));
        assert_eq!(
            messages(&validate(&refused)),
            [format!(
                r#"spec.groupReplacementPolicy: Invalid value: "Immediate": {IMMEDIATE_NEEDS_HASH_MESSAGE}"#
            )]
        );
    }

    #[test]
    fn group_identity_is_immutable_but_unset_equals_ordinal() {
        let unset = decode_lws_value(json!({"metadata": {"name": "x"}})).unwrap();
        let ordinal = lws(json!({"groupIdentity": "Ordinal"}));
        let hash = lws(json!({"groupIdentity": "Hash"}));
        assert!(validate_update(&unset, &ordinal).is_empty());
        assert_eq!(
            messages(&validate_update(&ordinal, &hash)),
            [format!(
                r#"spec.groupIdentity: Invalid value: "Hash": {GROUP_IDENTITY_IMMUTABLE_MESSAGE}"#
            )]
        );
    }

    #[test]
    fn unknown_values_are_refused_when_decoded() {
        let error = decode_lws_value(json!({"spec": {"groupIdentity": "Random"}})).unwrap_err();
        assert_eq!(error[0].path.as_str(), "spec.groupIdentity");
    }

    #[test]
    fn both_pod_termination_policies_are_accepted() {
        for value in ["Default", "Parallel"] {
            let lws = lws(json!({"podTerminationPolicy": value}));
            assert_eq!(
                lws.spec.pod_termination_policy.map(|p| p.as_str()),
                Some(value)
            );
            assert!(validate(&lws).is_empty(), "{value}");
            assert!(
                crate::validation::validate_create(&lws).is_empty(),
                "{value}"
            );
        }
    }

    #[test]
    fn other_pod_termination_policies_are_refused_with_their_path() {
        for value in ["Sequential", "parallel", "Foreground"] {
            let errors = crate::ops::validate_value(
                json!({"metadata": {"name": "x"}, "spec": {"podTerminationPolicy": value}}),
                None,
            );
            assert_eq!(errors.len(), 1, "{value}: {errors:?}");
            assert_eq!(
                errors[0].path.as_str(),
                "spec.podTerminationPolicy",
                "{value}"
            );
            assert!(
                errors[0]
                    .to_string()
                    .contains(r#"supported values: "Default", "Parallel""#),
                "{value}: {}",
                errors[0]
            );
        }
    }

    #[test]
    fn pod_termination_policy_is_mutable_both_ways() {
        let manifest = |value: &str| json!({"metadata": {"name": "x"}, "spec": {"podTerminationPolicy": value}});
        for (old, new) in [("Default", "Parallel"), ("Parallel", "Default")] {
            let errors = crate::ops::validate_value(manifest(new), Some(manifest(old)));
            assert!(errors.is_empty(), "{old} -> {new}: {errors:?}");
        }
        // An object stored before the field existed, then set.
        let unset = json!({"metadata": {"name": "x"}});
        assert!(crate::ops::validate_value(manifest("Parallel"), Some(unset)).is_empty());
    }
}
