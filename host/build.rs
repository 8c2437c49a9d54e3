//! Points `include_bytes!` at the module to embed: `$LWS_WASM`, or `target/lws.wasm` as
//! `make wasm` writes it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LWS_WASM");
    let path = match std::env::var_os("LWS_WASM") {
        Some(path) => PathBuf::from(path),
        // Read at run time: a build script binary can be reused for another checkout.
        None => PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
            .join("../target/lws.wasm"),
    };
    if !path.exists() {
        panic!(
            "{} does not exist: build the module first with `make wasm` (or set LWS_WASM)",
            path.display()
        );
    }
    let path = path.canonicalize().expect("the module path resolves");
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rustc-env=LWS_WASM_PATH={}", path.display());
}
