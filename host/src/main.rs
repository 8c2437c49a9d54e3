//! `lws`: the LeaderWorkerSet controller, webhook server and CLI.
//!
//! Every LeaderWorkerSet decision is made by `lws.wasm` (or, with `--engine native`, by the
//! same `lws-core` code compiled in); this binary only reads, calls and prints.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(error) => {
            // A closed stdout (`lws expand | head`) is not a failure worth a message.
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
