//! Expansion: every object the cluster would end up with for one LeaderWorkerSet.
//!
//! Composes [`crate::group`] and [`crate::pod`] the way the controllers and the StatefulSet
//! controller would, leaving out what only a live cluster knows (node names, UIDs, times).

use crate::api::LeaderWorkerSet;

/// The objects of a (defaulted, valid) LeaderWorkerSet in `kubectl get` order: the leader
/// StatefulSet, the Services, one worker StatefulSet per group, then every pod, leader first,
/// group by group. Each item carries `apiVersion` and `kind`.
pub fn expand(lws: &LeaderWorkerSet) -> Vec<serde_json::Value> {
    let _ = lws;
    todo!("expand")
}
