//! `lws-core`: every LeaderWorkerSet decision, as pure functions.
//!
//! No I/O, no clock, no randomness: the same input bytes give the same output bytes, so the
//! controller, the browser preview and the admission policy all agree. The reference behaviour is
//! upstream LeaderWorkerSet v0.10 (`kubernetes-sigs/lws`); each module names the upstream code it
//! mirrors.
//!
//! The entry point for every host is [`ops::call`]: an operation name and JSON bytes in, JSON
//! bytes out. The typed functions behind it are public for native callers and tests.

pub mod api;
#[cfg(feature = "schema")]
pub mod crd;
pub mod decode;
pub mod defaults;
pub mod expand;
pub mod field_path;
pub mod group;
pub mod intstr;
pub mod keys;
pub mod labels;
pub mod ops;
pub mod overlay;
pub mod placement;
pub mod pod;
pub mod policy;
pub mod reconcile;
pub mod revision;
pub mod tpu;
pub mod validation;

pub use api::LeaderWorkerSet;
pub use field_path::{FieldError, FieldErrors, FieldPath};
