//! `lws validate`: the admission webhooks' verdict, offline.

use lws_core::ops::{names, Problems};
use lws_host::documents;
use lws_host::engine::Engine;
use std::process::ExitCode;

/// Validates each document (against `old` when given); exit 1 with `path: message` lines when
/// any is invalid.
pub fn run(file: &str, old: Option<&str>, engine: &Engine) -> anyhow::Result<ExitCode> {
    let input = match documents::read(file)? {
        Ok(input) => input,
        Err(failure) => {
            eprintln!("{failure}");
            return Ok(ExitCode::from(1));
        }
    };
    let old = match old.map(documents::read).transpose()? {
        None => Ok(None),
        Some(Ok(old)) if old.len() == 1 => old.documents().next().transpose(),
        Some(Ok(_)) => anyhow::bail!("--old must hold exactly one LeaderWorkerSet"),
        Some(Err(failure)) => Err(failure),
    };
    let old = match old {
        Ok(old) => old.map(|document| document.value),
        Err(failure) => {
            eprintln!("--old: {failure}");
            return Ok(ExitCode::from(1));
        }
    };
    let many = input.len() > 1;
    let mut invalid = false;
    // One document at a time: its value, payload and answer are dropped before the next.
    for document in input.documents() {
        let document = match document {
            Ok(document) => document,
            Err(failure) => {
                eprintln!("{failure}");
                return Ok(ExitCode::from(1));
            }
        };
        let input = serde_json::json!({"lws": document.value, "old": old});
        let answer = engine.call(names::VALIDATE_LWS, &serde_json::to_vec(&input)?)?;
        let problems: Problems = serde_json::from_slice(&answer)?;
        if !problems.problems.is_empty() {
            print_problems(document.number, many, &problems);
            invalid = true;
        }
    }
    Ok(if invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One `path: message` line per problem, on stderr; prefixed with the document number when
/// the input holds several documents.
pub fn print_problems(number: usize, many: bool, problems: &Problems) {
    for problem in &problems.problems {
        let prefix = if many {
            format!("document {number}: ")
        } else {
            String::new()
        };
        if problem.path.is_empty() {
            eprintln!("{prefix}{}", problem.message);
        } else {
            eprintln!("{prefix}{}: {}", problem.path, problem.message);
        }
    }
}
