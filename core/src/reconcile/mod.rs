//! The reconcile decision for one LeaderWorkerSet: observed state in, a plan out.
//!
//! Mirrors `Reconcile` in `pkg/controllers/leaderworkerset_controller.go` and `Reconcile` in
//! `pkg/controllers/pod_controller.go` upstream (upstream-lws.md §4), joined into one pure
//! function: the host observes (lists the objects in [`ReconcileInput`]), core decides
//! ([`plan_reconcile`]), the host applies the [`ReconcilePlan`].

pub mod wire;

pub use wire::{EventType, ObjectRef, PlannedEvent, ReconcileInput, ReconcilePlan};

/// Plans one reconcile of `input.lws`.
pub fn plan_reconcile(input: &ReconcileInput) -> ReconcilePlan {
    let _ = input;
    ReconcilePlan::default()
}
