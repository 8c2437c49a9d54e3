//! Hostile input through the `lws` binary (issue 14): each case fails fast with a clear message
//! and the exit code of invalid input, and a closed stdout ends quietly. The before figures are
//! in docs/robustness.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory of its own (input files, and a `HOME` for the module cache), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lws-hostile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lws"));
        command
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env("HOME", &self.0)
            .env_remove("LWS_CACHE")
            .env_remove("XDG_CONFIG_HOME");
        command
    }

    fn lws(&self, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let output = self.command(args).output().unwrap();
        (output, started.elapsed())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The seed's sample with `metadata` lines added after its name.
fn sample_with_metadata(lines: &str) -> String {
    let sample =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lws.yaml"))
            .unwrap();
    let name = "  name: leaderworkerset-sample\n";
    assert!(sample.contains(name));
    sample.replacen(name, &format!("{name}{lines}"), 1)
}

#[test]
fn yaml_nested_100k_levels_fails_fast() {
    let scratch = Scratch::new("deep");
    let levels = 100_000;
    let file = scratch.write(
        "deep.yaml",
        &format!("a: {}{}\n", "[".repeat(levels), "]".repeat(levels)),
    );
    // Native: the time is the reader's, not the module's compile.
    let (output, took) = scratch.lws(&["validate", "--engine", "native", "-f", &file]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("document 1: malformed YAML: recursion limit exceeded"),
        "{}",
        stderr(&output)
    );
    // Was 22 s; the reader takes ~1 ms, the rest is the process.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn annotations_beyond_256_kib_are_refused_with_their_path() {
    let scratch = Scratch::new("annotations");
    let big = "x".repeat(300_000);
    let file = scratch.write(
        "big.yaml",
        &sample_with_metadata(&format!("  annotations:\n    big: \"{big}\"\n")),
    );
    // Through the module, as a user runs it.
    let (output, _) = scratch.lws(&["validate", "-f", &file]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "metadata.annotations: Too long: may not be more than 262144 bytes\n"
    );
}

#[test]
fn a_document_larger_than_a_request_is_refused_before_it_is_parsed() {
    let scratch = Scratch::new("huge");
    let big = "x".repeat(50 << 20);
    let file = scratch.write(
        "huge.yaml",
        &sample_with_metadata(&format!("  annotations:\n    big: \"{big}\"\n")),
    );
    let (output, took) = scratch.lws(&["validate", "--engine", "native", "-f", &file]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "the API server accepts at most 3145728 bytes per object (request entity too large)"
        ),
        "{}",
        stderr(&output)
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn upstreams_pod_bound_holds_and_expanding_it_is_a_typed_out_of_memory() {
    let scratch = Scratch::new("pods");
    let manifest = |replicas: i64, size: i64| {
        format!(
            "apiVersion: leaderworkerset.x-k8s.io/v1\nkind: LeaderWorkerSet\nmetadata:\n  name: many\n\
             spec:\n  replicas: {replicas}\n  leaderWorkerTemplate:\n    size: {size}\n    \
             workerTemplate:\n      spec:\n        containers:\n        - name: c\n          image: i\n"
        )
    };
    // Upstream bounds replicas by 1000000 and replicas × size by 2^31 - 1 (its webhook).
    let over = scratch.write("over.yaml", &manifest(1_000_000, 2148));
    let (output, _) = scratch.lws(&["validate", "-f", &over]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "spec.replicas: Invalid value: 1000000: the product of replicas and worker replicas must not exceed 2147483647\n"
    );
    // At the bound it is valid, as upstream; expanding 2.1×10⁹ pods hits the guest's memory cap.
    let at = scratch.write("at.yaml", &manifest(1_000_000, 2147));
    let (output, _) = scratch.lws(&["validate", "-f", &at]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (output, took) = scratch.lws(&["expand", "-f", &at, "-o", "json"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the guest ran out of memory (cap 268435456 bytes)"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// `lws ... | head` with `head` gone: exit 0 and nothing on stderr, as ripgrep.
#[test]
fn a_closed_stdout_ends_quietly() {
    let scratch = Scratch::new("pipe");
    for args in [
        &[
            "expand",
            "--engine",
            "native",
            "-f",
            "examples/lws.yaml",
            "-o",
            "json",
        ][..],
        &["expand", "--engine", "native", "-f", "examples/lws.yaml"],
        &["crd", "-o", "json"],
        &["module", "info"],
    ] {
        let mut child = scratch
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the first write.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

/// The input's bytes go through stdin as well as a file.
#[test]
fn stdin_is_bounded_like_a_file() {
    let scratch = Scratch::new("stdin");
    let mut child = scratch
        .command(&["validate", "--engine", "native", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // 65 MiB of comments: past the input cap, refused without holding it all.
    let chunk = "#".repeat(1 << 20) + "\n";
    let writer = std::thread::spawn(move || {
        for _ in 0..65 {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), "the input is larger than 67108864 bytes\n");
}
