//! Defaulting: the CRD's structural defaults, then the mutating webhook's.
//!
//! Mirrors `Default` in `pkg/webhooks/leaderworkerset_webhook.go` (upstream-lws.md §2, §5.2).

use crate::api::LeaderWorkerSet;

/// Fills every default a LeaderWorkerSet gets between `kubectl apply` and storage.
pub fn apply_defaults(lws: &mut LeaderWorkerSet) {
    let _ = lws;
    todo!("defaults")
}
