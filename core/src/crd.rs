//! The `leaderworkersets.leaderworkerset.x-k8s.io` CustomResourceDefinition.
//!
//! Mirrors upstream's `config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml`, which
//! controller-gen builds from `api/leaderworkerset/v1/leaderworkerset_types.go`
//! (upstream-lws.md §2.1–§2.8): names, scope, one served and stored version `v1`, the status and
//! scale subresources, the printer columns, and an openAPIV3Schema carrying the CRD's defaults,
//! enums, bounds and int-or-string markers (and no CEL rules; the webhook validates the rest).
//!
//! The schema is generated from [`crate::api`] with schemars (k8s-openapi supplies the embedded
//! Kubernetes types), then rewritten to be *structural*, because the API server rejects any other
//! schema: no `$ref` (everything is inlined), a `type` on every node except int-or-string ones,
//! `metadata` at the root as a bare `type: object`, no `anyOf`/`oneOf` carrying types, and no
//! schemars-generated `default`s (the CRD's own defaults are added explicitly). The rewrite does
//! the job of kube-rs's `StructuralSchemaRewriter`, for the shapes our types produce.
//!
//! Output is deterministic: the same crate version always produces the same bytes.

use crate::api::{
    LeaderWorkerSet, RestartPolicy, RolloutStrategyType, StartupPolicy, SubGroupPolicyType,
    API_VERSION, GROUP, KIND, PLURAL, VERSION,
};
use crate::defaults::{
    DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE, DEFAULT_PARTITION, DEFAULT_REPLICAS, DEFAULT_SIZE,
};
use crate::validation::MAX_REPLICAS;
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

/// The structural openAPIV3Schema of a LeaderWorkerSet, with the CRD markers of §2 applied.
pub fn open_api_v3_schema() -> Value {
    let settings = SchemaSettings::openapi3().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let schema = settings
        .into_generator()
        .into_root_schema_for::<LeaderWorkerSet>();
    let mut schema = schema.to_value();
    make_structural(&mut schema);
    apply_markers(&mut schema);
    schema
}

/// Rewrites a schemars schema into a Kubernetes structural schema (see the module docs).
fn make_structural(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    flatten_nullable_type(object);
    flatten_single_branch(object);
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
            make_structural(property);
        }
    }
    for keyword in ["items", "additionalProperties"] {
        if let Some(child) = object.get_mut(keyword) {
            make_structural(child);
        }
    }
    if object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        // The int-or-string marker stands for its own type; the branches are optional.
        object.remove("type");
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

/// The CRD markers of upstream's types (upstream-lws.md §2.2–§2.8) that the Rust types cannot
/// express: defaults, enum-only fields' defaults, bounds, required fields and list types.
fn apply_markers(schema: &mut Value) {
    // The API server owns `metadata` at the root: it must be exactly `type: object`.
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("metadata".into(), json!({"type": "object"}));
    }
    let api_version_doc = format!("APIVersion of the object, {API_VERSION}.");
    set(
        schema,
        "/properties/apiVersion/description",
        json!(api_version_doc),
    );

    let spec = "/properties/spec";
    let template = "/properties/spec/properties/leaderWorkerTemplate";
    let rollout = "/properties/spec/properties/rolloutStrategy";
    let rolling =
        "/properties/spec/properties/rolloutStrategy/properties/rollingUpdateConfiguration";
    let sub_group = "/properties/spec/properties/leaderWorkerTemplate/properties/subGroupPolicy";

    set(
        schema,
        &format!("{spec}/required"),
        json!(["leaderWorkerTemplate"]),
    );
    let replicas = format!("{spec}/properties/replicas");
    set(
        schema,
        &format!("{replicas}/default"),
        json!(DEFAULT_REPLICAS),
    );
    set(schema, &format!("{replicas}/minimum"), json!(0));
    set(schema, &format!("{replicas}/maximum"), json!(MAX_REPLICAS));
    set(
        schema,
        &format!("{spec}/properties/startupPolicy/default"),
        json!(StartupPolicy::LeaderCreated.as_str()),
    );

    set(
        schema,
        &format!("{template}/required"),
        json!(["workerTemplate"]),
    );
    set(
        schema,
        &format!("{template}/properties/size/default"),
        json!(DEFAULT_SIZE),
    );
    set(
        schema,
        &format!("{template}/properties/restartPolicy/default"),
        json!(RestartPolicy::RecreateGroupOnPodRestart.as_str()),
    );
    set(
        schema,
        &format!("{sub_group}/properties/subGroupPolicyType/default"),
        json!(SubGroupPolicyType::LeaderWorker.as_str()),
    );

    set(schema, &format!("{rollout}/required"), json!(["type"]));
    set(
        schema,
        &format!("{rollout}/properties/type/default"),
        json!(RolloutStrategyType::RollingUpdate.as_str()),
    );
    set(
        schema,
        &format!("{rolling}/properties/partition/default"),
        json!(DEFAULT_PARTITION),
    );
    set(
        schema,
        &format!("{rolling}/properties/maxUnavailable/default"),
        json!(DEFAULT_MAX_UNAVAILABLE),
    );
    set(
        schema,
        &format!("{rolling}/properties/maxSurge/default"),
        json!(DEFAULT_MAX_SURGE),
    );

    set(
        schema,
        "/properties/spec/properties/networkConfig/required",
        json!(["subdomainPolicy"]),
    );

    for pod_template in ["leaderTemplate", "workerTemplate"] {
        restrict_embedded_metadata(
            schema,
            &format!("{template}/properties/{pod_template}/properties/metadata"),
        );
    }
    restrict_embedded_metadata(
        schema,
        &format!("{template}/properties/volumeClaimTemplates/items/properties/metadata"),
    );

    for (pointer, description) in DESCRIPTIONS {
        set(
            schema,
            &format!("{pointer}/description"),
            json!(description),
        );
    }

    let conditions = "/properties/status/properties/conditions";
    set(
        schema,
        &format!("{conditions}/x-kubernetes-list-type"),
        json!("map"),
    );
    set(
        schema,
        &format!("{conditions}/x-kubernetes-list-map-keys"),
        json!(["type"]),
    );
}

/// Embedded object metadata keeps only the fields controller-gen's `generateEmbeddedObjectMeta`
/// keeps upstream, so the API server prunes the same fields (e.g. `creationTimestamp: null`).
fn restrict_embedded_metadata(schema: &mut Value, pointer: &str) {
    const KEPT: [&str; 5] = ["annotations", "finalizers", "labels", "name", "namespace"];
    let properties = schema
        .pointer_mut(&format!("{pointer}/properties"))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the LeaderWorkerSet schema has object metadata at {pointer}"));
    properties.retain(|name, _| KEPT.contains(&name.as_str()));
}

/// `kubectl explain` text for our own fields (the Rust docs are written for developers), after
/// upstream's field comments.
const DESCRIPTIONS: [(&str, &str); 18] = [
    ("", "LeaderWorkerSet is the Schema for the leaderworkersets API"),
    ("/properties/spec", "LeaderWorkerSetSpec defines the desired state of LeaderWorkerSet: `replicas` groups, each of one leader pod and `size - 1` worker pods."),
    ("/properties/spec/properties/replicas", "Number of leader-workers groups. A scale subresource is available to enable HPA; its selector selects the leader pods. On scale down, the leader pod and the workers statefulset are deleted. Defaults to 1."),
    ("/properties/spec/properties/startupPolicy", "StartupPolicy determines the startup policy for the worker statefulset: LeaderCreated creates it once the leader pod exists, LeaderReady once the leader pod is ready. Defaults to LeaderCreated."),
    ("/properties/spec/properties/rolloutStrategy", "RolloutStrategy defines the strategy that will be applied to update replicas when a revision is made to the leaderWorkerTemplate."),
    ("/properties/spec/properties/rolloutStrategy/properties/type", "Type defines the rollout strategy, it can only be \"RollingUpdate\" for now."),
    ("/properties/spec/properties/rolloutStrategy/properties/rollingUpdateConfiguration", "RollingUpdateConfiguration defines the parameters to be used when type is RollingUpdateStrategyType."),
    ("/properties/spec/properties/rolloutStrategy/properties/rollingUpdateConfiguration/properties/partition", "Partition indicates the ordinal at which the lws should be partitioned for updates. During a rolling update, all the groups from ordinal Partition to Replicas-1 will be updated. The groups from 0 to Partition-1 will not be updated. The default value is 0."),
    ("/properties/spec/properties/rolloutStrategy/properties/rollingUpdateConfiguration/properties/maxUnavailable", "The maximum number of replicas that can be unavailable during the update. Value can be an absolute number (ex: 5) or a percentage of total replicas at the start of update (ex: 10%), rounded down. This can not be 0 if MaxSurge is 0. Defaults to 1."),
    ("/properties/spec/properties/rolloutStrategy/properties/rollingUpdateConfiguration/properties/maxSurge", "The maximum number of replicas that can be scheduled above the original number of replicas. Value can be an absolute number (ex: 5) or a percentage of total replicas at the start of the update (ex: 10%), rounded up. Defaults to 0."),
    ("/properties/spec/properties/networkConfig", "NetworkConfig defines the network configuration of the group."),
    ("/properties/spec/properties/networkConfig/properties/subdomainPolicy", "SubdomainPolicy determines the policy that will be used when creating the headless service: Shared (one service for all groups) or UniquePerReplica (one per group). Defaults to Shared."),
    ("/properties/spec/properties/leaderWorkerTemplate", "LeaderWorkerTemplate defines the template for leader/worker pods."),
    ("/properties/spec/properties/leaderWorkerTemplate/properties/size", "Number of pods to create per group, the leader included. Defaults to 1."),
    ("/properties/spec/properties/leaderWorkerTemplate/properties/restartPolicy", "RestartPolicy defines the restart policy when pod failures happen: RecreateGroupOnPodRestart recreates the whole group, RecreateGroupAfterStart does so only once every pod has started, None leaves the group alone. The deprecated Default means None. Defaults to RecreateGroupOnPodRestart."),
    ("/properties/spec/properties/leaderWorkerTemplate/properties/subGroupPolicy", "SubGroupPolicy describes the policy that will be applied when creating subgroups in each group."),
    ("/properties/spec/properties/leaderWorkerTemplate/properties/subGroupPolicy/properties/subGroupSize", "The number of pods per subgroup. This value is immutable, and must not be greater than size. Size or size - 1 must be divisible by subGroupSize."),
    ("/properties/status", "LeaderWorkerSetStatus defines the observed state of LeaderWorkerSet."),
];

/// Sets the value at a JSON pointer whose parent exists. The pointers are the fixed paths of our
/// own types, so a missing parent is a bug in this module, caught by the unit tests.
fn set(schema: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer
        .rsplit_once('/')
        .expect("pointers in this module have a parent");
    let parent = schema
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the LeaderWorkerSet schema has an object at {parent}"));
    parent.insert(key.to_string(), value);
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
                json!([
                    "RecreateGroupOnPodRestart",
                    "RecreateGroupAfterStart",
                    "Default",
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
    fn only_the_crd_markers_set_defaults() {
        let schema = open_api_v3_schema();
        let mut defaults = Vec::new();
        walk(&schema, "", &mut |pointer, node| {
            if node.contains_key("default") {
                defaults.push(pointer.replace(SPEC, "spec"));
            }
        });
        defaults.sort();
        assert_eq!(
            defaults,
            [
                "spec/leaderWorkerTemplate/properties/restartPolicy",
                "spec/leaderWorkerTemplate/properties/size",
                "spec/leaderWorkerTemplate/properties/subGroupPolicy/properties/subGroupPolicyType",
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
    fn generation_is_deterministic() {
        assert_eq!(
            custom_resource_definition().to_string(),
            custom_resource_definition().to_string()
        );
    }
}
