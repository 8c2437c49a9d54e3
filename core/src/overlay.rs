//! Carrying a typed edit back onto the document it was decoded from, so that nothing the types
//! do not model is lost.
//!
//! The module decodes objects into k8s-openapi and LWS types, which drop fields they do not
//! know (a newer Kubernetes field in a pod, an LWS field from a newer upstream). Defaulting and
//! pod mutation edit the typed value; answering with its re-encoding would drop those fields at
//! admission. [`overlay`] instead takes the difference between the decoded value and the edited
//! one and applies only that to the original JSON: paths the edit did not touch keep the user's
//! bytes, including fields unknown to us.

use serde_json::{Map, Value};

/// `original` with the changes that turn `decoded` into `edited`.
///
/// `decoded` is `original` after a typed round trip (same shape, minus unknown fields, plus
/// serde's always-written fields); `edited` is `decoded` after the module's edit. Objects merge
/// key by key; arrays of equal length merge element by element, and an array the edit only
/// appended to keeps its original elements; anything else the edit changed is taken from
/// `edited` whole.
pub fn overlay(original: &Value, decoded: &Value, edited: &Value) -> Value {
    if decoded == edited {
        return original.clone();
    }
    match (original, decoded, edited) {
        (Value::Object(original), Value::Object(decoded), Value::Object(edited)) => {
            Value::Object(overlay_object(original, decoded, edited))
        }
        (Value::Array(original), Value::Array(decoded), Value::Array(edited))
            if original.len() == decoded.len() && edited.len() >= decoded.len() =>
        {
            let mut merged: Vec<Value> = original
                .iter()
                .zip(decoded)
                .zip(edited)
                .map(|((o, d), e)| overlay(o, d, e))
                .collect();
            merged.extend(edited[decoded.len()..].iter().cloned());
            Value::Array(merged)
        }
        _ => edited.clone(),
    }
}

fn overlay_object(
    original: &Map<String, Value>,
    decoded: &Map<String, Value>,
    edited: &Map<String, Value>,
) -> Map<String, Value> {
    let mut merged = original.clone();
    for (key, edited_value) in edited {
        let value = match (original.get(key), decoded.get(key)) {
            (Some(o), Some(d)) => overlay(o, d, edited_value),
            // New in the edit, or written by the round trip alone: nothing of the user's to keep.
            _ => {
                if decoded.get(key) == Some(edited_value) {
                    continue;
                }
                edited_value.clone()
            }
        };
        merged.insert(key.clone(), value);
    }
    for key in decoded.keys() {
        if !edited.contains_key(key) {
            merged.remove(key);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unchanged_documents_come_back_byte_for_byte() {
        let original = json!({"a": 1, "unknown": {"x": [1, 2]}});
        let decoded = json!({"a": 1});
        assert_eq!(overlay(&original, &decoded, &decoded), original);
    }

    #[test]
    fn defaults_land_beside_unknown_fields() {
        let original = json!({"spec": {"futureField": {"deep": true}, "size": 2}});
        let decoded = json!({"spec": {"size": 2}});
        let edited = json!({"spec": {"size": 2, "replicas": 1}});
        assert_eq!(
            overlay(&original, &decoded, &edited),
            json!({"spec": {"futureField": {"deep": true}, "size": 2, "replicas": 1}})
        );
    }

    #[test]
    fn round_trip_only_fields_are_not_added() {
        // serde writes `workerTemplate: {}` for a missing template; the edit did not touch it.
        let original = json!({"spec": {}});
        let decoded = json!({"spec": {"workerTemplate": {}}});
        let edited = json!({"spec": {"workerTemplate": {}, "size": 1}});
        assert_eq!(
            overlay(&original, &decoded, &edited),
            json!({"spec": {"size": 1}})
        );
    }

    #[test]
    fn a_new_parent_comes_whole_from_the_edit() {
        let original = json!({"spec": {}});
        let decoded = json!({"spec": {}});
        let edited = json!({"spec": {"rolloutStrategy": {"type": "RollingUpdate"}}});
        assert_eq!(overlay(&original, &decoded, &edited), edited);
    }

    #[test]
    fn appended_array_elements_keep_the_originals_unknown_fields() {
        let original = json!({"env": [{"name": "A", "future": 1}]});
        let decoded = json!({"env": [{"name": "A"}]});
        let edited = json!({"env": [{"name": "A", "value": "x"}, {"name": "B"}]});
        assert_eq!(
            overlay(&original, &decoded, &edited),
            json!({"env": [{"name": "A", "future": 1, "value": "x"}, {"name": "B"}]})
        );
    }

    #[test]
    fn reordered_arrays_are_taken_from_the_edit() {
        let original = json!({"env": [{"name": "A", "future": 1}, {"name": "B"}]});
        let decoded = json!({"env": [{"name": "A"}, {"name": "B"}]});
        let edited = json!({"env": [{"name": "L"}]});
        assert_eq!(overlay(&original, &decoded, &edited), edited);
    }

    #[test]
    fn removed_and_replaced_values() {
        let original = json!({"policy": "Default", "keep": "x", "gone": 1});
        let decoded = json!({"policy": "Default", "keep": "x", "gone": 1});
        let edited = json!({"policy": "None", "keep": "x"});
        assert_eq!(
            overlay(&original, &decoded, &edited),
            json!({"policy": "None", "keep": "x"})
        );
    }
}
