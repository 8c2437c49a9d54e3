//! apimachinery's checks of `metadata.labels` and `metadata.annotations` (v0.36:
//! `ValidateObjectMetaAccessor` → `v1validation.ValidateLabels` and `ValidateAnnotations`, with
//! the rules of `pkg/api/validate/content`). The API server runs them on every object before a
//! validating webhook sees it, and upstream's webhook runs them again through
//! `ValidateObjectMeta`; `lws validate` must refuse what the API server would, with its messages. Checked against kube-apiserver
//! v1.36.3 (`kubectl create --dry-run=server`), e.g.
//! `metadata.annotations: Too long: may not be more than 262144 bytes`.
//!
//! Go ranges over a map in random order; we report in key order.

use super::go_quote;
use crate::field_path::{FieldError, FieldErrors, FieldPath};
use std::collections::BTreeMap;

/// apimachinery's `TotalAnnotationSizeLimitB`: keys and values together, in bytes.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 << 10;

const LABEL_KEY_MAX_LENGTH: usize = 63;
const LABEL_VALUE_MAX_LENGTH: usize = 63;
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const LABEL_KEY_FORMAT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FORMAT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FORMAT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// `ValidateLabels`: every key a qualified name, every value a label value.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &FieldPath) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (key, value) in labels.into_iter().flatten() {
        for message in qualified_name_errors(key) {
            errors.push(FieldError::invalid(path.clone(), go_quote(key), message));
        }
        for message in label_value_errors(value) {
            errors.push(FieldError::invalid(path.clone(), go_quote(value), message));
        }
    }
    errors
}

/// `ValidateAnnotations`: every key a qualified name once lowercased, and keys and values
/// together at most [`TOTAL_ANNOTATION_SIZE_LIMIT_BYTES`].
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let mut total: usize = 0;
    for (key, value) in annotations.into_iter().flatten() {
        for message in qualified_name_errors(&key.to_lowercase()) {
            errors.push(FieldError::invalid(path.clone(), go_quote(key), message));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errors.push(FieldError::too_long(
            path.clone(),
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errors
}

/// `IsQualifiedName` (`content.IsLabelKey`): an optional DNS-1123 subdomain prefix and `/`, then
/// a name of at most 63 characters.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                for message in dns1123_subdomain_errors(prefix) {
                    errors.push(format!("prefix part {message}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_MESSAGE, LABEL_KEY_FORMAT, &["MyName", "my.name", "123-abc"])
            )]
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > LABEL_KEY_MAX_LENGTH {
        errors.push(format!(
            "name part {}",
            max_length_error(LABEL_KEY_MAX_LENGTH)
        ));
    }
    if !is_label_key_name(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_MESSAGE,
                LABEL_KEY_FORMAT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// `IsValidLabelValue` (`content.IsLabelValue`).
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errors.push(max_length_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !is_label_key_name(value) {
        errors.push(regex_error(
            LABEL_VALUE_MESSAGE,
            LABEL_VALUE_FORMAT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// `content.IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(max_length_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let label = |part: &str| {
        let bytes = part.as_bytes();
        let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                alphanumeric(first)
                    && alphanumeric(last)
                    && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
            }
            _ => false,
        }
    };
    if !value.split('.').all(label) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MESSAGE,
            DNS1123_SUBDOMAIN_FORMAT,
            &["example.com"],
        ));
    }
    errors
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn is_label_key_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `content.MaxLenError`.
fn max_length_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// `content.RegexError`, spacing included.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join(" or ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn lines(errors: FieldErrors) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    /// Each line as kube-apiserver v1.36.3 printed it for the same labels (dry-run create).
    #[test]
    fn labels_read_as_the_api_server_prints_them() {
        let path = FieldPath::new("metadata").child("labels");
        let labels = map(&[
            ("", ""),
            ("-bad", "v v"),
            ("Example.com/x", "ok"),
            ("a/b/c", "x"),
            ("example.com/MyName", "my_value.1"),
            ("x", &"y".repeat(64)),
        ]);
        assert_eq!(
            lines(validate_labels(Some(&labels), &path)),
            [
                r#"metadata.labels: Invalid value: "": name part must be non-empty"#,
                r#"metadata.labels: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                r#"metadata.labels: Invalid value: "-bad": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                r#"metadata.labels: Invalid value: "v v": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#,
                r#"metadata.labels: Invalid value: "Example.com/x": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"metadata.labels: Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"#,
                &format!(
                    r#"metadata.labels: Invalid value: "{}": must be no more than 63 bytes"#,
                    "y".repeat(64)
                ),
            ]
        );
    }

    #[test]
    fn annotation_keys_are_checked_lowercased() {
        let path = FieldPath::new("metadata").child("annotations");
        let annotations = map(&[("Bad Key", "1"), ("Example.com/Up", "any value at all")]);
        assert_eq!(
            lines(validate_annotations(Some(&annotations), &path)),
            [
                r#"metadata.annotations: Invalid value: "Bad Key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#
            ]
        );
    }

    #[test]
    fn annotations_may_total_256_kib_keys_included() {
        let path = FieldPath::new("metadata").child("annotations");
        let at_limit = map(&[
            ("a", &"x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 3)),
            ("bc", ""),
        ]);
        assert_eq!(validate_annotations(Some(&at_limit), &path), vec![]);
        let over = map(&[
            ("a", &"x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 3)),
            ("bcd", ""),
        ]);
        assert_eq!(
            lines(validate_annotations(Some(&over), &path)),
            ["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }
}
