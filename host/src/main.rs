//! `lws`: the LeaderWorkerSet controller, webhook server and CLI.
//!
//! Every LeaderWorkerSet decision is made by `lws.wasm` (or, with `--engine native`, by the
//! same `lws-core` code compiled in); this binary only reads, calls and prints.

mod cli;

use std::io::ErrorKind;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        // A closed stdout (`lws expand | head`) means the reader has what it wanted: end quietly
        // and successfully, as ripgrep does, not with "error: Broken pipe".
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether `error` is, or wraps, a write to a closed pipe. serde_json keeps the I/O error inside
/// its own type (and reports only that error's source), so it is asked for the kind.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io == Some(ErrorKind::BrokenPipe) || json == Some(ErrorKind::BrokenPipe)
    })
}
