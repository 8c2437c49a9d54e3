//! Reading manifests: one or more YAML or JSON documents from a file or stdin.
//!
//! Text becomes `serde_json::Value` here, at the edge; the module only ever sees JSON.

use anyhow::Context;
use serde::Deserialize;
use std::io::Read;

/// One document of the input, numbered from 1 as `kubectl` counts them.
pub struct Document {
    pub number: usize,
    pub value: serde_json::Value,
}

/// Why the input could not be read as documents (format: `tests/invalid/README.md`).
pub struct ParseFailure {
    /// The document that failed, when one did (not for an input with no documents).
    pub number: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.number {
            Some(number) => write!(f, "document {number}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads `path` (`-` for stdin) into its non-empty documents.
pub fn read(path: &str) -> anyhow::Result<Result<Vec<Document>, ParseFailure>> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    }
    Ok(parse(&text))
}

/// Splits `text` into documents. JSON input is parsed as JSON (its errors are clearer);
/// anything else as a YAML stream, skipping empty documents as `kubectl apply` does.
pub fn parse(text: &str) -> Result<Vec<Document>, ParseFailure> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return serde_json::from_str(text)
            .map(|value| vec![Document { number: 1, value }])
            .map_err(|e| ParseFailure {
                number: Some(1),
                message: format!("malformed JSON: {e}"),
            });
    }
    let mut documents = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = serde_json::Value::deserialize(document).map_err(|e| ParseFailure {
            number: Some(number),
            message: format!("malformed YAML: {e}"),
        })?;
        if !value.is_null() {
            documents.push(Document { number, value });
        }
    }
    if documents.is_empty() {
        return Err(ParseFailure {
            number: None,
            message: "no LeaderWorkerSet documents in input".to_string(),
        });
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_skips_empty_documents() {
        let docs = parse("---\na: 1\n---\n---\nb: 2\n").ok().unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value["b"], 2);
    }

    #[test]
    fn malformed_yaml_names_the_document() {
        let failure = parse("a: 1\n---\nb: [\n").err().unwrap();
        assert_eq!(failure.number, Some(2));
        assert!(
            failure.message.starts_with("malformed YAML"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(parse("# nothing here\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn json_input_is_parsed_as_json() {
        let failure = parse("{\"a\": }").err().unwrap();
        assert!(
            failure.message.starts_with("malformed JSON"),
            "{}",
            failure.message
        );
    }
}
