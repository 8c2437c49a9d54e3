//! lws.wasm: waPC glue only.
