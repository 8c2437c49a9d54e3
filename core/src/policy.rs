//! The Kubewarden policy: upstream's admission rules plus rules a cluster operator opts into.
//!
//! Kubewarden calls `validate_settings` once when it loads the policy and `validate` for each
//! admission request (protocol v1). An accepted request whose object gained defaults carries the
//! defaulted object as `mutated_object`, the way a mutating policy answers. Rejections use the
//! message the API server shows for an invalid object, so `kubectl apply` reads the same whether
//! the module runs in our webhook or in Kubewarden.

use crate::api::{LeaderWorkerSet, API_VERSION, KIND};
use crate::defaults::apply_defaults;
use crate::field_path::{FieldError, FieldErrors, FieldPath};
use crate::labels::{EXCLUSIVE_KEY_ANNOTATION_KEY, SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY};
use crate::ops::{encode, names, typed, OpError};
use crate::overlay::overlay;
use crate::validation::{validate_create, validate_update};
use serde::{Deserialize, Serialize};

/// The Kubewarden policy protocol this module speaks.
pub const PROTOCOL_VERSION: &str = "v1";

/// Rules beyond upstream's, each off unless set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Largest allowed `spec.leaderWorkerTemplate.size`.
    #[serde(default)]
    pub max_group_size: Option<i32>,
    /// Largest allowed `replicas × size`, the pods one LeaderWorkerSet may create.
    #[serde(default)]
    pub max_total_pods: Option<i64>,
    /// Every LeaderWorkerSet must use exclusive topology placement.
    #[serde(default)]
    pub require_exclusive_topology: bool,
    /// The topology keys exclusive placement may use; empty or unset allows any.
    #[serde(default)]
    pub allowed_topology_keys: Vec<String>,
}

impl Settings {
    /// Problems with the settings themselves, as one message per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(max) = self.max_group_size {
            if max < 1 {
                problems.push(format!("maxGroupSize must be at least 1, got {max}"));
            }
        }
        if let Some(max) = self.max_total_pods {
            if max < 1 {
                problems.push(format!("maxTotalPods must be at least 1, got {max}"));
            }
        }
        for key in &self.allowed_topology_keys {
            if key.is_empty() || key.chars().any(char::is_whitespace) {
                problems.push(format!("allowedTopologyKeys: {key:?} is not a label key"));
            }
        }
        problems
    }

    /// Field errors for an LWS (defaulted) that breaks one of the operator's rules.
    pub fn check(&self, lws: &LeaderWorkerSet) -> FieldErrors {
        let mut errors = FieldErrors::new();
        let size_path = FieldPath::new("spec")
            .child("leaderWorkerTemplate")
            .child("size");
        if let Some(max) = self.max_group_size {
            if lws.size() > max {
                errors.push(FieldError::invalid(
                    size_path,
                    lws.size(),
                    format!("must be no more than {max} (policy setting maxGroupSize)"),
                ));
            }
        }
        if let Some(max) = self.max_total_pods {
            let total = i64::from(lws.replicas()) * i64::from(lws.size());
            if total > max {
                errors.push(FieldError::invalid(
                    FieldPath::new("spec").child("replicas"),
                    lws.replicas(),
                    format!(
                        "replicas × size is {total}, more than {max} (policy setting maxTotalPods)"
                    ),
                ));
            }
        }
        let annotations = FieldPath::new("metadata").child("annotations");
        if self.require_exclusive_topology && lws.annotation(EXCLUSIVE_KEY_ANNOTATION_KEY).is_none()
        {
            errors.push(FieldError::required(
                annotations.key(EXCLUSIVE_KEY_ANNOTATION_KEY),
                "exclusive placement is required (policy setting requireExclusiveTopology)",
            ));
        }
        if !self.allowed_topology_keys.is_empty() {
            let allowed: Vec<&str> = self
                .allowed_topology_keys
                .iter()
                .map(String::as_str)
                .collect();
            for key in [
                EXCLUSIVE_KEY_ANNOTATION_KEY,
                SUB_GROUP_EXCLUSIVE_KEY_ANNOTATION_KEY,
            ] {
                if let Some(value) = lws.annotation(key) {
                    if !allowed.contains(&value) {
                        errors.push(FieldError::not_supported(
                            annotations.key(key),
                            value,
                            &allowed,
                        ));
                    }
                }
            }
        }
        errors
    }
}

#[derive(Serialize)]
struct SettingsValidation {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `validate_settings`: settings JSON in, `{"valid": bool, "message"?}` out.
pub fn validate_settings(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let answer = match parse_settings(payload) {
        Ok(_) => SettingsValidation {
            valid: true,
            message: None,
        },
        Err(message) => SettingsValidation {
            valid: false,
            message: Some(message),
        },
    };
    Ok(encode(&answer))
}

fn parse_settings(payload: &[u8]) -> Result<Settings, String> {
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(Settings::default());
    }
    let settings: Settings = serde_json::from_slice::<serde_json::Value>(trimmed)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("invalid settings: {e}"))?;
    let problems = settings.problems();
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(format!("invalid settings: {}", problems.join("; ")))
    }
}

/// Kubewarden's `ValidationRequest`.
#[derive(Deserialize)]
struct ValidationRequest {
    request: AdmissionRequest,
    #[serde(default)]
    settings: serde_json::Value,
}

/// The parts of an `admission.k8s.io/v1` AdmissionRequest the policy reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest {
    #[serde(default)]
    operation: String,
    #[serde(default)]
    object: Option<serde_json::Value>,
    #[serde(default)]
    old_object: Option<serde_json::Value>,
}

/// Kubewarden's `ValidationResponse`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ValidationResponse {
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutated_object: Option<serde_json::Value>,
}

/// `validate`: a `ValidationRequest` in, a `ValidationResponse` out.
pub fn validate(payload: &[u8]) -> Result<Vec<u8>, OpError> {
    let request: ValidationRequest = typed(names::VALIDATE, payload)?;
    let settings_bytes = encode(&request.settings);
    let response = match parse_settings(&settings_bytes) {
        Ok(settings) => admit(&request.request, &settings),
        Err(message) => reject(message, 400),
    };
    Ok(encode(&response))
}

/// Decides one admission request for a LeaderWorkerSet.
fn admit(request: &AdmissionRequest, settings: &Settings) -> ValidationResponse {
    if request.operation != "CREATE" && request.operation != "UPDATE" {
        return ValidationResponse {
            accepted: true,
            ..Default::default()
        };
    }
    let Some(object) = request.object.clone() else {
        return reject("the admission request carries no object".to_string(), 400);
    };
    let name = object_name(&object);
    let original = match crate::decode::decode_lws_value(object.clone()) {
        Ok(lws) => lws,
        Err(errors) => return reject(invalid_message(&name, &errors), 422),
    };
    let mut lws = original.clone();
    apply_defaults(&mut lws);
    let old = match (request.operation.as_str(), request.old_object.clone()) {
        ("UPDATE", Some(old)) => Some(crate::decode::decode_lws_value(old)),
        _ => None,
    };
    let mut errors = match old {
        Some(Ok(mut old)) => {
            apply_defaults(&mut old);
            validate_update(&old, &lws)
        }
        Some(Err(old_errors)) => validate_create(&lws)
            .into_iter()
            .chain(old_errors)
            .collect(),
        None => validate_create(&lws),
    };
    errors.extend(settings.check(&lws));
    if !errors.is_empty() {
        return reject(invalid_message(&name, &errors), 422);
    }
    ValidationResponse {
        accepted: true,
        mutated_object: (lws.spec != original.spec).then(|| with_spec_of(object, &original, &lws)),
        ..Default::default()
    }
}

/// The submitted object with only its `spec` (and type meta) replaced by the defaulted one, so
/// fields this module does not model pass through untouched.
/// `object` with the defaulting that turned `decoded` into `defaulted` applied to its spec
/// (see [`crate::overlay`]: fields our types do not know pass through untouched).
fn with_spec_of(
    mut object: serde_json::Value,
    decoded: &LeaderWorkerSet,
    defaulted: &LeaderWorkerSet,
) -> serde_json::Value {
    let encode =
        |lws: &LeaderWorkerSet| serde_json::to_value(&lws.spec).expect("a spec is plain JSON");
    if let Some(map) = object.as_object_mut() {
        let original = map
            .get("spec")
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        let spec = overlay(&original, &encode(decoded), &encode(defaulted));
        map.insert("spec".to_string(), spec);
        map.insert("apiVersion".to_string(), API_VERSION.into());
        map.insert("kind".to_string(), KIND.into());
    }
    object
}

fn object_name(object: &serde_json::Value) -> String {
    object
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The API server's wording for an invalid object:
/// `LeaderWorkerSet.leaderworkerset.x-k8s.io "x" is invalid: <error>` or `... invalid: [<e1>, <e2>]`.
pub fn invalid_message(name: &str, errors: &FieldErrors) -> String {
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let body = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    format!("{KIND}.{} {name:?} is invalid: {body}", crate::api::GROUP)
}

fn reject(message: String, code: u16) -> ValidationResponse {
    ValidationResponse {
        accepted: false,
        message: Some(message),
        code: Some(code),
        mutated_object: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_answer(json: &str) -> serde_json::Value {
        serde_json::from_slice(&validate_settings(json.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn empty_settings_are_valid() {
        assert_eq!(settings_answer("{}")["valid"], true);
        assert_eq!(settings_answer("")["valid"], true);
    }

    #[test]
    fn bad_settings_are_rejected_with_a_message() {
        let answer = settings_answer(r#"{"maxGroupSize":0}"#);
        assert_eq!(answer["valid"], false);
        assert!(answer["message"].as_str().unwrap().contains("maxGroupSize"));
        let answer = settings_answer(r#"{"maxGroupSize":"big"}"#);
        assert_eq!(answer["valid"], false);
        let answer = settings_answer(r#"{"colour":"blue"}"#);
        assert_eq!(answer["valid"], false);
        assert!(answer["message"].as_str().unwrap().contains("colour"));
    }

    #[test]
    fn invalid_message_matches_the_api_server() {
        let errors = vec![FieldError::invalid(
            FieldPath::new("spec").child("replicas"),
            -1,
            "replicas must be equal or greater than 0",
        )];
        assert_eq!(
            invalid_message("x", &errors),
            "LeaderWorkerSet.leaderworkerset.x-k8s.io \"x\" is invalid: spec.replicas: Invalid value: -1: replicas must be equal or greater than 0"
        );
    }

    fn admit_create(object: serde_json::Value) -> ValidationResponse {
        let payload = serde_json::json!({"request": {"operation": "CREATE", "object": object}});
        serde_json::from_slice(&validate(payload.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn defaulting_keeps_fields_the_types_do_not_know() {
        let object = serde_json::json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "x", "namespace": "default"},
            "spec": {
                "fieldFromTheFuture": {"keep": [1, 2]},
                "leaderWorkerTemplate": {
                    "size": 2,
                    "futureTemplateField": "kept",
                    "workerTemplate": {"spec": {"containers": [{"name": "c", "image": "i"}]}}
                }
            }
        });
        let response = admit_create(object.clone());
        assert!(response.accepted, "{response:?}");
        let mutated = response.mutated_object.expect("defaults were added");
        assert_eq!(
            mutated["spec"]["fieldFromTheFuture"],
            object["spec"]["fieldFromTheFuture"]
        );
        assert_eq!(
            mutated["spec"]["leaderWorkerTemplate"]["futureTemplateField"],
            "kept"
        );
        assert_eq!(mutated["spec"]["replicas"], 1);
        assert_eq!(mutated["spec"]["groupIdentity"], "Ordinal");
        assert_eq!(mutated["spec"]["groupReplacementPolicy"], "PostTermination");
        // Only what defaulting adds differs: the rest is the submitted document.
        let patch = json_patch_paths(&object, &mutated);
        assert!(
            patch
                .iter()
                .all(|p| !p.contains("fieldFromTheFuture") && !p.contains("future")),
            "{patch:?}"
        );
    }

    /// Paths at which two documents differ.
    fn json_patch_paths(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
        fn walk(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
            match (a, b) {
                (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                    for key in a.keys().chain(b.keys()) {
                        match (a.get(key), b.get(key)) {
                            (Some(x), Some(y)) => walk(x, y, format!("{at}/{key}"), out),
                            _ => out.push(format!("{at}/{key}")),
                        }
                    }
                }
                _ if a != b => out.push(at),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(a, b, String::new(), &mut out);
        out
    }

    #[test]
    fn v0_11_features_not_implemented_are_refused() {
        let response = admit_create(serde_json::json!({
            "metadata": {"name": "x", "namespace": "default"},
            "spec": {"groupIdentity": "Hash"}
        }));
        assert!(!response.accepted);
        assert_eq!(response.code, Some(422));
        assert!(
            response.message.as_deref().unwrap_or("").contains(
                r#"spec.groupIdentity: Unsupported value: "Hash": supported values: "Ordinal""#
            ),
            "{response:?}"
        );
    }
}
