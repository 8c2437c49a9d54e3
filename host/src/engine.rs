//! Which implementation answers: the wasm module (the default) or `lws-core` compiled in.

use crate::guest::{GuestRuntime, Limits};
use anyhow::{bail, Context};

/// Where decisions are made. Both give the same bytes for the same input; `Native` exists for
/// comparison and debugging.
pub enum Engine {
    Native,
    Wasm(GuestRuntime),
}

impl Engine {
    /// The module embedded in the binary, or the one at `module`, which must hash to `sha256`.
    pub fn wasm(module: Option<&str>, sha256: Option<&str>) -> anyhow::Result<Self> {
        let runtime = match module {
            None => GuestRuntime::embedded(Limits::default())?,
            Some(path) => {
                let Some(expected) = sha256 else {
                    bail!("--module needs --module-sha256: a module is only loaded when pinned");
                };
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading module {path}"))?;
                let actual = crate::guest::sha256_hex(&bytes);
                if !actual.eq_ignore_ascii_case(expected) {
                    bail!("module {path} has sha256 {actual}, not the pinned {expected}");
                }
                GuestRuntime::from_bytes(&bytes, Limits::default())
                    .with_context(|| format!("loading module {path}"))?
            }
        };
        Ok(Engine::Wasm(runtime))
    }

    /// Runs one operation (see `lws_core::ops::names`).
    pub fn call(&self, operation: &str, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            Engine::Native => Ok(lws_core::ops::call(operation, payload)?),
            Engine::Wasm(runtime) => Ok(runtime.call(operation, payload)?),
        }
    }
}
