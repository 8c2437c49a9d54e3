//! The invalid-manifest corpus in `tests/invalid/` (format in `tests/invalid/README.md`).
//!
//! Every manifest there must be rejected, and the line its `# expect:` comment (or sibling
//! `.expect` file) names must be among the lines we would print. The rendering of lines here is
//! the one the README prescribes for the CLI: `path: message`, prefixed by `document N: ` when
//! the file holds more than one document; parse errors as `document N: malformed YAML: ...`.

use lws_core::decode::decode_lws_value;
use lws_core::defaults::apply_defaults;
use lws_core::validation::{validate_create, validate_update};
use lws_core::LeaderWorkerSet;
use serde::Deserialize;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/invalid")
}

/// One parsed document of a file: its JSON value, or the line reporting why it did not parse.
type Document = Result<serde_json::Value, String>;

/// Splits a YAML stream into documents. serde_norway's iterator repeats a parse error forever,
/// so reading stops at the first one.
fn parse_yaml(text: &str) -> Vec<Document> {
    let mut documents = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        match serde_json::Value::deserialize(document) {
            Ok(value) => documents.push(Ok(value)),
            Err(error) => {
                documents.push(Err(format!(
                    "document {}: malformed YAML: {error}",
                    index + 1
                )));
                break;
            }
        }
    }
    documents
}

fn parse_json(text: &str) -> Vec<Document> {
    vec![serde_json::from_str(text).map_err(|error| format!("document 1: malformed JSON: {error}"))]
}

/// JSON when the text starts with `{` or `[` (how the CLI decides), a YAML stream otherwise.
fn parse_file(path: &Path) -> Vec<Document> {
    let text = std::fs::read_to_string(path).expect("corpus files are readable UTF-8");
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        parse_json(&text)
    } else {
        parse_yaml(&text)
    }
}

/// Decodes and defaults one document, or returns its problems as `path: message` lines.
fn decode(value: serde_json::Value) -> Result<LeaderWorkerSet, Vec<String>> {
    let mut lws = decode_lws_value(value)
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    apply_defaults(&mut lws);
    Ok(lws)
}

/// Every line the CLI would print for `path` (validated as a create, or as an update of the
/// documents in `old`).
fn report(path: &Path, old: Option<&[Document]>) -> Vec<String> {
    let documents = parse_file(path);
    let non_empty = documents
        .iter()
        .filter(|d| !matches!(d, Ok(serde_json::Value::Null)))
        .count();
    let several = non_empty > 1;
    let mut lines = Vec::new();
    let mut found_any = false;
    for (index, document) in documents.into_iter().enumerate() {
        let value = match document {
            Ok(serde_json::Value::Null) => continue,
            Ok(value) => value,
            Err(line) => {
                lines.push(line);
                found_any = true;
                continue;
            }
        };
        found_any = true;
        let problems = match decode(value) {
            Err(problems) => problems,
            Ok(new) => {
                let old = old.and_then(|docs| docs.get(index)).map(|doc| {
                    let value = doc.clone().expect("an .old.yaml document parses");
                    decode(value).expect("an .old.yaml document decodes")
                });
                let errors = match &old {
                    Some(old) => validate_update(old, &new),
                    None => validate_create(&new),
                };
                errors.iter().map(ToString::to_string).collect()
            }
        };
        for problem in problems {
            if several {
                lines.push(format!("document {}: {problem}", index + 1));
            } else {
                lines.push(problem);
            }
        }
    }
    if !found_any {
        lines.push("no LeaderWorkerSet documents in input".to_string());
    }
    lines
}

/// The expectation of a case: the `# expect:` first line, or the sibling `.expect` file.
fn expectation(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "json") {
        let expect = path.with_extension("expect");
        let text = std::fs::read_to_string(&expect)
            .unwrap_or_else(|e| panic!("{}: missing .expect file: {e}", path.display()));
        return text.trim_end_matches('\n').to_string();
    }
    let text = std::fs::read_to_string(path).expect("corpus files are readable UTF-8");
    let first = text.lines().next().unwrap_or("");
    first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: first line is not `# expect: ...`", path.display()))
        .to_string()
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/invalid exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".yaml") && !name.ends_with(".old.yaml")) || name.ends_with(".json")
        })
        .collect();
    cases.sort();
    cases
}

fn old_sibling(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".yaml")?;
    let old = path.with_file_name(format!("{stem}.old.yaml"));
    old.exists().then_some(old)
}

/// A line meets an expectation when it is the expectation, or starts with it followed by `: `
/// (so `document 1: malformed YAML` matches whatever the parser says next).
fn matches_expectation(line: &str, expected: &str) -> bool {
    line == expected
        || line
            .strip_prefix(expected)
            .is_some_and(|rest| rest.starts_with(": "))
}

#[test]
fn every_invalid_manifest_reports_its_expected_line() {
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let old = old_sibling(path).map(|old| parse_file(&old));
        let lines = report(path, old.as_deref());
        let expected = expectation(path);
        if !lines
            .iter()
            .any(|line| matches_expectation(line, &expected))
        {
            failures.push(format!(
                "{}\n  expected a line: {expected}\n  got:\n    {}",
                path.display(),
                lines.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_old_manifest_of_an_update_pair_is_valid() {
    for path in cases() {
        let Some(old) = old_sibling(&path) else {
            continue;
        };
        let lines = report(&old, None);
        assert!(lines.is_empty(), "{}: {lines:?}", old.display());
    }
}

#[test]
fn update_pairs_are_rejected_only_as_updates_where_the_rule_is_update_only() {
    // The sub-group immutability rules exist only on update: as creates, these manifests pass.
    for name in [
        "50-update-subgroup-size-changed.yaml",
        "51-update-subgroup-policy-added.yaml",
        "52-update-subgroup-policy-removed.yaml",
    ] {
        let lines = report(&corpus_dir().join(name), None);
        assert!(lines.is_empty(), "{name}: {lines:?}");
    }
}
