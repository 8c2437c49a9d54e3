//! Revisions: the part of the spec whose change rolls the groups, and its key.
//!
//! Mirrors `getPatch`, `hashRevision` and `ApplyRevision` in `pkg/utils/revision/revision_utils.go`
//! upstream (upstream-lws.md §3.6, §4.3). A revision is stored (as upstream's ControllerRevision
//! `data`) as the patch
//! `{"spec":{"leaderWorkerTemplate":{...,"$patch":"replace"},"networkConfig":{...,"$patch":"replace"}}}`;
//! its key, the `template-revision-hash` label, is FNV-1 32 of those bytes, printed in decimal and
//! passed through apimachinery's `SafeEncodeString`.
//!
//! # Byte compatibility with Go
//! Upstream builds the patch by decoding the LeaderWorkerSet's JSON into `map[string]interface{}`
//! and encoding it again, so Go writes every object with its keys **sorted** (not in struct order).
//! We do the same (our own writer sorts keys, whatever serde_json's map type is), escape strings as
//! Go's `encoding/json` does (`<`, `>`, `&`, U+2028, U+2029 as `\u....`), and add the zero values
//! Go's structs always emit: `metadata: {}` and `spec` in pod templates,
//! `resources: {}` in containers, and `metadata`/`spec.resources`/`status` in claim templates
//! (whose `apiVersion`/`kind`, which k8s-openapi always writes, are dropped). For the manifests
//! people write, the key is then the one the Go controller computes: the tests pin the keys of
//! every example manifest as computed by upstream's code against k8s.io/api v0.36.3.
//!
//! Where it can still differ: Go re-encodes resource quantities in canonical form (`"0.5"` becomes
//! `"500m"`) and writes a few rarely used zero-value fields k8s-openapi leaves out (or the other
//! way round). Our key is still a pure, stable function of the spec, so nothing flaps. Taking over
//! a LeaderWorkerSet whose revision the Go controller wrote is safe too: like upstream's
//! `getUpdatedRevision`, a differing key is first checked semantically ([`apply_revision`] the
//! stored patch, rebuild [`revision_patch`], compare bytes), so a mere encoding difference does
//! not roll the groups.

use crate::api::{LeaderWorkerSet, LeaderWorkerTemplate, NetworkConfig, SubdomainPolicy};
use serde_json::{Map, Value};

/// Why a stored revision could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    /// The patch is not JSON of the shape [`revision_patch`] writes.
    #[error("malformed revision patch: {0}")]
    Malformed(String),
}

/// The `template-revision-hash` of a (defaulted) LeaderWorkerSet's current spec.
pub fn revision_key(lws: &LeaderWorkerSet) -> String {
    revision_key_of_patch(&revision_patch(lws))
}

/// The revision key of stored patch bytes (upstream `hashRevision`): FNV-1 32 (not 1a) of the
/// bytes, in decimal, each digit mapped through `SafeEncodeString`'s alphabet.
pub fn revision_key_of_patch(patch: &[u8]) -> String {
    safe_encode(&fnv1_32(patch).to_string())
}

/// The revision patch of a (defaulted) LeaderWorkerSet, as stored in its ControllerRevision.
///
/// Only `spec.leaderWorkerTemplate` and `spec.networkConfig` are in it, so only they roll the
/// groups; an absent networkConfig counts as `{subdomainPolicy: Shared}` (upstream's upgrade
/// rule, so defaulting it later does not change the key).
pub fn revision_patch(lws: &LeaderWorkerSet) -> Vec<u8> {
    let mut template = to_value(&lws.spec.leader_worker_template);
    // Changing the restart budget rolls no group (upstream-v0.11.md §A6.1).
    if let Some(template) = template.as_object_mut() {
        template.remove("maxGroupRestarts");
    }
    add_go_zero_values(&mut template);
    let network = match &lws.spec.network_config {
        Some(config) => network_config_value(config),
        None => network_config_value(&NetworkConfig {
            subdomain_policy: Some(SubdomainPolicy::Shared),
        }),
    };
    let mut spec = Map::new();
    spec.insert("leaderWorkerTemplate".into(), with_replace(template));
    spec.insert("networkConfig".into(), with_replace(network));
    let mut root = Map::new();
    root.insert("spec".into(), Value::Object(spec));
    let mut out = Vec::new();
    write_go_json(&Value::Object(root), &mut out);
    out
}

/// The LeaderWorkerSet as of a stored revision: `lws` with its leaderWorkerTemplate and
/// networkConfig replaced by the patch's (upstream `ApplyRevision`; `$patch: replace` makes the
/// strategic merge a plain replacement of both fields).
pub fn apply_revision(
    lws: &LeaderWorkerSet,
    patch: &[u8],
) -> Result<LeaderWorkerSet, RevisionError> {
    let malformed = |what: &str| RevisionError::Malformed(what.to_string());
    let mut root: Value =
        serde_json::from_slice(patch).map_err(|e| RevisionError::Malformed(e.to_string()))?;
    let spec = root
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed("no spec object"))?;
    let mut template = spec
        .remove("leaderWorkerTemplate")
        .ok_or_else(|| malformed("no spec.leaderWorkerTemplate"))?;
    let network = spec.remove("networkConfig");

    strip_patch_directive(&mut template);
    remove_go_zero_values(&mut template);
    // Decoded like every other input (`ops::typed`), to share one deserializer instantiation.
    let template: LeaderWorkerTemplate = serde_path_to_error::deserialize(template)
        .map_err(|e| RevisionError::Malformed(format!("spec.leaderWorkerTemplate: {e}")))?;
    let network = match network {
        Some(mut value) => {
            strip_patch_directive(&mut value);
            Some(
                serde_path_to_error::deserialize::<_, NetworkConfig>(value)
                    .map_err(|e| RevisionError::Malformed(format!("spec.networkConfig: {e}")))?,
            )
        }
        None => lws.spec.network_config.clone(),
    };

    let mut restored = lws.clone();
    restored.spec.leader_worker_template = LeaderWorkerTemplate {
        // Not in any revision: the live budget applies to every revision's groups.
        max_group_restarts: lws.spec.leader_worker_template.max_group_restarts,
        ..template
    };
    restored.spec.network_config = network;
    Ok(restored)
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    // The API types serialize to plain JSON objects; failure would be a bug in a derive.
    serde_json::to_value(value).expect("LeaderWorkerSet API types always serialize to JSON")
}

/// Go's `NetworkConfig.SubdomainPolicy` has no omitempty: a nil policy is written as `null`.
fn network_config_value(config: &NetworkConfig) -> Value {
    let mut map = Map::new();
    let policy = config
        .subdomain_policy
        .map_or(Value::Null, |p| Value::String(p.as_str().to_string()));
    map.insert("subdomainPolicy".into(), policy);
    Value::Object(map)
}

fn with_replace(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    value
}

fn strip_patch_directive(value: &mut Value) {
    if let Value::Object(map) = value {
        map.remove("$patch");
    }
}

/// Adds the fields Go's structs emit even when empty (see the module docs).
fn add_go_zero_values(template: &mut Value) {
    let Value::Object(template) = template else {
        return;
    };
    for key in ["leaderTemplate", "workerTemplate"] {
        if let Some(pod_template) = template.get_mut(key) {
            add_pod_template_zero_values(pod_template);
        }
    }
    if let Some(Value::Array(claims)) = template.get_mut("volumeClaimTemplates") {
        for claim in claims {
            add_claim_zero_values(claim);
        }
    }
}

fn add_pod_template_zero_values(pod_template: &mut Value) {
    let Value::Object(pod_template) = pod_template else {
        return;
    };
    add_metadata(pod_template);
    let Some(spec) = object_entry(pod_template, "spec") else {
        return;
    };
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(key) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                object_entry(container, "resources");
            }
        }
    }
}

fn add_claim_zero_values(claim: &mut Value) {
    let Value::Object(claim) = claim else {
        return;
    };
    // Go's TypeMeta is omitempty and claim templates rarely carry one.
    claim.remove("apiVersion");
    claim.remove("kind");
    add_metadata(claim);
    if let Some(spec) = object_entry(claim, "spec") {
        object_entry(spec, "resources");
    }
    object_entry(claim, "status");
}

/// Go's `ObjectMeta` is a struct value: `metadata` is always written, `{}` when empty. (Its
/// `creationTimestamp` is `omitzero` since apimachinery 0.33, so no `null` is written.)
fn add_metadata(object: &mut Map<String, Value>) {
    object_entry(object, "metadata");
}

/// The object at `key`, inserted empty when absent; `None` when `key` holds something else
/// (then there is nothing of ours to add).
fn object_entry<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    match object
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Drops the zero values [`add_go_zero_values`] adds, so a restored template compares equal to
/// the one it was written from (`resources: {}` would otherwise decode as `Some(default)`).
fn remove_go_zero_values(template: &mut Value) {
    let Value::Object(template) = template else {
        return;
    };
    for key in ["leaderTemplate", "workerTemplate"] {
        let Some(Value::Object(pod_template)) = template.get_mut(key) else {
            continue;
        };
        remove_if_empty_object(pod_template, "metadata");
        remove_if_empty_object(pod_template, "spec");
        let Some(Value::Object(spec)) = pod_template.get_mut("spec") else {
            continue;
        };
        for key in ["containers", "initContainers", "ephemeralContainers"] {
            if let Some(Value::Array(containers)) = spec.get_mut(key) {
                for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                    remove_if_empty_object(container, "resources");
                }
            }
        }
    }
    if let Some(Value::Array(claims)) = template.get_mut("volumeClaimTemplates") {
        for claim in claims.iter_mut().filter_map(Value::as_object_mut) {
            remove_if_empty_object(claim, "status");
            if let Some(Value::Object(spec)) = claim.get_mut("spec") {
                remove_if_empty_object(spec, "resources");
            }
        }
    }
}

fn remove_if_empty_object(object: &mut Map<String, Value>, key: &str) {
    if matches!(object.get(key), Some(Value::Object(map)) if map.is_empty()) {
        object.remove(key);
    }
}

/// Writes `value` as Go's `json.Marshal` writes a decoded `interface{}`: objects with sorted keys,
/// no whitespace, Go's string escaping.
fn write_go_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_string(key, out);
                out.push(b':');
                write_go_json(&map[key], out);
            }
            out.push(b'}');
        }
    }
}

/// Go `encoding/json` string escaping with HTML escaping on (its default).
fn write_go_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// FNV-1 32-bit (Go's `hash/fnv.New32`): multiply, then xor.
fn fnv1_32(bytes: &[u8]) -> u32 {
    const OFFSET_BASIS: u32 = 2_166_136_261;
    const PRIME: u32 = 16_777_619;
    bytes.iter().fold(OFFSET_BASIS, |hash, b| {
        hash.wrapping_mul(PRIME) ^ u32::from(*b)
    })
}

/// apimachinery's `rand.SafeEncodeString`: each byte mapped into an alphabet without vowels
/// and look-alike digits, so keys never spell words.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RestartPolicy, RolloutStrategyType, StartupPolicy, SubGroupPolicy};
    use crate::expand::fixtures::{defaulted, sample};
    use k8s_openapi::api::core::v1::EnvVar;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::collections::BTreeMap;

    /// Keys of the example manifests as upstream computes them: `getPatch` + `hashRevision`
    /// run in Go against k8s.io/api and k8s.io/apimachinery v0.36.3 (the versions upstream
    /// v0.10.0 builds with), on the same defaulted specs. Byte-identical patches, so a
    /// LeaderWorkerSet taken over from the Go controller keeps its revision.
    #[test]
    fn keys_match_upstreams_for_the_examples() {
        let cases = [
            (include_str!("../../examples/lws.yaml"), "5bc6dc849d"),
            (
                include_str!("../../examples/lws-exclusive-placement.yaml"),
                "5bc6dc849d",
            ),
            (
                include_str!("../../examples/lws-subgroup.yaml"),
                "59f6664557",
            ),
            (
                include_str!("../../examples/lws-unique-per-replica.yaml"),
                "5c77bddd64",
            ),
            (
                include_str!("../../examples/lws-volume-claim-templates.yaml"),
                "bd49c995d",
            ),
            (
                include_str!("../../examples/lws-multi-template.yaml"),
                "9b67c44c4",
            ),
            (include_str!("../../examples/lws-tpu.yaml"), "d9b76d98b"),
            (
                include_str!("../../examples/lws-restart-policy.yaml"),
                "7858d56698",
            ),
        ];
        for (yaml, key) in cases {
            let lws = defaulted(yaml);
            assert_eq!(revision_key(&lws), key, "{}", lws.name());
        }
    }

    #[test]
    fn fnv1_32_is_not_fnv1a() {
        assert_eq!(fnv1_32(b""), 0x811c_9dc5);
        // FNV-1 of "a"; FNV-1a would give 0xe40c292c.
        assert_eq!(fnv1_32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv1_32(b"foobar"), 0x31f0_b262);
    }

    #[test]
    fn safe_encode_maps_digits_like_apimachinery() {
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn key_is_deterministic_and_safe_encoded() {
        let lws = sample();
        let key = revision_key(&lws);
        assert_eq!(key, revision_key(&lws.clone()));
        assert_eq!(key, revision_key_of_patch(&revision_patch(&lws)));
        assert!(!key.is_empty() && key.len() <= 10, "{key}");
        assert!(key
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn patch_has_upstreams_shape() {
        let patch = String::from_utf8(revision_patch(&sample())).unwrap();
        assert!(
            patch.starts_with(r#"{"spec":{"leaderWorkerTemplate":{"$patch":"replace","restartPolicy":"RecreateGroupOnPodRestart","size":4,"workerTemplate":{"metadata":{},"spec":{"containers":[{"image":"nginxinc/nginx-unprivileged:1.27","name":"nginx","ports":[{"containerPort":8080}],"resources":{"limits":{"cpu":"100m"},"requests":{"cpu":"50m"}}}]}}},"#),
            "{patch}"
        );
        assert!(
            patch.ends_with(r#""networkConfig":{"$patch":"replace","subdomainPolicy":"Shared"}}}"#),
            "{patch}"
        );
    }

    #[test]
    fn missing_network_config_counts_as_shared() {
        let lws = sample();
        let mut without = lws.clone();
        without.spec.network_config = None;
        assert_eq!(revision_patch(&lws), revision_patch(&without));
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        let mut lws = sample();
        lws.spec
            .leader_worker_template
            .worker_template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .env = Some(vec![EnvVar {
            name: "X".into(),
            value: Some("<a&b>\u{2028}\"\\\n\u{1}".into()),
            ..Default::default()
        }]);
        let patch = String::from_utf8(revision_patch(&lws)).unwrap();
        assert!(
            patch.contains(r#""value":"\u003ca\u0026b\u003e\u2028\"\\\n\u0001""#),
            "{patch}"
        );
    }

    #[test]
    fn rolling_fields_change_the_key() {
        let base = sample();
        let key = revision_key(&base);
        let mut changes: Vec<(&str, crate::api::LeaderWorkerSet)> = Vec::new();

        let mut image = base.clone();
        image
            .spec
            .leader_worker_template
            .worker_template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("nginx:1.28".into());
        changes.push(("image", image));

        let mut size = base.clone();
        size.spec.leader_worker_template.size = Some(5);
        changes.push(("size", size));

        let mut network = base.clone();
        network.spec.network_config = Some(NetworkConfig {
            subdomain_policy: Some(SubdomainPolicy::UniquePerReplica),
        });
        changes.push(("networkConfig", network));

        let mut restart = base.clone();
        restart.spec.leader_worker_template.restart_policy = Some(RestartPolicy::None);
        changes.push(("restartPolicy", restart));

        let mut subgroup = base.clone();
        subgroup.spec.leader_worker_template.sub_group_policy = Some(SubGroupPolicy {
            sub_group_size: Some(2),
            ..Default::default()
        });
        changes.push(("subGroupPolicy", subgroup));

        let mut leader = base.clone();
        leader.spec.leader_worker_template.leader_template =
            Some(leader.spec.leader_worker_template.worker_template.clone());
        changes.push(("leaderTemplate", leader));

        for (what, changed) in changes {
            assert_ne!(revision_key(&changed), key, "{what} must roll the groups");
        }
    }

    #[test]
    fn other_fields_keep_the_key() {
        let base = sample();
        let key = revision_key(&base);
        let mut other = base.clone();
        other.spec.replicas = Some(7);
        other.spec.startup_policy = Some(StartupPolicy::LeaderReady);
        let strategy = other
            .spec
            .rollout_strategy
            .get_or_insert_with(Default::default);
        strategy.type_ = Some(RolloutStrategyType::RollingUpdate);
        let config = strategy
            .rolling_update_configuration
            .get_or_insert_with(Default::default);
        config.max_surge = Some(IntOrString::String("50%".into()));
        config.partition = Some(2);
        other.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        other.metadata.annotations = Some(BTreeMap::from([("note".into(), "b".into())]));
        other.metadata.uid = Some("1234".into());
        assert_eq!(revision_key(&other), key);
    }

    #[test]
    fn apply_revision_restores_template_and_network_config() {
        let old = defaulted(include_str!(
            "../../examples/lws-volume-claim-templates.yaml"
        ));
        let mut new = old.clone();
        new.spec.replicas = Some(5);
        new.spec.leader_worker_template.size = Some(3);
        new.spec
            .leader_worker_template
            .worker_template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("nginx:2".into());
        new.spec.network_config = Some(NetworkConfig {
            subdomain_policy: Some(SubdomainPolicy::UniquePerReplica),
        });

        let restored = apply_revision(&new, &revision_patch(&old)).unwrap();
        assert_eq!(
            restored.spec.leader_worker_template,
            old.spec.leader_worker_template
        );
        assert_eq!(restored.spec.network_config, old.spec.network_config);
        assert_eq!(restored.spec.replicas, Some(5));
        assert_eq!(restored.metadata, new.metadata);
        assert_eq!(revision_key(&restored), revision_key(&old));

        let current = apply_revision(&new, &revision_patch(&new)).unwrap();
        assert_eq!(current, new);
    }

    #[test]
    fn malformed_patches_are_errors() {
        let lws = sample();
        for patch in [
            &b"not json"[..],
            b"{}",
            br#"{"spec":{}}"#,
            br#"{"spec":{"leaderWorkerTemplate":{"size":"x"}}}"#,
        ] {
            assert!(matches!(
                apply_revision(&lws, patch),
                Err(RevisionError::Malformed(_))
            ));
        }
    }
}
