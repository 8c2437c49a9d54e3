//! schemars' schema of our own types ([`crate::api`]), rewritten into a *structural* schema, the
//! only kind the API server accepts: every `$ref` inlined, a `type` on every node except
//! int-or-string ones, no `anyOf`/`oneOf` carrying types, nothing `nullable` and no
//! schemars-generated `default`s (the CRD's own defaults are upstream's markers, see
//! [`super::markers`]). The rewrite does the job of kube-rs's `StructuralSchemaRewriter`, for the
//! shapes our types produce.
//!
//! A `$ref` to a Kubernetes type (`io.k8s.*`) is not taken from schemars (k8s-openapi's schemas
//! lack the list and map markers and the defaults) but from [`super::kubernetes`], which gives
//! it as controller-gen does; only the field's own description is kept.

use super::kubernetes::{EmbeddedSchemaError, Kubernetes, PREFIX};
use serde_json::{json, Map, Value};

/// Where schemars puts definitions (`SchemaSettings::definitions_path`), as `$ref`s spell it.
pub(super) const DEFINITIONS: &str = "#/$defs/";

/// What went wrong turning schemars' schema into the CRD's.
#[derive(Debug, thiserror::Error)]
pub enum StructuralError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedSchemaError),
    #[error("schemars referred to `{0}`, which it did not define")]
    UnknownReference(String),
}

/// Rewrites `schema` in place, resolving `$ref`s against schemars' `definitions`.
pub(super) fn rewrite(
    schema: &mut Value,
    definitions: &Map<String, Value>,
    kubernetes: &Kubernetes,
) -> Result<(), StructuralError> {
    Rewriter {
        definitions,
        kubernetes,
    }
    .node(schema)
}

struct Rewriter<'a> {
    definitions: &'a Map<String, Value>,
    kubernetes: &'a Kubernetes,
}

impl Rewriter<'_> {
    fn node(&self, schema: &mut Value) -> Result<(), StructuralError> {
        if let Some(embedded) = self.resolve(schema)? {
            *schema = embedded;
            return Ok(());
        }
        let Some(object) = schema.as_object_mut() else {
            return Ok(());
        };
        collapse_string_variants(object);
        drop_null_from_enum(object);
        for keyword in [
            "$schema",
            "$defs",
            "definitions",
            "title",
            "default",
            "examples",
            "nullable",
        ] {
            object.remove(keyword);
        }
        // `additionalProperties: false` (deny_unknown_fields) is not allowed; pruning does its job.
        if object.get("additionalProperties") == Some(&Value::Bool(false)) {
            object.remove("additionalProperties");
        }
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            for property in properties.values_mut() {
                self.node(property)?;
            }
        }
        for keyword in ["items", "additionalProperties"] {
            if let Some(child) = object.get_mut(keyword) {
                self.node(child)?;
            }
        }
        if object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            // The int-or-string marker stands for its own type; the branches are optional.
            object.remove("type");
        }
        Ok(())
    }

    /// Flattens `Option` and newtype wrappers and inlines our own `$ref`s into the node; returns
    /// the replacement for a node that is a Kubernetes type.
    fn resolve(&self, schema: &mut Value) -> Result<Option<Value>, StructuralError> {
        let Some(object) = schema.as_object_mut() else {
            return Ok(None);
        };
        loop {
            flatten_nullable_type(object);
            flatten_single_branch(object);
            let Some(reference) = object.remove("$ref") else {
                return Ok(None);
            };
            let name = reference
                .as_str()
                .and_then(|r| r.strip_prefix(DEFINITIONS))
                .ok_or_else(|| StructuralError::UnknownReference(reference.to_string()))?;
            if name.starts_with(PREFIX) {
                let mut embedded = self.kubernetes.schema(name)?;
                if let (Some(description), Value::Object(target)) =
                    (object.get("description"), &mut embedded)
                {
                    target.insert("description".into(), description.clone());
                }
                return Ok(Some(embedded));
            }
            let Some(Value::Object(definition)) = self.definitions.get(name) else {
                return Err(StructuralError::UnknownReference(name.to_string()));
            };
            for (key, value) in definition {
                // The referring node's own description wins over the type's.
                object.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
}

/// `type: [T, "null"]` becomes `type: T`.
///
/// Nothing is marked `nullable`: as in upstream's CRD, the API server then prunes a `null` and
/// applies the field's default, where a nullable field would keep the `null`.
fn flatten_nullable_type(object: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = object.get("type") else {
        return;
    };
    let non_null: Vec<Value> = types
        .iter()
        .filter(|t| t.as_str() != Some("null"))
        .cloned()
        .collect();
    if let [only] = non_null.as_slice() {
        object.insert("type".into(), only.clone());
    }
}

/// `enum: [..., null]` (an `Option` of an enum) loses its `null`.
fn drop_null_from_enum(object: &mut Map<String, Value>) {
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

/// A `oneOf` of string constants (schemars' form of an enum whose variants have doc comments)
/// becomes `type: string, enum: [...]`, in declaration order.
fn collapse_string_variants(object: &mut Map<String, Value>) {
    for keyword in ["oneOf", "anyOf"] {
        let Some(Value::Array(branches)) = object.get(keyword) else {
            continue;
        };
        let mut values = Vec::new();
        for branch in branches {
            let constant = branch.get("const").or_else(|| match branch.get("enum") {
                Some(Value::Array(single)) if single.len() == 1 => single.first(),
                _ => None,
            });
            match constant {
                Some(Value::String(text)) => values.push(Value::String(text.clone())),
                // `null` is an Option's branch.
                Some(Value::Null) => {}
                // Not an enum of strings: leave the node alone.
                _ => return,
            }
        }
        object.remove(keyword);
        object.insert("type".into(), json!("string"));
        object.insert("enum".into(), Value::Array(values));
    }
}

/// `anyOf`/`oneOf`/`allOf` with one real branch (and maybe a `null` one, dropped), as schemars
/// writes `Option<T>` and newtypes, becomes that branch merged into the node.
fn flatten_single_branch(object: &mut Map<String, Value>) {
    for keyword in ["anyOf", "oneOf", "allOf"] {
        let Some(Value::Array(branches)) = object.get(keyword) else {
            continue;
        };
        let is_null = |b: &Value| {
            b.get("type").and_then(Value::as_str) == Some("null")
                || b.get("enum") == Some(&json!([null]))
                || b.get("const") == Some(&Value::Null)
        };
        let real: Vec<Value> = branches.iter().filter(|b| !is_null(b)).cloned().collect();
        let [Value::Object(only)] = real.as_slice() else {
            continue;
        };
        let only = only.clone();
        object.remove(keyword);
        for (key, value) in only {
            // The outer node's own description wins over the inlined type's.
            object.entry(key).or_insert(value);
        }
    }
}
