//! `lws module` (hidden): the embedded module's identity, and its code compiled ahead of time
//! for the container image (image/README.md).

use anyhow::Context;
use lws_host::guest::{self, CodeSource, GuestRuntime, Limits, EMBEDDED_MODULE};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Compiles the embedded module for this binary's engine into `out` and prints the file's path.
pub fn precompile(out: &Path) -> anyhow::Result<ExitCode> {
    let path = guest::precompile(EMBEDDED_MODULE, out)
        .with_context(|| format!("precompiling the embedded module into {}", out.display()))?;
    writeln!(std::io::stdout(), "{}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Loads the embedded module as `lws` would start and prints its sha256, its size and where its
/// compiled code came from, one `key: value` line each.
pub fn info() -> anyhow::Result<ExitCode> {
    let runtime = GuestRuntime::embedded(Limits::default())?;
    // Written, not println!-ed: a closed stdout is an error to return, not a panic.
    let mut out = std::io::stdout().lock();
    writeln!(out, "sha256: {}", runtime.sha256())?;
    writeln!(out, "bytes: {}", EMBEDDED_MODULE.len())?;
    match runtime.code_source() {
        CodeSource::Precompiled(path) => writeln!(out, "code: precompiled {}", path.display())?,
        CodeSource::Cached(path) => writeln!(out, "code: cached {}", path.display())?,
        CodeSource::Compiled => writeln!(out, "code: compiled")?,
    }
    Ok(ExitCode::SUCCESS)
}
