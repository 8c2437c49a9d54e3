//! Reading manifests: one or more YAML or JSON documents from a file or stdin.
//!
//! Text becomes `serde_json::Value` here, at the edge; the module only ever sees JSON.
//!
//! Input is untrusted, so every step is bounded before it allocates or recurses, with the
//! limits the API server itself applies (each cited where it is defined):
//! - the input is read to at most [`MAX_INPUT_BYTES`], and each document may hold at most
//!   [`MAX_DOCUMENT_BYTES`], the API server's request body limit;
//! - YAML is read with serde-saphyr, whose parser is linear and enforces a [`Budget`]
//!   (nesting, nodes, aliases): 100 000 nested `[` fail in a millisecond, where libyaml's
//!   scanner (serde_norway) took 22 s, quadratic in the depth;
//! - JSON and YAML alike may nest at most [`MAX_DEPTH`] levels.
//!
//! [`Budget`]: serde_saphyr::Budget

use anyhow::Context;
use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle};
use std::io::Read;

/// One document of the input, numbered from 1 as `kubectl` counts them.
pub struct Document {
    pub number: usize,
    pub value: serde_json::Value,
}

/// Largest document, in bytes of its text: kube-apiserver's `MaxRequestBodyBytes` (3 MiB,
/// `k8s.io/apiserver/pkg/server/config.go`), which refuses a larger body with "Request entity
/// too large: limit is 3145728". A document is one object, so one request.
pub const MAX_DOCUMENT_BYTES: usize = 3 << 20;

/// Largest input: many documents may share one file, as with `kubectl apply -f`, but no
/// manifest file comes near this; it bounds what a stray `-f /dev/zero` can make us hold.
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// Deepest nesting of a document. The API server's parsers stop at 10 000
/// (`sigs.k8s.io/yaml`'s `max_flow_level`/`max_indents`, Go's `encoding/json`
/// `maxNestingDepth`), but no LeaderWorkerSet field nests deeper than about 15 levels; 64 is
/// serde-saphyr's own default, stays below the module's JSON limit (serde_json's 128, less the
/// levels a host wraps around a document) and within a 2 MiB thread stack even unoptimised
/// (a debug build overflowed one at ~90 levels).
pub const MAX_DEPTH: usize = 64;

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

/// A whole input, split into documents that are parsed one at a time as they are taken: only
/// the text and one document's value are held at once, not every document's.
pub struct Input {
    text: String,
    format: Format,
}

enum Format {
    Json,
    Yaml(Vec<DocumentSpan>),
}

impl Input {
    /// Splits `text`; a YAML syntax error, or an input with no documents, fails here.
    pub fn new(text: String) -> Result<Self, ParseFailure> {
        let trimmed = text.trim_start();
        let format = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            Format::Json
        } else {
            Format::Yaml(split_yaml(&text)?)
        };
        let input = Input { text, format };
        if input.is_empty() {
            return Err(ParseFailure {
                number: None,
                message: "no LeaderWorkerSet documents in input".to_string(),
            });
        }
        Ok(input)
    }

    /// How many documents are not empty.
    pub fn len(&self) -> usize {
        match &self.format {
            Format::Json => 1,
            Format::Yaml(spans) => spans.iter().filter(|span| !span.empty).count(),
        }
    }

    /// Whether no document holds anything (never, for an `Input` that [`Input::new`] made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The non-empty documents, each parsed when it is reached.
    pub fn documents(&self) -> impl Iterator<Item = Result<Document, ParseFailure>> + '_ {
        let spans = match &self.format {
            Format::Json => &[][..],
            Format::Yaml(spans) => &spans[..],
        };
        let json = matches!(self.format, Format::Json).then(|| parse_json(&self.text));
        let yaml = spans
            .iter()
            .enumerate()
            .filter(|(_, span)| !span.empty)
            .map(|(index, span)| parse_yaml_document(&self.text, index + 1, span))
            .filter(|document| !matches!(document, Ok(document) if document.value.is_null()));
        json.into_iter().chain(yaml)
    }
}

/// Reads `path` (`-` for stdin), at most [`MAX_INPUT_BYTES`], and splits it into documents.
pub fn read(path: &str) -> anyhow::Result<Result<Input, ParseFailure>> {
    let text = if path == "-" {
        read_bounded(std::io::stdin().lock()).context("reading stdin")?
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("reading {path}"))?;
        read_bounded(file).with_context(|| format!("reading {path}"))?
    };
    Ok(match text {
        Some(text) => Input::new(text),
        None => Err(ParseFailure {
            number: None,
            message: format!("the input is larger than {MAX_INPUT_BYTES} bytes"),
        }),
    })
}

/// The text of `reader`, or `None` when it holds more than [`MAX_INPUT_BYTES`].
fn read_bounded(reader: impl Read) -> std::io::Result<Option<String>> {
    let mut text = String::new();
    reader
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() <= MAX_INPUT_BYTES).then_some(text))
}

/// Every non-empty document of `text`, or the first failure. JSON input is parsed as JSON (its
/// errors are clearer); anything else as a YAML stream, skipping empty documents as
/// `kubectl apply` does.
pub fn parse(text: &str) -> Result<Vec<Document>, ParseFailure> {
    Input::new(text.to_string())?.documents().collect()
}

fn parse_json(text: &str) -> Result<Document, ParseFailure> {
    let failure = |message: String| ParseFailure {
        number: Some(1),
        message,
    };
    check_size(text.len()).map_err(failure)?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| failure(format!("malformed JSON: {e}")))?;
    if depth(&value) > MAX_DEPTH {
        return Err(failure(format!(
            "malformed JSON: nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(Document { number: 1, value })
}

/// Document `number` of a YAML stream, deserialized alone from its span.
fn parse_yaml_document(
    text: &str,
    number: usize,
    span: &DocumentSpan,
) -> Result<Document, ParseFailure> {
    let failure = |message: String| ParseFailure {
        number: Some(number),
        message,
    };
    let source = &text[span.start..span.end];
    check_size(source.len()).map_err(failure)?;
    let value: serde_json::Value = serde_saphyr::from_str_with_options(source, yaml_options())
        .map_err(|error| {
            let rendered = error.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
                line_offset: span.line_offset,
            });
            failure(format!("malformed YAML: {rendered}"))
        })?;
    Ok(Document { number, value })
}

/// Where one YAML document lies in the stream.
struct DocumentSpan {
    start: usize,
    end: usize,
    /// Lines before `start`, to report a parser error at its line in the whole input.
    line_offset: u64,
    /// Nothing but a plain null scalar (or nothing at all): skipped, as kubectl does.
    empty: bool,
}

/// Each document's byte range, from one pass of the (bounded, linear) parser over the stream.
/// A syntax error stops the pass, named after the document it is in.
fn split_yaml(text: &str) -> Result<Vec<DocumentSpan>, ParseFailure> {
    let mut parser = Parser::new_from_str_with_options(text, parser_options());
    let mut spans: Vec<DocumentSpan> = Vec::new();
    // Node events of the current document, and whether the first was a plain null scalar.
    let mut nodes = 0usize;
    let mut null_scalar = false;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|error| ParseFailure {
            number: Some(spans.len().max(1)),
            message: format!("malformed YAML: {error}"),
        })?;
        // A document past the request limit fails now, not after the rest of it is parsed.
        if let (Some(current), Some(end)) = (spans.last(), span.end.byte_offset()) {
            check_size(end.saturating_sub(current.start)).map_err(|message| ParseFailure {
                number: Some(spans.len()),
                message,
            })?;
        }
        match event {
            Event::DocumentStart(..) => {
                let start = span.start.byte_offset().unwrap_or(0);
                if let Some(last) = spans.last_mut() {
                    last.end = start;
                }
                let line_offset = span.start.line().saturating_sub(1) as u64;
                spans.push(DocumentSpan {
                    start,
                    end: text.len(),
                    line_offset,
                    empty: false,
                });
                (nodes, null_scalar) = (0, false);
            }
            Event::DocumentEnd => {
                if let Some(last) = spans.last_mut() {
                    last.empty = nodes == 0 || (nodes == 1 && null_scalar);
                }
            }
            Event::Scalar(value, style, _, tag) => {
                nodes += 1;
                null_scalar = nodes == 1
                    && tag.is_none()
                    && style == ScalarStyle::Plain
                    && matches!(&*value, "" | "~" | "null" | "Null" | "NULL");
            }
            Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(_) => nodes += 1,
            Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(spans)
}

/// serde-saphyr with the YAML 1.2 core schema, as serde_norway read it before (`yes` is a
/// string, a repeated key keeps its last value), and the nesting bound of [`MAX_DEPTH`]. Its
/// default node and event budgets (250 000, 1 000 000) refused a valid 2.6 MB document (55 000
/// env entries); a node takes at least a byte of text, so a document within
/// [`MAX_DOCUMENT_BYTES`] never reaches these. Aliases may replay at most as many events as a
/// document's text could write out, so an alias bomb stays within the same bound.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: MAX_DOCUMENT_BYTES,
            max_events: 2 * MAX_DOCUMENT_BYTES + 8,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_DOCUMENT_BYTES,
        },
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        with_snippet: false,
    }
}

/// The splitting pass's parser: the same nesting bounds, so it too stops early.
fn parser_options() -> granit_parser::Options {
    granit_parser::options! {
        flow_nesting_limit: MAX_DEPTH,
        block_nesting_limit: MAX_DEPTH,
    }
}

fn check_size(bytes: usize) -> Result<(), String> {
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "larger than {MAX_DOCUMENT_BYTES} bytes: the API server accepts at most {MAX_DOCUMENT_BYTES} bytes per object (request entity too large)"
        ));
    }
    Ok(())
}

/// Levels of arrays and objects in `value`; serde_json has already bounded the recursion.
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn yaml_stream_skips_empty_documents() {
        let docs = parse("---\na: 1\n---\n---\nb: 2\n").ok().unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value["b"], 2);
        // Numbers count the empty document, as kubectl does.
        assert_eq!((docs[0].number, docs[1].number), (1, 3));
    }

    #[test]
    fn null_and_comment_only_documents_are_not_counted() {
        let input = Input::new("a: 1\n---\n~\n---\n# only a comment\n---\nnull\n".into())
            .ok()
            .unwrap();
        assert_eq!(input.len(), 1);
        // A quoted "null" is a string, so a document.
        let input = Input::new("a: 1\n---\n'null'\n".into()).ok().unwrap();
        assert_eq!(input.len(), 2);
        assert!(Input::new("---\n~\n---\n".into()).is_err());
    }

    #[test]
    fn documents_before_a_malformed_one_are_still_read() {
        let input = Input::new("a: 1\n---\nb: &x [*x]\n".into()).ok().unwrap();
        let documents: Vec<_> = input.documents().collect();
        assert_eq!(documents[0].as_ref().ok().unwrap().value["a"], 1);
        assert_eq!(documents[1].as_ref().err().unwrap().number, Some(2));
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
    fn a_deserialization_error_is_reported_at_its_line_in_the_stream() {
        // The second document's error is on line 4 of the input, not line 2 of its document.
        let failure = parse("a: 1\n---\nb: 2\nc: &x [*x]\n").err().unwrap();
        assert_eq!(failure.number, Some(2));
        assert!(failure.message.contains("line 4"), "{}", failure.message);
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

    #[test]
    fn yaml_keeps_the_core_schema_and_the_last_of_repeated_keys() {
        let docs = parse("a: yes\nb: 1\nb: 2\nc: 0x10\n").ok().unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": "yes", "b": 2, "c": 16})
        );
    }

    /// Measured before: 100 000 nested `[` took 22 s in serde_norway (libyaml's scanner is
    /// quadratic in the flow depth). The bound holds on a loaded 2-core machine with margin.
    #[test]
    fn deep_nesting_fails_fast_with_a_clear_error() {
        let levels = 100_000;
        for text in [
            format!("a: {}{}\n", "[".repeat(levels), "]".repeat(levels)),
            format!("a: {}x{}\n", "{a: ".repeat(levels), "}".repeat(levels)),
            format!("{}x\n", "- ".repeat(levels)),
            format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels)),
        ] {
            let started = Instant::now();
            let failure = parse(&text).err().unwrap();
            assert!(started.elapsed() < Duration::from_millis(100), "{text:.20}");
            assert_eq!(failure.number, Some(1));
            assert!(
                failure.message.starts_with("malformed"),
                "{}",
                failure.message
            );
        }
    }

    #[test]
    fn nesting_up_to_the_limit_is_read() {
        let at = |levels: usize| format!("a: {}{}\n", "[".repeat(levels), "]".repeat(levels));
        // `a:` is one level, each `[` another.
        assert!(parse(&at(MAX_DEPTH - 1)).is_ok());
        let failure = parse(&at(MAX_DEPTH)).err().unwrap();
        assert!(
            failure.message.starts_with("malformed YAML"),
            "{}",
            failure.message
        );
        let json = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert!(parse(&json(MAX_DEPTH)).is_ok());
        let failure = parse(&json(MAX_DEPTH + 1)).err().unwrap();
        assert_eq!(
            failure.message,
            format!("malformed JSON: nested deeper than {MAX_DEPTH} levels")
        );
    }

    #[test]
    fn a_document_larger_than_a_request_is_refused_before_it_is_parsed() {
        let small = "a: 1\n";
        let big = format!("---\nb: \"{}\"\n", "x".repeat(MAX_DOCUMENT_BYTES));
        let failure = parse(&format!("{small}{big}")).err().unwrap();
        assert_eq!(failure.number, Some(2));
        assert!(
            failure.message.contains("at most 3145728 bytes per object"),
            "{}",
            failure.message
        );
        let json = format!("{{\"b\": \"{}\"}}", "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(parse(&json)
            .err()
            .unwrap()
            .message
            .contains("at most 3145728"));
    }

    #[test]
    fn a_document_of_many_small_nodes_within_the_limit_is_read() {
        // 300 000 nodes: serde-saphyr's default budget (250 000) refused this.
        let text = format!("a: [{}1]\n", "1,".repeat(300_000));
        let docs = parse(&text).ok().unwrap();
        assert_eq!(docs[0].value["a"].as_array().unwrap().len(), 300_001);
    }

    #[test]
    fn input_beyond_the_cap_is_not_held() {
        let reader = std::io::repeat(b'a').take(MAX_INPUT_BYTES as u64 + 10);
        assert!(read_bounded(reader).unwrap().is_none());
        let reader = std::io::repeat(b'a').take(10);
        assert_eq!(read_bounded(reader).unwrap().as_deref(), Some("aaaaaaaaaa"));
    }
}
