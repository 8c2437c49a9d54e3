//! Our CRD (`lws_core::crd`, what `lws crd`, `lws install` and the chart apply) against upstream's
//! own CRD file, `config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml` of the
//! `sigs.k8s.io/lws` Go module: every schema path and every keyword but `description`, and every
//! value of the CRD object around the schema. Each difference must be in the allow-list of
//! docs/differences.md (section "CRD", the table after `crd-allow-list`), which gives its reason;
//! an allow-list row that matches no difference fails too, so the list stays exact.
//!
//! The upstream file is found through `LWS_UPSTREAM_CRD` (the Makefile's unit target sets it from
//! core/schema/upstream-crd.sh), else in the default module cache. Without it the test fails: it
//! never passes without comparing.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

const UPSTREAM_FILE: &str =
    "sigs.k8s.io/lws@v0.9.0/config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml";
const SCHEMA_POINTER: &str = "/spec/versions/0/schema/openAPIV3Schema";
const ALLOW_LIST_MARK: &str = "<!-- crd-allow-list";
/// Prefix of the paths outside the schema.
const CRD_OBJECT: &str = "CustomResourceDefinition";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn upstream_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LWS_UPSTREAM_CRD").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("LWS_GOMODCACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/lws/go/mod")))
        .expect("HOME or LWS_GOMODCACHE is set");
    cache.join(UPSTREAM_FILE)
}

fn upstream_crd() -> Value {
    let path = upstream_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "upstream's CRD {} is needed for this comparison ({e}); get it with \
             core/schema/upstream-crd.sh and pass its output as LWS_UPSTREAM_CRD (make unit does)",
            path.display()
        )
    });
    serde_norway::from_str(&text).expect("upstream's CRD is YAML")
}

/// One difference between the two CRDs.
#[derive(Clone, Debug, PartialEq)]
struct Difference {
    /// Dotted field path (`spec.leaderWorkerTemplate.size`, `[]` for list items, `{}` for map
    /// values, `(root)` for the schema's root), or `CustomResourceDefinition.<json path>` outside
    /// the schema.
    path: String,
    /// The schema keyword, or `field` when the whole field is on one side only.
    keyword: String,
    ours: Option<Value>,
    upstream: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(absent)".to_string(),
            Some(v) => {
                let text = v.to_string();
                if text.len() > 80 {
                    format!("{}…", &text[..80])
                } else {
                    text
                }
            }
        };
        write!(
            f,
            "`{}` `{}`: ours {}, upstream {}",
            self.path,
            self.keyword,
            show(&self.ours),
            show(&self.upstream)
        )
    }
}

/// Keywords whose value is a sub-schema or a map of them; every other keyword is compared as a
/// value.
const NESTING: [&str; 3] = ["properties", "items", "additionalProperties"];

/// The schema flattened: path -> keyword -> value, without descriptions.
fn flatten_schema(schema: &Value) -> BTreeMap<String, BTreeMap<String, Value>> {
    fn walk(node: &Value, path: &str, out: &mut BTreeMap<String, BTreeMap<String, Value>>) {
        let Some(object) = node.as_object() else {
            return;
        };
        let keywords = out.entry(path.to_string()).or_default();
        for (keyword, value) in object {
            if keyword != "description" && !NESTING.contains(&keyword.as_str()) {
                keywords.insert(keyword.clone(), value.clone());
            }
        }
        let child = |suffix: &str| {
            if path == "(root)" {
                suffix.trim_start_matches('.').to_string()
            } else {
                format!("{path}{suffix}")
            }
        };
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (name, property) in properties {
                walk(property, &child(&format!(".{name}")), out);
            }
        }
        if let Some(items) = object.get("items") {
            walk(items, &child("[]"), out);
        }
        if let Some(values @ Value::Object(_)) = object.get("additionalProperties") {
            walk(values, &child("{}"), out);
        }
    }
    let mut out = BTreeMap::new();
    walk(schema, "(root)", &mut out);
    out
}

/// The CRD object without its schema, flattened to its leaf values.
fn flatten_object(crd: &Value) -> BTreeMap<String, Value> {
    fn walk(node: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
        match node {
            Value::Object(object) if !object.is_empty() => {
                for (key, value) in object {
                    walk(value, &format!("{path}.{key}"), out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (index, value) in items.iter().enumerate() {
                    walk(value, &format!("{path}[{index}]"), out);
                }
            }
            leaf => {
                out.insert(path.to_string(), leaf.clone());
            }
        }
    }
    let mut crd = crd.clone();
    if let Some(Value::Object(schema)) = crd.pointer_mut("/spec/versions/0/schema") {
        schema.remove("openAPIV3Schema");
    }
    let mut out = BTreeMap::new();
    walk(&crd, CRD_OBJECT, &mut out);
    out
}

/// Every difference between `ours` and `upstream` (both whole CRDs).
fn differences(ours: &Value, upstream: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    let schema = |crd: &Value| {
        flatten_schema(
            crd.pointer(SCHEMA_POINTER)
                .expect("a CRD with an openAPIV3Schema"),
        )
    };
    let (ours_schema, upstream_schema) = (schema(ours), schema(upstream));
    let paths: std::collections::BTreeSet<&String> =
        ours_schema.keys().chain(upstream_schema.keys()).collect();
    // A field on one side only is one difference, not one per keyword below it.
    let one_sided = |path: &str| {
        paths.iter().any(|p| {
            p.len() < path.len()
                && path.starts_with(p.as_str())
                && matches!(path.as_bytes()[p.len()], b'.' | b'[' | b'{')
                && (ours_schema.contains_key(*p) != upstream_schema.contains_key(*p))
        })
    };
    for path in &paths {
        match (ours_schema.get(*path), upstream_schema.get(*path)) {
            (Some(a), Some(b)) => {
                let keywords: std::collections::BTreeSet<&String> =
                    a.keys().chain(b.keys()).collect();
                for keyword in keywords {
                    if a.get(keyword) != b.get(keyword) {
                        found.push(Difference {
                            path: path.to_string(),
                            keyword: keyword.clone(),
                            ours: a.get(keyword).cloned(),
                            upstream: b.get(keyword).cloned(),
                        });
                    }
                }
            }
            (ours_side, _) if !one_sided(path) => found.push(Difference {
                path: path.to_string(),
                keyword: "field".into(),
                ours: ours_side.map(|_| Value::Bool(true)),
                upstream: ours_side.is_none().then_some(Value::Bool(true)),
            }),
            _ => {}
        }
    }
    let (ours_object, upstream_object) = (flatten_object(ours), flatten_object(upstream));
    let paths: std::collections::BTreeSet<&String> =
        ours_object.keys().chain(upstream_object.keys()).collect();
    for path in paths {
        let (a, b) = (ours_object.get(path), upstream_object.get(path));
        let is_description = path.ends_with(".description");
        if a != b && !is_description {
            found.push(Difference {
                path: path.clone(),
                keyword: "value".into(),
                ours: a.cloned(),
                upstream: b.cloned(),
            });
        }
    }
    found
}

/// A row of the allow-list: a path pattern (`*` stands for one path segment or list/map marker,
/// a trailing `**` for any rest), a keyword, and the reason.
#[derive(Debug)]
struct Allowed {
    path: String,
    keyword: String,
    reason: String,
}

impl Allowed {
    fn matches(&self, difference: &Difference) -> bool {
        self.keyword == difference.keyword && path_matches(&self.path, &difference.path)
    }
}

/// `*` matches one segment (a name between dots, a `[]` or a `{}`); a final `.**` any rest.
fn path_matches(pattern: &str, path: &str) -> bool {
    fn segments(path: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut chars = path.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => out.push(std::mem::take(&mut current)),
                '[' | '{' if chars.peek() == Some(if c == '[' { &']' } else { &'}' }) => {
                    out.push(std::mem::take(&mut current));
                    current.push(c);
                    current.push(chars.next().expect("peeked"));
                    out.push(std::mem::take(&mut current));
                    // A `.` after the marker starts the next name.
                    if chars.peek() == Some(&'.') {
                        chars.next();
                    }
                }
                _ => current.push(c),
            }
        }
        out.push(current);
        out.retain(|s| !s.is_empty());
        out
    }
    let (pattern, path) = (segments(pattern), segments(path));
    if pattern.last().map(String::as_str) == Some("**") {
        let fixed = &pattern[..pattern.len() - 1];
        return path.len() > fixed.len()
            && fixed.iter().zip(&path).all(|(p, s)| p == "*" || p == s);
    }
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| p == "*" || p == s)
}

/// The allow-list table of docs/differences.md: rows `| `path` | `keyword` | reason |`.
fn allow_list() -> Vec<Allowed> {
    let doc =
        std::fs::read_to_string(root().join("docs/differences.md")).expect("docs/differences.md");
    let table = doc
        .split_once(ALLOW_LIST_MARK)
        .map(|(_, rest)| rest)
        .expect("docs/differences.md has the CRD allow-list (`<!-- crd-allow-list`)");
    let code = |cell: &str| -> String {
        let cell = cell.trim();
        cell.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| panic!("allow-list cell {cell:?} is not `code`"))
            .to_string()
    };
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .flat_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            assert_eq!(
                cells.len(),
                3,
                "allow-list row {line:?} is | path | keyword | reason |"
            );
            let reason = cells[2].trim().to_string();
            assert!(
                !reason.is_empty(),
                "allow-list row {line:?} gives no reason"
            );
            let paths: Vec<String> = cells[0].split(',').map(code).collect();
            let keywords: Vec<String> = cells[1].split(',').map(code).collect();
            paths
                .into_iter()
                .flat_map(|path| {
                    let reason = reason.clone();
                    keywords.clone().into_iter().map(move |keyword| Allowed {
                        path: path.clone(),
                        keyword,
                        reason: reason.clone(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn our_crd_is_upstreams_but_for_the_documented_differences() {
    let ours = lws_core::crd::custom_resource_definition();
    let upstream = upstream_crd();
    let found = differences(&ours, &upstream);
    let allowed = allow_list();
    let unexplained: Vec<String> = found
        .iter()
        .filter(|d| !allowed.iter().any(|a| a.matches(d)))
        .map(ToString::to_string)
        .collect();
    let stale: Vec<String> = allowed
        .iter()
        .filter(|a| !found.iter().any(|d| a.matches(d)))
        .map(|a| format!("`{}` `{}` ({})", a.path, a.keyword, a.reason))
        .collect();
    let explained = found.len() - unexplained.len();
    eprintln!(
        "{} differences from upstream's CRD, {explained} in the allow-list ({} rows)",
        found.len(),
        allowed.len()
    );
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "{} differences, {explained} in the allow-list of docs/differences.md\n\
         not in the allow-list ({}):\n  {}\n\
         allow-list rows that match nothing ({}):\n  {}",
        found.len(),
        unexplained.len(),
        unexplained.join("\n  "),
        stale.len(),
        stale.join("\n  "),
    );
}

#[test]
fn the_comparison_sees_every_kind_of_difference() {
    // The comparison itself, on an upstream CRD changed in one place per kind.
    let ours = lws_core::crd::custom_resource_definition();
    let mut changed = ours.clone();
    let schema = changed.pointer_mut(SCHEMA_POINTER).unwrap();
    let spec = schema.pointer_mut("/properties/spec/properties").unwrap();
    spec["replicas"]["default"] = Value::from(7);
    spec["replicas"]["description"] = Value::from("not compared");
    spec.as_object_mut().unwrap().remove("startupPolicy");
    spec["extra"] = serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let containers =
        "/leaderWorkerTemplate/properties/workerTemplate/properties/spec/properties/containers";
    spec.pointer_mut(containers)
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("x-kubernetes-list-map-keys");
    changed["spec"]["names"]["shortNames"] = serde_json::json!(["lws", "x"]);
    let found = differences(&ours, &changed);
    let mut summary: Vec<(String, String)> = found
        .iter()
        .map(|d| (d.path.clone(), d.keyword.clone()))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            (
                "CustomResourceDefinition.spec.names.shortNames[1]".to_string(),
                "value".to_string()
            ),
            ("spec.extra".into(), "field".into()),
            (
                "spec.leaderWorkerTemplate.workerTemplate.spec.containers".into(),
                "x-kubernetes-list-map-keys".into()
            ),
            ("spec.replicas".into(), "default".into()),
            ("spec.startupPolicy".into(), "field".into()),
        ]
    );
    assert!(differences(&ours, &ours).is_empty());
}

#[test]
fn allow_list_patterns_match_segments() {
    let path = "spec.leaderWorkerTemplate.workerTemplate.spec.containers[].ports[].protocol";
    assert!(path_matches(path, path));
    assert!(path_matches(
        "spec.leaderWorkerTemplate.*.spec.containers[].ports[].protocol",
        path
    ));
    assert!(path_matches("spec.leaderWorkerTemplate.*.spec.**", path));
    assert!(path_matches("spec.*.*.spec.*[].ports[].*", path));
    assert!(!path_matches("spec.leaderWorkerTemplate.*.spec", path));
    assert!(!path_matches(
        "spec.*.spec.containers[].ports[].protocol",
        path
    ));
    assert!(!path_matches(
        "spec.leaderWorkerTemplate.**",
        "spec.leaderWorkerTemplate"
    ));
    assert!(path_matches("status.conditions[]", "status.conditions[]"));
    assert!(path_matches("spec.x{}", "spec.x{}"));
    assert!(!path_matches("spec.x{}", "spec.x[]"));
}
