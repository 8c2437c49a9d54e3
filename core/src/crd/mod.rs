//! The `leaderworkersets.leaderworkerset.x-k8s.io` CustomResourceDefinition.
//!
//! The same CRD as upstream's `config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml`
//! (controller-gen's output for `api/leaderworkerset/v1`, upstream-lws.md §2.1–§2.8), field for
//! field and marker for marker; docs/differences.md ("CRD") lists where it differs and why, and
//! host/tests/upstream_crd.rs holds the two equal path by path. Names, scope, one served and
//! stored version `v1`, the status and scale subresources and the printer columns are here; the
//! openAPIV3Schema is built from three parts:
//!
//! - our own fields from [`crate::api`] with schemars, made structural ([`structural`]);
//! - upstream's kubebuilder markers on those fields: defaults, enums, bounds, required fields,
//!   list types ([`markers`]);
//! - the embedded Kubernetes types (pod templates, PVCs, conditions) from the API server's
//!   published OpenAPI v3 definitions of the Kubernetes version we build against, converted as
//!   controller-gen converts the Go types ([`kubernetes`]): their list and map types, list-map
//!   keys and defaults are what makes the API server store the same object under either CRD.
//!
//! The feature `schema` gates this module, so none of it is in `lws.wasm`. Output is
//! deterministic: the same sources always give the same bytes.

mod kubernetes;
mod markers;
mod structural;

pub use kubernetes::EmbeddedSchemaError;
pub use markers::MarkerError;
pub use structural::StructuralError;

use crate::api::{LeaderWorkerSet, GROUP, KIND, PLURAL, VERSION};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// `metadata.name` of the CRD.
pub const CRD_NAME: &str = "leaderworkersets.leaderworkerset.x-k8s.io";

/// The CustomResourceDefinition, as an `apiextensions.k8s.io/v1` object ready to apply
/// (`kubectl apply --server-side -f`, or `kubectl create`: like upstream's, it is too large for
/// client-side apply's last-applied annotation).
pub fn custom_resource_definition() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": PLURAL,
                "singular": "leaderworkerset",
                "shortNames": ["lws"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "additionalPrinterColumns": printer_columns(),
                "schema": {"openAPIV3Schema": open_api_v3_schema()},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.hpaPodSelector",
                    },
                },
            }],
        },
    })
}

/// `kubectl get lws` columns, as upstream's kubebuilder markers declare them.
fn printer_columns() -> Value {
    json!([
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas",
         "description": "Number of ready replicas"},
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas",
         "description": "Number of desired replicas"},
        {"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas",
         "description": "Number of up-to-date replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])
}

/// The structural openAPIV3Schema of a LeaderWorkerSet: our own fields from [`crate::api`]
/// (schemars) with upstream's markers ([`markers`]), the embedded Kubernetes types as
/// controller-gen gives them ([`kubernetes`]).
pub fn open_api_v3_schema() -> Value {
    build_schema().unwrap_or_else(|e| panic!("the LeaderWorkerSet CRD schema: {e}"))
}

/// What stopped the schema from being built. Every input is compiled in, so the unit tests
/// meet any of these first.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedSchemaError),
    #[error(transparent)]
    Structural(#[from] StructuralError),
    #[error(transparent)]
    Marker(#[from] MarkerError),
    #[error("schemars gave no definitions object")]
    NoDefinitions,
}

fn build_schema() -> Result<Value, SchemaError> {
    let settings = SchemaSettings::openapi3().with(|s| {
        s.inline_subschemas = false;
        s.meta_schema = None;
        s.definitions_path = "/$defs".into();
    });
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<LeaderWorkerSet>()
        .to_value();
    let definitions = match schema.as_object_mut().and_then(|s| s.remove("$defs")) {
        Some(Value::Object(definitions)) => definitions,
        None => Map::new(),
        Some(_) => return Err(SchemaError::NoDefinitions),
    };
    structural::rewrite(&mut schema, &definitions, kubernetes::data()?)?;
    markers::apply(&mut schema)?;
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
        value
            .pointer(pointer)
            .unwrap_or_else(|| panic!("nothing at {pointer}"))
    }

    /// Visits every schema node (not the `properties` maps themselves) with its pointer.
    fn walk(schema: &Value, pointer: &str, visit: &mut dyn FnMut(&str, &Map<String, Value>)) {
        let Some(object) = schema.as_object() else {
            return;
        };
        visit(pointer, object);
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (name, property) in properties {
                walk(property, &format!("{pointer}/properties/{name}"), visit);
            }
        }
        for keyword in ["items", "additionalProperties", "not"] {
            if let Some(child) = object.get(keyword) {
                walk(child, &format!("{pointer}/{keyword}"), visit);
            }
        }
        for keyword in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(branches)) = object.get(keyword) {
                for (index, branch) in branches.iter().enumerate() {
                    walk(branch, &format!("{pointer}/{keyword}/{index}"), visit);
                }
            }
        }
    }

    const SPEC: &str = "/properties/spec/properties";

    #[test]
    fn names_scope_and_version_match_upstream() {
        let crd = custom_resource_definition();
        assert_eq!(at(&crd, "/metadata/name"), CRD_NAME);
        assert_eq!(at(&crd, "/spec/group"), "leaderworkerset.x-k8s.io");
        assert_eq!(
            at(&crd, "/spec/names"),
            &json!({
                "kind": "LeaderWorkerSet",
                "listKind": "LeaderWorkerSetList",
                "plural": "leaderworkersets",
                "singular": "leaderworkerset",
                "shortNames": ["lws"],
            })
        );
        assert_eq!(at(&crd, "/spec/scope"), "Namespaced");
        assert_eq!(at(&crd, "/spec/versions/0/name"), "v1");
        assert_eq!(at(&crd, "/spec/versions/0/served"), true);
        assert_eq!(at(&crd, "/spec/versions/0/storage"), true);
    }

    #[test]
    fn scale_subresource_targets_replicas_and_hpa_selector() {
        let crd = custom_resource_definition();
        assert_eq!(
            at(&crd, "/spec/versions/0/subresources"),
            &json!({
                "status": {},
                "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".status.hpaPodSelector",
                },
            })
        );
    }

    #[test]
    fn printer_columns_are_ready_desired_up_to_date_age() {
        let crd = custom_resource_definition();
        let columns: Vec<_> = at(&crd, "/spec/versions/0/additionalPrinterColumns")
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| (c["name"].clone(), c["type"].clone(), c["jsonPath"].clone()))
            .collect();
        assert_eq!(
            columns,
            [
                (
                    json!("Ready"),
                    json!("integer"),
                    json!(".status.readyReplicas")
                ),
                (json!("Desired"), json!("integer"), json!(".spec.replicas")),
                (
                    json!("Up-to-date"),
                    json!("integer"),
                    json!(".status.updatedReplicas")
                ),
                (
                    json!("Age"),
                    json!("date"),
                    json!(".metadata.creationTimestamp")
                ),
            ]
        );
    }

    #[test]
    fn schema_has_no_refs_or_definitions() {
        let text = open_api_v3_schema().to_string();
        assert!(!text.contains("\"$ref\""));
        assert!(!text.contains("\"$defs\""));
        assert!(!text.contains("\"definitions\""));
        assert!(!text.contains("\"$schema\""));
    }

    #[test]
    fn every_node_has_a_type_or_an_int_or_string_marker() {
        let schema = open_api_v3_schema();
        let mut untyped = Vec::new();
        walk(&schema, "", &mut |pointer, node| {
            let typed = node.get("type").is_some_and(Value::is_string);
            let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&json!(true));
            let preserve = node.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            if !(typed || int_or_string || preserve) {
                untyped.push(pointer.to_string());
            }
        });
        assert!(untyped.is_empty(), "untyped nodes: {untyped:?}");
    }

    #[test]
    fn no_node_mixes_types_into_any_of_or_one_of() {
        let schema = open_api_v3_schema();
        let mut offenders = Vec::new();
        walk(&schema, "", &mut |pointer, node| {
            for keyword in ["anyOf", "oneOf", "allOf"] {
                if let Some(Value::Array(branches)) = node.get(keyword) {
                    let typed = branches
                        .iter()
                        .any(|b| b.get("type").is_some() || b.get("description").is_some());
                    let int_or_string =
                        node.get("x-kubernetes-int-or-string") == Some(&json!(true));
                    if typed && !int_or_string {
                        offenders.push(format!("{pointer}/{keyword}"));
                    }
                }
            }
            if node.contains_key("properties") && node.contains_key("additionalProperties") {
                offenders.push(format!("{pointer}: properties and additionalProperties"));
            }
        });
        assert!(offenders.is_empty(), "{offenders:?}");
    }

    #[test]
    fn embedded_metadata_keeps_the_fields_controller_gen_keeps() {
        let schema = open_api_v3_schema();
        let template = format!("{SPEC}/leaderWorkerTemplate/properties");
        for pointer in [
            format!("{template}/leaderTemplate/properties/metadata/properties"),
            format!("{template}/workerTemplate/properties/metadata/properties"),
            format!("{template}/volumeClaimTemplates/items/properties/metadata/properties"),
        ] {
            let mut fields: Vec<_> = at(&schema, &pointer)
                .as_object()
                .expect("properties")
                .keys()
                .cloned()
                .collect();
            fields.sort();
            assert_eq!(
                fields,
                ["annotations", "finalizers", "labels", "name", "namespace"],
                "{pointer}"
            );
        }
    }

    #[test]
    fn no_field_is_nullable() {
        // As in upstream's CRD: the API server prunes a null and applies the default instead.
        assert!(!open_api_v3_schema().to_string().contains("\"nullable\""));
    }

    #[test]
    fn root_metadata_is_a_bare_object() {
        let schema = open_api_v3_schema();
        assert_eq!(
            at(&schema, "/properties/metadata"),
            &json!({"type": "object"})
        );
        assert_eq!(at(&schema, "/type"), "object");
    }

    #[test]
    fn replicas_default_and_bounds_match_upstream() {
        let schema = open_api_v3_schema();
        let replicas = at(&schema, &format!("{SPEC}/replicas"));
        assert_eq!(replicas["type"], "integer");
        assert_eq!(replicas["format"], "int32");
        assert_eq!(replicas["default"], 1);
        assert_eq!(replicas["minimum"], 0);
        assert_eq!(replicas["maximum"], 1_000_000);
    }

    #[test]
    fn enums_carry_their_values_and_defaults() {
        let schema = open_api_v3_schema();
        let template = format!("{SPEC}/leaderWorkerTemplate/properties");
        let cases = [
            (
                format!("{SPEC}/startupPolicy"),
                json!(["LeaderCreated", "LeaderReady"]),
                Some(json!("LeaderCreated")),
            ),
            (
                format!("{template}/restartPolicy"),
                // Upstream's marker order, not the Rust declaration order.
                json!([
                    "Default",
                    "RecreateGroupOnPodRestart",
                    "RecreateGroupAfterStart",
                    "None"
                ]),
                Some(json!("RecreateGroupOnPodRestart")),
            ),
            (
                format!("{template}/subGroupPolicy/properties/subGroupPolicyType"),
                json!(["LeaderWorker", "LeaderExcluded"]),
                Some(json!("LeaderWorker")),
            ),
            (
                format!("{SPEC}/networkConfig/properties/subdomainPolicy"),
                json!(["Shared", "UniquePerReplica"]),
                None,
            ),
            (
                format!("{SPEC}/rolloutStrategy/properties/type"),
                json!(["RollingUpdate"]),
                Some(json!("RollingUpdate")),
            ),
            (
                format!("{SPEC}/groupIdentity"),
                json!(["Ordinal", "Hash"]),
                Some(json!("Ordinal")),
            ),
            (
                format!("{SPEC}/groupReplacementPolicy"),
                json!(["PostTermination", "Immediate"]),
                None,
            ),
            (
                format!("{SPEC}/podTerminationPolicy"),
                json!(["Default", "Parallel"]),
                Some(json!("Default")),
            ),
        ];
        for (pointer, values, default) in cases {
            let node = at(&schema, &pointer);
            assert_eq!(node["type"], "string", "{pointer}");
            assert_eq!(node["enum"], values, "{pointer}");
            assert_eq!(node.get("default").cloned(), default, "{pointer}");
        }
    }

    #[test]
    fn size_and_rolling_update_defaults_match_upstream() {
        let schema = open_api_v3_schema();
        let size = at(
            &schema,
            &format!("{SPEC}/leaderWorkerTemplate/properties/size"),
        );
        assert_eq!(size["default"], 1);
        assert!(size.get("minimum").is_none(), "the webhook checks size");
        let rolling =
            format!("{SPEC}/rolloutStrategy/properties/rollingUpdateConfiguration/properties");
        assert_eq!(at(&schema, &format!("{rolling}/partition/default")), 0);
        assert_eq!(at(&schema, &format!("{rolling}/maxUnavailable/default")), 1);
        assert_eq!(at(&schema, &format!("{rolling}/maxSurge/default")), 0);
    }

    #[test]
    fn int_or_string_fields_are_marked() {
        let schema = open_api_v3_schema();
        let rolling =
            format!("{SPEC}/rolloutStrategy/properties/rollingUpdateConfiguration/properties");
        for field in ["maxUnavailable", "maxSurge"] {
            let node = at(&schema, &format!("{rolling}/{field}"));
            assert_eq!(node["x-kubernetes-int-or-string"], true, "{field}");
            assert!(node.get("type").is_none(), "{field}");
        }
        let quantity = format!(
            "{SPEC}/leaderWorkerTemplate/properties/workerTemplate/properties/spec/properties/containers/items/properties/resources/properties/limits/additionalProperties"
        );
        assert_eq!(at(&schema, &quantity)["x-kubernetes-int-or-string"], true);
    }

    #[test]
    fn required_fields_match_upstream() {
        let schema = open_api_v3_schema();
        assert_eq!(
            at(&schema, "/properties/spec/required"),
            &json!(["leaderWorkerTemplate"])
        );
        assert_eq!(
            at(&schema, &format!("{SPEC}/leaderWorkerTemplate/required")),
            &json!(["workerTemplate"])
        );
        assert_eq!(
            at(&schema, &format!("{SPEC}/rolloutStrategy/required")),
            &json!(["type"])
        );
        assert_eq!(
            at(&schema, &format!("{SPEC}/networkConfig/required")),
            &json!(["subdomainPolicy"])
        );
    }

    #[test]
    fn status_conditions_are_a_map_list_keyed_by_type() {
        let schema = open_api_v3_schema();
        let conditions = at(&schema, "/properties/status/properties/conditions");
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    }

    #[test]
    fn our_own_fields_get_defaults_from_the_markers_only() {
        // Defaults inside the embedded Kubernetes types are kubernetes.rs's (tested there).
        let embedded = [
            "spec/leaderWorkerTemplate/properties/leaderTemplate/",
            "spec/leaderWorkerTemplate/properties/workerTemplate/",
            "spec/leaderWorkerTemplate/properties/volumeClaimTemplates/",
        ];
        let schema = open_api_v3_schema();
        let mut defaults = Vec::new();
        walk(&schema, "", &mut |pointer, node| {
            let path = pointer.replacen(SPEC, "spec", 1);
            if node.contains_key("default") && !embedded.iter().any(|e| path.starts_with(e)) {
                defaults.push(path);
            }
        });
        defaults.sort();
        assert_eq!(
            defaults,
            [
                "spec/groupIdentity",
                "spec/leaderWorkerTemplate/properties/restartPolicy",
                "spec/leaderWorkerTemplate/properties/size",
                "spec/leaderWorkerTemplate/properties/subGroupPolicy/properties/subGroupPolicyType",
                "spec/podTerminationPolicy",
                "spec/replicas",
                "spec/rolloutStrategy/properties/rollingUpdateConfiguration/properties/maxSurge",
                "spec/rolloutStrategy/properties/rollingUpdateConfiguration/properties/maxUnavailable",
                "spec/rolloutStrategy/properties/rollingUpdateConfiguration/properties/partition",
                "spec/rolloutStrategy/properties/type",
                "spec/startupPolicy",
            ]
        );
    }

    #[test]
    fn embedded_kubernetes_types_keep_their_markers_and_defaults() {
        let schema = open_api_v3_schema();
        let pod = format!("{SPEC}/leaderWorkerTemplate/properties/workerTemplate/properties/spec");
        let containers = at(&schema, &format!("{pod}/properties/containers"));
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(
            containers["items"]["properties"]["ports"]["items"]["properties"]["protocol"]
                ["default"],
            "TCP"
        );
        // The field's own description, not PodTemplateSpec's.
        let leader = at(
            &schema,
            &format!("{SPEC}/leaderWorkerTemplate/properties/leaderTemplate"),
        );
        assert!(!leader["description"]
            .as_str()
            .unwrap_or_default()
            .starts_with("PodTemplateSpec"));
    }

    #[test]
    fn v0_11_fields_have_their_markers() {
        let schema = open_api_v3_schema();
        assert_eq!(
            at(
                &schema,
                &format!("{SPEC}/leaderWorkerTemplate/properties/maxGroupRestarts/minimum")
            ),
            0
        );
        let scheduling = at(&schema, &format!("{SPEC}/scheduling"));
        assert_eq!(scheduling["type"], "object");
        assert_eq!(scheduling["x-kubernetes-preserve-unknown-fields"], true);
    }

    #[test]
    fn every_marker_lands_on_a_field() {
        // `markers::apply` errors on a marker for a field the types lack; the schema built.
        let schema = open_api_v3_schema();
        for (path, _) in markers::markers() {
            assert!(schema.pointer(&markers::pointer(path)).is_some(), "{path}");
        }
    }

    #[test]
    fn an_enum_marker_must_name_the_types_values() {
        let mut node = json!({"type": "string", "enum": ["A", "B"]});
        let node = node.as_object_mut().unwrap();
        let err = markers::apply_one(node, "spec.x", markers::Marker::Enum(&["A", "C"]));
        assert!(
            matches!(err, Err(MarkerError::EnumMismatch { .. })),
            "{err:?}"
        );
        markers::apply_one(node, "spec.x", markers::Marker::Enum(&["B", "A"])).unwrap();
        assert_eq!(node["enum"], json!(["B", "A"]));
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(
            custom_resource_definition().to_string(),
            custom_resource_definition().to_string()
        );
    }
}
