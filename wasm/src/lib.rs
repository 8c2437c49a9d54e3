//! `lws.wasm`: `lws-core` behind the waPC protocol.
//!
//! Glue only: each operation in [`lws_core::ops::names::ALL`] is registered with waPC and forwards
//! its payload to [`lws_core::ops::call`]. The module imports nothing but waPC's host functions,
//! so the same file runs in wasmtime, in Kubewarden and in a browser.

use wapc_guest as wapc;

include!(concat!(env!("OUT_DIR"), "/metadata.rs"));

/// Registers every operation; waPC hosts call this once after instantiation.
#[no_mangle]
pub extern "C" fn wapc_init() {
    use lws_core::ops::names::*;
    // waPC handlers are plain `fn` pointers, so each operation gets its own non-capturing closure.
    macro_rules! register {
        ($($name:ident),+) => {$(
            wapc::register_function($name, |payload| run($name, payload));
        )+};
    }
    register!(
        EXPAND,
        VALIDATE_LWS,
        DEFAULT,
        MUTATE_POD,
        PROTOCOL_VERSION,
        VALIDATE_SETTINGS,
        VALIDATE,
        RECONCILE,
        PLACEMENT
    );
}

fn run(operation: &str, payload: &[u8]) -> wapc::CallResult {
    lws_core::ops::call(operation, payload).map_err(|e| e.to_string().into())
}
