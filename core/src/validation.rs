//! Validation on create and update, every rule of the validating webhook.
//!
//! Mirrors `ValidateCreate`, `ValidateUpdate`, `generalValidate` and
//! `validateUpdateSubGroupPolicy` in `pkg/webhooks/leaderworkerset_webhook.go`
//! (upstream-lws.md §5.3), with upstream's messages, its order of checks, and values rendered
//! the way apimachinery's `field.Error` renders them (numbers bare, strings quoted, int-or-string
//! values as JSON).
//!
//! Inputs are already defaulted ([`crate::defaults::apply_defaults`]); enum values and types were
//! checked when the document was decoded ([`crate::decode`]), as the CRD schema does upstream.
//!
//! Deliberate differences from upstream (docs/differences.md):
//! - Sub-group errors are reported at `spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize`,
//!   the JSON name, where upstream hand-types `SubGroupPolicy` with a capital S.
//! - A `subGroupPolicy` without `subGroupSize`, or with `subGroupSize: 0`, is a field error here;
//!   upstream dereferences a nil pointer or divides by zero and the webhook panics.
//! - A missing `metadata.namespace` is not an error: the API server always sets one, and the CLI
//!   reads a manifest without one as namespace `default`, as kubectl does.

mod metadata;
mod v0_11;

pub use metadata::TOTAL_ANNOTATION_SIZE_LIMIT_BYTES;

use crate::api::{LeaderWorkerSet, SubGroupPolicyType};
use crate::field_path::{FieldError, FieldErrors, FieldPath};
use crate::intstr::{is_valid_percent, percent_value, resolve_int_or_percent};
use crate::labels::SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub use crate::intstr::INVALID_PERCENT_MESSAGE;

/// Largest `spec.replicas` (the CRD's maximum, repeated by the webhook).
pub const MAX_REPLICAS: i32 = 1_000_000;

/// apimachinery's `FieldImmutableErrorMsg`.
pub const FIELD_IMMUTABLE_MESSAGE: &str = "field is immutable";

const DNS1035_LABEL_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS_LABEL_MAX_LENGTH: usize = 63;

/// All problems with a new LeaderWorkerSet (already defaulted); empty means valid.
///
/// Used by the validating webhook on CREATE and by `lws validate`. The errors come in upstream's
/// order: metadata, replicas and size, rollout configuration, sub-groups.
pub fn validate_create(lws: &LeaderWorkerSet) -> FieldErrors {
    let mut errors = general_validate(lws);
    errors.extend(v0_11::validate(lws));
    errors
}

/// All problems with changing `old` into `new` (both defaulted); empty means valid.
///
/// Every create rule applies to `new`; on top, `subGroupSize` can be neither changed, added nor
/// removed. Everything else (size, templates, replicas, subdomain policy, restart and startup
/// policies) may change.
pub fn validate_update(old: &LeaderWorkerSet, new: &LeaderWorkerSet) -> FieldErrors {
    let mut errors = validate_create(new);
    errors.extend(v0_11::validate_update(old, new));
    let size_path = sub_group_size_path();
    let old_policy = old.spec.leader_worker_template.sub_group_policy.as_ref();
    let new_policy = new.spec.leader_worker_template.sub_group_policy.as_ref();
    match (old_policy, new_policy) {
        (Some(old_policy), Some(new_policy)) => {
            // A missing size is reported by general_validate on `new`; upstream would panic.
            if let (Some(old_size), Some(new_size)) =
                (old_policy.sub_group_size, new_policy.sub_group_size)
            {
                if old_size != new_size {
                    errors.push(FieldError::invalid(
                        size_path,
                        new_size,
                        FIELD_IMMUTABLE_MESSAGE,
                    ));
                }
            }
        }
        (None, Some(new_policy)) => errors.push(FieldError::invalid(
            size_path,
            optional_number(new_policy.sub_group_size),
            "cannot enable subGroupSize after the lws is already created",
        )),
        (Some(old_policy), None) => errors.push(FieldError::invalid(
            size_path,
            optional_number(old_policy.sub_group_size),
            "cannot remove subGroupSize after enabled",
        )),
        (None, None) => {}
    }
    // Unreachable after defaulting (the webhook fills `Shared`), kept because upstream has it.
    if let Some(network) = &new.spec.network_config {
        if network.subdomain_policy.is_none() {
            let old_value = old
                .spec
                .network_config
                .as_ref()
                .and_then(|n| n.subdomain_policy)
                .map_or_else(|| "null".to_string(), |p| go_quote(p.as_str()));
            errors.push(FieldError::invalid(
                spec_path().child("networkConfig").child("subdomainPolicy"),
                old_value,
                "cannot set subdomainPolicy as null",
            ));
        }
    }
    errors
}

/// What in `lws` asks for a feature of upstream v0.11 or later that this controller does not run
/// yet; the reconcile leaves such a LeaderWorkerSet alone rather than run it differently.
pub fn unsupported_features(lws: &LeaderWorkerSet) -> FieldErrors {
    v0_11::unsupported(lws)
}

/// `generalValidate`: the rules shared by create and update.
fn general_validate(lws: &LeaderWorkerSet) -> FieldErrors {
    let mut errors = validate_object_meta(lws);
    errors.extend(validate_replicas_and_size(lws));
    errors.extend(validate_rolling_update(lws));
    errors.extend(validate_sub_groups(lws));
    errors
}

fn spec_path() -> FieldPath {
    FieldPath::new("spec")
}

fn rolling_update_path() -> FieldPath {
    spec_path()
        .child("rolloutStrategy")
        .child("rollingUpdateConfiguration")
}

/// Upstream spells this path `spec.leaderWorkerTemplate.SubGroupPolicy.subGroupSize`; we use the
/// JSON name so the path names a field the user can find (docs/differences.md).
fn sub_group_size_path() -> FieldPath {
    spec_path()
        .child("leaderWorkerTemplate")
        .child("subGroupPolicy")
        .child("subGroupSize")
}

/// `ValidateObjectMeta` with `NameIsDNS1035Label`: the name becomes the headless Service's name,
/// so it must be a DNS-1035 label; labels and annotations as apimachinery checks them
/// ([`metadata`]).
fn validate_object_meta(lws: &LeaderWorkerSet) -> FieldErrors {
    let metadata = FieldPath::new("metadata");
    let mut errors = FieldErrors::new();
    if let Some(generate_name) = lws.metadata.generate_name.as_deref() {
        if !generate_name.is_empty() {
            // A prefix may end in '-': the API server appends a random suffix.
            let masked = mask_trailing_dash(generate_name);
            for message in dns1035_label_errors(&masked) {
                errors.push(FieldError::invalid(
                    metadata.child("generateName"),
                    go_quote(generate_name),
                    message,
                ));
            }
        }
    }
    let name = lws.name();
    if name.is_empty() {
        errors.push(FieldError::required(
            metadata.child("name"),
            "name or generateName is required",
        ));
    } else {
        for message in dns1035_label_errors(name) {
            errors.push(FieldError::invalid(
                metadata.child("name"),
                go_quote(name),
                message,
            ));
        }
    }
    if let Some(namespace) = lws.metadata.namespace.as_deref() {
        if !namespace.is_empty() {
            for message in dns1123_label_errors(namespace) {
                errors.push(FieldError::invalid(
                    metadata.child("namespace"),
                    go_quote(namespace),
                    message,
                ));
            }
        }
    }
    errors.extend(metadata::validate_labels(
        lws.metadata.labels.as_ref(),
        &metadata.child("labels"),
    ));
    errors.extend(metadata::validate_annotations(
        lws.metadata.annotations.as_ref(),
        &metadata.child("annotations"),
    ));
    errors
}

/// Range of `replicas` and `size`, and their product (the total pod count) within `int32`.
fn validate_replicas_and_size(lws: &LeaderWorkerSet) -> FieldErrors {
    let replicas_path = spec_path().child("replicas");
    let mut errors = FieldErrors::new();
    if let Some(replicas) = lws.spec.replicas {
        if replicas < 0 {
            errors.push(FieldError::invalid(
                replicas_path.clone(),
                replicas,
                "replicas must be equal or greater than 0",
            ));
        }
        if replicas > MAX_REPLICAS {
            errors.push(FieldError::invalid(
                replicas_path.clone(),
                replicas,
                format!("replicas must be equal or less than {MAX_REPLICAS}"),
            ));
        }
    }
    let size = lws.size();
    if size < 1 {
        errors.push(FieldError::invalid(
            spec_path().child("leaderWorkerTemplate").child("size"),
            size,
            "size must be equal or greater than 1",
        ));
    }
    let replicas = lws.replicas();
    if i64::from(replicas) * i64::from(size) > i64::from(i32::MAX) {
        errors.push(FieldError::invalid(
            replicas_path,
            replicas,
            format!(
                "the product of replicas and worker replicas must not exceed {}",
                i32::MAX
            ),
        ));
    }
    errors
}

/// `maxUnavailable`, `maxSurge` and `partition`: their forms, and that a rollout can progress
/// (both limits resolving to 0 would stall it).
fn validate_rolling_update(lws: &LeaderWorkerSet) -> FieldErrors {
    let Some(config) = lws
        .spec
        .rollout_strategy
        .as_ref()
        .and_then(|s| s.rolling_update_configuration.as_ref())
    else {
        // Unreachable after defaulting; upstream would dereference nil here.
        return FieldErrors::new();
    };
    // Go's zero value for an IntOrString is the integer 0.
    let zero = IntOrString::Int(0);
    let max_unavailable = config.max_unavailable.as_ref().unwrap_or(&zero);
    let max_surge = config.max_surge.as_ref().unwrap_or(&zero);
    let max_unavailable_path = rolling_update_path().child("maxUnavailable");
    let max_surge_path = rolling_update_path().child("maxSurge");

    let mut errors = FieldErrors::new();
    errors.extend(validate_nonnegative_int_or_percent(
        max_unavailable,
        &max_unavailable_path,
    ));
    errors.extend(validate_not_more_than_100_percent(
        max_unavailable,
        &max_unavailable_path,
    ));
    errors.extend(validate_nonnegative_int_or_percent(
        max_surge,
        &max_surge_path,
    ));
    errors.extend(validate_not_more_than_100_percent(
        max_surge,
        &max_surge_path,
    ));
    if let Some(partition) = config.partition {
        errors.extend(validate_nonnegative(
            i64::from(partition),
            &rolling_update_path().child("partition"),
        ));
    }

    let replicas = lws.replicas();
    // A resolution error counts as 0 below, as the Go code reads the zero value it returned.
    let max_unavailable_value = resolve_int_or_percent(max_unavailable, replicas, false)
        .unwrap_or_else(|_| {
            errors.push(FieldError::invalid(
                max_unavailable_path.clone(),
                int_or_string_value(max_unavailable),
                "invalid value",
            ));
            0
        });
    let max_surge_value = resolve_int_or_percent(max_surge, replicas, true).unwrap_or_else(|_| {
        errors.push(FieldError::invalid(
            max_surge_path.clone(),
            int_or_string_value(max_surge),
            "invalid value",
        ));
        0
    });
    if max_unavailable_value == 0 && max_surge_value == 0 && replicas != 0 {
        errors.push(FieldError::invalid(
            max_unavailable_path,
            int_or_string_value(max_unavailable),
            "must not be 0 when `maxSurge` is 0",
        ));
    }
    errors
}

/// upstream's `validatePositiveIntOrPercent` (despite the name: non-negative).
fn validate_nonnegative_int_or_percent(value: &IntOrString, path: &FieldPath) -> FieldErrors {
    match value {
        IntOrString::Int(number) => validate_nonnegative(i64::from(*number), path),
        IntOrString::String(text) if is_valid_percent(text) => FieldErrors::new(),
        IntOrString::String(_) => vec![FieldError::invalid(
            path.clone(),
            int_or_string_value(value),
            INVALID_PERCENT_MESSAGE,
        )],
    }
}

/// upstream's `isNotMoreThan100Percent`, aligned with StatefulSet's validation.
fn validate_not_more_than_100_percent(value: &IntOrString, path: &FieldPath) -> FieldErrors {
    match percent_value(value) {
        Some(percent) if percent > 100 => vec![FieldError::invalid(
            path.clone(),
            int_or_string_value(value),
            "must not be greater than 100%",
        )],
        _ => FieldErrors::new(),
    }
}

/// upstream's `validateNonnegativeField`.
fn validate_nonnegative(value: i64, path: &FieldPath) -> FieldErrors {
    if value < 0 {
        return vec![FieldError::invalid(
            path.clone(),
            value,
            "must be greater than or equal to 0",
        )];
    }
    FieldErrors::new()
}

/// `subGroupSize` against `size`, or the sub-group exclusivity annotation without a policy.
fn validate_sub_groups(lws: &LeaderWorkerSet) -> FieldErrors {
    let Some(policy) = lws.spec.leader_worker_template.sub_group_policy.as_ref() else {
        let Some(value) = lws.annotation(SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY) else {
            return FieldErrors::new();
        };
        return vec![FieldError::invalid(
            FieldPath::new("metadata")
                .child("annotations")
                .child(SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY),
            go_quote(value),
            "cannot have subgroup-exclusive-topology without subGroupSize set",
        )];
    };
    let path = sub_group_size_path();
    let Some(sub_group_size) = policy.sub_group_size else {
        return vec![FieldError::required(path, "")];
    };
    let size = lws.size();
    let mut errors = FieldErrors::new();
    if sub_group_size < 1 {
        errors.push(FieldError::invalid(
            path.clone(),
            sub_group_size,
            "subGroupSize must be equal or greater than 1",
        ));
    }
    // Upstream divides by zero here and the webhook panics; the error above is enough.
    if sub_group_size == 0 {
        return errors;
    }
    // Go's `%` truncates toward zero like Rust's; wrapping only matters for i32::MIN % -1.
    let divides = |n: i32| n.wrapping_rem(sub_group_size) == 0;
    if !divides(size) && !divides(size.wrapping_sub(1)) {
        errors.push(FieldError::invalid(
            path.clone(),
            sub_group_size,
            "size or size - 1 must be divisible by subGroupSize",
        ));
    }
    if size < sub_group_size {
        errors.push(FieldError::invalid(
            path.clone(),
            sub_group_size,
            "subGroupSize cannot be larger than size",
        ));
    }
    if policy.sub_group_policy_type == Some(SubGroupPolicyType::LeaderExcluded)
        && !divides(size.wrapping_sub(1))
    {
        errors.push(FieldError::invalid(
            path,
            sub_group_size,
            "size-1 must be divisible by subGroupSize when using LeaderExcluded",
        ));
    }
    errors
}

/// apimachinery's `IsDNS1035Label` messages for `value` (empty when valid).
pub fn dns1035_label_errors(value: &str) -> Vec<&'static str> {
    label_errors(value, |b| b.is_ascii_lowercase(), DNS1035_LABEL_MESSAGE)
}

/// apimachinery's `IsDNS1123Label` messages for `value` (empty when valid).
pub fn dns1123_label_errors(value: &str) -> Vec<&'static str> {
    label_errors(
        value,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
        DNS1123_LABEL_MESSAGE,
    )
}

/// A length check, then `^<first>([-a-z0-9]*[a-z0-9])?$`, as both apimachinery label checks.
fn label_errors(
    value: &str,
    valid_first: fn(u8) -> bool,
    regex_message: &'static str,
) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if value.len() > DNS_LABEL_MAX_LENGTH {
        errors.push("must be no more than 63 characters");
    }
    let bytes = value.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let matches = match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            valid_first(first)
                && (bytes.len() == 1 || alphanumeric(last))
                && bytes.iter().all(|&b| alphanumeric(b) || b == b'-')
        }
        _ => false,
    };
    if !matches {
        errors.push(regex_message);
    }
    errors
}

/// apimachinery's `maskTrailingDash`: a generateName prefix may end in '-'.
fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(stem) if !stem.is_empty() => format!("{stem}a"),
        _ => name.to_string(),
    }
}

/// A value as apimachinery renders an int-or-string: its JSON form (`1`, `"25%"`).
fn int_or_string_value(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(number) => number.to_string(),
        IntOrString::String(text) => go_json_string(text),
    }
}

/// An optional number as apimachinery renders a pointer: the number, or `null`.
fn optional_number(value: Option<i32>) -> String {
    value.map_or_else(|| "null".to_string(), |n| n.to_string())
}

/// Go's `%q` for a string (how apimachinery renders a string value).
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `json.Marshal` of a string, which escapes `<`, `>` and `&` for HTML safety.
fn go_json_string(text: &str) -> String {
    let json = serde_json::Value::String(text.to_string()).to_string();
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    //! Ports of "test creation and update" in upstream's
    //! `test/integration/webhooks/leaderworkerset_test.go` and of
    //! `pkg/webhooks/leaderworkerset_webhook_test.go` (upstream-lws.md §7.2, §7.4).

    use super::*;
    use crate::api::{
        NetworkConfig, RestartPolicy, RollingUpdateConfiguration, SubGroupPolicy, SubdomainPolicy,
    };
    use crate::defaults::apply_defaults;
    use serde_json::json;

    /// upstream's `wrappers.BuildLeaderWorkerSet`, defaulted: replicas 2, size 2,
    /// maxUnavailable 1, maxSurge 0.
    fn build_lws() -> LeaderWorkerSet {
        let mut lws: LeaderWorkerSet = serde_json::from_value(json!({
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
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
        .expect("the fixture is a valid LeaderWorkerSet");
        apply_defaults(&mut lws);
        lws
    }

    fn with(
        mut lws: LeaderWorkerSet,
        change: impl FnOnce(&mut LeaderWorkerSet),
    ) -> LeaderWorkerSet {
        change(&mut lws);
        apply_defaults(&mut lws);
        lws
    }

    fn config(lws: &mut LeaderWorkerSet) -> &mut RollingUpdateConfiguration {
        lws.spec
            .rollout_strategy
            .as_mut()
            .and_then(|s| s.rolling_update_configuration.as_mut())
            .expect("defaulted")
    }

    fn sub_group(size: i32, sub_group_size: i32) -> impl FnOnce(&mut LeaderWorkerSet) {
        move |lws| {
            lws.spec.leader_worker_template.size = Some(size);
            lws.spec.leader_worker_template.sub_group_policy = Some(SubGroupPolicy {
                sub_group_policy_type: None,
                sub_group_size: Some(sub_group_size),
            });
        }
    }

    fn messages(errors: &FieldErrors) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    fn assert_only(errors: FieldErrors, expected: &[&str]) {
        assert_eq!(messages(&errors), expected);
    }

    fn percent(text: &str) -> IntOrString {
        IntOrString::String(text.to_string())
    }

    // ---- create: metadata ----

    #[test]
    fn the_default_fixture_is_valid() {
        assert_only(validate_create(&build_lws()), &[]);
    }

    #[test]
    fn name_must_be_a_dns1035_label() {
        let lws = with(build_lws(), |l| l.metadata.name = Some("2cube".into()));
        assert_only(
            validate_create(&lws),
            &[&format!(
                "metadata.name: Invalid value: \"2cube\": {DNS1035_LABEL_MESSAGE}"
            )],
        );
    }

    #[test]
    fn name_longer_than_63_characters_is_rejected() {
        let long = "a".repeat(64);
        let lws = with(build_lws(), |l| l.metadata.name = Some(long.clone()));
        assert_only(
            validate_create(&lws),
            &[&format!(
                "metadata.name: Invalid value: \"{long}\": must be no more than 63 characters"
            )],
        );
    }

    #[test]
    fn name_of_63_characters_is_accepted() {
        let lws = with(build_lws(), |l| l.metadata.name = Some("a".repeat(63)));
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn empty_name_is_required() {
        let lws = with(build_lws(), |l| l.metadata.name = None);
        assert_only(
            validate_create(&lws),
            &["metadata.name: Required value: name or generateName is required"],
        );
    }

    #[test]
    fn generate_name_prefix_may_end_with_a_dash() {
        let lws = with(build_lws(), |l| {
            l.metadata.generate_name = Some("sample-".into());
        });
        assert_only(validate_create(&lws), &[]);
        let lws = with(build_lws(), |l| {
            l.metadata.generate_name = Some("Sample-".into());
        });
        assert_eq!(
            validate_create(&lws)[0].path.as_str(),
            "metadata.generateName"
        );
    }

    #[test]
    fn namespace_must_be_a_dns1123_label() {
        let lws = with(build_lws(), |l| {
            l.metadata.namespace = Some("Team_A".into())
        });
        assert_only(
            validate_create(&lws),
            &[&format!(
                "metadata.namespace: Invalid value: \"Team_A\": {DNS1123_LABEL_MESSAGE}"
            )],
        );
        let lws = with(build_lws(), |l| l.metadata.namespace = Some("1team".into()));
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn missing_namespace_is_accepted() {
        let lws = with(build_lws(), |l| l.metadata.namespace = None);
        assert_only(validate_create(&lws), &[]);
    }

    // ---- create: replicas and size ----

    #[test]
    fn product_of_replicas_and_size_must_fit_in_int32() {
        let lws = with(build_lws(), |l| {
            l.spec.replicas = Some(100_000);
            l.spec.leader_worker_template.size = Some(1_000_000);
        });
        assert_only(
            validate_create(&lws),
            &["spec.replicas: Invalid value: 100000: the product of replicas and worker replicas must not exceed 2147483647"],
        );
    }

    #[test]
    fn negative_size_is_rejected() {
        let lws = with(build_lws(), |l| {
            l.spec.leader_worker_template.size = Some(-1)
        });
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.size: Invalid value: -1: size must be equal or greater than 1"],
        );
    }

    #[test]
    fn zero_size_is_rejected() {
        let lws = with(build_lws(), |l| {
            l.spec.leader_worker_template.size = Some(0)
        });
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.size: Invalid value: 0: size must be equal or greater than 1"],
        );
    }

    #[test]
    fn negative_replicas_are_rejected() {
        let lws = with(build_lws(), |l| l.spec.replicas = Some(-1));
        assert_only(
            validate_create(&lws),
            &["spec.replicas: Invalid value: -1: replicas must be equal or greater than 0"],
        );
    }

    #[test]
    fn replicas_above_one_million_are_rejected() {
        let lws = with(build_lws(), |l| l.spec.replicas = Some(1_000_001));
        assert_only(
            validate_create(&lws),
            &["spec.replicas: Invalid value: 1000001: replicas must be equal or less than 1000000"],
        );
    }

    #[test]
    fn one_million_replicas_are_accepted() {
        let lws = with(build_lws(), |l| {
            l.spec.replicas = Some(1_000_000);
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn restart_policy_none_is_accepted() {
        let lws = with(build_lws(), |l| {
            l.spec.leader_worker_template.restart_policy = Some(RestartPolicy::None);
        });
        assert_only(validate_create(&lws), &[]);
    }

    // Invalid startupPolicy, restartPolicy and rollout type values are rejected when decoding
    // (see decode.rs and tests/invalid); the typed API cannot hold them.

    // ---- create: sub-groups ----

    #[test]
    fn negative_sub_group_size_is_rejected() {
        let lws = with(build_lws(), sub_group(2, -1));
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: -1: subGroupSize must be equal or greater than 1"],
        );
    }

    #[test]
    fn zero_sub_group_size_is_rejected_without_dividing_by_zero() {
        let lws = with(build_lws(), sub_group(2, 0));
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 0: subGroupSize must be equal or greater than 1"],
        );
    }

    #[test]
    fn missing_sub_group_size_is_required() {
        let lws = with(build_lws(), |l| {
            l.spec.leader_worker_template.sub_group_policy = Some(SubGroupPolicy::default());
        });
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Required value"],
        );
    }

    #[test]
    fn sub_group_size_larger_than_size_is_rejected() {
        let lws = with(build_lws(), sub_group(2, 3));
        assert_only(
            validate_create(&lws),
            &[
                "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 3: size or size - 1 must be divisible by subGroupSize",
                "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 3: subGroupSize cannot be larger than size",
            ],
        );
    }

    #[test]
    fn size_or_size_minus_one_must_be_divisible_by_sub_group_size() {
        let lws = with(build_lws(), sub_group(8, 3));
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 3: size or size - 1 must be divisible by subGroupSize"],
        );
        assert_only(validate_create(&with(build_lws(), sub_group(7, 2))), &[]);
        assert_only(validate_create(&with(build_lws(), sub_group(6, 3))), &[]);
    }

    #[test]
    fn leader_excluded_needs_size_minus_one_divisible() {
        let lws = with(build_lws(), |l| {
            sub_group(4, 2)(l);
            if let Some(policy) = l.spec.leader_worker_template.sub_group_policy.as_mut() {
                policy.sub_group_policy_type = Some(SubGroupPolicyType::LeaderExcluded);
            }
        });
        assert_only(
            validate_create(&lws),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 2: size-1 must be divisible by subGroupSize when using LeaderExcluded"],
        );
    }

    #[test]
    fn leader_excluded_with_size_minus_one_divisible_is_accepted() {
        let lws = with(build_lws(), |l| {
            sub_group(5, 2)(l);
            if let Some(policy) = l.spec.leader_worker_template.sub_group_policy.as_mut() {
                policy.sub_group_policy_type = Some(SubGroupPolicyType::LeaderExcluded);
            }
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn subgroup_exclusive_topology_needs_a_sub_group_policy() {
        let lws = with(build_lws(), |l| {
            l.metadata.annotations = Some(
                [(
                    SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY.to_string(),
                    "topology.kubernetes.io/zone".to_string(),
                )]
                .into(),
            );
        });
        assert_only(
            validate_create(&lws),
            &["metadata.annotations.leaderworkerset.sigs.k8s.io/subgroup-exclusive-topology: Invalid value: \"topology.kubernetes.io/zone\": cannot have subgroup-exclusive-topology without subGroupSize set"],
        );
    }

    // ---- create: maxUnavailable / maxSurge / partition ----

    #[test]
    fn max_unavailable_greater_than_replicas_is_accepted() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(IntOrString::Int(10))
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn max_unavailable_above_100_percent_is_rejected() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(percent("200%"))
        });
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: \"200%\": must not be greater than 100%"],
        );
    }

    #[test]
    fn negative_max_unavailable_is_rejected() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(IntOrString::Int(-1))
        });
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"],
        );
    }

    #[test]
    fn max_surge_greater_than_replicas_is_accepted() {
        let lws = with(build_lws(), |l| {
            config(l).max_surge = Some(IntOrString::Int(10))
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn max_surge_above_100_percent_is_rejected() {
        let lws = with(build_lws(), |l| config(l).max_surge = Some(percent("200%")));
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge: Invalid value: \"200%\": must not be greater than 100%"],
        );
    }

    #[test]
    fn negative_max_surge_is_rejected() {
        let lws = with(build_lws(), |l| {
            config(l).max_surge = Some(IntOrString::Int(-1))
        });
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge: Invalid value: -1: must be greater than or equal to 0"],
        );
    }

    #[test]
    fn max_unavailable_and_max_surge_both_zero_is_rejected() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(IntOrString::Int(0))
        });
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: 0: must not be 0 when `maxSurge` is 0"],
        );
    }

    #[test]
    fn max_unavailable_zero_with_max_surge_is_accepted() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(IntOrString::Int(0));
            config(l).max_surge = Some(IntOrString::Int(1));
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn zero_replicas_accept_any_limits() {
        let lws = with(build_lws(), |l| {
            l.spec.replicas = Some(0);
            config(l).max_unavailable = Some(percent("25%"));
            config(l).max_surge = Some(percent("25%"));
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn percent_max_unavailable_rounding_to_zero_with_zero_surge_is_rejected() {
        // 25% of 2 replicas rounds down to 0.
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(percent("25%"));
            config(l).max_surge = Some(IntOrString::Int(0));
        });
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: \"25%\": must not be 0 when `maxSurge` is 0"],
        );
    }

    #[test]
    fn percent_max_surge_rounds_up_so_a_small_percent_is_enough() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(IntOrString::Int(0));
            config(l).max_surge = Some(percent("1%"));
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn non_percent_string_is_rejected_with_every_upstream_message() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(percent("abc"))
        });
        assert_only(
            validate_create(&lws),
            &[
                &format!("spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: \"abc\": {INVALID_PERCENT_MESSAGE}"),
                "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: \"abc\": invalid value",
                "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: Invalid value: \"abc\": must not be 0 when `maxSurge` is 0",
            ],
        );
    }

    #[test]
    fn signed_percent_is_not_a_valid_percent() {
        let lws = with(build_lws(), |l| config(l).max_surge = Some(percent("-5%")));
        let errors = messages(&validate_create(&lws));
        assert_eq!(
            errors,
            [format!("spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge: Invalid value: \"-5%\": {INVALID_PERCENT_MESSAGE}")]
        );
    }

    #[test]
    fn exactly_100_percent_is_accepted() {
        let lws = with(build_lws(), |l| {
            config(l).max_unavailable = Some(percent("100%"));
            config(l).max_surge = Some(percent("100%"));
        });
        assert_only(validate_create(&lws), &[]);
    }

    #[test]
    fn negative_partition_is_rejected() {
        let lws = with(build_lws(), |l| config(l).partition = Some(-1));
        assert_only(
            validate_create(&lws),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.partition: Invalid value: -1: must be greater than or equal to 0"],
        );
    }

    #[test]
    fn partition_zero_equal_to_or_above_replicas_is_accepted() {
        for partition in [0, 3, 5] {
            let lws = with(build_lws(), |l| {
                l.spec.replicas = Some(3);
                config(l).partition = Some(partition);
            });
            assert_only(validate_create(&lws), &[]);
        }
    }

    #[test]
    fn all_errors_are_reported_together() {
        let lws = with(build_lws(), |l| {
            l.metadata.name = Some("Bad".into());
            l.spec.replicas = Some(-1);
            l.spec.leader_worker_template.size = Some(0);
            config(l).partition = Some(-2);
        });
        let paths: Vec<_> = validate_create(&lws)
            .iter()
            .map(|e| e.path.to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "metadata.name",
                "spec.replicas",
                "spec.leaderWorkerTemplate.size",
                "spec.rolloutStrategy.rollingUpdateConfiguration.partition",
            ]
        );
    }

    // ---- update ----

    #[test]
    fn size_can_be_updated() {
        let old = build_lws();
        let new = with(old.clone(), |l| {
            l.spec.leader_worker_template.size = Some(3)
        });
        assert_only(validate_update(&old, &new), &[]);
    }

    #[test]
    fn update_making_the_product_exceed_int32_is_rejected() {
        let old = with(build_lws(), |l| {
            l.spec.replicas = Some(100_000);
            l.spec.leader_worker_template.size = Some(1);
        });
        let new = with(old.clone(), |l| {
            l.spec.leader_worker_template.size = Some(100_000_000)
        });
        assert_only(
            validate_update(&old, &new),
            &["spec.replicas: Invalid value: 100000: the product of replicas and worker replicas must not exceed 2147483647"],
        );
    }

    #[test]
    fn update_to_negative_replicas_is_rejected() {
        let old = build_lws();
        let new = with(old.clone(), |l| l.spec.replicas = Some(-1));
        assert_only(
            validate_update(&old, &new),
            &["spec.replicas: Invalid value: -1: replicas must be equal or greater than 0"],
        );
    }

    #[test]
    fn update_to_more_than_one_million_replicas_is_rejected() {
        let old = build_lws();
        let new = with(old.clone(), |l| l.spec.replicas = Some(1_000_001));
        assert_eq!(
            messages(&validate_update(&old, &new)),
            ["spec.replicas: Invalid value: 1000001: replicas must be equal or less than 1000000"]
        );
    }

    #[test]
    fn sub_group_size_is_immutable() {
        let old = with(build_lws(), sub_group(2, 1));
        let new = with(old.clone(), sub_group(2, 2));
        assert_only(
            validate_update(&old, &new),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 2: field is immutable"],
        );
    }

    #[test]
    fn sub_group_policy_cannot_be_added() {
        let old = build_lws();
        let new = with(old.clone(), sub_group(2, 2));
        assert_only(
            validate_update(&old, &new),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 2: cannot enable subGroupSize after the lws is already created"],
        );
    }

    #[test]
    fn sub_group_policy_cannot_be_removed() {
        let old = with(build_lws(), sub_group(2, 1));
        let new = with(old.clone(), |l| {
            l.spec.leader_worker_template.sub_group_policy = None
        });
        assert_only(
            validate_update(&old, &new),
            &["spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize: Invalid value: 1: cannot remove subGroupSize after enabled"],
        );
    }

    #[test]
    fn sub_group_policy_type_can_change() {
        let old = with(build_lws(), sub_group(5, 2));
        let new = with(old.clone(), |l| {
            if let Some(policy) = l.spec.leader_worker_template.sub_group_policy.as_mut() {
                policy.sub_group_policy_type = Some(SubGroupPolicyType::LeaderExcluded);
            }
        });
        assert_only(validate_update(&old, &new), &[]);
    }

    #[test]
    fn replicas_can_be_updated() {
        let old = with(build_lws(), |l| {
            l.spec.replicas = Some(1);
            l.spec.leader_worker_template.size = Some(1);
        });
        let new = with(old.clone(), |l| l.spec.replicas = Some(3));
        assert_only(validate_update(&old, &new), &[]);
    }

    #[test]
    fn templates_can_be_updated() {
        let old = build_lws();
        let new = with(old.clone(), |l| {
            let template = &mut l.spec.leader_worker_template;
            let leader = template.leader_template.take();
            template.leader_template = Some(template.worker_template.clone());
            template.worker_template = leader.unwrap_or_default();
        });
        assert_ne!(old, new);
        assert_only(validate_update(&old, &new), &[]);
    }

    #[test]
    fn subdomain_policy_can_change_either_way() {
        for (from, to) in [
            (SubdomainPolicy::UniquePerReplica, SubdomainPolicy::Shared),
            (SubdomainPolicy::Shared, SubdomainPolicy::UniquePerReplica),
        ] {
            let old = with(build_lws(), |l| {
                l.spec.network_config = Some(NetworkConfig {
                    subdomain_policy: Some(from),
                })
            });
            let new = with(old.clone(), |l| {
                l.spec.network_config = Some(NetworkConfig {
                    subdomain_policy: Some(to),
                })
            });
            assert_only(validate_update(&old, &new), &[]);
        }
    }

    #[test]
    fn subdomain_policy_can_be_set_after_being_unset() {
        let old = with(build_lws(), |l| l.spec.network_config = None);
        let new = with(old.clone(), |l| {
            l.spec.network_config = Some(NetworkConfig {
                subdomain_policy: Some(SubdomainPolicy::UniquePerReplica),
            })
        });
        assert_only(validate_update(&old, &new), &[]);
    }

    #[test]
    fn subdomain_policy_set_to_null_is_defaulted_and_accepted() {
        let old = build_lws();
        let new = with(old.clone(), |l| {
            l.spec.network_config = Some(NetworkConfig::default())
        });
        assert_only(validate_update(&old, &new), &[]);
    }

    #[test]
    fn undefaulted_null_subdomain_policy_is_rejected_on_update() {
        let old = build_lws();
        let mut new = old.clone();
        new.spec.network_config = Some(NetworkConfig::default());
        assert_only(
            validate_update(&old, &new),
            &["spec.networkConfig.subdomainPolicy: Invalid value: \"Shared\": cannot set subdomainPolicy as null"],
        );
    }

    #[test]
    fn update_to_negative_partition_is_rejected() {
        let old = with(build_lws(), |l| l.spec.replicas = Some(5));
        let new = with(old.clone(), |l| config(l).partition = Some(-1));
        assert_only(
            validate_update(&old, &new),
            &["spec.rolloutStrategy.rollingUpdateConfiguration.partition: Invalid value: -1: must be greater than or equal to 0"],
        );
    }

    #[test]
    fn partition_updates_within_range_are_accepted() {
        for partition in [2, 10, 5, 0] {
            let old = with(build_lws(), |l| l.spec.replicas = Some(5));
            let new = with(old.clone(), |l| config(l).partition = Some(partition));
            assert_only(validate_update(&old, &new), &[]);
        }
    }

    // ---- pkg/webhooks/leaderworkerset_webhook_test.go ----

    #[test]
    fn percent_value_of_an_integer_is_none() {
        assert_eq!(percent_value(&IntOrString::Int(1)), None);
    }

    #[test]
    fn percent_value_of_a_string_without_percent_sign_is_none() {
        assert_eq!(percent_value(&percent("1")), None);
    }

    #[test]
    fn percent_value_of_a_valid_percent_is_its_number() {
        assert_eq!(percent_value(&percent("1%")), Some(1));
        assert_eq!(percent_value(&percent("101%")), Some(101));
    }

    #[test]
    fn nonnegative_field_rejects_only_negative_values() {
        let path = FieldPath::new("test");
        assert_eq!(
            messages(&validate_nonnegative(-1, &path)),
            ["test: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert!(validate_nonnegative(0, &path).is_empty());
        assert!(validate_nonnegative(1, &path).is_empty());
    }

    #[test]
    fn more_than_100_percent_is_rejected_and_integers_are_not_percents() {
        let path = FieldPath::new("test");
        assert!(validate_not_more_than_100_percent(&IntOrString::Int(1), &path).is_empty());
        assert_eq!(
            messages(&validate_not_more_than_100_percent(&percent("101%"), &path)),
            ["test: Invalid value: \"101%\": must not be greater than 100%"]
        );
        assert!(validate_not_more_than_100_percent(&percent("99%"), &path).is_empty());
        assert!(validate_not_more_than_100_percent(&percent("100%"), &path).is_empty());
    }

    // ---- value rendering ----

    #[test]
    fn strings_are_quoted_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(go_json_string("<&>"), "\"\\u003c\\u0026\\u003e\"");
    }

    #[test]
    fn label_checks_follow_the_regexes() {
        assert!(dns1035_label_errors("a").is_empty());
        assert!(dns1035_label_errors("a-1").is_empty());
        assert_eq!(dns1035_label_errors("1a").len(), 1);
        assert_eq!(dns1035_label_errors("a-").len(), 1);
        assert_eq!(dns1035_label_errors("").len(), 1);
        assert!(dns1123_label_errors("1a").is_empty());
        assert_eq!(dns1123_label_errors("-a").len(), 1);
        assert_eq!(dns1035_label_errors(&"A".repeat(64)).len(), 2);
    }
}
