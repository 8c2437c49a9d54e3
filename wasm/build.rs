//! Turns `metadata.yml` into the bytes of the `io.kubewarden.metadata` custom section.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=metadata.yml");
    let yaml = fs::read_to_string("metadata.yml").expect("wasm/metadata.yml is readable");
    let value: serde_json::Value =
        serde_norway::from_str(&yaml).expect("wasm/metadata.yml is valid YAML");
    let json = serde_json::to_vec(&value).expect("metadata converts to JSON");
    let bytes: Vec<String> = json.iter().map(u8::to_string).collect();
    let source = format!(
        "/// `metadata.yml` as JSON: Kubewarden reads it from this custom section.\n\
         #[used]\n#[link_section = \"io.kubewarden.metadata\"]\n\
         pub static KUBEWARDEN_METADATA: [u8; {}] = [{}];\n",
        json.len(),
        bytes.join(",")
    );
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("metadata.rs");
    fs::write(out, source).expect("OUT_DIR is writable");
}
