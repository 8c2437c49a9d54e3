//! Every operation of `lws_core::ops` on a mutated input: a panic is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lws_fuzz::Case;

fuzz_target!(|case: Case| {
    let (operation, payload) = case.input();
    // An answer or a typed protocol fault; a panic aborts the run with this input saved.
    let _ = lws_core::ops::call(operation, &payload);
});
