//! `lws expand`: every object a LeaderWorkerSet becomes, rendered offline.

use super::Format;
use lws_core::ops::{names, Problems};
use lws_host::documents;
use lws_host::engine::Engine;
use std::io::Write;
use std::process::ExitCode;

/// Expands each document through the engine; prints all objects, or every problem and exit 1.
pub fn run(file: &str, format: Format, engine: &Engine) -> anyhow::Result<ExitCode> {
    let input = match documents::read(file)? {
        Ok(input) => input,
        Err(failure) => {
            eprintln!("{failure}");
            return Ok(ExitCode::from(1));
        }
    };
    let many = input.len() > 1;
    let mut items = Vec::new();
    let mut invalid = false;
    for document in input.documents() {
        let document = match document {
            Ok(document) => document,
            Err(failure) => {
                eprintln!("{failure}");
                return Ok(ExitCode::from(1));
            }
        };
        let answer = engine.call(names::EXPAND, &serde_json::to_vec(&document.value)?)?;
        let mut answer: serde_json::Value = serde_json::from_slice(&answer)?;
        if answer.get("problems").is_some() {
            let problems: Problems = serde_json::from_value(answer)?;
            super::validate::print_problems(document.number, many, &problems);
            invalid = true;
            continue;
        }
        if let Some(serde_json::Value::Array(list)) = answer.get_mut("items") {
            items.append(list);
        }
    }
    if invalid {
        return Ok(ExitCode::from(1));
    }
    print(&items, format)?;
    Ok(ExitCode::SUCCESS)
}

fn print(items: &[serde_json::Value], format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        Format::Yaml => {
            for item in items {
                writeln!(out, "---")?;
                out.write_all(serde_norway::to_string(item)?.as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
