//! Validation on create and update, every rule of the validating webhook.
//!
//! Mirrors `ValidateCreate`, `ValidateUpdate` and `generalValidate` in
//! `pkg/webhooks/leaderworkerset_webhook.go` (upstream-lws.md §5.3).

use crate::api::LeaderWorkerSet;
use crate::field_path::FieldErrors;

/// All problems with a new LeaderWorkerSet (already defaulted); empty means valid.
pub fn validate_create(lws: &LeaderWorkerSet) -> FieldErrors {
    let _ = lws;
    todo!("validate_create")
}

/// All problems with changing `old` into `new` (both defaulted); empty means valid.
pub fn validate_update(old: &LeaderWorkerSet, new: &LeaderWorkerSet) -> FieldErrors {
    let _ = (old, new);
    todo!("validate_update")
}
