//! The compiled-module cache (`$LWS_CACHE/modules`): code is loaded only when it is private and
//! sealed for the module and engine in use (`host/src/guest/cache.rs`); anything else is
//! refused and the module compiled from its pinned bytes. Regression for issue 14: a foreign
//! `.cwasm` under the embedded module's name made `lws validate` accept an invalid manifest.

use lws_host::guest::{cached_path, runtime_engine, sha256_hex, EMBEDDED_MODULE};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Answers every call with "no problems": loaded in place of `lws.wasm`, it accepts anything.
const ACCEPT_EVERYTHING: &str = r#"(module
  (import "wapc" "__guest_response" (func $response (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"problems\":[]}")
  (func (export "__guest_call") (param i32 i32) (result i32)
    (call $response (i32.const 16) (i32.const 15))
    i32.const 1))"#;

const INVALID: &str = "tests/invalid/07-size-zero.yaml";
const INVALID_LINE: &str =
    "spec.leaderWorkerTemplate.size: Invalid value: 0: size must be equal or greater than 1";

/// A `HOME` of its own (the cache and its key live under it), removed when dropped.
struct Home(PathBuf);

impl Home {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("lws-module-cache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Home(path)
    }

    fn cache_dir(&self) -> PathBuf {
        self.0.join(".cache/lws/modules")
    }

    fn key_file(&self) -> PathBuf {
        self.0.join(".config/lws/module-cache.key")
    }

    /// Where the binary caches the embedded module's code.
    fn cached(&self) -> PathBuf {
        cached_path(&self.cache_dir(), &sha256_hex(EMBEDDED_MODULE)).unwrap()
    }

    fn lws(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lws"))
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env_clear()
            .env("HOME", &self.0)
            .output()
            .unwrap()
    }

    /// `lws module info`'s `code:` line.
    fn code_source(&self) -> String {
        let info = self.lws(&["module", "info"]);
        assert!(info.status.success(), "{}", stderr(&info));
        let stdout = String::from_utf8(info.stdout).unwrap();
        let line = stdout.lines().find(|l| l.starts_with("code: "));
        line.expect("module info prints code:").to_string()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The embedded module rejects the invalid manifest with its field error.
fn assert_rejects_invalid(home: &Home) {
    let out = home.lws(&["validate", "-f", INVALID]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(INVALID_LINE), "{}", stderr(&out));
}

/// Code for [`ACCEPT_EVERYTHING`] from an engine configured as the runtime's: wasmtime itself
/// would load it (checked), so only the seal stands between it and `lws validate`.
fn foreign_code() -> Vec<u8> {
    let engine = runtime_engine().unwrap();
    let code = engine
        .precompile_module(ACCEPT_EVERYTHING.as_bytes())
        .unwrap();
    // SAFETY: compiled just now by this engine.
    unsafe { wasmtime::Module::deserialize(&engine, &code) }.expect("wasmtime accepts the code");
    code
}

/// What someone who knows the file format but not the key writes: a header naming the embedded
/// module and this engine (read off the file name), a made-up tag, and foreign code.
fn forged_file(path: &Path, code: &[u8]) -> Vec<u8> {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let (sha256, engine_key) = name.split_once('-').unwrap();
    let mut file = vec![0u8; 32];
    file.extend_from_slice(b"lws-cwasm-v1\0\0\0\0");
    file.extend_from_slice(sha256.as_bytes());
    file.extend_from_slice(engine_key.as_bytes());
    file.extend_from_slice(code);
    file
}

#[test]
fn a_foreign_cwasm_under_the_modules_name_is_refused_and_the_module_recompiled() {
    let home = Home::new("foreign");
    let path = home.cached();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::set_permissions(path.parent().unwrap(), PermissionsExt::from_mode(0o700)).unwrap();
    let code = foreign_code();
    for (what, bytes) in [
        ("raw code, as the cache held it before", code.clone()),
        ("a forged seal", forged_file(&path, &code)),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600)).unwrap();
        // Before the seal this exited 0: the foreign code answered "no problems".
        assert_rejects_invalid(&home);
        let written = std::fs::read(&path).unwrap();
        assert_ne!(written, bytes, "{what}: the refused file was replaced");
        // The replacement is the embedded module's own code, and is reused.
        assert_eq!(
            home.code_source(),
            format!("code: cached {}", path.display()),
            "{what}"
        );
    }
}

#[test]
fn a_cache_others_can_write_is_not_used() {
    let home = Home::new("mode");
    std::fs::create_dir_all(home.cache_dir()).unwrap();
    std::fs::set_permissions(home.cache_dir(), PermissionsExt::from_mode(0o777)).unwrap();
    assert_eq!(home.code_source(), "code: compiled");
    assert_rejects_invalid(&home);
    assert!(!home.cached().exists(), "nothing is written to it");

    // Private again: used, then a file others can write is refused.
    std::fs::set_permissions(home.cache_dir(), PermissionsExt::from_mode(0o700)).unwrap();
    assert_eq!(home.code_source(), "code: compiled");
    assert_eq!(
        home.code_source(),
        format!("code: cached {}", home.cached().display())
    );
    std::fs::set_permissions(home.cached(), PermissionsExt::from_mode(0o666)).unwrap();
    assert_eq!(home.code_source(), "code: compiled");
}

#[test]
fn a_key_others_can_read_means_no_cache() {
    let home = Home::new("key");
    assert_eq!(home.code_source(), "code: compiled");
    let key = std::fs::metadata(home.key_file()).unwrap();
    assert_eq!((key.len(), key.permissions().mode() & 0o777), (32, 0o600));
    std::fs::set_permissions(home.key_file(), PermissionsExt::from_mode(0o644)).unwrap();
    assert_eq!(home.code_source(), "code: compiled");
    assert_rejects_invalid(&home);
}

/// Ownership by another user needs root to set up; `private_reason`'s unit test covers the rule
/// for any user, this runs it through the binary where we can.
#[test]
fn a_cache_owned_by_another_user_is_not_used() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: chown to another user is not possible here; see cache.rs unit tests");
        return;
    }
    let home = Home::new("owner");
    assert_eq!(home.code_source(), "code: compiled");
    let nobody = 65534;
    std::os::unix::fs::chown(home.cached(), Some(nobody), Some(nobody)).unwrap();
    assert_eq!(home.code_source(), "code: compiled");
    std::os::unix::fs::chown(home.cached(), Some(0), Some(0)).unwrap();
    assert_eq!(
        home.code_source(),
        format!("code: cached {}", home.cached().display())
    );
    std::os::unix::fs::chown(home.cache_dir(), Some(nobody), Some(nobody)).unwrap();
    assert_eq!(home.code_source(), "code: compiled");
}

/// The happy path: the first start compiles and caches, later starts load; printed so the
/// saving can be read off a run (`--nocapture`).
#[test]
fn the_cache_is_reused_and_saves_the_compile() {
    let home = Home::new("reuse");
    let timed = |home: &Home| {
        let started = Instant::now();
        let source = home.code_source();
        (source, started.elapsed())
    };
    let (cold_source, cold) = timed(&home);
    assert_eq!(cold_source, "code: compiled");
    let mut warm = Duration::MAX;
    for _ in 0..3 {
        let (source, took) = timed(&home);
        assert_eq!(source, format!("code: cached {}", home.cached().display()));
        warm = warm.min(took);
    }
    eprintln!("lws module info: cold compile {cold:?}, cached load {warm:?}");
    assert!(
        warm < cold,
        "a cached start ({warm:?}) beats a compile ({cold:?})"
    );
    assert_rejects_invalid(&home);
}
