//! Decoding a LeaderWorkerSet from JSON, with the path of the field that failed.
//!
//! The CRD schema rejects wrong types and unknown enum values before any webhook runs; this is
//! that step. Unknown fields are ignored, as structural-schema pruning drops them.

use crate::api::{LeaderWorkerSet, API_VERSION, KIND};
use crate::field_path::{FieldError, FieldErrors, FieldPath};

/// Decodes one LeaderWorkerSet document. An error names the field that could not be decoded.
pub fn decode_lws(json: &[u8]) -> Result<LeaderWorkerSet, FieldErrors> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        vec![FieldError::type_invalid(
            FieldPath::default(),
            format!("malformed JSON: {e}"),
        )]
    })?;
    decode_lws_value(value)
}

/// As [`decode_lws`], from an already parsed JSON value (the CLI parses YAML into one).
pub fn decode_lws_value(mut value: serde_json::Value) -> Result<LeaderWorkerSet, FieldErrors> {
    check_type_meta(&value)?;
    drop_null_fields(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = FieldPath::new(&e.path().to_string());
        let path = if path.as_str() == "." {
            FieldPath::default()
        } else {
            path
        };
        vec![decode_error(path, e.inner().to_string())]
    })
}

/// An unknown enum value reads as apimachinery's NotSupported; anything else as a type error.
fn decode_error(path: FieldPath, serde_message: String) -> FieldError {
    // serde: "unknown variant `X`, expected one of `A`, `B`" (or "expected `A`" for one value).
    if let Some(rest) = serde_message.strip_prefix("unknown variant `") {
        if let Some((value, expected)) = rest.split_once('`') {
            let supported: Vec<&str> = expected
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            return FieldError::not_supported(path, value, &supported);
        }
    }
    FieldError::type_invalid(path, serde_message)
}

/// `apiVersion` and `kind`, when given, must name this resource.
fn check_type_meta(value: &serde_json::Value) -> Result<(), FieldErrors> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::type_invalid(
            FieldPath::default(),
            "a LeaderWorkerSet must be an object",
        )]);
    };
    let mut errors = FieldErrors::new();
    if let Some(api_version) = object.get("apiVersion") {
        if api_version.as_str() != Some(API_VERSION) {
            errors.push(FieldError::not_supported(
                FieldPath::new("apiVersion"),
                &json_text(api_version),
                &[API_VERSION],
            ));
        }
    }
    if let Some(kind) = object.get("kind") {
        if kind.as_str() != Some(KIND) {
            errors.push(FieldError::not_supported(
                FieldPath::new("kind"),
                &json_text(kind),
                &[KIND],
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Removes `"field": null` everywhere: the API server treats a null field as absent (the CRD
/// marks nothing nullable, so pruning drops it and defaulting fills it), and so do we.
fn drop_null_fields(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_null_fields);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_fields),
        _ => {}
    }
}

fn json_text(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field() {
        let errors =
            decode_lws(br#"{"spec":{"leaderWorkerTemplate":{"size":"four"}}}"#).unwrap_err();
        assert_eq!(errors[0].path.as_str(), "spec.leaderWorkerTemplate.size");
        assert!(
            errors[0].to_string().contains("invalid type"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_sequence_is_no_object() {
        // Found by make fuzz (placement: `spec: [669992]` read as 669992 replicas, past the
        // harness's pod bound, 8 GB); the CRD's schema refuses an array where it has an object.
        for (json, path) in [
            (r#"{"spec":[669992]}"#, "spec"),
            (
                r#"{"spec":{"leaderWorkerTemplate":[null,{},4]}}"#,
                "spec.leaderWorkerTemplate",
            ),
            (
                r#"{"spec":{"rolloutStrategy":["RollingUpdate"]}}"#,
                "spec.rolloutStrategy",
            ),
            (r#"{"status":[[]]}"#, "status"),
        ] {
            let errors = decode_lws(json.as_bytes()).unwrap_err();
            assert_eq!(errors.len(), 1, "{json}");
            assert_eq!(errors[0].path.as_str(), path, "{json}");
            assert!(
                errors[0]
                    .to_string()
                    .contains("invalid type: sequence, expected an object"),
                "{}",
                errors[0]
            );
        }
    }

    #[test]
    fn unknown_enum_is_not_supported() {
        let errors = decode_lws(br#"{"spec":{"startupPolicy":"Eager"}}"#).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "spec.startupPolicy: Unsupported value: \"Eager\": supported values: \"LeaderCreated\", \"LeaderReady\""
        );
    }

    #[test]
    fn wrong_kind_is_rejected() {
        let errors = decode_lws(br#"{"apiVersion":"apps/v1","kind":"Deployment"}"#).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].path.as_str(), "kind");
    }

    #[test]
    fn null_fields_count_as_absent() {
        let lws = decode_lws(br#"{"metadata":null,"spec":{"replicas":null}}"#).unwrap();
        assert_eq!(lws.spec.replicas, None);
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        assert!(decode_lws(b"{\"spec\":").is_err());
        assert!(decode_lws(b"[]").is_err());
    }
}
