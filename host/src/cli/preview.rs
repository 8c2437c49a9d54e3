//! `lws preview`: binds 127.0.0.1, prints the page's URL, serves until interrupted.

use anyhow::Context;
use lws_host::preview;
use std::io::Write;
use std::process::ExitCode;

pub fn run(port: u16) -> anyhow::Result<ExitCode> {
    let listener = preview::bind(port).with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    let url = preview::page_url(&listener)?;
    // The URL is the first stdout line, flushed, so scripts and tests can read it.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{url}")?;
    stdout.flush()?;
    eprintln!("lws preview: serving the page at {url} (Ctrl-C stops)");
    preview::serve(listener).context("serving the preview")?;
    Ok(ExitCode::SUCCESS)
}
