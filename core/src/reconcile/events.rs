//! Event reasons, actions and texts, exactly as upstream records them (upstream-lws.md §4.12).

use super::wire::{EventType, ObjectRef, PlannedEvent};

/// Reason: a create failed or was refused.
pub const FAILED_CREATE: &str = "FailedCreate";
/// Reason: groups are being created or replaced.
pub const GROUPS_PROGRESSING: &str = "GroupsProgressing";
/// Reason: a rolling update is moving.
pub const GROUPS_UPDATING: &str = "GroupsUpdating";
/// Reason: a ControllerRevision is being created.
pub const CREATING_REVISION: &str = "CreatingRevision";
/// Reason: a group is recreated after a pod restart.
pub const RECREATE_GROUP: &str = "RecreateGroup";

/// Action: an object is created.
pub const CREATE: &str = "Create";
/// Action: an object is updated.
pub const UPDATE: &str = "Update";
/// Reason: the LeaderWorkerSet asks for a feature this controller does not run (not upstream's).
pub const UNSUPPORTED_SPEC: &str = "UnsupportedSpec";
/// Action: an object is deleted.
pub const DELETE: &str = "Delete";

/// A Normal event.
pub(crate) fn normal(reason: &str, action: &str, note: String) -> PlannedEvent {
    PlannedEvent {
        type_: EventType::Normal,
        reason: reason.to_string(),
        action: action.to_string(),
        note,
        related: None,
    }
}

/// A Warning event.
pub(crate) fn warning(reason: &str, action: &str, note: String) -> PlannedEvent {
    PlannedEvent {
        type_: EventType::Warning,
        ..normal(reason, action, note)
    }
}

/// The same event, naming a related object.
pub(crate) fn with_related(mut event: PlannedEvent, related: ObjectRef) -> PlannedEvent {
    event.related = Some(related);
    event
}
