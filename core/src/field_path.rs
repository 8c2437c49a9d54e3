//! Field paths and field errors, shaped like apimachinery's `field.Path` and `field.Error`.
//!
//! Paths are built from JSON names through [`FieldPath`], never typed by hand, so an error always
//! names the field the user wrote. `Display` prints `path: message` exactly as the Kubernetes API
//! server prints a webhook's field error, so the CLI and the admission response read the same.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A path to a field, e.g. `spec.leaderWorkerTemplate.size` or `spec.x[2].name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at the top-level field `name`.
    pub fn new(name: &str) -> Self {
        FieldPath(name.to_string())
    }

    /// The path of the child field `name`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return FieldPath::new(name);
        }
        FieldPath(format!("{}.{}", self.0, name))
    }

    /// The path of list element `index`.
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{}]", self.0, index))
    }

    /// The path of map entry `key`.
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{}]", self.0, key))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with a field; mirrors apimachinery's `field.ErrorType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ErrorKind {
    /// The field is missing. `Required value: <detail>`.
    Required,
    /// The value is wrong. `Invalid value: <value>: <detail>`; `value` is rendered as Go's
    /// `%v`/`%q` would (numbers bare, strings quoted).
    Invalid { value: String },
    /// The change or value is not allowed. `Forbidden: <detail>`.
    Forbidden,
    /// The value is not one of an enum. `Unsupported value: <value>: supported values: ...`.
    NotSupported {
        value: String,
        supported: Vec<String>,
    },
    /// The value appears twice. `Duplicate value: <value>`.
    Duplicate { value: String },
    /// The document cannot be decoded at this field (wrong type, malformed input).
    TypeInvalid,
    /// The value is longer than allowed; apimachinery omits the value. `Too long: <detail>`.
    TooLong,
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: FieldPath,
    pub kind: ErrorKind,
    /// The rule's own words (upstream's message where it has one).
    pub detail: String,
}

/// A list of field errors; empty means valid.
pub type FieldErrors = Vec<FieldError>;

impl FieldError {
    pub fn required(path: FieldPath, detail: impl Into<String>) -> Self {
        FieldError {
            path,
            kind: ErrorKind::Required,
            detail: detail.into(),
        }
    }

    /// `value` is rendered with `Display`; pass a quoted string for string values.
    pub fn invalid(path: FieldPath, value: impl fmt::Display, detail: impl Into<String>) -> Self {
        FieldError {
            path,
            kind: ErrorKind::Invalid {
                value: value.to_string(),
            },
            detail: detail.into(),
        }
    }

    pub fn forbidden(path: FieldPath, detail: impl Into<String>) -> Self {
        FieldError {
            path,
            kind: ErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    pub fn not_supported(path: FieldPath, value: &str, supported: &[&str]) -> Self {
        FieldError {
            path,
            kind: ErrorKind::NotSupported {
                value: format!("{value:?}"),
                supported: supported.iter().map(|s| format!("{s:?}")).collect(),
            },
            detail: String::new(),
        }
    }

    pub fn duplicate(path: FieldPath, value: impl fmt::Display) -> Self {
        FieldError {
            path,
            kind: ErrorKind::Duplicate {
                value: value.to_string(),
            },
            detail: String::new(),
        }
    }

    pub fn type_invalid(path: FieldPath, detail: impl Into<String>) -> Self {
        FieldError {
            path,
            kind: ErrorKind::TypeInvalid,
            detail: detail.into(),
        }
    }

    /// apimachinery's `field.TooLong` with a limit in bytes.
    pub fn too_long(path: FieldPath, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        FieldError {
            path,
            kind: ErrorKind::TooLong,
            detail: format!("may not be more than {max_bytes} {unit}"),
        }
    }

    /// Everything after `path: `, as apimachinery's `ErrorBody` prints it.
    pub fn message(&self) -> String {
        match &self.kind {
            ErrorKind::Required if self.detail.is_empty() => "Required value".to_string(),
            ErrorKind::Required => format!("Required value: {}", self.detail),
            ErrorKind::Invalid { value } => format!("Invalid value: {value}: {}", self.detail),
            ErrorKind::Forbidden => format!("Forbidden: {}", self.detail),
            ErrorKind::NotSupported { value, supported } => {
                format!(
                    "Unsupported value: {value}: supported values: {}",
                    supported.join(", ")
                )
            }
            ErrorKind::Duplicate { value } => format!("Duplicate value: {value}"),
            ErrorKind::TypeInvalid => format!("Invalid value: {}", self.detail),
            ErrorKind::TooLong => format!("Too long: {}", self.detail),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_str().is_empty() {
            return f.write_str(&self.message());
        }
        write!(f, "{}: {}", self.path, self.message())
    }
}

/// The `{path, message}` pair every host shows; the wire form of a field error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl From<&FieldError> for Problem {
    fn from(error: &FieldError) -> Self {
        Problem {
            path: error.path.to_string(),
            message: error.message(),
        }
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(FieldPath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_use_json_names_and_indices() {
        let path = FieldPath::new("spec")
            .child("leaderWorkerTemplate")
            .child("size");
        assert_eq!(path.as_str(), "spec.leaderWorkerTemplate.size");
        assert_eq!(
            FieldPath::new("items").index(2).child("name").as_str(),
            "items[2].name"
        );
    }

    #[test]
    fn invalid_prints_like_apimachinery() {
        let path = FieldPath::new("spec")
            .child("leaderWorkerTemplate")
            .child("size");
        let error = FieldError::invalid(path, 0, "size must be equal or greater than 1");
        assert_eq!(
            error.to_string(),
            "spec.leaderWorkerTemplate.size: Invalid value: 0: size must be equal or greater than 1"
        );
    }

    #[test]
    fn not_supported_lists_values() {
        let error = FieldError::not_supported(
            FieldPath::new("spec").child("startupPolicy"),
            "Eager",
            &["LeaderCreated", "LeaderReady"],
        );
        assert_eq!(
            error.to_string(),
            "spec.startupPolicy: Unsupported value: \"Eager\": supported values: \"LeaderCreated\", \"LeaderReady\""
        );
    }
}
