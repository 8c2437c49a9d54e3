//! Which implementation answers: the wasm module (the default) or `lws-core` compiled in.

use crate::guest::{GuestRuntime, Limits};
use anyhow::{bail, Context};

/// A module file and the sha256 pins it may have (`--module`, `--module-sha256`): what the
/// controller loads again on SIGHUP, so a new module replaces the running one without a restart.
#[derive(Clone, Debug)]
pub struct PinnedModule {
    pub path: String,
    pub pins: String,
}

impl PinnedModule {
    /// Reads, checks against the pins and compiles the file as it is now.
    pub fn load(&self) -> anyhow::Result<Engine> {
        Engine::wasm(Some(self))
    }
}

/// Where decisions are made. Both give the same bytes for the same input; `Native` exists for
/// comparison and debugging.
pub enum Engine {
    Native,
    Wasm(GuestRuntime),
}

impl Engine {
    /// The module embedded in the binary, or the file of `module` if it hashes to one of the
    /// comma-separated pins.
    pub fn wasm(module: Option<&PinnedModule>) -> anyhow::Result<Self> {
        let runtime = match module {
            None => GuestRuntime::embedded(Limits::default())?,
            Some(PinnedModule { path, pins }) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading module {path}"))?;
                let actual = crate::guest::sha256_hex(&bytes);
                if !pins
                    .split(',')
                    .any(|pin| actual.eq_ignore_ascii_case(pin.trim()))
                {
                    bail!("module {path} has sha256 {actual}, none of the pinned {pins}");
                }
                GuestRuntime::from_bytes(&bytes, Limits::default())
                    .with_context(|| format!("loading module {path}"))?
            }
        };
        Ok(Engine::Wasm(runtime))
    }

    /// What answers: the module's sha256, or `native`.
    pub fn describe(&self) -> &str {
        match self {
            Engine::Native => "native",
            Engine::Wasm(runtime) => runtime.sha256(),
        }
    }

    /// Runs one operation (see `lws_core::ops::names`).
    pub fn call(&self, operation: &str, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            Engine::Native => Ok(lws_core::ops::call(operation, payload)?),
            Engine::Wasm(runtime) => Ok(runtime.call(operation, payload)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{sha256_hex, EMBEDDED_MODULE};

    /// The embedded module with a custom section appended: the same code, other bytes.
    fn variant(name: &str) -> Vec<u8> {
        let mut bytes = EMBEDDED_MODULE.to_vec();
        let payload = [&[name.len() as u8][..], name.as_bytes()].concat();
        bytes.extend([0, payload.len() as u8]);
        bytes.extend(payload);
        bytes
    }

    fn file_of(name: &str, bytes: &[u8]) -> String {
        let path =
            std::env::temp_dir().join(format!("lws-engine-{}-{name}.wasm", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn a_module_loads_only_under_one_of_its_pins() {
        let next = variant("next");
        let path = file_of("pins", &next);
        let pins = format!("{},{}", sha256_hex(EMBEDDED_MODULE), sha256_hex(&next));
        let engine = PinnedModule {
            path: path.clone(),
            pins,
        }
        .load()
        .unwrap();
        assert_eq!(engine.describe(), sha256_hex(&next));
        let refused = PinnedModule {
            path: path.clone(),
            pins: sha256_hex(EMBEDDED_MODULE),
        }
        .load()
        .err()
        .expect("an unpinned module");
        assert!(
            refused.to_string().contains("none of the pinned"),
            "{refused}"
        );
        std::fs::remove_file(path).unwrap();
    }
}
