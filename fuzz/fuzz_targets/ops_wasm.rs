//! Every operation through `lws.wasm` in the host's wasmtime runtime, checked against the same
//! core compiled in: the same bytes for an answer, a `Protocol` error for a protocol fault, and
//! never a trap, a timeout, running out of memory or a host panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lws_fuzz::Case;
use lws_host::guest::{GuestError, GuestRuntime, Limits};
use std::sync::OnceLock;

fn runtime() -> &'static GuestRuntime {
    static RUNTIME: OnceLock<GuestRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| GuestRuntime::embedded(Limits::default()).expect("the module loads"))
}

fuzz_target!(
    // Compiled before the first input: uncached (a new lws.wasm), compiling the module in this
    // instrumented build takes ~45 s, which libFuzzer's -timeout would charge to that input.
    init: {
        runtime();
    },
    |case: Case| {
        let (operation, payload) = case.input();
        let native = lws_core::ops::call(operation, &payload);
        let wasm = runtime().call(operation, &payload);
        match (native, wasm) {
            (Ok(native), Ok(wasm)) => {
                assert!(native == wasm, "{operation}: wasm and native differ")
            }
            (Err(_), Err(GuestError::Protocol { .. })) => {}
            (native, wasm) => panic!("{operation}: native {native:?}, wasm {wasm:?}"),
        }
    }
);
