//! The Kubernetes types the CRD embeds (PodTemplateSpec, PersistentVolumeClaim, the StatefulSet
//! PVC retention policy, Condition, IntOrString), in the form controller-gen gives them in
//! upstream's CRD.
//!
//! The source is `core/schema/kubernetes-v1.36.3.json`, written by `core/schema/regenerate.sh`:
//! the definitions of the API server's OpenAPI v3 documents of that Kubernetes version (pruned to
//! what the roots reach), plus a few facts `core/schema/gomarkers` reads from the Go source of
//! the same release. Both kube-openapi (which writes the OpenAPI documents) and controller-gen
//! (which writes upstream's CRD) generate from the same Go types and markers, so the OpenAPI
//! definitions carry the list types, map types, list-map keys, required fields and formats
//! controller-gen emits. Where the two generators part, the Go facts decide:
//!
//! - **Defaults.** kube-openapi writes the Go zero value as the default of every non-pointer field
//!   and list element (`default: ""`, `0`, `{}`), and resolves `+default=ref(Const)`;
//!   controller-gen writes only explicit `+default=<json>` / `+kubebuilder:default=<json>`
//!   markers. The OpenAPI defaults are dropped and the explicit markers applied.
//! - **Validations.** `+kubebuilder:validation:*` markers (Condition's patterns, lengths and
//!   enum) are read by controller-gen only.
//! - **Inline embedding.** controller-gen carries an inline-embedded struct's type-level markers
//!   (`LocalObjectReference`'s `x-kubernetes-map-type: atomic`) into the embedding struct;
//!   kube-openapi flattens the fields only.
//!
//! The rest follows controller-gen's built-in schemas: an int-or-string is `anyOf: [integer,
//! string]` with `x-kubernetes-int-or-string`; a Quantity is that plus the pattern of its
//! grammar; embedded ObjectMeta keeps only annotations, finalizers, labels, name and namespace
//! (controller-gen's `generateEmbeddedObjectMeta`, without markers); and the OpenAPI keywords a
//! CRD schema has no place for (strategic-merge-patch keys, unions, group-version-kind) are
//! dropped. Any other keyword or marker is an error, so a new one is never silently lost.

use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The committed data file (see the module docs).
const DATA: &str = include_str!("../../schema/kubernetes-v1.36.3.json");

/// Definition name prefix of Kubernetes types in schemars' and the OpenAPI documents' `$ref`s.
pub(crate) const PREFIX: &str = "io.k8s.";

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const REF_PREFIX: &str = "#/components/schemas/";

/// The fields controller-gen keeps in embedded ObjectMeta.
const EMBEDDED_META_FIELDS: [&str; 5] =
    ["annotations", "finalizers", "labels", "name", "namespace"];

/// The grammar of a Quantity (`<signedNumber><suffix>`, its type's documentation in the data
/// file) as the anchored regular expression a CRD validates quantities with: an optional sign, a
/// decimal number, then a binary-SI suffix, a decimal-SI suffix or an exponent.
const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Keywords copied as they are.
const KEPT: [&str; 7] = [
    "type",
    "format",
    "description",
    "enum",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

/// Keywords a CRD schema has no field for: strategic merge patch (CRDs are merged as JSON),
/// union discriminators and the group-version-kind of top-level objects.
const DROPPED: [&str; 4] = [
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-unions",
    "x-kubernetes-group-version-kind",
];

/// Type-level keywords an inline-embedded struct passes to the struct embedding it.
const INHERITED: [&str; 2] = ["x-kubernetes-map-type", "x-kubernetes-list-type"];

/// What is wrong with the data file or a definition in it. The data file is compiled in, so
/// these are caught by the unit tests, never by a user.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum EmbeddedSchemaError {
    #[error("core/schema/kubernetes-v1.36.3.json is not the regenerate.sh format: {0}")]
    Data(String),
    #[error("{0} is not in core/schema/kubernetes-v1.36.3.json: add it to ROOTS in core/schema/regenerate.sh")]
    Missing(String),
    #[error("{0} has fields but no Go facts in the data file")]
    NoGoFacts(String),
    #[error("{definition}: unsupported OpenAPI keyword `{keyword}`")]
    Keyword { definition: String, keyword: String },
    #[error("{definition}.{field}: unsupported marker `{marker}`")]
    Marker {
        definition: String,
        field: String,
        marker: String,
    },
    #[error("{0} refers to itself")]
    Recursive(String),
}

/// The parsed data file.
pub(crate) struct Kubernetes {
    schemas: Map<String, Value>,
    go: Map<String, Value>,
}

/// The data file, parsed once.
pub(crate) fn data() -> Result<&'static Kubernetes, EmbeddedSchemaError> {
    static DATA_FILE: OnceLock<Result<Kubernetes, EmbeddedSchemaError>> = OnceLock::new();
    DATA_FILE
        .get_or_init(|| Kubernetes::parse(DATA))
        .as_ref()
        .map_err(Clone::clone)
}

impl Kubernetes {
    fn parse(text: &str) -> Result<Self, EmbeddedSchemaError> {
        let mut file: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| EmbeddedSchemaError::Data(e.to_string()))?;
        let mut take_object = |key: &str| match file.remove(key) {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(EmbeddedSchemaError::Data(format!("no object `{key}`"))),
        };
        let schemas = take_object("schemas")?;
        let go = take_object("go")?;
        Ok(Self { schemas, go })
    }

    /// The definitions in the data file.
    #[cfg(test)]
    pub(crate) fn names(&self) -> impl Iterator<Item = &String> {
        self.schemas.keys()
    }

    /// The CRD schema of definition `name` (e.g. `io.k8s.api.core.v1.PodTemplateSpec`), every
    /// `$ref` inlined.
    pub(crate) fn schema(&self, name: &str) -> Result<Value, EmbeddedSchemaError> {
        self.definition(name, &mut Vec::new())
    }

    fn definition(
        &self,
        name: &str,
        stack: &mut Vec<String>,
    ) -> Result<Value, EmbeddedSchemaError> {
        if stack.iter().any(|seen| seen == name) {
            return Err(EmbeddedSchemaError::Recursive(name.to_string()));
        }
        let raw = self
            .schemas
            .get(name)
            .and_then(Value::as_object)
            .ok_or_else(|| EmbeddedSchemaError::Missing(name.to_string()))?;
        if name == OBJECT_META {
            return Ok(embedded_object_meta(raw));
        }
        if name == QUANTITY {
            return Ok(int_or_string(Some(QUANTITY_PATTERN)));
        }
        if raw.get("format").and_then(Value::as_str) == Some("int-or-string") {
            return Ok(int_or_string(None));
        }
        stack.push(name.to_string());
        let converted = self.struct_schema(name, raw, stack);
        stack.pop();
        converted
    }

    /// A definition with fields: its keywords converted, its fields given the Go facts.
    fn struct_schema(
        &self,
        name: &str,
        raw: &Map<String, Value>,
        stack: &mut Vec<String>,
    ) -> Result<Value, EmbeddedSchemaError> {
        let facts = self.go.get(name).and_then(Value::as_object);
        if raw.contains_key("properties") && facts.is_none() {
            return Err(EmbeddedSchemaError::NoGoFacts(name.to_string()));
        }
        let mut out = self.node(name, raw, stack)?;
        if let Some(Value::Object(properties)) = out.get_mut("properties") {
            for property in properties.values_mut() {
                let Value::Object(property) = property else {
                    continue;
                };
                // kube-openapi's defaults (zero values, resolved refs) never reach the CRD.
                property.remove("default");
            }
        }
        let mut markers = Vec::new();
        if facts.is_some() {
            self.field_markers(name, &mut markers)?;
        }
        for (field, marker) in markers {
            apply_marker(&mut out, &field, &marker).map_err(|()| EmbeddedSchemaError::Marker {
                definition: name.to_string(),
                field,
                marker,
            })?;
        }
        for embedded in embeds(facts) {
            // An embedded struct without a definition of its own (TypeMeta) has no type-level
            // markers in the documents to pass on.
            let Some(Value::Object(inner)) = self.schemas.get(embedded) else {
                continue;
            };
            for keyword in INHERITED {
                if let (Some(value), false) = (inner.get(keyword), out.contains_key(keyword)) {
                    out.insert(keyword.to_string(), value.clone());
                }
            }
        }
        sort_required(&mut out);
        Ok(Value::Object(out))
    }

    /// The Go markers of the fields of struct `name`, those of the structs it embeds inline
    /// (whose fields are its own in JSON) first, as `(json field, marker)`.
    fn field_markers(
        &self,
        name: &str,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), EmbeddedSchemaError> {
        let facts = self
            .go
            .get(name)
            .and_then(Value::as_object)
            .ok_or_else(|| EmbeddedSchemaError::NoGoFacts(name.to_string()))?;
        for embedded in embeds(Some(facts)) {
            self.field_markers(embedded, out)?;
        }
        for (field, markers) in facts
            .get("markers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for marker in markers.as_array().into_iter().flatten() {
                out.push((
                    field.clone(),
                    marker.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Converts one schema node of definition `name`: `$ref`s (bare or as a one-element
    /// `allOf`) inlined with the node's own keywords winning, children converted, unknown
    /// keywords refused. Element schemas (`items`, `additionalProperties`) never keep a default:
    /// markers sit on fields, so every element default is one of kube-openapi's zero values.
    fn node(
        &self,
        name: &str,
        raw: &Map<String, Value>,
        stack: &mut Vec<String>,
    ) -> Result<Map<String, Value>, EmbeddedSchemaError> {
        let mut out = Map::new();
        let mut inlined = None;
        for (keyword, value) in raw {
            match keyword.as_str() {
                "$ref" => inlined = Some(self.reference(name, value, stack)?),
                "allOf" => match value.as_array().map(Vec::as_slice) {
                    Some([Value::Object(only)]) if only.len() == 1 && only.contains_key("$ref") => {
                        inlined = Some(self.reference(name, &only["$ref"], stack)?);
                    }
                    _ => return Err(unsupported(name, keyword)),
                },
                "properties" => {
                    let Value::Object(properties) = value else {
                        return Err(unsupported(name, keyword));
                    };
                    let mut converted = Map::new();
                    for (field, property) in properties {
                        let Value::Object(property) = property else {
                            return Err(unsupported(name, keyword));
                        };
                        let node = self.node(name, property, stack)?;
                        converted.insert(field.clone(), Value::Object(node));
                    }
                    out.insert(keyword.clone(), Value::Object(converted));
                }
                "items" | "additionalProperties" => {
                    let Value::Object(element) = value else {
                        return Err(unsupported(name, keyword));
                    };
                    let mut element = self.node(name, element, stack)?;
                    element.remove("default");
                    out.insert(keyword.clone(), Value::Object(element));
                }
                // A field's default is decided by `struct_schema` from the Go facts.
                "required" | "default" => {
                    out.insert(keyword.clone(), value.clone());
                }
                k if KEPT.contains(&k) => {
                    out.insert(keyword.clone(), value.clone());
                }
                k if DROPPED.contains(&k) => {}
                _ => return Err(unsupported(name, keyword)),
            }
        }
        if let Some(Value::Object(inner)) = inlined {
            for (keyword, value) in inner {
                out.entry(keyword).or_insert(value);
            }
        }
        Ok(out)
    }

    fn reference(
        &self,
        name: &str,
        reference: &Value,
        stack: &mut Vec<String>,
    ) -> Result<Value, EmbeddedSchemaError> {
        let target = reference
            .as_str()
            .and_then(|r| r.strip_prefix(REF_PREFIX))
            .ok_or_else(|| unsupported(name, "$ref"))?;
        self.definition(target, stack)
    }
}

/// The inline-embedded structs of a struct's Go facts.
fn embeds(facts: Option<&Map<String, Value>>) -> impl Iterator<Item = &str> {
    facts
        .and_then(|f| f.get("embeds"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn unsupported(definition: &str, keyword: &str) -> EmbeddedSchemaError {
    EmbeddedSchemaError::Keyword {
        definition: definition.to_string(),
        keyword: keyword.to_string(),
    }
}

/// controller-gen's int-or-string (IntOrString, and Quantity with its pattern).
fn int_or_string(pattern: Option<&str>) -> Value {
    let mut schema = json!({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": true,
    });
    if let Some(pattern) = pattern {
        schema["pattern"] = json!(pattern);
    }
    schema
}

/// Embedded ObjectMeta: the fields of [`EMBEDDED_META_FIELDS`], each only its shape (type,
/// items, additionalProperties), so the API server prunes the rest (e.g. `creationTimestamp`).
fn embedded_object_meta(raw: &Map<String, Value>) -> Value {
    fn shape(node: &Value) -> Value {
        let mut out = Map::new();
        for keyword in ["type", "items", "additionalProperties"] {
            if let Some(value) = node.get(keyword) {
                let value = if keyword == "type" {
                    value.clone()
                } else {
                    shape(value)
                };
                out.insert(keyword.to_string(), value);
            }
        }
        Value::Object(out)
    }
    let properties: Map<String, Value> = EMBEDDED_META_FIELDS
        .iter()
        .filter_map(|field| {
            let node = raw.get("properties")?.get(*field)?;
            Some((field.to_string(), shape(node)))
        })
        .collect();
    json!({"type": "object", "properties": properties})
}

/// controller-gen lists required fields sorted.
fn sort_required(schema: &mut Map<String, Value>) {
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        required.dedup();
    }
}

/// Applies one Go marker of `field` to the struct schema `out`; `Err(())` when the marker is
/// not one controller-gen turns into schema (see the module docs).
fn apply_marker(out: &mut Map<String, Value>, field: &str, marker: &str) -> Result<(), ()> {
    if let Some(raw) = marker
        .strip_prefix("+default=")
        .or_else(|| marker.strip_prefix("+kubebuilder:default="))
    {
        if raw.starts_with("ref(") {
            // controller-gen does not resolve references to Go constants: no default.
            return Ok(());
        }
        let value: Value = serde_json::from_str(raw).map_err(|_| ())?;
        property(out, field)?.insert("default".into(), value);
        return Ok(());
    }
    let validation = marker.strip_prefix("+kubebuilder:validation:").ok_or(())?;
    let (rule, raw) = validation.split_once('=').unwrap_or((validation, ""));
    match rule {
        "Required" | "Optional" => {
            let required = out
                .entry("required")
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(required) = required else {
                return Err(());
            };
            required.retain(|f| f != field);
            if rule == "Required" {
                required.push(json!(field));
            }
            if required.is_empty() {
                out.remove("required");
            }
        }
        "Pattern" | "Format" | "Type" => {
            let text = raw
                .strip_prefix('`')
                .and_then(|r| r.strip_suffix('`'))
                .map(str::to_string)
                .or_else(|| serde_json::from_str::<String>(raw).ok())
                .unwrap_or_else(|| raw.to_string());
            property(out, field)?.insert(lower_first(rule), json!(text));
        }
        "MaxLength" | "MinLength" | "MaxItems" | "MinItems" | "MaxProperties" | "MinProperties" => {
            let number: u64 = raw.parse().map_err(|_| ())?;
            property(out, field)?.insert(lower_first(rule), json!(number));
        }
        "Minimum" | "Maximum" | "MultipleOf" => {
            let number: serde_json::Number = serde_json::from_str(raw).map_err(|_| ())?;
            property(out, field)?.insert(lower_first(rule), Value::Number(number));
        }
        "Enum" => {
            let values: Vec<Value> = raw
                .split(';')
                .map(|v| match serde_json::from_str::<serde_json::Number>(v) {
                    Ok(number) => Value::Number(number),
                    Err(_) => json!(v),
                })
                .collect();
            property(out, field)?.insert("enum".into(), Value::Array(values));
        }
        _ => return Err(()),
    }
    Ok(())
}

fn property<'a>(
    out: &'a mut Map<String, Value>,
    field: &str,
) -> Result<&'a mut Map<String, Value>, ()> {
    out.get_mut("properties")
        .and_then(|p| p.get_mut(field))
        .and_then(Value::as_object_mut)
        .ok_or(())
}

/// `MaxLength` -> `maxLength`: the marker's name is the keyword's, capitalized.
fn lower_first(rule: &str) -> String {
    let mut chars = rule.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k8s() -> &'static Kubernetes {
        data().expect("the data file parses")
    }

    #[test]
    fn every_definition_converts() {
        for name in k8s().names() {
            k8s().schema(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn conversion_leaves_no_references_and_no_openapi_only_keywords() {
        let text = k8s()
            .schema("io.k8s.api.core.v1.PodTemplateSpec")
            .unwrap()
            .to_string();
        for absent in [
            "$ref",
            "allOf",
            "oneOf",
            "x-kubernetes-patch",
            "x-kubernetes-unions",
        ] {
            assert!(!text.contains(absent), "{absent}");
        }
    }

    #[test]
    fn explicit_defaults_stay_and_zero_value_defaults_go() {
        let port = k8s().schema("io.k8s.api.core.v1.ContainerPort").unwrap();
        assert_eq!(port["properties"]["protocol"]["default"], "TCP");
        // kube-openapi's zero value for a required int32.
        assert!(port["properties"]["containerPort"].get("default").is_none());
        let reference = k8s()
            .schema("io.k8s.api.core.v1.LocalObjectReference")
            .unwrap();
        assert_eq!(reference["properties"]["name"]["default"], "");
    }

    #[test]
    fn defaults_referring_to_go_constants_are_dropped() {
        let disk = k8s()
            .schema("io.k8s.api.core.v1.AzureDiskVolumeSource")
            .unwrap();
        assert!(disk["properties"]["cachingMode"].get("default").is_none());
        assert!(disk["properties"]["kind"].get("default").is_none());
        assert_eq!(disk["properties"]["fsType"]["default"], "ext4");
        assert_eq!(disk["properties"]["readOnly"]["default"], false);
    }

    #[test]
    fn explicit_go_defaults_agree_with_the_openapi_documents() {
        // Where kube-openapi writes an explicit marker's default, it is the marker's value.
        for (name, facts) in &k8s().go {
            let Some(Value::Object(markers)) = facts.get("markers") else {
                continue;
            };
            let converted = k8s().schema(name).unwrap();
            for field in markers.keys() {
                let ours = converted["properties"][field].get("default");
                let published = k8s().schemas[name]["properties"][field].get("default");
                if let (Some(ours), Some(published)) = (ours, published) {
                    assert_eq!(ours, published, "{name}.{field}");
                }
            }
        }
    }

    #[test]
    fn condition_carries_its_kubebuilder_validations() {
        let condition = k8s()
            .schema("io.k8s.apimachinery.pkg.apis.meta.v1.Condition")
            .unwrap();
        let p = &condition["properties"];
        assert_eq!(p["status"]["enum"], json!(["True", "False", "Unknown"]));
        assert_eq!(p["type"]["maxLength"], 316);
        assert_eq!(p["reason"]["minLength"], 1);
        assert_eq!(p["message"]["maxLength"], 32768);
        assert_eq!(p["observedGeneration"]["minimum"], 0);
        assert_eq!(p["lastTransitionTime"]["format"], "date-time");
        assert_eq!(
            condition["required"],
            json!(["lastTransitionTime", "message", "reason", "status", "type"])
        );
    }

    #[test]
    fn inline_embedding_passes_the_atomic_marker_on() {
        for name in [
            "io.k8s.api.core.v1.ConfigMapEnvSource",
            "io.k8s.api.core.v1.SecretEnvSource",
            "io.k8s.api.core.v1.ConfigMapVolumeSource",
        ] {
            let schema = k8s().schema(name).unwrap();
            assert_eq!(schema["x-kubernetes-map-type"], "atomic", "{name}");
        }
    }

    #[test]
    fn quantities_and_int_or_strings_are_controller_gen_int_or_strings() {
        let resources = k8s()
            .schema("io.k8s.api.core.v1.ResourceRequirements")
            .unwrap();
        let limit = &resources["properties"]["limits"]["additionalProperties"];
        assert_eq!(limit["x-kubernetes-int-or-string"], true);
        assert_eq!(limit["pattern"], QUANTITY_PATTERN);
        let port = k8s().schema("io.k8s.api.core.v1.HTTPGetAction").unwrap();
        assert_eq!(
            port["properties"]["port"],
            json!({
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "x-kubernetes-int-or-string": true,
                "description": port["properties"]["port"]["description"],
            })
        );
    }

    #[test]
    fn embedded_object_meta_is_five_bare_fields() {
        let template = k8s().schema("io.k8s.api.core.v1.PodTemplateSpec").unwrap();
        let meta = &template["properties"]["metadata"];
        assert_eq!(
            meta["properties"],
            json!({
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "finalizers": {"type": "array", "items": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
            })
        );
    }

    #[test]
    fn list_and_map_markers_come_through() {
        let spec = k8s().schema("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(
            spec["properties"]["nodeSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
    }

    #[test]
    fn unknown_keywords_and_markers_are_errors() {
        let mut broken = Kubernetes::parse(DATA).unwrap();
        broken.schemas.insert(
            "io.k8s.test.Odd".into(),
            json!({"type": "object", "x-new-thing": 1}),
        );
        assert_eq!(
            broken.schema("io.k8s.test.Odd"),
            Err(EmbeddedSchemaError::Keyword {
                definition: "io.k8s.test.Odd".into(),
                keyword: "x-new-thing".into()
            })
        );
        broken.schemas.insert(
            "io.k8s.test.Marked".into(),
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        );
        broken.go.insert(
            "io.k8s.test.Marked".into(),
            json!({"markers": {"a": ["+kubebuilder:validation:XValidation:rule=x"]}}),
        );
        assert!(matches!(
            broken.schema("io.k8s.test.Marked"),
            Err(EmbeddedSchemaError::Marker { .. })
        ));
        assert_eq!(
            broken.schema("io.k8s.test.Absent"),
            Err(EmbeddedSchemaError::Missing("io.k8s.test.Absent".into()))
        );
    }

    #[test]
    fn the_data_is_the_kubernetes_version_of_the_cluster_and_of_k8s_openapi() {
        let data: Value = serde_json::from_str(DATA).unwrap();
        let version = data["kubernetes"]
            .as_str()
            .expect("the data names its version");
        let lib = include_str!("../../../tests/cluster/lib.sh");
        let cluster = lib
            .lines()
            .find_map(|l| l.strip_prefix("K8S_VERSION=\"${K8S_VERSION:-"))
            .and_then(|l| l.split('}').next())
            .expect("tests/cluster/lib.sh sets K8S_VERSION");
        assert_eq!(version, cluster, "tests/cluster/lib.sh K8S_VERSION");
        let manifest = include_str!("../../../host/Cargo.toml");
        let minor = version.split('.').nth(1).expect("v1.<minor>.<patch>");
        assert!(
            manifest.contains(&format!("features = [\"v1_{minor}\"]")),
            "host/Cargo.toml's k8s-openapi feature is v1_{minor}"
        );
    }
}
