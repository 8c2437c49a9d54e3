//! Code compiled ahead of time (`lws module precompile`, `$LWS_MODULE_DIR`): loaded only for the
//! module and engine it was compiled from, and loading it writes nothing.

use lws_host::guest::{
    precompile, precompiled_path, sha256_hex, CodeDirs, CodeSource, GuestRuntime, Limits,
    EMBEDDED_MODULE,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Speaks just enough waPC to instantiate; its bytes differ from the embedded module's.
const OTHER_MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "__guest_call") (param i32 i32) (result i32) i32.const 0))"#;

/// A directory of its own under the system temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("lws-module-dir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, with its size, sorted.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                found.push((entry.path(), metadata.len()));
            }
        }
    }
    found.sort();
    found
}

/// A runtime for [`OTHER_MODULE`] that looks in `dir` for precompiled code, with no cache.
fn other_module_with_precompiled_dir(dir: &std::path::Path) -> GuestRuntime {
    let dirs = CodeDirs {
        precompiled: Some(dir.to_path_buf()),
        cache: None,
    };
    GuestRuntime::from_bytes_in(OTHER_MODULE.as_bytes(), Limits::default(), &dirs).unwrap()
}

#[test]
fn precompiled_code_for_another_module_is_not_loaded() {
    let precompiled = TempDir::new("other");
    let written = precompile(EMBEDDED_MODULE, &precompiled.0).unwrap();
    assert!(written
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&sha256_hex(EMBEDDED_MODULE)));
    let runtime = other_module_with_precompiled_dir(&precompiled.0);
    assert_eq!(runtime.code_source(), &CodeSource::Compiled);
    assert_eq!(runtime.sha256(), sha256_hex(OTHER_MODULE.as_bytes()));
    // Its own code answers: this module reports failure without a message.
    assert!(runtime.call("anything", b"{}").is_err());
}

#[test]
fn code_from_another_engine_under_the_right_name_is_refused_and_compiled_around() {
    let precompiled = TempDir::new("engine");
    let sha256 = sha256_hex(OTHER_MODULE.as_bytes());
    // Same module and wasmtime, but no epoch interruption: a different engine.
    let foreign = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let code = foreign.precompile_module(OTHER_MODULE.as_bytes()).unwrap();
    let path = precompiled_path(&precompiled.0, &sha256).unwrap();
    std::fs::write(&path, code).unwrap();
    let runtime = other_module_with_precompiled_dir(&precompiled.0);
    assert_eq!(runtime.code_source(), &CodeSource::Compiled);
}

/// The binary as the image runs it: `$LWS_MODULE_DIR` set, a `$HOME` that must stay empty.
#[test]
fn the_binary_loads_precompiled_code_and_writes_nothing() {
    let precompiled = TempDir::new("binary");
    let home = TempDir::new("home");
    let lws = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lws"))
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env_clear()
            .env("LWS_MODULE_DIR", &precompiled.0)
            .env("HOME", &home.0)
            .output()
            .unwrap()
    };
    let out = precompiled.0.to_str().unwrap();
    let written = lws(&["module", "precompile", "--out", out]);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let path = String::from_utf8(written.stdout)
        .unwrap()
        .trim()
        .to_string();
    let before = files(&precompiled.0);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].0, PathBuf::from(&path));

    let info = lws(&["module", "info"]);
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(
        info.contains(&format!("sha256: {}\n", sha256_hex(EMBEDDED_MODULE))),
        "{info}"
    );
    assert!(
        info.contains(&format!("code: precompiled {path}\n")),
        "{info}"
    );

    let valid = lws(&["validate", "-f", "examples/lws.yaml"]);
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
    let invalid = lws(&["validate", "-f", "tests/invalid/07-size-zero.yaml"]);
    assert_eq!(invalid.status.code(), Some(1));

    assert_eq!(files(&precompiled.0), before);
    assert_eq!(files(&home.0), vec![]);
}
