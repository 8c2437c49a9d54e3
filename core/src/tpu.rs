//! TPU environment variables for pods that request `google.com/tpu`.
//!
//! Mirrors `pkg/utils/accelerators/tpu.go` upstream (upstream-lws.md §3.5).
