//! The operations every host calls: a name and JSON bytes in, JSON bytes out.
//!
//! This is the module's ABI. The native CLI, `lws.wasm` in wasmtime, the waPC policy engine and
//! the browser all go through [`call`], so they return the same bytes for the same input.
//!
//! Decisions are data: an invalid manifest is a normal answer carrying `problems`. The error
//! channel ([`OpError`]) is only for protocol faults: an unknown operation or a payload that is
//! not the operation's input shape.

use crate::api::LeaderWorkerSet;
use crate::decode::decode_lws_value;
use crate::defaults::apply_defaults;
use crate::field_path::{FieldErrors, Problem};
use crate::overlay::overlay;
use crate::pod::{mutate_pod, PodContext};
use crate::policy;
use crate::validation::{validate_create, validate_update};
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

/// Operation names, as registered with waPC.
pub mod names {
    /// LWS in; the `v1` List of every object it expands to, or `{"problems": [...]}`.
    pub const EXPAND: &str = "expand";
    /// `{"lws": LWS, "old": LWS?}` in; `{"problems": [...]}` out (empty when valid).
    pub const VALIDATE_LWS: &str = "validate_lws";
    /// LWS in; `{"lws": defaulted LWS}` or `{"problems": [...]}` out.
    pub const DEFAULT: &str = "default";
    /// `{"pod": Pod, "context": PodContext}` in; `{"pod": Pod}` or `{"error": "..."}` out.
    pub const MUTATE_POD: &str = "mutate_pod";
    /// Kubewarden: the policy protocol version, `"v1"`.
    pub const PROTOCOL_VERSION: &str = "protocol_version";
    /// Kubewarden: policy settings in; `{"valid": bool, "message"?: "..."}` out.
    pub const VALIDATE_SETTINGS: &str = "validate_settings";
    /// Kubewarden: a `ValidationRequest` in; a `ValidationResponse` out.
    pub const VALIDATE: &str = "validate";
    /// `ReconcileInput` in; `ReconcilePlan` out (see [`crate::reconcile::wire`]).
    pub const RECONCILE: &str = "reconcile";
    /// `{"lws": LWS, "nodes": [Node]}` in; where each group's pods land (see
    /// [`crate::placement::Placement`]), or `{"groups": [], "problems": [...]}`.
    pub const PLACEMENT: &str = "placement";

    /// Every operation, in registration order.
    pub const ALL: &[&str] = &[
        EXPAND,
        VALIDATE_LWS,
        DEFAULT,
        MUTATE_POD,
        PROTOCOL_VERSION,
        VALIDATE_SETTINGS,
        VALIDATE,
        RECONCILE,
        PLACEMENT,
    ];
}

/// A protocol fault: the call itself was wrong, not the manifest it carried.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    #[error("cannot decode the {operation} payload: {message}")]
    BadPayload {
        operation: &'static str,
        message: String,
    },
}

/// Runs `operation` on `payload`; see [`names`] for each operation's input and output.
pub fn call(operation: &str, payload: &[u8]) -> Result<Vec<u8>, OpError> {
    match operation {
        names::EXPAND => expand(payload),
        names::VALIDATE_LWS => validate_lws(payload),
        names::DEFAULT => default(payload),
        names::MUTATE_POD => mutate(payload),
        names::PROTOCOL_VERSION => Ok(encode(&policy::PROTOCOL_VERSION)),
        names::VALIDATE_SETTINGS => policy::validate_settings(payload),
        names::VALIDATE => policy::validate(payload),
        names::RECONCILE => crate::reconcile::run_op(payload),
        names::PLACEMENT => crate::placement::run_op(payload),
        other => Err(OpError::UnknownOperation(other.to_string())),
    }
}

/// The answer for a manifest that cannot be admitted.
#[derive(Debug, Serialize, Deserialize)]
pub struct Problems {
    pub problems: Vec<Problem>,
}

impl Problems {
    pub fn from_errors(errors: &FieldErrors) -> Self {
        Problems {
            problems: errors.iter().map(Problem::from).collect(),
        }
    }
}

/// A Kubernetes `v1` List, the output of `expand`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<serde_json::Value>,
}

/// Decodes, defaults and validates one manifest as the admission chain would on create.
pub fn admit_new(value: serde_json::Value) -> Result<LeaderWorkerSet, FieldErrors> {
    let mut lws = decode_lws_value(value)?;
    apply_defaults(&mut lws);
    let errors = validate_create(&lws);
    if errors.is_empty() {
        Ok(lws)
    } else {
        Err(errors)
    }
}

/// Expands one admitted manifest into the List the CLI prints.
pub fn expand_value(value: serde_json::Value) -> Result<List, FieldErrors> {
    let lws = admit_new(value)?;
    Ok(List {
        api_version: "v1",
        kind: "List",
        items: crate::expand::expand(&lws),
    })
}

fn expand(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let value: serde_json::Value = parse(names::EXPAND, payload)?;
    Ok(match expand_value(value) {
        Ok(list) => encode(&list),
        Err(errors) => encode(&Problems::from_errors(&errors)),
    })
}

#[derive(Deserialize)]
struct ValidateInput {
    lws: serde_json::Value,
    #[serde(default)]
    old: Option<serde_json::Value>,
}

/// Validates `lws` (and the change from `old`, when given), both defaulted first, as the
/// mutating webhook runs before the validating one.
pub fn validate_value(lws: serde_json::Value, old: Option<serde_json::Value>) -> FieldErrors {
    let Some(old) = old else {
        return admit_new(lws).err().unwrap_or_default();
    };
    let new = match decode_lws_value(lws) {
        Ok(mut new) => {
            apply_defaults(&mut new);
            new
        }
        Err(errors) => return errors,
    };
    let old = match decode_lws_value(old) {
        Ok(mut old) => {
            apply_defaults(&mut old);
            old
        }
        Err(errors) => return errors,
    };
    validate_update(&old, &new)
}

fn validate_lws(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let input: ValidateInput = typed(names::VALIDATE_LWS, payload)?;
    Ok(encode(&Problems::from_errors(&validate_value(
        input.lws, input.old,
    ))))
}

#[derive(Serialize)]
struct Defaulted {
    lws: LeaderWorkerSet,
}

fn default(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let value: serde_json::Value = parse(names::DEFAULT, payload)?;
    Ok(match decode_lws_value(value) {
        Ok(mut lws) => {
            apply_defaults(&mut lws);
            encode(&Defaulted { lws })
        }
        Err(errors) => encode(&Problems::from_errors(&errors)),
    })
}

#[derive(Deserialize)]
struct MutatePodInput {
    /// Kept as sent: the answer is this document with the mutation applied ([`overlay`]).
    pod: serde_json::Value,
    #[serde(default)]
    context: PodContext,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum MutatePodOutput {
    Pod(serde_json::Value),
    Error(String),
}

fn mutate(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let input: MutatePodInput = typed(names::MUTATE_POD, payload)?;
    let decoded: Pod =
        serde_path_to_error::deserialize(input.pod.clone()).map_err(|e| OpError::BadPayload {
            operation: names::MUTATE_POD,
            message: e.to_string(),
        })?;
    let mut pod = Box::new(decoded);
    let before = serde_json::to_value(&*pod).expect("a pod is plain JSON");
    Ok(match mutate_pod(&mut pod, &input.context) {
        Ok(()) => {
            let after = serde_json::to_value(&*pod).expect("a pod is plain JSON");
            encode(&MutatePodOutput::Pod(overlay(&input.pod, &before, &after)))
        }
        Err(error) => encode(&MutatePodOutput::Error(error.to_string())),
    })
}

/// Parses a payload as JSON, into a `serde_json::Value` for every operation but `reconcile`
/// (see [`typed`] and `reconcile::seen`).
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    payload: &[u8],
) -> Result<T, OpError> {
    serde_json::from_slice(payload).map_err(|e| OpError::BadPayload {
        operation,
        message: e.to_string(),
    })
}

/// Parses a payload into an operation's input type.
///
/// Every typed decode in the module but `reconcile`'s goes bytes → `Value` → type through
/// `serde_path_to_error`, and every encode goes type → `Value` → bytes: one instantiation of
/// each (large) k8s-openapi serde impl instead of one per deserializer, which keeps
/// `lws.wasm` small.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    payload: &[u8],
) -> Result<T, OpError> {
    serde_path_to_error::deserialize(parse::<serde_json::Value>(operation, payload)?).map_err(|e| {
        OpError::BadPayload {
            operation,
            message: e.to_string(),
        }
    })
}

/// Serializes an answer (see [`typed`] for why through `Value`). Our output types hold only
/// strings, numbers, string-keyed maps and sequences, for which serde_json cannot fail.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("ops outputs are plain JSON data");
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_operation_is_a_protocol_fault() {
        assert!(matches!(
            call("explode", b"{}"),
            Err(OpError::UnknownOperation(_))
        ));
    }

    #[test]
    fn garbage_payload_is_a_protocol_fault_not_a_panic() {
        for op in names::ALL {
            let _ = call(op, b"\xff\x00not json");
        }
        assert!(matches!(
            call(names::EXPAND, b"{"),
            Err(OpError::BadPayload { .. })
        ));
    }

    #[test]
    fn invalid_manifest_is_an_answer_with_problems() {
        let out = call(
            names::EXPAND,
            br#"{"metadata":{"name":"x"},"spec":{"leaderWorkerTemplate":{"size":0}}}"#,
        )
        .unwrap();
        let problems: Problems = serde_json::from_slice(&out).unwrap();
        assert_eq!(problems.problems[0].path, "spec.leaderWorkerTemplate.size");
    }

    #[test]
    fn pod_mutation_keeps_pod_fields_the_types_do_not_know() {
        let pod = serde_json::json!({
            "metadata": {"name": "x-0", "namespace": "default",
                "labels": {"leaderworkerset.sigs.k8s.io/name": "x",
                    "leaderworkerset.sigs.k8s.io/worker-index": "0",
                    "statefulset.kubernetes.io/pod-name": "x-0"},
                "annotations": {"leaderworkerset.sigs.k8s.io/size": "1"}},
            "spec": {"newPodField": {"a": 1},
                "containers": [{"name": "c", "image": "i", "newContainerField": true}]}
        });
        let payload = serde_json::json!({"pod": pod, "context": {"namespace": "default"}});
        let out = call(names::MUTATE_POD, payload.to_string().as_bytes()).unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mutated = &answer["pod"];
        assert_eq!(mutated["spec"]["newPodField"], serde_json::json!({"a": 1}));
        assert_eq!(mutated["spec"]["containers"][0]["newContainerField"], true);
        assert_eq!(
            mutated["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/group-index"],
            "0"
        );
        assert_eq!(
            mutated["spec"]["containers"][0]["env"][0]["name"],
            "LWS_LEADER_ADDRESS"
        );
    }
}
