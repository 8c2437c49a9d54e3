//! Revisions: the part of the spec whose change rolls the groups, and its key.
//!
//! Mirrors `pkg/utils/revision/revision_utils.go` upstream (upstream-lws.md §3.6, §4.3).

use crate::api::LeaderWorkerSet;

/// The `template-revision-hash` of a (defaulted) LeaderWorkerSet's current spec.
pub fn revision_key(lws: &LeaderWorkerSet) -> String {
    let _ = lws;
    todo!("revision_key")
}
