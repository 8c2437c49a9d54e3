//! The CLI's manifest reader on arbitrary text: documents or a `ParseFailure`, never a panic,
//! a stack overflow or a hang (libFuzzer's `-timeout` catches the last).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = lws_host::documents::parse(text);
});
